#!/usr/bin/env bash
# exec_leaf.sh: orbit-leaf runs the capsules the ledger places on its node,
# with commitments proposed by hand (no scheduler). Three root replicas, one
# rack shard declared in the topology, one orbit-leaf --root (plain
# processes, capsule logs in a directory).
# - a module {command ["sleep","300"]} and a placement of M/web/0 on the
#   leaf's node -> a `sleep 300` process with ORBIT_CAPSULE_ID=M/web/0 in its
#   environment, and the capsule running in the root view;
# - a placement on node <node>0 (same prefix) is not run here;
# - a module whose command exits -> exited 0, its output in the log dir;
# - revoking the placement -> the process is gone;
# - a module with command ["/nonexistent/cmd"], and a capsule whose module
#   does not exist -> failed with the reason in the root view, no process;
# - the leaf paused while the history it watches is compacted -> it reads
#   the node's placements again and follows them, restarting nothing;
# - SIGTERM to the leaf -> its capsules are gone with it.
source "$(dirname "$0")/lib.sh"
ledger_cluster --history-keep 3
RACK_EP=tcp://127.0.0.1:$(free_port)
ctl topology add-shard rack-1 --tier 1 --endpoint "$RACK_EP" >/dev/null || fail "add-shard"
ctl topology move-rack r1 rack-1 >/dev/null || fail "move-rack"
start rack "$SHARD_BIN" --id rack-1 --root "$ROOT_EP" --interval-ms 300
NODE=exec-$$
M=el$$ # a mission name no other test uses, so the process scan finds only ours
mkdir -p "$WORK/capsules"
start leaf "$LEAF_BIN" --node "$NODE" --root "$ROOT_EP" --label rack=r1 --interval-ms 300 \
    --no-cgroups --capsule-log-dir "$WORK/capsules" --stop-grace-ms 1000 \
    --nvml-lib /nonexistent/libnvidia-ml.so.1
wait_for 30 "the leaf alive in the root view" summary_is '.nodes.alive == 1' >/dev/null || exit 1

propose() { # propose JSON
    echo "$1" >"$WORK/p.json"
    ctl ledger propose "$WORK/p.json" >>"$WORK/propose.out" 2>&1 || fail "propose $1"
}
module() { # module NAME ARGV_JSON
    local cmd
    cmd=$(jq -cn --argjson a "$2" '$a | tojson')
    propose '{"commitment":{"module_adjustment":{"mission":"'"$M"'","module":"'"$1"'",
             "adjustment":{"count":1,"command":'"$cmd"'}}}}'
}
place() { # place CAPSULE NODE
    propose '{"commitment":{"placement":{"capsule":"'"$1"'","node":"'"$2"'",
             "envelope":{"cpu_m":100,"mem":104857600}}}}'
}
revoke() { propose '{"commitment":{"revocation":{"what":{"kind":"REF_PLACEMENT","key":"'"$1"'"}}}}'; }

