#!/usr/bin/env bash
# sched_fleet.sh: four orbit-sched instances against one ledger and 2,000
# simulated nodes (four orbit-sim processes of 500, two per rack shard, each
# reporting the capsules placed on its nodes as running).
# 1. Missions of 1,632 capsules (gang modules among them) -> every module at
#    its count, every capsule reported running, and the invariant check
#    (orbit-bench check) finds no node over capacity, no identity bound
#    twice, no broken gang.
# 2. Kill one simulator (a rack's leaves): its nodes go down, and after the
#    reaper's grace period their capsules are revoked and placed elsewhere.
# 3. Kill a whole rack shard: its nodes become unreachable (not down) and
#    nothing is revoked from them.
source "$(dirname "$0")/lib.sh"
SCHED_BIN=$BIN/tools/orbit-sched
BENCH_BIN=$BIN/tools/orbit-bench
ledger_cluster
declare -A EP
for s in rack-a rack-b; do
    EP[$s]=tcp://127.0.0.1:$(free_port)
    start "$s" "$SHARD_BIN" --id "$s" --listen "${EP[$s]}" --upstream "$ROOT_EP" \
        --interval-ms 500 --down-missed 4
done
sim() { # NAME SHARD
    start "sim-$1" "$SIM_BIN" --leaves 500 --shard "${EP[$2]}" --prefix "$1" --racks 5 \
        --interval-ms 500 --gpu-fraction 0.25 --seed 7 --reboots-per-hour 0 \
        --gpu-events-per-hour 0 --ledger "$ROOT_EP" --stats-ms 0
}
sim fa rack-a; sim fb rack-a; sim fc rack-b; sim fd rack-b
wait_for 60 "2000 simulated nodes alive" summary_is '.nodes.alive == 2000' >/dev/null || exit 1
ctl quota grant fleet --cpu-m 100000000 --mem 1125899906842624 --gpus 64 >/dev/null ||
    fail "quota grant"
for i in 1 2 3 4; do
    start "sched$i" "$SCHED_BIN" --root "$ROOT_EP" --name "sched$i" --workers 4 \
        --interval-ms 100 --refresh-ms 500 --reap-grace-ms 4000 --reap-rate 200 \
        --reap-max-down-pct 60 --lease-ttl-ms 2000 --stats-file "$WORK/sched$i.json" \
        --stats-every-ms 250
done

# Missions: 4 of 400 plain capsules (in modules of 100 and 300), and 4 gang
# modules of 8 one-GPU capsules.
for m in 1 2 3 4; do
    cat > "$WORK/m$m.json" <<JSON
{"mission": "fleet$m", "principal": "fleet", "modules": [
  {"name": "web", "command": ["sleep", "600"], "count": 100,
   "resources": {"cpu_m": 500, "mem": 268435456}},
  {"name": "batch", "command": ["sleep", "600"], "count": 300, "priority": 5,
   "resources": {"cpu_m": 1000, "mem": 536870912}},
  {"name": "train", "command": ["sleep", "600"], "count": 8, "gang": true, "priority": 10,
   "resources": {"cpu_m": 1000, "mem": 1073741824, "gpus": 1}}]}
JSON
    ctl mission submit "$WORK/m$m.json" >/dev/null || fail "submit m$m"
done
TOTAL=1632
check() { "$BENCH_BIN" check --root "$ROOT_EP" --json > "$WORK/check.json" 2>&1; }
check_is() { check; jq -e "$1" "$WORK/check.json" >/dev/null; }
running() { # N: exactly N capsules reported running by alive nodes
    ctl --json view capsules > "$WORK/caps.json" 2>/dev/null &&
        jq -e "[.capsules[] | select(.node_status == \"alive\" and .state == \"running\")] |
               length == $1" "$WORK/caps.json" >/dev/null
}
t=$(wait_for 90 "every module at its count" \
    check_is ".modules == 12 and .modules_at_count == 12 and .placements == $TOTAL") ||
    fail "not all placed: $(cat "$WORK/check.json")"
echo "all $TOTAL capsules placed by 4 schedulers in $t ms"
check_is '.ok and .over_capacity == 0 and .identity_twice == 0 and .gangs == 4 and
    .gangs_broken == 0 and .identities == '$TOTAL || fail "invariants: $(cat "$WORK/check.json")"
wait_for 30 "every capsule reported running" running $TOTAL >/dev/null || exit 1
conflicts=$(jq -s '[.[].conflicts | if type == "object" then ([.[]] | add // 0) else . end] | add' \
    "$WORK"/sched?.json)
echo "invariants hold: $(jq -c '{placements, identities, gangs, over_capacity, identity_twice,
    gangs_broken}' "$WORK/check.json"); conflicts between schedulers: $conflicts"

# --- 2. a rack's leaves die: rescheduled after the grace period
before=$(check; jq '.on_alive' "$WORK/check.json")
on_fd=$(jq -r '[.capsules[] | select(.node | startswith("fd-"))] | length' "$WORK/caps.json")
[ "$on_fd" -gt 0 ] || fail "nothing placed on fd's nodes to begin with"
stop sim-fd KILL
wait_for 30 "fd's nodes down, still holding placements" check_is '.on_down > 0' \
    >/dev/null || fail "$(cat "$WORK/check.json")"
t=$(wait_for 60 "fd's $on_fd capsules rescheduled on alive nodes" \
    check_is ".on_down == 0 and .on_unreachable == 0 and .placements == $TOTAL and
              .modules_at_count == 12 and .ok") || fail "$(cat "$WORK/check.json")"
echo "$on_fd capsules of the dead simulator rescheduled $t ms after its nodes were down"
wait_for 30 "every capsule running again" running $TOTAL >/dev/null || exit 1
sleep 0.5 # the schedulers' stats files are written every 250 ms
reaped=$(jq -s '[.[].reaped // 0] | add' "$WORK"/sched?.json)
# (a gang is revoked whole: one revocation for its members)
[ "$reaped" -gt 0 ] || fail "the reaper counted no revocation for $on_fd capsules"

# --- 3. a whole shard dies: its nodes are unreachable, nothing is revoked
stop rack-b KILL
wait_for 30 "rack-b's nodes unreachable" summary_is '.nodes.unreachable >= 1000' >/dev/null ||
    exit 1
check
on_unreach=$(jq '.on_unreachable' "$WORK/check.json")
[ "$on_unreach" -gt 0 ] || fail "no placements on unreachable nodes: $(cat "$WORK/check.json")"
sleep 9 # more than twice the reaper's grace period
check_is ".on_unreachable == $on_unreach and .placements == $TOTAL" ||
    fail "placements on unreachable nodes were revoked: $(cat "$WORK/check.json")"
reaped2=$(jq -s '[.[].reaped // 0] | add' "$WORK"/sched?.json)
[ "$reaped2" = "$reaped" ] || fail "the reaper revoked $((reaped2 - reaped)) more after the shard died"
echo "shard killed: $on_unreach placements on unreachable nodes, none revoked"
echo "sched_fleet: ok"
