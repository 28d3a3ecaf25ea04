# SPDX-License-Identifier: MIT
"""deploy/: the shipped nginx configuration, run by a real nginx in front of a real
floodgate, protects an application with auth_request (200 with the identity for a good
token, 401 with floodgate's challenge otherwise, 401 after revocation) and proxies
floodgate's own API; the shipped INI file passes check-config."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from tests.integration.fgtest import BIN, ServerTest, parse_one, recv_all

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
PW = "correct horse battery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=b"", headers=None):
    h = {"Host": "localhost", "Connection": "close", "Content-Length": str(len(body))}
    h.update(headers or {})
    raw = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        return parse_one(recv_all(s, 10))


class TestDeploy(ServerTest):
    def nginx(self, fg_port):
        tmp = tempfile.mkdtemp(prefix="fg-nginx-")
        self.addCleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
        port, app = free_port(), free_port()
        with open(os.path.join(ROOT, "deploy", "nginx", "floodgate.conf")) as f:
            site = f.read()
        # the shipped file, with this test's addresses
        for old, new in (("127.0.0.1:8080", f"127.0.0.1:{fg_port}"),
                         ("127.0.0.1:9000", f"127.0.0.1:{app}"),
                         ("127.0.0.1:8000", f"127.0.0.1:{port}")):
            self.assertEqual(site.count(old), 1, old)
            site = site.replace(old, new)
        with open(os.path.join(tmp, "floodgate.conf"), "w") as f:
            f.write(site)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/floodgate.conf;
    server {{   # the application: says what the gateway told it
        listen 127.0.0.1:{app};
        location / {{
            default_type text/plain;
            return 200 "app: subject=$http_x_auth_subject client=$http_x_auth_client_id token=$http_authorization\\n";
        }}
    }}
}}
""")
        p = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)

        def stop():
            p.terminate()
            p.wait(10)
            p.stderr.close()
        self.addCleanup(stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            except OSError:
                if p.poll() is not None:
                    self.fail("nginx did not start: " + p.stderr.read().decode())
                time.sleep(0.05)
        self.fail("nginx did not listen")

    def test_auth_request_protects_the_app(self):
        srv = self.start(*FAST, "--trusted-proxies", "127.0.0.1")
        port = self.nginx(srv.port)
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
        # logout revokes the access token: the gateway refuses it at once
        st, _, _ = http(port, "POST", "/v1/auth/logout", json.dumps(
            {"refresh_token": tok["refresh_token"]}).encode(),
            dict(J, Authorization="Bearer " + tok["access_token"]))
        self.assertEqual(st, 200)
        st, _, _ = http(port, "GET", "/app/orders", headers={
            "Authorization": "Bearer " + tok["access_token"]})
        self.assertEqual(st, 401)
        self.assert_clean_exit(srv)

    def test_shipped_ini_passes_check_config(self):
        r = subprocess.run([BIN, "check-config", os.path.join(ROOT, "deploy", "systemd",
                                                               "floodgate.ini")],
                           capture_output=True, text=True, timeout=30,
                           env={k: v for k, v in os.environ.items()
                                if not k.startswith("FLOODGATE_")})
        self.assertEqual(r.returncode, 0, r.stderr)
