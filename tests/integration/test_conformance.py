# SPDX-License-Identifier: MIT
"""Checks that must fail closed, and the standards a strict client library holds floodgate to
(issue #11): the gateway check refuses a query it cannot read, a refresh asking for a scope
beyond its grant leaves the token unspent, and a reused refresh token revokes its family by
default. Runs on LMDB and (make integ-redis) on Redis."""

import json

from tests.integration.test_oauth import OAuthTest, basic, cli, form
from tests.integration.test_users import FAST

PW = "correct horse battery"


class TestVerifyFailsClosed(OAuthTest):
    def verify(self, token, query=""):
        return self.srv.request("GET", "/v1/auth/verify" + query, None,
                                {"Authorization": "Bearer " + token})

    def test_unreadable_query_is_400_never_200(self):
        at = self.access_token(scope="read")  # audience api (the client's first)
        self.assertEqual(self.verify(at, "?scope=read")[0], 200)
        bad = ["?scope=admin&scope=admin", "?scope=read&scope=admin", "?scope=admin&x=%zz",
               "?audience=other&audience=other", "?audience=api&audience=other",
               "?" + "&".join(f"p{i}=1" for i in range(8)) + "&scope=admin",
               "?scope=%", "?audience=%G1"]
        for q in bad:
            st, _, body = self.verify(at, q)
            self.assertEqual(st, 400, q)
            self.assertEqual(self.json(body)["error"], "invalid_request", q)
        # the same with a bad token: the query is judged first, still never 200
        self.assertEqual(self.verify("x.y.z", "?scope=a&scope=a")[0], 400)
        # eight pairs are fine; what they require is checked
        self.assertEqual(self.verify(at, "?" + "&".join(f"p{i}=1" for i in range(7)) +
                                     "&scope=read")[0], 200)
        self.assertEqual(self.verify(at, "?" + "&".join(f"p{i}=1" for i in range(7)) +
                                     "&scope=admin")[0], 403)
        self.assert_clean_exit(self.srv)


class RefreshBase(OAuthTest):
    """A client with the password and refresh_token grants and a user (no tests here)."""
    args = ()

    def setUp(self):
        self.srv = self.start(*FAST, *self.args)
        r = cli(self.srv.data, "client", "create", "app", "--grants",
                "password,refresh_token", "--scopes", "read write", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        c = json.loads(r.stdout)
        self.cid, self.secret = c["client_id"], c["client_secret"]
        st, _, b = self.srv.request("POST", "/v1/users", json.dumps(
            {"username": "pat", "password": PW}).encode(), {"Content-Type": "application/json"})
        self.assertEqual(st, 201, b)

    def grant(self, **kw):
        st, _, b = self.srv.request("POST", "/oauth2/token", form(**kw),
                                    basic(self.cid, self.secret))
        return st, self.json(b)

    def login(self, scope="read"):
        st, b = self.grant(grant_type="password", username="pat", password=PW, scope=scope)
        self.assertEqual(st, 200, b)
        return b["refresh_token"]


class TestRefreshReuse(RefreshBase):
    def test_reuse_revokes_the_family_by_default(self):
        rt = self.login()
        st, b = self.grant(grant_type="refresh_token", refresh_token=rt)
        self.assertEqual(st, 200, b)
        # the spent token again, at once: no grace window by default, the family is revoked
        st, e = self.grant(grant_type="refresh_token", refresh_token=rt)
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))
        st, e = self.grant(grant_type="refresh_token", refresh_token=b["refresh_token"])
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))
        self.assert_clean_exit(self.srv)


class TestRefreshScope(RefreshBase):
    # no grace window, so a second presentation of a spent token would be reuse (the default
    # now; explicit so the test means the same on builds where it was not)
    args = ("--refresh-grace", "0s")

    def test_scope_beyond_the_grant_leaves_the_token_unspent(self):
        rt = self.login("read")
        st, b = self.grant(grant_type="refresh_token", refresh_token=rt, scope="read write")
        self.assertEqual((st, b["error"]), (400, "invalid_scope"))
        # the token was not spent: it rotates now, and again (no grace by default) it would
        # be reuse; so this answer must be the first rotation
        st, b = self.grant(grant_type="refresh_token", refresh_token=rt, scope="read")
        self.assertEqual(st, 200, b)
        self.assertEqual(b["scope"], "read")
        st, b2 = self.grant(grant_type="refresh_token", refresh_token=b["refresh_token"])
        self.assertEqual(st, 200, b2)
        self.assert_clean_exit(self.srv)


def claims(jwt):
    import base64
    p = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


class TestEveryTokenHasAnAudience(RefreshBase):
    """RFC 9068 §2.2 makes aud REQUIRED: tokens from the JSON login API and the password and
    refresh grants carry one too (the client's default audience, else default_audience,
    else the issuer)."""

    def test_aud_everywhere(self):
        issuer = self.json(self.srv.request("GET", "/.well-known/openid-configuration")[2])[
            "issuer"]
        st, _, b = self.srv.request("POST", "/v1/auth/login", json.dumps(
            {"username": "pat", "password": PW}).encode(), {"Content-Type": "application/json"})
        self.assertEqual(st, 200, b)
        tok = self.json(b)
        self.assertEqual(claims(tok["access_token"])["aud"], issuer)
        st, _, b = self.srv.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": tok["refresh_token"]}).encode(),
            {"Content-Type": "application/json"})
        self.assertEqual(claims(self.json(b)["access_token"])["aud"], issuer)
        # this client has no audiences: the issuer too, on the password and refresh grants
        st, b = self.grant(grant_type="password", username="pat", password=PW)
        self.assertEqual(claims(b["access_token"])["aud"], issuer)
        st, b = self.grant(grant_type="refresh_token", refresh_token=b["refresh_token"])
        self.assertEqual(claims(b["access_token"])["aud"], issuer)
        # a client with audiences: its first, on both grants
        r = cli(self.srv.data, "client", "create", "web", "--grants", "password,refresh_token",
                "--scopes", "read", "--audiences", "api,admin", "--json")
        c = json.loads(r.stdout)
        self.cid, self.secret = c["client_id"], c["client_secret"]
        st, b = self.grant(grant_type="password", username="pat", password=PW)
        self.assertEqual(st, 200, b)
        self.assertEqual(claims(b["access_token"])["aud"], "api")
        st, b = self.grant(grant_type="refresh_token", refresh_token=b["refresh_token"])
        self.assertEqual(claims(b["access_token"])["aud"], "api")
        self.assert_clean_exit(self.srv)


