#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Token benchmarks (issue #3), each beside nginx's static 200 in the same run, server pinned
to CPU 0 and wrk to CPU 1 (one loop thread, one worker: a per-core comparison):

  verify       GET /v1/auth/verify with a cached access token
  introspect   POST /oauth2/introspect (client_secret_basic) of a cached access token
  client_cred  POST /oauth2/token grant_type=client_credentials (a fresh EdDSA JWT each)
  refresh      POST /v1/auth/refresh, each answer durable (group commit, fsync) before sent;
               tokens circulate through a pool (bench/refresh.lua)

then password login on all cores (server unpinned, 2 workers) against the raw Argon2id rate
of the same parameters on the same cores (bench/argon2_raw), measured in the same run.

Usage: bench/tokens.py [--duration 10] [--out FILE] [--bin build/release/floodgate]
(loopback only)"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402  (nginx start-up, wrk parsing, /proc CPU time)

ROOT = hb.ROOT
BIN = os.path.join(ROOT, "build", "release", "floodgate")


def start_fg(tmp, port, pinned=True, workers=1):
    cmd = ([] if not pinned else ["taskset", "-c", "0"]) + [
        BIN, "--listen", f"127.0.0.1:{port}", "--threads", "1", "--workers", str(workers),
        # capacity, not policy: every request comes from 127.0.0.1
        "--ratelimit-login-ip", "off", "--ratelimit-token-ip", "off",
        "--ratelimit-refresh-ip", "off", "--ratelimit-register-ip", "off",
        "--lockout-ip-attempts", "0", "--lockout-user-attempts", "0", "--lockout-pair-attempts", "0",
        "--data-dir", os.path.join(tmp, "data"), "--log-level", "warn"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    return p


def cli(tmp, *args, stdin=None):
    r = subprocess.run([BIN, "--data-dir", os.path.join(tmp, "data"), *args],
                       capture_output=True, text=True, input=stdin, timeout=60)
    if r.returncode:
        sys.exit(f"floodgate {' '.join(args)}: {r.stderr}")
    return r.stdout


def post(port, path, body, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def wrk(port, path, script, env, conns=64, duration=10, threads=1):
    e = dict(os.environ, **env)
    cmd = ["taskset", "-c", "1", "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s",
           "--latency", "--timeout", "10s", "-s", os.path.join(ROOT, "bench", script),
           f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                         env=e).stdout
    return out


def parse(out):
    import re
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = hb.to_ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups())
    p99 = hb.to_ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": reqs, "rps": rps, "p50": p50, "p99": p99,
            "non2xx": int(bad.group(1)) if bad else 0}


def measure(proc, port, path, script, env, duration, conns=64, warmup=True):
    if warmup:  # not for refresh: a warm-up would rotate the seeded tokens away
        wrk(port, path, script, env, conns, 1)
    t0 = hb.cpu_ticks(proc.pid)
    r = parse(wrk(port, path, script, env, conns, duration))
    r["cpu"] = (hb.cpu_ticks(proc.pid) - t0) * 1e6 / hb.HZ / max(r["requests"], 1)
    return r


