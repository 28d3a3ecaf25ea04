#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Event sinks' cost (issue #5): client_credentials and password-login throughput with the
audit log and a webhook attached (token.issued sampled at 100 %, so every request makes at
least one event and one signed POST) against the same server without sinks, in the same
run, rounds alternating off/on. floodgate is pinned to CPU 0 (one loop thread, one worker,
the dispatcher thread); wrk and the webhook receiver (nginx answering 200) to CPU 1, so
the server's CPU includes all the sinks' work. Target: under 5 % throughput cost.

Usage: bench/events.py [--duration 10] [--rounds 2]   (loopback only)"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import tokens as tb  # noqa: E402

BIN = tb.BIN
SECRET = "bench-webhook-secret-0123456789"


def start(tmp, port, sinks, nport):
    data = os.path.join(tmp, "data")
    cmd = ["taskset", "-c", "0", BIN, "--listen", f"127.0.0.1:{port}", "--threads", "1",
           "--workers", "1", "--ratelimit-login-ip", "off", "--ratelimit-token-ip", "off",
           "--lockout-ip-attempts", "0", "--lockout-user-attempts", "0",
           "--lockout-pair-attempts", "0", "--data-dir", data, "--log-level", "warn"]
    if sinks:
        cmd += ["--audit-log", os.path.join(tmp, "audit.jsonl"),
                "--webhook", f"http://127.0.0.1:{nport}/hook", "--webhook-secret", SECRET,
                "--events-token-issued-sample", "100",
                "--dead-letter", os.path.join(tmp, "dead.jsonl")]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    return p


def lines(path):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fg-evbench-")
    nginx, nport = hb.start_nginx(tmp)
    subprocess.run(["taskset", "-p", "-c", "1", str(nginx.pid)], capture_output=True)
    results = {False: [], True: []}
    try:
        tb.cli(tmp, "user", "add", "bench", stdin="correct horse battery\n")
        c = json.loads(tb.cli(tmp, "client", "create", "bench", "--json"))
        basic = "Basic " + base64.b64encode(
            f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        for rnd in range(a.rounds):
            for sinks in (False, True):
                port = hb.free_port()
                fg = start(tmp, port, sinks, nport)
                audit0 = lines(os.path.join(tmp, "audit.jsonl"))
                cc = tb.measure(fg, port, "/oauth2/token", "post.lua",
                                {"BENCH_AUTH": basic,
                                 "BENCH_BODY": "grant_type=client_credentials"}, a.duration)
                login = tb.measure(fg, port, "/v1/auth/login", "post.lua",
                                   {"BENCH_CTYPE": "application/json",
                                    "BENCH_BODY": '{"username":"bench",'
                                                  '"password":"correct horse battery"}'},
                                   a.duration, conns=8)
                fg.send_signal(signal.SIGTERM)
                fg.wait(60)
                audit = lines(os.path.join(tmp, "audit.jsonl")) - audit0
                results[sinks].append((cc, login, audit))
                print(f"round {rnd + 1} sinks {'on ' if sinks else 'off'}: "
                      f"client_credentials {cc['rps']:.0f}/s {cc['cpu']:.1f} CPU-us/req "
                      f"non2xx {cc['non2xx']}; login {login['rps']:.1f}/s "
                      f"{login['cpu']:.0f} CPU-us/req non2xx {login['non2xx']}"
                      + (f"; audit lines {audit}" if sinks else ""), flush=True)
        dead = lines(os.path.join(tmp, "dead.jsonl"))
        for name, k in (("client_credentials", 0), ("login", 1)):
            off = [r[k] for r in results[False]]
            on = [r[k] for r in results[True]]
            rps_ratio = [b["rps"] / x["rps"] for x, b in zip(off, on)]
            cpu_ratio = [b["cpu"] / x["cpu"] for x, b in zip(off, on)]
            med = sorted(rps_ratio)[len(rps_ratio) // 2]
            tot = sum(b["rps"] for b in on) / sum(x["rps"] for x in off)
            print(f"{name}: throughput with sinks {min(rps_ratio):.3f}-{max(rps_ratio):.3f}x "
                  f"without per round (median {med:.3f}x, all rounds {tot:.3f}x: cost "
                  f"{100 * (1 - tot):.1f} %); CPU per request "
                  f"{min(cpu_ratio):.3f}-{max(cpu_ratio):.3f}x")
        print(f"dead-lettered deliveries: {dead} (every event reached the receiver otherwise)")
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
