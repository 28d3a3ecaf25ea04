# SPDX-License-Identifier: MIT
"""A relying party that is not our code: Debian's python3-authlib (with python3-requests)
runs the authorization code flow with PKCE against floodgate, as a web or mobile app would,
and validates the ID token (signature from the JWKS, iss, aud, nonce, at_hash) with
authlib's own OpenID Connect claims rules. Run by tests/integration/test_oidc.py with
/usr/bin/python3; prints the validated claims as JSON.

    authlib_rp.py ISSUER CLIENT_ID CLIENT_SECRET|"" REDIRECT_URI USERNAME PASSWORD"""

import html.parser
import json
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


class Fields(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.fields, self.action = {}, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def main():
    iss, cid, secret, cb, user, password = sys.argv[1:7]
    meta = requests.get(iss + "/.well-known/openid-configuration", timeout=10).json()
    kw = {"client_secret": secret} if secret else {"token_endpoint_auth_method": "none"}
    rp = OAuth2Session(cid, redirect_uri=cb, scope="openid offline_access",
                       code_challenge_method="S256", **kw)
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = rp.create_authorization_url(meta["authorization_endpoint"],
                                             code_verifier=verifier, nonce=nonce)
    browser = requests.Session()  # the user's browser: cookies, the form
    page = browser.get(url, timeout=10)
    page.raise_for_status()
    f = Fields(page.text)
    f.fields.update(username=user, password=password)
    answer = browser.post(iss + f.action, data=f.fields, allow_redirects=False, timeout=10)
    if answer.status_code == 200:  # a third party: the person's consent first
        f = Fields(answer.text)
        assert f.action == "/oauth2/consent", answer.text
        f.fields["decision"] = "allow"
        answer = browser.post(iss + f.action, data=f.fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, (answer.status_code, answer.text)
    token = rp.fetch_token(meta["token_endpoint"],
                           authorization_response=answer.headers["Location"],
                           code_verifier=verifier, state=state)
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                        claims_options={"iss": {"essential": True, "values": [iss]}},
                        claims_params={"nonce": nonce, "client_id": cid,
                                       "access_token": token["access_token"]})
    claims.validate()
    # and the refresh token rotates, through the same library
    fresh = rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert fresh["refresh_token"] != token["refresh_token"]
    print(json.dumps(dict(claims)))


if __name__ == "__main__":
    main()
