#!/usr/bin/env bash
# tree.sh SCENARIO: root + zone shard + 2 rack shards + simulated leaves on
# loopback.
#   totals   - root totals are exact and equal the sum of the node rows;
#              node detail is proxied through the zone shard.
#   failure  - kill -9 a rack shard: its nodes become unreachable (not down)
#              within 3 report intervals while the rest stay alive; restart
#              it: all alive again within 3 intervals, leaves untouched.
source "$(dirname "$0")/lib.sh"
SCENARIO=${1:?scenario}
IV=1000 # report interval (ms)
ROOT_EP=tcp://127.0.0.1:$(free_port)
ZONE_EP=tcp://127.0.0.1:$(free_port)
RACK1_EP=tcp://127.0.0.1:$(free_port)
RACK2_EP=tcp://127.0.0.1:$(free_port)

start root "$ROOT_BIN" --listen "$ROOT_EP"
start zone "$SHARD_BIN" --id zone-a --tier 2 --listen "$ZONE_EP" --upstream "$ROOT_EP" \
    --interval-ms $IV
rack1() { start rack1 "$SHARD_BIN" --id rack-1 --listen "$RACK1_EP" --upstream "$ZONE_EP" \
    --interval-ms $IV; }
rack1
start rack2 "$SHARD_BIN" --id rack-2 --listen "$RACK2_EP" --upstream "$ZONE_EP" --interval-ms $IV
start sim1 "$SIM_BIN" --leaves 1500 --shard "$RACK1_EP" --interval-ms 500 --prefix a --racks 3 \
    --zone z1 --seed 1
start sim2 "$SIM_BIN" --leaves 1000 --shard "$RACK2_EP" --interval-ms 500 --prefix b --racks 2 \
    --zone z1 --seed 2

ms=$(wait_for 60 "2500 nodes alive at the root" \
    summary_is '.nodes.total == 2500 and .nodes.alive == 2500') || exit 1
echo "all 2500 leaves alive at the root after ${ms} ms"

case $SCENARIO in
totals)
    # The merged summary equals the flat sum of every node row.
    ctl --json view nodes > "$WORK/nodes.json" || fail "view nodes"
    ctl --json view summary > "$WORK/summary.json" || fail "view summary"
    [ "$(jq '.matched' "$WORK/nodes.json")" = 2500 ] || fail "view nodes did not match 2500"
    cap_rows=$(jq '[.nodes[].cpu_capacity_m] | add' "$WORK/nodes.json")
    cap_sum=$(jq '.cpu.capacity_m' "$WORK/summary.json")
    [ "$cap_rows" = "$cap_sum" ] || fail "cpu capacity: rows $cap_rows != summary $cap_sum"
    mem_rows=$(jq '[.nodes[].mem_capacity] | add' "$WORK/nodes.json")
    mem_sum=$(jq '.memory.capacity' "$WORK/summary.json")
    [ "$mem_rows" = "$mem_sum" ] || fail "memory capacity: rows $mem_rows != summary $mem_sum"
    gpu_rows=$(jq '[.nodes[].gpu_capacity] | add' "$WORK/nodes.json")
    gpu_sum=$(jq '.gpus.capacity' "$WORK/summary.json")
    [ "$gpu_rows" = "$gpu_sum" ] || fail "gpu capacity: rows $gpu_rows != summary $gpu_sum"
    [ "$(jq '[.nodes[] | select(.shard == "rack-1")] | length' "$WORK/nodes.json")" = 1500 ] ||
        fail "rack-1 does not own 1500 rows"
    # Filters and top-k.
    [ "$(ctl --json view nodes --label rack=a-r0 | jq '.matched')" = 500 ] ||
        fail "label filter rack=a-r0 should match 500"
    top=$(ctl --json view nodes --order cpu --limit 5 | jq '[.nodes[].cpu_free_m]')
    [ "$(echo "$top" | jq 'length')" = 5 ] || fail "top-k returned $(echo "$top" | jq length)"
    [ "$(echo "$top" | jq '. == (sort | reverse)')" = true ] || fail "top-k not sorted: $top"
    # Node detail travels root -> zone-a -> rack-1 and back.
    ctl --json view node a-7 > "$WORK/node.json" || fail "view node a-7"
    jq -e '.shard == "rack-1" and .state.cpu_capacity_m == .cpu_capacity_m and
           .state.last_heard_ms_ago < 5000' "$WORK/node.json" >/dev/null ||
        fail "bad node detail: $(cat "$WORK/node.json")"
    ctl view node no-such-node >/dev/null 2>&1 && fail "unknown node should fail"
    # Every shard is listed and reachable.
    ctl --json view shards > "$WORK/shards.json" || fail "view shards"
    jq -e '[.shards[].id] | sort == ["rack-1","rack-2","root-1","zone-a"]' "$WORK/shards.json" \
        >/dev/null || fail "shards: $(jq -c '[.shards[].id]' "$WORK/shards.json")"
    jq -e 'all(.shards[]; .reachable)' "$WORK/shards.json" >/dev/null || fail "unreachable shard"
    echo "PASS totals"
    ;;
failure)
    stop rack1 KILL
    ms=$(wait_for 10 "rack-1 nodes unreachable" \
        summary_is '.nodes.unreachable == 1500 and .nodes.alive == 1000 and .nodes.down == 0') ||
        exit 1
    echo "rack-1 killed: its 1500 nodes unreachable after ${ms} ms"
    # Polling adds up to 100 ms plus one orbitctl round trip.
    [ "$ms" -le $((3 * IV + 300)) ] || fail "unreachable after ${ms} ms > 3 intervals"
    ctl --json view shards | jq -e '.shards[] | select(.id == "rack-1") | .reachable == false' \
        >/dev/null || fail "rack-1 should be listed unreachable"
    rack1
    ms=$(wait_for 10 "all alive after restart" \
        summary_is '.nodes.alive == 2500 and .nodes.unreachable == 0') || exit 1
    echo "rack-1 restarted: all 2500 alive again after ${ms} ms"
    [ "$ms" -le $((3 * IV + 300)) ] || fail "back after ${ms} ms > 3 intervals"
    kill -0 "${PIDS[sim1]}" || fail "the leaves of rack-1 should not have been restarted"
    echo "PASS failure"
    ;;
*) fail "unknown scenario $SCENARIO" ;;
esac
