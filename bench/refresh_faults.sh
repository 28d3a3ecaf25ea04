#!/bin/bash
# SPDX-License-Identifier: MIT
# Durable refresh at 64 connections (bench/refresh.lua, server on CPU 0, wrk on CPU 1): per
# round, the rate, the server's CPU-µs and minor page faults per rotation (/proc/PID/stat)
# and the mean group-commit batch (/metrics). Minor faults are a count, repeatable on this
# noisy machine where CPU-µs are not. Each round spends 256 fresh refresh tokens.
#   bench/refresh_faults.sh      (env: BIN, a floodgate binary; ROUNDS=3; D=8 seconds)
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/build/release/floodgate}
T=$(mktemp -d)
P=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FG=
trap '[ -n "$FG" ] && kill "$FG" 2>/dev/null; rm -rf "$T"' EXIT
"$BIN" --data-dir "$T/data" user add bench <<< "correct horse battery" > /dev/null
taskset -c 0 "$BIN" --listen "127.0.0.1:$P" --threads 1 --workers 1 \
    --ratelimit-login-ip off --ratelimit-token-ip off --ratelimit-refresh-ip off \
    --lockout-ip-attempts 0 --lockout-user-attempts 0 --lockout-pair-attempts 0 \
    --data-dir "$T/data" --log-level error &
FG=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$P/healthz" > /dev/null && break; sleep 0.1; done
met() {
    curl -s "http://127.0.0.1:$P/metrics" | awk '/^floodgate_store_operations_total/ {o = $2}
        /^floodgate_store_commits_total/ {c = $2} END {print o, c}'
}
# fields: ops, commits before; after; CPU ticks, minor faults before; after; requests; rate
REPORT='{printf "%s rotations/s, %.1f CPU-us and %.2f minor faults per rotation, mean batch %.1f\n",
    $10, ($7 - $5) * 1e6 / hz / $9, ($8 - $6) / $9, ($3 - $1) / ($4 - $2)}'
st() { awk '{print $14 + $15, $10}' "/proc/$FG/stat"; }
for _ in $(seq "${ROUNDS:-3}"); do
    for _ in $(seq 256); do
        curl -s -X POST -H 'Content-Type: application/json' \
            -d '{"username":"bench","password":"correct horse battery"}' \
            "http://127.0.0.1:$P/v1/auth/login"
        echo
    done | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p' > "$T/tokens.txt"
    m0=$(met); s0=$(st)
    out=$(BENCH_TOKENS_FILE=$T/tokens.txt taskset -c 1 wrk -t1 -c64 -d"${D:-8}"s \
        -s bench/refresh.lua "http://127.0.0.1:$P/v1/auth/refresh")
    s1=$(st); m1=$(met)
    req=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    echo "$m0 $m1 $s0 $s1 $req $rps" | awk -v hz="$(getconf CLK_TCK)" "$REPORT"
done
