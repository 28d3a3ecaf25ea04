#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where a token flow's CPU goes, against its limit (issue #16 items 1, 2 and 4): a profile
of floodgate under the flow, beside nginx's static 200 for the same request bytes and the
raw cryptography, in one run. Server pinned to CPU 0, wrk to CPU 1, 64 connections.

For each flow (cc: client_credentials, a fresh EdDSA JWT each; verify and introspect: a
cached access token; uncached: introspection cycling through 65,536 access tokens, 4x the
verification cache's slots, so each request checks a signature and the revoked list):

  1. floodgate alone: CPU per request from /proc, user and kernel apart;
  2. floodgate again under `perf record -e cpu-clock` (Debian's linux-perf): each part's
     share of the samples (kernel, libsodium, floodgate's own code, libc, http_parser,
     libuv, the rest), applied to the CPU of run 1 (perf's own cost is not in it);
  3. nginx at full speed, as bench/tokens.py measures it;
  4. nginx paced to floodgate's rate (each connection waits before each request, wrk's
     delay(); the number of connections calibrated so the two rates are close). A server's
     kernel CPU per request depends on its rate: at four times the rate, more answers
     share each wake-up of the load generator, each epoll_wait and each cache refill.

libsodium's Ed25519 signature and signature check alone (bench/crypto_raw) run before and
after.

Printed: per flow, µs per request of each part, and the gap to the limit (nginx + the
flow's cryptography) split into: the cryptography inside the server against alone,
user-space code against nginx's, and kernel time against nginx's at each rate.

With --flame DIR, each flow is run once more under `perf record --call-graph dwarf` and its
flame graph written to DIR/flame-FLOW.svg (bench/flamegraph.py).

Usage: bench/flow_prof.py [--duration 8] [--flows cc,verify,introspect,uncached] [--bin BIN]
                          [--flame DIR]
       (build first: make BUILD=release all bench-tools; loopback only)"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import tokens as tb  # noqa: E402  (floodgate start-up, wrk, its parsing, crypto_raw)
import flamegraph as fgraph  # noqa: E402

PARTS = ("kernel", "libsodium", "floodgate", "libc", "http_parser", "libuv", "liblmdb",
         "other")


def run(proc, port, path, script, env, duration, conns=64, perf=None):
    """One measured wrk run (after a 1 s warm-up): rate and CPU-µs per request, user and
    kernel; with perf=FILE, recorded by perf meanwhile."""
    tb.wrk(port, path, script, env, conns, 1)
    rec = None
    if perf:
        rec = subprocess.Popen(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "2999",
                                "-p", str(proc.pid), "-o", perf, "--", "sleep",
                                str(duration)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    u0, s0 = hb.user_sys_ticks(proc.pid)
    r = tb.parse(tb.wrk(port, path, script, env, conns, duration))
    u1, s1 = hb.user_sys_ticks(proc.pid)
    if rec:
        rec.wait(timeout=duration + 60)
    n = max(r["requests"], 1)
    r["user"] = (u1 - u0) * 1e6 / hb.HZ / n
    r["sys"] = (s1 - s0) * 1e6 / hb.HZ / n
    r["cpu"] = r["user"] + r["sys"]
    r["conns"] = conns
    return r


def shares(perf):
    """{part: share of the samples} from a perf.data file, by the object they fell in."""
    out = subprocess.run(["perf", "report", "-i", perf, "--no-children", "--sort", "dso",
                          "--stdio"], capture_output=True, text=True, timeout=120).stdout
    got = dict.fromkeys(PARTS, 0.0)
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if not m:
            continue
        pct, dso = float(m.group(1)) / 100, m.group(2)
        if dso.startswith("[kernel"):
            part = "kernel"
        elif dso.startswith("libsodium"):
            part = "libsodium"
        elif dso == "floodgate":
            part = "floodgate"
        elif dso.startswith("libc.so") or dso.startswith("libc-"):
            part = "libc"
        elif dso.startswith("libhttp_parser"):
            part = "http_parser"
        elif dso.startswith("libuv"):
            part = "libuv"
        elif dso.startswith("liblmdb"):
            part = "liblmdb"
        else:
            part = "other"
        got[part] += pct
    return got


def woken(perf):
    """The share of the samples under sock_def_readable: the kernel waking the reader of a
    socket this process wrote to (on loopback, the load generator), callers included."""
    out = subprocess.run(["perf", "report", "-i", perf, "--children", "--sort", "sym",
                          "-g", "none", "--stdio"], capture_output=True, text=True,
                         timeout=120).stdout
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+[\d.]+%\s+\[k\] sock_def_readable\s*$", line)
        if m:
            return float(m.group(1)) / 100
    return 0.0


def paced(nginx, nport, script, env, duration, rate, perf):
    """nginx driven near `rate` requests/s: 2 ms between a connection's answer and its
    next request, with the number of connections set from a 2 s calibration run."""
    env = dict(env, BENCH_DELAY_MS="2")
    probe = tb.parse(tb.wrk(nport, "/", script, env, 64, 2))
    period = 64 / max(probe["rps"], 1)  # seconds per request per connection
    conns = max(1, min(1000, round(rate * period)))
    return run(nginx, nport, "/", script, env, duration, conns, perf=perf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--flows", default="cc,verify,introspect,uncached")
    ap.add_argument("--bin", default=tb.BIN)
    ap.add_argument("--flame", metavar="DIR",
                    help="also write a flame graph of each flow to DIR/flame-FLOW.svg (a "
                    "further run, recorded with DWARF call graphs)")
    a = ap.parse_args()
    tb.BIN = os.path.abspath(a.bin)
    if not shutil.which("perf"):
        sys.exit("flow_prof: needs perf (Debian: linux-perf)")
    tmp = tempfile.mkdtemp(prefix="fg-flowprof-")
    procs = []
    try:
        floor0 = tb.crypto_floor(a.duration)
        nginx, nport = hb.start_nginx(tmp)
        procs.append(nginx)
        port = hb.free_port()
        fg = tb.start_fg(tmp, port)
        procs.append(fg)
        c = json.loads(tb.cli(tmp, "client", "create", "bench", "--scopes", "read",
                              "--grants", "client_credentials", "--json"))
        basic = "Basic " + base64.b64encode(
            f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        tok = tb.post(port, "/oauth2/token", b"grant_type=client_credentials",
                      {"Authorization": basic,
                       "Content-Type": "application/x-www-form-urlencoded"})["access_token"]
        flows = {  # path, script, env, the cryptography each request does (0: sign, 1: check)
            "cc": ("/oauth2/token", "post.lua",
                   {"BENCH_AUTH": basic, "BENCH_BODY": "grant_type=client_credentials"}, (0,)),
            "verify": ("/v1/auth/verify", "get_auth.lua", {"BENCH_AUTH": "Bearer " + tok}, ()),
            "introspect": ("/oauth2/introspect", "post.lua",
                           {"BENCH_AUTH": basic, "BENCH_BODY": "token=" + tok}, ()),
            "uncached": ("/oauth2/introspect", "introspect_pool.lua",
                         {"BENCH_AUTH": basic,
                          "BENCH_TOKENS_FILE": os.path.join(tmp, "access.txt")}, (1,)),
        }
        if "uncached" in a.flows.split(","):
            tb.access_tokens(port, basic, 65536, flows["uncached"][2]["BENCH_TOKENS_FILE"])
        results = []
        for key in a.flows.split(","):
            path, script, env, crypto = flows[key]
            full = run(nginx, nport, "/", script, env, a.duration)
            r = run(fg, port, path, script, env, a.duration)
            perf = os.path.join(tmp, f"perf.{key}")
            p = run(fg, port, path, script, env, a.duration, perf=perf)
            sh = shares(perf)
            nperf = os.path.join(tmp, f"perf.nginx.{key}")
            slow = paced(nginx, nport, script, env, a.duration, r["rps"], nperf)
            sh["woken"] = woken(perf)
            slow["woken"] = woken(nperf) * slow["cpu"]
            results.append((key, crypto, r, p, sh, full, slow))
            print(f"{key}: floodgate {r['rps']:.0f}/s {r['cpu']:.2f} us (user {r['user']:.2f}, "
                  f"kernel {r['sys']:.2f}); nginx {full['rps']:.0f}/s {full['cpu']:.2f} us; "
                  f"nginx paced {slow['rps']:.0f}/s over {slow['conns']} connections "
                  f"{slow['cpu']:.2f} us", flush=True)
            if a.flame:
                os.makedirs(a.flame, exist_ok=True)
                data = os.path.join(tmp, f"perf.dwarf.{key}")
                rec = fgraph.record(fg.pid, a.duration, data)
                tb.wrk(port, path, script, env, 64, a.duration)
                rec.wait(timeout=a.duration + 60)
                out = os.path.join(a.flame, f"flame-{key}.svg")
                fgraph.svg(fgraph.fold(data), f"floodgate, {key} ({path}), 64 connections, "
                           f"server on CPU 0", out)
                print(f"{key}: flame graph {out}", flush=True)
        floor1 = tb.crypto_floor(a.duration)
        for key, crypto, r, p, sh, full, slow in results:
            # the flow's cryptography alone: the mean of the runs before and after
            cost = sum((floor0[i] + floor1[i]) / 2 for i in crypto)
            what = " + ".join(("signature", "signature check")[i] for i in crypto) or "nothing"
            alone = ", ".join(f"{('sign', 'check')[i]} {floor0[i]:.2f} before, "
                              f"{floor1[i]:.2f} after" for i in crypto)
            print(f"\n== {key}: CPU-us per request, floodgate's parts (the shares of a perf "
                  f"profile, {p['rps']:.0f}/s under perf, applied to the unprofiled "
                  f"{r['cpu']:.2f} us)")
            part = {k: sh[k] * r["cpu"] for k in PARTS}
            for k in PARTS:
                print(f"  {k:12} {part[k]:6.2f}  ({sh[k] * 100:.1f} %)")
            user = r["cpu"] - part["kernel"] - part["libsodium"]
            print(f"  user space apart from libsodium {user:.2f}; kernel by /proc {r['sys']:.2f}")
            print(f"  nginx full speed  {full['rps']:>8.0f}/s  {full['cpu']:6.2f} "
                  f"(user {full['user']:.2f}, kernel {full['sys']:.2f})")
            print(f"  nginx paced       {slow['rps']:>8.0f}/s  {slow['cpu']:6.2f} "
                  f"(user {slow['user']:.2f}, kernel {slow['sys']:.2f})")
            if crypto:
                print(f"  raw {what}  {cost:6.2f} ({alone})")
            limit = full["cpu"] + cost
            print(f"  limit (nginx full speed + {what}): {limit:.2f}; "
                  f"gap {r['cpu'] - limit:+.2f}")
            print(f"    the cryptography in the server against alone: "
                  f"{part['libsodium'] - cost:+.2f}")
            print(f"    user space apart from libsodium against nginx's user time: "
                  f"{user - full['user']:+.2f}")
            print(f"    kernel against nginx's at full speed: {part['kernel'] - full['sys']:+.2f}, "
                  f"of which nginx's own paced/full difference "
                  f"{slow['sys'] - full['sys']:+.2f}")
            print(f"    waking the reader of each answer (sock_def_readable): floodgate "
                  f"{sh['woken'] * r['cpu']:.2f}, nginx paced {slow['woken']:.2f}")
            plimit = slow["cpu"] + cost
            print(f"  limit (nginx at floodgate's rate + {what}): {plimit:.2f}; "
                  f"gap {r['cpu'] - plimit:+.2f}")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
