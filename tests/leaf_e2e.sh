#!/usr/bin/env bash
# leaf_e2e.sh: real orbit-leaf agents through a rack shard to the root.
# - the leaf on this machine shows its real CPU count and memory at the root;
# - a leaf reading a fake /proc whose boot id changes (a reboot) reports a
#   new incarnation: the shard counts the reboot, takes the new full state,
#   and the node stays alive with the new values.
source "$(dirname "$0")/lib.sh"
ROOT_EP=tcp://127.0.0.1:$(free_port)
RACK_EP=tcp://127.0.0.1:$(free_port)

PROC=$WORK/proc
mkdir -p "$PROC/sys/kernel/random" "$PROC/pressure"
write_proc() { # write_proc BTIME BOOT_ID MEMTOTAL_KB
    cat > "$PROC/stat.tmp" <<STAT
cpu  100 0 100 1000 0 0 0 0 0 0
cpu0 50 0 50 500 0 0 0 0 0 0
cpu1 50 0 50 500 0 0 0 0 0 0
intr 0
btime $1
STAT
    mv "$PROC/stat.tmp" "$PROC/stat"
    echo "$2" > "$PROC/sys/kernel/random/boot_id"
    printf 'MemTotal:       %s kB\nMemFree:        1000 kB\nMemAvailable:   %s kB\n' \
        "$3" $(($3 / 2)) > "$PROC/meminfo"
    echo "0.50 0.25 0.10 1/100 42" > "$PROC/loadavg"
    printf 'some avg10=1.50 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=0\n' \
        | tee "$PROC/pressure/memory" "$PROC/pressure/io" > /dev/null
    printf 'some avg10=2.00 avg60=0.00 avg300=0.00 total=0\n' > "$PROC/pressure/cpu"
}
write_proc 1700000000 11111111-2222-3333-4444-555555555555 4000000

start root "$ROOT_BIN" --listen "$ROOT_EP"
start rack "$SHARD_BIN" --id rack-1 --listen "$RACK_EP" --upstream "$ROOT_EP" --interval-ms 500
start fake "$LEAF_BIN" --node fake-node --shard "$RACK_EP" --proc-root "$PROC" \
    --interval-ms 200 --label rack=r1 --label zone=z1 --nvml-lib /nonexistent/libnvidia-ml.so.1
HOST=$(hostname)
start real "$LEAF_BIN" --shard "$RACK_EP" --interval-ms 200 --label rack=r1
wait_for 20 "both leaves alive" summary_is '.nodes.alive == 2' >/dev/null || exit 1

# This machine's real CPU and memory.
ctl --json view node "$HOST" > "$WORK/real.json" || fail "view node $HOST"
cpus=$(grep -c '^cpu[0-9]' /proc/stat)
memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
jq -e ".state.cpu_capacity_m == $((cpus * 1000)) and .state.mem_capacity == $((memkb * 1024))
       and .state.mem_used > 0 and .status == \"alive\"" "$WORK/real.json" >/dev/null ||
    fail "real node detail wrong: $(cat "$WORK/real.json")"
echo "real leaf $HOST: $cpus cpus, $memkb kB as expected"

# The fake node, before the reboot.
ctl --json view node fake-node > "$WORK/before.json" || fail "view node fake-node"
jq -e '.state.mem_capacity == 4096000000 and .state.cpu_capacity_m == 2000 and
       .state.pressure.mem_some == 150 and .labels.rack == "r1"' "$WORK/before.json" >/dev/null ||
    fail "fake node detail wrong: $(cat "$WORK/before.json")"
inc1=$(jq '.state.incarnation' "$WORK/before.json")

# Reboot: a later boot time, a new boot id, a different memory size.
write_proc 1700000500 99999999-8888-7777-6666-555555555555 8000000
node_rebooted() {
    ctl --json view node fake-node | jq -e ".state.incarnation > $inc1 and
        .state.mem_capacity == 8192000000 and .status == \"alive\""
}
wait_for 10 "new incarnation at the root" node_rebooted >/dev/null || exit 1
# The counter reaches the root with the shard's next report.
reboots_counted() {
    ctl --json view shards | jq -e '.shards[] | select(.id == "rack-1") | .counters.reboots >= 1'
}
wait_for 5 "the shard's reboot counter" reboots_counted >/dev/null || exit 1
summary_is '.nodes.alive == 2 and .nodes.total == 2' || fail "node count changed by the reboot"
echo "PASS leaf reboot handled (incarnation $inc1 -> new), real node reported"
