#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Scale-out benchmark (issue #6): the token flows through an nginx gateway (the shipped
proxy settings: keep-alive upstream, X-Forwarded-For) to

  lmdb x1    one floodgate on the embedded store
  redis x1   one floodgate on Redis (appendonly yes, appendfsync always)
  redis x2   two floodgate instances on that Redis

with, in the same run, nginx's own static 200 behind the same gateway as the reference.
What is measured sits on CPU 0 (the floodgate instances, each 1 loop thread + 1 worker, or
the static nginx); wrk, the gateway and Redis share CPU 1. Reported: req/s, latency, the
server's CPU-µs per request (all instances together), Redis's CPU-µs per request, and Redis
round trips per request from INFO commandstats (CONFIG RESETSTAT before each run): EVALSHA
calls (every write is one) plus GETs (user records, the generation poll, revoked ids).
Commands a script runs are counted by Redis too, but are not round trips; the only script
that GETs is the login guard's rate check, off in this run, and the HMGETs in the table
are the rotation script's own reads (no flow here reads a refresh record from outside).
The full commandstats per request are printed under each Redis row. On a 2-core machine two
instances share one core: the x2 rows show what sharing state costs, not scaling.

  refresh      POST /v1/auth/refresh (durable write, rotation), tokens circulating
  client_cred  POST /oauth2/token grant_type=client_credentials
  introspect   POST /oauth2/introspect of a cached token
  uncached     POST /oauth2/introspect cycling through 65,536 tokens (4x the cache slots):
               nearly every request is a signature check and a revoked-list lookup (on
               Redis: one GET, sent without blocking the loop)
  login        POST /v1/auth/login (Argon2id m=19456 t=2), 8 connections, beside the raw
               Argon2id rate on one core

Usage: bench/scaleout.py [--duration 10] [--out FILE]   (loopback only)"""

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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import tokens as tk  # noqa: E402  (wrk, parse, post)

ROOT = hb.ROOT
BIN = tk.BIN
PW = "correct horse battery"


def nginx(tmp, name, body, cpu):
    conf = os.path.join(tmp, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
master_process off;
daemon off;
error_log {tmp}/{name}-error.log warn;
pid {tmp}/{name}.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path {tmp}/{name}-body;
    proxy_temp_path {tmp}/{name}-proxy;
    fastcgi_temp_path {tmp}/{name}-fastcgi;
    uwsgi_temp_path {tmp}/{name}-uwsgi;
    scgi_temp_path {tmp}/{name}-scgi;
{body}
}}
""")
    return subprocess.Popen(["taskset", "-c", str(cpu), "nginx", "-c", conf, "-p", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def gateway(tmp, name, upstream_ports):
    """The proxy path of deploy/nginx/floodgate.conf, in front of the given ports."""
    port = hb.free_port()
    servers = "".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"
                      for p in upstream_ports)
    p = nginx(tmp, name, f"""
    upstream up {{ {servers} keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error;
        }}
    }}""", 1)
    hb.wait_port(port)
    return p, port


def secret_key(tmp):
    """A server key file (32 random bytes, mode 0600) in tmp: its path. Every instance on one
    store must be given the same one."""
    path = os.path.join(tmp, "secret.key")
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o600)
    return path


class Redis:
    def __init__(self, tmp):
        self.port = hb.free_port()
        d = os.path.join(tmp, "redis")
        os.makedirs(d)
        self.proc = subprocess.Popen(
            ["taskset", "-c", "1", "redis-server", "--port", str(self.port), "--bind",
             "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "yes", "--appendfsync",
             "always", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hb.wait_port(self.port)

    def cmd(self, *args):
        raw = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a)}\r\n{a}\r\n".encode() for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(raw)
            data = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                data += s.recv(1 << 20)
                if data.endswith(b"\r\n") and (not data.startswith(b"$") or
                                                len(data.split(b"\r\n", 1)[1]) >=
                                                int(data[1:data.index(b"\r\n")])):
                    break
            return data.decode()

    def commandstats(self):
        out = {}
        for m in re.finditer(r"cmdstat_([\w|]+):calls=(\d+)", self.cmd("INFO", "commandstats")):
            out[m.group(1)] = int(m.group(2))
        return out


