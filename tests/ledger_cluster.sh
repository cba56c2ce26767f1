#!/usr/bin/env bash
# ledger_cluster.sh SCENARIO: three orbit-root replicas running the Ephemeris
# on loopback, driven through orbitctl and the client library.
#   basic      - one leader, equal commit indexes; concurrent placements with
#                node_fits never over-commit on any replica, proposed one by
#                one or pipelined (ProposeBatch); batches of a bad size are
#                refused, a batch's outcomes come in order and a retried
#                batch gets the same outcomes; a watch from the
#                start sees every commitment in order; a data directory of
#                another cluster is refused, and so are Raft timers that
#                cannot work; a leader stopped with SIGTERM
#                hands leadership over before it exits.
#   failover   - kill -9 the leader under load (one-by-one and pipelined
#                proposers): a new leader, no proposal
#                without an outcome, every acknowledged placement on every
#                replica; the restarted replica catches up to the same hash,
#                even when its LMDB state is treated as torn by an OS crash
#                (its open marker names another boot: discarded, rebuilt
#                from the Raft log).
#   compaction - history beyond --history-keep is compacted: a watch from the
#                start answers Compacted and resumes after it, gap-free.
#   members    - replace a replica online: a fourth joins empty, is added and
#                promoted to voter, catches up (by a snapshot: the log is
#                compacted every 16-24 entries, by replica id); the third is removed; the
#                cluster keeps committing throughout.
source "$(dirname "$0")/lib.sh"
SCENARIO=${1:?scenario}
LOAD=$BIN/tests/ledger_load
EXTRA=()
[ "$SCENARIO" = compaction ] && EXTRA=(--snapshot-threshold 32 --history-keep 50)
# members: the joining replica finds the log compacted and installs a snapshot.
[ "$SCENARIO" = members ] && EXTRA=(--snapshot-threshold 16)
# basic: followers hold what they apply for an hour (or 1,024 entries), so
# only their reads flushing first make their stale reads current.
[ "$SCENARIO" = basic ] && EXTRA=(--apply-batch-ms 3600000)
ledger_cluster "${EXTRA[@]}"

status_json() { ctl --json ledger status 2>/dev/null; }
has_leader() { status_json | jq -e '.leader != null and ([.replicas[] | select(.reachable)] | length) == 3'; }
ms=$(wait_for 20 "a leader among 3 replicas" has_leader) || exit 1
echo "leader elected after ${ms} ms"

same_everywhere() { # every reachable replica at the same commit and applied index
    status_json | jq -e '[.replicas[] | select(.reachable)] as $r | ($r | length) == 3 and
        ([$r[].applied_index] | unique | length) == 1'
}
leader_id() { status_json | jq -r '.leader'; }
hashes_equal() { # every replica reachable, at the same applied index and state hash
    status_json | jq -e '[.replicas[] | select(.reachable)] as $r | ($r | length) == 3 and
        ([$r[] | "\(.applied_index) \(.state_hash)"] | unique | length) == 1'
}

