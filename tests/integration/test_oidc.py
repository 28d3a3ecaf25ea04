# SPDX-License-Identifier: MIT
"""The OpenID Connect provider (issue #13): the authorization code flow with PKCE through the
hosted login page, as a browser does it (cookies, the form, the redirect), the code exchange,
the ID token checked by an independent library, and every refusal the issue names: an
unregistered or altered redirect URI (never redirected to), plain PKCE, a missing or wrong
verifier, code reuse (and the revocation it causes), a code redeemed by another client, a
CSRF token missing or from another browser, prompt=none without a session."""

import base64
import hashlib
import html.parser
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from tests.integration.fgtest import BIN, REDIS_MODE, ServerTest, store_args
from tests.integration.test_oauth import FORM, basic, cli, form

PASSWORD = "correct horse battery"
CB = "http://127.0.0.1:9/cb"


def pkce():
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def jwt_header(token):
    """The decoded header of a compact JWS."""
    h = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))


def add_user(test, srv):
    """ann, with PASSWORD, in srv's store (the CLI; the password on stdin)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
    r = subprocess.run([BIN, "--data-dir", srv.data, *store_args(srv.data), "user", "add", "ann"],
                       input=PASSWORD + "\n", capture_output=True, text=True, timeout=30, env=env)
    test.assertEqual(r.returncode, 0, r.stderr)


class Fields(html.parser.HTMLParser):
    """The form fields of a page: name -> value."""

    def __init__(self, text):
        super().__init__()
        self.fields, self.form_action = {}, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.form_action = a.get("action")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


class Browser:
    """Cookies kept between requests, as a browser keeps them for one site."""

    def __init__(self, srv):
        self.srv, self.cookies = srv, {}

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        st, hd, b = self.srv.request(method, path, body, h)
        sc = hd.get("set-cookie")
        if sc:
            k, v = sc.split(";")[0].split("=", 1)
            self.cookies[k] = v
        return st, hd, b


class OidcTest(ServerTest):
    def setUp(self):
        self.srv = self.start()
        add_user(self, self.srv)
        self.spa = self.client("spa", "--public", "--redirect-uris", CB, "--scopes", "read")
        self.web = self.client("web", "--redirect-uris", CB, "--first-party", "--scopes", "read",
                               "--post-logout-uris", "http://127.0.0.1:9/bye")
        self.iss = f"http://127.0.0.1:{self.srv.port}"

    def client(self, name, *args):
        r = cli(self.srv.data, "client", "create", name, *args, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def authorize_url(self, client, challenge, **extra):
        q = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": CB,
             "scope": "openid read", "state": "st-1", "nonce": "n-1",
             "code_challenge": challenge, "code_challenge_method": "S256"}
        q.update(extra)
        return "/oauth2/authorize?" + urllib.parse.urlencode({k: v for k, v in q.items()
                                                              if v is not None})

    def login(self, browser, client, challenge, password=PASSWORD, decision="allow", **extra):
        """The login page, then its form posted, and for a third-party client the consent
        page answered with `decision` (None: left unanswered): (status, headers, body) of
        the last post."""
        st, hd, page = browser.request("GET", self.authorize_url(client, challenge, **extra))
        self.assertEqual(st, 200, page)
        f = Fields(page.decode())
        self.assertEqual(f.form_action, "/oauth2/login")
        fields = dict(f.fields, username="ann", password=password)
        st, hd, page = browser.request("POST", "/oauth2/login", form(**fields), FORM)
        if st != 200 or decision is None:
            return st, hd, page
        f = Fields(page.decode())
        if f.form_action != "/oauth2/consent":
            return st, hd, page
        return browser.request("POST", "/oauth2/consent", form(**dict(f.fields, decision=decision)),
                               FORM)

    def code_of(self, headers):
        loc = urllib.parse.urlsplit(headers["location"])
        self.assertEqual(f"{loc.scheme}://{loc.netloc}{loc.path}", CB)
        q = dict(urllib.parse.parse_qsl(loc.query))
        self.assertEqual((q["state"], q["iss"]), ("st-1", self.iss))
        return q["code"]

    def exchange(self, client, code, verifier, redirect_uri=CB, auth=None):
        body = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}
        if auth is None:
            body["client_id"] = client["client_id"]
        st, _, b = self.srv.request("POST", "/oauth2/token", form(**body), auth or FORM)
        return st, json.loads(b)

    def check_id_token(self, tok, client, alg):
        """The ID token in `tok`, verified by PyJWT against our JWKS in `alg`, its at_hash
        by that algorithm's hash; its claims."""
        _, _, jwks = self.srv.request("GET", "/.well-known/jwks.json")
        script = (
            "import base64, hashlib, json, sys, jwt\n"
            "jwks, it, at, aud, iss, alg = sys.argv[1:7]\n"
            "kid = jwt.get_unverified_header(it)['kid']\n"
            "key = [k for k in json.loads(jwks)['keys'] if k['kid'] == kid][0]\n"
            "assert key['alg'] == alg, key\n"
            "c = jwt.decode(it, jwt.PyJWK(key).key, algorithms=[alg], audience=aud, issuer=iss)\n"
            "h = (hashlib.sha512(at.encode()).digest()[:32] if alg == 'EdDSA'\n"
            "     else hashlib.sha256(at.encode()).digest()[:16])\n"
            "assert c['at_hash'] == base64.urlsafe_b64encode(h).rstrip(b'=').decode()\n"
            "print(json.dumps(c))\n")
        r = subprocess.run(["/usr/bin/python3", "-c", script, jwks.decode(), tok["id_token"],
                            tok["access_token"], client["client_id"], self.iss, alg],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(jwt_header(tok["id_token"])["alg"], alg)
        return json.loads(r.stdout)

    def test_a_client_names_its_id_token_algorithm(self):
        """#13 item 7: EdDSA or ES256 per client, RS256 by default (and in discovery first);
        the access token keeps the server's algorithm."""
        st, _, body = self.srv.request("GET", "/.well-known/openid-configuration")
        d = json.loads(body)
        self.assertEqual(d["id_token_signing_alg_values_supported"], ["RS256", "ES256", "EdDSA"])
        self.assertEqual(d["access_token_signing_alg_values_supported"], ["EdDSA"])
        for alg in ("ES256", "EdDSA"):
            app = self.client("app-" + alg, "--redirect-uris", CB, "--first-party", "--scopes",
                              "read", "--id-token-alg", alg)
            verifier, challenge = pkce()
            st, hd, body = self.login(Browser(self.srv), app, challenge)
            self.assertEqual(st, 303, body)
            st, tok = self.exchange(app, self.code_of(hd), verifier,
                                    auth=basic(app["client_id"], app["client_secret"]))
            self.assertEqual(st, 200, tok)
            self.check_id_token(tok, app, alg)
            self.assertEqual(jwt_header(tok["access_token"])["alg"], "EdDSA")
        self.assert_clean_exit(self.srv)

    def test_a_browser_logs_in_and_the_app_gets_its_tokens(self):
        verifier, challenge = pkce()
        b = Browser(self.srv)
        st, hd, page = b.request("GET", self.authorize_url(self.spa, challenge))
        self.assertEqual(st, 200)
        # every page: a strict CSP, no framing, no referrer, no caching
        self.assertIn("frame-ancestors 'none'", hd["content-security-policy"])
        self.assertEqual((hd["x-frame-options"], hd["referrer-policy"], hd["cache-control"]),
                         ("DENY", "no-referrer", "no-store"))
        self.assertIn('autocomplete="current-password"', page.decode())
        st, hd, body = self.login(b, self.spa, challenge)
        self.assertEqual(st, 303, body)
        code = self.code_of(hd)
        st, tok = self.exchange(self.spa, code, verifier)
        self.assertEqual(st, 200, tok)
        self.assertEqual(tok["scope"], "openid read")
        self.assertNotIn("refresh_token", tok)  # not first-party, no offline_access
        # the ID token, checked by PyJWT (Debian's python3-jwt) against our JWKS: RS256 by
        # default, beside an EdDSA access token
        c = self.check_id_token(tok, self.spa, "RS256")
        self.assertEqual(jwt_header(tok["access_token"])["alg"], "EdDSA")
        self.assertEqual((c["nonce"], c["azp"]), ("n-1", self.spa["client_id"]))
        for claim in ("sub", "exp", "iat", "auth_time"):
            self.assertIn(claim, c)
        # the access token works at the gateway check
        st, hd, _ = self.srv.request("GET", "/v1/auth/verify",
                                     headers={"Authorization": "Bearer " + tok["access_token"]})
        self.assertEqual((st, hd["x-auth-subject"]), (200, c["sub"]))
        self.assert_clean_exit(self.srv)

    def test_a_code_is_used_once_and_reuse_revokes_what_it_gave(self):
        verifier, challenge = pkce()
        st, hd, _ = self.login(Browser(self.srv), self.web, challenge)
        code = self.code_of(hd)
        auth = basic(self.web["client_id"], self.web["client_secret"])
        # refusals that leave the code usable: another client, another URI, wrong verifier
        other = self.client("other", "--redirect-uris", CB)
        for st, e in (self.exchange(other, code, verifier,
                                    auth=basic(other["client_id"], other["client_secret"])),
                      self.exchange(self.web, code, verifier, CB + "x", auth=auth),
                      self.exchange(self.web, code, pkce()[0], auth=auth),
                      self.exchange(self.web, code, "", auth=auth)):
            self.assertEqual(st, 400, e)
        st, tok = self.exchange(self.web, code, verifier, auth=auth)
        self.assertEqual(st, 200, tok)
        self.assertIn("refresh_token", tok)  # first-party: no consent, a refresh token
        # a public client cannot pose as the confidential one
        st, e = self.exchange(self.web, code, verifier)
        self.assertEqual((st, e["error"]), (401, "invalid_client"))
        # used again: refused, and the refresh family and the access token it gave end
        st, e = self.exchange(self.web, code, verifier, auth=auth)
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))
        st, _, b = self.srv.request("POST", "/oauth2/token",
                                    form(grant_type="refresh_token",
                                         refresh_token=tok["refresh_token"]), auth)
        self.assertEqual(st, 400, b)
        st, _, _ = self.srv.request("GET", "/v1/auth/verify",
                                    headers={"Authorization": "Bearer " + tok["access_token"]})
        self.assertEqual(st, 401)
        self.assert_clean_exit(self.srv)

    def test_a_code_spelled_another_way_is_not_a_code(self):
        """libsodium 1.0.18 decodes any byte from 0x80 up as base64url's '_': a used code with
        %80 in place of a '_' opened to the same grant and was redeemed again. Such a code
        is refused before and after the real one is used, and does not use it up."""
        auth = basic(self.web["client_id"], self.web["client_secret"])
        for _ in range(20):  # (a code has a '_' in nine cases out of ten)
            verifier, challenge = pkce()
            st, hd, _ = self.login(Browser(self.srv), self.web, challenge)
            code = self.code_of(hd)
            if "_" in code:
                break
        self.assertIn("_", code)

        def exchange_raw(code_bytes):
            body = form(grant_type="authorization_code", code="CODE", redirect_uri=CB,
                        code_verifier=verifier).replace(b"CODE", code_bytes.encode())
            st, _, b = self.srv.request("POST", "/oauth2/token", body, auth)
            return st, json.loads(b)
        variant = code.replace("_", "%80", 1)
        st, e = exchange_raw(variant)
        self.assertEqual((st, e.get("error")), (400, "invalid_grant"), e)
        st, tok = exchange_raw(code)
        self.assertEqual(st, 200, tok)
        st, e = exchange_raw(variant)  # (before the fix: a second set of tokens)
        self.assertEqual((st, e.get("error")), (400, "invalid_grant"), e)
        self.assert_clean_exit(self.srv)

    def test_requests_that_must_never_be_redirected(self):
        _, challenge = pkce()
        b = Browser(self.srv)
        for bad in ({"redirect_uri": "https://evil.example/cb"},
                    {"redirect_uri": CB + "/../evil"},
                    {"redirect_uri": None},
                    {"client_id": "nobody"}):
            url = self.authorize_url(self.spa, challenge, **{k: v for k, v in bad.items()
                                                             if k != "client_id"})
            if "client_id" in bad:
                url = url.replace(self.spa["client_id"], bad["client_id"])
            st, hd, page = b.request("GET", url)
            self.assertEqual(st, 400, bad)
            self.assertNotIn("location", hd)
            self.assertIn("not valid", page.decode())
        self.assert_clean_exit(self.srv)

    def test_errors_that_go_back_to_the_client(self):
        _, challenge = pkce()
        b = Browser(self.srv)
        for extra, error in (({"code_challenge_method": "plain"}, "invalid_request"),
                             ({"code_challenge": None}, "invalid_request"),
                             ({"response_type": "token"}, "unsupported_response_type"),
                             ({"scope": "openid admin"}, "invalid_scope"),
                             ({"prompt": "none"}, "login_required")):
            st, hd, _ = b.request("GET", self.authorize_url(self.spa, challenge, **extra))
            self.assertEqual(st, 302, extra)
            loc = urllib.parse.urlsplit(hd["location"])
            q = dict(urllib.parse.parse_qsl(loc.query))
            self.assertEqual((q["error"], q["state"], q["iss"]), (error, "st-1", self.iss))
        self.assert_clean_exit(self.srv)

    def test_the_form_is_bound_to_its_browser(self):
        _, challenge = pkce()
        a, b = Browser(self.srv), Browser(self.srv)
        st, _, page = a.request("GET", self.authorize_url(self.spa, challenge))
        fields = dict(Fields(page.decode()).fields, username="ann", password=PASSWORD)
        b.request("GET", self.authorize_url(self.spa, challenge))  # b has its own cookie
        st, hd, _ = b.request("POST", "/oauth2/login", form(**fields), FORM)
        self.assertEqual(st, 403)
        self.assertNotIn("location", hd)
        st, _, _ = Browser(self.srv).request("POST", "/oauth2/login", form(**fields), FORM)
        self.assertEqual(st, 403)  # no cookie at all
        del fields["csrf"]
        st, _, _ = a.request("POST", "/oauth2/login", form(**fields), FORM)
        self.assertEqual(st, 403)  # no token
        self.assert_clean_exit(self.srv)

    def test_a_wrong_password_says_nothing_about_the_account(self):
        _, challenge = pkce()
        b = Browser(self.srv)
        st, _, page = self.login(b, self.spa, challenge, password="wrong password")
        self.assertEqual(st, 401)
        self.assertIn("Invalid username or password.", page.decode())
        f = Fields(page.decode()).fields
        f.update(username="nobody", password="wrong password")
        st, _, page2 = b.request("POST", "/oauth2/login", form(**f), FORM)
        self.assertEqual(st, 401)
        self.assertIn("Invalid username or password.", page2.decode())
        self.assertNotIn("wrong password", page.decode() + page2.decode())  # never echoed
        self.assert_clean_exit(self.srv)

    def authorize(self, browser, challenge, client=None, **extra):
        """An authorization request: (status, headers, body)."""
        return browser.request("GET", self.authorize_url(client or self.spa, challenge, **extra))

    def id_claims(self, code, verifier):
        st, tok = self.exchange(self.spa, code, verifier)
        self.assertEqual(st, 200, tok)
        p = tok["id_token"].split(".")[1]
        return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))

    def test_a_session_signs_in_the_next_request_without_the_form(self):
        """Issue #13 item 5: single sign-on, prompt and max_age, sessions that end."""
        verifier, challenge = pkce()
        b = Browser(self.srv)
        st, hd, _ = self.login(b, self.spa, challenge)
        self.assertEqual(st, 303)
        self.assertIn("fg_session", b.cookies)
        first = self.id_claims(self.code_of(hd), verifier)
        self.assertTrue(first["sid"])
        # the next authorization: answered from the session, auth_time unchanged
        for extra in ({}, {"prompt": "none"}, {"max_age": "3600"}):
            st, hd, body = self.authorize(b, challenge, **extra)
            self.assertEqual(st, 302, (extra, body))
            c = self.id_claims(self.code_of(hd), verifier)
            self.assertEqual((c["auth_time"], c["sid"], c["sub"]),
                             (first["auth_time"], first["sid"], first["sub"]))
        # prompt=login asks again; max_age past the sign-in too
        self.assertEqual(self.authorize(b, challenge, prompt="login")[0], 200)
        time.sleep(1.1)
        self.assertEqual(self.authorize(b, challenge, max_age="0")[0], 200)
        # another browser has no session: prompt=none is login_required
        st, hd, _ = self.authorize(Browser(self.srv), challenge, prompt="none")
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hd["location"]).query))
        self.assertEqual((st, q["error"]), (302, "login_required"))
        # a cookie altered is no session
        forged = Browser(self.srv)
        forged.cookies = {k: v[:-2] + ("AA" if v[-2:] != "AA" else "BB")
                          for k, v in b.cookies.items()}
        self.assertEqual(self.authorize(forged, challenge)[0], 200)
        # the user disabled: every session ends
        r = cli(self.srv.data, "user", "disable", "ann")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.authorize(b, challenge)[0], 200)
        st, hd, _ = self.authorize(b, challenge, prompt="none")
        self.assertEqual(st, 302)
        self.assertIn("error=login_required", hd["location"])
        self.assert_clean_exit(self.srv)

    def test_logout_ends_the_session_and_what_it_started(self):
        """Issue #13 item 9: RP-initiated logout: the post-logout URI checked against the
        registration, the session and its refresh families ended; without the application's
        ID token the person confirms."""
        verifier, challenge = pkce()
        b = Browser(self.srv)
        auth = basic(self.web["client_id"], self.web["client_secret"])
        st, hd, _ = self.login(b, self.web, challenge)
        st, tok = self.exchange(self.web, self.code_of(hd), verifier, auth=auth)
        self.assertEqual(st, 200, tok)
        q = {"id_token_hint": tok["id_token"], "state": "bye-1"}
        # an unregistered URI: a page, never a redirect
        st, hd, _ = b.request("GET", "/oauth2/logout?" + urllib.parse.urlencode(
            dict(q, post_logout_redirect_uri="https://evil.example/")))
        self.assertEqual(st, 400)
        self.assertNotIn("location", hd)
        st, hd, _ = b.request("GET", "/oauth2/logout?" + urllib.parse.urlencode(
            dict(q, post_logout_redirect_uri="http://127.0.0.1:9/bye")))
        self.assertEqual((st, hd["location"]), (302, "http://127.0.0.1:9/bye?state=bye-1"))
        self.assertIn("Max-Age=0", hd["set-cookie"])
        # the session is gone (even with the old cookie), and so is the refresh family
        st, hd, _ = self.srv.request("GET", self.authorize_url(self.web, challenge, prompt="none"),
                                     headers={"Cookie": "; ".join(f"{k}={v}" for k, v in
                                                                  b.cookies.items())})
        self.assertIn("error=login_required", hd["location"])
        st, _, body = self.srv.request("POST", "/oauth2/token", form(
            grant_type="refresh_token", refresh_token=tok["refresh_token"]), auth)
        self.assertEqual(st, 400, body)
        # without a hint: a confirmation, bound to the browser
        b2 = Browser(self.srv)
        st, hd, _ = self.login(b2, self.web, challenge)
        self.assertEqual(st, 303)
        st, _, page = b2.request("GET", "/oauth2/logout")
        self.assertEqual(st, 200)
        f = Fields(page.decode())
        self.assertEqual(f.form_action, "/oauth2/logout")
        st, _, _ = b2.request("POST", "/oauth2/logout", form(csrf="forged"), FORM)
        self.assertEqual(st, 200)  # asked again, nothing ended
        self.assertEqual(self.authorize(b2, challenge, prompt="none")[0], 302)
        st, _, page = b2.request("POST", "/oauth2/logout", form(**f.fields), FORM)
        self.assertIn("signed out", page.decode())
        st, hd, _ = self.authorize(b2, challenge, prompt="none")
        self.assertIn("error=login_required", hd["location"])
        self.assert_clean_exit(self.srv)

    def test_a_third_party_asks_the_persons_consent_once(self):
        """Issue #13 item 3: a client not first-party gets a consent page listing what it
        asks; allowed, it is remembered per user, client and scope; a new scope, or
        prompt=consent, asks again; denied, the client gets access_denied; an administrator
        withdraws it."""
        verifier, challenge = pkce()
        b = Browser(self.srv)
        st, hd, page = self.login(b, self.spa, challenge, decision=None)
        self.assertEqual(st, 200)
        text = page.decode()
        self.assertIn("Allow spa?", text)
        self.assertIn("Know who you are", text)  # openid, described
        self.assertIn("<li>read</li>", text)     # the client's own scope, as is
        self.assertIn("HttpOnly", hd["set-cookie"])  # the session started with the page
        f = Fields(text)
        st, hd, _ = b.request("POST", "/oauth2/consent", form(**dict(f.fields, decision="deny")),
                              FORM)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hd["location"]).query))
        self.assertEqual((st, q["error"], q["state"]), (303, "access_denied", "st-1"))
        # asked again (nothing was remembered), allowed this time
        st, _, page = self.authorize(b, challenge)
        f = Fields(page.decode())
        self.assertEqual(f.form_action, "/oauth2/consent")
        st, hd, _ = b.request("POST", "/oauth2/consent", form(**dict(f.fields, decision="allow")),
                              FORM)
        self.assertEqual(st, 303)
        self.assertEqual(self.exchange(self.spa, self.code_of(hd), verifier)[0], 200)
        # remembered: no page; a narrower request neither; prompt=consent asks again
        self.assertEqual(self.authorize(b, challenge)[0], 302)
        self.assertEqual(self.authorize(b, challenge, scope="openid")[0], 302)
        self.assertEqual(self.authorize(b, challenge, prompt="consent")[0], 200)
        st, hd, _ = self.authorize(b, challenge, scope="openid read offline_access",
                                   prompt="none")
        self.assertIn("error=consent_required", hd["location"])
        # a forged consent post is refused
        st, _, _ = Browser(self.srv).request(
            "POST", "/oauth2/consent", form(**dict(f.fields, decision="allow")), FORM)
        self.assertEqual(st, 403)
        self.assert_clean_exit(self.srv)

    def test_userinfo_answers_the_claims_the_scopes_grant(self):
        """Issue #13 item 8: users with an email and a name (registration, the CLI, the
        admin API); UserInfo with the access token answers what its scopes allow."""
        body = json.dumps({"username": "bea", "password": PASSWORD, "email": "bea@example.org",
                           "name": "Bea <B> Smith"}).encode()
        st, _, b = self.srv.request("POST", "/v1/users", body,
                                    {"Content-Type": "application/json"})
        self.assertEqual(st, 201, b)
        bad = json.dumps({"username": "cid", "password": PASSWORD, "email": "no-at"}).encode()
        self.assertEqual(self.srv.request("POST", "/v1/users", bad,
                                          {"Content-Type": "application/json"})[0], 400)
        verifier, challenge = pkce()
        b = Browser(self.srv)
        st, _, page = b.request("GET", self.authorize_url(self.spa, challenge,
                                                          scope="openid profile email"))
        fields = dict(Fields(page.decode()).fields, username="bea", password=PASSWORD)
        st, hd, page = b.request("POST", "/oauth2/login", form(**fields), FORM)
        f = Fields(page.decode())
        self.assertIn("See your email address", page.decode())
        st, hd, _ = b.request("POST", "/oauth2/consent", form(**dict(f.fields, decision="allow")),
                              FORM)
        st, tok = self.exchange(self.spa, self.code_of(hd), verifier)
        self.assertEqual(st, 200, tok)
        bearer = {"Authorization": "Bearer " + tok["access_token"]}
        st, hd, info = self.srv.request("GET", "/oauth2/userinfo", headers=bearer)
        self.assertEqual(st, 200, info)
        info = json.loads(info)
        self.assertEqual((info["preferred_username"], info["name"], info["email"],
                          info["email_verified"]),
                         ("bea", "Bea <B> Smith", "bea@example.org", False))
        self.assertEqual(hd["cache-control"], "no-store")
        # POST works too; a bad token is 401 with the challenge
        self.assertEqual(self.srv.request("POST", "/oauth2/userinfo", b"", bearer)[0], 200)
        st, hd, _ = self.srv.request("GET", "/oauth2/userinfo",
                                     headers={"Authorization": "Bearer nope"})
        self.assertEqual(st, 401)
        self.assertIn('error="invalid_token"', hd["www-authenticate"])
        # a token without openid (a client's own) is not for UserInfo
        c = self.client("svc", "--scopes", "read")
        st, _, t = self.srv.request("POST", "/oauth2/token", form(grant_type="client_credentials"),
                                    basic(c["client_id"], c["client_secret"]))
        st, hd, _ = self.srv.request("GET", "/oauth2/userinfo", headers={
            "Authorization": "Bearer " + json.loads(t)["access_token"]})
        self.assertEqual(st, 403)
        # the user disabled: the token's UserInfo ends with it
        self.assertEqual(cli(self.srv.data, "user", "disable", "bea").returncode, 0)
        self.assertEqual(self.srv.request("GET", "/oauth2/userinfo", headers=bearer)[0], 401)
        self.assert_clean_exit(self.srv)

    def test_form_post_answers_with_a_page_that_posts_back(self):
        verifier, challenge = pkce()
        st, hd, page = self.login(Browser(self.srv), self.spa, challenge,
                                  response_mode="form_post")
        self.assertEqual(st, 200, page)
        f = Fields(page.decode())
        self.assertEqual(f.form_action, CB)
        self.assertEqual((f.fields["state"], f.fields["iss"]), ("st-1", self.iss))
        self.assertIn("form-action 'self' http://127.0.0.1:9;", hd["content-security-policy"])
        st, tok = self.exchange(self.spa, f.fields["code"], verifier)
        self.assertEqual(st, 200, tok)
        self.assert_clean_exit(self.srv)


