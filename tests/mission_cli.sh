#!/usr/bin/env bash
# mission_cli.sh: `orbitctl quota` and `orbitctl mission` against three
# orbit-root replicas with a small simulated fleet (a rack shard and 4
# orbit-sim leaves without GPUs) in the root view: quota grant/show; submit
# of examples/mission.json writes one ModuleAdjustment per module with every
# field; status joins desired state with placements (pending, then placed);
# scale keeps the other fields; stop revokes. Every bad mission file (unknown
# fields, missing or empty command, bad names, negative, overflowing or
# impossible resources, principal without quota, ...) is refused with its
# message and the ledger index does not move.
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)
ledger_cluster
RACK_EP=tcp://127.0.0.1:$(free_port)
start rack "$SHARD_BIN" --id rack-m --listen "$RACK_EP" --upstream "$ROOT_EP" --interval-ms 500
start sim "$SIM_BIN" --leaves 4 --shard "$RACK_EP" --interval-ms 500 --prefix m --racks 1 \
    --gpu-fraction 0 --seed 3
wait_for 30 "4 simulated nodes alive in the root view" \
    summary_is '.nodes.alive == 4 and .gpus.capacity == 0' >/dev/null || exit 1

index() { ctl --json ledger status | jq -e '.ledger_index'; }
get() { ctl --json ledger get "$1" | jq -c '.value'; }

# refused FILE PATTERN: submit exits 1, says PATTERN, proposes nothing.
refused() {
    local before after rc
    before=$(index) || fail "ledger status"
    ctl mission submit "$1" >"$WORK/out.txt" 2>"$WORK/err.txt"; rc=$?
    [ $rc = 1 ] || fail "$1: exit $rc, expected 1: $(cat "$WORK/err.txt")"
    [ "$(wc -l < "$WORK/err.txt")" = 1 ] || fail "$1: not a one-line error: $(cat "$WORK/err.txt")"
    grep -qF -- "$2" "$WORK/err.txt" || fail "$1: error '$(cat "$WORK/err.txt")' lacks '$2'"
    after=$(index) || fail "ledger status"
    [ "$before" = "$after" ] || fail "$1: ledger index moved $before -> $after"
    echo "refused as expected: $(cat "$WORK/err.txt")"
}
# bad NAME PATTERN JSON: write JSON to NAME.json and expect refusal.
bad() { printf '%s\n' "$3" > "$WORK/$1.json"; refused "$WORK/$1.json" "$2"; }
mod() { # a mission with one module whose fields are $1 (JSON members)
    printf '{"mission":"m1","principal":"team-a","modules":[{%s}]}' "$1"
}
OK_MOD='"name":"w","command":["sleep","1"],"count":2,"resources":{"cpu_m":100,"mem":1024}'

# --- quota
# The example runs on the constellation's real leaf (rack=local); here the
# simulated rack m-r0 stands in for it.
jq '.modules[0].node_selector = {"rack": "m-r0"}' "$SRC/examples/mission.json" > "$WORK/example.json"
refused "$WORK/example.json" "principal: team-a has no quota grant"
ctl quota grant team-a --cpu-m 4000 --mem 4294967296 >/dev/null 2>&1
[ $? = 2 ] || fail "quota grant without --gpus should be a usage error"
ctl quota grant team-a --cpu-m -1 --mem 1 --gpus 0 >/dev/null 2>&1
[ $? = 2 ] || fail "quota grant with negative cpu should be a usage error"
ctl --json quota grant team-a --cpu-m 4000 --mem 4294967296 --gpus 0 --priority 3 |
    jq -e '.principal == "team-a" and .outcome.kind == "COMMITTED"' >/dev/null ||
    fail "quota grant not committed"
ctl --json quota show team-a | jq -e '.granted and .grant.cpu_m == 4000 and
    .grant.mem == 4294967296 and .grant.gpus == 0 and .priority == 3 and .used.cpu_m == 0' \
    >/dev/null || fail "quota show: $(ctl --json quota show team-a)"
ctl quota show team-a | grep -q '^granted    cpu_m=4000 mem=4294967296 gpus=0' ||
    fail "quota show (human): $(ctl quota show team-a)"
ctl quota show nobody >/dev/null 2>&1 && fail "quota show of an unknown principal succeeded"
echo "quota grant/show ok"