case $SCENARIO in
basic)
    # A plain proposal through orbitctl.
    cat > "$WORK/p.json" <<'JSON'
{"commitment": {"quota_grant": {"principal": "team-a", "resources": {"cpu_m": 64000}}}}
JSON
    ctl --json ledger propose "$WORK/p.json" | jq -e '.kind == "COMMITTED"' >/dev/null ||
        fail "quota grant not committed"
    # 8 concurrent proposers, 40 placements of 1 core on a 10-core node.
    "$LOAD" "$ROOT_EP" place n1 10000 8 5 > "$WORK/place.txt" || fail "proposals without outcome"
    committed=$(grep -c '^committed' "$WORK/place.txt")
    conflicts=$(grep -c '^conflict .* node_fits' "$WORK/place.txt")
    echo "40 concurrent placements on a 10-core node: $committed committed, $conflicts conflicts"
    [ "$committed" = 10 ] && [ "$conflicts" = 30 ] || fail "expected 10 committed, 30 conflicts"
    # The same through the pipelined client: 40 in flight at once, sent as
    # ProposeBatch requests, on another 10-core node.
    "$LOAD" "$ROOT_EP" pipe n2 10000 40 40 > "$WORK/pipe.txt" || fail "pipelined proposals without outcome"
    committed=$(grep -c '^committed' "$WORK/pipe.txt")
    conflicts=$(grep -c '^conflict .* node_fits' "$WORK/pipe.txt")
    echo "40 pipelined placements on a 10-core node: $committed committed, $conflicts conflicts"
    [ "$committed" = 10 ] && [ "$conflicts" = 30 ] || fail "pipe: expected 10 committed, 30 conflicts"
    # Each replica's own state, read before anything else asks for its
    # status: a follower applies what it holds before it answers a read.
    used_is() { # REPLICA NODE M: a stale read there says NODE uses M
        [ "$("$CTL_BIN" --root "${LISTEN[$1]}" --json ledger get "node/$2" --stale |
            jq '.value.used.cpu_m')" = "$3" ]
    }
    for i in 1 2 3; do
        for n in n1 n2; do
            wait_for 5 "replica $i reading node $n at 10000 m (over-commitment, or a read missing applied entries)" \
                used_is "$i" "$n" 10000 >/dev/null
        done
    done
    wait_for 10 "replicas converge" hashes_equal >/dev/null || exit 1
    ctl --json ledger status > "$WORK/status.json"
    jq -e '[.replicas[].commit_index] | unique | length == 1' "$WORK/status.json" \
        >/dev/null || fail "commit indexes differ"
    # The followers held their entries for the applier, which applied them
    # in batches, none failed.
    jq -e '[.replicas[] | select(.leader | not)] | length == 2 and
        all(.apply_held > 0 and .apply_batches > 0 and .apply_failures == 0)' \
        "$WORK/status.json" >/dev/null ||
        fail "followers' appliers: $(jq -c '[.replicas[] | [.id, .leader, .apply_held, .apply_batches, .apply_failures]]' "$WORK/status.json")"
    # Watch from the start: every commitment, in order, nothing missing.
    ctl --json ledger watch --from 1 > "$WORK/watch.json" || fail "watch"
    n=$(wc -l < "$WORK/watch.json")
    [ "$n" = 21 ] || fail "watch returned $n commitments, expected 21"
    jq -s -e '[.[].index] == [range(1; 22)]' "$WORK/watch.json" >/dev/null ||
        fail "watch out of order or with gaps"
    # Raw batches: refused sizes, outcomes in order, a retry answered alike.
    "$LOAD" "$ROOT_EP" batch-check || fail "batch check"
    # A data directory from another cluster is refused with one line.
    stop root3
    rc=0
    out=$("$ROOT_BIN" --id 3 --data "$WORK/data3" --raft "${RAFT[3]}" --peers "$PEERS" \
        --listen "${LISTEN[3]}" --cluster elsewhere 2>&1 >/dev/null) || rc=$?
    [ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] || fail "foreign data dir accepted: $out"
    echo "refused: $out"
    # Raft timers that cannot work are refused before any directory is made.
    rc=0
    out=$("$ROOT_BIN" --id 3 --data "$WORK/data-none" --raft "${RAFT[3]}" --peers "$PEERS" \
        --listen "${LISTEN[3]}" --election-ms 300 --heartbeat-ms 300 2>&1 >/dev/null) || rc=$?
    [ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && [ ! -e "$WORK/data-none" ] ||
        fail "heartbeat not below the election timeout accepted: $out"
    echo "refused: $out"
    # A planned stop (SIGTERM) of the leader hands leadership over first:
    # replica 3 is restarted first so that two are left to lead.
    replica 3
    wait_for 20 "replica 3 back" has_leader >/dev/null || exit 1
    old=$(leader_id)
    t0=$(date +%s%3N)
    stop "root$old"
    ms=$(($(date +%s%3N) - t0))
    grep -q 'leadership handed over' "$WORK/root$old.log" ||
        fail "the stopping leader did not hand leadership over: $(tail -n 3 "$WORK/root$old.log")"
    new_leader() { l=$(leader_id); [ -n "$l" ] && [ "$l" != null ] && [ "$l" != "$old" ]; }
    wait_for 5 "a new leader after the handover" new_leader >/dev/null || exit 1
    echo "leader $old stopped with SIGTERM in ${ms} ms, leadership handed to $(leader_id)"
    echo "PASS basic"
    ;;
failover)
    "$LOAD" "$ROOT_EP" place big 100000000 8 60 > "$WORK/acked.txt" &
    loader=$!
    PIDS[loader]=$loader # killed by the cleanup trap if the test fails early
    # A pipelined loader across the kill too: 16 in flight, 20,000 placements.
    "$LOAD" "$ROOT_EP" pipe big 100000000 16 20000 piped > "$WORK/acked_pipe.txt" &
    piper=$!
    PIDS[piper]=$piper
    wait_for 20 "load under way" bash -c "[ \$(grep -c committed '$WORK/acked.txt') -ge 40 ]" \
        >/dev/null || exit 1
    wait_for 20 "pipelined load under way" bash -c "[ \$(grep -c committed '$WORK/acked_pipe.txt') -ge 100 ]" \
        >/dev/null || exit 1
    old=$(leader_id)
    stop "root$old" KILL
    t0=$(date +%s%3N)
    kill -0 "$piper" 2>/dev/null || fail "the pipelined loader ended before the kill (raise its count)"
    new_leader() { l=$(leader_id); [ -n "$l" ] && [ "$l" != null ] && [ "$l" != "$old" ]; }
    ms=$(wait_for 10 "a new leader" new_leader) || exit 1
    echo "leader $old killed: new leader $(leader_id) after ${ms} ms"
    wait "$loader" || fail "some proposals got no outcome"
    unset "PIDS[loader]"
    wait "$piper" || fail "some pipelined proposals got no outcome"
    unset "PIDS[piper]"
    n=$(grep -c '^committed' "$WORK/acked.txt")
    echo "$n placements acknowledged across the failover"
    [ "$n" = 480 ] || fail "expected 480 acknowledged placements, got $n"
    n=$(grep -c '^committed' "$WORK/acked_pipe.txt")
    echo "$n pipelined placements acknowledged across the failover"
    [ "$n" = 20000 ] || fail "expected 20000 acknowledged pipelined placements, got $n"
    for i in 1 2 3; do
        [ "$i" = "$old" ] && continue
        "$LOAD" "${LISTEN[$i]}" verify "$WORK/acked.txt" || fail "replica $i lost acknowledged placements"
        "$LOAD" "${LISTEN[$i]}" verify "$WORK/acked_pipe.txt" ||
            fail "replica $i lost acknowledged pipelined placements"
    done
    # The kill -9 left the ledger's open marker behind. Pretend the machine
    # went down too: the unsynced LMDB state must be discarded and rebuilt
    # from Raft.
    [ -f "$WORK/data$old/ledger/open.boot" ] || fail "no open marker after kill -9"
    echo 00000000-0000-0000-0000-000000000000 >"$WORK/data$old/ledger/open.boot"
    replica "$old"
    caught_up() {
        local a b
        a=$("$CTL_BIN" --root "${LISTEN[$old]}" --timeout-ms 1000 --json ledger status | jq -r '.replicas[0] | "\(.applied_index)"')
        b=$(ctl --json ledger status | jq -r '[.replicas[] | select(.leader)][0].applied_index')
        [ -n "$a" ] && [ "$a" = "$b" ]
    }
    wait_for 20 "the restarted replica catches up" caught_up >/dev/null || exit 1
    "$LOAD" "${LISTEN[$old]}" verify "$WORK/acked.txt" || fail "restarted replica misses placements"
    "$LOAD" "${LISTEN[$old]}" verify "$WORK/acked_pipe.txt" ||
        fail "restarted replica misses pipelined placements"
    wait_for 10 "equal state hashes on all replicas" hashes_equal >/dev/null || exit 1
    grep -q 'unsynced state was discarded' "$WORK/root$old.log" ||
        fail "the restarted replica did not discard its torn state"
    echo "PASS failover"
    ;;