def start_fg(tmp, name, store_args, workers=1):
    port = hb.free_port()
    cmd = ["taskset", "-c", "0", BIN, "--listen", f"127.0.0.1:{port}", "--threads", "1",
           "--workers", str(workers), "--trusted-proxies", "127.0.0.1",
           "--ratelimit-login-ip", "off", "--ratelimit-token-ip", "off",
           "--ratelimit-refresh-ip", "off", "--ratelimit-register-ip", "off",
           "--lockout-ip-attempts", "0", "--lockout-user-attempts", "0",
           "--lockout-pair-attempts", "0", "--data-dir", os.path.join(tmp, name),
           "--issuer", "http://bench", "--log-level", "warn", *store_args]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    return p, port


def cli(tmp, store_args, *args, stdin=None):
    r = subprocess.run([BIN, "--data-dir", os.path.join(tmp, "cli"), *store_args, *args],
                       capture_output=True, text=True, input=stdin, timeout=60)
    if r.returncode:
        sys.exit(f"floodgate {' '.join(args)}: {r.stderr}")
    return r.stdout


def run(procs, port, path, script, env, duration, conns=64, redis=None, warmup=True):
    if warmup:
        tk.wrk(port, path, script, env, conns, 1)
    if redis:
        redis.cmd("CONFIG", "RESETSTAT")
        r0 = hb.cpu_ticks(redis.proc.pid)
    t0 = sum(hb.cpu_ticks(p.pid) for p in procs)
    r = tk.parse(tk.wrk(port, path, script, env, conns, duration))
    n = max(r["requests"], 1)
    r["cpu"] = (sum(hb.cpu_ticks(p.pid) for p in procs) - t0) * 1e6 / hb.HZ / n
    r["rcpu"] = r["rtt"] = None
    if redis:
        r["rcpu"] = (hb.cpu_ticks(redis.proc.pid) - r0) * 1e6 / hb.HZ / n
        st = redis.commandstats()
        r["rtt"] = (st.get("evalsha", 0) + st.get("get", 0)) / n
        r["stats"] = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(st.items())
                               if not k.startswith("config") and v / n >= 0.005)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fg-scalebench-")
    keyfile = secret_key(tmp)
    procs, rows = [], []

    def stop(p):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
        procs.remove(p)

    def row(config, name, r, ref):
        rows.append((config, name, r, ref))
        extra = (f" redis {r['rcpu']:.2f} CPU-us/req, {r['rtt']:.2f} round trips/req"
                 if r["rtt"] is not None else "")
        print(f"{config:9} {name:28} {r['rps']:>8.0f} req/s p50 {r['p50']:.3f} "
              f"p99 {r['p99']:.3f} ms {r['cpu']:.2f} CPU-us/req{extra} non2xx {r['non2xx']}",
              flush=True)
        if r.get("stats"):
            print(f"{'':9} {'':28} commandstats per request: {r['stats']}", flush=True)

    try:
        # the reference: nginx's static 200 on CPU 0, behind the same gateway
        sport = hb.free_port()
        static = nginx(tmp, "static", f"""
    server {{
        listen 127.0.0.1:{sport} reuseport backlog=4096;
        location / {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
    }}""", 0)
        procs.append(static)
        hb.wait_port(sport)
        g0, gport0 = gateway(tmp, "gw-static", [sport])
        procs.append(g0)
        redis = Redis(tmp)
        procs.append(redis.proc)
        rstore = ["--store", f"redis://127.0.0.1:{redis.port}", "--secret-key-file", keyfile]
        configs = [("lmdb x1", ["--secret-key-file", keyfile], 1), ("redis x1", rstore, 1),
                   ("redis x2", rstore, 2)]
        refs = {}
        for config, store_args, n in configs:
            if config.startswith("lmdb"):  # (a later --data-dir wins over start_fg's)
                store_args = store_args + ["--data-dir", os.path.join(tmp, "lmdb")]
            c = json.loads(cli(tmp, store_args, "client", "create", f"bench-{config[:4]}{n}",
                               "--grants", "client_credentials,refresh_token", "--json"))
            basic = "Basic " + base64.b64encode(
                f"{c['client_id']}:{c['client_secret']}".encode()).decode()
            fgs = []
            for i in range(n):
                p, port = start_fg(tmp, f"{config[:4]}{n}-{i}", store_args)
                procs.append(p)
                fgs.append((p, port))
            gw, gport = gateway(tmp, f"gw-{config[:4]}{n}", [port for _, port in fgs])
            procs.append(gw)
            user = f"bench{n}{config[:4]}"
            tk.post(gport, "/v1/users", json.dumps({"username": user, "password": PW}).encode(),
                    {"Content-Type": "application/json"})
            tok = tk.post(gport, "/oauth2/token", b"grant_type=client_credentials",
                          {"Authorization": basic,
                           "Content-Type": "application/x-www-form-urlencoded"})["access_token"]
            tokens = [tk.post(gport, "/v1/auth/login", json.dumps(
                {"username": user, "password": PW}).encode(),
                {"Content-Type": "application/json"})["refresh_token"] for _ in range(256)]
            afile = os.path.join(tmp, f"access-{config[:4]}{n}.txt")
            tk.access_tokens(gport, basic, 65536, afile)
            tfile = os.path.join(tmp, f"tokens-{config[:4]}{n}.txt")
            with open(tfile, "w") as f:
                f.write("\n".join(tokens) + "\n")
            red = redis if config.startswith("redis") else None
            ps = [p for p, _ in fgs]
            flows = [
                ("refresh (durable)", "/v1/auth/refresh", "refresh.lua",
                 {"BENCH_TOKENS_FILE": tfile}, "refresh", False),
                ("client_credentials", "/oauth2/token", "post.lua",
                 {"BENCH_AUTH": basic, "BENCH_BODY": "grant_type=client_credentials"},
                 "token", True),
                ("introspection (cached)", "/oauth2/introspect", "post.lua",
                 {"BENCH_AUTH": basic, "BENCH_BODY": "token=" + tok}, "introspect", True),
                ("introspection (uncached)", "/oauth2/introspect", "introspect_pool.lua",
                 {"BENCH_AUTH": basic, "BENCH_TOKENS_FILE": afile}, "introspect", False),
            ]
            for name, path, script, env, shape, warm in flows:
                if shape not in refs:  # nginx, same request bytes, same gateway
                    refs[shape] = run([static], gport0, "/", script if shape != "refresh"
                                      else "get_auth.lua",
                                      env if shape != "refresh" else {"BENCH_AUTH": ""},
                                      a.duration)
                    row("nginx", f"static 200 ({shape} shape)", refs[shape], refs[shape])
                row(config, name, run(ps, gport, path, script, env, a.duration, redis=red,
                                      warmup=warm), refs[shape])
            lr = run(ps, gport, "/v1/auth/login", "post.lua",
                     {"BENCH_CTYPE": "application/json",
                      "BENCH_BODY": json.dumps({"username": user, "password": PW})},
                     a.duration, conns=8, redis=red, warmup=False)
            row(config, "login (Argon2id)", lr, None)
            gw.send_signal(signal.SIGTERM)
            procs.remove(gw)
            gw.wait(10)
            for p in ps:
                stop(p)
        raw = subprocess.run(["taskset", "-c", "0",
                              os.path.join(ROOT, "build", "release", "bench", "argon2_raw"),
                              "1", str(a.duration), "19456", "2", "1"],
                             capture_output=True, text=True, timeout=a.duration + 30).stdout
        raw_rate = float(raw.strip().rsplit("= ", 1)[1].rstrip("/s"))
        print(raw.strip())
        lines = ["| store | flow | req/s | p50 ms | p99 ms | floodgate CPU-µs/req | "
                 "vs nginx (req/s, CPU/req) | Redis CPU-µs/req | Redis round trips/req | "
                 "non-2xx |", "|---|---|---|---|---|---|---|---|---|---|"]
        for config, name, r, ref in rows:
            vs = (f"{r['rps'] / ref['rps']:.2f}x, {r['cpu'] / ref['cpu']:.2f}x" if ref
                  else f"{r['rps'] / raw_rate:.2f}x raw Argon2id ({raw_rate:.1f}/s, 1 core)")
            if config == "nginx":
                vs = "reference"
            rc = f"{r['rcpu']:.2f}" if r["rcpu"] is not None else ""
            rt = f"{r['rtt']:.2f}" if r["rtt"] is not None else ""
            lines.append(f"| {config} | {name} | {r['rps']:.0f} | {r['p50']:.3f} | "
                         f"{r['p99']:.3f} | {r['cpu']:.2f} | {vs} | {rc} | {rt} | "
                         f"{r['non2xx']} |")
        hb.emit_table(lines, a.out)
    finally:
        hb.stop_all(list(procs))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
