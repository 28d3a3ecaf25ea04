#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Durable refresh over one long window, seen as it goes (issue #16 item 6): what a growth run
(bench/growth.py) reports as one line, second by second. A store of --size live refresh
tokens (bench/seed_refresh, tokens of any age: --sample of them drawn from the whole store),
floodgate pinned to CPU 0 (one loop thread), wrk on CPU 1 (64 connections, bench/refresh.lua),
and every --step seconds, from floodgate's /metrics and /proc:

  rotations/s, the server's p50/p99/p999 for the interval (from its latency histogram: the
  bound of the bucket that holds it), the store writer's CPU-us per rotation, commits/s and
  the mean batch transaction's time (its two fsyncs included: at 64 connections the rate is
  about 64 over the time a request waits, and that is mostly this), the
  store's folds, runs and held spendings, and every fifth step LMDB's free and used pages
  (mdb_stat -ef, Debian's lmdb-utils).

The folds show as they happen: a fold into the records rewrites most of the map's leaves
at 10^7, and the interval it takes is what a surge would meet (docs/benchmarks.md).

With --trace (bpftrace, Debian's bpftrace; root), every 10 s: the longest time floodgate's
loop thread and wrk's thread each spent between two epoll waits (a stall of either shows
here), and the longest LMDB commit. It needs tracefs mounted (the syscall tracepoints), and
says so if it is not.

Each line also gives CPU 0's steal time (/proc/stat: on a virtual machine, a dip with steal
is the machine's, not the server's) and the server's major page faults a second (a page of
the store that had to be read from disk: one the OS had evicted). With --perf-fold FILE,
perf records CPU 0 (call graphs) for 40 s from the step that finds the fold of all runs due.

