#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What the live console costs the server (issue #15 item 1: nothing measurable when nobody
watches; under 2 % of a core per open console during a rehearsal).

floodgate (release build, one loop thread, one worker) on CPU 0; everything else on CPU 1.
Consoles are GET /admin/stream readers (sockets that read each second's document, as the
page does; a browser's own work is the browser's, not the server's).

  idle        the server with no traffic for --idle seconds: 0 consoles, then 8
  rehearsal   a steady scenario (20 logins/s, about half of what one core hashes, with
              introspection, verify, refresh and client_credentials) played by
              `floodgate rehearse` twice in the
              order 0, N, 0, N consoles (ABAB: drift shows), the server's CPU over each run

The reference is the same server with no console, in the same run. Reported: server CPU as
a percentage of one core, and per open console: (with - without) / N.

With --screenshot PATH, afterwards: rehearse/launch.json played against a fresh server while
headless Chromium shows the console; a screenshot is taken at the peak (what docs/console.png
is).

Usage: bench/console.py [--idle 20] [--consoles 4] [--screenshot docs/console.png]
(loopback only)"""

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench as hb  # noqa: E402

ROOT = hb.ROOT
BIN = os.path.join(ROOT, "build", "release", "floodgate")
TICK = os.sysconf("SC_CLK_TCK")
# absolute rates (no "x": no capacity measurement), so that every run offers the same work
STEADY = {
    "name": "steady", "users": 200, "connections": 400, "timeout_ms": 10000,
    "phases": [{"name": "steady", "duration_s": 30,
                "rates": {"login": 20, "refresh": 50, "introspect": 500, "verify": 500,
                          "token": 10}}],
}


class Consoles:
    """n readers of GET /admin/stream in one thread; counts the documents read."""

    def __init__(self, aport, token, n):
        self.socks, self.docs, self.stop = [], 0, False
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", aport))
            s.sendall(f"GET /admin/stream HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n".encode())
            s.settimeout(0.2)
            self.socks.append(s)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            for s in self.socks:
                try:
                    self.docs += s.recv(1 << 20).count(b"data: ")
                except socket.timeout:
                    pass

    def close(self):
        self.stop = True
        self.t.join()
        for s in self.socks:
            s.close()


def server(tmp, name, token):
    port, aport = hb.free_port(), hb.free_port()
    p = subprocess.Popen(
        ["taskset", "-c", "0", BIN, "--listen", f"127.0.0.1:{port}",
         "--admin-listen", f"127.0.0.1:{aport}", "--threads", "1", "--workers", "1",
         "--trusted-proxies", "127.0.0.1", "--data-dir", os.path.join(tmp, name),
         "--log-level", "warn"], env=dict(os.environ, FLOODGATE_ADMIN_TOKEN=token),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.wait_port(port)
    hb.wait_port(aport)
    return p, port, aport


def cpu_pct(pid, seconds):
    t0, w0 = hb.cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    return (hb.cpu_ticks(pid) - t0) / TICK / (time.monotonic() - w0) * 100


def rehearse(port, aport, token, tmp, scenario):
    path = os.path.join(tmp, "scenario.json")
    with open(path, "w") as f:
        json.dump(scenario, f)
    out = os.path.join(tmp, "result.json")
    subprocess.run(["taskset", "-c", "1", BIN, "rehearse", path, "--quiet",
                    "--target", f"http://127.0.0.1:{port}", "--admin", f"http://127.0.0.1:{aport}",
                    "--json", out, "--html", os.path.join(tmp, "report.html")],
                   env=dict(os.environ, FLOODGATE_ADMIN_TOKEN=token), check=True, timeout=600)
    res = json.load(open(out))
    return sum(f["sent"] - f["dropped"] - f["skipped"] for f in res["totals"].values())


SHOT = r"""
import sys, time
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
url, token, wait_s, path = sys.argv[1:5]
o = Options()
o.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1100"):
    o.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
try:
    d.get(url + "/admin/console")
    d.find_element(By.ID, "token").send_keys(token)
    d.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    time.sleep(float(wait_s))
    d.save_screenshot(path)
finally:
    d.quit()
"""


def screenshot(path, tmp, token):
    """rehearse/launch.json against a fresh server, the console open in headless Chromium
    (Debian's python3-selenium, hence /usr/bin/python3) from the start; the picture at the
    peak (logins at 10x the capacity)."""
    fg, port, aport = server(tmp, "shot", token)
    try:
        scen = json.load(open(os.path.join(ROOT, "rehearse", "launch.json")))
        at = scen["calibrate_s"] + sum(p["duration_s"] for p in scen["phases"][:2]) + 20
        r = subprocess.Popen(["taskset", "-c", "1", BIN, "rehearse",
                              os.path.join(ROOT, "rehearse", "launch.json"), "--quiet",
                              "--target", f"http://127.0.0.1:{port}",
                              "--admin", f"http://127.0.0.1:{aport}",
                              "--json", os.path.join(tmp, "launch.json"),
                              "--html", os.path.join(tmp, "launch.html")],
                             env=dict(os.environ, FLOODGATE_ADMIN_TOKEN=token),
                             stdout=subprocess.DEVNULL)
        subprocess.run(["taskset", "-c", "1", "/usr/bin/python3", "-c", SHOT,
                        f"http://127.0.0.1:{aport}", token, str(at), os.path.abspath(path)],
                       check=True, timeout=at + 120)
        print(f"screenshot at {at} s into rehearse/launch.json (the peak): {path}")
        r.wait(600)
    finally:
        fg.terminate()
        fg.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=20)
    ap.add_argument("--consoles", type=int, default=4)
    ap.add_argument("--screenshot")
    a = ap.parse_args()
    os.sched_setaffinity(0, {1})
    tmp = tempfile.mkdtemp(prefix="fg-console-")
    token = secrets.token_hex(32)
    try:
        fg, port, aport = server(tmp, "idle", token)
        time.sleep(2)
        idle0 = cpu_pct(fg.pid, a.idle)
        c = Consoles(aport, token, 8)
        time.sleep(1)
        idle8 = cpu_pct(fg.pid, a.idle)
        docs = c.docs
        c.close()
        fg.terminate()
        fg.wait(30)
        print(f"idle, {a.idle:.0f} s each: server CPU {idle0:.2f} % of a core with no console, "
              f"{idle8:.2f} % with 8 consoles open ({docs} documents read): "
              f"{(idle8 - idle0) / 8:.3f} % per console")
        fg, port, aport = server(tmp, "load", token)
        rows = []
        for n in (0, a.consoles, 0, a.consoles):
            c = Consoles(aport, token, n) if n else None
            t0, w0 = hb.cpu_ticks(fg.pid), time.monotonic()
            answered = rehearse(port, aport, token, tmp, STEADY)
            cpu = (hb.cpu_ticks(fg.pid) - t0) / TICK
            wall = time.monotonic() - w0
            if c:
                c.close()
            rows.append((n, cpu / wall * 100, cpu * 1e6 / answered, answered))
            print(f"rehearsal with {n} consoles: server CPU {cpu / wall * 100:.1f} % of a core, "
                  f"{cpu * 1e6 / answered:.1f} us per answered request ({answered} answered)")
        fg.terminate()
        fg.wait(30)
        without = (rows[0][1] + rows[2][1]) / 2
        with_ = (rows[1][1] + rows[3][1]) / 2
        print(f"rehearsal: {without:.1f} % without, {with_:.1f} % with {a.consoles} consoles: "
              f"{(with_ - without) / a.consoles:+.2f} % of a core per console (target < 2 %); "
              f"runs of the same kind differ by {abs(rows[0][1] - rows[2][1]):.1f} and "
              f"{abs(rows[1][1] - rows[3][1]):.1f} points")
        if a.screenshot:
            screenshot(a.screenshot, tmp, token)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
