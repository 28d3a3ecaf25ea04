#!/bin/bash
# SPDX-License-Identifier: MIT
# Redis's own instructions per durable refresh rotation, counted by valgrind's callgrind
# on redis-server (Debian's valgrind): repeatable whatever else the machine is doing, unlike
# Redis's CPU time in bench/refresh_faults.py --redis (issue #16 item 3's second half).
#
# redis-server (appendonly yes, appendfsync always, as bench/scaleout.py runs it) under
# callgrind; floodgate (release build, one loop thread) on it. After a login and 20
# rotations to warm up, ROTATIONS rotations one after the other, counted from zero. Then,
# on the same Redis, the reference: as many calls of a script that only SETs one key of a
# record's size, one after the other on one connection. Printed: each one's instructions
# per call, and the functions of Redis that take the most of a rotation's (self, a profile).
# (Kernel time, the fsync and the socket calls, is in neither count.)
#
#   bench/redis_instructions.sh [CHECKOUT] [ROTATIONS]   (default: this one, 500)
#   KEEP=DIR keeps the dumps there for callgrind_annotate (rd.out.1: the rotations)
set -eu
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
BIN=$ROOT/build/release/floodgate
N=${2:-500}
T=$(mktemp -d)
VP=
FP=
cleanup() {
    for p in $FP $VP; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ -n "${KEEP:-}" ]; then cp "$T"/rd.out.* "$KEEP"/ || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
RP=$(free_port)
P=$(free_port)
mkdir -p "$T/r"
valgrind --tool=callgrind --callgrind-out-file="$T/rd.out" redis-server --port "$RP" \
    --bind 127.0.0.1 --dir "$T/r" --save "" --appendonly yes --appendfsync always \
    --loglevel warning > /dev/null 2>&1 &
VP=$!
for _ in $(seq 300); do
    redis-cli -p "$RP" ping 2>/dev/null | grep -q PONG && break
    sleep 0.2
done
head -c 32 /dev/urandom > "$T/secret.key"
chmod 600 "$T/secret.key"
STORE=(--store "redis://127.0.0.1:$RP" --secret-key-file "$T/secret.key" --data-dir "$T/d")
printf 'correct horse battery\n' | "$BIN" "${STORE[@]}" user add bench > /dev/null
"$BIN" --listen "127.0.0.1:$P" "${STORE[@]}" --threads 1 --workers 1 --log-level warn \
    --ratelimit-refresh-ip off --ratelimit-login-ip off 2>/dev/null &
FP=$!
python3 - "$P" "$RP" "$VP" "$N" "$(dirname "$0")" <<'PY'
import http.client, json, socket, subprocess, sys
port, rport, vpid, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, sys.argv[5])
import http_bench as hb  # (wait_port)
hb.wait_port(port, 60)
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
js = {"Content-Type": "application/json"}
conn.request("POST", "/v1/auth/login", json.dumps({"username": "bench",
             "password": "correct horse battery"}), js)
rt = json.loads(conn.getresponse().read())["refresh_token"]

def rotate(k):
    global rt
    for _ in range(k):
        conn.request("POST", "/v1/auth/refresh", json.dumps({"refresh_token": rt}), js)
        r = conn.getresponse()
        b = r.read()
        assert r.status == 200, ("refresh", r.status, b)
        rt = json.loads(b)["refresh_token"]

def ctl(*args):
    subprocess.run(["callgrind_control", *args, vpid], check=True, capture_output=True)

rd = socket.create_connection(("127.0.0.1", int(rport)), timeout=60)

def call(*args):  # one command on one connection, its answer read whole (a line, or a bulk)
    rd.sendall(f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a)}\r\n{a}\r\n".encode() for a in args))
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
        data += rd.recv(65536)
    return data.decode().split("\r\n")[-2]

rotate(20)
sha = call("SCRIPT", "LOAD", "redis.call('SET', KEYS[1], ARGV[1]) return 1")
ctl("--zero")
rotate(n)  # -> rd.out.1
ctl("--dump")
for i in range(n):  # -> rd.out.2: one after the other on one connection, as floodgate's
    assert call("EVALSHA", sha, "1", f"floor:{i}", "v" * 120) == ":1"
ctl("--dump")
PY
total() {  # FILE CALLS: the whole process's instructions per call in that dump
    awk -v n="$2" '/^(summary|totals):/ { t = $2 } END { printf "%.0f", t / n }' "$1"
}
R=$(total "$T/rd.out.1" "$N")
F=$(total "$T/rd.out.2" "$N")
echo "Redis's instructions per call (redis-server, user space)"
printf "%-52s %10s\n" "a durable refresh rotation (floodgate's script)" "$R"
printf "%-52s %10s\n" "the reference: a script that SETs one key" "$F"
echo
echo "where a rotation's go (self, the first 15 functions)"
callgrind_annotate --inclusive=no --threshold=100 "$T/rd.out.1" 2>/dev/null | python3 -c '
import re, sys
n = 0
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S+) \[(\S+)\]", line)
    if not m or float(m.group(2)) >= 99.9 or n >= 15:
        continue  # (the totals, and main and what calls it)
    fn, obj = m.group(3).split(":")[-1], m.group(4).rsplit("/", 1)[-1]
    if fn.startswith("0x"):  # (Debian strips the static ones: Lua and Redis within)
        fn = "a function without a symbol"
    print(f"  {m.group(2):>5}%  {fn}  ({obj})")
    n += 1
'