class TestBrowser(ServerTest):
    """The login page in headless Chromium (Debian's chromium, chromium-driver,
    python3-selenium): keyboard only, a failed then a good sign-in, the redirect to a small
    relying party, the code exchanged; screenshots in the build directory."""

    def test_a_person_signs_in_with_a_real_browser(self):
        from tests.integration.fgtest import free_port
        logo = os.path.join(tempfile.mkdtemp(prefix="fg-logo-"), "acme.svg")
        self.addCleanup(lambda: shutil.rmtree(os.path.dirname(logo), ignore_errors=True))
        with open(logo, "w") as f:  # the operator's logo: a blue rounded mark and a word
            f.write('<svg xmlns="http://www.w3.org/2000/svg" width="132" height="32">'
                    '<rect width="32" height="32" rx="8" fill="#1d4ed8"/>'
                    '<text x="42" y="23" font-family="sans-serif" font-size="20" '
                    'font-weight="700" fill="#1b1f24">Acme</text></svg>')
        srv = self.start("--product-name", "Acme", "--ratelimit-login-user", "2/m:2",
                         "--logo-file", logo)
        add_user(self, srv)
        rp_port = free_port()
        cb = f"http://127.0.0.1:{rp_port}/callback"
        r = cli(srv.data, "client", "create", "Acme Shop", "--public", "--redirect-uris", cb,
                "--json")
        c = json.loads(r.stdout)
        verifier, challenge = pkce()
        out = os.path.join(os.path.dirname(os.path.abspath(BIN)), "screenshots")
        script = os.path.join(os.path.dirname(__file__), "rp", "browser_login.py")
        r = subprocess.run(["/usr/bin/python3", script, f"http://127.0.0.1:{srv.port}",
                            c["client_id"], str(rp_port), challenge, "ann", PASSWORD, out],
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr[-4000:])
        res = json.loads(r.stdout)
        f = res["facts"]
        self.assertEqual(f["title"], "Sign in to Acme")
        self.assertEqual(f["logo_width"], 132)  # the operator's logo, shown (CSP img-src 'self')
        self.assertEqual((f["focused"], f["labels"]), ("username", ["Username", "Password"]))
        self.assertFalse(f["phone_overflow"])  # readable on a phone: no sideways scrolling
        self.assertEqual((f["error"], f["refocused"]),
                         ("Invalid username or password.", "password"))
        self.assertEqual(f["landed"], cb)
        self.assertTrue(f["sso"])
        self.assertEqual((f["consent"], f["consent_items"]),
                         ("Allow Acme Shop?", ["Know who you are (your account identifier)"]))
        self.assertEqual(f["invalid_link"], "This sign-in link is not valid")
        self.assertTrue(f["invalid_url"].startswith(f"http://127.0.0.1:{srv.port}/"))
        self.assertEqual(res["received"]["state"], "s-browser")
        st, _, b = srv.request("POST", "/oauth2/token", form(
            grant_type="authorization_code", client_id=c["client_id"],
            code=res["received"]["code"], redirect_uri=cb, code_verifier=verifier), FORM)
        self.assertEqual(st, 200, b)
        self.assertIn("id_token", json.loads(b))
        self.assertEqual((f["busy"], f["counting_down"]), ("Busy right now", True))
        for shot in ("login-desktop", "login-phone", "login-failed", "error-invalid-link",
                     "busy", "consent", "consent-phone"):
            self.assertGreater(os.path.getsize(os.path.join(out, shot + ".png")), 1000)
        self.assert_clean_exit(srv)


