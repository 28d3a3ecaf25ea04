#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Durable refresh at 64 connections (bench/refresh.lua; floodgate as bench/tokens.py starts
it, on CPU 0, wrk on CPU 1), taken apart. Per round:

- the rate, the server's CPU-us and minor page faults per rotation (/proc/PID/stat) and the
  mean group-commit batch (/metrics). Minor faults are a count, repeatable on this noisy
  machine where CPU-us are not;
- the CPU-us split by thread, and between user space and the kernel: the loop (fg-loop 0:
  HTTP, the token's digests, the access token's signature, the wake-ups) and the store's
  writer (fg-store: LMDB, the commit's writes and syncs);
- in the same round, just before, the references of issue #16 item 3: nginx's static 200
  for the same request bytes (its user and kernel time apart) and libsodium's signature
  alone (bench/crypto_raw), and the gap above them split into the loop's user space, the
  loop's kernel beyond nginx's, and the store's writer.

Each round spends 256 fresh refresh tokens. With --bin, another build: run two alternately
to compare them. With --redis, floodgate keeps its tokens on a Redis (bench/scaleout.py's:
appendonly yes, appendfsync always, on CPU 1 beside wrk) instead of LMDB, and each round
also gives Redis's own CPU-us per rotation, user and kernel apart (issue #16 item 3's
second half: at most 15), and beside it, on the same Redis in the same round, its floor:
Redis's CPU-us per call of a script that only SETs one key of a record's size, sent by
redis-benchmark (on CPU 0, floodgate idle) in batches of as many calls per read as
floodgate's rotations came in (Redis's INFO: its script calls over its reads).

Usage: bench/refresh_faults.py [--rounds 3] [--duration 8] [--bin build/release/floodgate]
                               [--redis]      (loopback only)"""

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
import http_bench as hb  # noqa: E402  (per_thread, minor_faults, start_nginx, free_port)
import scaleout as so  # noqa: E402  (Redis, secret_key)
import tokens as tb  # noqa: E402  (start_fg, cli, post, wrk, parse, crypto_floor)

LOGIN = b'{"username":"bench","password":"correct horse battery"}'


def store_counts(port):
    """(write operations, commits) from the server's /metrics ((0, 0) on Redis: no batches)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = [re.search(rf"^floodgate_store_{name}_total (\S+)", text, re.M)
             for name in ("operations", "commits")]
    return tuple(float(m.group(1)) if m else 0.0 for m in found)


FLOOR_SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]) return 1"


def redis_reads(redis):
    """(calls of EVALSHA, reads from clients) so far, from Redis's INFO."""
    m = re.search(r"total_reads_processed:(\d+)", redis.cmd("INFO", "stats"))
    return redis.commandstats().get("evalsha", 0), int(m.group(1))


def redis_floor(redis, batch, calls=60000):
    """Redis's (user, kernel) CPU-us per call of FLOOR_SCRIPT (one SET of 120 bytes, fsync'd
    as every write there), `batch` calls per read on one connection."""
    sha = redis.cmd("SCRIPT", "LOAD", FLOOR_SCRIPT).split("\r\n")[1]

    def run():
        subprocess.run(["taskset", "-c", "0", "redis-benchmark", "-p", str(redis.port), "-c",
                        "1", "-P", str(batch), "-n", str(calls), "-r", "100000000", "-q",
                        "EVALSHA", sha, "1", "floor:__rand_int__", "v" * 120],
                       stdout=subprocess.DEVNULL, check=True, timeout=300)
        return {"requests": calls}
    return process(hb.per_thread(run, redis.proc.pid)["threads"][0])


