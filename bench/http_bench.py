#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""HTTP serving benchmark: nginx (Debian, one worker, `return 200` of a 15-byte JSON body) and
floodgate's cheapest route (GET /healthz, the same 15 bytes) side by side in the same run.
Each server is pinned to CPU 0 and wrk to CPU 1. Scenarios: keep-alive at 64 and 256
connections, and 16-deep pipelining at 64 connections. For each: requests/s, p50/p99 latency,
and server CPU-µs per request = (utime+stime from /proc/PID/stat over the run) / requests.
Servers alternate within each scenario, so machine noise hits both.

Usage: bench/http.py [--duration 10] [--rounds 2] [--out FILE]   (loopback only)"""

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def _stat(pid):
    """The fields of /proc/PID/stat after the command's name, from the state on (index 0)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def user_sys_ticks(pid):
    """(utime, stime) of the whole process (all threads), in clock ticks."""
    fields = _stat(pid)
    return int(fields[11]), int(fields[12])


def minor_faults(pid):
    """The minor page faults of a process so far (all threads): first touches of pages
    already in memory, such as a store's map."""
    return int(_stat(pid)[7])


def cpu_ticks(pid):
    """utime+stime of the whole process (all threads), in clock ticks."""
    return sum(user_sys_ticks(pid))


def rss_kib(pid):
    """{"VmRSS", "RssAnon", "RssFile": KiB} of a process: all it has resident, its own
    (anonymous) memory, and the file pages it maps (a store's, the page cache's)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


def thread_ticks(pid):
    """{thread name: (utime, stime)} in clock ticks, summed over the threads of each name
    (floodgate names its threads: fg-loop N, fg-worker N, fg-store, fg-events)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except FileNotFoundError:  # (a thread that ended meanwhile)
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        u, s = out.get(name, (0, 0))
        out[name] = (u + int(fields[11]), s + int(fields[12]))
    return out


def per_thread(run, *pids):
    """run() -> wrk's parsed result; with, for each process of `pids`, the CPU-us per request
    of each of its threads, user and kernel apart: r["threads"][k] = {name: (user, kernel)}."""
    t0 = [thread_ticks(p) for p in pids]
    r = run()
    t1 = [thread_ticks(p) for p in pids]
    n = max(r["requests"], 1)
    r["threads"] = [{name: tuple((b[name][i] - a.get(name, (0, 0))[i]) * 1e6 / HZ / n
                                 for i in (0, 1)) for name in b} for a, b in zip(t0, t1)]
    return r


def start_nginx(tmp, connections=4096, keepalive="120s"):
    """nginx, one worker on CPU 0, answering a static 200 on every path: the reference.
    connections: what it may hold open at once; keepalive: its keep-alive timeout."""
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
master_process off;
daemon off;
worker_rlimit_nofile {connections + 1024};
error_log {tmp}/nginx-error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout {keepalive};
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{{"status":"ok"}}';
        }}
    }}
}}
""")
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf, "-p", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def start_floodgate(tmp, binary):
    port = free_port()
    p = subprocess.Popen(["taskset", "-c", "0", binary, "--listen", f"127.0.0.1:{port}",
                          "--threads", "1", "--workers", "1", "--data-dir",
                          os.path.join(tmp, "data"), "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def ratio_table(rows):
    """The Markdown lines of (name, result, reference) rows: rates and CPU beside the
    reference's."""
    lines = ["| scenario | req/s | p50 ms | p99 ms | server CPU-µs/req | req/s vs nginx | "
             "CPU/req vs nginx | non-2xx |", "|---|---|---|---|---|---|---|---|"]
    for name, r, ref in rows:
        lines.append(f"| {name} | {r['rps']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | "
                     f"{r['cpu']:.2f} | {r['rps'] / ref['rps']:.2f}x | "
                     f"{r['cpu'] / ref['cpu']:.2f}x | {r['non2xx']} |")
    return lines


def emit_table(lines, out=None):
    """Prints a Markdown table (after a blank line) and writes it to `out` if given."""
    table = "\n".join(lines)
    print()
    print(table)
    if out:
        with open(out, "w") as f:
            f.write(table + "\n")


