#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Token benchmarks (issues #3 and #16), each beside nginx's static 200 for the same request
bytes in the same run, server pinned to CPU 0 and wrk to CPU 1 (one loop thread, one worker:
a per-core comparison):

  verify       GET /v1/auth/verify with a cached access token
  introspect   POST /oauth2/introspect (client_secret_basic) of a cached access token
  uncached     POST /oauth2/introspect cycling through 65,536 access tokens (4x the
               verification cache's slots): a signature check each
  client_cred  POST /oauth2/token grant_type=client_credentials (a fresh EdDSA JWT each)
  refresh      POST /v1/auth/refresh, each answer durable (group commit, fsync) before sent;
               tokens circulate through a pool (bench/refresh.lua)

The cryptography each cannot avoid is measured on the same core in the same run, before
and after (bench/crypto_raw: libsodium's Ed25519 sign and verify alone).

Then password login on all cores (server unpinned, 2 workers, 64 users in turn over 8
connections), alone and beside the launch rehearsal's cheap flows (bench/mix.lua, about
1,030 requests/s), against the raw Argon2id rate of the same parameters on the same cores
(bench/argon2_raw), run between them.

Printed: the table of every scenario against its nginx reference, then issue #16's table
(each flow's CPU against nginx plus its cryptography, the gap, the target). With --out
FILE, the first is written to FILE and the second to FILE.limits.

With --rounds N (N > 1), every flow and its reference run N times in all, each round with
the raw cryptography measured again beside it, and issue #16's table gives the median of
each flow's gaps (and their range): one run of this machine cannot settle a gap of a few µs.

With --record FILE (make bench: docs/benchmarks.md), issue #16's table is also appended to
FILE under a heading with the date, the commit (and whether the checkout had changes) and
the command that made it.

Usage: bench/tokens.py [--duration 10] [--rounds 1] [--out FILE] [--record FILE]
                       [--bin build/release/floodgate]      (loopback only)"""

import argparse
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402  (nginx start-up, wrk parsing, /proc CPU time)

ROOT = hb.ROOT
BIN = os.path.join(ROOT, "build", "release", "floodgate")


def start_fg(tmp, port, pinned=True, workers=1, store_args=()):
    cmd = ([] if not pinned else ["taskset", "-c", "0"]) + [
        BIN, "--listen", f"127.0.0.1:{port}", "--threads", "1", "--workers", str(workers),
        # capacity, not policy: every request comes from 127.0.0.1
        "--ratelimit-login-ip", "off", "--ratelimit-token-ip", "off",
        "--ratelimit-refresh-ip", "off", "--ratelimit-register-ip", "off",
        "--lockout-ip-attempts", "0", "--lockout-user-attempts", "0", "--lockout-pair-attempts", "0",
        "--data-dir", os.path.join(tmp, "data"), "--log-level", "warn", *store_args]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    return p


def cli(tmp, *args, stdin=None):
    r = subprocess.run([BIN, "--data-dir", os.path.join(tmp, "data"), *args],
                       capture_output=True, text=True, input=stdin, timeout=60)
    if r.returncode:
        sys.exit(f"floodgate {' '.join(args)}: {r.stderr}")
    return r.stdout


def post(port, path, body, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def access_tokens(port, basic, count, path):
    """`count` client_credentials access tokens into a file, fetched on 8 keep-alive
    connections in parallel."""
    import http.client
    import threading
    out, per = [], count // 8

    def fetch():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        got = []
        for _ in range(per):
            c.request("POST", "/oauth2/token", body=b"grant_type=client_credentials",
                      headers={"Authorization": basic,
                               "Content-Type": "application/x-www-form-urlencoded"})
            got.append(json.loads(c.getresponse().read())["access_token"])
        c.close()
        out.extend(got)
    ts = [threading.Thread(target=fetch) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def wrk_cmd(port, path, script, conns=64, duration=10, threads=1):
    """wrk on CPU 1 with bench/SCRIPT against floodgate's PATH (its output: parse)."""
    return ["taskset", "-c", "1", "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s",
            "--latency", "--timeout", "10s", "-s", os.path.join(ROOT, "bench", script),
            f"http://127.0.0.1:{port}{path}"]


def wrk(port, path, script, env, conns=64, duration=10, threads=1):
    out = subprocess.run(wrk_cmd(port, path, script, conns, duration, threads),
                         capture_output=True, text=True, timeout=duration + 60,
                         env=dict(os.environ, **env)).stdout
    return out


def parse(out):
    import re
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = hb.to_ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups())
    p99 = hb.to_ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": reqs, "rps": rps, "p50": p50, "p99": p99,
            "non2xx": int(bad.group(1)) if bad else 0}