class TestConsentAdmin(ServerTest):
    # OidcTest's helpers (its tests are not run again here)
    client, authorize_url, login, authorize = (OidcTest.client, OidcTest.authorize_url,
                                               OidcTest.login, OidcTest.authorize)

    def setUp(self):
        self.token = "admin-token-for-consent-tests-0123456789"
        self.srv = self.start("--admin-token", self.token, "--admin-listen", "127.0.0.1:0")
        add_user(self, self.srv)
        self.spa = self.client("spa", "--public", "--redirect-uris", CB, "--scopes", "read")
        self.iss = f"http://127.0.0.1:{self.srv.port}"

    def test_an_administrator_withdraws_a_consent(self):
        from tests.integration.fgtest import admin_call
        _, challenge = pkce()
        b = Browser(self.srv)
        st, _, _ = self.login(b, self.spa, challenge)
        self.assertEqual(st, 303)
        self.assertEqual(self.authorize(b, challenge)[0], 302)  # remembered
        port = self.srv.admin_port()
        st, body = admin_call(port, self.token, "DELETE",
                              f"/admin/users/ann/consents/{self.spa['client_id']}")
        self.assertEqual((st, body["consent"]), (200, "revoked"))
        st, _, page = self.authorize(b, challenge)  # asked again
        self.assertEqual((st, Fields(page.decode()).form_action), (200, "/oauth2/consent"))
        st, _ = admin_call(port, self.token, "DELETE",
                           f"/admin/users/ann/consents/{self.spa['client_id']}")
        self.assertEqual(st, 404)
        self.assert_clean_exit(self.srv)


