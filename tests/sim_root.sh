#!/usr/bin/env bash
# sim_root.sh: orbit-sim --root against 3 root replicas and 2 rack shards
# declared in the ledger's topology (shards in discovery mode, --root).
# A real orbit-leaf --root --label rack=sr-r2 runs beside it.
# Checks: every leaf finds its rack's shard from root endpoints alone; moving
# one rack re-homes exactly that rack's link (re-homes == 1), the others keep
# their sockets, and no leaf restarts (the sim process is the same, no
# resync storm); killing a shard makes its racks fail over to the other one,
# and they return once it is back.
source "$(dirname "$0")/lib.sh"
ledger_cluster

A_EP=tcp://127.0.0.1:$(free_port)
B_EP=tcp://127.0.0.1:$(free_port)
propose() { # propose JSON
    echo "$1" > "$WORK/p.json"
    ctl ledger propose "$WORK/p.json" >>"$WORK/propose.out" 2>&1 || fail "propose $1"
}
propose '{"commitment":{"topology":{"join":{"shard":"rack-a","tier":1,"endpoint":"'"$A_EP"'"}}}}'
propose '{"commitment":{"topology":{"join":{"shard":"rack-b","tier":1,"endpoint":"'"$B_EP"'"}}}}'
for r in 0 1; do propose '{"commitment":{"topology":{"move":{"rack":"sr-r'$r'","shard":"rack-a"}}}}'; done
for r in 2 3; do propose '{"commitment":{"topology":{"move":{"rack":"sr-r'$r'","shard":"rack-b"}}}}'; done
# The shards, the simulator and the leaf read the topology from any replica
# (stale reads): a follower still holding these entries would show them an
# older topology, and the re-home that follows is not what is tested here.
wait_for 10 "every replica applied the topology" replicas_applied >/dev/null || exit 1

start rack-a "$SHARD_BIN" --id rack-a --root "$ROOT_EP" --interval-ms 200
start rack-b "$SHARD_BIN" --id rack-b --root "$ROOT_EP" --interval-ms 200
start sim "$SIM_BIN" --leaves 80 --racks 4 --prefix sr --interval-ms 200 --stats-ms 500 \
    --reboots-per-hour 0 --gpu-events-per-hour 0 --root "$ROOT_EP"
start leaf "$LEAF_BIN" --node real-1 --root "$ROOT_EP" --label rack=sr-r2 --interval-ms 200 \
    --nvml-lib /nonexistent.so

ms=$(wait_for 30 "81 leaves alive" summary_is '.nodes.alive == 81') || exit 1
echo "81 leaves alive at the root after ${ms} ms, found through the topology"
grep -q "rack sr-r2 is served by $B_EP" "$WORK/leaf.log" || fail "the leaf did not find rack-b"

# last stats field of the sim's latest topology line
sim_stat() { grep "topology epoch" "$WORK/sim.log" | tail -n 1 | sed -n "s/.* \([0-9]*\) $1.*/\1/p"; }
wait_for 5 "a topology stats line" grep -q " re-homes," "$WORK/sim.log" >/dev/null || exit 1
[ "$(sim_stat re-homes)" = 0 ] || fail "re-homes before any change: $(sim_stat re-homes)"

# Move rack sr-r0 from rack-a to rack-b: exactly one rack link re-homes.
propose '{"commitment":{"topology":{"move":{"rack":"sr-r0","shard":"rack-b"}}}}'
rehomed() { [ "$(sim_stat re-homes)" = 1 ]; }
ms=$(wait_for 20 "one rack link re-homed" rehomed) || exit 1
echo "sr-r0 re-homed ${ms} ms after the move"
grep -q "rack sr-r0: $A_EP re-homed by the topology, now $B_EP" "$WORK/sim.log" ||
    fail "no re-home line for sr-r0"
grep "re-homed by the topology" "$WORK/sim.log" | grep -qv "rack sr-r0:" &&
    fail "another rack re-homed: $(grep 're-homed by the topology' "$WORK/sim.log")"
sleep 1
[ "$(sim_stat re-homes)" = 1 ] || fail "more re-homes later: $(sim_stat re-homes)"
grep -q "re-homed" "$WORK/leaf.log" && fail "the leaf of sr-r2 re-homed: $(grep re-homed "$WORK/leaf.log")"
wait_for 10 "81 leaves alive after the move" summary_is '.nodes.alive == 81' >/dev/null || exit 1

# Move sr-r2 (the real leaf's rack) to rack-a: the leaf re-homes, same process.
propose '{"commitment":{"topology":{"move":{"rack":"sr-r2","shard":"rack-a"}}}}'
leaf_moved() { grep -q "rack sr-r2 re-homed from $B_EP to $A_EP" "$WORK/leaf.log"; }
ms=$(wait_for 20 "the leaf re-homed" leaf_moved) || exit 1
echo "the real leaf re-homed ${ms} ms after its rack moved"
kill -0 "${PIDS[leaf]}" || fail "the leaf exited"
wait_for 10 "sr-r2 re-homed in the sim too" eval '[ "$(sim_stat re-homes)" = 2 ]' >/dev/null || exit 1

# Kill rack-a (owner of sr-r1, and now of sr-r2): both fail over to rack-b,
# each when its own link finds rack-a silent; sr-r1 returns later.
stop rack-a KILL
failed_over() { grep -q "rack sr-r1: $A_EP is silent, now $B_EP" "$WORK/sim.log"; }
ms=$(wait_for 20 "sr-r1 failed over" failed_over) || exit 1
echo "sr-r1 failed over ${ms} ms after rack-a died"
wait_for 5 "the failovers counted in the sim's stats" eval '[ "$(sim_stat failovers)" -ge 1 ]' \
    >/dev/null || exit 1
start rack-a2 "$SHARD_BIN" --id rack-a --root "$ROOT_EP" --interval-ms 200
returned() { grep -q "rack sr-r1: $B_EP is not the preferred one, now $A_EP" "$WORK/sim.log"; }
ms=$(wait_for 30 "sr-r1 back on rack-a" returned) || exit 1
echo "sr-r1 returned to rack-a ${ms} ms after it restarted"
wait_for 20 "81 leaves alive at the end" summary_is '.nodes.alive == 81' >/dev/null || exit 1

stop sim
grep -q "sim: 80 leaves" "$WORK/sim.log" || fail "no final stats line"
echo "PASS"
