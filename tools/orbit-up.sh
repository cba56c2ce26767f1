#!/usr/bin/env bash
# orbit-up.sh [up|down|status|restart NAME]: the local constellation. "up" (the default)
# installs dependencies, builds Orbit, writes the embedded default
# configuration to .orbit/etc and starts: three root replicas (the Ephemeris
# ledger over Raft, data in .orbit/data, and each a warm root view), a zone shard,
# three rack shards, 3,000 simulated leaves and one real leaf for this
# machine, all on 127.0.0.1. Logs and pids live in .orbit/.
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
status) exec "$BUILD/tools/orbitctl" view shards ;;
restart)
    name=${2:?usage: $0 restart NAME (e.g. rack-2)}
    [ -f "$STATE/run/$name.cmd" ] || { echo "orbit: no component '$name'" >&2; exit 2; }
    [ -f "$STATE/run/$name.pid" ] && kill -TERM "$(cat "$STATE/run/$name.pid")" 2>/dev/null || true
    sleep 0.5
    eval "launch $name $(cat "$STATE/run/$name.cmd")"
    echo "orbit: $name restarted (pid $(cat "$STATE/run/$name.pid"))"
    exit 0 ;;
up) ;;
*) echo "usage: $0 [up|down|status|restart NAME]" >&2; exit 2 ;;
esac

source tools/deps.sh
orbit_install_deps
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DORBIT_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
stop_all
mkdir -p "$STATE/etc" "$STATE/log" "$STATE/run" "$STATE/data"

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
cat > "$STATE/etc/zone-local.cfg" <<CFG
shard
    id = zone-local
    tier = 2
    listen = tcp://127.0.0.1:7410
    upstream = $ROOTS
    interval-ms = 1000
CFG
for i in 1 2 3; do
    cat > "$STATE/etc/rack-$i.cfg" <<CFG
shard
    id = rack-$i
    tier = 1
    listen = tcp://127.0.0.1:741$i
    upstream = tcp://127.0.0.1:7410
    interval-ms = 1000
CFG
done
cat > "$STATE/etc/sim.cfg" <<'CFG'
sim
    leaves = 3000
    shard = tcp://127.0.0.1:7411,tcp://127.0.0.1:7412,tcp://127.0.0.1:7413
    interval-ms = 1000
    prefix = sim
    racks = 3
    zone = local
CFG
cat > "$STATE/etc/leaf.cfg" <<'CFG'
leaf
    shard = tcp://127.0.0.1:7411
    interval-ms = 1000
    label
        rack = local
        zone = local
CFG

rm -f "$STATE"/log/*.log "$STATE"/run/*.cmd
for i in 1 2 3; do launch root-$i "$BUILD/root/orbit-root" --config "$STATE/etc/root-$i.cfg"; done
launch zone-local "$BUILD/shard/orbit-shard" --config "$STATE/etc/zone-local.cfg"
for i in 1 2 3; do launch rack-$i "$BUILD/shard/orbit-shard" --config "$STATE/etc/rack-$i.cfg"; done
launch sim "$BUILD/tools/orbit-sim" --config "$STATE/etc/sim.cfg"
launch leaf "$BUILD/leaf/orbit-leaf" --config "$STATE/etc/leaf.cfg"

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

CTL="$BUILD/tools/orbitctl"
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
  zone shard    zone-local on :7410; rack shards rack-1..3 on :7411-7413
  leaves        3,000 simulated (orbit-sim) + this machine ($(hostname), rack=local)

Look at it with orbitctl ($CTL):
  orbitctl view summary                 # cluster totals (add --json for scripts)
  orbitctl view shards                  # the tree, reachability, error counters
  orbitctl view nodes --order cpu --limit 10
  orbitctl view node $(hostname)        # this machine's real CPU, memory, GPUs
  orbitctl ledger status                # one leader, equal commit indexes on all 3 replicas
  orbitctl ledger propose examples/placement.json && orbitctl ledger watch
Try a failure:  kill -9 \$(cat .orbit/run/rack-2.pid)   # its nodes turn unreachable, not down
Bring it back:  tools/orbit-up.sh restart rack-2        # they are alive again within seconds
Stop it all:    tools/orbit-up.sh down
MSG
