# SPDX-License-Identifier: MIT
"""deploy/: the shipped nginx configuration, run by a real nginx in front of a real
floodgate, protects an application with auth_request (200 with the identity for a good
token, 401 with floodgate's challenge otherwise, 401 after revocation) and proxies
floodgate's own API; the shipped INI file passes check-config."""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile

from tests.integration.fgtest import (BIN, REDIS_MODE, ServerTest, parse_one, recv_all,
                                      start_nginx, store_args)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
PW = "correct horse battery"


def http(port, method, path, body=b"", headers=None):
    h = {"Host": "localhost", "Connection": "close", "Content-Length": str(len(body))}
    h.update(headers or {})
    raw = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        return parse_one(recv_all(s, 10))


def raw_get(port, path, token):
    """The answer's bytes as sent (headers not folded: a repeated one shows twice)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n".encode())
        return recv_all(s, 10)


class TestDeploy(ServerTest):
    def test_auth_request_protects_the_app(self):
        srv = self.start(*FAST, "--trusted-proxies", "127.0.0.1")
        port = start_nginx(self, [srv.port])
        J = {"Content-Type": "application/json"}
        body = json.dumps({"username": "ann", "password": PW}).encode()
        self.assertEqual(http(port, "POST", "/v1/users", body, J)[0], 201)  # through nginx
        st, _, b = http(port, "POST", "/v1/auth/login", body, J)
        self.assertEqual(st, 200)
        tok = json.loads(b)
        st, _, b = http(port, "GET", "/.well-known/jwks.json")
        self.assertEqual((st, "keys" in json.loads(b)), (200, True))
        # a good token: the app answers, told who it is, without the token
        st, _, b = http(port, "GET", "/app/orders", headers={
            "Authorization": "Bearer " + tok["access_token"]})
        self.assertEqual(st, 200, b)
        self.assertRegex(b.decode(), r"subject=\S+ client=first-party token=\n")
        # none, or a forged one: 401 with floodgate's Bearer challenge; the app never sees it
        st, h, _ = http(port, "GET", "/app/orders")
        self.assertEqual(st, 401)
        self.assertIn("Bearer", h.get("www-authenticate", ""))
        forged = tok["access_token"][:-4] + ("AAAA" if not tok["access_token"].endswith("AAAA")
                                             else "BBBB")
        st, h, _ = http(port, "GET", "/app/orders", headers={"Authorization": "Bearer " + forged})
        self.assertEqual(st, 401)
        self.assertIn('error="invalid_token"', h.get("www-authenticate", ""))
        # the challenge once, not twice (nginx passes a 401's on by itself)
        raw = raw_get(port, "/app/orders", forged)
        self.assertEqual(raw.lower().count(b"\r\nwww-authenticate:"), 1, raw)
        # logout revokes the access token: the gateway refuses it at once
        st, _, _ = http(port, "POST", "/v1/auth/logout", json.dumps(
            {"refresh_token": tok["refresh_token"]}).encode(),
            dict(J, Authorization="Bearer " + tok["access_token"]))
        self.assertEqual(st, 200)
        st, _, _ = http(port, "GET", "/app/orders", headers={
            "Authorization": "Bearer " + tok["access_token"]})
        self.assertEqual(st, 401)
        self.assert_clean_exit(srv)

    def test_a_missing_scope_is_403_with_the_insufficient_scope_challenge(self):
        """Issue #15 item 5: the location asks for a scope (the documented ?scope=...): a
        token without it gets 403 and floodgate's insufficient_scope challenge, once, not
        nginx's HTML page; one with it passes."""
        srv = self.start(*FAST, "--trusted-proxies", "127.0.0.1")
        port = start_nginx(self, [srv.port], edits=(
            ("proxy_pass http://floodgate/v1/auth/verify;",
             "proxy_pass http://floodgate/v1/auth/verify?scope=write;"),))
        c = json.loads(subprocess.run(
            [BIN, "--data-dir", srv.data, *store_args(srv.data), "client", "create", "svc",
             "--scopes", "read write", "--json"], capture_output=True, text=True, timeout=30, check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}).stdout)
        basic = "Basic " + base64.b64encode(
            f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        F = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}

        def token(scope):
            st, _, b = http(port, "POST", "/oauth2/token",
                            f"grant_type=client_credentials&scope={scope}".encode(), F)
            self.assertEqual(st, 200, b)
            return json.loads(b)["access_token"]
        raw = raw_get(port, "/app/orders", token("read"))
        self.assertTrue(raw.startswith(b"HTTP/1.1 403"), raw)
        self.assertEqual(raw.lower().count(b"\r\nwww-authenticate:"), 1, raw)
        self.assertIn(b'error="insufficient_scope"', raw)
        self.assertIn(b'{"error":"insufficient_scope"}', raw)
        self.assertTrue(raw_get(port, "/app/orders", token("write")).startswith(b"HTTP/1.1 200"))
        self.assert_clean_exit(srv)

    def test_systemd_unit_verifies_and_is_hardened(self):
        """Issue #15 item 2: systemd-analyze verify passes on the shipped unit (its
        ExecStart pointed at the binary under test) and systemd-analyze security rates its
        exposure at most 2.5."""
        tmp = tempfile.mkdtemp(prefix="fg-unit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(ROOT, "deploy", "systemd", "floodgate.service")) as f:
            unit = f.read()
        self.assertEqual(unit.count("/usr/local/bin/floodgate"), 1)
        path = os.path.join(tmp, "floodgate.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/local/bin/floodgate", BIN))
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), r.stdout)
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", path],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for floodgate\.service: ([\d.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout[-2000:] + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.5, r.stdout)

    def test_shipped_ini_passes_check_config(self):
        r = subprocess.run([BIN, "check-config", os.path.join(ROOT, "deploy", "systemd",
                                                               "floodgate.ini")],
                           capture_output=True, text=True, timeout=30,
                           env={k: v for k, v in os.environ.items()
                                if not k.startswith("FLOODGATE_")})
        self.assertEqual(r.returncode, 0, r.stderr)


