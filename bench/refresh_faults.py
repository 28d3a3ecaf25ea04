#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Durable refresh at 64 connections (bench/refresh.lua; floodgate as bench/tokens.py starts
it, on CPU 0, wrk on CPU 1): per round, the rate, the server's CPU-us and minor page faults
per rotation (/proc/PID/stat) and the mean group-commit batch (/metrics). Minor faults are a
count, repeatable on this noisy machine where CPU-us are not. Each round spends 256 fresh
refresh tokens. With --bin, another build: run two alternately to compare them.

Usage: bench/refresh_faults.py [--rounds 3] [--duration 8] [--bin build/release/floodgate]
(loopback only)"""

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402  (cpu_ticks)
import tokens as tb  # noqa: E402  (start_fg, cli, post, wrk, parse)

LOGIN = b'{"username":"bench","password":"correct horse battery"}'


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def store_counts(port):
    """(write operations, commits) from the server's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return tuple(float(re.search(rf"^floodgate_store_{name}_total (\S+)", text, re.M).group(1))
                 for name in ("operations", "commits"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--bin", default=tb.BIN)
    a = ap.parse_args()
    tb.BIN = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="fg-refresh-faults-")
    fg = None
    try:
        tb.cli(tmp, "user", "add", "bench", stdin="correct horse battery\n")
        port = hb.free_port()
        fg = tb.start_fg(tmp, port)
        tfile = os.path.join(tmp, "tokens.txt")
        for _ in range(a.rounds):
            with open(tfile, "w") as f:  # the round before spent its tokens
                f.write("\n".join(tb.post(port, "/v1/auth/login", LOGIN,
                                          {"Content-Type": "application/json"})["refresh_token"]
                                  for _ in range(256)) + "\n")
            ops0, commits0 = store_counts(port)
            cpu0, flt0 = hb.cpu_ticks(fg.pid), minor_faults(fg.pid)
            r = tb.parse(tb.wrk(port, "/v1/auth/refresh", "refresh.lua",
                                {"BENCH_TOKENS_FILE": tfile}, 64, a.duration))
            cpu1, flt1 = hb.cpu_ticks(fg.pid), minor_faults(fg.pid)
            ops1, commits1 = store_counts(port)
            n = max(r["requests"], 1)
            print(f"{r['rps']:.0f} rotations/s (non2xx {r['non2xx']}), "
                  f"{(cpu1 - cpu0) * 1e6 / hb.HZ / n:.1f} CPU-us and {(flt1 - flt0) / n:.2f} "
                  f"minor faults per rotation, mean batch "
                  f"{(ops1 - ops0) / max(commits1 - commits0, 1):.1f}", flush=True)
    finally:
        if fg:
            fg.send_signal(signal.SIGTERM)
            fg.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
