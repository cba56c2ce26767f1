#!/usr/bin/env bash
# topology_cli.sh: `orbitctl topology ...` against three orbit-root replicas
# on loopback (no shards or leaves: node counts are 0, so --wait finishes at
# once). Adds shards, shows the tree (--json through jq), moves racks, plans,
# and checks every refusal: an id that exists, removing a busy shard, a rack
# moved to a zone shard or an unknown shard, a shard its own parent, a stale
# epoch, and two changes fenced on the same epoch (exactly one commits).
# Every refusal exits non-zero with one line and leaves the epoch unchanged.
source "$(dirname "$0")/lib.sh"
ledger_cluster

epoch() { ctl --json topology show | jq -r '.epoch'; }
# refused WORD CMD...: CMD exits 1 with one line on stderr containing WORD,
# prints nothing on stdout, and the topology epoch does not move.
refused() {
    local word=$1; shift
    local before rc=0 out
    before=$(epoch)
    out=$(ctl "$@" 2>"$WORK/err.txt") || rc=$?
    [ $rc = 1 ] || fail "'$*' exited $rc, expected 1 (refusal); stderr: $(cat "$WORK/err.txt")"
    [ "$(wc -l <"$WORK/err.txt")" = 1 ] || fail "'$*': not one line: $(cat "$WORK/err.txt")"
    grep -q -- "$word" "$WORK/err.txt" || fail "'$*': no '$word' in: $(cat "$WORK/err.txt")"
    [ -z "$out" ] || fail "'$*' printed on stdout: $out"
    [ "$(epoch)" = "$before" ] || fail "'$*' was refused but moved the epoch"
    echo "refused as expected: $(cat "$WORK/err.txt")"
}
owner() { ctl --json topology show | jq -r --arg r "$1" '.shards[] | select(.racks | index($r)) | .id'; }

# Usage errors exit 2.
for args in "topology" "topology bogus" "topology add-shard" "topology add-shard x" \
    "topology add-shard x --tier 1" "topology move-rack r1" "topology plan" \
    "topology plan frobnicate x" "topology show extra" "topology remove-shard a b" \
    "topology move-rack r1 s --timeout-s 0" "topology add-shard x --tier 99 --endpoint e"; do
    rc=0
    # shellcheck disable=SC2086
    ctl $args >/dev/null 2>&1 || rc=$?
    [ $rc = 2 ] || fail "'orbitctl $args' exited $rc, expected 2 (usage)"
done

# An empty tree.
ctl --json topology show | jq -e '.shards == [] and .epoch == 0' >/dev/null ||
    fail "empty topology: $(ctl --json topology show)"

# add-shard: a zone shard and two rack shards under it.
ctl topology add-shard zone-a --tier 2 --endpoint tcp://127.0.0.1:7600 >/dev/null ||
    fail "add zone-a"
ctl --json topology add-shard rack-a --tier 1 --parent zone-a --endpoint tcp://127.0.0.1:7601 |
    jq -e '.joined and .shard == "rack-a" and .epoch > 0' >/dev/null || fail "add rack-a"
# Racks come into being when first moved.
for r in r1 r2 r3 r4 r5 r6 r7 r8; do
    ctl topology move-rack $r rack-a >/dev/null || fail "move-rack $r rack-a"
done
ctl --json topology show >"$WORK/show.json" || fail "show"
jq -e '.view and ([.shards[].id] == ["zone-a", "rack-a"]) and
    (.shards[1] | .tier == 1 and .parent == "zone-a" and .endpoint == "tcp://127.0.0.1:7601"
        and .racks == ["r1","r2","r3","r4","r5","r6","r7","r8"] and .nodes == 0
        and (.reachable | type) == "boolean" and has("last_report_ms_ago"))
    and (.shards[0] | .tier == 2 and .parent == null and .racks == [])' \
    "$WORK/show.json" >/dev/null || fail "show --json: $(cat "$WORK/show.json")"
ctl topology show >"$WORK/show.txt" || fail "show (human)"
grep -q "rack-a  tier 1" "$WORK/show.txt" && grep -q "racks: r1 r2" "$WORK/show.txt" ||
    fail "show (human): $(cat "$WORK/show.txt")"
