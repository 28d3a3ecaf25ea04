#!/bin/bash
# SPDX-License-Identifier: MIT
# Instructions per request, counted by valgrind's callgrind (Debian's valgrind): repeatable
# whatever else the machine is doing, unlike wall-clock benchmarks on this shared machine.
#
# floodgate (one loop thread, release build): 2,000 cached introspections, 2,000 cached
# gateway verifies and 500 client_credentials grants on loopback, 300 durable refresh
# rotations one after the other (each its own commit: the loop thread and the store's
# writer thread together, fsync's kernel time not counted), then 500 introspections of the
# 500 tokens those grants issued, each the first of its token (a verification-cache miss:
# signature check and revocation lookup). For each phase: the handler's inclusive
# instructions per call, and the whole process's (parsing, libuv, the handler, the write:
# everything in user space) per request.
#
# nginx (one worker, no master, its static 200 as in bench/http_bench.py), sent the same
# request bytes in the same phases: the whole process's instructions per request. That is
# the reference of issue #16 item 1, counted instead of timed. (Kernel time is in neither
# count: these are user-space instructions.)
# Then the uncached introspections against nginx, and the share of http_parser_execute.
#
#   bench/instructions.sh [CHECKOUT]     (default: this one; build it first: make)
set -eu
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
BIN=$ROOT/build/release/floodgate
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
P=$(free_port)
N=$(free_port)
"$BIN" --data-dir "$T/d" client create bench --scopes read --grants client_credentials \
    --json > "$T/c.json"
printf 'correct horse battery\n' | "$BIN" --data-dir "$T/d" user add bench > /dev/null
valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "$BIN" --listen "127.0.0.1:$P" \
    --data-dir "$T/d" --threads 1 --workers 1 --log-level warn --ratelimit-token-ip off \
    --ratelimit-refresh-ip off \
    2>/dev/null &
VP=$!
mkdir -p "$T/n"
cat > "$T/n/nginx.conf" <<NGINX
worker_processes 1;
master_process off;
daemon off;
error_log $T/n/error.log warn;
pid $T/n/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $T/n/body;
    proxy_temp_path $T/n/proxy;
    fastcgi_temp_path $T/n/fastcgi;
    uwsgi_temp_path $T/n/uwsgi;
    scgi_temp_path $T/n/scgi;
    server {
        listen 127.0.0.1:$N;
        location / {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
    }
}
NGINX
valgrind --tool=callgrind --callgrind-out-file="$T/ng.out" nginx -c "$T/n/nginx.conf" \
    -p "$T/n" 2>/dev/null &
NP=$!
python3 - "$P" "$T/c.json" "$VP" "$N" "$NP" <<'PY'
import base64, http.client, json, subprocess, sys, time
port, cfile, vpid, nport, npid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
c = json.load(open(cfile))
auth = "Basic " + base64.b64encode(f"{c['client_id']}:{c['client_secret']}".encode()).decode()

def connect(p, what):
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", p, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return conn
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{what} under valgrind did not start")
            time.sleep(0.2)

def ctl(pid, *args):
    subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)

conn = connect(port, "floodgate")
ng = connect(nport, "nginx")
form = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
conn.request("POST", "/oauth2/token", "grant_type=client_credentials", form)
tok = json.loads(conn.getresponse().read())["access_token"]
fresh = []
phases = (("POST", "/oauth2/introspect", "token=" + tok, form, 2000),
          ("GET", "/v1/auth/verify", None, {"Authorization": "Bearer " + tok}, 2000),
          ("POST", "/oauth2/token", "grant_type=client_credentials", form, 500))
js = {"Content-Type": "application/json"}
conn.request("POST", "/v1/auth/login", json.dumps({"username": "bench",
             "password": "correct horse battery"}), js)
