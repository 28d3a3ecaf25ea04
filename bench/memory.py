#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What floodgate's own memory is made of (issue #16 item 6: RSS bounded by configuration,
not by the store). One loop thread and one worker on the embedded store; the process's
anonymous resident memory (RssAnon: not the store's mapped file pages) read after each
step, each step filling one part that configuration bounds:

  1. at start;
  2. 256 password logins (the worker's Argon2id memory: argon2_memory);
  3. 40,000 client_credentials tokens issued, then introspected in turn until the loop's
     verification cache is full (verify_cache slots);
  4. refresh rotations at full speed for --refresh-seconds, enough to reach
     store_fold_at and fold (the spent refresh tokens held in memory).

Idle connections are measured by bench/conns.py. docs/deploy.md, "Memory", gives the
figures.

Usage: bench/memory.py [--refresh-seconds 15] [--bin build/release/floodgate]
       (loopback only)"""

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import tokens as tb  # noqa: E402  (floodgate start-up, the CLI, wrk and its parsing)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--refresh-seconds", type=int, default=15)
    ap.add_argument("--bin", default=tb.BIN)
    a = ap.parse_args()
    tb.BIN = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="fg-memory-", dir="/var/tmp")
    port = hb.free_port()
    fg = tb.start_fg(tmp, port, pinned=False, workers=1)
    rows = []

    def step(what):
        rows.append((what, hb.rss_kib(fg.pid)["RssAnon"] / 1024))
        print(f"{what}: {rows[-1][1]:.1f} MiB", flush=True)

    try:
        step("at start")
        c = json.loads(tb.cli(tmp, "client", "create", "m", "--scopes", "read", "--grants",
                              "client_credentials", "--introspection", "--json"))
        basic = "Basic " + base64.b64encode(
            f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        tb.cli(tmp, "user", "add", "bench", stdin="correct horse battery\n")
        refresh = []
        for _ in range(256):
            refresh.append(tb.post(port, "/v1/auth/login",
                                   b'{"username":"bench","password":"correct horse battery"}',
                                   {"Content-Type": "application/json"})["refresh_token"])
        step("after 256 logins")
        afile = os.path.join(tmp, "access.txt")
        tb.access_tokens(port, basic, 40000, afile)
        tb.wrk(port, "/oauth2/introspect", "introspect_pool.lua",
               {"BENCH_AUTH": basic, "BENCH_TOKENS_FILE": afile}, 16, 6)
        step("after 40,000 access tokens introspected")
        rfile = os.path.join(tmp, "refresh.txt")
        with open(rfile, "w") as f:
            f.write("\n".join(refresh) + "\n")
        r = tb.parse(tb.wrk(port, "/v1/auth/refresh", "refresh.lua",
                            {"BENCH_TOKENS_FILE": rfile}, 64, a.refresh_seconds))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as m:
            text = m.read().decode()
        got = {line.split()[0]: line.split()[1] for line in text.splitlines()
               if line.startswith(("floodgate_store_spent_held ",
                                   "floodgate_store_folds_total "))}
        step(f"after {r['requests']:,} refresh rotations (folds: "
             f"{got.get('floodgate_store_folds_total')}, held now: "
             f"{got.get('floodgate_store_spent_held')})")
    finally:
        fg.terminate()
        fg.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| step | RssAnon MiB | added |\n|---|---|---|")
    prev = None
    for what, mib in rows:
        print(f"| {what} | {mib:.1f} | {'' if prev is None else f'+{mib - prev:.1f}'} |")
        prev = mib


if __name__ == "__main__":
    main()