class TestSurge(ServerTest):
    def test_a_refused_sign_in_comes_back_by_itself(self):
        """Issue #13 item 4: a login over a limit gets a page, not a timeout: the status and
        Retry-After, and the form again, posted by its script after the delay; the password
        in the page's body (no-store), never in a URL."""
        srv = self.start("--ratelimit-login-ip", "1/m:1")
        r = cli(srv.data, "client", "create", "app", "--redirect-uris", CB, "--json")
        c = json.loads(r.stdout)
        _, challenge = pkce()
        b = Browser(srv)
        q = urllib.parse.urlencode({"response_type": "code", "client_id": c["client_id"],
                                    "redirect_uri": CB, "code_challenge": challenge,
                                    "state": "s"})
        st, _, page = b.request("GET", "/oauth2/authorize?" + q)
        fields = dict(Fields(page.decode()).fields, username="ann", password="pw-1 secret")
        st, _, _ = b.request("POST", "/oauth2/login", form(**fields), FORM)
        self.assertEqual(st, 401)
        st, hd, page = b.request("POST", "/oauth2/login", form(**fields), FORM)
        self.assertEqual(st, 429, page)
        self.assertGreaterEqual(int(hd["retry-after"]), 1)
        self.assertEqual(hd["cache-control"], "no-store")
        f = Fields(page.decode())
        self.assertEqual(f.form_action, "/oauth2/login")
        self.assertEqual((f.fields["password"], f.fields["state"]), ("pw-1 secret", "s"))
        self.assertIn('src="/oauth2/assets/retry.js"', page.decode())
        st, hd, js = srv.request("GET", "/oauth2/assets/retry.js")
        self.assertEqual(st, 200)
        self.assertIn("submit()", js.decode())
        self.assertEqual(srv.request("GET", "/oauth2/assets/nope.js")[0], 404)
        self.assert_clean_exit(srv)