def measure(proc, port, path, script, env, duration, conns=64, warmup=True):
    if warmup:  # not for refresh: a warm-up would rotate the seeded tokens away
        wrk(port, path, script, env, conns, 1)
    t0 = hb.cpu_ticks(proc.pid)
    r = parse(wrk(port, path, script, env, conns, duration))
    r["cpu"] = (hb.cpu_ticks(proc.pid) - t0) * 1e6 / hb.HZ / max(r["requests"], 1)
    return r


def crypto_floor(duration):
    """libsodium's Ed25519 sign and verify on CPU 0, CPU-µs per operation."""
    import re
    out = subprocess.run(["taskset", "-c", "0", os.path.join(ROOT, "build", "release", "bench",
                                                             "crypto_raw"), str(duration)],
                         capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    print(out.strip(), flush=True)
    return (float(re.search(r"sign: ([\d.]+)", out).group(1)),
            float(re.search(r"verify: ([\d.]+)", out).group(1)))


def argon2_raw(duration):
    """The raw Argon2id rate of the login's parameters on both cores (2 threads)."""
    out = subprocess.run([os.path.join(ROOT, "build", "release", "bench", "argon2_raw"),
                          "2", str(duration), "19456", "2", "1"],
                         capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    print(out.strip(), flush=True)
    return float(out.strip().rsplit("= ", 1)[1].rstrip("/s"))


def logins(tmp, duration, basic, rounds):
    """Password login on all cores (server unpinned, 2 workers, one loop thread) against the
    raw Argon2id rate of the same parameters on the same cores, alone and beside the
    rehearsal's cheap flows (served by the same floodgate in both). This machine's Argon2id
    rate drifts by a fifth from one run to the next, so the four runs alternate, `rounds`
    times, and each login run is read against the raw runs on either side of it.
    Returns {"alone": [...], "mix": [...]}, each a list of (login result, raw before, raw
    after), and the cheap flows' results."""
    import threading
    port = hb.free_port()
    fg = start_fg(tmp, port, pinned=False, workers=2)
    try:
        users, pw = 64, "correct horse battery"
        # (the issuer is the listening address unless configured: a token of its own)
        bearer = post(port, "/oauth2/token", b"grant_type=client_credentials",
                      {"Authorization": basic,
                       "Content-Type": "application/x-www-form-urlencoded"})["access_token"]
        for i in range(users):
            post(port, "/v1/users", json.dumps({"username": f"lu{i}", "password": pw}).encode(),
                 {"Content-Type": "application/json"})
        lenv = {"BENCH_USERS": str(users), "BENCH_USER_PREFIX": "lu", "BENCH_PASSWORD": pw}
        menv = {"BENCH_AUTH": basic, "BENCH_BEARER": bearer, "BENCH_CONNS": "4",
                "BENCH_RATE": "1030"}
        wrk(port, "/v1/auth/login", "login_pool.lua", lenv, conns=8, duration=2)  # warm-up
        mixes = []

        def beside_mix(fn):
            # refresh tokens of their own: a token the last run spent would now be a reuse
            rfile = os.path.join(tmp, f"mix-tokens-{len(mixes)}.txt")
            with open(rfile, "w") as f:
                for i in range(16):
                    f.write(post(port, "/v1/auth/login", json.dumps(
                        {"username": f"lu{i}", "password": pw}).encode(),
                        {"Content-Type": "application/json"})["refresh_token"] + "\n")

            def cheap():
                out = wrk(port, "/", "mix.lua", dict(menv, BENCH_TOKENS_FILE=rfile), conns=4,
                          duration=duration + 2)
                r = parse(out)
                r["statuses"] = out.rsplit("statuses: ", 1)[-1].strip()
                mixes.append(r)
            t = threading.Thread(target=cheap)
            t.start()
            time.sleep(1)
            try:
                return fn()
            finally:
                t.join()

        def login():
            r = parse(wrk(port, "/v1/auth/login", "login_pool.lua", lenv, conns=8,
                          duration=duration))
            r["ok"] = r["rps"] * (r["requests"] - r["non2xx"]) / max(r["requests"], 1)
            return r

        raw = {"alone": [argon2_raw(duration)], "mix": [beside_mix(lambda: argon2_raw(duration))]}
        runs = {"alone": [], "mix": []}
        for _ in range(rounds):
            for kind in ("alone", "mix"):
                r = login() if kind == "alone" else beside_mix(login)
                raw[kind].append(argon2_raw(duration) if kind == "alone"
                                 else beside_mix(lambda: argon2_raw(duration)))
                runs[kind].append((r, raw[kind][-2], raw[kind][-1]))
                print(f"login on 2 cores, {kind}: {r['ok']:.1f}/s (non2xx {r['non2xx']}), "
                      f"raw Argon2id {raw[kind][-2]:.1f} and {raw[kind][-1]:.1f}/s around it",
                      flush=True)
    finally:
        fg.send_signal(signal.SIGTERM)
        fg.wait(30)
    return runs, mixes


def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--login-rounds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--record")
    ap.add_argument("--bin", default=BIN)
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="fg-tokbench-")
    procs = []
    rows = []
    try:
        sign, verify = crypto_floor(a.duration)
        nginx, nport = hb.start_nginx(tmp)
        procs.append(nginx)
        port = hb.free_port()
        fg = start_fg(tmp, port)
        procs.append(fg)
        c = json.loads(cli(tmp, "client", "create", "bench", "--scopes", "read",
                           "--grants", "client_credentials,refresh_token", "--json"))
        basic = "Basic " + base64.b64encode(f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        tok = post(port, "/oauth2/token", b"grant_type=client_credentials",
                   {"Authorization": basic,
                    "Content-Type": "application/x-www-form-urlencoded"})["access_token"]
        # users for refresh
        cli(tmp, "user", "add", "bench", stdin="correct horse battery\n")
        tokens = []
        for _ in range(256):
            tokens.append(post(port, "/v1/auth/login",
                               b'{"username":"bench","password":"correct horse battery"}',
                               {"Content-Type": "application/json"})["refresh_token"])
        tfile = os.path.join(tmp, "tokens.txt")
        with open(tfile, "w") as f:
            f.write("\n".join(tokens) + "\n")
        # 4x the verification cache's slots: nearly every introspection a miss
        afile = os.path.join(tmp, "access.txt")
        access_tokens(port, basic, 65536, afile)

        def row(name, r, ref):
            rows.append((name, r, ref))
            print(f"{name:34} {r['rps']:>9.0f} req/s p50 {r['p50']:.3f} p99 {r['p99']:.3f} ms "
                  f"{r['cpu']:.2f} CPU-us/req non2xx {r['non2xx']}", flush=True)

        # Each reference sends nginx the same request bytes as the floodgate row after it
        # (nginx parses and ignores them and answers its static 200), so both servers read
        # and parse the same input.
        bearer = {"BENCH_AUTH": "Bearer " + tok}
        intro = {"BENCH_AUTH": basic, "BENCH_BODY": "token=" + tok}
        pool = {"BENCH_AUTH": basic, "BENCH_TOKENS_FILE": afile}
        ccb = {"BENCH_AUTH": basic, "BENCH_BODY": "grant_type=client_credentials"}
        rbody = {"BENCH_CTYPE": "application/json",
                 "BENCH_BODY": '{"refresh_token":"' + tokens[0] + '"}'}
        flows = [  # key; the reference's row, script and env; floodgate's row, path, script
                   # and env; whether it warms up (not refresh: that would spend the tokens)
            ("verify", "nginx static 200, same GET + Bearer", "get_auth.lua", bearer,
             "GET /v1/auth/verify (cached)", "/v1/auth/verify", "get_auth.lua", bearer, True),
            ("introspect", "nginx static 200, same introspect POST", "post.lua", intro,
             "POST /oauth2/introspect (cached)", "/oauth2/introspect", "post.lua", intro, True),
            ("uncached", "nginx static 200, same introspect POSTs", "introspect_pool.lua", pool,
             "POST /oauth2/introspect (uncached)", "/oauth2/introspect", "introspect_pool.lua",
             pool, True),
            ("cc", "nginx static 200, same token POST", "post.lua", ccb,
             "POST /oauth2/token client_credentials", "/oauth2/token", "post.lua", ccb, True),
            ("refresh", "nginx static 200, same refresh POST", "post.lua", rbody,
             "POST /v1/auth/refresh (durable)", "/v1/auth/refresh", "refresh.lua",
             {"BENCH_TOKENS_FILE": tfile}, False),
        ]

        def pairs(show):
            """Each flow and, just before it, its reference: {key: (floodgate, nginx)}."""
            got = {}
            for key, rname, rscript, renv, name, path, script, env, warm in flows:
                nref = measure(nginx, nport, "/", rscript, renv, a.duration)
                r = measure(fg, port, path, script, env, a.duration, warmup=warm)
                if show:
                    row(rname, nref, nref)
                    row(name, r, nref)
                got[key] = (r, nref)
            return got

        first = pairs(True)
        more = []  # the further rounds: (pairs, sign, verify)
        for i in range(1, a.rounds):
            with open(tfile, "w") as f:  # the round before spent the refresh tokens
                f.write("\n".join(post(port, "/v1/auth/login",
                                       b'{"username":"bench","password":"correct horse battery"}',
                                       {"Content-Type": "application/json"})["refresh_token"]
                                  for _ in range(256)) + "\n")
            print(f"round {i + 1} of {a.rounds}", flush=True)
            s2, v2 = crypto_floor(min(a.duration, 4))
            more.append((pairs(False), s2, v2))
        fg.send_signal(signal.SIGTERM)
        fg.wait(30)
        procs.remove(fg)
        sign2, verify2 = crypto_floor(a.duration)
        sign, verify = (sign + sign2) / 2, (verify + verify2) / 2

        runs, mixes = logins(tmp, a.duration, basic, a.login_rounds)
        mix_rps = sum(m["rps"] for m in mixes) / len(mixes)
        mix_bad = sum(m["non2xx"] for m in mixes)

        def ratio(kind):  # the median over the rounds of login / the mean raw around it
            return statistics.median(r["ok"] * 2 / (before + after)
                                     for r, before, after in runs[kind])

        def mean(kind, i):  # the mean login rate (i = 0) or raw rate before (1) or after (2)
            return sum(x[i] if i else x[0]["ok"] for x in runs[kind]) / len(runs[kind])

        lines = hb.ratio_table(rows)
        for kind, what in (("alone", "alone"), ("mix", f"beside {mix_rps:.0f} req/s of cheap flows")):
            rs = [r for r, _, _ in runs[kind]]
            lines.append(f"| password login, 2 cores, {what} | {mean(kind, 0):.1f} | "
                         f"{max(r['p50'] for r in rs):.1f} | {max(r['p99'] for r in rs):.1f} | | | | "
                         f"{sum(r['non2xx'] for r in rs)}{f' (mix: {mix_bad})' if kind == 'mix' else ''} |")
        hb.emit_table(lines, a.out)

        # the table: each flow against nginx's answer to the same bytes plus the
        # cryptography it cannot avoid (libsodium alone, same core, same run)
        lim = [  # name, key, crypto, target
            ("introspection, cached", "introspect", "", 0),
            ("gateway verify, cached", "verify", "", 0),
            ("client_credentials (EdDSA)", "cc", "sign", 2),
            ("durable refresh rotation (LMDB)", "refresh", "sign", 10),
            ("introspection, uncached", "uncached", "verify", 5),
        ]
        out = ["| flow | floodgate CPU-µs/req | limit: nginx same bytes + raw crypto | gap µs | "
               "target gap µs | met |", "|---|---|---|---|---|---|"]
        for name, key, what, target in lim:
            r, nref = first[key]
            crypto = {"sign": sign, "verify": verify, "": 0}[what]
            limit = nref["cpu"] + crypto
            parts = f"nginx {nref['cpu']:.1f}" + (f" + {what} {crypto:.1f}" if what else "")
            gaps = [r["cpu"] - limit]
            for got, s2, v2 in more:  # each round against its own reference and floor
                fr, nr = got[key]
                gaps.append(fr["cpu"] - nr["cpu"] - {"sign": s2, "verify": v2, "": 0}[what])
            gap = statistics.median(gaps)
            shown = (f"{gap:+.1f} (median of {len(gaps)}: {min(gaps):+.1f} to {max(gaps):+.1f})"
                     if len(gaps) > 1 else f"{gap:+.1f}")
            out.append(f"| {name} | {r['cpu']:.1f} | {limit:.1f} ({parts}) | {shown} | "
                       f"≤ {target} | {'yes' if gap <= target else 'no'} |")
        for kind, what, against in (("alone", "alone", "raw Argon2id alone"),
                                    ("mix", "beside the cheap flows",
                                     "raw Argon2id beside the same flows")):
            q = ratio(kind)
            out.append(f"| login, 2 cores, {what} | {mean(kind, 0):.1f}/s | {against}: "
                       f"{(mean(kind, 1) + mean(kind, 2)) / 2:.1f}/s | {q:.2f}x (median of "
                       f"{len(runs[kind])}) | ≥ 0.95x | {'yes' if q >= 0.95 else 'no'} |")
        hb.emit_table(out, a.out + ".limits" if a.out else None)
        if a.record:
            hb.record(a.record, "Issue #16's table",
                      "release build; server on CPU 0, wrk on CPU 1; login on both cores. "
                      "The gap column is the median over the rounds", out)
    finally:
        hb.stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
