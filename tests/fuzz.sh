#!/usr/bin/env bash
# fuzz.sh: a burst of hostile frames at a rack shard (and at the root) leaves
# both serving their leaves and shards, with every rejection counted and
# visible through `orbitctl view shards`.
source "$(dirname "$0")/lib.sh"
ROOT_EP=tcp://127.0.0.1:$(free_port)
RACK_EP=tcp://127.0.0.1:$(free_port)
start root "$ROOT_BIN" --listen "$ROOT_EP"
start rack "$SHARD_BIN" --id rack-1 --listen "$RACK_EP" --upstream "$ROOT_EP" --interval-ms 500
start sim "$SIM_BIN" --leaves 500 --shard "$RACK_EP" --interval-ms 500 --prefix s --racks 1 --seed 3
wait_for 30 "500 nodes alive" summary_is '.nodes.alive == 500' >/dev/null || exit 1

"$BIN/tests/fuzz_frames" "$RACK_EP" 20000 42 || fail "rack shard stopped answering"
"$BIN/tests/fuzz_frames" "$ROOT_EP" 5000 43 >/dev/null
# The root answered queries before; it must still, and still hold the view.
wait_for 10 "simulated leaves still alive" \
    bash -c "'$CTL_BIN' --root '$ROOT_EP' --json view nodes --label rack=s-r0 --status alive |
             jq -e '.matched == 500'" >/dev/null || exit 1
ctl --json view shards > "$WORK/shards.json" || fail "view shards"
for c in bad_envelope bad_version bad_type bad_decode invalid bad_frames; do
    v=$(jq ".shards[] | select(.id == \"rack-1\") | .counters.$c" "$WORK/shards.json")
    [ "${v:-0}" -gt 0 ] || fail "rack-1 counter $c not incremented ($v)"
    echo "rack-1 $c = $v"
done
v=$(jq '.shards[] | select(.id == "root-1") | .counters.bad_type' "$WORK/shards.json")
[ "${v:-0}" -gt 0 ] || fail "root bad-frame counter not incremented"
kill -0 "${PIDS[rack]}" && kill -0 "${PIDS[root]}" || fail "a daemon died"
echo "PASS fuzz"