# pids_of CAPSULE: pids of processes whose environment names the capsule.
pids_of() {
    local f pid
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qx "ORBIT_CAPSULE_ID=$1" && echo "$pid"
    done
}
running_sleep() { # CAPSULE: exactly one process for it, and it is `sleep 300`
    local p
    p=$(pids_of "$1")
    [ "$(echo "$p" | grep -c .)" = 1 ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qx 'sleep 300 '
}
none_of() { [ -z "$(pids_of "$1")" ]; }
# capsule_is CAPSULE JQ_FILTER: the capsule's health in the root view satisfies the filter.
capsule_is() {
    ctl --json view node "$NODE" |
        jq -e --arg id "$1" "[.state.capsules[]? | select(.id == \$id)] | .[0] | $2"
}
absent_in_view() {
    ctl --json view node "$NODE" | jq -e --arg id "$1" '.state != null and
        ([.state.capsules[]? | select(.id == $id)] | length == 0)'
}

# A running capsule.
module web '["sleep","300"]'
place "$M/web/0" "$NODE"
ms=$(wait_for 20 "a sleep 300 process for $M/web/0" running_sleep "$M/web/0") || exit 1
echo "$M/web/0 runs as pid $(pids_of "$M/web/0") ${ms} ms after its placement"
wait_for 10 "$M/web/0 running in the root view" capsule_is "$M/web/0" \
    '.state == "running" and .since_ms > 0' >/dev/null || exit 1

# Another node whose name starts with this one's: not ours. The placement
# after it is applied later, so once that one runs the first was seen.
place "$M/web/1" "${NODE}0"
place "$M/web/2" "$NODE"
wait_for 20 "a sleep 300 process for $M/web/2" running_sleep "$M/web/2" >/dev/null || exit 1
none_of "$M/web/1" || fail "the leaf runs $M/web/1, placed on ${NODE}0"

# A capsule that exits by itself, its output in the log directory.
module hello '["sh","-c","echo hello from $ORBIT_CAPSULE_ID"]'
place "$M/hello/0" "$NODE"
wait_for 20 "$M/hello/0 exited 0" capsule_is "$M/hello/0" \
    '.state == "exited" and .exit_code == 0' >/dev/null || exit 1
grep -qx "hello from $M/hello/0" "$WORK/capsules/$M+hello+0.log" ||
    fail "no output in $WORK/capsules/$M+hello+0.log: $(ls "$WORK/capsules")"
sleep 1
capsule_is "$M/hello/0" '.state == "exited"' >/dev/null || fail "$M/hello/0 was restarted"
echo "$M/hello/0 exited 0 and stays exited; its output is in the log directory"

# Revocation: the process is gone, the capsule leaves the view.
revoke "$M/web/0"
ms=$(wait_for 20 "$M/web/0 stopped" none_of "$M/web/0") || exit 1
echo "$M/web/0 stopped ${ms} ms after its revocation"
wait_for 10 "$M/web/0 gone from the root view" absent_in_view "$M/web/0" >/dev/null || exit 1
running_sleep "$M/web/2" || fail "$M/web/2 stopped with $M/web/0"

# A command that does not exist, and a module that does not exist.
module bad '["/nonexistent/cmd"]'
place "$M/bad/0" "$NODE"
place "$M/nomodule/0" "$NODE"
wait_for 20 "$M/bad/0 failed with a reason" capsule_is "$M/bad/0" \
    '.state == "failed" and (.reason | test("/nonexistent/cmd"))' >/dev/null || exit 1
wait_for 20 "$M/nomodule/0 failed with a reason" capsule_is "$M/nomodule/0" \
    '.state == "failed" and (.reason | test("not in the ledger"))' >/dev/null || exit 1
none_of "$M/bad/0" && none_of "$M/nomodule/0" || fail "a failed capsule has a process"
ctl --json view node "$NODE" | jq -c '.state.capsules[] | {id, state, reason}'

# Compaction: the leaf is paused while a placement, a revocation and filler
# commitments go by and the replicas forget that history (--history-keep
# 3). Resumed, its watch finds the history compacted, it reads the node's
# placements again, and follows them; what still runs keeps running.
web2=$(pids_of "$M/web/2")
kill -STOP "${PIDS[leaf]}"
place "$M/web/3" "$NODE"
idx=$(tail -n 1 "$WORK/propose.out" | sed -n 's/.*ledger index \([0-9]*\).*/\1/p')
[ -n "$idx" ] || fail "no ledger index in: $(tail -n 1 "$WORK/propose.out")"
revoke "$M/hello/0"
for i in 1 2 3 4 5 6 7 8; do
    propose '{"commitment":{"quota_grant":{"principal":"filler-'"$i"'","resources":{"cpu_m":1}}}}'
done
compacted() { ctl --json ledger watch --from "$idx" --stale | grep -q '"compacted"'; }
wait_for 10 "history up to $idx compacted" compacted >/dev/null || { kill -CONT "${PIDS[leaf]}"; exit 1; }
sleep 0.6 # every replica compacts on its own tick (250 ms)
kill -CONT "${PIDS[leaf]}"
ms=$(wait_for 20 "$M/web/3 running after the compaction" running_sleep "$M/web/3") || exit 1
echo "after a compacted history the leaf found $M/web/3 in ${ms} ms"
grep -q "is compacted; reading the node's placements again" "$WORK/leaf.log" ||
    fail "the leaf did not see the compaction"
wait_for 10 "$M/hello/0 gone from the root view" absent_in_view "$M/hello/0" >/dev/null || exit 1
[ "$(pids_of "$M/web/2")" = "$web2" ] || fail "$M/web/2 was restarted by the new listing"
capsule_is "$M/bad/0" '.state == "failed"' >/dev/null || fail "$M/bad/0 changed"
[ "$(grep -c "hello from" "$WORK/capsules/$M+hello+0.log")" = 1 ] || fail "$M/hello/0 ran twice"

# SIGTERM: the leaf stops its capsules before it exits.
pid=$(pids_of "$M/web/2")
kill -TERM "${PIDS[leaf]}"
t0=$(date +%s)
wait "${PIDS[leaf]}"
rc=$?
unset "PIDS[leaf]"
[ "$rc" = 0 ] || fail "the leaf exited $rc after SIGTERM"
none_of "$M/web/2" || fail "$M/web/2 (pid $pid) outlived the leaf"
grep -q "stopping [0-9]* capsule(s)" "$WORK/leaf.log" || fail "no 'stopping' line in the leaf's log"
echo "SIGTERM: the leaf exited 0 after $(($(date +%s) - t0)) s and its capsules are gone"
echo "PASS"
