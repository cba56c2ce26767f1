#!/usr/bin/env bash
# sched_reaper.sh: the reaper is a singleton elected with a Lease and fenced
# by it. Two orbit-sched instances (both campaigning for the reaper lease),
# one rack shard, two simulators (200 and 50 nodes) reporting their
# capsules. A mission of 150 capsules is placed; the 50-node simulator is
# killed, and the reaper holder is paused (SIGSTOP) after its nodes are
# down but before its grace period ends. The lease expires, the other
# instance acquires it (a higher epoch) and, after its own grace period,
# revokes the dead nodes' placements, which are placed again on live nodes.
# The paused instance is resumed past its grace period: what it then tries
# (both are started with --reap-unsafe-trust-lease, which skips its own check
# of the lease's age, so only the ledger's fencing stands between it and
# the fleet) is rejected by the ledger, and it revokes nothing.
source "$(dirname "$0")/lib.sh"
SCHED_BIN=$BIN/tools/orbit-sched
BENCH_BIN=$BIN/tools/orbit-bench
ledger_cluster
RACK_EP=tcp://127.0.0.1:$(free_port)
start rack "$SHARD_BIN" --id rack-r --listen "$RACK_EP" --upstream "$ROOT_EP" --interval-ms 300 \
    --down-missed 4
start sim-big "$SIM_BIN" --leaves 200 --shard "$RACK_EP" --prefix big --racks 2 --interval-ms 300 \
    --gpu-fraction 0 --reboots-per-hour 0 --ledger "$ROOT_EP" --stats-ms 0
start sim-small "$SIM_BIN" --leaves 50 --shard "$RACK_EP" --prefix small --racks 1 \
    --interval-ms 300 --gpu-fraction 0 --reboots-per-hour 0 --ledger "$ROOT_EP" --stats-ms 0
wait_for 40 "250 simulated nodes alive" summary_is '.nodes.alive == 250' >/dev/null || exit 1
ctl quota grant reap --cpu-m 100000000 --mem 1125899906842624 --gpus 0 >/dev/null || fail "quota"
# sched-a starts first and becomes the reaper with a short grace period;
# sched-b, the one that takes over, has a long one, so that the resumed
# sched-a acts (with its old lease) before sched-b would.
sched() { # NAME GRACE_MS
    start "$1" "$SCHED_BIN" --root "$ROOT_EP" --name "$1" --workers 2 --interval-ms 100 \
        --refresh-ms 300 --lease-ttl-ms 1500 --reap-grace-ms "$2" --reap-max-down-pct 50 \
        --reap-rate 100 --reap-unsafe-trust-lease --stats-file "$WORK/$1.json" --stats-every-ms 200
}
holder_is() {
    "$CTL_BIN" --root "$ROOT_EP" --json ledger get lease/reaper 2>/dev/null |
        jq -e ".value.holder == \"$1\"" >/dev/null
}
sched sched-a 3000
wait_for 20 "sched-a elected reaper" holder_is sched-a >/dev/null || exit 1
sched sched-b 8000
cat > "$WORK/m.json" <<'JSON'
{"mission": "reap", "principal": "reap", "modules": [
  {"name": "web", "command": ["sleep", "600"], "count": 150,
   "resources": {"cpu_m": 2000, "mem": 1073741824}}]}
JSON
ctl mission submit "$WORK/m.json" >/dev/null || fail "submit"
check() { "$BENCH_BIN" check --root "$ROOT_EP" --json > "$WORK/check.json" 2>&1; }
check_is() { check; jq -e "$1" "$WORK/check.json" >/dev/null; }
wait_for 60 "150 capsules placed" check_is '.placements == 150 and .modules_at_count == 1' \
    >/dev/null || fail "$(cat "$WORK/check.json")"
lease() { ctl --json ledger get lease/reaper | jq -r ".value.$1"; }
HOLDER=sched-a OTHER=sched-b EPOCH=$(lease epoch)
# Counted in the ledger, not in the root view: a leaf reports a capsule an
# interval or two after its placement commits.
on_small=$(ctl --json mission status reap | jq '[.. | objects | select(.capsule? and (.node? // "" | startswith("small-")))] | length')
[ "$on_small" -gt 0 ] || fail "nothing placed on the small simulator's nodes"
echo "reaper: $HOLDER (epoch $EPOCH); $on_small capsules on the nodes about to die"

stop sim-small KILL
wait_for 20 "the reaper seeing the 50 nodes down (its grace running)" \
    jq -e '.reaper.down == 50' "$WORK/$HOLDER.json" >/dev/null || exit 1
kill -STOP "${PIDS[$HOLDER]}"
t=$(wait_for 20 "$OTHER holding the lease" holder_is "$OTHER") || exit 1
EPOCH2=$(lease epoch)
[ "$EPOCH2" -gt "$EPOCH" ] || fail "epoch did not grow: $EPOCH -> $EPOCH2"
echo "$OTHER took the lease (epoch $EPOCH2) $t ms after $HOLDER was paused"
# Resume the paused holder past its own grace period (3 s from seeing the
# nodes down, before the pause) and well before the new holder's (8 s from
# its acquisition): it acts first, with its old lease.
sleep 3
kill -CONT "${PIDS[$HOLDER]}"
t=$(wait_for 30 "the dead nodes' capsules placed again" \
    check_is '.on_down == 0 and .placements == 150 and .modules_at_count == 1 and .ok') ||
    fail "$(cat "$WORK/check.json")"
echo "rescheduled $t ms after the holder resumed"
sleep 1 # one more stats write from both
jq -e '.reaped == 0 and .fenced >= 1' "$WORK/$HOLDER.json" >/dev/null ||
    fail "the paused holder was not fenced: $(cat "$WORK/$HOLDER.json")"
jq -e ".reaped >= $on_small" "$WORK/$OTHER.json" >/dev/null ||
    fail "the new holder did not reap: $(cat "$WORK/$OTHER.json")"
echo "paused holder: $(jq -c '{reaped, fenced}' "$WORK/$HOLDER.json"); new holder: $(jq -c '{reaped, fenced}' "$WORK/$OTHER.json")"
echo "sched_reaper: ok"
