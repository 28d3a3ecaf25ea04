#!/bin/bash
# SPDX-License-Identifier: MIT
# Instructions per request of the token handlers, counted by valgrind's callgrind (Debian's
# valgrind): repeatable whatever else the machine is doing, unlike wall-clock benchmarks on
# this shared machine. One loop thread, release build; 2,000 cached introspections, 2,000
# cached gateway verifies and 500 client_credentials grants on loopback, then 500
# introspections of the 500 tokens those grants issued, each the first of its token (a
# verification-cache miss: signature check and revocation lookup); the inclusive
# instructions of each handler divided by its calls, and for the misses the signature
# check's own share (libsodium's verify) beside them.
#
#   bench/instructions.sh [CHECKOUT]     (default: this one; build it first: make)
set -eu
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
BIN=$ROOT/build/release/floodgate
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --data-dir "$T/d" client create bench --scopes read --grants client_credentials \
    --json > "$T/c.json"
valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "$BIN" --listen "127.0.0.1:$P" \
    --data-dir "$T/d" --threads 1 --workers 1 --log-level warn --ratelimit-token-ip off \
    2>/dev/null &
VP=$!
python3 - "$P" "$T/c.json" "$VP" <<'PY'
import base64, http.client, json, subprocess, sys, time
port, cfile, vpid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = json.load(open(cfile))
auth = "Basic " + base64.b64encode(f"{c['client_id']}:{c['client_secret']}".encode()).decode()
deadline = time.monotonic() + 60
while True:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("floodgate under valgrind did not start")
        time.sleep(0.2)
form = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
conn.request("POST", "/oauth2/token", "grant_type=client_credentials", form)
tok = json.loads(conn.getresponse().read())["access_token"]
fresh = []
for method, path, body, h, n in (
        ("POST", "/oauth2/introspect", "token=" + tok, form, 2000),
        ("GET", "/v1/auth/verify", None, {"Authorization": "Bearer " + tok}, 2000),
        ("POST", "/oauth2/token", "grant_type=client_credentials", form, 500)):
    for _ in range(n):
        conn.request(method, path, body, h)
        r = conn.getresponse()
        b = r.read()
        assert r.status == 200, (path, r.status)
        if path == "/oauth2/token":
            fresh.append(json.loads(b)["access_token"])
# the counts so far into their own file (cg.out.1), then the misses alone (cg.out, at exit)
subprocess.run(["callgrind_control", "--dump", vpid], check=True, capture_output=True)
for t in fresh:  # each introspected once: not in the cache
    conn.request("POST", "/oauth2/introspect", "token=" + t, form)
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["active"], "uncached introspection"
PY
kill -TERM $VP
wait $VP || true
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
count "$T/cg.out.1" "api_introspect:introspection (cached):2000" "api_verify:verify (cached):2000" \
    "grant_client_credentials:client_credentials:501"
count "$T/cg.out" "api_introspect:introspection (not cached):500" \
    "crypto_sign_ed25519_verify_detached:  of which the signature check:500"
