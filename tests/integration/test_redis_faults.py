# SPDX-License-Identifier: MIT
"""A Redis that answers wrongly, late, or not at all (issue #11, items 3 and 22): floodgate
on a real redis-server behind a fault-injecting proxy (redisfault.py). Whatever Redis says
that floodgate did not expect is a 503, never a pass and never a "wrong password"; a request
answered with an error changed nothing, even when its command reaches Redis late; everything
works again, unrestarted, once Redis answers properly."""

import json
import os
import tempfile
import time
import unittest
import shutil
import struct

from tests.integration.fgtest import (REDIS_MODE, Redis, Server, ServerTest, admin_call,
                                      wait_for)
from tests.integration.redisfault import (ERROR, NIL, FaultProxy, array, bulk, command,
                                          lua)

FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
PW = "correct horse battery"
J = {"Content-Type": "application/json"}
TIMEOUT_S = 0.3  # --redis-timeout: a command not answered by then is a 503

FAMILY = bytes.fromhex("0123456789abcdef0123456789abcdef")


def record(family=FAMILY, sub="someone", client="first-party", version=2, tail=b""):
    """A refresh record's bytes, as the store writes them (store_rec.c): version, state,
    family, successor, issued, expiry, idle expiry, rotated at, generation, then subject,
    client and scope after their 16-bit lengths."""
    rec = struct.pack("<BB16s32sqqqqq", version, 1, family, bytes(32), 1, 4102444800,
                      4102444800, 0, 0)
    for s in (sub.encode(), client.encode(), b""):
        rec += struct.pack("<H", len(s)) + s
    return rec + tail


def rotated(code=1, successor=b"", rec=None):
    """A rotation's answer as the script gives it: the result, the successor's digest (for
    the grace window), then the record."""
    return array(b":%d\r\n" % code, bulk(successor), bulk(record() if rec is None else rec))


