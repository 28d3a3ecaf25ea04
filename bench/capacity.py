#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The login capacity floodgate reports (GET /admin/policy, sample.login_capacity) against
the rate it actually serves, closed loop (issue #15 item 3: it read 229, 751 and 1,152
logins/s where 107 were measured).

floodgate (one loop thread, one worker, OWASP's Argon2id: 19 MiB, 2 passes) on CPU 0; wrk on
CPU 1 signing in 64 users in turn over 4 connections, so the worker never idles. Two runs:
  logins only            every request a password hash
  logins + refused       beside them, another wrk sends logins for a locked username,
                         refused before any hash (what a credential-stuffing wave does)
each on the embedded store (a locked login is refused on the loop thread) and on Redis (the
shared guard refuses it on a worker, in a job that does not hash), and, as the reference,
the raw Argon2id rate of the same parameters on CPU 0
(build/release/bench/argon2_raw). Reported: served logins/s, the reported capacity (the
mean of the samples read each second in the run's second half), their ratio.

Usage: bench/capacity.py [--duration 10] [--bin build/release/floodgate]   (loopback only)"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "capacity-bench-" + "0" * 32
PW = "correct horse battery"
USERS = 64


def admin(aport, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{aport}{path}", method="POST" if body
                                 else "GET", data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wrk(port, script, env, conns, duration):
    e = dict(os.environ, **env)
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
                          "-s", os.path.join(ROOT, "bench", script),
                          f"http://127.0.0.1:{port}/v1/auth/login"],
                         capture_output=True, text=True, env=e, timeout=duration + 60).stdout
    m = re.search(r"statuses: (.*)", out)
    return dict(kv.split("=") for kv in m.group(1).split()) if m else {}


def run(binary, tmp, name, duration, refused, store):
    port, aport = hb.free_port(), hb.free_port()
    p = subprocess.Popen(["taskset", "-c", "0", binary, "--listen", f"127.0.0.1:{port}",
                          "--admin-listen", f"127.0.0.1:{aport}", "--threads", "1",
                          "--workers", "1", "--data-dir", os.path.join(tmp, name),
                          "--ratelimit-login-ip", "off", "--ratelimit-register-ip", "off",
                          "--policy-load-elevated", "100000", "--policy-load-surge", "100000",
                          "--policy-load-shed", "100000", "--log-level", "warn", *store],
                         env=dict(os.environ, FLOODGATE_ADMIN_TOKEN=TOKEN),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        hb.wait_port(port)
        hb.wait_port(aport)
        for i in range(USERS):
            admin(aport, "/admin/users", {"username": f"u{i}", "password": PW})
        admin(aport, "/admin/users", {"username": "victim0", "password": PW})
        if refused:  # lock the victim (5 failures from one address lock the pair)
            for _ in range(30):
                try:
                    urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{port}/v1/auth/login", data=json.dumps(
                            {"username": "victim0", "password": "wrong password!"}).encode(),
                        headers={"Content-Type": "application/json"}), timeout=30)
                except urllib.error.HTTPError:
                    pass
        samples, stop = [], threading.Event()

        def sample():
            t0 = time.monotonic()
            while not stop.wait(1.0):
                if time.monotonic() - t0 > duration / 2:
                    samples.append(admin(aport, "/admin/policy")["sample"]["login_capacity"])
        th = threading.Thread(target=sample)
        th.start()
        bg = None
        if refused:
            bg = threading.Thread(target=wrk, args=(port, "login_pool.lua", {
                "BENCH_USERS": "1", "BENCH_USER_PREFIX": "victim", "BENCH_PASSWORD": "x"},
                1, duration))
            bg.start()
        st = wrk(port, "login_pool.lua", {"BENCH_USERS": str(USERS), "BENCH_PASSWORD": PW},
                 4, duration)
        stop.set()
        th.join()
        if bg:
            bg.join()
        served = int(st.get("200", 0)) / duration
        cap = sum(samples) / len(samples) if samples else 0
        return served, cap, st
    finally:
        p.terminate()
        p.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release", "floodgate"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fg-capacity-")
    raw = subprocess.run(["taskset", "-c", "0", os.path.join(ROOT, "build", "release", "bench",
                                                              "argon2_raw"),
                          "1", "5", "19456", "2", "1"], capture_output=True, text=True).stdout
    print("raw:", raw.strip())
    rows = ["| run | served logins/s | reported capacity | reported / served |",
            "|---|---|---|---|"]
    rport = hb.free_port()
    redis = subprocess.Popen(["taskset", "-c", "1", "redis-server", "--port", str(rport),
                              "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        hb.wait_port(rport)
        for store, sname in (([], "LMDB"), (["--store", f"redis://127.0.0.1:{rport}"], "Redis")):
            for name, refused in (("logins only", False), ("logins + refused", True)):
                tag = f"{sname}, {name}"
                key = re.sub(r"\W", "", tag)  # (each run its own data and key prefix)
                served, cap, st = run(a.bin, tmp, key, a.duration, refused,
                                      store + (["--redis-prefix", key + ":"] if store else []))
                print(f"{tag:26} served {served:.1f}/s capacity {cap:.1f}/s statuses {st}",
                      flush=True)
                rows.append(f"| {tag} | {served:.1f} | {cap:.1f} | "
                            f"{cap / served if served else 0:.2f}x |")
    finally:
        redis.terminate()
        redis.wait(30)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
