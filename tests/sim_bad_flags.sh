#!/usr/bin/env bash
# sim_bad_flags.sh: orbit-sim's command-line contract — every bad flag exits
# 2 with exactly one line "orbit-sim: reason" on stderr and nothing on
# stdout; --help and --version exit 0.
set -u
: "${BIN:?BIN must point at the build directory}"
SIM_BIN=$BIN/tools/orbit-sim
WORK=$(mktemp -d /tmp/orbit-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
EP=tcp://127.0.0.1:9 # never contacted: every case fails before connecting
failures=0

bad() {
    local want=$1; shift
    timeout 10 "$SIM_BIN" "$@" >"$WORK/out" 2>"$WORK/err"
    local rc=$?
    local lines
    lines=$(wc -l < "$WORK/err")
    if [ "$rc" != 2 ] || [ "$lines" != 1 ] || [ -s "$WORK/out" ] ||
        ! grep -q "^orbit-sim: .*$want" "$WORK/err"; then
        echo "FAIL: orbit-sim $* -> rc $rc, stderr: $(cat "$WORK/err")"
        failures=$((failures + 1))
    fi
}

bad "--leaves is required"
bad "--leaves is required" --shard "$EP"
bad "--shard is required" --leaves 10
bad "--leaves" --leaves 0 --shard "$EP"
bad "--leaves" --leaves abc --shard "$EP"
bad "--leaves" --leaves -5 --shard "$EP"
bad "--leaves" --leaves 10000001 --shard "$EP"
bad "malformed --shard endpoint" --leaves 10 --shard bogus
bad "malformed --shard endpoint" --leaves 10 --shard "$EP,tcp://nohost"
bad "--interval-ms" --leaves 10 --shard "$EP" --interval-ms 0
bad "--racks" --leaves 10 --shard "$EP" --racks 11
bad "--sockets" --leaves 10 --shard "$EP" --sockets 0
bad "--sockets" --leaves 10 --shard "$EP" --sockets 257
bad "--gpu-fraction" --leaves 10 --shard "$EP" --gpu-fraction 1.5
bad "--gpu-fraction" --leaves 10 --shard "$EP" --gpu-fraction nan
bad "--prefix" --leaves 10 --shard "$EP" --prefix "bad name"
bad "--zone" --leaves 10 --shard "$EP" --zone "a=b"
bad "--seed" --leaves 10 --shard "$EP" --seed -1
bad "--full-every" --leaves 10 --shard "$EP" --full-every 0
bad "--reboots-per-hour" --leaves 10 --shard "$EP" --reboots-per-hour -1
bad "unknown option" --leaves 10 --shard "$EP" --bogus
bad "needs a value" --leaves 10 --shard
bad "unexpected argument" --leaves 10 --shard "$EP" extra
bad "--log-level" --leaves 10 --shard "$EP" --log-level loud
bad "--shard and --root exclude each other" --leaves 10 --shard "$EP" --root "$EP"
bad "--sockets does not apply to --root" --leaves 10 --root "$EP" --sockets 2
bad "--root: at most 1000 racks" --leaves 2000 --racks 1001 --root "$EP"
bad "malformed root endpoint 'bogus'" --leaves 10 --root bogus
bad "cannot read config" --config "$WORK/missing.cfg"

for ok in --help --version; do
    timeout 10 "$SIM_BIN" "$ok" >"$WORK/out" 2>&1 || {
        echo "FAIL: orbit-sim $ok exited $?"
        failures=$((failures + 1))
    }
done
grep -q "^orbit-sim " "$WORK/out" || { echo "FAIL: --version: $(cat "$WORK/out")"; failures=$((failures + 1)); }

# A config file supplies what the flags do not (flags win).
printf 'sim\n    leaves = 12\n    prefix = fromcfg\n' > "$WORK/sim.cfg"
"$SIM_BIN" --config "$WORK/sim.cfg" --print-totals > "$WORK/out" 2>&1 &&
    grep -q '"nodes":12,' "$WORK/out" || { echo "FAIL: --config: $(cat "$WORK/out")"; failures=$((failures + 1)); }
"$SIM_BIN" --config "$WORK/sim.cfg" --leaves 7 --print-totals > "$WORK/out" 2>&1 &&
    grep -q '"nodes":7,' "$WORK/out" || { echo "FAIL: flag over --config: $(cat "$WORK/out")"; failures=$((failures + 1)); }

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "PASS"