@unittest.skipIf(REDIS_MODE, "starts its own Redis: the same test in both runs")
class RedisFaultTest(ServerTest):
    def setUp(self):
        self.redis = Redis(self)
        self.proxy = FaultProxy(self, self.redis.port)
        self.tmp = tempfile.mkdtemp(prefix="fg-faults-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.srv = self.start(*FAST, "--store", self.proxy.url,
                              "--redis-timeout", f"{int(TIMEOUT_S * 1000)}ms",
                              "--secret-key-file", os.path.join(self.tmp, "k"))
        st, _, b = self.post("/v1/users", {"username": "ann", "password": PW})
        self.assertEqual(st, 201, b)

    def post(self, path, obj, headers=None):
        return self.srv.request("POST", path, json.dumps(obj).encode(), {**J, **(headers or {})})

    def login(self, pw=PW):
        return self.post("/v1/auth/login", {"username": "ann", "password": pw})

    def tokens(self):
        st, _, b = self.login()
        self.assertEqual(st, 200, b)
        return json.loads(b)

    def refresh(self, rt):
        return self.post("/v1/auth/refresh", {"refresh_token": rt})

    def assert_unavailable(self, answer):
        st, hdr, b = answer
        self.assertEqual(st, 503, b)
        self.assertEqual(json.loads(b)["error"], "temporarily_unavailable", b)
        # every 503 says when to come back, and is not cached (the one error map)
        self.assertEqual(hdr.get("retry-after"), "1", hdr)
        self.assertEqual(hdr.get("cache-control"), "no-store", hdr)

    def test_a_rotation_answered_wrongly_changes_nothing(self):
        answers = {
            "an error": ERROR,
            "an integer": b":1\r\n",
            "an empty array": b"*0\r\n",
            "no answer at all": NIL,
            "an unknown result": array(b":99\r\n"),
            "a result of no result": array(b":0\r\n"),
            "rotated, too few fields": array(b":1\r\n", bulk("")),
            "rotated, a record cut short": rotated(rec=record()[:-1]),
            "rotated, bytes after the record": rotated(rec=record(tail=b"x")),
            "rotated, a record of an unknown version": rotated(rec=record(version=9)),
            "rotated, a family cut short": rotated(rec=record(family=b"abcd")[:20]),
            "rotated, a subject too long to be ours": rotated(rec=record(sub="x" * 5000)),
            "rotated, a client id too long": rotated(rec=record(client="c" * 5000)),
            "rotated, the record not a string": array(b":1\r\n", bulk(""), b":1\r\n"),
            "grace, a successor too long": rotated(code=2, successor=b"z" * 64),
            "grace, no successor": rotated(code=2, successor=b""),
        }
        rt = self.tokens()["refresh_token"]
        for what, reply in answers.items():
            with self.subTest(what):
                self.proxy.rule(lua("rotate"), reply)
                self.assert_unavailable(self.refresh(rt))
                # the script never ran: the same token still rotates, once
                st, _, b = self.refresh(rt)
                self.assertEqual(st, 200, b)
                rt = json.loads(b)["refresh_token"]
        self.assertIn("redis store: command refused", self.srv.stderr())
        self.assert_clean_exit(self.srv)

    def test_a_rotation_that_reaches_redis_late_changes_nothing(self):
        # The script carries a deadline of half the timeout: one that runs after it writes
        # nothing, so the 503 the client got (or is about to get) is the truth.
        rt = self.tokens()["refresh_token"]
        for delay in (TIMEOUT_S * 0.7, TIMEOUT_S * 1.5):
            with self.subTest(delay=delay):
                self.proxy.rule(lua("rotate"), ("delay", delay))
                self.assert_unavailable(self.refresh(rt))
                time.sleep(delay + 0.2)  # it has reached Redis by now
                st, _, b = self.refresh(rt)
                self.assertEqual(st, 200, b)  # and was refused there: no reuse, no new family
                rt = json.loads(b)["refresh_token"]
        self.assert_clean_exit(self.srv)

    def test_lost_connections_and_a_script_cache_that_stays_empty(self):
        rt = self.tokens()["refresh_token"]
        for what, action, times in (("dropped", "close", 1),
                                    ("NOSCRIPT after loading it again",
                                     b"-NOSCRIPT No matching script.\r\n", 2)):
            with self.subTest(what):
                self.proxy.rule(lua("rotate"), action, times)
                self.assert_unavailable(self.refresh(rt))
                # reconnected (and the script loaded) without a restart; the command never
                # ran, so the token is still good
                answers = []

                def rotated_now():
                    nonlocal rt
                    st, _, b = self.refresh(rt)
                    answers.append(st)
                    if st == 200:
                        rt = json.loads(b)["refresh_token"]
                    return st == 200
                self.assertTrue(wait_for(rotated_now, 10), answers)
                self.assertEqual(set(answers) - {503, 200}, set(), answers)
        self.assert_clean_exit(self.srv)

    def test_redis_unreachable_then_back(self):
        tok = self.tokens()
        self.proxy.pause()  # connections cut, and refused from now on
        self.assertTrue(wait_for(lambda: self.srv.request("GET", "/readyz")[0] == 503, 10))
        self.assert_unavailable(self.login())
        self.assert_unavailable(self.post("/v1/users", {"username": "bob", "password": PW}))
        self.assert_unavailable(self.refresh(tok["refresh_token"]))
        self.proxy.resume()
        self.assertTrue(wait_for(lambda: self.srv.request("GET", "/readyz")[0] == 200, 15))
        self.assertTrue(wait_for(lambda: self.login()[0] == 200, 10))
        st, _, b = self.refresh(tok["refresh_token"])
        self.assertEqual(st, 200, b)
        st, _, b = self.post("/v1/users", {"username": "bob", "password": PW})
        self.assertEqual(st, 201, b)
        self.assert_clean_exit(self.srv)

    def test_failed_reads_are_503_never_a_wrong_password(self):
        for what, reply in (("an error", ERROR), ("an integer", b":7\r\n"),
                            ("an array", array(bulk("x")))):
            with self.subTest(what):
                self.proxy.rule(command("GET", ":u:ann"), reply)
                self.assert_unavailable(self.login())
                self.assertEqual(self.login()[0], 200)
        self.proxy.rule(lua("gbegin"), ERROR, 2)  # the shared login guard cannot be asked
        self.assert_unavailable(self.login())
        self.assert_unavailable(self.login("wrong password"))
        self.assertEqual(self.login()[0], 200)  # nothing was counted against ann
        self.assert_clean_exit(self.srv)

    def test_failed_writes_change_nothing(self):
        # a new user: refused, and the name is still free
        self.proxy.rule(lua("put"), ERROR)
        self.assert_unavailable(self.post("/v1/users", {"username": "bob", "password": PW}))
        st, _, b = self.post("/v1/users", {"username": "bob", "password": PW})
        self.assertEqual(st, 201, b)
        # a login whose refresh family cannot be stored gives no tokens
        self.proxy.rule(lua("issue"), ERROR)
        self.assert_unavailable(self.login())
        tok = self.tokens()
        auth = {"Authorization": "Bearer " + tok["access_token"]}
        # a revocation that was not stored is not reported done, and revoked nothing
        self.proxy.rule(lua("famrevoke"), ERROR)
        self.assert_unavailable(self.post("/v1/auth/logout",
                                          {"refresh_token": tok["refresh_token"]}, auth))
        st, _, b = self.refresh(tok["refresh_token"])
        self.assertEqual(st, 200, b)
        tok = json.loads(b)
        auth = {"Authorization": "Bearer " + tok["access_token"]}
        self.proxy.rule(lua("jti"), ERROR)
        self.assert_unavailable(self.post("/v1/auth/logout",
                                          {"refresh_token": tok["refresh_token"]}, auth))
        st, _, b = self.srv.request("GET", "/v1/auth/verify", None, auth)
        self.assertEqual(st, 200, b)
        self.assert_clean_exit(self.srv)


