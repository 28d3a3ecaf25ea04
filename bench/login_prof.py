#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where a login's CPU goes on all cores, alone and beside the rehearsal's cheap flows
(issue #16 item 5), against the raw Argon2id hash it cannot avoid, in one run.

floodgate is started as bench/tokens.py starts it for logins (unpinned, two workers, one
loop thread; 64 users logged in in turn over 8 connections). The CPU of each of its threads
is read from /proc/PID/task before and after each run:

  1. the cheap flows alone (bench/mix.lua, about 1,030 requests/s): what serving them costs
     the loop thread and the store's writer per request;
  2. logins alone, then logins beside the cheap flows: per login, the workers' CPU (the
     hash, and the job around it), the loop thread's and the writer's. Beside the flows,
     their own cost (run 1's per request, times the requests served) is taken off;
  3. bench/argon2_raw on both cores, alone and beside the same flows: its CPU per hash,
     from the kernel's accounting of the child (wait4).

Login's rate is hashing's CPU share over what one login costs. With the same CPU to share,
login against raw Argon2id can reach at most (raw CPU per hash) / (floodgate's CPU per
login). The script prints that ceiling beside the measured ratio of the rates: the first
says what floodgate's own work costs, the second also moves with the machine.

Usage: bench/login_prof.py [--duration 10] [--bin BIN]
       (build first: make BUILD=release all bench-tools; loopback only)"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import tokens as tb  # noqa: E402  (floodgate start-up, wrk, its parsing)

PW = "correct horse battery"


def group(ticks):
    """{thread name: (u, s)} into {workers, loop, store, other}: CPU seconds."""
    out = dict.fromkeys(("workers", "loop", "store", "other"), 0.0)
    for name, (u, s) in ticks.items():
        part = ("workers" if name.startswith("fg-worker") else "loop"
                if name.startswith("fg-loop") else "store" if name == "fg-store" else "other")
        out[part] += (u + s) / hb.HZ
    return out


def measured(pid, fn):
    """fn()'s result and the CPU seconds each part of floodgate spent meanwhile."""
    t0 = group(hb.thread_ticks(pid))
    r = fn()
    t1 = group(hb.thread_ticks(pid))
    return r, {k: t1[k] - t0[k] for k in t0}


def argon2_raw(duration):
    """The raw Argon2id rate of the login's parameters on both cores, and its CPU per hash."""
    p = subprocess.Popen([os.path.join(tb.ROOT, "build", "release", "bench", "argon2_raw"),
                          "2", str(duration), "19456", "2", "1"], stdout=subprocess.PIPE,
                         text=True)
    out = p.stdout.read()
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0
    print(out.strip(), flush=True)
    rate = float(out.strip().rsplit("= ", 1)[1].rstrip("/s"))
    hashes = int(re.search(r"(\d+) hashes in", out).group(1))
    return rate, (ru.ru_utime + ru.ru_stime) / max(hashes, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--bin", default=tb.BIN)
    a = ap.parse_args()
    tb.BIN = os.path.abspath(a.bin)
    d = a.duration
    tmp = tempfile.mkdtemp(prefix="fg-loginprof-")
    fg = None
    try:
        c = json.loads(tb.cli(tmp, "client", "create", "bench", "--scopes", "read",
                              "--grants", "client_credentials,refresh_token", "--json"))
        basic = "Basic " + base64.b64encode(
            f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        port = hb.free_port()
        fg = tb.start_fg(tmp, port, pinned=False, workers=2)
        form = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}
        bearer = tb.post(port, "/oauth2/token", b"grant_type=client_credentials",
                         form)["access_token"]
        for i in range(64):
            tb.post(port, "/v1/users", json.dumps({"username": f"lu{i}", "password": PW})
                    .encode(), {"Content-Type": "application/json"})
        lenv = {"BENCH_USERS": "64", "BENCH_USER_PREFIX": "lu", "BENCH_PASSWORD": PW}
        menv = {"BENCH_AUTH": basic, "BENCH_BEARER": bearer, "BENCH_CONNS": "4",
                "BENCH_RATE": "1030"}
        tb.wrk(port, "/v1/auth/login", "login_pool.lua", lenv, conns=8, duration=2)
        runs = [0]

        def tokens_file():
            # refresh tokens of the flows' own: a token an earlier run spent is now a reuse
            rfile = os.path.join(tmp, f"mix-{runs[0]}.txt")
            runs[0] += 1
            with open(rfile, "w") as f:
                for i in range(16):
                    f.write(tb.post(port, "/v1/auth/login", json.dumps(
                        {"username": f"lu{i}", "password": PW}).encode(),
                        {"Content-Type": "application/json"})["refresh_token"] + "\n")
            return rfile

        def mix(duration, rfile):
            return tb.parse(tb.wrk(port, "/", "mix.lua", dict(menv, BENCH_TOKENS_FILE=rfile),
                                   conns=4, duration=duration))

        def beside_mix(fn):
            """fn() run inside d + 2 seconds of the cheap flows; fn()'s result, the flows'."""
            got, rfile = {}, tokens_file()
            t = threading.Thread(target=lambda: got.update(mix(d + 2, rfile)))
            t.start()
            time.sleep(1)
            try:
                return fn(), got
            finally:
                t.join()

        def login():
            """The successful logins per second in d seconds, and the CPU of each part of
            floodgate meanwhile."""
            def run():
                r = tb.parse(tb.wrk(port, "/v1/auth/login", "login_pool.lua", lenv, conns=8,
                                    duration=d))
                return r["rps"] * (r["requests"] - r["non2xx"]) / max(r["requests"], 1)
            return measured(fg.pid, run)

        rfile = tokens_file()
        m, mcpu = measured(fg.pid, lambda: mix(d, rfile))
        per_mix = {k: v / max(m["requests"], 1) for k, v in mcpu.items()}
        raw_alone = argon2_raw(d)
        alone, acpu = login()
        (mixed, xcpu), mrun = beside_mix(login)
        raw_mix, _ = beside_mix(lambda: argon2_raw(d))
        raw_after = argon2_raw(d)
        # take off the flows' own cost: the requests they were served in the login's d seconds
        served = mrun["rps"] * d
        xcpu = {k: v - per_mix[k] * served for k, v in xcpu.items()}
        print(f"cheap flows alone: {m['rps']:.0f}/s; per request: loop "
              f"{per_mix['loop'] * 1e6:.1f} us, store writer {per_mix['store'] * 1e6:.1f} us, "
              f"workers {per_mix['workers'] * 1e6:.1f} us")
        print(f"raw Argon2id: alone {raw_alone[0]:.1f}/s ({raw_alone[1] * 1e3:.2f} CPU-ms a "
              f"hash), beside the flows {raw_mix[0]:.1f}/s ({raw_mix[1] * 1e3:.2f}), alone "
              f"again {raw_after[0]:.1f}/s ({raw_after[1] * 1e3:.2f})")
        for what, rate, cpu, raw in (("alone", alone, acpu, (raw_alone, raw_after)),
                                     ("beside the cheap flows", mixed, xcpu, (raw_mix,))):
            per = {k: v / max(rate * d, 1) * 1e3 for k, v in cpu.items()}  # CPU-ms a login
            total = sum(per.values())
            hash_ms = sum(r[1] for r in raw) / len(raw) * 1e3
            raw_rate = sum(r[0] for r in raw) / len(raw)
            print(f"\nlogin, {what}: {rate:.1f}/s; CPU-ms per login: workers "
                  f"{per['workers']:.2f}, loop {per['loop']:.3f}, store writer "
                  f"{per['store']:.3f}, other {per['other']:.3f}; total {total:.2f}")
            print(f"  raw Argon2id {hash_ms:.2f} CPU-ms a hash: the workers' excess "
                  f"{per['workers'] - hash_ms:+.3f}, outside the workers "
                  f"{total - per['workers']:.3f}")
            print(f"  ceiling (raw CPU per hash / CPU per login) {hash_ms / total:.3f}x; "
                  f"measured rate ratio {rate / raw_rate:.3f}x (raw {raw_rate:.1f}/s)")
    finally:
        if fg:
            fg.send_signal(signal.SIGTERM)
            fg.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