def record(path, title, what, lines):
    """Appends Markdown `lines` to `path` (make bench: docs/benchmarks.md) under a heading
    with `title`, the date, the commit (and whether the checkout had changes) and the command
    that made them (this script and its arguments); `what` says how they were measured."""
    def git(*args):
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " (with uncommitted changes)" if git("status", "--porcelain",
                                                  "--untracked-files=no") else ""
    script = "bench/" + os.path.basename(sys.argv[0])
    command = shlex.join([script] + sys.argv[1:])
    with open(path, "a") as f:
        f.write(f"\n### {title}, regenerated by `make bench`: "
                f"{time.strftime('%Y-%m-%d', time.gmtime())}, commit {commit}{dirty}\n\n"
                f"Command: `{command}` ({what}).\n\n" + "\n".join(lines) + "\n")
    print(f"(appended to {path})", flush=True)


def stop_all(procs):
    """SIGTERM every process, then wait for it (killed if it does not exit within 10 s)."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port, conns, duration, pipeline):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
           "--timeout", "5s"]
    if pipeline:
        cmd += ["-s", os.path.join(ROOT, "bench", "pipeline.lua")]
    cmd += [f"http://127.0.0.1:{port}/healthz"]
    if pipeline:
        cmd += ["--", str(pipeline)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    mx = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockerr = re.search(r"Socket errors: (.*)", out)
    # wrk 4.1 prints a 99th percentile of 0.00us for some pipelined runs (its histogram
    # overflows); report that as missing rather than as zero.
    p99v = to_ms(*p99.groups())
    return {"requests": reqs, "rps": rps, "p50": to_ms(*p50.groups()),
            "p99": p99v if p99v > 0 else float("nan"), "max": to_ms(*mx.groups()), "non2xx": int(errors.group(1)) if errors else 0,
            "sockerr": sockerr.group(1) if sockerr else ""}


def measure(proc, port, conns, duration, pipeline):
    # A short warm-up opens the connections and faults pages in before measuring.
    run_wrk(port, conns, 1, pipeline)
    t0 = cpu_ticks(proc.pid)
    r = run_wrk(port, conns, duration, pipeline)
    r["cpu_us_per_req"] = (cpu_ticks(proc.pid) - t0) * 1e6 / HZ / max(r["requests"], 1)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "floodgate"))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} not found: run scripts/install-deps")
    tmp = tempfile.mkdtemp(prefix="fg-bench-")
    servers = {}
    try:
        servers["nginx"] = start_nginx(tmp)
        servers["floodgate"] = start_floodgate(tmp, a.binary)
        scenarios = [("keep-alive, 64 conns", 64, 0), ("keep-alive, 256 conns", 256, 0),
                     ("pipelined x16, 64 conns", 64, 16)]
        results = {}
        for name, conns, pipe in scenarios:
            for rnd in range(a.rounds):
                order = ["nginx", "floodgate"] if rnd % 2 == 0 else ["floodgate", "nginx"]
                for srv in order:
                    proc, port = servers[srv]
                    r = measure(proc, port, conns, a.duration, pipe)
                    results.setdefault((name, srv), []).append(r)
                    print(f"{name:26} {srv:10} {r['rps']:>10.0f} req/s  p50 {r['p50']:.3f} ms"
                          f"  p99 {r['p99']:.3f} ms  {r['cpu_us_per_req']:.2f} CPU-us/req"
                          f"  non2xx {r['non2xx']} {r['sockerr']}", flush=True)
        lines = ["| scenario | server | req/s | p50 ms | p99 ms | max ms | server CPU-µs/req | "
                 "req/s vs nginx | CPU/req vs nginx |", "|---|---|---|---|---|---|---|---|---|"]
        for name, _, _ in scenarios:
            agg = {}
            for srv in ("nginx", "floodgate"):
                rs = results[(name, srv)]
                # Median of rounds (with 2 rounds: the mean) for each figure.
                def med(k):
                    v = sorted(x[k] for x in rs)
                    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
                agg[srv] = {k: med(k) for k in ("rps", "p50", "p99", "max", "cpu_us_per_req")}
            for srv in ("nginx", "floodgate"):
                g = agg[srv]
                p99 = "n/a" if g["p99"] != g["p99"] else f"{g['p99']:.3f}"
                lines.append(f"| {name} | {srv} | {g['rps']:.0f} | {g['p50']:.3f} | "
                             f"{p99} | {g['max']:.2f} | {g['cpu_us_per_req']:.2f} | "
                             f"{g['rps'] / agg['nginx']['rps']:.2f}x | "
                             f"{g['cpu_us_per_req'] / agg['nginx']['cpu_us_per_req']:.2f}x |")
        emit_table(lines, a.out)
    finally:
        stop_all([proc for proc, _ in servers.values()])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
