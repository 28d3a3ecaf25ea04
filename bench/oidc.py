#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""OpenID Connect benchmarks (issue #13), each beside nginx's static 200 for the same request
bytes in the same run, server pinned to CPU 0 and wrk to CPU 1 (one loop thread):

  login page   GET /oauth2/authorize (no session: the hosted form, rendered)
  authorize    GET /oauth2/authorize with a live session cookie: a redirect with a code (a
               durable write of the code: group commit, fsync)
  cycle        that redirect and the code's exchange at the token endpoint, alternating,
               for 32 people signed in (a public first-party client with PKCE: an access
               token, an ID token and a refresh token per cycle)

With --perf DIR, each floodgate scenario runs under `perf record` (Debian's linux-perf) and
DIR gets its profile: NAME.data and NAME.txt, the symbols by their own share of the CPU.

Usage: bench/oidc.py [--duration 10] [--out FILE] [--perf DIR]   (loopback only)"""

import argparse
import base64
import hashlib
import html.parser
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
from tokens import cli, measure, start_fg  # noqa: E402

CB = "http://127.0.0.1:9/cb"
PASSWORD = "correct horse battery"


class Fields(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.fields = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body, headers or {})
    r = c.getresponse()
    return r.status, r.getheaders(), r.read()


def session_cookie(port, path):
    """Signs ann in through the form: the session cookie."""
    st, hd, page = request(port, "GET", path)
    csrf = [v for k, v in hd if k.lower() == "set-cookie"][0].split(";")[0]
    fields = dict(Fields(page.decode()).fields, username="ann", password=PASSWORD)
    st, hd, _ = request(port, "POST", "/oauth2/login", urllib.parse.urlencode(fields),
                        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": csrf})
    if st != 303:
        sys.exit(f"sign-in failed: {st}")
    return [v for k, v in hd if k.lower() == "set-cookie"][0].split(";")[0]


def profiled(perf_dir, name, proc, fn):
    """fn() with proc under `perf record` when perf_dir is given; its report beside."""
    if not perf_dir:
        return fn()
    os.makedirs(perf_dir, exist_ok=True)
    data = os.path.join(perf_dir, name + ".data")
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-g", "-p", str(proc.pid),
                            "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return fn()
    finally:
        rec.send_signal(2)
        rec.wait(60)
        with open(os.path.join(perf_dir, name + ".txt"), "w") as out:
            subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                            "--sort", "dso,sym", "--percent-limit", "0.3"],
                           stdout=out, stderr=subprocess.DEVNULL, timeout=300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--perf", metavar="DIR")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fg-oidcbench-")
    procs, rows = [], []
    try:
        nginx, nport = hb.start_nginx(tmp)
        procs.append(nginx)
        port = hb.free_port()
        fg = start_fg(tmp, port)
        procs.append(fg)
        cli(tmp, "user", "add", "ann", stdin=PASSWORD + "\n")
        c = json.loads(cli(tmp, "client", "create", "app", "--public", "--first-party",
                           "--redirect-uris", CB, "--json"))
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        path = "/oauth2/authorize?" + urllib.parse.urlencode({
            "response_type": "code", "client_id": c["client_id"], "redirect_uri": CB,
            "scope": "openid", "state": "bench-state", "nonce": "bench-nonce",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        cookie = session_cookie(port, path)
        # the cycle: 32 people, each signed in once (a session is one person's)
        cookies = "|".join([cookie] + [session_cookie(port, path) for _ in range(31)])

        def row(name, r, ref):
            rows.append((name, r, ref))
            print(f"{name:44} {r['rps']:>9.0f} req/s p50 {r['p50']:.3f} p99 {r['p99']:.3f} ms "
                  f"{r['cpu']:.2f} CPU-us/req non2xx {r['non2xx']}", flush=True)

        ref = measure(nginx, nport, path, "get_cookie.lua", {"BENCH_COOKIE": ""}, a.duration)
        row("nginx static 200, same GET", ref, ref)
        row("GET /oauth2/authorize: the login page", profiled(
            a.perf, "login-page", fg,
            lambda: measure(fg, port, path, "get_cookie.lua", {"BENCH_COOKIE": ""}, a.duration)),
            ref)
        refc = measure(nginx, nport, path, "get_cookie.lua", {"BENCH_COOKIE": cookie},
                       a.duration)
        row("nginx static 200, same GET + cookie", refc, refc)
        row("GET /oauth2/authorize, live session: redirect", profiled(
            a.perf, "session-redirect", fg,
            lambda: measure(fg, port, path, "get_cookie.lua", {"BENCH_COOKIE": cookie},
                            a.duration)), refc)
        body = urllib.parse.urlencode({"grant_type": "authorization_code",
                                       "client_id": c["client_id"], "redirect_uri": CB,
                                       "code_verifier": verifier})
        row("authorize + code exchange, alternating", profiled(
            a.perf, "cycle", fg,
            lambda: measure(fg, port, path, "oidc_cycle.lua",
                            {"BENCH_AUTHZ": path, "BENCH_COOKIE": cookies,
                             "BENCH_TOKEN_BODY": body}, a.duration)), refc)
        lines = hb.ratio_table(rows)
        hb.emit_table(lines, a.out)
    finally:
        hb.stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
