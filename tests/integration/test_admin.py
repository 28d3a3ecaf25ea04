# SPDX-License-Identifier: MIT
"""The admin API: its own loopback listener, only with a token, constant answers to a wrong
token, and users, clients and keys managed over HTTP, with effects on the public API."""

import base64
import json
import re
import socket
import time
import urllib.parse

from tests.integration.fgtest import ServerTest, parse_one, recv_all

TOKEN = "admin-" + "0123456789abcdef" * 3
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")


class TestAdmin(ServerTest):
    def setUp(self):
        self.srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0",
                              env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        # logged just after "listening", which is what start() waited for
        deadline, m = time.monotonic() + 10, None
        while m is None and time.monotonic() < deadline:
            m = re.search(r'"msg":"admin API listening","addr":"127\.0\.0\.1:(\d+)"',
                          self.srv.stderr())
            time.sleep(0.02)
        self.assertIsNotNone(m, self.srv.stderr())
        self.aport = int(m.group(1))

    def admin(self, method, path, obj=None, token=TOKEN):
        body = json.dumps(obj).encode() if obj is not None else b""
        h = {"Host": "localhost", "Connection": "close", "Content-Length": str(len(body))}
        if obj is not None:
            h["Content-Type"] = "application/json"
        if token:
            h["Authorization"] = "Bearer " + token
        raw = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(
            f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + body
        with socket.create_connection(("127.0.0.1", self.aport), timeout=10) as s:
            s.sendall(raw)
            st, hd, b = parse_one(recv_all(s, 10))
        return st, (json.loads(b) if b else None)

    def test_token_required(self):
        for tok in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
            st, body = self.admin("GET", "/admin/users", token=tok)
            self.assertEqual((st, body["error"]), (401, "unauthorized"))
        # the admin routes are not on the public listener
        self.assertEqual(self.srv.request("GET", "/admin/users", None,
                                          {"Authorization": "Bearer " + TOKEN})[0], 404)
        self.assert_clean_exit(self.srv)

    def test_failures_and_admin_actions_are_logged_with_their_context(self):
        """Issue #15 item 9: a failure line says which client, from where and why; an admin
        action says what, from where and by whom (reads are not logged, refusals are)."""
        self.assertEqual(self.admin("POST", "/admin/users", {"username": "ann",
                                                             "password": "long enough pw"})[0], 201)
        self.admin("GET", "/admin/users")
        self.admin("DELETE", "/admin/users/ann", token="wrong")
        J = {"Content-Type": "application/json"}
        for name in ("ann", "nobody"):
            self.srv.request("POST", "/v1/auth/login", json.dumps(
                {"username": name, "password": "not the password"}).encode(), J)
        basic = "Basic " + base64.b64encode(b"no-such-client:secret").decode()
        st, _, _ = self.srv.request("POST", "/oauth2/token", b"grant_type=client_credentials",
                                    {"Authorization": basic, "Content-Type":
                                     "application/x-www-form-urlencoded"})
        self.assertEqual(st, 401)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and '"client authentication failed"' not in \
                self.srv.stderr():
            time.sleep(0.05)
        lines = [json.loads(ln) for ln in self.srv.stderr().splitlines()
                 if ln.startswith("{")]
        by = {}
        for ln in lines:
            by.setdefault(ln["msg"], []).append(ln)
        acts = by.get("admin action", [])
        self.assertEqual([(a["method"], a["path"], a["ip"], a["by"]) for a in acts],
                         [("POST", "/admin/users", "127.0.0.1", "admin token")])
        refused = by["admin request refused"][0]
        self.assertEqual((refused["method"], refused["path"], refused["ip"]),
                         ("DELETE", "/admin/users/ann", "127.0.0.1"))
        failed = {ln["reason"]: ln for ln in by["login failed"]}
        self.assertEqual(set(failed), {"password", "unknown_user"})
        self.assertEqual(failed["password"]["ip"], "127.0.0.1")
        self.assertTrue(failed["password"]["user_id"])
        self.assertEqual(failed["password"]["client_id"], "first-party")
        self.assertNotIn("not the password", self.srv.stderr())
        c = by["client authentication failed"][0]
        self.assertEqual((c["client_id"], c["ip"], c["reason"]),
                         ("no-such-client", "127.0.0.1", "unknown_client"))
        self.assert_clean_exit(self.srv)

    def test_users(self):
        st, u = self.admin("POST", "/admin/users", {"username": "Ann", "password": "long enough pw"})
        self.assertEqual((st, u["username"]), (201, "ann"))
        self.assertEqual(self.admin("POST", "/admin/users",
                                    {"username": "ann", "password": "long enough pw"})[0], 409)
        self.assertEqual(self.admin("POST", "/admin/users",
                                    {"username": "bob", "password": "short"})[0], 400)
        login = lambda pw: self.srv.request(
            "POST", "/v1/auth/login", json.dumps({"username": "ann", "password": pw}).encode(),
            {"Content-Type": "application/json"})[0]
        self.assertEqual(login("long enough pw"), 200)
        self.assertEqual(self.admin("PUT", "/admin/users/ann/password",
                                    {"password": "another long pw"})[0], 200)
        self.assertEqual(login("long enough pw"), 401)
        self.assertEqual(login("another long pw"), 200)
        self.assertEqual(self.admin("POST", "/admin/users/ann/disable")[0], 200)
        self.assertEqual(login("another long pw"), 401)
        self.assertEqual(self.admin("POST", "/admin/users/ann/enable")[0], 200)
        self.assertEqual(login("another long pw"), 200)
        st, users = self.admin("GET", "/admin/users")
        self.assertEqual([x["username"] for x in users], ["ann"])
        # never a hash: only its kind (the same record as `floodgate user list --json`)
        self.assertEqual(users[0]["hash"], "argon2id")
        self.assertNotIn("$argon2id$", json.dumps(users))
        # an imported bcrypt hash; %40 in the path is decoded
        st, _ = self.admin("POST", "/admin/users", {
            "username": "dave@example.org",
            "hash": "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"})
        self.assertEqual(st, 201)
        self.assertEqual(self.admin("POST", "/admin/users", {"username": "eve",
                                                             "hash": "plaintext"})[0], 400)
        self.assertEqual(self.admin("DELETE", "/admin/users/dave%40example.org")[0], 200)
        self.assertEqual(self.admin("DELETE", "/admin/users/dave%40example.org")[0], 404)
        self.assertEqual(self.admin("DELETE", "/admin/users/nobody")[0], 404)
        self.assert_clean_exit(self.srv)

    def token(self, cid, secret):
        raw = base64.b64encode(f"{cid}:{secret}".encode()).decode()
        return self.srv.request("POST", "/oauth2/token", b"grant_type=client_credentials",
                                {"Authorization": "Basic " + raw,
                                 "Content-Type": "application/x-www-form-urlencoded"})[0]

    def wait_status(self, cid, secret, want):
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            st = self.token(cid, secret)
            if st == want:
                return st
            time.sleep(0.1)
        return st

    def test_clients_and_keys(self):
        st, c = self.admin("POST", "/admin/clients", {"name": "svc", "scopes": ["a", "b"],
                                                      "audiences": "api", "access_ttl": 60})
        self.assertEqual(st, 201, c)
        self.assertEqual(self.token(c["client_id"], c["client_secret"]), 200)
        st, lst = self.admin("GET", "/admin/clients")
        self.assertEqual((lst[0]["scope"], lst[0]["access_ttl"]), ("a b", 60))
        for k in ("client_secret", "secret_digest"):
            self.assertNotIn(k, lst[0])
        self.assertNotIn(c["client_secret"], json.dumps(lst))
        st, n = self.admin("POST", f"/admin/clients/{c['client_id']}/secret")
        self.assertEqual(st, 200)
        self.assertEqual(self.wait_status(c["client_id"], c["client_secret"], 401), 401)
        self.assertEqual(self.token(c["client_id"], n["client_secret"]), 200)
        self.assertEqual(self.admin("DELETE", f"/admin/clients/{c['client_id']}")[0], 200)
        self.assertEqual(self.wait_status(c["client_id"], n["client_secret"], 401), 401)
        self.assertEqual(self.admin("POST", "/admin/clients", {"grants": "x"})[0], 400)
        st, keys = self.admin("GET", "/admin/keys")
        self.assertEqual((st, sorted(x["alg"] for x in keys)), (200, ["ES256", "EdDSA", "RS256"]))
        self.assertTrue(all(x["signing"] for x in keys))  # each its algorithm's signer
        st, k = self.admin("POST", "/admin/keys/rotate")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(x["alg"] for x in k["keys"]), ["ES256", "EdDSA", "RS256"])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            jwks = json.loads(self.srv.request("GET", "/.well-known/jwks.json")[2])["keys"]
            if len(jwks) == 6:
                break
            time.sleep(0.2)
        self.assertEqual({x["kid"] for x in k["keys"]} - {x["kid"] for x in jwks}, set())
        self.assertIn(k["kid"], [x["kid"] for x in k["keys"] if x["alg"] == "EdDSA"])
        self.assert_clean_exit(self.srv)


    def test_browser_clients(self):
        """Issue #13 item 1: redirect URIs (exact, https or loopback), public clients without a
        secret and only for the browser's grants, first-party flag, lists in the answer."""
        st, c = self.admin("POST", "/admin/clients", {
            "name": "spa", "token_endpoint_auth_method": "none", "first_party": True,
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"],
            "post_logout_redirect_uris": ["https://app.example/"]})
        self.assertEqual(st, 201, c)
        self.assertNotIn("client_secret", c)
        self.assertEqual((c["grants"], c["token_endpoint_auth_method"], c["first_party"]),
                         (["refresh_token", "authorization_code"], "none", True))
        self.assertEqual(c["web_origins"], ["https://app.example", "http://127.0.0.1"])
        st, lst = self.admin("GET", "/admin/clients")
        self.assertEqual(lst[0]["redirect_uris"], c["redirect_uris"])
        # a public client proves nothing with its id: no client_credentials, no introspection
        st, _, body = self.srv.request(
            "POST", "/oauth2/token",
            f"grant_type=client_credentials&client_id={c['client_id']}".encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 400, body)
        self.assertEqual(json.loads(body)["error"], "unauthorized_client")
        st, _, body = self.srv.request(
            "POST", "/oauth2/introspect", f"token=x&client_id={c['client_id']}".encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 401, body)
        st, n = self.admin("POST", f"/admin/clients/{c['client_id']}/secret")
        self.assertEqual((st, n["error_description"]), (400, "a public client has no secret"))
        for bad in ({"name": "x", "redirect_uris": ["http://app.example/cb"]},
                    {"name": "x", "redirect_uris": ["https://app.example/*"]},
                    {"name": "x", "grants": "authorization_code"},
                    {"name": "x", "token_endpoint_auth_method": "none"}):
            st, e = self.admin("POST", "/admin/clients", bad)
            self.assertEqual(st, 400, bad)
            self.assertTrue(e["error_description"], e)
        self.assert_clean_exit(self.srv)