def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--bin", default=BIN)
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="fg-tokbench-")
    procs = []
    rows = []
    try:
        nginx, nport = hb.start_nginx(tmp)
        procs.append(nginx)
        port = hb.free_port()
        fg = start_fg(tmp, port)
        procs.append(fg)
        c = json.loads(cli(tmp, "client", "create", "bench", "--scopes", "read",
                           "--grants", "client_credentials,refresh_token", "--json"))
        basic = "Basic " + base64.b64encode(f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        tok = post(port, "/oauth2/token", b"grant_type=client_credentials",
                   {"Authorization": basic,
                    "Content-Type": "application/x-www-form-urlencoded"})["access_token"]
        # users for refresh and login
        cli(tmp, "user", "add", "bench", stdin="correct horse battery\n")
        tokens = []
        for _ in range(256):
            tokens.append(post(port, "/v1/auth/login",
                               b'{"username":"bench","password":"correct horse battery"}',
                               {"Content-Type": "application/json"})["refresh_token"])
        tfile = os.path.join(tmp, "tokens.txt")
        with open(tfile, "w") as f:
            f.write("\n".join(tokens) + "\n")

        def row(name, r, ref):
            rows.append((name, r, ref))
            print(f"{name:34} {r['rps']:>9.0f} req/s p50 {r['p50']:.3f} p99 {r['p99']:.3f} ms "
                  f"{r['cpu']:.2f} CPU-us/req non2xx {r['non2xx']}", flush=True)

        # Each reference sends nginx the same request bytes as the floodgate row after it
        # (nginx parses and ignores them and answers its static 200), so both servers read
        # and parse the same input.
        bearer = {"BENCH_AUTH": "Bearer " + tok}
        ref = measure(nginx, nport, "/", "get_auth.lua", bearer, a.duration)
        row("nginx static 200, same GET + Bearer", ref, ref)
        row("GET /v1/auth/verify (cached)",
            measure(fg, port, "/v1/auth/verify", "get_auth.lua", bearer, a.duration), ref)
        intro = {"BENCH_AUTH": basic, "BENCH_BODY": "token=" + tok}
        refp = measure(nginx, nport, "/", "post.lua", intro, a.duration)
        row("nginx static 200, same introspect POST", refp, refp)
        row("POST /oauth2/introspect (cached)",
            measure(fg, port, "/oauth2/introspect", "post.lua", intro, a.duration), refp)
        ccb = {"BENCH_AUTH": basic, "BENCH_BODY": "grant_type=client_credentials"}
        refc = measure(nginx, nport, "/", "post.lua", ccb, a.duration)
        row("nginx static 200, same token POST", refc, refc)
        row("POST /oauth2/token client_credentials",
            measure(fg, port, "/oauth2/token", "post.lua", ccb, a.duration), refc)
        ref2 = measure(nginx, nport, "/", "get_auth.lua", {"BENCH_AUTH": ""}, a.duration)
        row("nginx static 200, small GET", ref2, ref2)
        row("POST /v1/auth/refresh (durable)",
            measure(fg, port, "/v1/auth/refresh", "refresh.lua", {"BENCH_TOKENS_FILE": tfile},
                    a.duration, warmup=False), ref2)
        fg.send_signal(signal.SIGTERM)
        fg.wait(30)
        procs.remove(fg)

        # login on all cores against raw Argon2id on all cores, same run
        lport = hb.free_port()
        fg2 = start_fg(tmp, lport, pinned=False, workers=2)
        procs.append(fg2)
        out = wrk(lport, "/v1/auth/login", "post.lua",
                  {"BENCH_CTYPE": "application/json",
                   "BENCH_BODY": '{"username":"bench","password":"correct horse battery"}'},
                  conns=8, duration=a.duration)
        login = parse(out)
        fg2.send_signal(signal.SIGTERM)
        fg2.wait(30)
        procs.remove(fg2)
        raw = subprocess.run([os.path.join(ROOT, "build", "release", "bench", "argon2_raw"),
                              "2", str(a.duration), "19456", "2", "1"],
                             capture_output=True, text=True, timeout=a.duration + 30).stdout
        raw_rate = float(raw.strip().rsplit("= ", 1)[1].rstrip("/s"))
        print(raw.strip())
        print(f"login on 2 cores: {login['rps']:.1f}/s p50 {login['p50']:.1f} ms, "
              f"non2xx {login['non2xx']} = {login['rps'] / raw_rate:.2f}x raw Argon2id")

        lines = hb.ratio_table(rows)
        lines.append(f"| password login, 2 cores (Argon2id m=19456 t=2 p=1) | {login['rps']:.1f} | "
                     f"{login['p50']:.1f} | {login['p99']:.1f} | | raw Argon2id {raw_rate:.1f}/s: "
                     f"{login['rps'] / raw_rate:.2f}x | | {login['non2xx']} |")
        hb.emit_table(lines, a.out)
    finally:
        hb.stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
