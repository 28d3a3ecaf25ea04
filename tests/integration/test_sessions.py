# SPDX-License-Identifier: MIT
"""Sessions end when the account does (issue #11, item 1): disabling, deleting or setting a
new password, through the admin API or the CLI, makes every refresh token the user holds
useless at once, grace retries included; enabling the account again does not bring them back;
logins after the change work. Runs on LMDB and (make integ-redis) on Redis."""

import json
import os
import re
import subprocess
import time

from tests.integration.fgtest import BIN, ServerTest, admin_call, store_args

TOKEN = "admin-" + "0123456789abcdef" * 3
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
J = {"Content-Type": "application/json"}
PW, PW2 = "correct horse battery", "another long password"


class TestSessionsEnd(ServerTest):
    def setUp(self):
        # a grace window, so the test also shows that a retry within it is refused
        self.srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0", "--refresh-grace", "10s",
                              env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        self.aport = self.srv.admin_port()

    def admin(self, method, path, obj=None):
        return admin_call(self.aport, TOKEN, method, path, obj)

    def post(self, path, obj):
        st, _, b = self.srv.request("POST", path, json.dumps(obj).encode(), J)
        return st, (json.loads(b) if b else None)

    def login(self, user="ann", pw=PW):
        st, b = self.post("/v1/auth/login", {"username": user, "password": pw})
        self.assertEqual(st, 200, b)
        return b

    def refresh(self, rt):
        return self.post("/v1/auth/refresh", {"refresh_token": rt})

    def cli(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
        return subprocess.run([BIN, "--data-dir", self.srv.data, *store_args(self.srv.data),
                               *FAST, *args], capture_output=True, text=True, timeout=60, env=env)

    def sessions(self, user="ann", pw=PW):
        """Two sessions of the user: one fresh, one rotated once (with its spent parent)."""
        a = self.login(user, pw)["refresh_token"]
        b0 = self.login(user, pw)["refresh_token"]
        st, b = self.refresh(b0)
        self.assertEqual(st, 200, b)
        return [a, b["refresh_token"], b0]

    def assert_all_refused(self, tokens):
        for rt in tokens:
            st, b = self.refresh(rt)
            self.assertEqual((st, b["error"]), (401, "invalid_grant"), rt)

    def test_admin_disable_ends_sessions_and_enable_does_not_revive(self):
        self.assertEqual(self.admin("POST", "/admin/users", {"username": "ann", "password": PW})[0],
                         201)
        toks = self.sessions()
        self.assertEqual(self.admin("POST", "/admin/users/ann/disable")[0], 200)
        # the live tokens and the spent one (within its grace window) are all refused
        self.assert_all_refused(toks)
        self.assertEqual(self.admin("POST", "/admin/users/ann/enable")[0], 200)
        self.assert_all_refused(toks)
        # a new login after enabling works and rotates
        st, b = self.refresh(self.login()["refresh_token"])
        self.assertEqual(st, 200, b)
        self.assert_clean_exit(self.srv)

    def test_admin_password_change_ends_sessions_new_login_works(self):
        self.assertEqual(self.admin("POST", "/admin/users", {"username": "bob", "password": PW})[0],
                         201)
        toks = self.sessions("bob")
        self.assertEqual(self.admin("PUT", "/admin/users/bob/password", {"password": PW2})[0], 200)
        self.assert_all_refused(toks)
        # at once, in the same second: the new password's session is not caught by the change
        st, b = self.refresh(self.login("bob", PW2)["refresh_token"])
        self.assertEqual(st, 200, b)
        st, b = self.refresh(b["refresh_token"])
        self.assertEqual(st, 200, b)
        self.assert_clean_exit(self.srv)

    def test_admin_delete_ends_sessions_even_for_a_new_user_of_that_name(self):
        self.assertEqual(self.admin("POST", "/admin/users", {"username": "cy", "password": PW})[0],
                         201)
        toks = self.sessions("cy")
        self.assertEqual(self.admin("DELETE", "/admin/users/cy")[0], 200)
        self.assert_all_refused(toks)
        # the name taken again is another user (another subject): the old tokens stay dead
        self.assertEqual(self.admin("POST", "/admin/users", {"username": "cy", "password": PW})[0],
                         201)
        self.assert_all_refused(toks)
        st, b = self.refresh(self.login("cy")["refresh_token"])
        self.assertEqual(st, 200, b)
        self.assert_clean_exit(self.srv)

    def test_cli_disable_passwd_and_delete_end_sessions(self):
        self.assertEqual(self.admin("POST", "/admin/users", {"username": "dee", "password": PW})[0],
                         201)
        for verb in ("disable", "passwd", "delete"):
            if verb == "passwd":
                r = self.cli("user", "enable", "dee")
                self.assertEqual(r.returncode, 0, r.stderr)
            toks = self.sessions("dee")
            if verb == "passwd":
                r = subprocess.run([BIN, "--data-dir", self.srv.data, *store_args(self.srv.data),
                                    *FAST, "user", "passwd", "dee"], input=PW + "\n",
                                   capture_output=True, text=True, timeout=60,
                                   env={k: v for k, v in os.environ.items()
                                        if not k.startswith("FLOODGATE_")})
            else:
                r = self.cli("user", verb, "dee")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("every session", r.stdout)
            self.assert_all_refused(toks)
        self.assert_clean_exit(self.srv)

    def test_other_users_sessions_are_untouched(self):
        for u in ("eve", "fay"):
            self.assertEqual(self.admin("POST", "/admin/users", {"username": u, "password": PW})[0],
                             201)
        keep = self.login("fay")["refresh_token"]
        self.sessions("eve")
        self.assertEqual(self.admin("POST", "/admin/users/eve/disable")[0], 200)
        st, b = self.refresh(keep)
        self.assertEqual(st, 200, b)
        self.assert_clean_exit(self.srv)