echo "show: $(jq -c '[.epoch, [.shards[] | [.id, .tier, (.racks | length)]]]' "$WORK/show.json")"

# plan: a dry run changes nothing.
e0=$(epoch)
ctl --json topology plan move-rack r1 rack-a >"$WORK/plan.json" || fail "plan no-op move"
jq -e '.refused == false and .moves == [] and .epoch == '"$e0" "$WORK/plan.json" >/dev/null ||
    fail "plan of a no-op move: $(cat "$WORK/plan.json")"
ctl --json topology plan add-shard rack-b --tier 1 --parent zone-a >"$WORK/plan.json" ||
    fail "plan add-shard"
jq -e '.refused == false and .moves == [] and (.suggested | length) > 0 and
    ([.suggested[] | .from == "rack-a" and .to == "rack-b" and .nodes == 0] | all)' \
    "$WORK/plan.json" >/dev/null || fail "plan add-shard: $(cat "$WORK/plan.json")"
suggested=$(jq -c '[.suggested[].rack]' "$WORK/plan.json")
ctl topology plan add-shard rack-b --tier 1 --parent zone-a >"$WORK/plan.txt" || fail "plan (human)"
grep -q "suggested by rendezvous" "$WORK/plan.txt" || fail "plan (human): $(cat "$WORK/plan.txt")"
[ "$(epoch)" = "$e0" ] || fail "plan moved the epoch"
echo "plan add-shard rack-b: suggested $suggested"

# add-shard --take-racks moves exactly the suggested racks.
ctl --json topology add-shard rack-b --tier 1 --parent zone-a --endpoint tcp://127.0.0.1:7602 \
    --take-racks >"$WORK/add.json" || fail "add-shard --take-racks"
jq -e --argjson s "$suggested" '.racks_moved == ($s | length) and [.moved[].rack] == $s' \
    "$WORK/add.json" >/dev/null || fail "take-racks: $(cat "$WORK/add.json"), expected $suggested"
for r in $(echo "$suggested" | jq -r '.[]'); do
    [ "$(owner "$r")" = rack-b ] || fail "rack $r not moved to rack-b"
done
echo "add-shard rack-b --take-racks: $(jq -c '.racks_moved' "$WORK/add.json") racks moved"

# move-rack --wait: no nodes, so done at once; progress on stderr, JSON on stdout.
mv=$(ctl --json topology show | jq -r '.shards[] | select(.id == "rack-a") | .racks[0]')
ctl topology plan move-rack "$mv" rack-b | grep -q "move rack $mv .*rack-a -> rack-b" ||
    fail "plan move-rack (human)"
ctl --json topology move-rack "$mv" rack-b --wait --timeout-s 10 >"$WORK/mv.json" \
    2>"$WORK/mv.err" || fail "move-rack --wait: $(cat "$WORK/mv.err")"
jq -e --arg r "$mv" '.rack == $r and .from == "rack-a" and .to == "rack-b" and .changed and
    .rehomed.done and .rehomed.total == 0' "$WORK/mv.json" >/dev/null ||
    fail "move-rack --wait: $(cat "$WORK/mv.json")"
grep -q "re-homed 0/0" "$WORK/mv.err" || fail "no progress line: $(cat "$WORK/mv.err")"
[ "$(owner "$mv")" = rack-b ] || fail "$mv not on rack-b"
ctl topology move-rack "$mv" rack-b | grep -q "already owned by rack-b" || fail "repeated move"

# Refusals: each one line, exit 1, nothing changed.
refused shard_exists topology add-shard rack-a --tier 1 --parent zone-a --endpoint tcp://x:1
refused shard_exists topology plan add-shard rack-a --tier 1
refused "parent: zone-z missing" topology add-shard rack-c --tier 1 --parent zone-z --endpoint e
refused "parent: rack-a tier=1, want 2" topology add-shard rack-c --tier 1 --parent rack-a \
    --endpoint e
