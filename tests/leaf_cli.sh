#!/bin/sh
# leaf_cli.sh: orbit-leaf's command-line contract: bad flags exit 2 with one
# line on stderr; --help/--version exit 0; SIGTERM exits 0. Usage: leaf_cli.sh BIN
set -u
bin=${1:?usage: leaf_cli.sh path/to/orbit-leaf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

bad() { # bad DESCRIPTION ARGS...
    what=$1
    shift
    timeout 10 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q '^orbit-leaf: ' "$tmp/err"; then
        echo "FAIL $what: rc=$rc, $lines stderr line(s):"
        cat "$tmp/err"
        fail=1
    else
        echo "ok   $what: $(cat "$tmp/err")"
    fi
}

good() { # good DESCRIPTION PATTERN ARGS...
    what=$1
    pattern=$2
    shift 2
    timeout 10 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q "$pattern" "$tmp/out"; then
        echo "FAIL $what: rc=$rc"
        cat "$tmp/out" "$tmp/err"
        fail=1
    else
        echo "ok   $what"
    fi
}

S=tcp://127.0.0.1:7400
bad "unknown flag" --shard $S --bogus
bad "missing value" --shard
bad "no shard nor root" --node n1
bad "interval too small" --shard $S --interval-ms 9
bad "interval too large" --shard $S --interval-ms 3600001
bad "interval not a number" --shard $S --interval-ms fast
bad "malformed endpoint" --shard tcp://nohost
bad "malformed endpoint in list" --shard $S,tcp://h:99999
bad "invalid node name" --shard $S --node 'no spaces'
bad "bad label" --shard $S --label rack
bad "bad log level" --shard $S --log-level loud
bad "missing config file" --shard $S --config /nonexistent/leaf.cfg
bad "positional argument" --shard $S extra
bad "--root with --shard" --shard $S --root tcp://127.0.0.1:7000 --label rack=r1
bad "--root without a rack label" --root tcp://127.0.0.1:7000
bad "--root malformed endpoint" --root tcp://nohost --label rack=r1
bad "xid window 0" --shard $S --xid-window-s 0
printf 'leaf\n    shard = %s\n    intervall-ms = 5\n' "$S" >"$tmp/typo.cfg"
bad "unknown key in config file" --config "$tmp/typo.cfg"
printf 'leaf\n   shard = %s\n' "$S" >"$tmp/bad.cfg"
bad "config file not ZPL" --config "$tmp/bad.cfg"
good "--help" "^Usage: orbit-leaf" --help
good "--version" "^orbit-leaf [0-9]" --version
good "--help offers --root" "^  *.-root ENDPOINT" --help

# A wrong proc root is reported at start (exit 1, one line).
timeout 10 "$bin" --node n1 --shard $S --proc-root /nonexistent/proc >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 1 ] || ! grep -q "^orbit-leaf: .*/nonexistent/proc/stat" "$tmp/err"; then
    echo "FAIL bad proc root: rc=$rc"
    cat "$tmp/err"
    fail=1
else
    echo "ok   bad proc root"
fi

# SIGTERM ends a running leaf cleanly (nothing listens on the port).
term() { # term DESCRIPTION ARGS...
    what=$1
    shift
    "$bin" --node n1 --interval-ms 50 --nvml-lib /nonexistent.so "$@" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    sleep 1.5
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "FAIL $what: still running 5 s after SIGTERM"
        kill -KILL "$pid"
        fail=1
    else
        wait "$pid"
        rc=$?
        if [ "$rc" -ne 0 ]; then
            echo "FAIL $what: exit $rc"
            cat "$tmp/err"
            fail=1
        else
            echo "ok   $what: SIGTERM exits 0"
        fi
    fi
}
term "shard mode" --shard tcp://127.0.0.1:9
# Discovery with no root answering: the leaf keeps trying, warning at most
# once per 10 s, and still stops on SIGTERM.
term "root mode, roots silent" --root tcp://127.0.0.1:9 --label rack=r1
n=$(grep -c "cannot read the topology" "$tmp/err")
if [ "$n" -ne 1 ]; then
    echo "FAIL root mode: want one rate-limited warning, got $n:"
    cat "$tmp/err"
    fail=1
else
    echo "ok   root mode: one warning while the roots are silent"
fi
exit $fail