@unittest.skipIf(REDIS_MODE, "starts its own Redis: the same test in both runs")
class RedisFaultAdminTest(ServerTest):
    TOKEN = "admin-" + "0123456789abcdef" * 3

    def setUp(self):
        self.redis = Redis(self)
        self.proxy = FaultProxy(self, self.redis.port)

    def serve(self, *args):
        srv = self.start(*FAST, "--store", self.proxy.url, "--admin-listen", "127.0.0.1:0",
                         *args, env={"FLOODGATE_ADMIN_TOKEN": self.TOKEN})
        return srv, srv.admin_port()

    def test_lists_read_wrongly_are_503_never_short(self):
        srv, aport = self.serve()
        for n in ("ann", "bob"):
            self.assertEqual(srv.request("POST", "/v1/users", json.dumps(
                {"username": n, "password": PW}).encode(), J)[0], 201)
        users = lambda: admin_call(aport, self.TOKEN, "GET", "/admin/users")
        self.assertEqual(sorted(u["username"] for u in users()[1]), ["ann", "bob"])
        for what, rule, reply in (("the index refused", command("SMEMBERS"), ERROR),
                                  ("the index not a set", command("SMEMBERS"), b":2\r\n"),
                                  ("a member refused", command("GET", ":u:"), ERROR)):
            with self.subTest(what):
                self.proxy.rule(rule, reply)
                st, body = users()
                self.assertEqual(st, 503, body)
                self.assertEqual(len(users()[1]), 2)
        # what is not a name in the index is passed over; the rest is listed
        self.proxy.rule(command("SMEMBERS"), array(b":5\r\n", bulk("ann")))
        self.assertEqual([u["username"] for u in users()[1]], ["ann"])
        self.assert_clean_exit(srv)

    def test_a_reaction_to_reuse_that_cannot_scan_says_so(self):
        srv, _ = self.serve("--refresh-grace", "0s", "--reuse-revokes-all-sessions", "true")
        post = lambda path, obj: srv.request("POST", path, json.dumps(obj).encode(), J)
        self.assertEqual(post("/v1/users", {"username": "di", "password": PW})[0], 201)
        login = lambda: json.loads(post("/v1/auth/login", {"username": "di", "password": PW})[2])
        a, b = login()["refresh_token"], login()["refresh_token"]
        self.assertEqual(post("/v1/auth/refresh", {"refresh_token": a})[0], 200)
        self.proxy.rule(command("SCAN"), ERROR)
        self.assertEqual(post("/v1/auth/refresh", {"refresh_token": a})[0], 401)  # reuse
        self.assertTrue(wait_for(lambda: "revoking every session after a token reuse failed"
                                 in srv.stderr(), 10), srv.stderr()[-2000:])
        self.assertNotIn("every session revoked after a token reuse", srv.stderr())
        # keys that are not refresh tokens of ours are passed over by the scan
        self.redis_cli("SET", "fg:rt:not-hex", "x")
        c = login()["refresh_token"]
        self.assertEqual(post("/v1/auth/refresh", {"refresh_token": c})[0], 200)
        self.assertEqual(post("/v1/auth/refresh", {"refresh_token": c})[0], 401)
        self.assertTrue(wait_for(lambda: "every session revoked after a token reuse"
                                 in srv.stderr(), 10))
        self.assertEqual(post("/v1/auth/refresh", {"refresh_token": b})[0], 401)
        self.assert_clean_exit(srv)

    def redis_cli(self, *args):
        import subprocess
        subprocess.run(["redis-cli", "-p", str(self.redis.port), *args], check=True,
                       capture_output=True, timeout=10)