refused "own parent" topology add-shard loop --tier 1 --parent loop --endpoint e
refused "shard: zone-a tier=2, want 1" topology move-rack r2 zone-a
refused "shard: nowhere missing" topology move-rack r2 nowhere
refused "shard: nowhere missing" topology plan move-rack r2 nowhere
refused shard_busy topology remove-shard zone-a
refused shard_busy topology plan remove-shard zone-a
refused "no such shard" topology remove-shard nowhere
# Removing a busy rack shard without draining is refused by the ledger.
e=$(epoch)
cat >"$WORK/leave.json" <<JSON
{"commitment": {"topology": {"leave": {"shard": "rack-a"}}},
 "precondition": {"unchanged_since": [{"key": "topology", "index": $e}]}}
JSON
ctl --json ledger propose "$WORK/leave.json" 2>/dev/null | jq -e '.kind == "CONFLICT" and .which == "shard_busy"' \
    >/dev/null || fail "ledger accepted the leave of a shard that owns racks"

# A stale epoch: a change fenced on an epoch the tree has moved past.
stale=$((e - 1))
refused "topology changed since epoch $stale (now $e); re-run" \
    topology move-rack r2 rack-b --epoch "$stale"
# Two changes fenced on the same epoch, at once: exactly one commits.
e=$(epoch)
ctl topology move-rack r3 rack-a --epoch "$e" >"$WORK/c1.out" 2>"$WORK/c1.err" &
p1=$!
ctl topology move-rack r4 rack-b --epoch "$e" >"$WORK/c2.out" 2>"$WORK/c2.err" &
p2=$!
rc1=0 rc2=0
wait $p1 || rc1=$?
wait $p2 || rc2=$?
[ $((rc1 + rc2)) = 1 ] && [ $rc1 -le 1 ] && [ $rc2 -le 1 ] ||
    fail "concurrent changes on epoch $e: exits $rc1 and $rc2, expected one 0 and one 1"
cat "$WORK/c1.err" "$WORK/c2.err" | grep -q "topology changed since epoch $e (now" ||
    fail "loser's reason: $(cat "$WORK/c1.err" "$WORK/c2.err")"
[ "$(epoch)" -gt "$e" ] || fail "neither concurrent change committed"
echo "concurrent changes on epoch $e: exactly one committed"

# remove-shard drains: a shard with racks (no nodes) moves them to the other
# tier-1 shard and leaves in one call.
racks_a=$(ctl --json topology show | jq -c '.shards[] | select(.id == "rack-a") | .racks')
ctl --json topology remove-shard rack-a --wait --timeout-s 10 >"$WORK/rm.json" \
    2>"$WORK/rm.err" || fail "remove-shard rack-a: $(cat "$WORK/rm.err")"
jq -e --argjson r "$racks_a" '.removed and [.moved[].rack] == $r and ([.moved[].to] | unique) == ["rack-b"]' \
    "$WORK/rm.json" >/dev/null || fail "remove-shard rack-a: $(cat "$WORK/rm.json"), racks $racks_a"
ctl --json topology show | jq -e '([.shards[].id] == ["zone-a", "rack-b"]) and
    (.shards[1].racks | length) == 8' >/dev/null || fail "after remove: $(ctl --json topology show)"
echo "remove-shard rack-a drained $(jq -c '.racks_moved' "$WORK/rm.json") racks and left"

# The last tier-1 shard cannot be drained; an empty shard just leaves.
refused "no other tier-1 shard" topology remove-shard rack-b
ctl topology add-shard rack-e --tier 1 --parent zone-a --endpoint tcp://127.0.0.1:7609 >/dev/null ||
    fail "add rack-e"
ctl topology remove-shard rack-e >"$WORK/rm.txt" || fail "remove-shard of an empty shard"
grep -q "shard rack-e left" "$WORK/rm.txt" || fail "remove-shard (human): $(cat "$WORK/rm.txt")"
ctl --json topology show | jq -e '[.shards[].id] == ["zone-a", "rack-b"]' >/dev/null ||
    fail "rack-e still there"
echo "PASS topology_cli"
