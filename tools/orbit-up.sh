#!/usr/bin/env bash
# orbit-up.sh [up|down|reset|status|restart NAME|shard ID]: the local constellation. "up" (the default)
# installs dependencies, builds Orbit, writes the embedded default
# configuration to .orbit/etc and starts: three root replicas (the Ephemeris
# ledger over Raft, data in .orbit/data, and each a warm root view), a zone shard,
# three rack shards, 3,000 simulated leaves and one real leaf for this
# machine (which runs the capsules placed on it), and two schedulers (one of
# them the elected reaper), all on 127.0.0.1. Logs and pids live in .orbit/.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
STATE=$TOP/.orbit
BUILD=$TOP/build

stop_all() {
    [ -d "$STATE/run" ] || return 0
    for f in "$STATE"/run/*.pid; do
        [ -f "$f" ] || continue
        kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    for f in "$STATE"/run/*.pid; do
        [ -f "$f" ] || continue
        for _ in $(seq 1 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

launch() { # launch NAME BINARY ARGS...: start in the background, remember how
    local name=$1; shift
    printf '%q ' "$@" > "$STATE/run/$name.cmd"
    nohup "$@" >>"$STATE/log/$name.log" 2>&1 &
    echo $! > "$STATE/run/$name.pid"
}

case "${1:-up}" in
down) stop_all; echo "orbit: constellation stopped"; exit 0 ;;
reset)
    stop_all
    rm -rf "$STATE/data" "$STATE/capsules"
    echo "orbit: constellation stopped, its ledger data deleted (.orbit/data)"; exit 0 ;;
status) exec "$BUILD/tools/orbitctl" view shards ;;
restart)
    name=${2:?usage: $0 restart NAME (e.g. rack-2)}
    [ -f "$STATE/run/$name.cmd" ] || { echo "orbit: no component '$name'" >&2; exit 2; }
    [ -f "$STATE/run/$name.pid" ] && kill -TERM "$(cat "$STATE/run/$name.pid")" 2>/dev/null || true
    sleep 0.5
    eval "launch $name $(cat "$STATE/run/$name.cmd")"
    echo "orbit: $name restarted (pid $(cat "$STATE/run/$name.pid"))"
    exit 0 ;;
shard)
    # Start one more shard for a tree grown with `orbitctl topology add-shard`:
    # it reads its tier, parent and endpoint from the ledger.
    name=${2:?usage: $0 shard ID (declared first with orbitctl topology add-shard)}
    printf 'shard\n    id = %s\n    root = %s\n    interval-ms = 1000\n' "$name" \
        tcp://127.0.0.1:7400,tcp://127.0.0.1:7401,tcp://127.0.0.1:7402 > "$STATE/etc/$name.cfg"
    launch "$name" "$BUILD/shard/orbit-shard" --config "$STATE/etc/$name.cfg"
    echo "orbit: shard $name started (pid $(cat "$STATE/run/$name.pid"), log .orbit/log/$name.log)"
    exit 0 ;;
up) ;;
*) echo "usage: $0 [up|down|reset|status|restart NAME|shard ID]" >&2; exit 2 ;;
esac

source tools/deps.sh
orbit_install_deps
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DORBIT_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
stop_all
mkdir -p "$STATE/etc" "$STATE/log" "$STATE/run" "$STATE/data" "$STATE/capsules"

# ---- embedded default configuration (czmq ZPL) ---------------------------
ROOTS=tcp://127.0.0.1:7400,tcp://127.0.0.1:7401,tcp://127.0.0.1:7402
for i in 1 2 3; do
    cat > "$STATE/etc/root-$i.cfg" <<CFG
root
    id = $i
    listen = tcp://127.0.0.1:740$((i - 1))
    data = $STATE/data/root-$i
    raft = 127.0.0.1:760$i
    peers = 1=127.0.0.1:7601,2=127.0.0.1:7602,3=127.0.0.1:7603
    cluster = orbit-local
CFG
done
# Shards and leaves know only the root replicas: the tree itself (which
# shards exist, their tiers, parents and endpoints, which racks each rack
# shard owns) is declared in the ledger below and read from it.
for s in zone-local rack-1 rack-2 rack-3; do
    cat > "$STATE/etc/$s.cfg" <<CFG
shard
    id = $s
    root = $ROOTS
    interval-ms = 1000
CFG
done
cat > "$STATE/etc/sim.cfg" <<CFG
sim
    leaves = 3000
    root = $ROOTS
    interval-ms = 1000
    prefix = sim
    racks = 3
    zone = local
    ledger = $ROOTS
CFG
cat > "$STATE/etc/leaf.cfg" <<CFG
leaf
    root = $ROOTS
    interval-ms = 1000
    capsule-log-dir = $STATE/capsules
    label
        rack = local
        zone = local
CFG
for i in 1 2; do
    cat > "$STATE/etc/sched-$i.cfg" <<CFG
sched
    root = $ROOTS
    name = sched-$i
CFG
done

rm -f "$STATE"/log/*.log "$STATE"/run/*.cmd
for i in 1 2 3; do launch root-$i "$BUILD/root/orbit-root" --config "$STATE/etc/root-$i.cfg"; done

CTL="$BUILD/tools/orbitctl"
echo "orbit: waiting for a ledger leader..."
deadline=$((SECONDS + 30))
until "$CTL" --timeout-ms 1000 --json ledger status 2>/dev/null |
        jq -e '.leader != null' >/dev/null 2>&1; do
    for i in 1 2 3; do
        if ! kill -0 "$(cat "$STATE/run/root-$i.pid")" 2>/dev/null; then
            echo "orbit: root-$i exited: $(tail -n 1 "$STATE/log/root-$i.log")" >&2
            if grep -q "format version" "$STATE/log/root-$i.log"; then
                echo "orbit: .orbit/data holds a ledger written by another build;" \
                    "'$0 reset' deletes it (the local constellation's state only)" >&2
            fi
            stop_all
            exit 1
        fi
    done
    if [ $SECONDS -ge $deadline ]; then
        echo "orbit: no ledger leader after 30 s; see .orbit/log/root-*.log" >&2
        stop_all
        exit 1
    fi
    sleep 0.2
done
# Declare the tree once (a restart finds it in the ledger and changes nothing).
if ! "$CTL" --json topology show 2>/dev/null | jq -e '.shards | length > 0' >/dev/null 2>&1; then
    "$CTL" topology add-shard zone-local --tier 2 --endpoint tcp://127.0.0.1:7410 >/dev/null
    for i in 1 2 3; do
        "$CTL" topology add-shard rack-$i --tier 1 --parent zone-local \
            --endpoint tcp://127.0.0.1:741$i >/dev/null
        "$CTL" topology move-rack sim-r$((i - 1)) rack-$i >/dev/null
    done
    "$CTL" topology move-rack local rack-1 >/dev/null
fi
# The example mission's principal (a grant replaces the previous one).
"$CTL" quota grant team-a --cpu-m 8000 --mem 8589934592 --gpus 0 >/dev/null

for s in zone-local rack-1 rack-2 rack-3; do
    launch $s "$BUILD/shard/orbit-shard" --config "$STATE/etc/$s.cfg"
done
launch sim "$BUILD/tools/orbit-sim" --config "$STATE/etc/sim.cfg"
launch leaf "$BUILD/leaf/orbit-leaf" --config "$STATE/etc/leaf.cfg"
for i in 1 2; do launch sched-$i "$BUILD/tools/orbit-sched" --config "$STATE/etc/sched-$i.cfg"; done

sleep 0.5
for f in "$STATE"/run/*.pid; do
    name=$(basename "$f" .pid)
    if ! kill -0 "$(cat "$f")" 2>/dev/null; then
        echo "orbit: $name failed to start:" >&2
        tail -n 5 "$STATE/log/$name.log" >&2
        stop_all
        exit 1
    fi
done

echo "orbit: waiting for 3,001 nodes to be alive at the root..."
for _ in $(seq 1 150); do
    alive=$("$CTL" --json view summary 2>/dev/null | jq '.nodes.alive' 2>/dev/null || echo 0)
    [ "${alive:-0}" -ge 3001 ] && break
    sleep 0.2
done
"$CTL" view summary
cat <<MSG

The local constellation is up (logs in .orbit/log, configuration in .orbit/etc):
  root replicas tcp://127.0.0.1:7400-7402 (orbit-root --id 1..3: ledger over Raft on :7601-7603,
                each with a warm root view)
  zone shard    zone-local on :7410; rack shards rack-1..3 on :7411-7413 (declared in the ledger:
                shards and leaves are given only the root endpoints and find their place)
  leaves        3,000 simulated (orbit-sim, racks sim-r0..2) + this machine ($(hostname), rack=local)
  schedulers    sched-1, sched-2 (orbit-sched: place missions, revoke from long-dead nodes; one
                of them holds the reaper lease)

Run a mission on this machine (examples/mission.json: two \`sleep 600\` capsules, rack=local):
  orbitctl mission submit examples/mission.json
  orbitctl mission status hello         # placed on $(hostname), then running; pgrep -a sleep
  orbitctl view capsules hello/         # what the leaf reports through telemetry
  orbitctl mission stop hello           # the scheduler revokes, the leaf ends the processes

Look at it with orbitctl ($CTL):
  orbitctl view summary                 # cluster totals (add --json for scripts)
  orbitctl topology show                # the tree from the ledger, with live node counts
  orbitctl view shards                  # reachability and error counters of every shard
  orbitctl view nodes --order cpu --limit 10
  orbitctl view node $(hostname)        # this machine's real CPU, memory, GPUs
  orbitctl ledger status                # one leader, equal commit indexes on all 3 replicas
  orbitctl ledger propose examples/placement.json && orbitctl ledger watch
Try a failure:  kill -9 \$(cat .orbit/run/rack-2.pid)   # its nodes turn unreachable (never down),
                                                     # then its leaves fail over to another shard
Bring it back:  tools/orbit-up.sh restart rack-2        # its leaves return to it within seconds
Grow the tree:  orbitctl topology add-shard rack-4 --tier 1 --parent zone-local \\
                  --endpoint tcp://127.0.0.1:7414 && tools/orbit-up.sh shard rack-4 &&
                orbitctl topology move-rack sim-r2 rack-4 --wait   # only sim-r2's nodes move
Stop it all:    tools/orbit-up.sh down
MSG
