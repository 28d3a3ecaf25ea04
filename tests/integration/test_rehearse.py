# SPDX-License-Identifier: MIT
"""`floodgate rehearse` against a real floodgate: set-up through the admin API, an open-loop
schedule that sends exactly what the scenario says, answers counted by status, the policy
mode read from /metrics, shed logins measured, the JSON result and a self-contained HTML
report written, and every synthetic user and client deleted afterwards."""

import json
import math
import os
import re
import socket
import subprocess
import tempfile
import time

from tests.integration.fgtest import BIN, ServerTest, admin_call, start_nginx
from tests.integration.httpfault import HTTPFaultProxy

TOKEN = "rehearse-" + "0123456789abcdef" * 3
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")


class TestRehearse(ServerTest):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fg-rehearse-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tmp]))

    def serve(self, *args):
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0", "--trusted-proxies",
                         "127.0.0.1", *args, env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        return srv, srv.admin_port()

    def rehearse(self, srv, aport, scenario, *extra, token=TOKEN, timeout=120, target=None,
                 admin=None):
        path = os.path.join(self.tmp, "scenario.json")
        with open(path, "w") as f:
            f.write(scenario if isinstance(scenario, str) else json.dumps(scenario))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
        if token:
            env["FLOODGATE_ADMIN_TOKEN"] = token
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        r = subprocess.run(
            [BIN, "rehearse", path, "--target", target or f"http://127.0.0.1:{srv.port}",
             "--admin", admin or f"http://127.0.0.1:{aport}", "--json", os.path.join(self.tmp, "r.json"),
             "--html", os.path.join(self.tmp, "r.html"), *extra],
            capture_output=True, text=True, timeout=timeout, env=env)
        self.assertNotIn("Sanitizer", r.stderr)  # the tool runs under ASan+UBSan too
        self.assertNotIn("runtime error", r.stderr)
        return r

    def result(self):
        with open(os.path.join(self.tmp, "r.json")) as f:
            return json.load(f)

    def admin_list(self, aport, path):
        st, body = admin_call(aport, TOKEN, "GET", path)
        self.assertEqual(st, 200)
        return body

    def test_every_flow_on_schedule_then_cleaned_up(self):
        # The calibration logs in as fast as the server hashes, 8 users from 8 addresses:
        # at about 220/s that is nearly the default per-address limit (10/s, a burst of 20),
        # so on a faster machine the first logins of "steady" could find their address's
        # allowance spent (429). This test is about the schedule, not the limit
        # (test_failures_are_counted_by_kind counts refusals). On Redis, fgtest.store_args
        # gives each command 2 s, for the same reason.
        srv, aport = self.serve("--ratelimit-login-ip", "off")
        sc = {"name": "it", "users": 8, "connections": 64, "timeout_ms": 5000,
              "calibrate_s": 1, "calibrate_with": "steady",
              "phases": [
                  {"name": "steady", "duration_s": 2,
                   "rates": {"login": 5, "register": 2, "refresh": 10, "introspect": 50,
                             "verify": 50, "token": 5}},
                  {"name": "ramp", "duration_s": 2,
                   "rates": {"login": ["0.05x", "0.1x"], "introspect": [50, 0]}}]}
        r = self.rehearse(srv, aport, sc)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = self.result()
        self.assertEqual(res["login_capacity"]["source"], "measured")
        # measured while the other flows of "steady" ran, which are not in the record
        self.assertEqual(res["login_capacity"]["measured_with"], "steady")
        cap = res["login_capacity"]["per_s"]
        self.assertGreater(cap, 0)
        steady, ramp = res["phases"]
        # open loop: exactly rate x duration arrivals, whatever the server did
        want = {"login": 10, "register": 4, "refresh": 20, "introspect": 100, "verify": 100,
                "token": 10}
        for flow, n in want.items():
            f = steady["flows"][flow]
            self.assertEqual(f["sent"], n, flow)
            self.assertEqual(f["ok"], n, (flow, f))
            self.assertEqual(f["latency_us"]["n"], n)
            self.assertGreater(f["latency_us"]["p50"], 0)
        self.assertEqual(ramp["flows"]["introspect"]["sent"], 50)  # 50 -> 0 over 2 s
        self.assertAlmostEqual(ramp["flows"]["login"]["sent"], 0.15 * cap, delta=1.01)
        # the per-second record adds up and carries the server's mode
        secs = res["seconds"]
        self.assertGreaterEqual(len(secs), 4)
        self.assertEqual(sum(s["flows"]["verify"]["sent"] for s in secs), 100)
        self.assertTrue(all(0 <= s["mode"] <= 3 for s in secs[:4]), secs)
        # the report is self-contained and carries the data
        with open(os.path.join(self.tmp, "r.html")) as f:
            html = f.read()
        self.assertNotRegex(html, r'<script[^>]+src=|<link|@import|url\(')
        data = re.search(r'<script id="data" type="application/json">(.*?)</script>', html,
                         re.S).group(1)
        self.assertEqual(json.loads(data)["totals"], res["totals"])
        # its script runs (node, stub DOM) and draws the charts (rate, latency, refusals, and
        # mode with the recommendation: five SVGs) and the phase table
        dom = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "report_dom.js"),
                              os.path.join(self.tmp, "r.html")],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(dom.returncode, 0, dom.stderr)
        drawn = json.loads(dom.stdout)
        self.assertEqual(drawn["svgs"], 5)
        # round axes (issue #15 item 8): numeric ticks 0, s, 2s, ... with s 1, 2 or 5 x 10^k
        # (the latency chart: powers of ten), times at a round step with their unit; no
        # chart says it is empty here (the mode was read every second)
        for c in drawn["charts"]:
            self.assertEqual(c["notes"], [], c)
            self.assertTrue(c["xticks"] and all(re.fullmatch(r"\d+ s", t) for t in c["xticks"]), c)
            vals = [float(t) for t in c["yticks"] if re.fullmatch(r"[\d.]+", t)]
            if not vals or c["yticks"][-1] in ("shed",):
                continue
            step = vals[1] - vals[0]
            mant = step / 10 ** math.floor(math.log10(step))
            geometric = all(abs(b / a - 10) < 1e-6 for a, b in zip(vals, vals[1:]) if a > 0)
            self.assertTrue(geometric or (vals[0] == 0 and any(abs(mant - k) < 1e-6
                                                                for k in (1, 2, 5))), c)
            if not geometric:
                for i, v in enumerate(vals):
                    self.assertAlmostEqual(v, i * step, places=6, msg=c)
        self.assertGreaterEqual(drawn["rows"], 1 + 6 + 2 + 6)
        self.assertIn("goodput", r.stdout)
        # the terminal shows every outcome class, and a flow's total rate is over the
        # seconds it ran (verify: 100 in steady's 2 s, not over the whole 4 s) (#15 item 8)
        self.assertRegex(r.stdout, r"flow +rate/s +goodput/s +429 +503 +4xx +5xx +errors")
        self.assertAlmostEqual(res["totals"]["verify"]["rate_per_s"], 50.0, delta=0.01)
        self.assertAlmostEqual(res["totals"]["introspect"]["rate_per_s"], 150 / 4, delta=0.01)
        self.assertRegex(r.stdout, r"\nverify +50\.0 +50\.0 ")
        # the report can be drawn again from the saved result alone
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
        r2 = subprocess.run([BIN, "rehearse", "--render", os.path.join(self.tmp, "r.json"),
                             "--html", os.path.join(self.tmp, "r2.html")],
                            capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        with open(os.path.join(self.tmp, "r2.html")) as f:
            again = re.search(r'<script id="data" type="application/json">(.*?)</script>',
                              f.read(), re.S).group(1)
        self.assertEqual(json.loads(again), json.loads(data))
        r3 = subprocess.run([BIN, "rehearse", "--render", os.path.join(self.tmp, "scenario.json")],
                            capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r3.returncode, 2)
        self.assertIn("not a rehearsal result", r3.stderr)
        # nothing synthetic is left behind
        users = self.admin_list(aport, "/admin/users")
        self.assertEqual([u for u in users if u["username"].startswith("rehearse-")], [])
        self.assertEqual([c for c in self.admin_list(aport, "/admin/clients")
                          if c["name"].startswith("rehearse-")], [])
        self.assert_clean_exit(srv)

    def test_through_a_gateway_the_mode_is_still_recorded(self):
        """Issue #15 item 8: the load through the shipped nginx (which does not pass
        /metrics on), the mode and the recommendation read from the admin API every
        second: none is missing (-1)."""
        srv, aport = self.serve()
        port = start_nginx(self, [srv.port])
        sc = {"name": "gw", "users": 4, "connections": 16, "timeout_ms": 5000,
              "phases": [{"name": "steady", "duration_s": 3,
                          "rates": {"introspect": 20, "login": 2}}]}
        r = self.rehearse(srv, aport, sc, target=f"http://127.0.0.1:{port}")
        self.assertEqual(r.returncode, 0, r.stderr)
        secs = self.result()["seconds"]
        self.assertGreaterEqual(len(secs), 3)
        self.assertEqual([s["mode"] for s in secs if s["mode"] not in (0, 1, 2, 3)], [], secs)
        self.assertEqual([s for s in secs if s["recommended"] < 1], [], secs)
        self.assertEqual(self.result()["totals"]["introspect"]["ok"], 60)
        self.assert_clean_exit(srv)

    def test_shed_logins_are_counted_with_their_latency(self):
        # at most two logins in flight: most of a burst is refused at once with 503 (a tiny
        # hash_deadline would do it too, but would also refuse the admin set-up under load)
        srv, aport = self.serve("--workers", "1", "--inflight-login", "2")
        # 2,000 logins in a second: several times what one worker hashes, even at 1 MiB
        sc = {"users": 20, "phases": [{"name": "burst", "duration_s": 1,
                                       "rates": {"login": 2000, "verify": 20}}]}
        r = self.rehearse(srv, aport, sc, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)  # only "wrote ..."
        res = self.result()
        login = res["phases"][0]["flows"]["login"]
        self.assertEqual(login["sent"], 2000)
        self.assertGreater(login["status"]["503"], 0, login)
        self.assertEqual(login["shed_latency_us"]["n"], login["status"]["503"])
        self.assertEqual(login["ok"] + login["status"]["503"] + login["status"]["429"], 2000)
        self.assertEqual(res["login_capacity"]["source"], "none")
        self.assert_clean_exit(srv)

    def test_browser_sign_ins_through_the_login_page(self):
        """The oidc flow (#13): each arrival is a person signing in through a browser: the
        login page (its CSRF cookie and token), the form posted, the code exchanged with PKCE
        by a first-party web app the tool registers (and deletes afterwards). Shed, the person
        waits as the busy page says and posts again, until timeout_ms is gone."""
        # (8 MiB hashes: at 1 MiB a quick machine hashed nearly every sign-in of the crowd
        # before the next arrived, and shed one in a run without retries: seen once)
        srv, aport = self.serve("--workers", "1", "--inflight-login", "1",
                                "--argon2-memory", "8192")
        sc = {"users": 50, "connections": 256, "timeout_ms": 3000,
              # (calm: one sign-in each 500 ms, so one login at a time never sheds it, even
              # on a loaded test machine; then a quiet second, so that the last calm person's
              # form is not posted in the crowd's first moment)
              "phases": [{"name": "calm", "duration_s": 2, "rates": {"oidc": 2}},
                         {"name": "gap", "duration_s": 1, "rates": {"oidc": 0}},
                         {"name": "crowd", "duration_s": 1, "rates": {"oidc": 400}}]}
        r = self.rehearse(srv, aport, sc)
        self.assertEqual(r.returncode, 0, r.stderr)
        calm, _, crowd = (p["flows"]["oidc"] for p in self.result()["phases"])
        # one at a time: every sign-in completes, its form answered once, nothing retried
        self.assertEqual((calm["sent"], calm["ok"], calm["retries"]), (4, 4, 0), calm)
        self.assertEqual(calm["signin_latency_us"]["n"], 4)
        self.assertEqual(calm["latency_us"]["n"], 4)
        self.assertGreaterEqual(calm["signin_latency_us"]["p50"], calm["latency_us"]["p50"])
        # a crowd on one login at a time: shed at once, told when to come back, posted again
        self.assertEqual(crowd["sent"], 400)
        self.assertGreater(crowd["ok"], 0, crowd)
        self.assertGreater(crowd["retries"], 0, crowd)
        self.assertGreater(crowd["shed_latency_us"]["n"], crowd["status"]["503"], crowd)
        ended = (crowd["ok"] + crowd["status"]["503"] + crowd["status"]["429"]
                 + crowd["status"]["4xx"] + crowd["status"]["5xx"] + crowd["errors"]
                 + crowd["timeouts"] + crowd["dropped"])
        self.assertEqual(ended, 400, crowd)
        self.assertEqual((crowd["status"]["4xx"], crowd["status"]["5xx"], crowd["errors"]),
                         (0, 0, 0), crowd)
        # the web app and the users are gone; what they signed in left no client behind
        self.assertEqual([c for c in self.admin_list(aport, "/admin/clients")
                          if c["name"].startswith("rehearse-")], [])
        self.assert_clean_exit(srv)

    def test_failures_are_counted_by_kind(self):
        """Issue #11 item 22: what the server answers wrongly is counted as what it is
        (4xx, 5xx, a timeout, a broken connection), never as success, and the run goes on."""
        srv, aport = self.serve()
        pub = HTTPFaultProxy(self, srv.port)
        pub.rule("POST", "/v1/auth/refresh", ("status", 500))
        pub.rule("POST", "/oauth2/introspect", ("status", 400))
        pub.rule("GET", "/v1/auth/verify", ("delay", 1.0))
        pub.rule("POST", "/oauth2/token", "close")
        pub.rule("POST", "/v1/users", "garbage")
        sc = {"users": 4, "connections": 32, "timeout_ms": 300,
              "phases": [{"name": "faults", "duration_s": 2,
                          "rates": {"login": 2, "register": 2, "refresh": 5, "introspect": 5,
                                    "verify": 5, "token": 5}}]}
        r = self.rehearse(srv, aport, sc, target=pub.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        flows = self.result()["phases"][0]["flows"]
        want = {"login": ("ok", 4), "register": ("errors", 4), "refresh": ("5xx", 10),
                "introspect": ("4xx", 10), "verify": ("timeouts", 10),
                "token": ("errors", 10)}
        for flow, (kind, n) in want.items():
            f = flows[flow]
            got = f.get(kind, f["status"].get(kind))
            self.assertEqual((f["sent"], got), (n, n), (flow, f))
            if kind != "ok":
                self.assertEqual(f["ok"], 0, (flow, f))
        self.assertEqual([u for u in self.admin_list(aport, "/admin/users")
                          if u["username"].startswith("rehearse-")], [])
        self.assert_clean_exit(srv)

    def test_set_up_retries_a_busy_server_and_reports_a_failing_one(self):
        srv, aport = self.serve()
        adm, pub = HTTPFaultProxy(self, aport), HTTPFaultProxy(self, srv.port)
        sc = {"users": 3, "phases": [{"duration_s": 1, "rates": {"verify": 2}}]}
        # a busy server (503) is asked again; the run goes on
        adm.rule("POST", "/admin/users", ("status", 503), times=2)
        pub.rule("POST", "/v1/auth/login", ("status", 503), times=2)
        r = self.rehearse(srv, aport, sc, target=pub.url, admin=adm.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((adm.counts[("POST", "/admin/users")],
                          pub.counts[("POST", "/v1/auth/login")]), (2, 2))
        self.assertEqual(self.result()["phases"][0]["flows"]["verify"]["ok"], 2)
        # one that refuses is reported with what it said, and what was made is removed
        for where, prefix, status, words in (
                (adm, "/admin/users", 500, "creating a user (POST /admin/users)"),
                (pub, "/v1/auth/login", 429, "198.18.0.0/15"),
                (pub, "/v1/auth/login", 401, "the first login of a synthetic user")):
            with self.subTest(words):
                adm.rules.clear()
                pub.rules.clear()
                where.rule("POST", prefix, ("status", status))
                r = self.rehearse(srv, aport, sc, target=pub.url, admin=adm.url)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(words, r.stderr)
                self.assertIn(f"HTTP {status}", r.stderr)
                # the admin token is blamed only for what the admin API refused
                self.assertEqual("--admin-token" in r.stderr, where is adm and status == 401)
                where.rules.clear()
                self.assertEqual([u for u in self.admin_list(aport, "/admin/users")
                                  if u["username"].startswith("rehearse-")], [])
                self.assertEqual([c for c in self.admin_list(aport, "/admin/clients")
                                  if c["name"].startswith("rehearse-")], [])
        # a target that does not answer at all
        adm.rules.clear()
        pub.rules.clear()
        pub.rule("POST", "/v1/auth/login", "close")
        r = self.rehearse(srv, aport, sc, target=pub.url, admin=adm.url)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("connection error", r.stderr)
        self.assert_clean_exit(srv)

    def test_bad_input_is_refused_before_anything_is_created(self):
        srv, aport = self.serve()
        r = self.rehearse(srv, aport, '{"phases":[{"duration_s":1,"rates":{"logins":1}}]}')
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown flow 'logins'", r.stderr)
        ok = {"phases": [{"duration_s": 1, "rates": {"verify": 1}}]}
        r = self.rehearse(srv, aport, ok, token=None)
        self.assertEqual(r.returncode, 2)
        self.assertIn("admin token", r.stderr)
        r = self.rehearse(srv, aport, ok, token="x" * 40)  # wrong token: set-up fails
        self.assertEqual(r.returncode, 1)
        self.assertIn("check --admin and --admin-token", r.stderr)
        self.assertEqual(self.admin_list(aport, "/admin/users"), [])
        self.assert_clean_exit(srv)

    def test_command_line_refusals(self):
        """Each bad invocation is refused with its reason and exit 2, before any traffic
        (issue #11 item 22: rh_main's checks had never run)."""
        d = tempfile.mkdtemp(prefix="fg-rh-args-")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        sc = os.path.join(d, "s.json")
        with open(sc, "w") as f:
            f.write('{"phases":[{"duration_s":1,"rates":{"verify":1}}]}')
        notres = os.path.join(d, "r.json")
        with open(notres, "w") as f:
            f.write('{"phases":[]}')
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}

        def rh(*args):
            return subprocess.run([BIN, "rehearse", *args], capture_output=True, text=True,
                                  timeout=30, env=env)
        for args, words in ((("--help",), None), ((sc, sc), "one scenario file"),
                            ((sc, "--target"), "needs a value"),
                            ((sc, "--login-capacity", "-3"), "positive number"),
                            ((sc, "--bogus", "1"), "unknown option"),
                            ((), "usage"),
                            ((os.path.join(d, "missing.json"), "--admin-token", "t" * 40),
                             "cannot read"),
                            (("--render", notres, "--html", os.path.join(d, "x.html")),
                             "not a rehearsal result"),
                            (("--render", os.path.join(d, "missing.json")),
                             "not a rehearsal result"),
                            ((sc, "--admin-token", "t" * 40, "--target", "http://"),
                             "expected http://HOST:PORT"),
                            ((sc, "--admin-token", "t" * 40, "--target", "ftp://x:1"),
                             "expected http://HOST:PORT"),
                            ((sc, "--admin-token", "t" * 40, "--target", "http://127.0.0.1:1/p"),
                             "expected http://HOST:PORT"),
                            ((sc, "--admin-token", "t" * 40, "--admin", "http://[::1"),
                             "'http://[::1'"),
                            ((sc, "--admin-token", "t" * 40, "--target",
                              "http://no-such-host.invalid:1"), "no-such-host.invalid")):
            r = rh(*args)
            if words is None:
                self.assertEqual(r.returncode, 0)
                # its own options, not the server's (issue #15 item 8)
                self.assertIn("usage: floodgate rehearse", r.stdout)
                self.assertIn("--login-capacity", r.stdout)
                self.assertNotIn("--listen", r.stdout)
                continue
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(words, r.stderr, args)