# --- bad mission files: nothing proposed
bad syntax "syntax.json:2: " '{"mission": '
bad unknown-top 'comment: unknown field' '{"mission":"m1","principal":"team-a","comment":1,"modules":[]}'
bad unknown-mod 'modules[0].comand: unknown field' "$(mod "$OK_MOD"',"comand":["x"]')"
bad unknown-res 'modules[0].resources.disk: unknown field' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"disk":1}')"
bad no-command 'modules[0].command: missing' \
    "$(mod '"name":"w","count":1,"resources":{"cpu_m":1}')"
bad empty-command 'modules[0].command: empty' \
    "$(mod '"name":"w","command":[],"count":1,"resources":{"cpu_m":1}')"
bad empty-prog 'modules[0].command[0]: empty program name' \
    "$(mod '"name":"w","command":[""],"count":1,"resources":{"cpu_m":1}')"
bad string-command 'modules[0].command: must be an array of strings' \
    "$(mod '"name":"w","command":"sleep 1","count":1,"resources":{"cpu_m":1}')"
bad negative 'modules[0].resources.cpu_m: -5 out of range' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"cpu_m":-5}')"
bad overflow 'modules[0].resources.mem: 1152921504606846976 out of range' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"mem":1152921504606846976}')"
bad huge 'too big' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"mem":99999999999999999999}')"
bad real 'modules[0].resources.gpus: must be an integer' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"gpus":1.5}')"
bad count0 'modules[0].count: 0 out of range' \
    "$(mod '"name":"w","command":["sleep"],"count":0,"resources":{}')"
bad count-big 'modules[0].count: 2000000 out of range' \
    "$(mod '"name":"w","command":["sleep"],"count":2000000,"resources":{}')"
bad bad-name 'modules[0].name: must be a name' \
    "$(mod '"name":"a b","command":["sleep"],"count":1,"resources":{}')"
bad bad-mission 'mission: must be a name' \
    '{"mission":"m/1","principal":"team-a","modules":[]}'
bad no-modules 'modules: must be a non-empty array' \
    '{"mission":"m1","principal":"team-a","modules":[]}'
bad dup-module 'modules[1].name: "w" already used by modules[0]' \
    "{\"mission\":\"m1\",\"principal\":\"team-a\",\"modules\":[{$OK_MOD},{$OK_MOD}]}"
bad long-ids 'would exceed 63 characters' "{\"mission\":\"$(printf 'x%.0s' $(seq 40))\",
    \"principal\":\"team-a\",\"modules\":[{\"name\":\"$(printf 'y%.0s' $(seq 20))\",
    \"command\":[\"sleep\"],\"count\":100,\"resources\":{}}]}"
bad gang-type 'modules[0].gang: must be true or false' "$(mod "$OK_MOD"',"gang":1')"
bad gpus 'modules[0].resources.gpus: 1 impossible: no node of 4 has more than 0' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"gpus":1}')"
bad big-mem 'modules[0].resources.mem: 562949953421312 impossible: no node of 4' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"mem":562949953421312}')"
bad no-quota 'principal: team-b has no quota grant' \
    "{\"mission\":\"m1\",\"principal\":\"team-b\",\"modules\":[{$OK_MOD}]}"
bad no-such-label 'modules[0].node_selector: no node of 4 has labels rack=nowhere' \
    "$(mod "$OK_MOD"',"node_selector":{"rack":"nowhere"}')"
bad selector-type 'modules[0].node_selector.rack: must be a string' \
    "$(mod "$OK_MOD"',"node_selector":{"rack":1}')"
bad selector-char 'modules[0].node_selector: selector: bad character' \
    "$(mod "$OK_MOD"',"node_selector":{"rack":"a b"}')"
bad selector-array 'modules[0].node_selector: must be an object of label values' \
    "$(mod "$OK_MOD"',"node_selector":["rack=a"]')"
bad selected-too-small 'modules[0].resources.cpu_m: 999999 impossible: no node of 4 selected' \
    "$(mod '"name":"w","command":["sleep"],"count":1,"resources":{"cpu_m":999999},"node_selector":{"rack":"m-r0"}')"
ctl mission submit >/dev/null 2>&1; [ $? = 2 ] || fail "submit without FILE: not a usage error"
ctl mission frobnicate x >/dev/null 2>&1; [ $? = 2 ] || fail "unknown mission command: not 2"

# --- submit the example
ctl --json mission submit "$WORK/example.json" > "$WORK/submit.json" ||
    fail "submit: $(cat "$WORK/submit.json")"
jq -e '.mission == "hello" and .committed and (.modules | length) == 1 and
    .modules[0].module == "sleeper" and .modules[0].outcome.kind == "COMMITTED"' \
    "$WORK/submit.json" >/dev/null || fail "submit output: $(cat "$WORK/submit.json")"
