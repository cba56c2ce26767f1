#!/usr/bin/env bash
# sim_integration.sh: orbit-sim --leaves 2000 against a real orbit-shard and
# orbit-root on loopback, with heavy churn (reboots, GPU events). Checks at
# the root that every leaf is alive and that the capacity totals are exactly
# those of the simulator's model (orbit-sim --print-totals), still so after
# several intervals of deltas and reboots; that racks and zone arrive as
# labels; that the shard saw reboots but no invalid, gapped or duplicate
# message; that the simulator got no verdict but OK; and that SIGTERM ends
# it with status 0.
source "$(dirname "$0")/lib.sh"
ROOT_EP=tcp://127.0.0.1:$(free_port)
RACK_EP=tcp://127.0.0.1:$(free_port)
SIM=(--leaves 2000 --prefix it --racks 50 --zone z-it --seed 7 --interval-ms 500
     --reboots-per-hour 36 --gpu-events-per-hour 360)

"$SIM_BIN" "${SIM[@]}" --print-totals > "$WORK/totals.json" || fail "orbit-sim --print-totals"
jq -e '.nodes == 2000 and .gpu_capacity > 0' "$WORK/totals.json" >/dev/null ||
    fail "bad totals: $(cat "$WORK/totals.json")"

start root "$ROOT_BIN" --listen "$ROOT_EP"
start rack "$SHARD_BIN" --id rack-it --listen "$RACK_EP" --upstream "$ROOT_EP" --interval-ms 500
start sim "$SIM_BIN" "${SIM[@]}" --shard "$RACK_EP" --full-every 10 --stats-ms 1000

# exact: the summary's totals equal the model's, every GPU counted once.
exact() {
    ctl --json view summary > "$WORK/summary.json" || return 1
    jq -e --slurpfile t "$WORK/totals.json" '
        .nodes.total == 2000 and .nodes.alive == 2000 and
        .cpu.capacity_m == $t[0].cpu_capacity_m and
        .memory.capacity == $t[0].mem_capacity and
        .gpus.capacity == $t[0].gpu_capacity and
        .gpus.healthy + .gpus.degraded + .gpus.failed == $t[0].gpu_capacity and
        .cpu.used_m > 0 and .cpu.used_m < .cpu.capacity_m and
        .memory.used > 0 and .memory.used < .memory.capacity' "$WORK/summary.json" >/dev/null
}

ms=$(wait_for 30 "2000 leaves alive with exact totals" exact) || exit 1
echo "2000 leaves alive at the root with exact totals after ${ms} ms"

# Several intervals of deltas, reboots and GPU events later: still exact,
# and GPU health events are visible at the root.
sleep 3
exact || fail "totals drifted: $(cat "$WORK/summary.json")"
wait_for 10 "a GPU event visible at the root" \
    summary_is '.gpus.degraded + .gpus.failed > 0' >/dev/null || exit 1

# Labels: rack k of the 50 holds 40 leaves; every leaf is in zone z-it.
[ "$(ctl --json view nodes --label rack=it-r7 | jq '.matched')" = 40 ] ||
    fail "rack it-r7 should hold 40 leaves"
[ "$(ctl --json view nodes --label zone=z-it --limit 1 | jq '.matched')" = 2000 ] ||
    fail "zone z-it should hold 2000 leaves"

# The shard applied reboots and saw nothing wrong.
ctl --json view shards > "$WORK/shards.json" || fail "view shards"
jq -e '.shards[] | select(.id == "rack-it") | .counters |
       .reboots > 0 and .invalid == 0 and .gaps == 0 and .duplicates == 0 and
       .stale_incarnations == 0 and .shed == 0' "$WORK/shards.json" >/dev/null ||
    fail "rack-it counters: $(jq -c '.shards[] | select(.id == "rack-it") | .counters' \
        "$WORK/shards.json")"

# SIGTERM: exit status 0, and the simulator's last stats line is clean.
pid=${PIDS[sim]}
kill -TERM "$pid"
wait "$pid"
rc=$?
unset "PIDS[sim]"
[ "$rc" = 0 ] || fail "orbit-sim exited $rc on SIGTERM"
last=$(grep 'sim: 2000 leaves' "$WORK/sim.log" | tail -n 1)
echo "$last"
echo "$last" | grep -q ' overloaded 0 resync 0 rejected 0 ' || fail "unexpected verdicts: $last"
echo "$last" | grep -q ' reboots [1-9]' || fail "no reboots simulated: $last"
echo "PASS"