def process(threads):
    """(user, kernel) of a whole process from split's {name: (user, kernel)}."""
    return tuple(sum(v[i] for v in threads.values()) for i in (0, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--bin", default=tb.BIN)
    ap.add_argument("--redis", action="store_true")
    a = ap.parse_args()
    tb.BIN = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="fg-refresh-faults-")
    fg = nginx = redis = None
    try:
        store = ()
        if a.redis:
            redis = so.Redis(tmp)
            store = ("--store", f"redis://127.0.0.1:{redis.port}", "--secret-key-file",
                     so.secret_key(tmp))
        tb.cli(tmp, *store, "user", "add", "bench", stdin="correct horse battery\n")
        port = hb.free_port()
        fg = tb.start_fg(tmp, port, store_args=store)
        nginx, nport = hb.start_nginx(tmp)
        tfile = os.path.join(tmp, "tokens.txt")
        for _ in range(a.rounds):
            tokens = [tb.post(port, "/v1/auth/login", LOGIN,
                              {"Content-Type": "application/json"})["refresh_token"]
                      for _ in range(256)]
            with open(tfile, "w") as f:  # the round before spent its tokens
                f.write("\n".join(tokens) + "\n")
            sign = tb.crypto_floor(2)[0]
            body = {"BENCH_CTYPE": "application/json",
                    "BENCH_BODY": '{"refresh_token":"' + tokens[0] + '"}'}
            tb.wrk(nport, "/", "post.lua", body, 64, 1)  # (warm-up)
            ng = hb.per_thread(
                lambda: tb.parse(tb.wrk(nport, "/", "post.lua", body, 64, a.duration)), nginx.pid)
            ng_u, ng_k = process(ng["threads"][0])
            ops0, commits0 = store_counts(port)
            flt0 = hb.minor_faults(fg.pid)
            ev0, rd0 = redis_reads(redis) if redis else (0, 0)
            r = hb.per_thread(lambda: tb.parse(tb.wrk(port, "/v1/auth/refresh", "refresh.lua",
                                                      {"BENCH_TOKENS_FILE": tfile}, 64,
                                                      a.duration)),
                              fg.pid, *([redis.proc.pid] if redis else []))
            flt1 = hb.minor_faults(fg.pid)
            ops1, commits1 = store_counts(port)
            ev1, rd1 = redis_reads(redis) if redis else (0, 0)
            n = max(r["requests"], 1)
            fgt = r["threads"][0]
            total = sum(process(fgt))
            print(f"{r['rps']:.0f} rotations/s (non2xx {r['non2xx']}), "
                  f"{total:.1f} CPU-us and {(flt1 - flt0) / n:.2f} "
                  f"minor faults per rotation" + ("" if redis else
                  f", mean batch {(ops1 - ops0) / max(commits1 - commits0, 1):.1f}"), flush=True)
            lu, lk = fgt.get("fg-loop 0", (0, 0))
            su, sk = fgt.get("fg-store", (0, 0))
            print(f"  CPU-us per request, user + kernel: nginx {ng_u:.1f} + {ng_k:.1f} "
                  f"({ng['rps']:.0f}/s); fg-loop 0 {lu:.1f} + {lk:.1f}; fg-store {su:.1f} + "
                  f"{sk:.1f}; the signature alone {sign:.1f}", flush=True)
            print(f"  gap above nginx + signature {total - ng_u - ng_k - sign:+.1f}: loop user "
                  f"beyond nginx's and the signature {lu - ng_u - sign:+.1f}, loop kernel "
                  f"beyond nginx's {lk - ng_k:+.1f}, "
                  + ("the store: Redis's, below" if redis else f"store writer {su + sk:.1f}"),
                  flush=True)
            if redis:
                ru, rk = process(r["threads"][1])
                batch = (ev1 - ev0) / max(rd1 - rd0, 1)
                per_read = max(1, round(batch))
                fu, fk = redis_floor(redis, per_read)
                print(f"  Redis's own CPU-us per rotation, user + kernel: {ru:.1f} + {rk:.1f}; "
                      f"its floor, one script call that SETs one key, {per_read} per read "
                      f"(floodgate's {batch:.1f}): {fu:.1f} + {fk:.1f}", flush=True)
    finally:
        for p in (fg, nginx, redis.proc if redis else None):
            if p:
                p.send_signal(signal.SIGTERM)
                p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