compaction)
    "$LOAD" "$ROOT_EP" place c 100000000 4 75 > "$WORK/acked.txt" || fail "proposals without outcome"
    wait_for 10 "replicas converge" same_everywhere >/dev/null || exit 1
    compacted() { ctl --json ledger watch --from 1 | head -1 | jq -e '.compacted > 0'; }
    wait_for 10 "history compacted" compacted >/dev/null || exit 1
    ctl --json ledger watch --from 1 > "$WORK/watch.json" 2>"$WORK/watch.err"
    c=$(head -1 "$WORK/watch.json" | jq '.compacted')
    grep -q "compacted into a snapshot" "$WORK/watch.err" || fail "no Compacted notice"
    tail -n +2 "$WORK/watch.json" | jq -s -e --argjson c "$c" \
        '[.[].index] == [range($c + 1; $c + 1 + length)] and length > 0' >/dev/null ||
        fail "resumed watch is not gap-free after $c"
    last=$(tail -1 "$WORK/watch.json" | jq '.index')
    [ "$last" = 300 ] || fail "watch ended at $last, expected 300"
    # Snapshot thresholds are staggered by replica id (32 entries scaled by
    # 1.25, 1.5 and 1 for ids 1, 2, 3: at most 48, and the 300 proposals
    # make 75 entries or more), so the replicas do not all write a snapshot
    # at the same index.
    status_json > "$WORK/status.json"
    jq -e '[.replicas[].raft_snapshot_index] | (all(. > 0)) and (unique | length) > 1' \
        "$WORK/status.json" >/dev/null ||
        fail "snapshots not staggered: $(jq -c '[.replicas[] | [.id, .raft_snapshot_index]]' "$WORK/status.json")"
    # The client's way past the gap: load a snapshot of the state.
    ctl --json ledger snapshot "$WORK/snap" > "$WORK/snap.json" || fail "ledger snapshot"
    jq -e '.ledger_index == 300' "$WORK/snap.json" >/dev/null || fail "snapshot: $(cat "$WORK/snap.json")"
    first=$(grep -m1 '^committed' "$WORK/acked.txt" | awk '{print $2}')
    "$CTL_BIN" --json ledger get "placement/$first" --snapshot "$WORK/snap" |
        jq -e '.value.node == "c"' >/dev/null || fail "placement $first not in the snapshot"
    echo "PASS compaction (history up to $c compacted; snapshot loaded; watch resumed at $((c + 1)) to $last)"
    ;;
