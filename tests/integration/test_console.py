# SPDX-License-Identifier: MIT
"""The live console (issue #15 item 1): GET /admin/stream's Server-Sent Events behind the
admin token, one document a second whose numbers move with the traffic; the page and its
assets under a strict policy; the page itself in headless Chromium (sign in with the token,
the numbers move while a load runs, a mode pinned from the page shows in /admin/policy,
screenshots written); and the fleet: two instances on one Redis, each console shows both."""

import json
import os
import socket
import subprocess
import threading
import time
import unittest

from tests.integration.fgtest import (BIN, REDIS_MODE, Redis, ServerTest, admin_call, metrics,
                                      parse_one, recv_all)

TOKEN = "admin-" + "0123456789abcdef" * 3
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
PW = "correct horse battery"
J = {"Content-Type": "application/json"}


class Stream:
    """GET /admin/stream on a socket: the answer's head, then one event at a time."""

    def __init__(self, port, token=TOKEN, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.s.sendall(f"GET /admin/stream HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v for k, v in (ln.split(": ", 1) for ln in lines[1:])}

    def event(self):
        """The next event's fields, e.g. {"data": ..., "retry": ...}."""
        while b"\n\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError("the stream ended")
            self.buf += chunk
        block, _, self.buf = self.buf.partition(b"\n\n")
        out = {}
        for line in block.decode().split("\n"):
            k, _, v = line.partition(":")
            out[k] = out.get(k, "") + v.lstrip(" ")
        return out

    def doc(self):
        while True:
            e = self.event()
            if "data" in e:
                return json.loads(e["data"])

    def close(self):
        self.s.close()


class ConsoleTest(ServerTest):
    def admin_server(self, *extra):
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0", *extra,
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        return srv, srv.admin_port()

    def get(self, port, path, token=None):
        h = f"Authorization: Bearer {token}\r\n" if token else ""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{h}\r\n".encode())
            return parse_one(recv_all(s, 10))

    def test_the_stream_sends_each_second_what_the_server_did(self):
        srv, aport = self.admin_server()
        # behind the admin token
        s = Stream(aport, token=None)
        self.assertEqual(s.status, 401)
        s.close()
        self.assertEqual(Stream(aport, token="admin-wrong" + "x" * 40).status, 401)
        s = Stream(aport)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["content-type"], "text/event-stream")
        self.assertEqual(s.headers["cache-control"], "no-store")
        self.assertNotIn("content-length", s.headers)
        self.assertEqual(s.event(), {"retry": "2000"})
        first = s.doc()
        self.assertEqual(len(first["fleet"]), 1)  # one instance on the embedded store
        f = first["fleet"][0]
        self.assertEqual(f["instance"], first["self"])
        for k in ("mode", "override", "recommended", "serving", "workers", "queued",
                  "hash_deadline_ms", "logins", "rate_limited", "events", "sample"):
            self.assertIn(k, f)
        self.assertEqual(f["mode"], "normal")
        # traffic: a user, failed and good logins, a login over its per-user rate
        st, _, b = srv.request("POST", "/v1/users", json.dumps(
            {"username": "ann", "password": PW}).encode(), J)
        self.assertEqual(st, 201, b)
        for pw in (PW, "wrong one", "wrong two"):  # (a quick second failure is refused)
            srv.request("POST", "/v1/auth/login", json.dumps(
                {"username": "ann", "password": pw}).encode(), J)
        seen = {"ok": 0, "failed": 0, "locked": 0}
        routes = {}
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and sum(seen.values()) < 3:
            d = s.doc()
            f = d["fleet"][0]
            for k in seen:
                seen[k] += f["logins"][k]
            for name, r in f["sample"]["routes"].items():
                routes[name] = routes.get(name, 0) + r["rate"]
            self.assertLessEqual(d["t"] - f["t"], 1)  # (this instance's own second)
        self.assertEqual((seen["ok"], seen["failed"] + seen["locked"]), (1, 2))
        self.assertEqual(routes.get("/v1/auth/login"), 3)
        self.assertEqual(routes.get("/v1/users"), 1)
        # a mode pinned through the admin API is in the next seconds, with why it changed
        st, _ = admin_call(aport, TOKEN, "PUT", "/admin/policy", {"mode": "surge"})
        self.assertEqual(st, 200)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            f = s.doc()["fleet"][0]
            if f["mode"] == "surge" and f["change"]:
                break
        self.assertEqual((f["mode"], f["override"]), ("surge", "surge"))
        self.assertEqual((f["change"]["to"], f["change"]["why"]), ("surge",
                                                                  "pinned by an operator"))
        # a second console at once, then both leave: the server goes on, and stops cleanly
        t = Stream(aport)
        self.assertEqual(t.status, 200)
        t.event()
        t.doc()
        t.close()
        s.close()
        time.sleep(0.5)
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        # the admin API's requests are counted under their own routes, not the API's
        # (before, /admin/... took the label of the public route with the same index)
        text = metrics(srv)
        self.assertIn('floodgate_http_requests_total{route="/admin/stream",status="200"}', text)
        self.assertIn('floodgate_http_requests_total{route="/admin/stream",status="401"} 2',
                      text)
        self.assert_clean_exit(srv)

    def test_a_stream_ends_when_the_server_stops(self):
        srv, aport = self.admin_server()
        s = Stream(aport)
        self.addCleanup(s.close)
        s.event()
        s.doc()
        srv.proc.terminate()
        srv.signalled = True
        with self.assertRaises(EOFError):  # the drain ends it: no wait for drain_timeout
            for _ in range(10):
                s.doc()
        self.assert_clean_exit(srv, timeout=10)

    def test_the_page_and_its_assets_are_served_under_a_strict_policy(self):
        srv, aport = self.admin_server()
        st, h, b = self.get(aport, "/admin/console")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        csp = h["content-security-policy"]
        for part in ("default-src 'none'", "script-src 'self'", "connect-src 'self'",
                     "frame-ancestors 'none'"):
            self.assertIn(part, csp)
        self.assertNotIn("unsafe", csp)
        self.assertIn(b'src="/admin/console/console.js"', b)
        self.assertNotIn(b"<script>", b)  # no inline script: the policy would refuse it
        for name, ctype in (("console.js", "text/javascript"), ("console.css", "text/css")):
            st, h, b = self.get(aport, "/admin/console/" + name)
            self.assertEqual((st, h["content-type"].split(";")[0]), (200, ctype))
            self.assertGreater(len(b), 1000)
        self.assertEqual(self.get(aport, "/admin/console/other.js")[0], 404)
        self.assertEqual(self.get(aport, "/admin/console/../stream")[0], 404)
        # not on the public listener
        self.assertEqual(srv.request("GET", "/admin/console")[0], 404)
        self.assert_clean_exit(srv)


@unittest.skipIf(REDIS_MODE, "the page does not depend on the store: the LMDB run has it")
class ConsoleBrowserTest(ServerTest):
    def test_the_console_in_a_real_browser(self):
        """Headless Chromium: the sign-in form, the token kept in the tab (never in the URL),
        numbers that move while a load runs, a mode pinned from the page and seen in
        /admin/policy, an event announced and listed, a user unlocked, no console error (a CSP refusal would be one); screenshots in the
        build directory (desktop, phone)."""
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0",
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = srv.admin_port()
        st, _, b = srv.request("POST", "/v1/users", json.dumps(
            {"username": "ann", "password": PW}).encode(), J)
        self.assertEqual(st, 201, b)
        stop = threading.Event()

        def load():  # logins, good and bad, and health checks: a few dozen a second
            i = 0
            while not stop.is_set():
                pw = PW if i % 3 == 0 else "wrong"
                try:
                    srv.request("POST", "/v1/auth/login", json.dumps(
                        {"username": "ann", "password": pw}).encode(), J)
                    srv.request("GET", "/healthz")
                except OSError:
                    pass
                i += 1
                time.sleep(0.02)

        th = threading.Thread(target=load, daemon=True)
        th.start()
        self.addCleanup(stop.set)
        out = os.path.join(os.path.dirname(os.path.abspath(BIN)), "screenshots")
        script = os.path.join(os.path.dirname(__file__), "rp", "browser_console.py")
        r = subprocess.run(["/usr/bin/python3", script, f"http://127.0.0.1:{aport}", TOKEN,
                            out], capture_output=True, text=True, timeout=180)
        stop.set()
        th.join(10)
        self.assertEqual(r.returncode, 0, r.stderr[-4000:])
        f = json.loads(r.stdout)
        self.assertEqual(f["title"], "floodgate console")
        self.assertTrue(f["signin_shown"])
        self.assertNotIn(TOKEN, f["url"])
        self.assertEqual(f["stored"], TOKEN)  # sessionStorage, this tab only
        self.assertEqual(f["status"], "live")
        self.assertGreater(f["rps_max"], 0)
        self.assertGreater(f["logins_max"], 0)
        # the page took a frame about every second (a paced load may show one rate
        # throughout: 94 req/s six times over was seen)
        self.assertGreaterEqual(f["chart_points"][-1] - f["chart_points"][0], 3, f)
        self.assertIn("/v1/auth/login", f["routes"])
        self.assertEqual(f["pinned_notice"], "Pinned: surge.")
        self.assertEqual(f["badge"], "surge")
        self.assertEqual(f["announced_notice"], "Announced.")
        self.assertIn("ticket sale: ", f["events"])
        self.assertIn("10x for 60 min", f["events"])
        self.assertEqual(f["unlocked_notice"], "Unlocked ann.")
        self.assertFalse(f["phone_overflow"])
        self.assertEqual(f["errors"], [])
        st, pol = admin_call(aport, TOKEN, "GET", "/admin/policy")
        self.assertEqual((st, pol["override"], pol["mode"]), (200, "surge", "surge"))
        for shot in ("console-desktop", "console-phone"):
            self.assertGreater(os.path.getsize(os.path.join(out, shot + ".png")), 10000)
        self.assert_clean_exit(srv)


@unittest.skipIf(REDIS_MODE, "starts its own Redis: the same test in both runs")
class ConsoleFleetTest(ServerTest):
    def test_each_console_shows_the_fleet(self):
        """Two instances on one Redis: each files its second in the store, and a console on
        either shows both, the traffic of each under its name."""
        redis = Redis(self)
        tmp = self.enterContext(__import__("tempfile").TemporaryDirectory(prefix="fg-fleet-"))
        shared = ("--store", redis.url, "--redis-prefix", "fg:", "--secret-key-file",
                  os.path.join(tmp, "key"), "--issuer", "https://auth.example")
        a = self.start(*FAST, *shared, "--admin-listen", "127.0.0.1:0",
                       env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        b = self.start(*FAST, *shared, "--admin-listen", "127.0.0.1:0",
                       env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        s = Stream(a.admin_port())
        self.addCleanup(s.close)
        s.event()
        for _ in range(5):
            b.request("GET", "/healthz")
        deadline, names, busy = time.monotonic() + 8, set(), {}
        while time.monotonic() < deadline and (len(names) < 2 or not busy):
            d = s.doc()
            names = {f["instance"] for f in d["fleet"]}
            for f in d["fleet"]:
                if f["instance"] != d["self"] and f["sample"]["routes"].get("/healthz"):
                    busy[f["instance"]] = f["sample"]["routes"]["/healthz"]["rate"]
                    self.assertEqual(f["serving"], 2)
        self.assertEqual(len(names), 2, d)
        self.assertEqual(list(busy.values()), [5])  # b's traffic, under b's name
        self.assert_clean_exit(b)
        self.assert_clean_exit(a)