rt = json.loads(conn.getresponse().read())["refresh_token"]
# each phase into its own dump file (cg.out.1, .2, .3, .4), counted from zero
ctl(vpid, "--zero")
ctl(npid, "--zero")
for method, path, body, h, n in phases:
    for _ in range(n):
        conn.request(method, path, body, h)
        r = conn.getresponse()
        b = r.read()
        assert r.status == 200, (path, r.status)
        if path == "/oauth2/token":
            fresh.append(json.loads(b)["access_token"])
    ctl(vpid, "--dump")
    for _ in range(n):  # nginx: the same bytes (its path is "/", the length the same)
        ng.request(method, "/" + "x" * (len(path) - 1), body, h)
        r = ng.getresponse()
        r.read()
        assert r.status == 200, ("nginx", path, r.status)
    ctl(npid, "--dump")
for _ in range(300):  # durable rotations one at a time: each its own commit, in cg.out.4
    conn.request("POST", "/v1/auth/refresh", json.dumps({"refresh_token": rt}), js)
    r = conn.getresponse()
    assert r.status == 200, ("refresh", r.status)
    rt = json.loads(r.read())["refresh_token"]
ctl(vpid, "--dump")
for _ in range(300):
    ng.request("POST", "/" + "x" * 15, json.dumps({"refresh_token": rt}), js)
    r = ng.getresponse()
    r.read()
ctl(npid, "--dump")
for t in fresh:  # each introspected once: not in the cache (counted into cg.out, at exit)
    conn.request("POST", "/oauth2/introspect", "token=" + t, form)
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["active"], "uncached introspection"
for t in fresh:
    ng.request("POST", "/" + "x" * 17, "token=" + t, form)
    r = ng.getresponse()
    r.read()
PY
kill -TERM $VP $NP
wait $VP || true
wait $NP || true
count() {  # FILE NAME:CALLS...: each function's inclusive instructions per call
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null | python3 -c '
import re, sys
want = {}
for arg in sys.argv[1:]:
    fn, label, calls = arg.split(":")
    want[fn] = (label, int(calls))
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\S*:(\w+) ", line)
    if m and m.group(2) in want:
        name, calls = want.pop(m.group(2))
        n = int(m.group(1).replace(",", "")) / calls
        print(f"{name:34} {n:10.0f} instructions/request")
' "${@:2}"
}
total() {  # FILE REQUESTS: the whole process's instructions per request in that dump
    awk -v n="$2" '/^(summary|totals):/ { t = $2 } END { printf "%.0f", t / n }' "$1"
}
echo "handler (inclusive, floodgate)"
count "$T/cg.out.1" "api_introspect:introspection (cached):2000"
count "$T/cg.out.2" "api_verify:verify (cached):2000"
count "$T/cg.out.3" "grant_client_credentials:client_credentials:500"
count "$T/cg.out.4" "crypto_sign_ed25519_detached:refresh, the token's signature:300"
count "$T/cg.out" "api_introspect:introspection (not cached):500" \
    "crypto_sign_ed25519_verify_detached:  of which the signature check:500"
echo
echo "whole process per request       floodgate      nginx (same bytes)    ratio"
row() {
    local f g
    f=$(total "$T/cg.out.$2" "$3")
    g=$(total "$T/ng.out.$2" "$3")
    printf "%-30s %10s %10s %16s\n" "$1" "$f" "$g" "$(awk -v a="$f" -v b="$g" 'BEGIN { printf "%.2fx", a / b }')"
}
row "introspection (cached)" 1 2000
row "verify (cached)" 2 2000
row "client_credentials" 3 500
row "refresh (durable, one by one)" 4 300
f=$(total "$T/cg.out" 500)
g=$(total "$T/ng.out" 500)
printf "%-30s %10s %10s %16s\n" "introspection (not cached)" "$f" "$g" \
    "$(awk -v a="$f" -v b="$g" 'BEGIN { printf "%.2fx", a / b }')"
echo
echo "of floodgate's, in http_parser_execute (the parser library and the callbacks it makes)"
count "$T/cg.out.1" "http_parser_execute:introspection (cached):2000"
count "$T/cg.out.2" "http_parser_execute:verify (cached):2000"
count "$T/cg.out.3" "http_parser_execute:client_credentials:500"