class TestReadme(ServerTest):
    """README's "Try it" runs as written (issue #15 item 9), the address and the data
    directory aside: each command's token or id reaches the next through jq."""

    def test_try_it_commands_run_as_written(self):
        if REDIS_MODE:
            self.skipTest("the README's commands use the embedded store (--data-dir only)")
        with open(os.path.join(ROOT, "README.md")) as f:
            text = f.read()
        m = re.search(r"## Try it\n.*?```sh\n(.*?)```", text, re.S)
        self.assertIsNotNone(m, "README has no Try it commands")
        srv = self.start(*FAST)
        script = (m.group(1).replace("localhost:8080", f"localhost:{srv.port}")
                  .replace("build/release/floodgate", BIN).replace("./data", srv.data))
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                           text=True, timeout=120,
                           env={k: v for k, v in os.environ.items()
                                if not k.startswith("FLOODGATE_")})
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        out = r.stdout
        self.assertEqual(out.count("X-Auth-Subject"), 2, out)  # both verifies: 200
        self.assertIn('"active":true', out)
        self.assertTrue(out.rstrip().endswith('{"active":false}'), out[-300:])
        self.assertEqual(re.findall(r"HTTP/1.1 (\d+)", out), ["200", "200"])
        self.assert_clean_exit(srv)


class TestBackup(ServerTest):
    """Issue #15 item 5: the documented backup (mdb_copy of a serving store, from Debian's
    lmdb-utils, plus the server key) restored into a new data directory has every user,
    client and live refresh token."""

    def test_backup_of_a_serving_store_restores_whole(self):
        if REDIS_MODE:
            self.skipTest("the embedded store's backup")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
        srv = self.start(*FAST)
        J = {"Content-Type": "application/json"}
        refresh = {}
        for name in ("ann", "bob", "cy"):
            body = json.dumps({"username": name, "password": PW}).encode()
            self.assertEqual(srv.request("POST", "/v1/users", body, J)[0], 201)
            st, _, b = srv.request("POST", "/v1/auth/login", body, J)
            self.assertEqual(st, 200)
            refresh[name] = json.loads(b)["refresh_token"]
        c = json.loads(subprocess.run(
            [BIN, "--data-dir", srv.data, "client", "create", "svc", "--json"],
            capture_output=True, text=True, timeout=30, check=True, env=env).stdout)
        # the backup, while it serves (as docs/deploy.md says)
        backup = os.path.join(srv.dir, "backup")
        os.mkdir(backup, 0o700)
        subprocess.run(["mdb_copy", srv.data, backup], check=True, timeout=60)
        shutil.copy2(os.path.join(srv.data, "secret.key"), backup)
        # one more rotation after the backup: that token is not in it
        st, _, b = srv.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": refresh["cy"]}).encode(), J)
        self.assertEqual(st, 200)
        self.assert_clean_exit(srv)
        # restored into a new data directory
        restored = self.start(*FAST, "--data-dir", backup)
        for name in ("ann", "bob"):
            st, _, b = restored.request("POST", "/v1/auth/refresh", json.dumps(
                {"refresh_token": refresh[name]}).encode(), J)
            self.assertEqual(st, 200, (name, b))
            body = json.dumps({"username": name, "password": PW}).encode()
            self.assertEqual(restored.request("POST", "/v1/auth/login", body, J)[0], 200)
        basic = "Basic " + base64.b64encode(
            f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        st, _, b = restored.request("POST", "/oauth2/token", b"grant_type=client_credentials",
                                    {"Authorization": basic, "Content-Type":
                                     "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, b)
        # cy's token as it was at the backup: still live there
        st, _, b = restored.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": refresh["cy"]}).encode(), J)
        self.assertEqual(st, 200, b)
        self.assert_clean_exit(restored)