class TestCors(ServerTest):
    """Issue #13 item 10: a browser app on another origin reads the answers of the token
    endpoint, UserInfo and revocation when a client registered its origin, the JSON API's
    when the operator listed it; discovery and JWKS from anywhere; never "*" with tokens."""

    def test_preflight_and_answers_name_the_allowed_origin_only(self):
        from tests.integration.fgtest import free_port
        app = free_port()
        origin = f"http://127.0.0.1:{app}"
        srv = self.start("--cors-origins", "https://shop.example")
        c = json.loads(cli(srv.data, "client", "create", "spa", "--public", "--redirect-uris",
                           origin + "/cb", "--json").stdout)
        # (the running server reads the clients' origins again within a second)
        pre = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            st, hd, _ = srv.request("OPTIONS", "/oauth2/token", headers=pre)
            if "access-control-allow-origin" in hd:
                break
            time.sleep(0.2)
        self.assertEqual((st, hd["access-control-allow-origin"], hd["vary"]), (204, origin, "Origin"))
        self.assertIn("POST", hd["access-control-allow-methods"])
        self.assertIn("Authorization", hd["access-control-allow-headers"])
        st, hd, _ = srv.request("OPTIONS", "/oauth2/token",
                                headers=dict(pre, Origin="https://evil.example"))
        self.assertEqual(st, 204)
        self.assertNotIn("access-control-allow-origin", hd)
        # the JSON API: the operator's list, not the clients'
        st, hd, _ = srv.request("OPTIONS", "/v1/auth/login",
                                headers=dict(pre, Origin="https://shop.example"))
        self.assertEqual(hd.get("access-control-allow-origin"), "https://shop.example")
        st, hd, _ = srv.request("OPTIONS", "/v1/auth/login", headers=pre)
        self.assertNotIn("access-control-allow-origin", hd)
        # in a real browser, from the app's own page on its origin
        r = subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "rp",
                                                              "cors_page.py"),
                            f"http://127.0.0.1:{srv.port}", str(app), c["client_id"]],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        out = json.loads(r.stdout)
        self.assertEqual(out["discovery"][0], 200)
        self.assertEqual(out["token"][0], 400)  # read: invalid_grant, not a CORS failure
        self.assertIn("invalid_grant", out["token"][1])
        self.assertEqual(out["introspect"][0], "refused")  # not for browsers
        self.assert_clean_exit(srv)


