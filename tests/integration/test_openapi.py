# SPDX-License-Identifier: MIT
"""The OpenAPI description (issue #15 item 4): the admin listener serves docs/openapi.json
(made from docs/openapi.yaml, which make check validates as OpenAPI 3.1); every route the
routers have for the JSON login API and the admin API is in it with each of its methods,
and nothing else is; and every operation in it, asked of a real server, answers with a
status it documents (with and without the admin token)."""

import json
import os
import re
import socket
import unittest

from tests.integration.fgtest import REDIS_MODE, ROOT, ServerTest, parse_one, recv_all

TOKEN = "admin-" + "0123456789abcdef" * 3
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
METHODS = ("get", "put", "post", "delete", "options")


def router_routes():
    """(method, pattern) of the API's and the admin API's route tables in src/api/api.c:
    the JSON login API (/v1/*), health, and the admin API; not the OAuth and OpenID Connect
    endpoints (their RFCs describe them) nor the test build's /test/*."""
    with open(os.path.join(ROOT, "src", "api", "api.c")) as f:
        src = f.read()
    out = set()
    for m in re.finditer(r'\{((?:HTTP_M\(HTTP_[A-Z]+\)\s*\|?\s*)+),\s*"([^"]+)"', src):
        path = m.group(2)
        if not (path.startswith(("/v1/", "/admin/")) or path in ("/healthz", "/readyz")):
            continue
        for meth in re.findall(r"HTTP_M\(HTTP_([A-Z]+)\)", m.group(1)):
            out.add((meth.lower(), path))
    return out


def ask(port, method, path, body=None, token=None, extra=None):
    data = json.dumps(body).encode() if body is not None else b""
    h = {"Host": "x", "Connection": "close", "Content-Length": str(len(data))}
    if body is not None:
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(extra or {})
    raw = f"{method.upper()} {path} HTTP/1.1\r\n".encode() + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + data
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        if path == "/admin/stream":  # the head is enough: the stream goes on
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            return int(head.split(b" ", 2)[1])
        return parse_one(recv_all(s, 10))[0]


@unittest.skipIf(REDIS_MODE, "the routes do not depend on the store: the LMDB run has it")
class OpenApiTest(ServerTest):
    def setUp(self):
        with open(os.path.join(ROOT, "docs", "openapi.json")) as f:
            self.doc = json.load(f)
        self.srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0",
                              "--cors-origins", "https://app.example",
                              env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        self.aport = self.srv.admin_port()

    def operations(self):
        for path, item in self.doc["paths"].items():
            for meth in METHODS:
                if meth in item:
                    yield meth, path, item[meth]

    def test_the_description_is_served_and_matches_the_routers(self):
        st, h, body = parse_one(self.raw_get(self.aport, "/admin/openapi.json"))
        self.assertEqual((st, h["content-type"]), (200, "application/json"))
        self.assertEqual(json.loads(body), self.doc)
        self.assertEqual(self.doc["openapi"], "3.1.0")
        documented = {(m, p) for m, p, _ in self.operations()}
        routes = router_routes()
        self.assertGreater(len(routes), 30)
        self.assertEqual(routes - documented, set(), "routes the description leaves out")
        self.assertEqual(documented - routes, set(), "operations no route answers")

    def raw_get(self, port, path):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return recv_all(s, 10)

    def test_every_operation_answers_a_status_it_documents(self):
        # something to name: a user, a client, an event
        st = ask(self.aport, "post", "/admin/users", {"username": "ann",
                                                      "password": "correct horse battery"},
                 TOKEN)
        self.assertEqual(st, 201)
        seen, wrong, deletes = [], [], []
        for meth, path, op in self.operations():
            public = not path.startswith("/admin/")
            port = self.srv.port if public else self.aport
            url = path.replace("{name}", "ann").replace("{id}", "nothing-here")
            url = url.replace("/admin/console/nothing-here", "/admin/console/console.js")
            if url == "/admin/console/ann":
                url = "/admin/console/console.css"
            extra = None
            if meth == "options":
                extra = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
            body = {} if "requestBody" in op else None
            needs_token = op.get("security", self.doc["security"]) == self.doc["security"]
            if needs_token:  # refused without the token, as documented
                st = ask(port, meth, url, body, None, extra)
                self.assertEqual(st, 401, f"{meth} {path} without the admin token")
                self.assertIn("401", op["responses"], f"{meth} {path}")
            if meth == "delete":
                deletes.append((port, meth, url, body, op, path))
                continue
            st = ask(port, meth, url, body, TOKEN if needs_token else None, extra)
            if str(st) not in op["responses"]:
                wrong.append(f"{meth} {path} answered {st}")
            seen.append(st)
        for port, meth, url, body, op, path in deletes:  # (last: they take things away)
            st = ask(port, meth, url, body, TOKEN, None)
            if str(st) not in op["responses"]:
                wrong.append(f"{meth} {path} answered {st}")
            seen.append(st)
        self.assertEqual(wrong, [], "statuses the description does not document")
        self.assertGreater(seen.count(200), 10)  # (not only refusals)
        self.assert_clean_exit(self.srv)