--keep DIR seeds the store once into DIR and copies it for each later run (a 10^7 store takes
4-5 minutes to seed). At the end, floodgate is restarted on the same store and the time to
its first listening socket is printed (the runs' filters are rebuilt on open).

Usage: bench/refresh_timeline.py [--size 10000000] [--sample 9000000] [--duration 600]
                                 [--step 5] [--keep DIR] [--trace] [--bin build/release/floodgate]
                                 [--server-args "--purge-interval 1m"] [--perf-fold FILE]
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import tokens as tb  # noqa: E402  (wrk_cmd)
import growth as gr  # noqa: E402  (its store, its server and floodgate's metrics)

ROOT = hb.ROOT
FOLD_AT = 200000  # store_fold_at's default: the fold of all runs comes when the memo is full
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


def pages(data):
    """(free pages, used pages) of the LMDB environment, or blanks without mdb_stat."""
    if not shutil.which("mdb_stat"):
        return "", ""
    out = subprocess.run(["mdb_stat", "-ef", data], capture_output=True, text=True).stdout
    f = re.search(r"Free pages: (\d+)", out)
    u = re.search(r"Number of pages used: (\d+)", out)
    return (f.group(1) if f else "?"), (u.group(1) if u else "?")


def start(binary, port, data, extra=()):
    fg = gr.start(binary, port, data, extra)
    hb.wait_port(port, timeout=120)
    return fg


def writer_ticks(fg):
    """The store writer's CPU so far (user + kernel), in clock ticks."""
    return sum(sum(v) for n, v in hb.thread_ticks(fg.pid).items() if n.startswith("fg-store"))


def cpu0():
    """CPU 0's (steal, all) jiffies from /proc/stat: the hypervisor's share of the server's CPU
    (time this virtual CPU was ready but another guest ran) tells a dip of the machine from one
    of the server."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu0 "):
                v = [int(x) for x in line.split()[1:]]
                return v[7], sum(v[:8])
    return 0, 1


def majflt(pid):
    """The server's major page faults so far (a page read from disk: /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[9])


def readings(port):
    """The refresh route's latency histogram and every store metric, from one scrape."""
    text = gr.scrape(port)
    return gr.route_hist(text, "/v1/auth/refresh"), gr.store_metrics(text, None)


def watch(fg, port, data, wrk, step, perf_fold=None):
    """One line per step while wrk runs. With perf_fold, CPU 0 is profiled for 40 s from the
    first step that finds the fold of all runs due (40 runs held, the memo nearly full)."""
    print("    t  rotations/s  p50  p99  p999 ms  writer-us  commits/s  commit-ms  folds runs held  "
          "steal% majflt/s  free-pages used-pages", flush=True)
    t0, k, perf = time.time(), 0, None
    (h0, g0), w0, s0, f0 = readings(port), writer_ticks(fg), cpu0(), majflt(fg.pid)
    while wrk.poll() is None:
        time.sleep(step)
        (h1, g1), w1, s1, f1 = readings(port), writer_ticks(fg), cpu0(), majflt(fg.pid)
        n = h1[-1] - h0[-1]
        fp, up = pages(data) if k % 5 == 0 else ("", "")
        commits = (g1.get("floodgate_store_commits_total", 0) -
                   g0.get("floodgate_store_commits_total", 0))
        took = (g1.get("floodgate_store_commit_seconds_total", 0) -
                g0.get("floodgate_store_commit_seconds_total", 0))
        print(f"{time.time() - t0:5.0f} {n / step:10.0f} {gr.quantile(h0, h1, .5, 0.0):6g} "
              f"{gr.quantile(h0, h1, .99, 0.0):4g} {gr.quantile(h0, h1, .999, 0.0):5g} "
              f"{(w1 - w0) * 1e6 / hb.HZ / max(n, 1):11.1f} {commits / step:10.0f} "
              f"{1e3 * took / max(commits, 1):10.2f} "
              f"{g1.get('floodgate_store_folds_total', 0):6.0f} "
              f"{g1.get('floodgate_store_spent_runs', 0):4.0f} "
              f"{g1.get('floodgate_store_spent_held', 0):7.0f} "
              f"{100 * (s1[0] - s0[0]) / max(s1[1] - s0[1], 1):6.1f} {(f1 - f0) / step:8.0f}  "
              f"{fp:>10} {up:>10}",
              flush=True)
        if (perf_fold and perf is None and g1.get("floodgate_store_spent_runs", 0) >= 40 and
                g1.get("floodgate_store_spent_held", 0) >= 0.9 * FOLD_AT):
            print(f"# perf: CPU 0 for 40 s into {perf_fold}", flush=True)
            perf = subprocess.Popen(["perf", "record", "-q", "-C", "0", "-g", "-o", perf_fold,
                                     "--", "sleep", "40"], stdout=subprocess.DEVNULL)
        h0, g0, w0, s0, f0, k = h1, g1, w1, s1, f1, k + 1
    if perf:
        perf.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10000000)
    ap.add_argument("--sample", type=int, default=9000000)
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--step", type=float, default=5)
    ap.add_argument("--keep", metavar="DIR", help="seed once into DIR, copy it for each run")
    ap.add_argument("--trace", action="store_true", help="bpftrace the loop, wrk and commits")
    ap.add_argument("--perf-fold", metavar="FILE",
                    help="perf record CPU 0 for 40 s when the fold of all runs begins")
    ap.add_argument("--server-args", default="",
                    help='more floodgate settings, e.g. "--purge-interval 1m"')
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release", "floodgate"))
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if a.trace and not shutil.which("bpftrace"):
        sys.exit("refresh_timeline: --trace needs bpftrace (Debian: bpftrace)")
    if a.trace and not any(os.path.isdir(d + "/events/syscalls")
                           for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")):
        # (without it bpftrace attaches the epoll probes to nothing, and they print 0)
        sys.exit("refresh_timeline: --trace needs the syscall tracepoints: "
                 "mount -t tracefs nodev /sys/kernel/tracing")
    tmp = tempfile.mkdtemp(prefix="fg-timeline-", dir="/var/tmp")
    procs = []
    try:
        run = os.path.join(tmp, "run")
        made = a.keep or run
        if not os.path.exists(os.path.join(made, "any.txt")):
            os.makedirs(made, exist_ok=True)
            gr.new_store(binary, os.path.join(made, "data"))
            print("# " + gr.seed(os.path.join(made, "data"), a.size, a.sample,
                                 os.path.join(made, "any.txt")), flush=True)
        if a.keep:
            subprocess.run(["cp", "-a", a.keep, run], check=True)
        subprocess.run(["sync"], check=True)  # (the copy's dirty pages, not the first commit's)
        data, port = os.path.join(run, "data"), hb.free_port()
        fg = start(binary, port, data, a.server_args.split())
        procs.append(fg)
        if a.trace:
            procs.append(subprocess.Popen(["bpftrace", "-B", "line", "-e", TRACE],
                                          stderr=subprocess.DEVNULL))
            time.sleep(3)
        wrk = subprocess.Popen(
            tb.wrk_cmd(port, "/v1/auth/refresh", "refresh.lua", 64, a.duration),
            env=dict(os.environ, BENCH_TOKENS_FILE=os.path.join(run, "any.txt")),
            stdout=subprocess.PIPE, text=True)
        h0, _ = readings(port)
        watch(fg, port, data, wrk, a.step, a.perf_fold)
        print(wrk.stdout.read(), flush=True)
        h1, g = readings(port)
        i = gr.LAT_BOUNDS.index(0.1)
        over = (h1[-1] - h0[-1]) - (h1[i] - h0[i])
        print(f"the server over the window: p50 {gr.quantile(h0, h1, .5):g}, p99 "
              f"{gr.quantile(h0, h1, .99):g}, p999 {gr.quantile(h0, h1, .999):g} ms (bucket "
              f"bounds); answers above 100 ms: {over} of {h1[-1] - h0[-1]}", flush=True)
        fg.send_signal(signal.SIGTERM)
        fg.wait(60)
        t = time.time()
        fg = procs[0] = start(binary, port, data, a.server_args.split())
        print(f"restart with {g.get('floodgate_store_spent_runs', 0):.0f} runs held "
              f"({g.get('floodgate_store_spent_in_runs', 0):.0f} spendings): listening after "
              f"{time.time() - t:.2f} s", flush=True)
    finally:
        hb.stop_all(reversed(procs))  # (bpftrace first: it ends on SIGTERM as on SIGINT)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