@unittest.skipIf(REDIS_MODE, "starts its own Redis: the same test in both runs")
class RedisFaultAtStartTest(unittest.TestCase):
    def test_start_refused_when_redis_answers_wrongly(self):
        redis = Redis(self)
        proxy = FaultProxy(self, redis.port)
        tmp = tempfile.mkdtemp(prefix="fg-faults-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for what, rule, reply, words in (
                ("the script not loaded", command("SCRIPT"), ERROR, "redis"),
                ("a script digest of the wrong length", command("SCRIPT"), bulk("abc"), "redis"),
                ("the connection dropped", command("SCRIPT"), "close", "redis"),
                ("the issuer not checked", command("SET", ":pin:issuer"), ERROR,
                 "cannot reach the store to check the issuer"),
                ("another issuer pinned", command("SET", ":pin:issuer"), b":1\r\n",
                 "set the same issuer on every instance")):
            with self.subTest(what):
                proxy.clear()
                proxy.rule(rule, reply, times=100)
                with self.assertRaises(RuntimeError) as e:
                    srv = Server(*FAST, "--store", proxy.url, "--secret-key-file",
                                 os.path.join(tmp, "k"))
                    srv.cleanup()
                self.assertIn(words, str(e.exception))
                self.assertNotIn("AddressSanitizer", str(e.exception))


@unittest.skipIf(REDIS_MODE, "starts its own Redis: the same test in both runs")
class EventStreamFaultTest(ServerTest):
    """The Redis Streams sink (events_redis) when Redis refuses an XADD, drops the
    connection with XADDs in flight, or cannot be reached: each lost event is counted as
    dropped, requests never wait, and delivery resumes by itself (into the database the URL
    names)."""

    def test_refused_lost_and_unreachable(self):
        import subprocess
        redis = Redis(self)
        proxy = FaultProxy(self, redis.port)
        srv = self.start(*FAST, "--events-redis", proxy.url + "/2",
                         "--events-redis-stream", "fg:events", "--ratelimit-register-ip", "off")

        def reg(name):
            return srv.request("POST", "/v1/users", json.dumps(
                {"username": name, "password": PW}).encode(), J)[0]

        def stream():
            r = subprocess.run(["redis-cli", "-p", str(redis.port), "-n", "2", "--raw",
                                "XLEN", "fg:events"], capture_output=True, text=True,
                               timeout=10)
            return int(r.stdout.strip() or 0)

        def counted(result):
            from tests.integration.fgtest import metric_value, metrics
            return metric_value(metrics(srv), "floodgate_event_stream_total",
                                f'result="{result}"')

        self.assertEqual(reg("ann"), 201)
        self.assertTrue(wait_for(lambda: stream() == 1, 10))
        proxy.rule(command("XADD"), ERROR)  # refused
        self.assertEqual(reg("bob"), 201)
        self.assertTrue(wait_for(lambda: counted("dropped") == 1, 10))
        self.assertIn("redis stream sink: XADD refused", srv.stderr())
        proxy.rule(command("XADD"), "close")  # the connection goes, the event with it
        self.assertEqual(reg("cy"), 201)
        self.assertTrue(wait_for(lambda: counted("dropped") == 2, 10))
        proxy.pause()  # and cannot come back for a while
        t0 = time.monotonic()
        for n in ("dee", "eve", "fay"):
            self.assertEqual(reg(n), 201)
        self.assertLess(time.monotonic() - t0, 5)  # nobody waited for the sink
        time.sleep(0.5)
        proxy.resume()
        # what was queued during the outage arrives once it is back
        self.assertTrue(wait_for(lambda: stream() == 4, 15), (stream(), srv.stderr()[-3000:]))
        self.assertEqual(reg("gus"), 201)
        self.assertTrue(wait_for(lambda: stream() == 5, 10), stream())
        self.assertEqual(counted("dropped"), 2)
        self.assert_clean_exit(srv)
