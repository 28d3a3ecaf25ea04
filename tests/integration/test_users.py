# SPDX-License-Identifier: MIT
"""Users and sessions on the embedded store: registration, password login (JSON API and the
OAuth password grant), refresh rotation with the grace window and reuse detection, logout,
hash migration, equal answers for unknown users, concurrent refreshes, and kill -9 during a
refresh load."""

import base64
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import threading
import time
import urllib.parse

from tests.integration.fgtest import (BIN, REDIS_MODE, Server, ServerTest, metric_value,
                                      metrics, store_args)

J = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Small Argon2 parameters keep the suite fast under ASan; the logic is the same.
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")


def cli(data_dir, *args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
    return subprocess.run([BIN, "--data-dir", data_dir, *store_args(data_dir), *FAST, *args],
                          capture_output=True,
                          text=True, timeout=60, env=env, input=stdin)


def basic(cid, secret):
    raw = f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode(), **FORM}


class UserTest(ServerTest):
    args = FAST

    def post(self, srv, path, obj, headers=None):
        st, h, body = srv.request("POST", path, json.dumps(obj).encode(), {**J, **(headers or {})})
        return st, h, (json.loads(body) if body else None)

    def register(self, srv, user="ann", pw="correct horse battery"):
        return self.post(srv, "/v1/users", {"username": user, "password": pw})

    def login(self, srv, user="ann", pw="correct horse battery"):
        return self.post(srv, "/v1/auth/login", {"username": user, "password": pw})

    def refresh(self, srv, rt):
        return self.post(srv, "/v1/auth/refresh", {"refresh_token": rt})


