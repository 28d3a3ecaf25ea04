#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Idle keep-alive connections (issue #16 item 7: 10,000 of them cost at most 4 KiB of
server memory each, and do not slow the cheap flows for the active ones).

floodgate (release build, one loop thread, one worker) and, as the reference in the same
run, nginx (one worker, a static 200), each on CPU 0, measured in turn. For each:
  - its resident memory (VmRSS) before, and after N connections that each sent one request
    (GET /healthz) and stay open, idle (the idle timeouts set past the run);
  - wrk on CPU 1 (8 connections, --duration s) on GET /healthz with the N idle ones held,
    and without them (before they are opened and after they are closed: the mean of both).
Reported: RSS per idle connection (KiB); the server's CPU while the N idle ones are held
and nothing else happens (ms of CPU per second: what it spends keeping them, timers
included); and the active connections' req/s, the server's CPU-us per active request and
p99 with the idle ones beside, as a ratio to without. Kernel socket memory is not in RSS
(the kernel's, the same for both servers).

With --record FILE (make bench: docs/benchmarks.md), the table is also appended to FILE with
item 7's verdict, under a heading with the date, the commit and the command.

With --rounds N (3 unless set), each server is measured N times, in turn (all are started
at once, so that the machine's noise hits each); memory comes from the first round, and
each held/not ratio is the median of the rounds' ratios.

Usage: bench/conns.py [--conns 10000] [--duration 10] [--idle 5] [--rounds 3] [--record FILE]
                     [--bin build/release/floodgate [--bin another/floodgate ...]]
(several --bin: each binary in turn in the same run, e.g. before and after a change)
(loopback only)"""

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402

ROOT = hb.ROOT


def more_fds(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n + 1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))


BATCH = 500


def hold(port, n):
    """n connections, each after one answered GET /healthz, kept open: opened BATCH at a
    time, 0.6 s apart, as idle connections pile up in life (a server may give an idle
    connection's buffers back after a moment, and reuse them for the next ones)."""
    socks = []
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    while len(socks) < n:
        batch = []
        for _ in range(min(BATCH, n - len(socks))):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(req)
            batch.append(s)
        for s in batch:  # (every answer read: the server has the connection idle)
            s.settimeout(10)
            got = b""
            while b"\r\n\r\n" not in got:
                got += s.recv(4096)
        socks += batch
        time.sleep(0.6)
    return socks


def cpu_ms(pid):
    """The process's CPU so far (user + kernel, all threads), in ms."""
    return hb.cpu_ticks(pid) * 1000 / hb.HZ


def wrk(port, duration):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c8", f"-d{duration}s",
                          "--latency", f"http://127.0.0.1:{port}/healthz"],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    return rps, hb.to_ms(float(p99.group(1)), p99.group(2))


def nginx(tmp, n):
    return hb.start_nginx(tmp, connections=n + 1024, keepalive="600s")


def floodgate(tmp, binary, n, i=0):
    port = hb.free_port()
    p = subprocess.Popen(["taskset", "-c", "0", binary, "--listen", f"127.0.0.1:{port}",
                          "--threads", "1", "--workers", "1", "--max-connections",
                          str(n + 1024), "--idle-timeout", "600s", "--data-dir",
                          os.path.join(tmp, f"data{i}"), "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    return p, port


def active(proc, port, duration):
    """wrk on the active connections: (req/s, p99 ms, the server's CPU-us per request, of
    it in user space)."""
    u0, s0 = hb.user_sys_ticks(proc.pid)
    rps, p99 = wrk(port, duration)
    u1, s1 = hb.user_sys_ticks(proc.pid)
    per = 1e6 / hb.HZ / max(rps * duration, 1)
    return rps, p99, (u1 - u0 + s1 - s0) * per, (u1 - u0) * per


def measure(name, proc, port, n, duration, idle):
    """The active connections without the idle ones (before they are opened and after they
    are closed: the mean of the two, so that the machine's drift does not read as theirs)
    and with them held."""
    time.sleep(1)
    a = active(proc, port, duration)
    before = hb.rss_kib(proc.pid)["VmRSS"]
    socks = hold(port, n)
    time.sleep(1)
    after = hb.rss_kib(proc.pid)["VmRSS"]
    c0 = cpu_ms(proc.pid)
    time.sleep(idle)
    idle_cpu = (cpu_ms(proc.pid) - c0) / idle
    held = active(proc, port, duration)
    alive = sum(1 for s in socks if s.fileno() >= 0)
    for s in socks:
        s.close()
    time.sleep(2)
    b = active(proc, port, duration)
    free = [(x + y) / 2 for x, y in zip(a, b)]
    per = (after - before) / n
    print(f"{name:9} RSS {before} KiB -> {after} KiB with {alive} idle connections: "
          f"{per:.2f} KiB each; idle CPU {idle_cpu:.1f} ms/s; active req/s {a[0]:.0f} and "
          f"{b[0]:.0f} without, {held[0]:.0f} with ({held[0] / free[0]:.2f}x); CPU-us/req "
          f"{a[2]:.2f} and {b[2]:.2f} / {held[2]:.2f} (user {free[3]:.2f} / {held[3]:.2f}); "
          f"p99 {free[1]:.2f} / {held[1]:.2f} ms", flush=True)
    return dict(per=per, idle=idle_cpu, free=free, held=held)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--idle", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", action="append")
    ap.add_argument("--record", metavar="FILE",
                    help="also append the table and item 7's verdict to FILE (make bench: "
                    "docs/benchmarks.md) with the date, the commit and the command")
    a = ap.parse_args()
    bins = a.bin or [os.path.join(ROOT, "build", "release", "floodgate")]
    more_fds(a.conns)
    os.sched_setaffinity(0, {1})
    tmp = tempfile.mkdtemp(prefix="fg-conns-")
    rows = {}
    procs = []
    try:  # every server up at once, each measured in turn in each round (the noise hits all)
        servers = [("nginx", *nginx(tmp, a.conns))]
        for i, b in enumerate(bins):
            servers.append(("floodgate" if len(bins) == 1 else f"floodgate {b}",
                            *floodgate(tmp, b, a.conns, i)))
        procs = [p for _, p, _ in servers]
        for k in range(a.rounds):
            if a.rounds > 1:
                print(f"round {k + 1} of {a.rounds}", flush=True)
            for name, p, port in servers:
                rows.setdefault(name, []).append(measure(name, p, port, a.conns, a.duration,
                                                         a.idle))
    finally:
        hb.stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [(name, merged(rs)) for name, rs in rows.items()]
    lines = ["| server | KiB RSS per idle connection | CPU ms/s, idle ones held | "
             "active req/s, idle held / not | active CPU-us/req, idle held / not | of it "
             "user space, held / not | active p99 ms, not / held |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        f, h = r["free"], r["held"]
        lines.append(f"| {name} | {r['per']:.2f} | {r['idle']:.1f} | {h[0]:.0f} / {f[0]:.0f}: "
                     f"{ratio(r, 0)} | {h[2]:.2f} / {f[2]:.2f}: {ratio(r, 2)} | "
                     f"{h[3]:.2f} / {f[3]:.2f}: {ratio(r, 3)} | {f[1]:.2f} / {h[1]:.2f} |")
    hb.emit_table(lines)
    if a.record:
        hb.record(a.record, f"Issue #16 item 7 ({a.conns:,} idle connections)",
                  "release build, one loop thread; each server on CPU 0, wrk on CPU 1",
                  lines + [""] + verdict(rows, a.conns))


def merged(rs):
    """The rounds of one server as one row: memory and idle CPU from the first round (later
    ones reuse what the first made), each active figure the median over the rounds, and the
    held/not ratios as the median of each round's own ratio."""
    med = statistics.median
    r = dict(per=rs[0]["per"], idle=rs[0]["idle"], n=len(rs),
             free=[med(x["free"][i] for x in rs) for i in range(4)],
             held=[med(x["held"][i] for x in rs) for i in range(4)])
    r["q"] = {i: [x["held"][i] / x["free"][i] for x in rs] for i in (0, 2, 3)}
    return r


def ratio(r, i):
    """The median of the rounds' held/not ratios of figure i, with their range if several."""
    q = r["q"][i]
    m = statistics.median(q)
    return f"{m:.2f}x" + (f" ({min(q):.2f}-{max(q):.2f})" if len(q) > 1 else "")


def verdict(rows, n):
    """Item 7's targets as Markdown lines: each floodgate's memory per idle connection (at
    most 4 KiB), and the active connections not slowed by the idle ones. That is read as the
    server's CPU per active request with them held against without, the median of the
    rounds' ratios: at most 1.05x, or at most 0.05 above nginx's own ratio in the same run
    (10,000 more sockets cost the kernel something whoever serves them, and one 10 s run's
    CPU per request moves by 10-20% with this machine)."""
    ng = statistics.median(rows[0][1]["q"][2])
    out = ["| item 7 | target | measured | met |", "|---|---|---|---|"]
    for name, r in rows[1:]:
        q = statistics.median(r["q"][2])
        out.append(f"| {name}: memory | ≤ 4 KiB per idle connection ({n:,}) | "
                   f"{r['per']:.2f} KiB | {'yes' if r['per'] <= 4 else 'no'} |")
        out.append(f"| {name}: the active ones | not slowed: CPU per request, held against "
                   f"not, ≤ 1.05x or ≤ nginx's + 0.05 (nginx: {ratio(rows[0][1], 2)}) | "
                   f"{ratio(r, 2)}; user space {ratio(r, 3)}; rate {ratio(r, 0)} (nginx "
                   f"{ratio(rows[0][1], 0)}) | {'yes' if q <= max(1.05, ng + 0.05) else 'no'} |")
    return out

if __name__ == "__main__":
    main()
