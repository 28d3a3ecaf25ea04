#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Growth benchmark (issue #16 item 6): durable refresh on the embedded store (LMDB) as the
store grows. For each size, a fresh data directory is grown to N live refresh tokens (a
login's family each, bench/seed_refresh), then floodgate (one loop thread, pinned to CPU 0,
wrk on CPU 1, 64 connections) refreshes, in two runs:

  recent   the SAMPLE tokens issued last (a refresh storm: the users active in the last
           minutes come back one access-token lifetime later), then
  any age  tokens drawn uniformly from all the others: each request spends a token no
           request spent before, so every rotation rewrites a record of a random age, at
           a random place in the store (the costly case).

The pool circulates (bench/refresh.lua reads the file as it goes, and each answer's successor
joins a ring of the newest 262,144, so wrk's memory does not grow with the sample: a client
whose garbage collector pauses is measured as a slow server), so once a run has spent its
tokens it presents their successors, recent tokens: for a longer --duration or more
--rounds, raise --sample above the rate times the duration times the rounds (each run takes
its own share of the sample, at most the store's older half; a run that presented successors
says so, and the table gives the share of its requests that presented tokens of its kind). With
--rounds N, each kind runs N times per size, one after another (not alternating: a run pays
for the fold its predecessors' spendings started, and the any-age fold is the dear one), and
the run of the median rate is reported, with the N rates. --server-args passes more settings
to floodgate for these runs (e.g. "--store-fold-at 1000000"); --kinds any runs only tokens of
any age, drawn then from the whole store (up to all of it) rather than its older half: their
records lie anywhere, a fold's spendings fewer to a leaf, the case the store's runs are for.

For each run the store's own counters are read from /metrics before and after it: the folds
and the runs of spent tokens (docs/internals/STORE.md) its rotations cost, and what was held
at its end.
At 10^7, --kinds any --sample 5000000 --duration 240 (make bench's second growth run) holds
a whole cycle: ten runs or more and the fold that merges them into the records.

nginx's static 200 for a small GET is measured in the same run as the reference. Reported
per size: rotations/s, p50/p99, server CPU-us per rotation (and apart: the loop thread's and
the store writer's, each user and kernel, from /proc/PID/task), minor faults per rotation
(first touches of the store's map), bytes of data.mdb per live token, and the server's
resident memory split into its own (anonymous: bounded by configuration) and the store's
mapped pages (file-backed: the kernel's page cache, shared and reclaimable, which grows with
what was touched). With --perf, each kind is run once more under `perf record`, on a
share of the sample of its own, and its samples' shares by object (kernel, libsodium,
floodgate, libc, LMDB, ...) are applied to the reported run's CPU; the profiles are kept in
DIR (`perf report -i DIR/perf.10000000.anyage --sort comm,dso,sym`), each with its flame
graph beside it (DIR/perf.SIZE.KIND.svg, bench/flamegraph.py).

Then login as the users grow: for each of --users, a fresh data directory with that many
users (bench/seed_users: records and index entries, one password hash shared), floodgate
(one loop thread and one worker, pinned to CPU 0) signs in 64 users spread evenly over the
table, in turn, over 8 connections (wrk on CPU 1); the reference is the raw Argon2id rate of
the same parameters on CPU 0 (bench/argon2_raw, one thread), run before and after.

With --record FILE (make bench: docs/benchmarks.md), the tables are also appended to FILE
with item 6's verdict (the rate at the largest size against the smallest's, each kind; the
process's own memory at each size), under a heading with the date, the commit and the
command.

Usage: bench/growth.py [--sizes 100000,1000000,10000000] [--sample 100000] [--duration 10]
                       [--rounds 1] [--kinds recent,any]
                       [--users 10000,1000000] [--out FILE] [--record FILE]
                       [--bin build/release/floodgate]
                       [--server-args "--store-fold-at 1000000"] [--perf DIR]
(loopback only)"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402
import tokens as tb  # noqa: E402  (wrk, parse, measure)
import flow_prof as fp  # noqa: E402  (a profile's shares by object)
import flamegraph as fgraph  # noqa: E402

ROOT = hb.ROOT
KINDS = ("recent", "any age")
# the embedded store's own counters, read from /metrics around each run: how many folds and
# runs of spent tokens the run's rotations cost (a build without runs has no runs metrics)
# (counters: what the run added; gauges: their value at its end)
STORE_METRICS = {"floodgate_store_folds_total": "folds",
                 "floodgate_store_spent_runs_written_total": "runs_written",
                 "floodgate_store_spent_runs": "runs",
                 "floodgate_store_spent_in_runs": "in_runs",
                 "floodgate_store_spent_held": "held",
                 "floodgate_store_fold_spread": "spread",
                 "floodgate_store_commits_total": "commits",
                 "floodgate_store_commit_seconds_total": "commit_s"}


def scrape(port):
    """floodgate's /metrics, once for every reading taken from it at one moment."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as m:
        return m.read().decode()


def store_metrics(text, names=STORE_METRICS):
    """{metric: value} of the store's metrics in a scrape: those of `names` it has (None:
    all of them)."""
    return {k: float(v) for k, v in re.findall(r"^(floodgate_store_\w+) (\S+)$", text, re.M)
            if names is None or k in names}


# floodgate's own latency histogram (its bucket bounds, seconds): read around each run, so that
# the p99 the server measured stands beside wrk's. wrk 4.1 "corrects" its latencies for
# coordinated omission: every sample above twice the mean interval between a connection's
# requests adds synthetic samples below it, so a pause of wrk's own (its garbage collector's)
# is multiplied too, and in long runs its p99 says more about wrk than about the server
# (docs/benchmarks.md, "What wrk's p99 measured in long runs").
LAT_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
              1, 2.5, 5, 10, float("inf"))


def route_hist(text, route):
    """The cumulative counts of ROUTE's 2xx answers at each bound of LAT_BOUNDS, in a scrape."""
    got = {float(le.replace("+Inf", "inf")): int(v) for le, v in re.findall(
        r'^floodgate_http_request_duration_seconds_bucket\{route="' + re.escape(route) +
        r'",class="2xx",le="([^"]+)"\} (\d+)$', text, re.M)}
    return [got.get(b, 0) for b in LAT_BOUNDS]


def quantile(before, after, p, empty=float("nan")):
    """The bound (ms) of the server's bucket that holds quantile p of the answers between two
    route_hist readings (the quantile is at most this); `empty` if there were none."""
    d = [b - a for a, b in zip(before, after)]
    for bound, n in zip(LAT_BOUNDS, d):
        if d[-1] and n >= p * d[-1]:
            return bound * 1000
    return empty


def new_store(binary, data):
    """A store in data with one user ("bench"), for seed to grow."""
    subprocess.run([binary, "--data-dir", data, "user", "add", "bench"], input="growth pw 1\n",
                   text=True, capture_output=True, check=True, timeout=60)


def seed(data, count, sample, tfile):
    """The store in data grown by count live refresh tokens, sample of them written to tfile
    (bench/seed_refresh); what the seeder said."""
    out = subprocess.run([os.path.join(ROOT, "build", "release", "bench", "seed_refresh"), data,
                          str(count), str(sample), tfile],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode:
        sys.exit(f"seed_refresh: {out.stderr}")
    return out.stdout.strip()


def start(binary, port, data, extra=()):
    """floodgate on data for the refresh runs: one loop thread and one worker, on CPU 0."""
    return subprocess.Popen(
        ["taskset", "-c", "0", binary, "--listen", f"127.0.0.1:{port}", "--threads", "1",
         "--workers", "1", "--data-dir", data, "--store-map-size", "64g",
         "--ratelimit-refresh-ip", "off", "--log-level", "warn", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def store_line(r):
    """What the store did in run r: folds and runs written, and what it held at the end."""
    s = r["store"]
    if not s:
        return "no store metrics"
    out = [f"{s['folds']:.0f} folds"]
    if "runs" in s:
        out.append(f"{s['runs_written']:.0f} runs written, {s['runs']:.0f} runs "
                   f"({s['in_runs']:.0f} spent) held at the end")
    if s.get("spread"):  # (0: no fold estimated it)
        out.append(f"the last fold's spread {s['spread']:.2f}")
    if s.get("commits"):  # (the disk's sync, as every waiting rotation meets it)
        out.append(f"{s['commits']:.0f} commits of {1e3 * s['commit_s'] / s['commits']:.2f} ms "
                   "on average")
    return ", ".join(out + [f"{s['held']:.0f} spent in the memo"])


def one_size(binary, n, sample, duration, nginx, nport, extra=(), perf=None, rounds=1,
             kinds=KINDS):
    # tokens of any age are drawn from the older half of the store, the newest half being the
    # recent run's; with --kinds any alone, from the whole store (a spending's record then lies
    # anywhere, as when users come back at random: the case the store's runs are for)
    whole = "recent" not in kinds
    cap = n if whole else n // 2
    capped, sample = sample > cap, min(sample, cap)
    tmp = tempfile.mkdtemp(prefix="fg-growth-", dir="/var/tmp")
    try:
        data = os.path.join(tmp, "data")
        new_store(binary, data)
        old, new = os.path.join(tmp, "any.txt"), os.path.join(tmp, "recent.txt")
        for count, tfile in ((n, old),) if whole else ((n - sample, old), (sample, new)):
            print(f"# {n}: {seed(data, count, sample, tfile)}", flush=True)
        port = hb.free_port()
        fg = start(binary, port, data, extra)
        try:
            hb.wait_port(port, timeout=60)
            # (the reference is steady: at most 30 s of it, however long the refresh runs)
            ref = tb.measure(nginx, nport, "/", "get_auth.lua", {"BENCH_AUTH": ""},
                             min(duration, 30))
            # each kind's tokens in parts: one per round, and one for the profile
            parts, sizes = {}, {}
            for kind, tfile in (("recent", new), ("any age", old)):
                if kind not in kinds:
                    continue
                with open(tfile) as f:
                    toks = f.read().split()
                k = rounds + (1 if perf else 0)
                parts[kind] = []
                for i in range(k):
                    name = f"{tfile}.{i}"
                    part = toks[i * len(toks) // k:(i + 1) * len(toks) // k]
                    with open(name, "w") as f:
                        f.write("\n".join(part) + "\n")
                    parts[kind].append(name)
                    sizes[name] = len(part)
            runs = {}
            # a kind's rounds one after another: the fold that the spendings of a run start
            # is paid in the runs after it, and a token of any age's is dear (docs/benchmarks.md)
            for kind in parts:
                for i in range(rounds):
                    f0, text = hb.minor_faults(fg.pid), scrape(port)
                    m0, h0 = store_metrics(text), route_hist(text, "/v1/auth/refresh")
                    r = hb.per_thread(lambda: tb.measure(
                        fg, port, "/v1/auth/refresh", "refresh.lua",
                        {"BENCH_TOKENS_FILE": parts[kind][i]}, duration, warmup=False), fg.pid)
                    r["faults"] = (hb.minor_faults(fg.pid) - f0) / max(r["requests"], 1)
                    # past its share of the sample, a run presents successors: recent tokens
                    r["own"] = min(1.0, sizes[parts[kind][i]] / max(r["requests"], 1))
                    text = scrape(port)
                    m1 = store_metrics(text)
                    r["sp99"] = quantile(h0, route_hist(text, "/v1/auth/refresh"), .99)
                    r["store"] = {STORE_METRICS[k]: v - (m0.get(k, 0) if k.endswith("_total")
                                                         else 0) for k, v in m1.items()}
                    for part, prefix in (("loop", "fg-loop"), ("writer", "fg-store")):
                        for j, what in ((0, "user"), (1, "sys")):
                            r[f"{part}_{what}"] = sum(v[j] for t, v in r["threads"][0].items()
                                                      if t.startswith(prefix))
                    runs.setdefault(kind, []).append(r)
                rs = runs[kind]  # the round of the median rate stands for the kind
                r = runs[kind] = sorted(rs, key=lambda x: x["rps"])[len(rs) // 2]
                r["rates"] = [x["rps"] for x in rs]
                if perf:
                    r["shares"] = profile(
                        fg, port, parts[kind][-1], duration,
                        os.path.join(perf, f"perf.{n}.{kind.replace(' ', '')}"),
                        f"floodgate, durable refresh, {n:,} live tokens, {kind}")
            mem = hb.rss_kib(fg.pid)
        finally:
            fg.send_signal(signal.SIGTERM)
            fg.wait(60)
        st = os.stat(os.path.join(data, "data.mdb"))
        rows = []
        for kind, r in runs.items():
            r.update(n=n, kind=kind, ref=ref, anon=mem["RssAnon"], file=mem["RssFile"],
                     disk=st.st_blocks * 512 / n)
            if len(r["rates"]) > 1:
                print(f"{n:>9} live tokens, {kind:7}: rounds at " + ", ".join(
                    f"{x:.0f}" for x in r["rates"]) + " rotations/s; the median's:", flush=True)
            print(f"{n:>9} live tokens, {kind:7}: {r['rps']:7.0f} rotations/s p50 {r['p50']:.2f} "
                  f"p99 {r['p99']:.2f} ms (the server's: at most {r['sp99']:g}), "
                  f"{r['cpu']:.1f} CPU-us/rotation (nginx "
                  f"{ref['cpu']:.1f}), non2xx {r['non2xx']}, data.mdb {r['disk']:.0f} B/token, "
                  f"RSS own {r['anon'] / 1024:.0f} MiB + store pages {r['file'] / 1024:.0f} MiB",
                  flush=True)
            print(f"{'':>9} per rotation: loop thread user {r['loop_user']:.1f} + kernel "
                  f"{r['loop_sys']:.1f} us, store writer user {r['writer_user']:.1f} + kernel "
                  f"{r['writer_sys']:.1f} us, {r['faults']:.2f} minor faults", flush=True)
            print(f"{'':>9} store in the run: {store_line(r)}", flush=True)
            if r["own"] < 1:
                print(f"{'':>9} NOTE: only {r['own']:.0%} of its requests presented tokens of "
                      "their kind, the rest their successors (recent): " +
                      ("the sample is capped at the store's " + ("size" if whole else "older half")
                       if capped else "raise --sample"),
                      flush=True)
            if "shares" in r:
                print(f"{'':>9} profile (one more run, {r['shares']['rps']:.0f}/s under perf), "
                      "CPU-us per rotation by part: " + ", ".join(
                          f"{k} {r['shares'][k] * r['cpu']:.1f}" for k in fp.PARTS),
                      flush=True)
            rows.append(r)
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def profile(fg, port, tfile, duration, out, title):
    """A second refresh run under `perf record` (Debian's linux-perf, DWARF call graphs), on
    tokens of its own: {part: share of the samples} by object (bench/flow_prof.py's parts)
    and its rate; its flame graph is written to OUT.svg."""
    rec = fgraph.record(fg.pid, duration, out)
    r = tb.parse(tb.wrk(port, "/v1/auth/refresh", "refresh.lua", {"BENCH_TOKENS_FILE": tfile},
                        64, duration))
    rec.wait(timeout=duration + 60)
    got = fp.shares(out)
    got["rps"] = r["rps"]
    fgraph.svg(fgraph.fold(out), title, out + ".svg")
    return got


def one_users(binary, n, duration):
    tmp = tempfile.mkdtemp(prefix="fg-growth-users-", dir="/var/tmp")
    pw = "growth pw 1"
    try:
        data = os.path.join(tmp, "data")
        subprocess.run([binary, "--data-dir", data, "user", "add", "first"], input=pw + "\n",
                       text=True, capture_output=True, check=True, timeout=60)
        seed = subprocess.run([os.path.join(ROOT, "build", "release", "bench", "seed_users"),
                               data, str(n), "gu", pw], capture_output=True, text=True,
                              timeout=3600)
        if seed.returncode:
            sys.exit(f"seed_users: {seed.stderr}")
        print(f"# {n} users: {seed.stdout.strip()}", flush=True)

        def raw():
            out = subprocess.run(["taskset", "-c", "0", os.path.join(
                ROOT, "build", "release", "bench", "argon2_raw"), "1", str(duration), "19456",
                "2", "1"], capture_output=True, text=True, timeout=duration + 30,
                check=True).stdout
            return float(out.strip().rsplit("= ", 1)[1].rstrip("/s"))
        port = hb.free_port()
        fg = subprocess.Popen(
            ["taskset", "-c", "0", binary, "--listen", f"127.0.0.1:{port}", "--threads", "1",
             "--workers", "1", "--data-dir", data, "--store-map-size", "64g",
             "--ratelimit-login-ip", "off", "--lockout-ip-attempts", "0",
             "--lockout-user-attempts", "0", "--lockout-pair-attempts", "0",
             "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            hb.wait_port(port, timeout=120)
            before = raw()
            env = {"BENCH_USERS": "64", "BENCH_USER_PREFIX": "gu", "BENCH_PASSWORD": pw,
                   "BENCH_USER_STEP": str(max(1, n // 64))}
            t0 = hb.cpu_ticks(fg.pid)
            r = tb.parse(tb.wrk(port, "/v1/auth/login", "login_pool.lua", env, conns=8,
                                duration=duration))
            r["cpu"] = (hb.cpu_ticks(fg.pid) - t0) * 1e6 / hb.HZ / max(r["requests"], 1)
            after = raw()
            mem = hb.rss_kib(fg.pid)
        finally:
            fg.send_signal(signal.SIGTERM)
            fg.wait(60)
        st = os.stat(os.path.join(data, "data.mdb"))
        r.update(n=n, raw=(before + after) / 2, anon=mem["RssAnon"], file=mem["RssFile"],
                 disk=st.st_blocks * 512 / n,
                 ok=r["rps"] * (r["requests"] - r["non2xx"]) / max(r["requests"], 1))
        print(f"{n:>9} users: {r['ok']:.1f} logins/s (raw Argon2id {before:.1f}, {after:.1f}/s) "
              f"p50 {r['p50']:.1f} p99 {r['p99']:.1f} ms, non2xx {r['non2xx']}, data.mdb "
              f"{r['disk']:.0f} B/user, RSS own {r['anon'] / 1024:.0f} MiB + store pages "
              f"{r['file'] / 1024:.0f} MiB", flush=True)
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verdict(rows):
    """Item 6's targets against the refresh rows, as Markdown lines: each kind's rate at the
    largest size as a share of the smallest's (at least 0.80), and the process's own memory
    (anonymous RSS: bounded by the settings, not by the store) at every size. Its target is
    read as: at the largest size at most 1.25 times the smallest's, for a store 10 to 100
    times larger."""
    sizes = sorted({r["n"] for r in rows})
    out = ["| item 6 | target | measured | met |", "|---|---|---|---|"]
    if len(sizes) < 2:
        return out + ["| (one size only) | | | |"]
    lo, hi = sizes[0], sizes[-1]
    by = {(r["n"], r["kind"]): r for r in rows}
    for kind in ("recent", "any age"):
        a, b = by.get((lo, kind)), by.get((hi, kind))
        if a and b:
            q = b["rps"] / a["rps"]
            out.append(f"| refresh at {hi:,} live tokens, {kind} | ≥ 0.80x of {lo:,} | "
                       f"{q:.2f}x ({b['rps']:.0f} against {a['rps']:.0f}/s) | "
                       f"{'yes' if q >= 0.80 else 'no'} |")
    own = {n: max(r["anon"] for r in rows if r["n"] == n) / 1024 for n in sizes}
    shown = ", ".join(f"{own[n]:.0f}" for n in sizes)
    out.append(f"| the process's own memory | bounded by the settings: at {hi:,} at most "
               f"1.25x that at {lo:,} | {shown} MiB | "
               f"{'yes' if own[hi] <= 1.25 * own[lo] else 'no'} |")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--sample", type=int, default=100000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs of each kind per size, in a row, each on its own share of "
                    "the sample; the run of the median rate is reported (make bench: 3)")
    ap.add_argument("--kinds", default="recent,any",
                    help="which refresh runs, of recent,any (tokens of any age)")
    ap.add_argument("--users", default="10000,1000000")
    ap.add_argument("--out")
    ap.add_argument("--record", metavar="FILE",
                    help="also append the tables and item 6's verdict to FILE (make bench: "
                    "docs/benchmarks.md) with the date, the commit and the command")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release", "floodgate"))
    ap.add_argument("--perf", metavar="DIR",
                    help="profile one more run of each kind (perf record, on a share of the "
                    "sample of its own) and keep the profiles in DIR (perf.SIZE.KIND)")
    ap.add_argument("--server-args", default="",
                    help="more arguments for floodgate in the refresh runs, e.g. "
                    "\"--store-fold-at 1000000\"")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    names = {"recent": "recent", "any": "any age"}
    if not a.kinds or any(k not in names for k in a.kinds.split(",")):
        sys.exit("growth: --kinds is a list of recent,any")
    kinds = [names[k] for k in a.kinds.split(",")]
    if a.perf:
        if not shutil.which("perf"):
            sys.exit("growth: --perf needs perf (Debian: linux-perf)")
        os.makedirs(a.perf, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="fg-growth-nginx-")
    procs = []
    try:
        nginx, nport = hb.start_nginx(tmp)
        procs.append(nginx)
        rows = [r for n in a.sizes.split(",") if n
                for r in one_size(binary, int(n), a.sample, a.duration, nginx, nport,
                                  a.server_args.split(), a.perf, a.rounds, kinds)]
    finally:
        hb.stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    first = {r["kind"]: r for r in reversed(rows)}
    lines = ["| live refresh tokens | tokens presented | rotations/s | vs smallest | p50 ms | p99 ms | "
             "server's p99 ms, at most | "
             "server CPU-us/rotation | loop thread user + kernel | store writer user + kernel | "
             "nginx CPU-us/req | data.mdb bytes/token | RSS own MiB | RSS store pages MiB | "
             "non-2xx | requests with a token of the kind | store in the run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    if any(len(r["rates"]) > 1 for r in rows):
        lines[0] = lines[0].replace("| rotations/s |", "| rotations/s, median (range) |")
    for r in rows:
        rates = (f" ({min(r['rates']):.0f}-{max(r['rates']):.0f})" if len(r["rates"]) > 1
                 else "")
        lines.append(f"| {r['n']:,} | {r['kind']} | {r['rps']:.0f}{rates} | "
                     f"{r['rps'] / first[r['kind']]['rps']:.2f}x | "
                     f"{r['p50']:.2f} | {r['p99']:.2f} | {r['sp99']:g} | {r['cpu']:.1f} | "
                     f"{r['loop_user']:.1f} + {r['loop_sys']:.1f} | "
                     f"{r['writer_user']:.1f} + {r['writer_sys']:.1f} | {r['ref']['cpu']:.1f} | "
                     f"{r['disk']:.0f} | {r['anon'] / 1024:.0f} | {r['file'] / 1024:.0f} | "
                     f"{r['non2xx']} | {r['own']:.0%} | {store_line(r)} |")
    if rows:
        hb.emit_table(lines, a.out)
    record = lines + [""] + verdict(rows) if rows else []
    urows = [one_users(binary, int(n), a.duration) for n in a.users.split(",") if n]
    lines = ["| users | logins/s, one core | vs smallest | vs raw Argon2id (same core, before "
             "and after) | p50 ms | p99 ms | server CPU-ms/login | data.mdb bytes/user | "
             "RSS own MiB | RSS store pages MiB | non-2xx |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in urows:
        lines.append(f"| {r['n']:,} | {r['ok']:.1f} | {r['ok'] / urows[0]['ok']:.2f}x | "
                     f"{r['ok'] / r['raw']:.2f}x ({r['raw']:.1f}/s) | {r['p50']:.1f} | "
                     f"{r['p99']:.1f} | {r['cpu'] / 1000:.2f} | {r['disk']:.0f} | "
                     f"{r['anon'] / 1024:.0f} | {r['file'] / 1024:.0f} | {r['non2xx']} |")
    if urows:
        hb.emit_table(lines, a.out + ".users" if a.out else None)
        record += ([""] if record else []) + lines
    if a.record and record:
        hb.record(a.record, "Issue #16 item 6 (growth)",
                  "release build; server on CPU 0, wrk on CPU 1; a fresh store per size", record)


if __name__ == "__main__":
    main()
