#!/usr/bin/env bash
# mission_run.sh: a mission whose capsules really run on this machine's
# leaf. Three root replicas, one rack shard and one orbit-leaf (discovering
# its shard from the topology, running capsules as plain processes), one
# orbit-sched. Submitting a mission of two `sleep` capsules -> both placed
# on the leaf's node, two real processes carrying their capsule ids, and
# `mission status` says running; stopping the mission -> the scheduler
# revokes the placements and the processes are gone. A module whose
# command does not exist -> its capsule is failed with the reason in
# `mission status`, and the scheduler retries it with backoff instead of
# hot-looping.
source "$(dirname "$0")/lib.sh"
SCHED_BIN=$BIN/tools/orbit-sched
ledger_cluster
RACK_EP=tcp://127.0.0.1:$(free_port)
ctl topology add-shard rack-1 --tier 1 --endpoint "$RACK_EP" >/dev/null || fail "add-shard"
ctl topology move-rack r1 rack-1 >/dev/null || fail "move-rack"
start rack "$SHARD_BIN" --id rack-1 --root "$ROOT_EP" --interval-ms 500
NODE=node-$$
mkdir -p "$WORK/capsules"
start leaf "$LEAF_BIN" --node "$NODE" --root "$ROOT_EP" --label rack=r1 --interval-ms 500 \
    --no-cgroups --capsule-log-dir "$WORK/capsules" --stop-grace-ms 1000
wait_for 30 "the leaf alive in the root view" summary_is '.nodes.alive == 1' >/dev/null || exit 1
ctl quota grant team-a --cpu-m 1000 --mem 1073741824 --gpus 0 >/dev/null || fail "quota grant"
start sched "$SCHED_BIN" --root "$ROOT_EP" --name s1 --interval-ms 100 --refresh-ms 300 \
    --no-reaper --stats-file "$WORK/sched.json" --stats-every-ms 200

# pids_of CAPSULE: pids of processes whose environment names the capsule.
pids_of() {
    local f pid
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}; pid=${pid%/environ}
        { tr '\0' '\n' < "$f"; } 2>/dev/null | grep -qx "ORBIT_CAPSULE_ID=$1" && echo "$pid"
    done
}
running_sleep() { # CAPSULE: exactly one process for it, and it is `sleep 600`
    local p; p=$(pids_of "$1")
    [ "$(echo "$p" | grep -c .)" = 1 ] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -qx 'sleep 600 '
}
none_of() { [ -z "$(pids_of "$1")" ]; }
status_is() { ctl --json mission status "$1" | jq -e "$2" >/dev/null; }

# --- a mission runs
cat > "$WORK/run.json" <<JSON
{"mission": "run$$", "principal": "team-a",
 "modules": [{"name": "sleeper", "command": ["sleep", "600"], "count": 2,
              "resources": {"cpu_m": 100, "mem": 67108864}}]}
JSON
ctl mission submit "$WORK/run.json" >/dev/null || fail "submit"
t=$(wait_for 30 "both capsules running in mission status" status_is "run$$" \
    '.modules[0].running == 2 and ([.modules[0].capsules[] | .node] | unique) == ["'"$NODE"'"]') ||
    exit 1
echo "both capsules running on $NODE after $t ms"
for i in 0 1; do
    running_sleep "run$$/sleeper/$i" || fail "no single 'sleep 600' process for run$$/sleeper/$i"
done
ctl mission status "run$$" | grep -qE "^  run$$/sleeper/0 +running +$NODE" ||
    fail "human status: $(ctl mission status "run$$")"
ls "$WORK/capsules"/*.log >/dev/null 2>&1 || fail "no capsule log files in --capsule-log-dir"

# --- stop: placements revoked, processes gone
ctl mission stop "run$$" >/dev/null || fail "stop"
both_gone() { none_of "run$$/sleeper/0" && none_of "run$$/sleeper/1"; }
t=$(wait_for 30 "the capsules' processes gone" both_gone) || exit 1
ctl ledger get "placement/run$$/sleeper/0" >/dev/null 2>&1 && fail "placement not revoked"
echo "mission stopped: processes gone after $t ms"

# --- a command that does not exist: failed with a reason, retried with backoff
cat > "$WORK/bad.json" <<JSON
{"mission": "bad$$", "principal": "team-a",
 "modules": [{"name": "ghost", "command": ["/nonexistent/orbit-cmd"], "count": 1,
              "resources": {"cpu_m": 100, "mem": 67108864}}]}
JSON
ctl mission submit "$WORK/bad.json" >/dev/null || fail "submit bad"
failed_with_reason() { # keeps the status that satisfied it: the scheduler re-places meanwhile
    ctl --json mission status "bad$$" > "$WORK/bad-status.json" &&
        jq -e '.modules[0].capsules[0].state == "failed" and
               (.modules[0].capsules[0].reason | length > 0)' "$WORK/bad-status.json" >/dev/null
}
wait_for 30 "the capsule failed with a reason" failed_with_reason >/dev/null || exit 1
jq -r '.modules[0].capsules[0].reason' "$WORK/bad-status.json" > "$WORK/reason.txt"
grep -q "orbit-cmd" "$WORK/reason.txt" || fail "reason does not name the command: $(cat "$WORK/reason.txt")"
echo "failed as expected: $(cat "$WORK/reason.txt")"
# Over 8 s a hot loop would place it dozens of times; backoff (1, 2, 4 s)
# allows at most 5 placements.
p0=$(jq '.placed_total // .placed' "$WORK/sched.json")
sleep 8
p1=$(jq '.placed_total // .placed' "$WORK/sched.json")
[ $((p1 - p0)) -le 5 ] || fail "the failing capsule was placed $((p1 - p0)) times in 8 s"
jq -e '.backoffs > 0' "$WORK/sched.json" >/dev/null || fail "no backoff counted: $(cat "$WORK/sched.json")"
echo "failing capsule re-placed $((p1 - p0)) times in 8 s (backoff)"

# --- SIGTERM to the leaf: its capsules end with it
ctl mission submit "$WORK/run.json" >/dev/null || fail "submit again"
wait_for 30 "capsules running again" running_sleep "run$$/sleeper/1" >/dev/null || exit 1
stop leaf
none_of "run$$/sleeper/0" && none_of "run$$/sleeper/1" || fail "capsules outlived the leaf"
echo "leaf stopped: its capsules are gone"
echo "mission_run: ok"