class TestDefaultAudience(RefreshBase):
    args = ("--default-audience", "https://api.example")

    def test_configured_default(self):
        st, _, b = self.srv.request("POST", "/v1/auth/login", json.dumps(
            {"username": "pat", "password": PW}).encode(), {"Content-Type": "application/json"})
        self.assertEqual(claims(self.json(b)["access_token"])["aud"], "https://api.example")
        # and the gateway check can require it
        at = self.json(b)["access_token"]
        self.assertEqual(self.srv.request(
            "GET", "/v1/auth/verify?audience=https%3A%2F%2Fapi.example", None,
            {"Authorization": "Bearer " + at})[0], 200)
        self.assert_clean_exit(self.srv)


class TestRefreshIntrospection(RefreshBase):
    """RFC 7662 covers refresh tokens: the owning client sees one as active until it is
    rotated, revoked or its user's sessions end; found with or without token_type_hint."""

    def introspect(self, token, hint=None, who=None):
        kw = {"token": token}
        if hint:
            kw["token_type_hint"] = hint
        st, _, b = self.srv.request("POST", "/oauth2/introspect", form(**kw),
                                    basic(*(who or (self.cid, self.secret))))
        self.assertEqual(st, 200, b)
        return self.json(b)

    def test_refresh_token_introspection(self):
        st, b = self.grant(grant_type="password", username="pat", password=PW, scope="read")
        rt = b["refresh_token"]
        for hint in (None, "refresh_token", "access_token"):
            info = self.introspect(rt, hint)
            self.assertEqual((info["active"], info["token_type"], info["scope"],
                              info["client_id"]), (True, "refresh_token", "read", self.cid), hint)
            self.assertEqual(info["sub"], claims(b["access_token"])["sub"])
            self.assertLess(info["iat"], info["exp"])
        # another client learns nothing
        r = cli(self.srv.data, "client", "create", "other", "--json")
        o = json.loads(r.stdout)
        self.assertEqual(self.introspect(rt, who=(o["client_id"], o["client_secret"])),
                         {"active": False})
        self.assertEqual(self.introspect("x" * 43), {"active": False})
        # rotated: the old one is inactive, its successor active
        st, b2 = self.grant(grant_type="refresh_token", refresh_token=rt)
        self.assertEqual(self.introspect(rt), {"active": False})
        self.assertTrue(self.introspect(b2["refresh_token"])["active"])
        # revoked (RFC 7009): inactive
        st, _, _ = self.srv.request("POST", "/oauth2/revoke", form(token=b2["refresh_token"]),
                                    basic(self.cid, self.secret))
        self.assertEqual(st, 200)
        self.assertEqual(self.introspect(b2["refresh_token"]), {"active": False})
        # a user's sessions ended: inactive
        st, b3 = self.grant(grant_type="password", username="pat", password=PW)
        self.assertTrue(self.introspect(b3["refresh_token"])["active"])
        r = cli(self.srv.data, *FAST, "user", "disable", "pat")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.introspect(b3["refresh_token"]), {"active": False})
        self.assert_clean_exit(self.srv)


class TestIntrospectionRights(OAuthTest):
    """RFC 7662 §4 (issue #11 item 12): a client learns about its own tokens and those meant
    for it (aud = its client_id); any token only with the introspection permission."""

    def test_who_may_introspect_what(self):
        def make(*extra):
            r = cli(self.srv.data, "client", "create", "c", *extra, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            c = json.loads(r.stdout)
            return c["client_id"], c["client_secret"]

        rs = make()  # a resource server
        gw = make("--introspection")  # a gateway allowed to check anything
        other = make()
        # billing asks for a token meant for the resource server (its client_id)
        r = cli(self.srv.data, "client", "create", "caller", "--audiences", rs[0], "--json")
        caller = json.loads(r.stdout)
        st, _, b = self.srv.request("POST", "/oauth2/token",
                                    form(grant_type="client_credentials", audience=rs[0]),
                                    basic(caller["client_id"], caller["client_secret"]))
        self.assertEqual(st, 200, b)
        tok = self.json(b)["access_token"]

        def active(who):
            st, _, b = self.srv.request("POST", "/oauth2/introspect", form(token=tok), basic(*who))
            self.assertEqual(st, 200, b)
            return self.json(b)["active"]

        self.assertTrue(active((caller["client_id"], caller["client_secret"])))  # its own
        self.assertTrue(active(rs))      # meant for it
        self.assertTrue(active(gw))      # the permission
        self.assertFalse(active(other))  # nothing to do with it: as if unknown
        self.assertFalse(active(other))  # (and from the cache too)
        self.assertIn('"introspection":true', cli(self.srv.data, "client", "show", gw[0],
                                                  "--json").stdout)
        self.assert_clean_exit(self.srv)
