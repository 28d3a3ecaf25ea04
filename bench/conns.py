#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Idle keep-alive connections (issue #16 item 7: 10,000 of them cost at most 4 KiB of
server memory each, and do not slow the cheap flows for the active ones).

floodgate (release build, one loop thread, one worker) and, as the reference in the same
run, nginx (one worker, a static 200), each on CPU 0, one after the other. For each:
  - its resident memory (VmRSS) before, and after N connections that each sent one request
    (GET /healthz) and stay open, idle (the idle timeouts set past the run);
  - wrk on CPU 1 (8 connections, --duration s) on GET /healthz with the N idle ones held,
    and without them.
Reported: RSS per idle connection (KiB); the server's CPU while the N idle ones are held
and nothing else happens (ms of CPU per second: what it spends keeping them, timers
included); and the active connections' req/s and p99 with the idle ones beside, as a ratio
to without. Kernel socket memory is not in RSS (the kernel's,
the same for both servers).

Usage: bench/conns.py [--conns 10000] [--duration 10] [--idle 5]
                     [--bin build/release/floodgate [--bin another/floodgate ...]]
(several --bin: each binary in turn in the same run, e.g. before and after a change)
(loopback only)"""

import argparse
import os
import re
import resource
import shutil
import socket
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
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def wrk(port, duration):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c8", f"-d{duration}s",
                          "--latency", f"http://127.0.0.1:{port}/healthz"],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    return rps, hb.to_ms(float(p99.group(1)), p99.group(2))


def nginx(tmp, n):
    return hb.start_nginx(tmp, connections=n + 1024, keepalive="600s")


def floodgate(tmp, binary, n):
    port = hb.free_port()
    p = subprocess.Popen(["taskset", "-c", "0", binary, "--listen", f"127.0.0.1:{port}",
                          "--threads", "1", "--workers", "1", "--max-connections",
                          str(n + 1024), "--idle-timeout", "600s", "--data-dir",
                          os.path.join(tmp, "data"), "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    return p, port


def measure(name, proc, port, n, duration, idle):
    time.sleep(1)
    free_rps, free_p99 = wrk(port, duration)
    before = hb.rss_kib(proc.pid)["VmRSS"]
    socks = hold(port, n)
    time.sleep(1)
    after = hb.rss_kib(proc.pid)["VmRSS"]
    c0 = cpu_ms(proc.pid)
    time.sleep(idle)
    idle_cpu = (cpu_ms(proc.pid) - c0) / idle
    held_rps, held_p99 = wrk(port, duration)
    alive = sum(1 for s in socks if s.fileno() >= 0)
    for s in socks:
        s.close()
    per = (after - before) / n
    print(f"{name:9} RSS {before} KiB -> {after} KiB with {alive} idle connections: "
          f"{per:.2f} KiB each; idle CPU {idle_cpu:.1f} ms/s; active req/s {free_rps:.0f} without, {held_rps:.0f} with "
          f"({held_rps / free_rps:.2f}x); p99 {free_p99:.2f} / {held_p99:.2f} ms")
    return per, idle_cpu, free_rps, held_rps, free_p99, held_p99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--idle", type=int, default=5)
    ap.add_argument("--bin", action="append")
    a = ap.parse_args()
    bins = a.bin or [os.path.join(ROOT, "build", "release", "floodgate")]
    more_fds(a.conns)
    os.sched_setaffinity(0, {1})
    tmp = tempfile.mkdtemp(prefix="fg-conns-")
    rows = []
    try:
        servers = [("nginx", lambda: nginx(tmp, a.conns))]
        for b in bins:
            name = "floodgate" if len(bins) == 1 else f"floodgate {b}"
            servers.append((name, lambda b=b: floodgate(tmp, b, a.conns)))
        for name, start in servers:
            p, port = start()
            try:
                rows.append((name, measure(name, p, port, a.conns, a.duration, a.idle)))
            finally:
                p.terminate()
                p.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| server | KiB RSS per idle connection | CPU ms/s, idle ones held | "
          "active req/s, idle held / not | active p99 ms, not / held |")
    print("|---|---|---|---|---|")
    for name, (per, ic, f, h, fp, hp) in rows:
        print(f"| {name} | {per:.2f} | {ic:.1f} | {h:.0f} / {f:.0f} = {h / f:.2f}x | "
              f"{fp:.2f} / {hp:.2f} |")


if __name__ == "__main__":
    main()