get module/hello/sleeper | jq -e '.spec == {"count": 2, "resources": {"cpu_m": 100,
    "mem": 67108864, "gpus": 0}, "command": "[\"sleep\",\"600\"]", "priority": 0, "gang": false,
    "principal": "team-a", "node_selector": "rack=m-r0"}' >/dev/null ||
    fail "stored module: $(get module/hello/sleeper)"
echo "submit ok: $(get module/hello/sleeper)"

# --- status: pending, then one placed
ctl --json mission status hello > "$WORK/status.json" || fail "status"
jq -e '.mission == "hello" and .modules[0].state == "active" and .modules[0].placed == 0 and
    [.modules[0].capsules[] | [.capsule, .state, .node]] ==
    [["hello/sleeper/0", "pending", null], ["hello/sleeper/1", "pending", null]]' \
    "$WORK/status.json" >/dev/null || fail "status: $(cat "$WORK/status.json")"
ctl mission status hello | grep -qE '^  hello/sleeper/1 +pending +- *$' ||
    fail "human status: $(ctl mission status hello)"
ctl mission status hello | grep -qF 'command    sleep 600' || fail "human status lacks command"
ctl mission status hello | grep -qF "nodes      with labels rack=m-r0" || fail "human status lacks the selector"
cat > "$WORK/place.json" <<'JSON'
{"commitment": {"placement": {"capsule": "hello/sleeper/0", "node": "m-0",
  "envelope": {"cpu_m": 100, "mem": 67108864}, "principal": "team-a"}}}
JSON
ctl ledger propose "$WORK/place.json" >/dev/null || fail "placement not committed"
ctl --json mission status hello --module sleeper | jq -e '.modules[0].placed == 1 and
    .modules[0].capsules[0].node == "m-0" and .modules[0].capsules[0].state == "placed" and
    .modules[0].capsules[1].state == "pending"' \
    >/dev/null || fail "status after placement: $(ctl --json mission status hello)"
ctl --json quota show team-a | jq -e '.used.cpu_m == 100' >/dev/null || fail "quota usage"
ctl mission status nosuch >/dev/null 2>&1 && fail "status of an unknown mission succeeded"
echo "status ok"

# --- scale
ctl --json mission scale hello sleeper 3 | jq -e '.from == 2 and .to == 3 and
    .outcome.kind == "COMMITTED"' >/dev/null || fail "scale"
get module/hello/sleeper | jq -e '.spec.count == 3 and .spec.command == "[\"sleep\",\"600\"]"
    and .spec.resources.cpu_m == 100 and .spec.principal == "team-a"' >/dev/null ||
    fail "scaled module: $(get module/hello/sleeper)"
[ "$(ctl --json mission status hello | jq '.modules[0].capsules | length')" = 3 ] ||
    fail "status after scale"
before=$(index)
ctl mission scale hello nosuch 1 >/dev/null 2>&1; [ $? = 1 ] || fail "scale of no module: not 1"
ctl mission scale hello sleeper -1 >/dev/null 2>&1; [ $? = 2 ] || fail "scale -1: not 2"
[ "$(index)" = "$before" ] || fail "a refused scale moved the ledger"
echo "scale ok"

# --- stop
ctl --json mission stop hello | jq -e '.stopped == 1 and
    .modules[0].outcome.kind == "COMMITTED"' >/dev/null || fail "stop"
ctl --json ledger get module/hello/sleeper >/dev/null 2>&1 && fail "module still in the ledger"
ctl --json mission status hello | jq -e '.modules == [{"module": "sleeper",
    "state": "stopped"}]' >/dev/null || fail "status after stop: $(ctl --json mission status hello)"
ctl mission stop hello | grep -q 'nothing running' || fail "second stop"
ctl mission stop hello --module sleeper >/dev/null 2>&1 && fail "stop of a stopped module"

# --no-view-check lets an impossible (for now) module through.
printf '%s' "$(mod '"name":"g","command":["nvidia-smi"],"count":1,"resources":{"gpus":1}')" \
    > "$WORK/gpu.json"
refused "$WORK/gpu.json" "impossible"
ctl mission submit "$WORK/gpu.json" --no-view-check | grep -q '^m1/g: committed' ||
    fail "--no-view-check"
ctl mission stop m1 --module g | grep -q '^m1/g: committed' || fail "stop --module"
echo "stop ok"
echo "PASS"
