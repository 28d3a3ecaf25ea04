#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The launch rehearsal (issue #4): rehearse/launch.json played by `floodgate rehearse`
against floodgate on the embedded store, server pinned to CPU 0 (one loop thread, one
worker: one core), the generator pinned to CPU 1 with --spin. Logins ramp to 10x the login
capacity measured by the tool just before the phases (closed-loop logins while the "before"
phase's other flows run: the capacity left for logins in that mix), while introspection,
verify, refresh and client_credentials run steadily.

Reference, same run, same core: the raw Argon2id rate of the same parameters
(bench/argon2_raw, one thread on CPU 0), so the measured capacity can be judged.

Reports: login goodput at the peak as a fraction of the capacity (target >= 0.9), the
latency of shed (503) logins (target p99 < 5 ms), introspection p99 during the ramp and
the peak (target <= 10 ms), the mode timeline, and floodgate's CPU-us per answered request.
Writes the HTML report (default docs/rehearsal-launch.html) and the JSON beside it.

With --flow oidc (and rehearse/oidc-surge.json) the surge is of browser sign-ins (the
login page, its form, the code exchanged: issue #13), and the report adds how long the
answered sign-in forms took at most (target: none past hash_deadline, 2 s).

Usage: bench/launch.py [--scenario rehearse/launch.json] [--flow login|oidc] [--html PATH]
(loopback only)"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402

ROOT = hb.ROOT
BIN = os.path.join(ROOT, "build", "release", "floodgate")
MODES = ["normal", "elevated", "surge", "shed"]


def timeline(seconds):
    out, last = [], None
    for s in seconds:
        m = s["mode"]
        if m != last and m >= 0:
            out.append(f"{s['t']:.0f}s {MODES[m]} ({s['phase']})")
            last = m
    return ", ".join(out)


def phase(res, name):
    return next(p for p in res["phases"] if p["name"] == name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=os.path.join(ROOT, "rehearse", "launch.json"))
    ap.add_argument("--html", default=os.path.join(ROOT, "docs", "rehearsal-launch.html"))
    ap.add_argument("--flow", default="login", choices=("login", "oidc"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fg-launch-")
    port, admin = hb.free_port(), hb.free_port()
    token = secrets.token_hex(32)
    env = dict(os.environ, FLOODGATE_ADMIN_TOKEN=token)
    fg = subprocess.Popen(
        ["taskset", "-c", "0", BIN, "--listen", f"127.0.0.1:{port}",
         "--admin-listen", f"127.0.0.1:{admin}", "--threads", "1", "--workers", "1",
         "--trusted-proxies", "127.0.0.1", "--data-dir", os.path.join(tmp, "data"),
         "--log-level", "warn"], env=env, stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(tmp, "server.log"), "w"))
    try:
        hb.wait_port(port)
        hb.wait_port(admin)
        raw = subprocess.run(["taskset", "-c", "0",
                              os.path.join(ROOT, "build", "release", "bench", "argon2_raw"),
                              "1", "10", "19456", "2", "1"],
                             capture_output=True, text=True, timeout=60).stdout
        raw_rate = float(raw.strip().rsplit("= ", 1)[1].rstrip("/s"))
        print(raw.strip())
        out_json = os.path.splitext(a.html)[0] + ".json"
        t0 = hb.cpu_ticks(fg.pid)
        r = subprocess.run(["taskset", "-c", "1", BIN, "rehearse", a.scenario, "--spin",
                            "--target", f"http://127.0.0.1:{port}",
                            "--admin", f"http://127.0.0.1:{admin}",
                            "--json", out_json, "--html", a.html], env=env, timeout=900)
        ticks = hb.cpu_ticks(fg.pid) - t0
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        if r.returncode:
            sys.exit(f"rehearse failed ({r.returncode})")
    finally:
        fg.terminate()
        fg.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    res = json.load(open(out_json))
    cap = res["login_capacity"]["per_s"]
    peak, ramp = phase(res, "peak"), phase(res, "ramp")
    login = peak["flows"][a.flow]
    shed_p99 = max(ramp["flows"][a.flow]["shed_latency_us"]["p99"], login["shed_latency_us"]["p99"])
    intro = max(ramp["flows"]["introspect"]["latency_us"]["p99"],
                peak["flows"]["introspect"]["latency_us"]["p99"])
    answered = sum(f["sent"] - f["dropped"] - f["skipped"] for f in res["totals"].values())
    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(answered, 1)
    with_ = res["login_capacity"].get("measured_with")
    print(f"login capacity {cap:.1f}/s measured"
          + (f" with phase '{with_}''s other flows running" if with_ else "")
          + f" = {cap / raw_rate:.2f}x raw Argon2id ({raw_rate:.1f}/s, one thread, same core)")
    what = "browser sign-ins" if a.flow == "oidc" else "login"
    print(f"peak: {what} arrivals {login['rate_per_s']:.0f}/s, goodput {login['goodput_per_s']:.1f}/s "
          f"= {login['goodput_per_s'] / cap:.2f}x capacity (target >= 0.90)")
    if a.flow == "oidc":
        shed = login["shed_latency_us"]["n"]
        print(f"shed answers (503): {shed} at the peak ({login['retries']} busy-page posts again; "
              f"{login['status']['503']} people still shed after {res['scenario']['timeout_ms']} ms), "
              f"p99 {shed_p99 / 1000:.2f} ms over ramp and peak (target < 5 ms)")
        worst = max(ramp["flows"]["oidc"]["latency_us"]["max"], login["latency_us"]["max"])
        print(f"answered sign-in forms: p99 {login['latency_us']['p99'] / 1000:.1f} ms, "
              f"max {worst / 1000:.0f} ms over ramp and peak (target: none past hash_deadline, "
              f"2000 ms); a whole sign-in p50 {login['signin_latency_us']['p50'] / 1000:.0f} ms, "
              f"p99 {login['signin_latency_us']['p99'] / 1000:.0f} ms")
    else:
        print(f"shed logins (503): {login['status']['503']} at the peak, p99 {shed_p99 / 1000:.2f} ms "
              f"over ramp and peak (target < 5 ms)")
    print(f"introspection p99 during ramp and peak: {intro / 1000:.2f} ms (target <= 10 ms)")
    print(f"generator delay p99 {res['generator']['lag_p99_us'] / 1000:.2f} ms")
    print(f"server CPU {ticks / os.sysconf('SC_CLK_TCK'):.1f} s for {answered} requests "
          f"= {cpu_us:.0f} us/request (hashing included)")
    waits = dict(re.findall(r'floodgate_worker_queue_wait_seconds_bucket\{le="([^"]+)"\} (\d+)',
                            metrics.decode()))
    expired = re.search(r'floodgate_worker_jobs_total\{result="expired"\} (\d+)', metrics.decode())
    print(f"hash jobs: {waits['+Inf']} dequeued; waited past 1 s: "
          f"{int(waits['+Inf']) - int(waits['1'])}; reached hash_deadline (2 s) in the queue and "
          f"answered busy instead of hashed late: {expired.group(1)}; hashed after waiting past "
          f"it: {int(waits['+Inf']) - int(waits['2']) - int(expired.group(1))} (target: none)")
    print("modes:", timeline(res["seconds"]))
    print(f"report: {a.html}")


if __name__ == "__main__":
    main()
