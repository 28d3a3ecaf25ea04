#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Durable refresh over one long window, seen as it goes (issue #16 item 6): what a growth run
(bench/growth.py) reports as one line, second by second. A store of --size live refresh
tokens (bench/seed_refresh, tokens of any age: --sample of them drawn from the whole store),
floodgate pinned to CPU 0 (one loop thread), wrk on CPU 1 (64 connections, bench/refresh.lua),
and every --step seconds, from floodgate's /metrics and /proc:

  rotations/s, the server's p50/p99/p999 for the interval (from its latency histogram: the
  bound of the bucket that holds it), the store writer's CPU-us per rotation, commits/s, the
  store's folds, runs and held spendings, and every fifth step LMDB's free and used pages
  (mdb_stat -ef, Debian's lmdb-utils).

The folds show as they happen: a fold into the records rewrites most of the map's leaves
at 10^7, and the interval it takes is what a surge would meet (docs/benchmarks.md).

With --trace (bpftrace, Debian's bpftrace; root), every 10 s: the longest time floodgate's
loop thread and wrk's thread each spent between two epoll waits (a stall of either shows
here), and the longest LMDB commit.

--keep DIR seeds the store once into DIR and copies it for each later run (a 10^7 store takes
4-5 minutes to seed). At the end, floodgate is restarted on the same store and the time to
its first listening socket is printed (the runs' filters are rebuilt on open).

Usage: bench/refresh_timeline.py [--size 10000000] [--sample 9000000] [--duration 600]
                                 [--step 5] [--keep DIR] [--trace] [--bin build/release/floodgate]
(loopback only)"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import growth as gr  # noqa: E402  (LAT_BOUNDS, route_hist)

ROOT = hb.ROOT
LMDB = "/usr/lib/x86_64-linux-gnu/liblmdb.so.0"
TRACE = """
BEGIN { @sec = 0; }
tracepoint:syscalls:sys_enter_epoll_wait,tracepoint:syscalls:sys_enter_epoll_pwait
/ (strncmp(comm, "fg-loop", 7) == 0 || comm == "wrk") && @x[tid] / {
  $k = comm == "wrk" ? 1 : 0;
  $g = (nsecs - @x[tid]) / 1000;
  if ($g > @gmax[$k]) { @gmax[$k] = $g; }
}
tracepoint:syscalls:sys_exit_epoll_wait,tracepoint:syscalls:sys_exit_epoll_pwait
/ strncmp(comm, "fg-loop", 7) == 0 || comm == "wrk" / { @x[tid] = nsecs; }
uprobe:LMDB:mdb_txn_commit /comm == "fg-store"/ { @t[tid] = nsecs; }
uretprobe:LMDB:mdb_txn_commit /comm == "fg-store" && @t[tid]/ {
  $d = (nsecs - @t[tid]) / 1000; delete(@t[tid]);
  if ($d > @cmax) { @cmax = $d; }
}
interval:s:10 {
  @sec = @sec + 10;
  printf("trace %5d s: longest between epoll waits: loop thread %d us, wrk %d us; longest commit %d us\\n",
         @sec, @gmax[0], @gmax[1], @cmax);
  clear(@gmax); @cmax = 0;
}
END { clear(@x); clear(@t); clear(@gmax); clear(@sec); clear(@cmax); }
""".replace("LMDB", LMDB)


def seed(binary, d, size, sample):
    data = os.path.join(d, "data")
    subprocess.run([binary, "--data-dir", data, "user", "add", "bench"], input="growth pw 1\n",
                   text=True, capture_output=True, check=True, timeout=60)
    out = subprocess.run([os.path.join(ROOT, "build", "release", "bench", "seed_refresh"), data,
                          str(size), str(sample), os.path.join(d, "any.txt")],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode:
        sys.exit(f"seed_refresh: {out.stderr}")
    print(f"# {out.stdout.strip()}", flush=True)


def quantile(d, p):
    """The bound (ms) of the bucket holding quantile p of the interval's counts d."""
    for bound, n in zip(gr.LAT_BOUNDS, d):
        if d[-1] and n >= p * d[-1]:
            return bound * 1000
    return 0.0


def store_gauges(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as m:
        text = m.read().decode()
    return {k: float(v) for k, v in re.findall(r"^(floodgate_store_\w+) (\S+)$", text, re.M)}


def pages(data):
    """(free pages, used pages) of the LMDB environment, or blanks without mdb_stat."""
    if not shutil.which("mdb_stat"):
        return "", ""
    out = subprocess.run(["mdb_stat", "-ef", data], capture_output=True, text=True).stdout
    f = re.search(r"Free pages: (\d+)", out)
    u = re.search(r"Number of pages used: (\d+)", out)
    return (f.group(1) if f else "?"), (u.group(1) if u else "?")


def start(binary, port, data):
    fg = subprocess.Popen(["taskset", "-c", "0", binary, "--listen", f"127.0.0.1:{port}",
                           "--threads", "1", "--workers", "1", "--data-dir", data,
                           "--store-map-size", "64g", "--ratelimit-refresh-ip", "off",
                           "--log-level", "warn"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port, timeout=120)
    return fg


def watch(fg, port, data, wrk, step):
    """One line per step while wrk runs."""
    print("    t  rotations/s  p50  p99  p999 ms  writer-us  commits/s  folds runs held  "
          "free-pages used-pages", flush=True)
    t0, k = time.time(), 0
    h0, g0 = gr.route_hist(port, "/v1/auth/refresh"), store_gauges(port)
    w0 = sum(sum(v) for n, v in hb.thread_ticks(fg.pid).items() if n.startswith("fg-store"))
    while wrk.poll() is None:
        time.sleep(step)
        h1, g1 = gr.route_hist(port, "/v1/auth/refresh"), store_gauges(port)
        w1 = sum(sum(v) for n, v in hb.thread_ticks(fg.pid).items() if n.startswith("fg-store"))
        d = [b - a for a, b in zip(h0, h1)]
        n = d[-1]
        fp, up = pages(data) if k % 5 == 0 else ("", "")
        commits = (g1.get("floodgate_store_commits_total", 0) -
                   g0.get("floodgate_store_commits_total", 0))
        print(f"{time.time() - t0:5.0f} {n / step:10.0f} {quantile(d, .5):6g} "
              f"{quantile(d, .99):4g} {quantile(d, .999):5g} "
              f"{(w1 - w0) * 1e6 / hb.HZ / max(n, 1):11.1f} {commits / step:10.0f} "
              f"{g1.get('floodgate_store_folds_total', 0):6.0f} "
              f"{g1.get('floodgate_store_spent_runs', 0):4.0f} "
              f"{g1.get('floodgate_store_spent_held', 0):7.0f}  {fp:>10} {up:>10}", flush=True)
        h0, g0, w0, k = h1, g1, w1, k + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10000000)
    ap.add_argument("--sample", type=int, default=9000000)
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--step", type=float, default=5)
    ap.add_argument("--keep", metavar="DIR", help="seed once into DIR, copy it for each run")
    ap.add_argument("--trace", action="store_true", help="bpftrace the loop, wrk and commits")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release", "floodgate"))
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if a.trace and not shutil.which("bpftrace"):
        sys.exit("refresh_timeline: --trace needs bpftrace (Debian: bpftrace)")
    tmp = tempfile.mkdtemp(prefix="fg-timeline-", dir="/var/tmp")
    procs = []
    try:
        run = os.path.join(tmp, "run")
        if a.keep:
            if not os.path.exists(os.path.join(a.keep, "any.txt")):
                os.makedirs(a.keep, exist_ok=True)
                seed(binary, a.keep, a.size, a.sample)
            subprocess.run(["cp", "-a", a.keep, run], check=True)
        else:
            os.makedirs(run)
            seed(binary, run, a.size, a.sample)
        subprocess.run(["sync"], check=True)  # (the copy's dirty pages, not the first commit's)
        data, port = os.path.join(run, "data"), hb.free_port()
        fg = start(binary, port, data)
        procs.append(fg)
        if a.trace:
            procs.append(subprocess.Popen(["bpftrace", "-B", "line", "-e", TRACE], stderr=subprocess.DEVNULL))
            time.sleep(3)
        wrk = subprocess.Popen(
            ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{a.duration}s", "--latency",
             "--timeout", "10s", "-s", os.path.join(ROOT, "bench", "refresh.lua"),
             f"http://127.0.0.1:{port}/v1/auth/refresh"],
            env=dict(os.environ, BENCH_TOKENS_FILE=os.path.join(run, "any.txt")),
            stdout=subprocess.PIPE, text=True)
        h0 = gr.route_hist(port, "/v1/auth/refresh")
        watch(fg, port, data, wrk, a.step)
        print(wrk.stdout.read(), flush=True)
        d = [b - a for a, b in zip(h0, gr.route_hist(port, "/v1/auth/refresh"))]
        print(f"the server over the window: p50 {quantile(d, .5):g}, p99 {quantile(d, .99):g}, "
              f"p999 {quantile(d, .999):g} ms (bucket bounds); answers above 100 ms: "
              f"{d[-1] - d[gr.LAT_BOUNDS.index(0.1)]} of {d[-1]}", flush=True)
        g = store_gauges(port)
        fg.send_signal(signal.SIGTERM)
        fg.wait(60)
        t = time.time()
        fg = procs[0] = start(binary, port, data)
        print(f"restart with {g.get('floodgate_store_spent_runs', 0):.0f} runs held "
              f"({g.get('floodgate_store_spent_in_runs', 0):.0f} spendings): listening after "
              f"{time.time() - t:.2f} s", flush=True)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT if p.args[0] == "bpftrace" else signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
