# SPDX-License-Identifier: MIT
"""Brute-force protection: parallel wrong passwords never get more attempts than allowed, a
locked key is answered exactly like a failed login (no enumeration), and an admin unlock
lifts it."""

import json
import re
import socket
import threading
import time

from tests.integration.fgtest import ServerTest, admin_call, metric_value, metrics, recv_all

FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
TOKEN = "admin-" + "0123456789abcdef" * 3
J = {"Content-Type": "application/json"}


class TestLockout(ServerTest):
    def login(self, srv, user, pw):
        st, _, body = srv.request("POST", "/v1/auth/login",
                                  json.dumps({"username": user, "password": pw}).encode(), J)
        return st, body

    def test_parallel_wrong_passwords_never_exceed_the_limit(self):
        # (the progressive delay is off here: this counts hashes against the limit alone)
        srv = self.start(*FAST, "--lockout-pair-attempts", "5", "--lockout-base", "10m",
                         "--ratelimit-login-ip", "off", "--lockout-delay", "0s",
                         "--admin-listen", "127.0.0.1:0", env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        self.assertEqual(srv.request("POST", "/v1/users", json.dumps(
            {"username": "ann", "password": "correct horse battery"}).encode(), J)[0], 201)
        answers = []

        def wrong():
            answers.append(self.login(srv, "ann", "wrong password!"))

        threads = [threading.Thread(target=wrong) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        text = metrics(srv)
        failed = metric_value(text, "floodgate_logins_total", 'result="failed"')
        refused = metric_value(text, "floodgate_logins_total", 'result="refused"')
        self.assertEqual(failed, 5, text[-600:])  # exactly the limit was hashed
        self.assertEqual(refused, 25)
        # refused while the five were in flight: "try again" (429), since those five might
        # have been right; refused after they failed: the one failure answer (401)
        self.assertEqual({a[0] for a in answers} - {401, 429}, set(), answers)
        failures = {a for a in answers if a[0] == 401}
        self.assertEqual(len(failures), 1, failures)  # one failure answer for all
        # locked now: even the right password gets the same failure, without a hash
        st, body = self.login(srv, "ann", "correct horse battery")
        self.assertEqual((st, body), next(iter(failures)))
        answers = [next(iter(failures))]
        self.assertEqual(metric_value(metrics(srv), "floodgate_lockouts_active"), 1)
        # an unknown username locks the same way: no hint that one exists
        for _ in range(5):
            self.login(srv, "nobody", "wrong password!")
        self.assertEqual(self.login(srv, "nobody", "x" * 10), answers[0])
        # admin unlock
        st, _ = admin_call(srv.admin_port(), TOKEN, "POST", "/admin/users/ann/unlock")
        self.assertEqual(st, 200)
        # unlock clears the username's own lock and its (username, IP) pairs
        self.assertEqual(self.login(srv, "ann", "correct horse battery")[0], 200)
        self.assert_clean_exit(srv)

    def test_right_passwords_in_flight_are_never_called_wrong(self):
        """Issue #11 item 9: attempts refused only because others are in flight (one user,
        one address, right password) get 429 + Retry-After, never 401, and count no
        failure."""
        srv = self.start("--argon2-memory", "8192", "--argon2-passes", "2", "--workers", "1",
                         "--lockout-pair-attempts", "5", "--ratelimit-login-ip", "off",
                         "--hash-deadline", "10s")
        self.assertEqual(srv.request("POST", "/v1/users", json.dumps(
            {"username": "ann", "password": "correct horse battery"}).encode(), J)[0], 201)
        answers, go = [], threading.Barrier(8)

        def right():
            go.wait(10)
            st, _, body = srv.request("POST", "/v1/auth/login", json.dumps(
                {"username": "ann", "password": "correct horse battery"}).encode(), J,
                timeout=30)
            answers.append((st, body))

        threads = [threading.Thread(target=right) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        codes = sorted(a[0] for a in answers)
        self.assertEqual(len(codes), 8)
        self.assertNotIn(401, codes, answers)
        self.assertEqual(set(codes) - {200, 429}, set(), codes)
        self.assertEqual(codes.count(200), 8 - codes.count(429))
        self.assertGreater(codes.count(429), 0, codes)  # (the race the issue measured)
        for st, body in answers:
            if st == 429:
                self.assertEqual(json.loads(body)["error"], "too_many_attempts")
        text = metrics(srv)
        self.assertEqual(metric_value(text, "floodgate_logins_total", 'result="failed"'), 0)
        # nothing was recorded against the account: it logs in at once
        self.assertEqual(self.login(srv, "ann", "correct horse battery")[0], 200)
        self.assert_clean_exit(srv)

    def test_lock_expires(self):
        srv = self.start(*FAST, "--lockout-pair-attempts", "2", "--lockout-base", "1s")
        srv.request("POST", "/v1/users", json.dumps(
            {"username": "bob", "password": "correct horse battery"}).encode(), J)
        self.login(srv, "bob", "wrong password!")
        self.login(srv, "bob", "wrong password!")
        self.assertEqual(self.login(srv, "bob", "correct horse battery")[0], 401)
        time.sleep(1.6)
        self.assertEqual(self.login(srv, "bob", "correct horse battery")[0], 200)
        self.assert_clean_exit(srv)


    def test_progressive_delay_before_the_lock(self):
        srv = self.start(*FAST, "--lockout-delay", "3s", "--lockout-delay-after", "2")
        srv.request("POST", "/v1/users", json.dumps(
            {"username": "cy", "password": "correct horse battery"}).encode(), J)
        first = self.login(srv, "cy", "wrong password!")
        self.assertEqual(self.login(srv, "cy", "wrong password!"), first)  # no delay yet
        t0 = time.monotonic()
        # delayed: even the right password gets the failed-login answer, without a hash
        self.assertEqual(self.login(srv, "cy", "correct horse battery"), first)
        self.assertEqual(metric_value(metrics(srv), "floodgate_logins_total",
                                      'result="refused"'), 1)
        self.assertEqual(metric_value(metrics(srv), "floodgate_lockouts_active"), 0)
        st = 401
        while st != 200 and time.monotonic() - t0 < 6:
            time.sleep(0.25)
            st = self.login(srv, "cy", "correct horse battery")[0]
        self.assertEqual(st, 200)
        self.assertGreater(time.monotonic() - t0, 1.9)  # 3 s counted in whole seconds
        self.assert_clean_exit(srv)


class TestRateLimits(ServerTest):
    def test_login_rate_limit_answers_429_with_headers(self):
        srv = self.start(*FAST, "--ratelimit-login-ip", "2/s:3", "--lockout-pair-attempts", "0",
                         "--lockout-user-attempts", "0", "--lockout-ip-attempts", "0")
        codes, headers = [], None
        for _ in range(6):
            st, h, body = srv.request("POST", "/v1/auth/login", json.dumps(
                {"username": "ann", "password": "wrong password!"}).encode(), J)
            codes.append(st)
            if st == 429:
                headers = h
                self.assertEqual(json.loads(body)["error"], "rate_limited")
        self.assertEqual(codes[:3], [401, 401, 401])  # the burst of 3
        self.assertIn(429, codes[3:])
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        self.assertEqual(headers["ratelimit-policy"], '"login";q=3;w=2')
        self.assertRegex(headers["ratelimit"], r'^"login";r=0;t=\d+$')
        text = metrics(srv)
        self.assertGreaterEqual(metric_value(text, "floodgate_rate_limited_total",
                                             'rule="login_ip"'), 1)
        self.assertEqual(metric_value(text, "floodgate_rate_limited_total",
                                      'rule="token_ip"'), 0)
        time.sleep(1.1)  # two more per second
        st, _, _ = srv.request("POST", "/v1/auth/login", json.dumps(
            {"username": "ann", "password": "wrong password!"}).encode(), J)
        self.assertEqual(st, 401)
        # other routes have their own rules
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        self.assert_clean_exit(srv)

    def test_bad_rate_is_a_config_error(self):
        from tests.integration.test_lifecycle import run
        r = run("--ratelimit-login-ip", "ten per second", "--data-dir", "/tmp/fg-rl-x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("COUNT/s|m|h", r.stderr)


class TestTrustedProxies(ServerTest):
    def forwarded(self, ip_attempts):
        """A server behind a trusted proxy at 127.0.0.1 allowing one login a minute per
        client address, and a wrong-password login from a forwarded address."""
        srv = self.start(*FAST, "--trusted-proxies", "127.0.0.1", "--ratelimit-login-ip", "1/m:1",
                         "--lockout-pair-attempts", "0", "--lockout-user-attempts", "0",
                         "--lockout-ip-attempts", ip_attempts)
        body = json.dumps({"username": "ann", "password": "wrong password!"}).encode()
        return srv, lambda xff: srv.request("POST", "/v1/auth/login", body,
                                            {**J, "X-Forwarded-For": xff})[0]

    def test_limits_key_on_the_forwarded_client(self):
        srv, login = self.forwarded("0")
        self.assertEqual(login("198.51.100.1"), 401)
        self.assertEqual(login("198.51.100.2"), 401)  # another client: its own budget
        self.assertEqual(login("198.51.100.1"), 429)
        # a client cannot escape by prepending a forged address
        self.assertEqual(login("203.0.113.77, 198.51.100.1"), 429)
        self.assert_clean_exit(srv)

    def test_ipv6_clients_count_by_their_64(self):
        """Issue #11 item 10: one host with a /64 cannot rotate addresses past a per-IP
        budget (rate limit and lockout alike)."""
        srv, login = self.forwarded("2")
        self.assertEqual(login("2001:db8:1:2::1"), 401)
        self.assertEqual(login("2001:db8:1:2::abcd"), 429)  # same /64: same budget
        self.assertEqual(login("2001:db8:1:2:ffff:ffff:ffff:ffff"), 429)
        self.assertEqual(login("2001:db8:1:3::1"), 401)  # the next /64 is another client
        self.assertEqual(login("::ffff:198.51.100.9"), 401)  # mapped IPv4 counts as IPv4
        self.assertEqual(login("198.51.100.9"), 429)
        self.assert_clean_exit(srv)

    def test_bad_proxy_list_fails_start(self):
        from tests.integration.test_lifecycle import run
        import tempfile
        d = tempfile.mkdtemp(prefix="fg-proxy-")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        r = run("--trusted-proxies", "10.0.0.0/99", "--data-dir", d, "--listen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("trusted_proxies", r.stderr)


class TestAdmission(ServerTest):
    def test_login_flood_is_shed_while_introspection_answers(self):
        """Logins past what the workers can do within hash_deadline get 503 + Retry-After at
        once; token introspection never queues behind hashing."""
        srv = self.start("--workers", "1", "--argon2-memory", "19456", "--argon2-passes", "2",
                         "--hash-deadline", "300ms", "--ratelimit-login-ip", "off",
                         "--lockout-pair-attempts", "0", "--lockout-user-attempts", "0",
                         "--lockout-ip-attempts", "0")
        from tests.integration.test_oauth import basic, cli, form
        c = json.loads(cli(srv.data, "client", "create", "c", "--json").stdout)
        auth = basic(c["client_id"], c["client_secret"])
        at = json.loads(srv.request("POST", "/oauth2/token", form(grant_type="client_credentials"),
                                    auth)[2])["access_token"]
        body = json.dumps({"username": "ann", "password": "wrong password!"}).encode()
        # measure the service time first, so the expected wait is known
        for _ in range(3):
            srv.request("POST", "/v1/auth/login", body, J, timeout=30)
        results, intro = [], []

        def login():
            t0 = time.monotonic()
            st, h, _ = srv.request("POST", "/v1/auth/login", body, J, timeout=60)
            results.append((st, h.get("retry-after"), time.monotonic() - t0))

        def introspect():
            for _ in range(10):
                t0 = time.monotonic()
                st, _, b = srv.request("POST", "/oauth2/introspect", form(token=at), auth)
                intro.append((st, json.loads(b)["active"], time.monotonic() - t0))
                time.sleep(0.02)

        threads = [threading.Thread(target=login) for _ in range(40)]
        it = threading.Thread(target=introspect)
        for t in threads:
            t.start()
        it.start()
        for t in threads + [it]:
            t.join(120)
        shed = [r for r in results if r[0] == 503]
        served = [r for r in results if r[0] == 401]
        self.assertEqual(len(shed) + len(served), 40)
        self.assertGreater(len(shed), 10, results)
        self.assertGreater(len(served), 0)
        self.assertTrue(all(int(r[1]) >= 1 for r in shed))
        shed_times = sorted(r[2] for r in shed)
        self.assertLess(shed_times[len(shed_times) // 2], 1.0)  # answered at once, not queued
        self.assertTrue(all(st == 200 and active for st, active, _ in intro))
        text = metrics(srv)
        self.assertGreater(metric_value(text, "floodgate_worker_rejected_requests_total"), 10)
        # the adaptive policy saw the flood and rose on its own (it samples once a second)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "policy mode changed" not in srv.stderr():
            time.sleep(0.1)
        self.assertIn('"msg":"policy mode changed","from":"normal"', srv.stderr())
        text = metrics(srv)
        self.assertGreaterEqual(metric_value(text, "floodgate_policy_mode_changes_total"), 1)
        self.assert_clean_exit(srv, timeout=60)


class TestRevocationLimits(ServerTest):
    def test_revoke_and_logout_are_rate_limited(self):
        """Issue #11 item 14: revocation and logout had no limit at all."""
        srv = self.start(*FAST, "--trusted-proxies", "127.0.0.1", "--ratelimit-revoke-ip",
                         "1/m:2", "--ratelimit-revoke-client", "1/m:3")
        from tests.integration.test_oauth import basic, cli, form
        c = json.loads(cli(srv.data, "client", "create", "svc", "--json").stdout)
        auth = basic(c["client_id"], c["client_secret"])

        def revoke(ip):
            return srv.request("POST", "/oauth2/revoke", form(token="x" * 43),
                               {**auth, "X-Forwarded-For": ip})

        def logout(ip):
            return srv.request("POST", "/v1/auth/logout", json.dumps(
                {"refresh_token": "y" * 43}).encode(), {**J, "X-Forwarded-For": ip})

        self.assertEqual(revoke("198.51.100.1")[0], 200)
        self.assertEqual(logout("198.51.100.1")[0], 200)
        st, h, _ = revoke("198.51.100.1")  # the address's burst of 2 is spent
        self.assertEqual(st, 429)
        self.assertIn("retry-after", h)
        self.assertEqual(logout("198.51.100.1")[0], 429)
        # per client, whatever the address: a third revocation is the client's limit
        self.assertEqual(revoke("198.51.100.2")[0], 200)
        self.assertEqual(revoke("198.51.100.3")[0], 200)
        self.assertEqual(revoke("198.51.100.4")[0], 429)
        self.assertEqual(logout("198.51.100.4")[0], 200)  # (logout has no client)
        self.assert_clean_exit(srv)


class TestRateLimitKeys(ServerTest):
    def test_username_client_and_global_keys(self):
        srv = self.start(*FAST, "--trusted-proxies", "127.0.0.1", "--ratelimit-login-ip", "off",
                         "--ratelimit-login-user", "1/m:2", "--ratelimit-token-client", "1/m:2",
                         "--ratelimit-register-global", "1/m:1", "--lockout-pair-attempts", "0",
                         "--lockout-user-attempts", "0", "--lockout-ip-attempts", "0")
        from tests.integration.test_oauth import basic, cli, form
        body = json.dumps({"username": "Ann", "password": "wrong password!"}).encode()

        def login(ip):
            return srv.request("POST", "/v1/auth/login", body,
                               {**J, "X-Forwarded-For": ip})

        self.assertEqual(login("198.51.100.1")[0], 401)
        self.assertEqual(login("198.51.100.2")[0], 401)
        st, h, _ = login("198.51.100.3")  # same user from a third address: per-user rule
        self.assertEqual(st, 429)
        self.assertTrue(h["ratelimit-policy"].startswith('"login-user"'))
        c = json.loads(cli(srv.data, "client", "create", "c", "--json").stdout)
        codes = [srv.request("POST", "/oauth2/token", form(grant_type="client_credentials"),
                             basic(c["client_id"], c["client_secret"]))[0] for _ in range(3)]
        self.assertEqual(codes, [200, 200, 429])
        reg = [srv.request("POST", "/v1/users", json.dumps(
            {"username": f"u{i}", "password": "correct horse battery"}).encode(),
            {**J, "X-Forwarded-For": f"203.0.113.{i}"})[0] for i in range(2)]
        self.assertEqual(reg, [201, 429])  # global: whatever the address
        self.assert_clean_exit(srv)


class TestInflightCaps(ServerTest):
    def test_login_cap_and_no_leak(self):
        srv = self.start("--workers", "1", "--argon2-memory", "19456", "--argon2-passes", "2",
                         "--hash-deadline", "0s", "--inflight-login", "2",
                         "--ratelimit-login-ip", "off", "--lockout-pair-attempts", "0",
                         "--lockout-user-attempts", "0", "--lockout-ip-attempts", "0")
        body = json.dumps({"username": "ann", "password": "wrong password!"}).encode()
        codes = []

        def login():
            codes.append(srv.request("POST", "/v1/auth/login", body, J, timeout=60)[0])

        threads = [threading.Thread(target=login) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertIn(503, codes)
        self.assertIn(401, codes)
        self.assertEqual(sorted(set(codes)), [401, 503])
        # every slot was given back: one at a time, all are served
        for _ in range(4):
            self.assertEqual(srv.request("POST", "/v1/auth/login", body, J, timeout=30)[0], 401)
        self.assert_clean_exit(srv)


class TestPolicyAdmin(ServerTest):
    def test_override_modes_and_their_effects(self):
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0",
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = srv.admin_port()

        def admin(method, obj=None):
            return admin_call(aport, TOKEN, method, "/admin/policy", obj)

        st, p = admin("GET")
        self.assertEqual((st, p["mode"], p["override"]), (200, "normal", "auto"))
        from tests.integration.test_oauth import basic, cli, form
        c = json.loads(cli(srv.data, "client", "create", "c", "--json").stdout)
        ttl = lambda: json.loads(srv.request("POST", "/oauth2/token",
                                             form(grant_type="client_credentials"),
                                             basic(c["client_id"], c["client_secret"]))[2])["expires_in"]
        self.assertEqual(ttl(), 900)
        self.assertEqual(admin("PUT", {"mode": "surge"})[1]["mode"], "surge")
        self.assertEqual(ttl(), 1800)  # longer tokens: fewer refreshes during the spike
        self.assertEqual(admin("PUT", {"mode": "shed"})[1]["mode"], "shed")
        st, h, body = srv.request("POST", "/v1/users", json.dumps(
            {"username": "new", "password": "correct horse battery"}).encode(), J)
        self.assertEqual((st, json.loads(body)["error_description"]),
                         (503, "registration is paused"))
        # one Retry-After, the pause's own 30 s (the error map must not add its 1 s too)
        with srv.connect() as s:
            b = json.dumps({"username": "new", "password": "correct horse battery"}).encode()
            s.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(b), b))
            raw = recv_all(s)
        self.assertEqual(re.findall(rb"(?i)\r\nretry-after: *(\d+)", raw), [b"30"], raw)
        text = metrics(srv)
        self.assertEqual(metric_value(text, "floodgate_policy_mode"), 3)
        # the same as a state set, for dashboards and alerts that match on a name
        self.assertEqual({m: metric_value(text, "floodgate_policy_mode_state", f'mode="{m}"')
                          for m in ("normal", "elevated", "surge", "shed")},
                         {"normal": 0, "elevated": 0, "surge": 0, "shed": 1})
        st, p = admin("PUT", {"mode": "auto"})
        self.assertEqual(p["override"], "auto")
        self.assertEqual(admin("PUT", {"mode": "panic"})[0], 400)
        self.assert_clean_exit(srv)


    def test_effects_come_from_the_configuration(self):
        # a longer lifetime factor and a registration pause already in surge
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0", "--policy-ttl-factor-surge",
                         "3", "--policy-ttl-max", "40m", "--policy-registration-pause", "surge",
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = srv.admin_port()

        def pin(mode):
            return admin_call(aport, TOKEN, "PUT", "/admin/policy", {"mode": mode})[0]

        from tests.integration.test_oauth import basic, cli, form
        c = json.loads(cli(srv.data, "client", "create", "c", "--json").stdout)
        ttl = lambda: json.loads(srv.request("POST", "/oauth2/token",
                                             form(grant_type="client_credentials"),
                                             basic(c["client_id"], c["client_secret"]))[2])["expires_in"]
        reg = lambda n: srv.request("POST", "/v1/users", json.dumps(
            {"username": n, "password": "correct horse battery"}).encode(), J)[0]
        self.assertEqual(pin("elevated"), 200)
        self.assertEqual((ttl(), reg("a1")), (900, 201))  # elevated: factor 1, open
        self.assertEqual(pin("surge"), 200)
        self.assertEqual((ttl(), reg("a2")), (2400, 503))  # 900 x 3 capped at 40 min
        self.assertEqual(pin("auto"), 200)
        self.assert_clean_exit(srv)


    def test_credential_stuffing_from_many_addresses_tightens_per_ip_logins(self):
        srv = self.start(*FAST, "--trusted-proxies", "127.0.0.1", "--admin-listen",
                         "127.0.0.1:0", "--ratelimit-login-ip", "10/s:20",
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = srv.admin_port()

        def policy():
            return admin_call(aport, TOKEN, "GET", "/admin/policy")[1]

        def fail_from(i):
            return srv.request("POST", "/v1/auth/login", json.dumps(
                {"username": f"u{i}", "password": "wrong password!"}).encode(),
                dict(J, **{"X-Forwarded-For": f"198.18.{i // 256}.{i % 256}"}))[0]

        # 300 failures from 300 addresses, 20 at a time: far over 50 addresses a second
        deadline = time.monotonic() + 20
        while not policy()["credential_stuffing"] and time.monotonic() < deadline:
            threads = [threading.Thread(target=fail_from, args=(i,)) for i in range(300)]
            for k in range(0, 300, 20):
                for t in threads[k:k + 20]:
                    t.start()
                for t in threads[k:k + 20]:
                    t.join(30)
            time.sleep(1.1)  # a sample
        p = policy()
        self.assertTrue(p["credential_stuffing"], p)
        self.assertIn(p["mode"], ("elevated", "surge", "shed"))
        self.assertIn("credential stuffing suspected", srv.stderr())
        self.assertLessEqual({"hash_wait_ms", "login_demand", "login_capacity", "failed_ratio",
                              "failed_ips", "routes"}, set(p["sample"]))
        # one address now gets a quarter of the usual burst of 20 (held for 10 s)
        codes = [srv.request("POST", "/v1/auth/login", json.dumps(
            {"username": "someone", "password": "wrong password!"}).encode(),
            dict(J, **{"X-Forwarded-For": "203.0.113.9"}))[0] for _ in range(8)]
        self.assertEqual(codes.count(429), 3, codes)  # 5 pass, then limited
        self.assert_clean_exit(srv)


class TestAnnouncedEvents(ServerTest):
    def test_schedule_raises_the_mode_and_cancel(self):
        srv = self.start()
        from tests.integration.test_oauth import cli
        r = cli(srv.data, "event", "schedule", "--at", "+2m", "--expect", "10x", "--duration",
                "30m", "--name", "launch", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        eid = json.loads(r.stdout)["id"]
        deadline = time.monotonic() + 5
        mode = 0
        while time.monotonic() < deadline and mode < 2:
            mode = metric_value(metrics(srv), "floodgate_policy_mode")
            time.sleep(0.2)
        self.assertEqual(mode, 2)  # surge, 2 minutes ahead of the event
        events = json.loads(cli(srv.data, "event", "list", "--json").stdout)
        self.assertEqual([e["id"] for e in events], [eid])
        self.assertEqual(events[0]["event"]["expect"], 10.0)
        self.assertEqual(cli(srv.data, "event", "cancel", eid).returncode, 0)
        self.assertEqual(json.loads(cli(srv.data, "event", "list", "--json").stdout), [])
        r = cli(srv.data, "event", "schedule", "--at", "yesterday", "--expect", "10x")
        self.assertEqual(r.returncode, 2)
        self.assert_clean_exit(srv)

    def test_admin_api_schedules_lists_and_cancels(self):
        srv = self.start("--admin-listen", "127.0.0.1:0", env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = srv.admin_port()

        def admin(method, path, obj=None):
            return admin_call(aport, TOKEN, method, path, obj)

        st, ev = admin("POST", "/admin/events", {"name": "launch", "at": "+2m", "expect": "3x",
                                                 "duration": "30m"})
        self.assertEqual(st, 201, ev)
        self.assertEqual((ev["event"]["expect"], ev["event"]["duration"]), (3.0, 1800))
        deadline, mode = time.monotonic() + 5, 0
        while time.monotonic() < deadline and mode < 1:
            mode = metric_value(metrics(srv), "floodgate_policy_mode")
            time.sleep(0.2)
        self.assertEqual(mode, 1)  # elevated for a 3x event, ahead of it
        st, lst = admin("GET", "/admin/events")
        self.assertEqual((st, [e["id"] for e in lst]), (200, [ev["id"]]))
        from tests.integration.test_oauth import cli
        self.assertEqual([e["id"] for e in json.loads(
            cli(srv.data, "event", "list", "--json").stdout)], [ev["id"]])  # one store, one view
        for bad in ({"at": "+2m"}, {"at": "yesterday", "expect": 10}, {"at": "+2m", "expect": 0},
                    {"at": "+2m", "expect": "10y"}, {"at": "+2m", "expect": 5, "name": 'a"b'},
                    {"at": "+2m", "expect": 5, "duration": "40d"}, {"at": "+2m", "expect": 5000}):
            self.assertEqual(admin("POST", "/admin/events", bad)[0], 400, bad)
        self.assertEqual(admin("DELETE", "/admin/events/" + ev["id"])[0], 200)
        self.assertEqual(admin("DELETE", "/admin/events/" + ev["id"])[0], 404)
        self.assertEqual(admin("GET", "/admin/events"), (200, []))
        self.assert_clean_exit(srv)
