#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One Redis against a Redis Cluster (issue #14): the store's work per request on each.

  redis x1        floodgate on one Redis (appendonly yes, appendfsync always)
  cluster 3+3 w0  floodgate on a local cluster of three primaries with a replica each
                  (the same persistence), redis_wait_replicas = 0
  cluster 3+3 w1  the same with redis_wait_replicas = 1 (each write confirmed by WAIT)

and nginx's static 200 for the same request shapes as the reference, in the same run.
floodgate (1 loop thread, 1 worker) sits on CPU 0; wrk and every redis-server on CPU 1.
Flows: refresh (durable rotation, 512 users' tokens circulating, so their groups spread
over the slots), introspection of a cached token, introspection cycling through 65,536
tokens (nearly all uncached: a signature check and a revoked-list GET), and password logins
of the 512 users in turn on an instance with the login guard on (Argon2id at its least,
8 KiB and one pass, never for production: so that the store's share is what is measured). Reported: req/s,
p50/p99, floodgate CPU-µs per request, Redis CPU-µs per request (the primaries summed; the
replicas apart, as each applies every write again), and Redis round trips per request:
the commands floodgate sends, counted by MONITOR on every primary during a short run of
their own (MONITOR tells them from the commands a script runs, which INFO commandstats
counts alike; commandstats, after CONFIG RESETSTAT, are printed per row beside). On this 2-core
machine the cluster cannot show more throughput than one Redis (its six servers share
CPU 1 with wrk); what it shows is that the work per request does not grow.

Usage: bench/cluster.py [--duration 10] [--out FILE] [--only NAME]   (loopback only)"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import scaleout as so  # noqa: E402  (nginx, cli, secret_key)
import tokens as tk  # noqa: E402  (wrk, parse, post)

BIN = tk.BIN
PW = "correct horse battery"
USERS = 512


class Node:
    def __init__(self, tmp, cluster):
        self.port = hb.free_port()
        while cluster and (self.port > 55000 or not port_free(self.port + 10000)):
            self.port = hb.free_port()
        d = os.path.join(tmp, f"redis-{self.port}")
        os.makedirs(d)
        extra = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"] if cluster else []
        self.proc = subprocess.Popen(
            ["taskset", "-c", "1", "redis-server", "--port", str(self.port), "--bind",
             "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "yes", "--appendfsync",
             "always", "--loglevel", "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hb.wait_port(self.port)

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                              text=True, timeout=30).stdout

    def primary(self):
        return "role:master" in self.cli("INFO", "replication")

    def stats(self):
        return {m.group(1): int(m.group(2)) for m in re.finditer(
            r"cmdstat_([\w|]+):calls=(\d+)", self.cli("INFO", "commandstats"))}


def port_free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
            return True
        except OSError:
            return False


def make_cluster(tmp):
    nodes = [Node(tmp, True) for _ in range(6)]
    subprocess.run(["redis-cli", "--cluster", "create",
                    *[f"127.0.0.1:{n.port}" for n in nodes], "--cluster-replicas", "1",
                    "--cluster-yes"], capture_output=True, text=True, timeout=60, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all("cluster_state:ok" in n.cli("cluster", "info") for n in nodes) and all(
                "role:master" in i or "master_link_status:up" in i
                for i in (n.cli("info", "replication") for n in nodes)):
            return nodes
        time.sleep(0.2)
    sys.exit("the cluster did not come up")


def start_fg(tmp, name, store_args, guard=False):
    """floodgate with the limits off; guard: the login guard on (the lockouts at their
    defaults, in the same script as in production; the login limit per address off: the
    shared guard counts it in milliseconds, so it holds an address to 1,000/s at most, below
    this load; the adaptive policy kept from tightening the limits as logins near the
    capacity), and
    16 workers: a login's store calls block its worker, so that 16 are under way at once,
    as on a launch's many instances (one worker would send Redis one command at a time)."""
    port = hb.free_port()
    limits = (["--ratelimit-login-ip", "off", "--policy-load-elevated", "100000",
               "--policy-load-surge", "100000", "--policy-load-shed", "100000"] if guard else
              ["--ratelimit-login-ip", "off", "--lockout-ip-attempts", "0",
               "--lockout-user-attempts", "0", "--lockout-pair-attempts", "0"])
    p = subprocess.Popen(
        ["taskset", "-c", "0", BIN, "--listen", f"127.0.0.1:{port}", "--threads", "1",
         "--workers", "16" if guard else "1", "--ratelimit-token-ip", "off",
         "--ratelimit-refresh-ip", "off", "--ratelimit-register-ip", "off", *limits,
         "--argon2-memory", "8", "--argon2-passes", "1",
         "--refresh-grace", "10s", "--data-dir", os.path.join(tmp, name),
         "--issuer", "http://bench", "--log-level", "warn", *store_args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    return p, port


def refresh_tokens(port, path, path2):
    """USERS users registered and signed in (8 threads): their refresh tokens into path, a
    quarter of them into path2 instead (for the round-trip count: a token spent in one run
    would be a reuse in the next)."""
    out = []

    def post(path, body):
        for attempt in range(10):  # (a 503 is retried, as a client would: a WAIT timed out)
            try:
                return tk.post(port, path, json.dumps(body).encode(),
                               {"Content-Type": "application/json"})
            except urllib.error.HTTPError as e:
                if e.code != 503 or attempt == 9:
                    raise
                time.sleep(0.2)

    def work(k):
        for i in range(k, USERS, 8):
            u = f"u{i}"
            post("/v1/users", {"username": u, "password": PW})
            out.append(post("/v1/auth/login", {"username": u, "password": PW})["refresh_token"])
    ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q = len(out) // 4
    with open(path, "w") as f:
        f.write("\n".join(out[q:]) + "\n")
    with open(path2, "w") as f:
        f.write("\n".join(out[:q]) + "\n")


class Monitor:
    """MONITOR on one node, read into memory on a thread, until stop()."""

    def __init__(self, node):
        self.sock = socket.create_connection(("127.0.0.1", node.port))
        self.sock.sendall(b"MONITOR\r\n")
        self.buf = []
        self.t = threading.Thread(target=self.read)
        self.t.start()

    def read(self):
        while True:
            try:
                b = self.sock.recv(1 << 16)
            except OSError:
                return
            if not b:
                return
            self.buf.append(b)

    def stop(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.t.join(30)
        self.sock.close()
        return b"".join(self.buf).decode("utf-8", "replace")


def round_trips(nodes, port, path, script, env, conns=16):
    """Commands floodgate sends per request, by name, from MONITOR on every primary during a
    short run of its own (MONITOR slows Redis, so not during the measured one). MONITOR
    tells a client's command from one a script runs ("[0 lua]"), which INFO commandstats
    does not: a rotation's GET of the sessions generation is counted there as a GET."""
    mons = [Monitor(n) for n in nodes if n.primary()]
    time.sleep(0.3)
    r = tk.parse(tk.wrk(port, path, script, env, conns, 2))
    time.sleep(0.5)
    counts = {}
    for m in mons:
        for line in m.stop().splitlines():
            mm = re.match(r'\+[\d.]+ \[\d+ ([^\]]+)\] "(\w+)"', line)
            if mm and mm.group(1) != "lua":
                k = mm.group(2).upper()
                counts[k] = counts.get(k, 0) + 1
    n = max(r["requests"], 1)
    return {k: v / n for k, v in counts.items()}


def run(proc, port, path, script, env, duration, nodes=(), warmup=True, mon_env=None, conns=64):
    if warmup:
        tk.wrk(port, path, script, env, 64, 1)
    prim = [n for n in nodes if n.primary()]
    repl = [n for n in nodes if n not in prim]
    for n in nodes:
        n.cli("CONFIG", "RESETSTAT")
    r0 = sum(hb.cpu_ticks(n.proc.pid) for n in prim)
    q0 = sum(hb.cpu_ticks(n.proc.pid) for n in repl)
    t0 = hb.cpu_ticks(proc.pid)
    out = tk.wrk(port, path, script, env, conns, duration)
    r = tk.parse(out)
    m = re.search(r"^statuses: (.*)$", out, re.M)  # (login_pool.lua counts them)
    r["statuses"] = m.group(1) if m else ""
    n_req = max(r["requests"], 1)
    r["cpu"] = (hb.cpu_ticks(proc.pid) - t0) * 1e6 / hb.HZ / n_req
    r["rcpu"] = r["qcpu"] = r["rtt"] = r["wait"] = None
    if nodes:
        r["rcpu"] = (sum(hb.cpu_ticks(n.proc.pid) for n in prim) - r0) * 1e6 / hb.HZ / n_req
        if repl:
            r["qcpu"] = ((sum(hb.cpu_ticks(n.proc.pid) for n in repl) - q0) * 1e6 / hb.HZ
                         / n_req)
        total = {}
        for n in prim:
            for k, v in n.stats().items():
                total[k] = total.get(k, 0) + v
        r["stats"] = ", ".join(f"{k} {v / n_req:.2f}" for k, v in sorted(total.items())
                               if not k.startswith("config") and v / n_req >= 0.005)
        per = round_trips(nodes, port, path, script, mon_env or env, min(conns, 16))
        r["wait"] = per.pop("WAIT", 0)
        r["rtt"] = sum(per.values())
        r["sent"] = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items()) if v >= 0.005)
    return r


def report(config, flow, r):
    print(f"{config:15} {flow:26} {r['rps']:>8.0f} req/s p99 {r['p99']:.3f} ms "
          f"{r['cpu']:.2f} CPU-us/req redis {r['rcpu']:.2f} CPU-us/req "
          f"(replicas {r['qcpu'] or 0:.2f}) {r['rtt']:.2f} round trips/req "
          f"({r['wait']:.2f} WAIT) non2xx {r['non2xx']} {r['statuses']}\n"
          f"    sent: {r['sent']}\n"
          f"    commandstats: {r['stats']}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--only", help="run only the store configurations whose name has this")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fg-clusterbench-")
    keyfile = so.secret_key(tmp)
    procs, rows, refs = [], [], {}
    try:
        sport = hb.free_port()
        static = so.nginx(tmp, "static", f"""
    server {{
        listen 127.0.0.1:{sport} reuseport backlog=4096;
        location / {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
    }}""", 0)
        procs.append(static)
        hb.wait_port(sport)
        one = Node(tmp, False)
        procs.append(one.proc)
        cluster = make_cluster(tmp)
        procs.extend(n.proc for n in cluster)
        curl = "redis-cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster[:2])
        configs = [("redis x1", [one], ["--store", f"redis://127.0.0.1:{one.port}",
                                        "--redis-prefix", "x1:"]),
                   ("cluster 3+3 w0", cluster, ["--store", curl, "--redis-prefix", "w0:"]),
                   ("cluster 3+3 w1", cluster, ["--store", curl, "--redis-prefix", "w1:",
                                                "--redis-wait-replicas", "1",
                                                "--refresh-grace", "10s"])]
        for config, nodes, store in configs:
            if a.only and a.only not in config:
                continue
            store = store + ["--secret-key-file", keyfile]
            name = config.replace(" ", "").replace("+", "")
            c = json.loads(so.cli(tmp, store, "client", "create", f"bench-{name}", "--grants",
                                  "client_credentials,refresh_token", "--json"))
            basic = "Basic " + base64.b64encode(
                f"{c['client_id']}:{c['client_secret']}".encode()).decode()
            p, port = start_fg(tmp, name, store)
            procs.append(p)
            tfile = os.path.join(tmp, f"rt-{name}.txt")
            mfile = os.path.join(tmp, f"rt-mon-{name}.txt")
            refresh_tokens(port, tfile, mfile)
            tok = tk.post(port, "/oauth2/token", b"grant_type=client_credentials",
                          {"Authorization": basic,
                           "Content-Type": "application/x-www-form-urlencoded"})["access_token"]
            afile = os.path.join(tmp, f"access-{name}.txt")
            tk.access_tokens(port, basic, 65536, afile)
            flows = [
                ("refresh (durable)", "/v1/auth/refresh", "refresh.lua",
                 {"BENCH_TOKENS_FILE": tfile}, "refresh", False, {"BENCH_TOKENS_FILE": mfile}),
                ("introspection (cached)", "/oauth2/introspect", "post.lua",
                 {"BENCH_AUTH": basic, "BENCH_BODY": "token=" + tok}, "introspect", True, None),
                ("introspection (uncached)", "/oauth2/introspect", "introspect_pool.lua",
                 {"BENCH_AUTH": basic, "BENCH_TOKENS_FILE": afile}, "introspect", False, None),
            ]
            for flow, path, script, env, shape, warm, mon_env in flows:
                if shape not in refs:
                    refs[shape] = run(static, sport, "/", script if shape != "refresh"
                                      else "get_auth.lua",
                                      env if shape != "refresh" else {"BENCH_AUTH": ""},
                                      a.duration)
                    rows.append(("nginx", f"static 200 ({shape} shape)", refs[shape], None))
                r = run(p, port, path, script, env, a.duration, nodes, warm, mon_env)
                rows.append((config, flow, r, refs[shape]))
                report(config, flow, r)
            p.send_signal(signal.SIGTERM)
            p.wait(30)
            procs.remove(p)
            # logins on an instance with the guard on, Argon2id at its least (8 KiB, 1 pass)
            # so that the store's share is what is measured, at a rate where Redis groups its
            # appendfsync as it does under a launch's many instances
            p, port = start_fg(tmp, name + "-login", store, guard=True)
            procs.append(p)
            env = {"BENCH_USERS": str(USERS), "BENCH_PASSWORD": PW}
            r = run(p, port, "/v1/auth/login", "login_pool.lua", env, a.duration, nodes, False)
            rows.append((config, "login (Argon2id 8 KiB, 1 pass)", r, None))
            report(config, "login", r)
            p.send_signal(signal.SIGTERM)
            p.wait(30)
            procs.remove(p)
        lines = ["| store | flow | req/s | p50 ms | p99 ms | floodgate CPU-µs/req | vs nginx "
                 "(req/s, CPU/req) | Redis CPU-µs/req, primaries | replicas | round trips/req "
                 "| WAIT/req | non-2xx |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for config, flow, r, ref in rows:
            vs = (f"{r['rps'] / ref['rps']:.2f}x, {r['cpu'] / ref['cpu']:.2f}x" if ref
                  else "reference" if config == "nginx" else "")
            f = (lambda v: "" if v is None else f"{v:.2f}")
            lines.append(f"| {config} | {flow} | {r['rps']:.0f} | {r['p50']:.3f} | "
                         f"{r['p99']:.3f} | {r['cpu']:.2f} | {vs} | {f(r['rcpu'])} | {f(r['qcpu'])} | "
                         f"{f(r['rtt'])} | {f(r['wait'])} | {r['non2xx']} |")
        hb.emit_table(lines, a.out)
    finally:
        hb.stop_all(list(procs))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
