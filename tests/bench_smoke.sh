#!/usr/bin/env bash
# bench_smoke.sh: orbit-bench runs end to end on a small scale — ingest in
# process (every message applied, sane rates and memory), ingest over the
# socket through a real shard daemon, and the tree with 1000 leaves (all
# alive, freshness measured, root messages/s = zone shards / interval,
# ledger reported as absent), and sched (two schedulers place a small
# mission set over 300 simulated nodes; the invariant check passes), and
# apply (the ledger state machine in process: every proposal commits) — and
# leaves no process behind.
set -u
: "${BIN:?BIN must point at the build directory}"
BENCH=$BIN/tools/orbit-bench
WORK=$(mktemp -d /tmp/orbit-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

timeout 60 "$BENCH" ingest --json --nodes 500 --seconds 1 --mem-nodes 2000 > "$WORK/ingest.json" ||
    fail "ingest: $(cat "$WORK/ingest.json")"
jq -e '.not_applied == 0 and .deltas_per_s.median > 1000 and .runs >= 3 and
       .memory.nodes == 2000 and .memory.heap_bytes_per_node > 100 and
       .memory.heap_bytes_per_node < 4096' "$WORK/ingest.json" >/dev/null ||
    fail "ingest: $(cat "$WORK/ingest.json")"

timeout 60 "$BENCH" ingest --socket --json --nodes 500 --seconds 1 > "$WORK/socket.json" ||
    fail "ingest --socket: $(cat "$WORK/socket.json")"
jq -e '.mode == "socket" and .not_applied == 0 and .deltas_per_s.median > 1000' \
    "$WORK/socket.json" >/dev/null || fail "ingest --socket: $(cat "$WORK/socket.json")"

timeout 100 "$BENCH" tree --json --leaves 1000 --seconds 3 --leaf-interval-ms 500 \
    --report-interval-ms 500 --converge-timeout-s 40 > "$WORK/tree.json" ||
    fail "tree: $(cat "$WORK/tree.json")"
jq -e '.runs[0] | .converged and .alive_min == 1000 and .error == null and
       .age_p99_ms > 0 and .age_p99_ms <= 3000 and .ledger_entries == null and
       .root_msgs_per_s > 0.5 * .expected_msgs_per_s and
       .root_msgs_per_s < 1.5 * .expected_msgs_per_s' "$WORK/tree.json" >/dev/null ||
    fail "tree: $(cat "$WORK/tree.json")"
timeout 150 "$BENCH" sched --json --nodes 300 --capsules 400 --gangs 2 --schedulers 2 \
    --workers 4 --place-timeout-s 90 > "$WORK/sched.json" || fail "sched: $(cat "$WORK/sched.json")"
jq -e '.runs[0] | .schedulers == 2 and .placed == 400 and .all_ms > 0 and
       .placements_per_s > 0 and .error == null and .check.ok and .check.placements == 400 and
       .check.identities == 400 and .check.gangs == 2 and .check.gangs_broken == 0 and
       .check.over_capacity == 0' "$WORK/sched.json" >/dev/null ||
    fail "sched: $(cat "$WORK/sched.json")"
timeout 60 "$BENCH" apply --json --nodes 100 --proposals 3000 --warmup 1000 > "$WORK/apply.json" ||
    fail "apply: $(cat "$WORK/apply.json")"
jq -e '.error == null and .proposals == 3000 and .committed == 3000 and .entries == 47 and
       .steady.proposals > 0 and .us_per_proposal > 0 and .ledger_index == 3000 and
       .dedup_entries == 3000' "$WORK/apply.json" >/dev/null || fail "apply: $(cat "$WORK/apply.json")"
"$BENCH" check >/dev/null 2>&1; [ $? = 2 ] || fail "check without --root is not a usage error"
"$BENCH" sched --schedulers 0 >/dev/null 2>&1; [ $? = 2 ] || fail "--schedulers 0 accepted"
echo "PASS"
