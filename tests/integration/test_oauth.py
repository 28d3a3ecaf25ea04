# SPDX-License-Identifier: MIT
"""OAuth 2.0 on the embedded store: clients from the CLI, client_credentials, introspection,
revocation, the gateway verify endpoint, JWKS checked by an independent JWT library, and
discovery. Every error path of RFC 6749 §5.2 that these flows can take."""

import base64
import json
import os
import subprocess
import time
import urllib.parse

from tests.integration.fgtest import BIN, ServerTest, store_args


def cli(data_dir, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
    r = subprocess.run([BIN, "--data-dir", data_dir, *store_args(data_dir), *args],
                       capture_output=True, text=True,
                       timeout=30, env=env)
    return r


def form(**kw):
    return urllib.parse.urlencode(kw).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(cid, secret):
    raw = f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode(), **FORM}


class OAuthTest(ServerTest):
    def setUp(self):
        self.srv = self.start()
        r = cli(self.srv.data, "client", "create", "billing", "--scopes", "read write",
                "--audiences", "api,admin", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        c = json.loads(r.stdout)
        self.cid, self.secret = c["client_id"], c["client_secret"]

    def eventually_status(self, want, seconds=3.0):
        """The token endpoint's status once it is `want`, or the last one after `seconds`.
        Every connection is new, so each of the loop threads gets asked."""
        deadline = time.monotonic() + seconds
        st = None
        while time.monotonic() < deadline:
            st = self.token()[0]
            if st == want:
                return st
            time.sleep(0.1)
        return st

    def token(self, **params):
        params.setdefault("grant_type", "client_credentials")
        return self.srv.request("POST", "/oauth2/token", form(**params),
                                basic(self.cid, self.secret))

    def access_token(self, **params):
        st, h, body = self.token(**params)
        self.assertEqual(st, 200, body)
        return self.json(body)["access_token"]


class TestClientCredentials(OAuthTest):
    def test_issue_and_introspect(self):
        st, h, body = self.token(scope="read")
        self.assertEqual(st, 200, body)
        self.assertEqual(h["cache-control"], "no-store")
        tok = self.json(body)
        self.assertEqual((tok["token_type"], tok["expires_in"], tok["scope"]),
                         ("Bearer", 900, "read"))
        st, _, body = self.srv.request("POST", "/oauth2/introspect",
                                       form(token=tok["access_token"]),
                                       basic(self.cid, self.secret))
        info = self.json(body)
        self.assertEqual(st, 200)
        self.assertTrue(info["active"])
        self.assertEqual((info["sub"], info["client_id"], info["scope"], info["aud"]),
                         (self.cid, self.cid, "read", "api"))
        self.assertEqual(info["iss"], f"http://127.0.0.1:{self.srv.port}")
        self.assertEqual(info["exp"] - info["iat"], 900)
        self.assert_clean_exit(self.srv)

    def test_client_secret_post_and_defaults(self):
        st, _, body = self.srv.request("POST", "/oauth2/token",
                                       form(grant_type="client_credentials",
                                            client_id=self.cid, client_secret=self.secret),
                                       FORM)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.json(body)["scope"], "read write")  # all allowed scopes
        self.assert_clean_exit(self.srv)

    def test_errors(self):
        s = self.srv
        # wrong secret, unknown client, no credentials: 401 invalid_client + challenge
        for hdrs in (basic(self.cid, "wrong"), basic("nobody", self.secret), FORM):
            st, h, body = s.request("POST", "/oauth2/token",
                                    form(grant_type="client_credentials"), hdrs)
            self.assertEqual((st, self.json(body)["error"]), (401, "invalid_client"))
            self.assertIn("Basic", h["www-authenticate"])
        st, _, body = self.token(scope="read delete")
        self.assertEqual((st, self.json(body)["error"]), (400, "invalid_scope"))
        st, _, body = self.token(resource="elsewhere")
        self.assertEqual((st, self.json(body)["error"]), (400, "invalid_target"))
        st, _, body = self.token(grant_type="implicit")
        self.assertEqual((st, self.json(body)["error"]), (400, "unsupported_grant_type"))
        # a grant the server has, this client not (issue #13)
        st, _, body = self.token(grant_type="authorization_code")
        self.assertEqual((st, self.json(body)["error"]), (400, "unauthorized_client"))
        st, _, body = s.request("POST", "/oauth2/token", b"scope=read",
                                basic(self.cid, self.secret))
        self.assertEqual((st, self.json(body)["error"]), (400, "invalid_request"))
        st, _, body = s.request("POST", "/oauth2/token",
                                b"grant_type=client_credentials&grant_type=client_credentials",
                                basic(self.cid, self.secret))
        self.assertEqual((st, self.json(body)["error"]), (400, "invalid_request"))
        st, _, body = s.request("POST", "/oauth2/token", b'{"grant_type":"x"}',
                                {**basic(self.cid, self.secret),
                                 "Content-Type": "application/json"})
        self.assertEqual((st, self.json(body)["error"]), (400, "invalid_request"))
        # both authentication methods at once
        st, _, body = s.request("POST", "/oauth2/token",
                                form(grant_type="client_credentials",
                                     client_secret=self.secret),
                                basic(self.cid, self.secret))
        self.assertEqual((st, self.json(body)["error"]), (400, "invalid_request"))
        self.assert_clean_exit(s)

    def test_malformed_credentials_and_parameters(self):
        """Issue #11 item 22: each malformed way of naming a client is a 401 invalid_client
        with the challenge (never a 500, never a pass), each repeated or malformed parameter
        a 400, and the endpoint works on afterwards."""
        s = self.srv
        b64 = lambda raw: {"Authorization": "Basic " + base64.b64encode(raw).decode(), **FORM}
        for hdrs in ({"Authorization": "Basic !!!not base64!!!", **FORM},
                     b64(b"no-colon-here"),
                     b64(self.cid.encode() + b":%zz"),
                     b64(b"%zz:" + self.secret.encode()),
                     b64(b":" + self.secret.encode()),
                     {"Authorization": "Basic " + "QUFB" * 200, **FORM}):
            with self.subTest(hdrs["Authorization"][:40]):
                st, h, body = s.request("POST", "/oauth2/token",
                                        form(grant_type="client_credentials"), hdrs)
                self.assertEqual((st, self.json(body)["error"]), (401, "invalid_client"))
                self.assertIn("Basic", h["www-authenticate"])
        for raw in (f"grant_type=client_credentials&client_id={self.cid}&client_id={self.cid}"
                    f"&client_secret={self.secret}",
                    "grant_type=client_credentials&scope=read&scope=read",
                    "grant_type=client_credentials&audience=api&audience=api",
                    "grant_type=client_credentials&scope=%zz",
                    "grant_type=client_credentials&audience=" + "a" * 600):
            with self.subTest(raw[:60]):
                hdrs = FORM if "client_secret" in raw else basic(self.cid, self.secret)
                st, _, body = s.request("POST", "/oauth2/token", raw.encode(), hdrs)
                self.assertIn(st, (400,), body)
                self.assertIn(self.json(body)["error"],
                              ("invalid_request", "invalid_target", "invalid_scope"))
        for raw in (b"token=a&token=b", b"token=%zz", b""):
            st, _, body = s.request("POST", "/oauth2/introspect", raw,
                                    basic(self.cid, self.secret))
            self.assertEqual((st, self.json(body)["error"]), (400, "invalid_request"), raw)
            st, _, body = s.request("POST", "/oauth2/revoke", raw, basic(self.cid, self.secret))
            self.assertEqual((st, self.json(body)["error"]), (400, "invalid_request"), raw)
        self.assertEqual(self.token(scope="read")[0], 200)
        self.assert_clean_exit(s)

    def test_access_ttl_jitter(self):
        srv = self.start("--access-ttl-jitter", "60s")
        r = cli(srv.data, "client", "create", "j", "--json")
        c = json.loads(r.stdout)
        ttls = set()
        for _ in range(12):
            st, _, body = srv.request("POST", "/oauth2/token",
                                      form(grant_type="client_credentials"),
                                      basic(c["client_id"], c["client_secret"]))
            self.assertEqual(st, 200, body)
            ttls.add(self.json(body)["expires_in"])
        self.assertTrue(all(840 <= t <= 900 for t in ttls), ttls)
        self.assertGreater(len(ttls), 1)  # 12 draws of 61 values all alike: 1 in 61^11
        self.assert_clean_exit(srv)

    def test_client_without_the_grant(self):
        r = cli(self.srv.data, "client", "create", "spa", "--grants", "refresh_token", "--json")
        c = json.loads(r.stdout)
        st, _, body = self.srv.request("POST", "/oauth2/token",
                                       form(grant_type="client_credentials"),
                                       basic(c["client_id"], c["client_secret"]))
        self.assertEqual((st, self.json(body)["error"]), (400, "unauthorized_client"))
        self.assert_clean_exit(self.srv)

    def test_cli_rotate_secret_and_delete_apply_to_running_server(self):
        r = cli(self.srv.data, "client", "rotate-secret", self.cid, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        new = json.loads(r.stdout)["client_secret"]
        self.assertNotEqual(new, self.secret)
        # a running server sees CLI changes within a second (its threads sample the store)
        self.assertEqual(self.eventually_status(401), 401)  # the old secret is dead
        self.secret = new
        self.assertEqual(self.token()[0], 200)
        r = cli(self.srv.data, "client", "list", "--json")
        self.assertIn(self.cid, [c["client_id"] for c in json.loads(r.stdout)])
        for c in json.loads(r.stdout):  # never a secret nor its digest
            self.assertFalse({"client_secret", "secret_digest"} & set(c), c)
        self.assertNotIn(new, r.stdout)
        self.assertEqual(cli(self.srv.data, "client", "delete", self.cid).returncode, 0)
        self.assertEqual(self.eventually_status(401), 401)
        self.assertEqual(cli(self.srv.data, "client", "delete", self.cid).returncode, 1)
        self.assert_clean_exit(self.srv)


class TestVerifyAndRevoke(OAuthTest):
    def verify(self, token, query=""):
        return self.srv.request("GET", "/v1/auth/verify" + query, None,
                                {"Authorization": f"Bearer {token}"})

    def test_gateway_verify(self):
        at = self.access_token(scope="read")
        for _ in range(2):  # second time from the cache
            st, h, _ = self.verify(at, "?scope=read")
            self.assertEqual(st, 200)
            self.assertEqual((h["x-auth-subject"], h["x-auth-scope"], h["x-auth-client-id"]),
                             (self.cid, "read", self.cid))
        self.assertEqual(self.verify(at, "?audience=api&scope=read")[0], 200)
        st, h, _ = self.verify(at, "?audience=admin")
        self.assertEqual(st, 401)  # a token for another audience is not valid here
        self.assertIn('error="invalid_token"', h["www-authenticate"])
        st, h, _ = self.verify(at, "?scope=write")
        self.assertEqual(st, 403)
        self.assertIn('error="insufficient_scope"', h["www-authenticate"])
        st, h, _ = self.verify(at[:-2] + ("AA" if at[-2:] != "AA" else "BB"))
        self.assertEqual(st, 401)
        self.assertIn('error="invalid_token"', h["www-authenticate"])
        st, h, _ = self.srv.request("GET", "/v1/auth/verify")
        self.assertEqual(st, 401)
        self.assertIn("Bearer", h["www-authenticate"])
        self.assert_clean_exit(self.srv)

    def test_revoke_drops_cached_token_everywhere(self):
        at = self.access_token()
        self.assertEqual(self.verify(at)[0], 200)  # now cached on some loop thread
        st, h, _ = self.srv.request("POST", "/oauth2/revoke", form(token=at),
                                    basic(self.cid, self.secret))
        self.assertEqual(st, 200)
        for _ in range(6):  # new connections land on either loop thread
            self.assertEqual(self.verify(at)[0], 401)
        st, _, body = self.srv.request("POST", "/oauth2/introspect", form(token=at),
                                       basic(self.cid, self.secret))
        self.assertEqual(self.json(body), {"active": False})
        # unknown tokens: 200 (RFC 7009 §2.2)
        st, _, _ = self.srv.request("POST", "/oauth2/revoke", form(token="garbage"),
                                    basic(self.cid, self.secret))
        self.assertEqual(st, 200)
        self.assert_clean_exit(self.srv)

    def test_revocation_survives_restart(self):
        at = self.access_token()
        self.srv.request("POST", "/oauth2/revoke", form(token=at), basic(self.cid, self.secret))
        self.assert_clean_exit(self.srv)
        srv2 = self.start_on(self.srv.data)
        # a token is bound to its issuer, which names the port; restart on a fixed issuer
        st, _, body = srv2.request("POST", "/oauth2/introspect", form(token=at),
                                   basic(self.cid, self.secret))
        self.assertEqual(self.json(body), {"active": False})
        self.assert_clean_exit(srv2)

    def start_on(self, data):
        from tests.integration.fgtest import Server
        srv = Server("--data-dir", data, "--issuer", f"http://127.0.0.1:{self.srv.port}")
        self.addCleanup(srv.cleanup)
        return srv

    def test_other_clients_cannot_revoke(self):
        at = self.access_token()
        r = cli(self.srv.data, "client", "create", "other", "--json")
        o = json.loads(r.stdout)
        st, _, body = self.srv.request("POST", "/oauth2/revoke", form(token=at),
                                       basic(o["client_id"], o["client_secret"]))
        self.assertEqual((st, self.json(body)["error"]), (400, "unauthorized_client"))
        self.assertEqual(self.verify(at)[0], 200)
        self.assert_clean_exit(self.srv)


class TestKeysAndDiscovery(OAuthTest):
    def test_independent_library_verifies_our_tokens(self):
        """PyJWT (Debian's python3-jwt, not our code) verifies a token against our JWKS."""
        at = self.access_token(scope="read", audience="admin")
        _, _, jwks = self.srv.request("GET", "/.well-known/jwks.json")
        script = (
            "import json, sys, jwt\n"
            "from jwt.algorithms import OKPAlgorithm\n"
            "jwks, tok, iss = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
            "kid = jwt.get_unverified_header(tok)['kid']\n"
            "key = [k for k in jwks['keys'] if k['kid'] == kid][0]\n"
            "pub = OKPAlgorithm.from_jwk(json.dumps(key))\n"
            "c = jwt.decode(tok, pub, algorithms=['EdDSA'], audience='admin', issuer=iss)\n"
            "h = jwt.get_unverified_header(tok)\n"
            "print(json.dumps({'claims': c, 'typ': h['typ']}))\n")
        r = subprocess.run(["/usr/bin/python3", "-c", script, jwks.decode(), at,
                            f"http://127.0.0.1:{self.srv.port}"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["typ"], "at+jwt")
        c = out["claims"]
        for claim in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"):
            self.assertIn(claim, c)
        self.assertEqual((c["client_id"], c["scope"], c["aud"]), (self.cid, "read", "admin"))
        self.assert_clean_exit(self.srv)

    def test_jwks_has_public_keys_only_and_rotation_keeps_old_tokens(self):
        old = self.access_token()
        _, h, body = self.srv.request("GET", "/.well-known/jwks.json")
        keys = self.json(body)["keys"]
        # one key per algorithm: access tokens (EdDSA), ID tokens (RS256), a client's ES256
        self.assertEqual(sorted(k["alg"] for k in keys), ["ES256", "EdDSA", "RS256"])
        public = {"EdDSA": {"kty", "crv", "use", "alg", "kid", "x"},
                  "ES256": {"kty", "crv", "use", "alg", "kid", "x", "y"},
                  "RS256": {"kty", "use", "alg", "kid", "n", "e"}}
        for k in keys:  # (no private part: d, p, q, dp, dq, qi)
            self.assertEqual(set(k), public[k["alg"]])
        self.assertIn("max-age", h["cache-control"])
        r = cli(self.srv.data, "key", "rotate", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rot = json.loads(r.stdout)
        new_kid = rot["kid"]
        self.assertEqual(sorted(k["alg"] for k in rot["keys"]), ["ES256", "EdDSA", "RS256"])
        self.assertIn({"kid": new_kid, "alg": "EdDSA"}, rot["keys"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            keys = self.json(self.srv.request("GET", "/.well-known/jwks.json")[2])["keys"]
            if len(keys) == 6:
                break
            time.sleep(0.2)
        self.assertEqual({k["kid"] for k in rot["keys"]} - {k["kid"] for k in keys},
                         set())  # published ahead
        # the new key does not sign yet (publish-ahead), the old token still verifies
        hdr = json.loads(base64.urlsafe_b64decode(self.access_token().split(".")[0] + "=="))
        self.assertNotEqual(hdr["kid"], new_kid)
        st, _, body = self.srv.request("POST", "/oauth2/introspect", form(token=old),
                                       basic(self.cid, self.secret))
        self.assertTrue(self.json(body)["active"])
        self.assert_clean_exit(self.srv)

    def test_discovery_advertises_what_works(self):
        iss = f"http://127.0.0.1:{self.srv.port}"
        for path in ("/.well-known/openid-configuration",
                     "/.well-known/oauth-authorization-server"):
            st, _h, body = self.srv.request("GET", path)
            d = self.json(body)
            self.assertEqual(st, 200)
            self.assertEqual(d["issuer"], iss)
            self.assertEqual(_h["access-control-allow-origin"], "*")  # (#13 item 10)
            self.assertEqual(d["token_endpoint"], iss + "/oauth2/token")
            self.assertEqual(d["grant_types_supported"],
                             ["authorization_code", "client_credentials", "refresh_token",
                              "password"])
            self.assertEqual((d["response_types_supported"], d["code_challenge_methods_supported"]),
                             (["code"], ["S256"]))
            self.assertTrue(d["authorization_response_iss_parameter_supported"])
            for ep in ("token_endpoint", "jwks_uri", "introspection_endpoint",
                       "revocation_endpoint", "authorization_endpoint"):
                p = d[ep][len(iss):]
                method = "GET" if ep == "jwks_uri" else "POST"
                st2, _, _ = self.srv.request(method, p, b"" if method == "POST" else None,
                                             FORM if method == "POST" else None)
                self.assertNotIn(st2, (404, 405), ep)
        self.assert_clean_exit(self.srv)


class TestScheduledRotation(OAuthTest):
    args = ("--key-rotation", "1s", "--key-publish-ahead", "0s")

    def test_key_rotates_on_schedule_and_old_tokens_stay_valid(self):
        old = self.access_token()
        old_kid = json.loads(base64.urlsafe_b64decode(old.split(".")[0] + "=="))["kid"]
        deadline = time.monotonic() + 10
        keys = []
        while time.monotonic() < deadline:
            keys = self.json(self.srv.request("GET", "/.well-known/jwks.json")[2])["keys"]
            if len(keys) >= 6:  # (a new key for each of the three algorithms)
                break
            time.sleep(0.2)
        self.assertGreaterEqual(len(keys), 6, "no scheduled rotation")
        # publish-ahead 0: the new key signs as soon as each loop thread has reloaded its
        # ring (within a second of the change)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            new = self.access_token()
            new_kid = json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"]
            if new_kid != old_kid:
                break
            time.sleep(0.2)
        self.assertNotEqual(new_kid, old_kid)
        for tok in (old, new):
            st, _, body = self.srv.request("POST", "/oauth2/introspect", form(token=tok),
                                           basic(self.cid, self.secret))
            self.assertTrue(self.json(body)["active"])
        self.assertIn('"by":"schedule"', self.srv.stderr())
        self.assert_clean_exit(self.srv)


class TestOtherAlgorithms(ServerTest):
    def test_es256_and_rs256_verified_by_pyjwt(self):
        for alg in ("ES256", "RS256"):
            srv = self.start("--signing-alg", alg)
            r = cli(srv.data, "client", "create", "c", "--json")
            c = json.loads(r.stdout)
            st, _, body = srv.request("POST", "/oauth2/token",
                                      form(grant_type="client_credentials"),
                                      basic(c["client_id"], c["client_secret"]))
            at = json.loads(body)["access_token"]
            _, _, jwks = srv.request("GET", "/.well-known/jwks.json")
            script = (
                "import json, sys, jwt\n"
                "jwks, tok, iss = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
                "h = jwt.get_unverified_header(tok)\n"
                "key = [k for k in jwks['keys'] if k['kid'] == h['kid']][0]\n"
                "pub = jwt.PyJWK(key).key\n"
                "c = jwt.decode(tok, pub, algorithms=[h['alg']], issuer=iss,\n"
                "               options={'verify_aud': False})\n"
                "print(h['alg'], c['client_id'])\n")
            p = subprocess.run(["/usr/bin/python3", "-c", script, jwks.decode(), at,
                                f"http://127.0.0.1:{srv.port}"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.split(), [alg, c["client_id"]])
            d = json.loads(srv.request("GET", "/.well-known/openid-configuration")[2])
            self.assertEqual(d["access_token_signing_alg_values_supported"], [alg])
            st, _, body = srv.request("POST", "/oauth2/introspect", form(token=at),
                                      basic(c["client_id"], c["client_secret"]))
            self.assertTrue(json.loads(body)["active"])
            self.assert_clean_exit(srv)