class TestRegistrationAndLogin(UserTest):
    def test_register_rules(self):
        srv = self.start()
        st, _, body = self.register(srv, "Ann.Lee+1@example.org")
        self.assertEqual(st, 201, body)
        self.assertEqual(body["username"], "ann.lee+1@example.org")
        self.assertEqual(self.register(srv, "ANN.LEE+1@EXAMPLE.ORG")[0], 409)
        self.assertEqual(self.register(srv, "bad name")[2]["error"], "invalid_username")
        self.assertEqual(self.register(srv, "ann\u00e9")[2]["error"], "invalid_username")
        self.assertEqual(self.register(srv, "bob", "short")[2]["error"], "invalid_password")
        self.assertEqual(self.register(srv, "bob", "x" * 1025)[2]["error"], "invalid_password")
        st, _, _ = srv.request("POST", "/v1/users", b"username=bob", FORM)
        self.assertEqual(st, 415)
        st, _, body = self.post(srv, "/v1/users", {"username": "bob"})
        self.assertEqual((st, body["error"]), (400, "invalid_request"))
        self.assert_clean_exit(srv)

    def test_password_denylist(self):
        """Issue #11 item 21: the deny list (NIST SP 800-63B) had never run: registration,
        the admin API and the CLI refuse a listed password, exactly as listed."""
        import tempfile
        d = tempfile.mkdtemp(prefix="fg-deny-")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        deny = os.path.join(d, "deny.txt")
        with open(deny, "w") as f:
            f.write("password123\nqwertyuiop\n\n")
        srv = self.start("--password-denylist", deny)
        st, _, body = self.register(srv, "ann", "qwertyuiop")
        self.assertEqual((st, body["error"]), (400, "invalid_password"))
        self.assertIn("too common", body["error_description"])
        self.assertEqual(self.register(srv, "ann", "password123")[0], 400)
        self.assertEqual(self.register(srv, "ann", "password1234")[0], 201)  # exact match only
        r = subprocess.run([BIN, "--data-dir", srv.data, *store_args(srv.data), *FAST,
                            "--password-denylist", deny, "user", "add", "bob"],
                           input="password123\n", capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in os.environ.items()
                                if not k.startswith("FLOODGATE_")})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("too common", r.stderr)
        self.assert_clean_exit(srv)

    def test_registration_closed(self):
        srv = self.start("--registration", "false")
        self.assertEqual(self.register(srv)[0], 403)
        self.assert_clean_exit(srv)

    def test_login_and_identical_failures(self):
        srv = self.start()
        _, _, user = self.register(srv)
        st, h, tok = self.login(srv, "ANN")
        self.assertEqual(st, 200, tok)
        self.assertEqual(h["cache-control"], "no-store")
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertEqual(len(tok["refresh_token"]), 46)
        st, h, _ = srv.request("GET", "/v1/auth/verify", None,
                               {"Authorization": "Bearer " + tok["access_token"]})
        self.assertEqual((st, h["x-auth-subject"], h["x-auth-client-id"]),
                         (200, user["id"], "first-party"))
        answers = set()
        for u, p in (("ann", "wrong password"), ("nobody", "correct horse battery"),
                     ("", "x"), ("bad name", "correct horse battery")):
            st, _, body = self.login(srv, u, p)
            answers.add((st, json.dumps(body)))
        r = cli(srv.data, "user", "disable", "ann")
        self.assertEqual(r.returncode, 0, r.stderr)
        st, _, body = self.login(srv)
        answers.add((st, json.dumps(body)))
        self.assertEqual(len(answers), 1, answers)  # no way to tell the cases apart
        self.assertEqual(answers.pop()[0], 401)
        self.assert_clean_exit(srv)

    def test_unknown_user_costs_a_hash(self):
        """An unknown username is hashed against a dummy, so it is not answered faster than a
        wrong password (here with OWASP-sized Argon2id, so the hash dominates). The progressive
        delay is off: from a pair's third failure it answers at once without hashing, and the
        test would compare two refusals instead of two hashes."""
        srv = Server("--argon2-memory", "19456", "--argon2-passes", "2", "--lockout-delay", "0s")
        self.addCleanup(srv.cleanup)
        self.register(srv)

        def median_ms(user):
            t = []
            for _ in range(5):
                t0 = time.monotonic()
                self.assertEqual(self.login(srv, user, "wrong password")[0], 401)
                t.append((time.monotonic() - t0) * 1000)
            return statistics.median(t)

        wrong, unknown = median_ms("ann"), median_ms("nobody")
        self.assertGreater(unknown, 0.5 * wrong, f"unknown {unknown:.1f} ms vs wrong {wrong:.1f} ms")
        self.assert_clean_exit(srv)

    def test_unknown_and_wrong_password_take_the_same_time(self):
        """Issue #11 item 11: the two failures do the same work (one store read and a record
        decoded, the same PHC parse, hash and constant-time compare), so their latency
        distributions match. Samples are interleaved (noise hits both alike); quartiles
        must agree within 20 %. A measurement disturbed by the machine is taken again, at
        most three times: a real difference (say, a skipped hash) fails all three."""
        srv = Server("--argon2-memory", "8192", "--argon2-passes", "1", "--workers", "1",
                     "--lockout-delay", "0s", "--lockout-pair-attempts", "0",
                     "--lockout-user-attempts", "0", "--lockout-ip-attempts", "0",
                     "--ratelimit-login-ip", "off")
        self.addCleanup(srv.cleanup)
        self.register(srv)
        for _ in range(5):  # warm up: pages of the hashing buffer, caches
            self.login(srv, "ann", "wrong password")
            self.login(srv, "nobody", "wrong password")

        def quartiles(xs):
            q = statistics.quantiles(xs, n=4)
            return q[0], q[1], q[2]

        report = []
        for attempt in range(3):
            wrong, unknown = [], []
            for _ in range(40):
                for user, into in (("ann", wrong), ("nobody", unknown)):
                    t0 = time.perf_counter()
                    self.assertEqual(self.login(srv, user, "wrong password")[0], 401)
                    into.append((time.perf_counter() - t0) * 1000)
            qw, qu = quartiles(wrong), quartiles(unknown)
            ratios = [u / w for u, w in zip(qu, qw)]
            report.append(f"wrong {qw} unknown {qu} ratios {ratios}")
            if all(0.8 <= r <= 1.25 for r in ratios):
                break
        else:
            self.fail("unknown users and wrong passwords take different times: " +
                      "; ".join(report))
        self.assert_clean_exit(srv)

    def test_imported_bcrypt_user_is_upgraded_at_login(self):
        srv = self.start()
        # bcrypt test vector: password "U*U" (too short for our policy, fine for an import)
        r = cli(srv.data, "user", "import", "dave",
                "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.login(srv, "dave", "U*U")[0], 200)
        kinds = {u["username"]: u["hash"] for u in json.loads(cli(srv.data, "user", "list",
                                                                   "--json").stdout)}
        self.assertEqual(kinds["dave"], "argon2id")
        self.assertEqual(self.login(srv, "dave", "U*U")[0], 200)  # and it still works
        self.assertEqual(self.login(srv, "dave", "U*V")[0], 401)
        self.assert_clean_exit(srv)

    def test_cli_user_add_and_passwd(self):
        srv = self.start()
        r = cli(srv.data, "user", "add", "Erin", "--json", stdin="first password\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["username"], "erin")
        self.assertEqual(self.login(srv, "erin", "first password")[0], 200)
        r = cli(srv.data, "user", "passwd", "erin", stdin="second password\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.login(srv, "erin", "first password")[0], 401)
        self.assertEqual(self.login(srv, "erin", "second password")[0], 200)
        self.assertEqual(cli(srv.data, "user", "add", "x", stdin="short\n").returncode, 2)
        self.assertEqual(cli(srv.data, "user", "delete", "erin").returncode, 0)
        self.assertEqual(self.login(srv, "erin", "second password")[0], 401)
        self.assert_clean_exit(srv)


class TestRefresh(UserTest):
    def session(self, srv):
        self.register(srv)
        st, _, tok = self.login(srv)
        self.assertEqual(st, 200)
        return tok

    def test_rotation_grace_reuse(self):
        srv = self.start("--refresh-grace", "10s")  # the window is off by default
        t0 = self.session(srv)["refresh_token"]
        st, _, a = self.refresh(srv, t0)
        self.assertEqual(st, 200, a)
        t1 = a["refresh_token"]
        self.assertNotEqual(t1, t0)
        st, _, again = self.refresh(srv, t0)  # retried within the grace window
        self.assertEqual((st, again["refresh_token"]), (200, t1))
        st, _, b = self.refresh(srv, t1)
        t2 = b["refresh_token"]
        self.assertEqual(self.refresh(srv, t0)[0], 401)  # reuse after the successor moved on
        self.assertEqual(self.refresh(srv, t2)[0], 401)  # the whole family is revoked
        for bad in ("", "x" * 43, "not-a-token", t2 + "A"):
            self.assertEqual(self.refresh(srv, bad)[0], 401)
        self.assert_clean_exit(srv)

    def test_concurrent_refreshes_never_fork_the_family(self):
        for grace in ("10s", "0s"):
            srv = Server(*FAST, "--refresh-grace", grace)
            self.addCleanup(srv.cleanup)
            t0 = self.session(srv)["refresh_token"]
            results = []

            def go():
                results.append(self.refresh(srv, t0))

            threads = [threading.Thread(target=go) for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
            codes = sorted(r[0] for r in results)
            self.assertNotIn(500, codes)
            successors = {r[2]["refresh_token"] for r in results if r[0] == 200}
            self.assertEqual(len(successors), 1, f"grace {grace}: {codes}")
            if grace == "0s":
                self.assertEqual(codes.count(200), 1)
            self.assert_clean_exit(srv)

    def test_logout_revokes_family_and_access_token(self):
        srv = self.start()
        tok = self.session(srv)
        auth = {"Authorization": "Bearer " + tok["access_token"]}
        st, _, body = self.post(srv, "/v1/auth/logout", {"refresh_token": tok["refresh_token"]},
                                auth)
        self.assertEqual((st, body["status"]), (200, "logged_out"))
        self.assertEqual(self.refresh(srv, tok["refresh_token"])[0], 401)
        self.assertEqual(srv.request("GET", "/v1/auth/verify", None, auth)[0], 401)
        self.assert_clean_exit(srv)


class TestOAuthUserGrants(UserTest):
    def test_password_and_refresh_grants(self):
        srv = self.start()
        self.register(srv)
        r = cli(srv.data, "client", "create", "app", "--grants", "password,refresh_token",
                "--scopes", "profile email", "--json")
        c = json.loads(r.stdout)
        auth = basic(c["client_id"], c["client_secret"])
        form = urllib.parse.urlencode({"grant_type": "password", "username": "ann",
                                       "password": "correct horse battery",
                                       "scope": "profile"}).encode()
        st, _, body = srv.request("POST", "/oauth2/token", form, auth)
        tok = json.loads(body)
        self.assertEqual((st, tok["scope"]), (200, "profile"), body)
        bad = form.replace(b"battery", b"batteryX")
        st, _, body = srv.request("POST", "/oauth2/token", bad, auth)
        self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_grant"))
        # refresh, narrowing the scope; widening it is refused
        st, _, body = srv.request("POST", "/oauth2/token", urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}).encode(),
            auth)
        self.assertEqual(st, 200, body)
        rt = json.loads(body)["refresh_token"]
        st, _, body = srv.request("POST", "/oauth2/token", urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": rt, "scope": "email"}).encode(),
            auth)
        self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_scope"))
        # another client cannot use it
        o = json.loads(cli(srv.data, "client", "create", "other", "--grants", "refresh_token",
                           "--json").stdout)
        st, _, body = srv.request("POST", "/oauth2/token", urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": rt}).encode(),
            basic(o["client_id"], o["client_secret"]))
        self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_grant"))
        # RFC 7009 revocation of the refresh token revokes the family
        st, _, _ = srv.request("POST", "/oauth2/revoke", urllib.parse.urlencode(
            {"token": rt, "token_type_hint": "refresh_token"}).encode(), auth)
        self.assertEqual(st, 200)
        st, _, body = srv.request("POST", "/oauth2/token", urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": rt}).encode(), auth)
        self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_grant"))
        self.assert_clean_exit(srv)

    def test_malformed_user_grants_change_nothing(self):
        """Issue #11 item 22: every malformed password or refresh request is a 400 with its
        reason, before anything is hashed or written; the flows work on afterwards."""
        srv = self.start()
        self.register(srv)
        c = json.loads(cli(srv.data, "client", "create", "app", "--grants",
                           "password,refresh_token", "--scopes", "profile", "--json").stdout)
        cc = json.loads(cli(srv.data, "client", "create", "svc", "--json").stdout)
        auth = basic(c["client_id"], c["client_secret"])
        tok = lambda raw, a=auth: srv.request("POST", "/oauth2/token", raw.encode(), a)
        pw = "grant_type=password&username=ann&password=correct+horse+battery"
        for raw, a, err in (
                ("grant_type=password&username=ann", auth, "invalid_request"),
                ("grant_type=password&password=x", auth, "invalid_request"),
                (pw + "&username=bob", auth, "invalid_request"),
                (pw + "&password=x", auth, "invalid_request"),
                (pw + "&scope=admin", auth, "invalid_scope"),
                (pw + "&scope=profile&scope=profile", auth, "invalid_request"),
                (pw, basic(cc["client_id"], cc["client_secret"]), "unauthorized_client"),
                ("grant_type=refresh_token", auth, "invalid_request"),
                ("grant_type=refresh_token&refresh_token=a&refresh_token=b", auth,
                 "invalid_request"),
                ("grant_type=refresh_token&refresh_token=a&scope=%zz", auth, "invalid_request"),
                ("grant_type=refresh_token&refresh_token=a&scope=a&scope=b", auth,
                 "invalid_request"),
                ("grant_type=refresh_token&refresh_token=a",
                 basic(cc["client_id"], cc["client_secret"]), "unauthorized_client")):
            with self.subTest(raw):
                st, _, body = tok(raw, a)
                self.assertEqual((st, json.loads(body)["error"]), (400, err), body)
        post = lambda path, body: srv.request("POST", path, body, J)
        for path, body in (("/v1/auth/login", b'{"username":"ann"}'),
                           ("/v1/auth/login", b'{"password":"x"}'),
                           ("/v1/auth/login", b'{"username":"ann","password":7}'),
                           ("/v1/auth/refresh", b'{"refresh_token":'),
                           ("/v1/auth/refresh", b'{}'),
                           ("/v1/auth/refresh", b'{"refresh_token":["a"]}')):
            with self.subTest(path=path, body=body):
                st, _, b = post(path, body)
                self.assertEqual((st, json.loads(b)["error"]), (400, "invalid_request"), b)
        # a password longer than any hashed is a wrong one, after the same work
        st, _, b = post("/v1/auth/login", json.dumps(
            {"username": "ann", "password": "correct horse battery" + "x" * 2000}).encode())
        self.assertEqual(st, 401, b)
        st, _, body = tok(pw + "&scope=profile")
        self.assertEqual(st, 200, body)
        self.assert_clean_exit(srv)

    def test_password_grant_switch_and_client_permission(self):
        srv = self.start("--password-grant", "false")
        self.register(srv)
        c = json.loads(cli(srv.data, "client", "create", "app", "--grants", "password",
                           "--json").stdout)
        form = urllib.parse.urlencode({"grant_type": "password", "username": "ann",
                                       "password": "correct horse battery"}).encode()
        st, _, body = srv.request("POST", "/oauth2/token", form,
                                  basic(c["client_id"], c["client_secret"]))
        self.assertEqual((st, json.loads(body)["error"]), (400, "unsupported_grant_type"))
        d = json.loads(srv.request("GET", "/.well-known/openid-configuration")[2])
        self.assertNotIn("password", d["grant_types_supported"])
        self.assert_clean_exit(srv)


class TestCrash(UserTest):
    def test_kill9_during_refresh_load_loses_no_acknowledged_rotation(self):
        srv = self.start()
        chains = []
        for i in range(4):
            self.register(srv, f"user{i}")
            chains.append(self.login(srv, f"user{i}")[2]["refresh_token"])
        acked = list(chains)
        spent = [None] * 4  # the token each acked one replaced: spent, in the spent log
        stop = threading.Event()

        def run(i):
            while not stop.is_set():
                try:
                    st, _, body = self.refresh(srv, acked[i])
                except (OSError, AssertionError):
                    return  # the server was killed under us: expected
                if st != 200:
                    return
                spent[i] = acked[i]
                acked[i] = body["refresh_token"]  # acknowledged: must survive

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        srv.proc.send_signal(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        srv.proc.wait(10)
        srv2 = Server(*FAST, "--data-dir", srv.data, "--issuer", f"http://127.0.0.1:{srv.port}")
        self.addCleanup(srv2.cleanup)
        for i in range(4):
            # the last acknowledged token is either still live or was rotated by a commit
            # whose answer never arrived: then the grace window answers its successor
            st, _, body = self.refresh(srv2, acked[i])
            self.assertEqual(st, 200, f"chain {i}: {body}")
            if spent[i]:
                # spent before the crash (its successor has moved on since): reuse, refused
                st, _, body = self.refresh(srv2, spent[i])
                self.assertEqual(st, 401, f"chain {i}: {body}")
                self.assertEqual(body["error"], "invalid_grant")
        self.assertGreater(sum(1 for a, c in zip(acked, chains) if a != c), 0)
        self.assert_clean_exit(srv2)


class TestPurge(UserTest):
    def test_purge_pass_deletes_expired_records_in_slices(self):
        """purge_interval: a pass starts an interval after start-up and goes on in slices, a
        second apart, until the store says it is done; the embedded store deletes at most
        10,000 records a slice, so that no write waits long behind a pass. A first server
        whose refresh tokens live 60 s leaves 8 sessions rotated 1,500 times each: 12,016
        records (8 families, 8 first tokens, 12,000 successors) that expire within a minute.
        The next server on the directory passes a minute after it starts; it deletes exactly
        those, in more than one slice, and a session of its own survives the pass. The spent
        log that named the deleted tokens still folds."""
        if REDIS_MODE:
            self.skipTest("Redis expires its records itself (EXPIREAT)")
        a = self.start("--refresh-ttl", "60s", "--refresh-idle-ttl", "60s",
                       "--ratelimit-refresh-ip", "off")
        self.register(a)
        roots = [self.login(a)[2]["refresh_token"] for _ in range(8)]
        done = []

        def chain(rt):
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
            for _ in range(1500):
                c.request("POST", "/v1/auth/refresh", json.dumps({"refresh_token": rt}), J)
                r = c.getresponse()
                body = json.loads(r.read())
                if r.status != 200:
                    return
                rt = body["refresh_token"]
            done.append(rt)
            c.close()

        threads = [threading.Thread(target=chain, args=(rt,)) for rt in roots]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(done), 8)
        self.assert_clean_exit(a)
        time.sleep(1.5)  # (expiries are whole seconds: all of them before b's first pass)
        b = Server(*FAST, "--data-dir", a.data, "--issuer", f"http://127.0.0.1:{a.port}",
                   "--purge-interval", "1m")
        self.addCleanup(b.cleanup)
        live = self.login(b)[2]["refresh_token"]
        pat = r'"msg":"purged expired records","count":"(\d+)","slices":"(\d+)"'
        deadline = time.monotonic() + 90  # (the pass at 61-62 s; were its second slice
        # left to the next minute's maintenance, at 121 s, this would fail)
        while not re.search(pat, b.stderr()) and time.monotonic() < deadline:
            time.sleep(0.5)
        m = re.search(pat, b.stderr())
        self.assertTrue(m, b.stderr()[-2000:])
        self.assertEqual(int(m.group(1)), 8 * 2 + 8 * 1500)
        self.assertGreaterEqual(int(m.group(2)), 2)
        st, _, body = self.refresh(b, live)
        self.assertEqual(st, 200, body)
        st, _, body = self.refresh(b, done[0])  # (expired, and its record gone: refused)
        self.assertEqual((st, body["error"]), (401, "invalid_grant"))
        self.assert_clean_exit(b)
        for table, left in (("refresh_t", 2), ("families", 1)):  # (b's session: 2 tokens)
            r = subprocess.run(["mdb_stat", "-s", table, a.data], capture_output=True,
                               text=True, timeout=30)
            self.assertIn(f"Entries: {left}\n", r.stdout, r.stderr)
        r = cli(a.data, "store", "fold")
        self.assertEqual(r.returncode, 0, r.stderr)


class TestStoreFold(UserTest):
    def test_store_fold_at_bounds_the_spendings_held_in_memory(self):
        """store_fold_at: the embedded store folds its spent log once that many spendings
        are held, so the memory they take is set by configuration. 1,200 rotations with
        store_fold_at 1,000 leave fewer than 1,000 held and one fold done (the default,
        200,000, would hold all 1,200), and the first token, folded into its record, is
        still refused as reuse. A value below the range is refused at start."""
        if REDIS_MODE:
            self.skipTest("the spent log is the embedded store's")
        srv = self.start("--store-fold-at", "1000", "--ratelimit-refresh-ip", "off")
        self.register(srv)
        first = rt = self.login(srv)[2]["refresh_token"]
        for _ in range(1200):
            st, _, body = self.refresh(srv, rt)
            self.assertEqual(st, 200, body)
            rt = body["refresh_token"]
        deadline = time.monotonic() + 20
        while True:  # the writer folds between batches, or at once when idle
            text = metrics(srv)
            held = metric_value(text, "floodgate_store_spent_held")
            folds = metric_value(text, "floodgate_store_folds_total")
            if (held < 1000 and folds >= 1) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertLess(held, 1000)
        self.assertGreaterEqual(folds, 1)
        st, _, body = self.refresh(srv, first)
        self.assertEqual((st, body["error"]), (401, "invalid_grant"))
        self.assert_clean_exit(srv)
        r = cli(srv.data, "--store-fold-at", "999", "store", "fold")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("store_fold_at", r.stderr)

    def test_store_fold_writes_the_spent_log_into_the_records(self):
        """`floodgate store fold` (before going back to a release from before the spent log):
        the spendings the log holds are written into their records, the log keeps only its
        newest line, a second fold finds nothing left, and a spent token is still refused as
        reuse by the next server. On Redis there is no log: nothing to fold."""
        srv = self.start()
        self.register(srv)
        rt1 = self.login(srv)[2]["refresh_token"]
        st, _, body = self.refresh(srv, rt1)
        self.assertEqual(st, 200, body)
        rt2 = body["refresh_token"]
        self.assert_clean_exit(srv)
        r = cli(srv.data, "store", "fold")
        self.assertEqual(r.returncode, 0, r.stderr)
        n = 0 if REDIS_MODE else 1
        self.assertEqual(r.stdout, f"folded {n} spent refresh tokens into their records\n")
        r = cli(srv.data, "store", "fold", "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, {"folded": 0}), r.stderr)
        if not REDIS_MODE:
            r = subprocess.run(["mdb_stat", "-s", "spent", srv.data], capture_output=True,
                               text=True, timeout=30)
            self.assertIn("Entries: 1\n", r.stdout, r.stderr)
        self.assertEqual(cli(srv.data, "store", "unfold").returncode, 2)
        srv2 = Server(*FAST, "--data-dir", srv.data, "--issuer", f"http://127.0.0.1:{srv.port}")
        self.addCleanup(srv2.cleanup)
        st, _, body = self.refresh(srv2, rt2)  # rotating the successor...
        self.assertEqual(st, 200, body)
        st, _, body = self.refresh(srv2, rt1)  # ...makes rt1 again a reuse
        self.assertEqual((st, body["error"]), (401, "invalid_grant"))
        self.assert_clean_exit(srv2)