members)
    # 80 proposals: 40 or more entries, past every replica's scaled threshold
    # (16 x 1.25, 1.5 or 1) with room, so the leader's log is compacted.
    "$LOAD" "$ROOT_EP" place m 100000000 2 40 before > "$WORK/before.txt" || fail "proposals before"
    LISTEN[4]=tcp://127.0.0.1:$(free_port)
    RAFT[4]=127.0.0.1:$(free_port)
    start root4 "$ROOT_BIN" --id 4 --data "$WORK/data4" --raft "${RAFT[4]}" --join \
        --listen "${LISTEN[4]}"
    ctl ledger members add 4 "${RAFT[4]}" || fail "members add"
    ctl ledger members assign 4 voter || fail "members assign"
    ROOT_EP="${LISTEN[1]},${LISTEN[2]},${LISTEN[3]},${LISTEN[4]}"
    four_voters() { status_json | jq -e '[.members[] | select(.role == "voter")] | length == 4'; }
    wait_for 10 "four voters" four_voters >/dev/null || exit 1
    # Remove replica 3 (if it leads, leadership moves first).
    ctl ledger members remove 3 || fail "members remove"
    stop root3
    ROOT_EP="${LISTEN[1]},${LISTEN[2]},${LISTEN[4]}"
    three_left() { status_json | jq -e '([.members[].id] | sort) == [1,2,4] and .leader != null'; }
    wait_for 10 "members 1, 2, 4" three_left >/dev/null || exit 1
    "$LOAD" "$ROOT_EP" place m 100000000 2 20 after > "$WORK/after.txt" || fail "proposals after"
    [ "$(grep -c ^committed "$WORK/after.txt")" = 40 ] || fail "placements after the change not all committed"
    replica4_has_all() {
        "$LOAD" "${LISTEN[4]}" verify "$WORK/before.txt" && "$LOAD" "${LISTEN[4]}" verify "$WORK/after.txt"
    }
    wait_for 10 "the new replica holds every placement" replica4_has_all >/dev/null || exit 1
    grep -q "restored a snapshot" "$WORK/root4.log" || fail "the new replica did not install a snapshot"
    echo "PASS members (4 joined and voted, 3 removed, 120 placements on the new replica)"
    ;;
*) fail "unknown scenario $SCENARIO" ;;
esac
