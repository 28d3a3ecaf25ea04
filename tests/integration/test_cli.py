# SPDX-License-Identifier: MIT
"""The CLI, command by command, in text and JSON, and every refusal a typing operator can
meet (issue #11 item 22: most of the CLI, now src/cli/cli.c, had never run). Each call is the real binary on a
data directory of its own (or, under make integ-redis, its own Redis prefix)."""

import json
import time
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.fgtest import BIN, store_args

FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
BCRYPT = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"


class TestCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fg-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_cli(self, *args, stdin=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
        return subprocess.run([BIN, "--data-dir", self.dir, *store_args(self.dir), *FAST, *args],
                              capture_output=True, text=True, timeout=60, env=env, input=stdin)

    def ok(self, *args, stdin=None):
        r = self.run_cli(*args, stdin=stdin)
        self.assertEqual(r.returncode, 0, (args, r.stderr))
        return r.stdout

    def refused(self, code, words, *args, stdin=None):
        r = self.run_cli(*args, stdin=stdin)
        self.assertEqual(r.returncode, code, (args, r.stdout, r.stderr))
        self.assertIn(words, r.stderr, args)

    def test_clients(self):
        c = json.loads(self.ok("client", "create", "web", "--grants",
                               "client_credentials,refresh_token", "--scopes", "read,write",
                               "--audiences", "api", "--access-ttl", "600", "--introspection",
                               "--json"))
        self.assertEqual((c["scope"], c["audience"], c["access_ttl"], c["introspection"]),
                         ("read write", "api", 600, True))
        text = self.ok("client", "create", "svc")
        self.assertIn("shown once", text)
        self.assertIn("client_id:", text)
        listed = json.loads(self.ok("client", "list", "--json"))
        self.assertEqual(sorted(x["name"] for x in listed), ["svc", "web"])
        self.assertIn(c["client_id"], self.ok("client", "list"))
        shown = self.ok("client", "show", c["client_id"])
        self.assertIn("access_ttl: 600s", shown)
        self.assertIn("introspection: any token", shown)
        self.assertNotIn("secret", json.loads(self.ok("client", "show", c["client_id"], "--json")))
        new = json.loads(self.ok("client", "rotate-secret", c["client_id"], "--json"))
        self.assertNotEqual(new["client_secret"], c["client_secret"])
        self.assertIn("shown once", self.ok("client", "rotate-secret", c["client_id"]))
        svc = json.loads(self.ok("client", "list", "--json"))
        svc = next(x["client_id"] for x in svc if x["name"] == "svc")
        self.assertIn("any token", self.ok("client", "introspection", svc, "on"))
        self.assertTrue(json.loads(self.ok("client", "show", svc, "--json"))["introspection"])
        self.assertEqual(json.loads(self.ok("client", "introspection", svc, "off", "--json")),
                         {"client_id": svc, "introspection": False})
        self.refused(2, "usage", "client", "introspection", svc, "maybe")
        self.refused(1, "not found", "client", "introspection", "nope", "on")
        self.ok("client", "delete", c["client_id"])
        self.refused(1, "not found", "client", "show", c["client_id"])
        self.refused(1, "not found", "client", "delete", c["client_id"])
        # issue #13: a browser's client; the rules of a registration, as the admin API's
        spa = json.loads(self.ok("client", "create", "spa", "--public", "--first-party",
                                 "--redirect-uris", "https://app.example/cb,http://[::1]/cb",
                                 "--post-logout-uris", "https://app.example/", "--json"))
        self.assertNotIn("client_secret", spa)
        self.assertEqual((spa["grants"], spa["web_origins"]),
                         (["refresh_token", "authorization_code"],
                          ["https://app.example", "http://[::1]"]))
        shown = self.ok("client", "show", spa["client_id"])
        self.assertIn("redirect_uri: https://app.example/cb", shown)
        self.assertIn("public (no secret; PKCE), first-party", shown)
        self.refused(1, "no secret", "client", "rotate-secret", spa["client_id"])
        self.refused(2, "loopback", "client", "create", "x", "--redirect-uris",
                     "http://app.example/cb")
        self.refused(2, "redirect URI", "client", "create", "x", "--grants",
                     "authorization_code")
        self.refused(2, "public client", "client", "create", "x", "--public")
        self.refused(1, "not found", "client", "rotate-secret", c["client_id"])
        # refusals, each with its reason
        self.refused(2, "grants are", "client", "create", "x", "--grants", "implicit")
        self.refused(2, "invalid characters", "client", "create", "x", "--scopes", "a\"b")
        self.refused(2, "too long", "client", "create", "x", "--audiences", "a" * 1100)
        self.refused(2, "10..86400", "client", "create", "x", "--access-ttl", "5")
        self.refused(2, "10..86400", "client", "create", "x", "--access-ttl", "12s")
        self.refused(2, "longer than", "client", "create", "n" * 200)
        self.refused(2, "usage", "client", "create")
        self.refused(2, "usage", "client", "create", "x", "--bogus")
        self.refused(2, "usage", "client", "show")
        self.refused(2, "usage", "client", "frobnicate", "x")
        self.refused(2, "usage", "client")

    def test_users(self):
        u = json.loads(self.ok("user", "add", "Ann", "--json", stdin="long enough pw\n"))
        self.assertEqual(u["username"], "ann")
        self.assertIn("created", self.ok("user", "add", "bob", stdin="long enough pw\n"))
        self.refused(1, "already exists", "user", "add", "ann", stdin="long enough pw\n")
        self.refused(2, "at least 8", "user", "add", "cy", stdin="short\n")
        self.refused(2, "usernames are", "user", "add", "bad name", stdin="long enough pw\n")
        self.assertIn("created", self.ok("user", "import", "dave", BCRYPT))
        # a profile for OpenID Connect's UserInfo (#13 item 8)
        self.ok("user", "add", "fay", "--email", "fay@example.org", "--name", "Fay \"F\" Doe",
                stdin="long enough pw\n")
        self.refused(2, "email", "user", "add", "gus", "--email", "nope", stdin="long enough pw\n")
        self.refused(2, "not a supported hash", "user", "import", "erin", "$1$md5$nope")
        self.refused(2, "usage", "user", "import", "erin")
        users = json.loads(self.ok("user", "list", "--json"))
        self.assertEqual({x["username"]: x["hash"] for x in users},
                         {"ann": "argon2id", "bob": "argon2id", "dave": "bcrypt", "fay": "argon2id"})
        fay = next(x for x in users if x["username"] == "fay")
        self.assertEqual((fay["email"], fay["name"]), ("fay@example.org", 'Fay "F" Doe'))
        self.assertIn("ann", self.ok("user", "list"))
        for verb in ("disable", "enable"):
            self.assertIn(f"{verb} done", self.ok("user", verb, "ann"))
        self.ok("user", "disable", "bob")
        self.assertIn("(disabled)", self.ok("user", "list"))
        self.assertEqual(json.loads(self.ok("user", "enable", "bob", "--json")),
                         {"username": "bob", "enable": True})
        self.assertIn("every session", self.ok("user", "passwd", "ann",
                                               stdin="another long pw\n"))
        self.ok("user", "delete", "dave")
        for verb in ("disable", "enable", "delete"):
            self.refused(1, "not found", "user", verb, "nobody")
        self.refused(1, "not found", "user", "passwd", "nobody", stdin="long enough pw\n")
        self.refused(2, "usage", "user", "rename", "ann")
        self.refused(2, "usage", "user", "add")
        self.refused(2, "usage", "user")

    def test_keys_and_events(self):
        keys = json.loads(self.ok("key", "list", "--json"))
        self.assertEqual(sorted((k["alg"], k["signing"]) for k in keys),
                         [("ES256", True), ("EdDSA", True), ("RS256", True)])
        r = json.loads(self.ok("--key-publish-ahead", "0s", "key", "rotate", "--json"))
        listed = self.ok("key", "list")
        for k in r["keys"]:
            self.assertIn(k["kid"], listed)
        keys = json.loads(self.ok("key", "list", "--json"))
        self.assertEqual(len(keys), 6)
        time.sleep(1.1)  # (the new keys sign from the next second)
        signers = {k["kid"] for k in json.loads(self.ok("key", "list", "--json")) if k["signing"]}
        self.assertEqual(signers, {k["kid"] for k in r["keys"]})
        out = self.ok("key", "rotate")
        self.assertEqual(out.count("signs from"), 3, out)
        self.assertEqual(json.loads(self.ok("key", "reseal", "--json")), {"resealed": 0})
        self.refused(2, "usage", "key", "burn")
        self.refused(2, "usage", "key")
        ev = json.loads(self.ok("event", "schedule", "--at", "+1h", "--expect", "10x",
                                "--duration", "2h", "--name", "launch", "--json"))
        self.assertIn(ev["id"], self.ok("event", "list"))
        self.assertEqual(len(json.loads(self.ok("event", "list", "--json"))), 1)
        self.assertIn("cancelled", self.ok("event", "cancel", ev["id"]))
        self.refused(1, "not found", "event", "cancel", ev["id"])
        self.refused(2, "", "event", "schedule", "--at", "yesterday", "--expect", "10")
        self.refused(2, "", "event", "schedule", "--at", "+1h", "--expect", "0")
        self.refused(2, "usage", "event", "schedule", "--at")
        self.refused(2, "usage", "event", "cancel")
        self.refused(2, "usage", "event", "move")
        self.refused(2, "usage", "event")