class TestTemplates(ServerTest):
    def test_an_operator_replaces_the_pages(self):
        """templates_dir and product_name: the operator's login page, the built-in rest."""
        import tempfile
        d = tempfile.mkdtemp(prefix="fg-tmpl-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        with open(os.path.join(d, "login.html"), "w") as f:
            f.write("<h1>{{product}} custom for {{client}}</h1><form>{{{hidden}}}</form>")
        srv = self.start("--templates-dir", d, "--product-name", "Acme <Shop>")
        r = cli(srv.data, "client", "create", "app", "--redirect-uris", CB, "--json")
        c = json.loads(r.stdout)
        _, challenge = pkce()
        q = urllib.parse.urlencode({"response_type": "code", "client_id": c["client_id"],
                                    "redirect_uri": CB, "code_challenge": challenge})
        st, _, page = srv.request("GET", "/oauth2/authorize?" + q)
        self.assertEqual(st, 200)
        self.assertIn("<h1>Acme &lt;Shop&gt; custom for app</h1>", page.decode())
        self.assertIn('name="csrf"', page.decode())
        st, hd, css = srv.request("GET", "/oauth2/assets/style.css")
        self.assertEqual((st, hd["content-type"]), (200, "text/css; charset=utf-8"))
        self.assertEqual(srv.request("GET", "/oauth2/assets/logo")[0], 404)  # none given
        self.assert_clean_exit(srv)
        # a logo that cannot be served is a start-up error, said plainly
        from tests.integration.test_lifecycle import run
        for bad, words in ((os.path.join(d, "login.html"), "is not .png"),
                           (os.path.join(d, "none.png"), "cannot read")):
            r = run("--logo-file", bad, "--data-dir", os.path.join(d, "data"),
                    "--listen", "127.0.0.1:0")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(words, r.stderr)


class TestRelyingPartyLibrary(ServerTest):
    """Issue #13: a relying-party library other than our own code (Debian's python3-authlib)
    runs the flow end to end, for a confidential and a public client. RS256: authlib checks
    at_hash only for the RS/ES/PS families."""

    def test_authlib_logs_in_and_validates_the_id_token(self):
        srv = self.start("--signing-alg", "RS256")
        add_user(self, srv)
        iss = f"http://127.0.0.1:{srv.port}"
        rp = os.path.join(os.path.dirname(__file__), "rp", "authlib_rp.py")
        for args in (("conf",), ("pub", "--public")):
            r = cli(srv.data, "client", "create", args[0], "--redirect-uris", CB, *args[1:],
                    "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            c = json.loads(r.stdout)
            r = subprocess.run(["/usr/bin/python3", rp, iss, c["client_id"],
                                c.get("client_secret", ""), CB, "ann", PASSWORD],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            claims = json.loads(r.stdout)
            self.assertEqual((claims["aud"], claims["iss"]), (c["client_id"], iss))
        self.assert_clean_exit(srv)


class TestTwoInstances(ServerTest):
    def test_signed_in_on_one_instance_known_on_the_other(self):
        """Issue #13: on Redis, a session and a code are every instance's: log in on A,
        authorize on B from the session, redeem the code on A."""
        if not REDIS_MODE:
            self.skipTest("instances share a store on Redis (make check runs this there)")
        a = self.start("--issuer", "https://id.example")
        b = self.start("--data-dir", a.data, "--issuer", "https://id.example")
        add_user(self, a)
        c = json.loads(cli(a.data, "client", "create", "spa", "--public", "--redirect-uris",
                           CB, "--json").stdout)
        verifier, challenge = pkce()
        q = urllib.parse.urlencode({"response_type": "code", "client_id": c["client_id"],
                                    "redirect_uri": CB, "scope": "openid", "state": "s",
                                    "code_challenge": challenge})
        on_a, on_b = Browser(a), Browser(b)
        st, _, page = on_a.request("GET", "/oauth2/authorize?" + q)
        fields = dict(Fields(page.decode()).fields, username="ann", password=PASSWORD)
        st, hd, page = on_a.request("POST", "/oauth2/login", form(**fields), FORM)
        self.assertEqual(st, 200)  # the consent page, answered on A too
        f = Fields(page.decode())
        st, hd, _ = on_a.request("POST", "/oauth2/consent", form(**dict(f.fields, decision="allow")),
                                 FORM)
        self.assertEqual(st, 303)
        on_b.cookies = dict(on_a.cookies)  # the same browser, another instance behind the LB
        st, hd, body = on_b.request("GET", "/oauth2/authorize?" + q)
        self.assertEqual(st, 302, body)
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hd["location"]).query))["code"]
        st, _, body = a.request("POST", "/oauth2/token", form(
            grant_type="authorization_code", client_id=c["client_id"], code=code,
            redirect_uri=CB, code_verifier=verifier), FORM)
        self.assertEqual(st, 200, body)
        self.assert_clean_exit(b)
        self.assert_clean_exit(a)