class TestNoAdminByDefault(ServerTest):
    def test_no_token_no_listener(self):
        srv = self.start()
        self.assertNotIn("admin API listening", srv.stderr())
        self.assert_clean_exit(srv)

    def test_short_token_refused(self):
        from tests.integration.test_lifecycle import run
        r = run("--admin-token", "short", "--data-dir", "/tmp/fg-admin-x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("admin_token", r.stderr)


class TestAdminRefusals(ServerTest):
    """Every refusal of the admin API says why and changes nothing (issue #11 item 22: most
    had never run)."""

    def test_bad_requests(self):
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0",
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = srv.admin_port()

        def admin(method, path, obj=None):
            from tests.integration.fgtest import admin_call
            return admin_call(aport, TOKEN, method, path, obj)

        for body in ({"password": "long enough pw"}, {"username": "ann"},
                     {"username": "ann", "password": "long enough pw", "hash": "$2a$x"},
                     {"username": "bad name", "password": "long enough pw"}):
            st, b = admin("POST", "/admin/users", body)
            self.assertEqual((st, b["error"]), (400, "invalid_request"), body)
        st, b = admin("POST", "/admin/users", {"username": "ann", "password": "short"})
        self.assertEqual((st, b["error"]), (400, "invalid_password"))
        st, b = admin("POST", "/admin/users", {"username": "ann", "hash": "$2a$" + "x" * 300})
        self.assertEqual((st, b["error_description"]), (400, "hash too long"))
        st, b = admin("POST", "/admin/users", {"username": "ann", "hash": "$md5$nope"})
        self.assertEqual((st, b["error_description"]), (400, "not a supported hash"))
        self.assertEqual(admin("POST", "/admin/users",
                               {"username": "ann", "password": "long enough pw"})[0], 201)
        self.assertEqual(admin("POST", "/admin/users",
                               {"username": "ann", "password": "long enough pw"})[0], 409)
        st, b = admin("PUT", "/admin/users/ann/password", {})
        self.assertEqual((st, b["error_description"]), (400, "password is required"))
        st, b = admin("PUT", "/admin/users/ann/password", {"password": "short"})
        self.assertEqual((st, b["error"]), (400, "invalid_password"))
        for method, path in (("POST", "/admin/users/nobody/disable"),
                             ("POST", "/admin/users/nobody/enable"),
                             ("DELETE", "/admin/users/nobody"),
                             ("POST", "/admin/clients/nope/secret"),
                             ("DELETE", "/admin/clients/nope"),
                             ("DELETE", "/admin/events/nope")):
            self.assertEqual(admin(method, path)[0], 404, path)
        self.assertEqual(admin("PUT", "/admin/users/nobody/password",
                               {"password": "long enough pw"})[0], 404)
        self.assertEqual(admin("POST", "/admin/users/Bad%20Name/disable")[0], 400)
        for body in ({}, {"name": "x", "grants": ["implicit"]}, {"name": "x", "grants": "no"},
                     {"name": "x", "access_ttl": 5}, {"name": "x", "access_ttl": "1h"},
                     {"name": "x", "introspection": "yes"}, {"name": "x" * 200},
                     {"name": "x", "scopes": ["a\"b"]}):
            st, b = admin("POST", "/admin/clients", body)
            self.assertEqual((st, b["error"]), (400, "invalid_request"), body)
        for mode in ("warp", None, 3):
            st, b = admin("PUT", "/admin/policy", {"mode": mode})
            self.assertEqual((st, b["error"]), (400, "invalid_request"), mode)
        self.assertEqual(admin("PUT", "/admin/policy", {"mode": "shed"})[1]["mode"], "shed")
        self.assertEqual(admin("PUT", "/admin/policy", {"mode": "auto"})[1]["override"], "auto")
        st, keys = admin("GET", "/admin/keys")
        self.assertEqual((st, len(keys)), (200, 3))  # a key per algorithm
        self.assertEqual(len(admin("GET", "/admin/clients")[1]), 0)
        self.assertEqual(admin("GET", "/admin/events"), (200, []))
        self.assert_clean_exit(srv)
