# lib.sh: helpers for Orbit's multi-process tests on loopback. Sourced by the
# tests/*.sh scripts; every wait is bounded and every process started here is
# killed on exit.
#
# Expects BIN (the build directory) in the environment.
set -u
: "${BIN:?BIN must point at the build directory}"
ROOT_BIN=$BIN/root/orbit-root
SHARD_BIN=$BIN/shard/orbit-shard
LEAF_BIN=$BIN/leaf/orbit-leaf
SIM_BIN=$BIN/tools/orbit-sim
CTL_BIN=$BIN/tools/orbitctl
WORK=$(mktemp -d /tmp/orbit-test.XXXXXX)
declare -A PIDS=()

cleanup() {
    for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null; done
    local deadline=$((SECONDS + 5))
    for name in "${!PIDS[@]}"; do
        while kill -0 "${PIDS[$name]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        kill -KILL "${PIDS[$name]}" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$WORK"/*.log; do
        [ -f "$f" ] && { echo "--- $f"; head -n 3 "$f"; echo "..."; tail -n 12 "$f"; } >&2
    done
    exit 1
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on, below Linux's
# ephemeral range (32768+) so no outgoing connection can be holding it.
# Tests run in parallel, and a port found free is only bound later by a
# daemon, so each script takes ports from its own block of 48 (chosen by its
# pid among 250 blocks) in order, never twice: two scripts collide only when
# their pids fall on the same block and race for the same port at once.
PORT_FILE=$WORK/.next-port
echo $((20000 + ($$ % 250) * 48)) > "$PORT_FILE"
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(cat "$PORT_FILE")
        [ "$p" -ge 32000 ] && p=20000
        echo $((p + 1)) > "$PORT_FILE"
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo $p; return; fi
    done
    fail "no free port"
}

# start NAME CMD...: run CMD in the background, logging to $WORK/NAME.log.
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS[$name]=$!
}

# stop NAME [SIGNAL]: signal a started process (default TERM) and reap it.
stop() {
    local pid=${PIDS[$1]}
    kill -"${2:-TERM}" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "PIDS[$1]"
}

# ctl ARGS...: orbitctl against this test's root.
ctl() { "$CTL_BIN" --root "$ROOT_EP" --timeout-ms 2000 "$@"; }

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 100 ms until it
# succeeds or the deadline passes (then fail). Prints elapsed milliseconds.
wait_for() {
    local limit=$1 what=$2; shift 2
    local t0 now
    t0=$(date +%s%3N)
    while true; do
        if "$@" >/dev/null 2>&1; then
            now=$(date +%s%3N); echo $((now - t0)); return 0
        fi
        now=$(date +%s%3N)
        [ $((now - t0)) -gt $((limit * 1000)) ] && fail "timed out after ${limit}s waiting for: $what"
        sleep 0.1
    done
}

# summary_is JQ_FILTER: true when `view summary --json` satisfies the filter.
summary_is() { ctl --json view summary | jq -e "$1" >/dev/null; }

# ledger_cluster [FLAGS...]: three orbit-root replicas (Ephemeris and root
# view) on free loopback ports, started as root1..3 with FLAGS; sets
# LISTEN[i], RAFT[i], PEERS and ROOT_EP, and waits (bounded) for a leader.
# replica I [MORE FLAGS] (re)starts replica I with the same FLAGS.
declare -a LISTEN RAFT
ROOT_FLAGS=()
replica() {
    local i=$1; shift
    start "root$i" "$ROOT_BIN" --id "$i" --data "$WORK/data$i" --raft "${RAFT[$i]}" \
        --peers "$PEERS" --listen "${LISTEN[$i]}" "${ROOT_FLAGS[@]}" "$@"
}
has_leader() { ctl --json ledger status 2>/dev/null | jq -e '.leader != null'; }
# Every replica answers and has applied the same index: what was proposed
# before is visible in a stale read from any of them.
replicas_applied() {
    ctl --json ledger status 2>/dev/null | jq -e '[.replicas[] | select(.reachable)] as $r |
        ($r | length) == 3 and ([$r[].applied_index] | unique | length) == 1' >/dev/null
}
ledger_cluster() {
    ROOT_FLAGS=("$@")
    for i in 1 2 3; do
        LISTEN[$i]=tcp://127.0.0.1:$(free_port)
        RAFT[$i]=127.0.0.1:$(free_port)
    done
    PEERS="1=${RAFT[1]},2=${RAFT[2]},3=${RAFT[3]}"
    ROOT_EP="${LISTEN[1]},${LISTEN[2]},${LISTEN[3]}"
    for i in 1 2 3; do replica "$i"; done
    wait_for 20 "a ledger leader among 3 replicas" has_leader >/dev/null || exit 1
}
