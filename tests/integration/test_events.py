# SPDX-License-Identifier: MIT
"""Auth events: the audit log gets every event where it happens, with the documented shape
and no secrets; webhooks are signed, retried after 500s and timeouts with the same event
id, and dead-lettered after the last retry; pseudonymisation and sampling work; and nothing
blocks a request when every sink is down."""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import threading
import time

from tests.integration.fgtest import ServerTest, admin_call, metric_value, metrics, wait_for

FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
TOKEN = "events-" + "0123456789abcdef" * 3
SECRET = "whsec-0123456789abcdef"
J = {"Content-Type": "application/json"}
PW = "correct horse battery"


class Receiver:
    """A local webhook receiver: records (headers, body, n); answers by `plan(id, n)`, n being
    the attempt number for that delivery id (1-based): a status, or 'sleep'."""

    def __init__(self, plan):
        self.got = []
        self.attempts = {}
        self.lock = threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                eid = self.headers.get("Floodgate-Delivery-Id", "")
                with rec.lock:
                    rec.attempts[eid] = rec.attempts.get(eid, 0) + 1
                    n = rec.attempts[eid]
                    rec.got.append((dict(self.headers), body, n))
                what = plan(eid, n)
                if what == "sleep":
                    time.sleep(1.5)
                    what = 200
                self.send_response(what)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def events(self):
        with self.lock:
            return list(self.got)


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class TestEvents(ServerTest):
    def admin_port(self, srv):
        return srv.admin_port()

    def admin(self, aport, method, path, obj=None):
        return admin_call(aport, TOKEN, method, path, obj)

    def login(self, srv, pw, user="ann"):
        st, _, b = srv.request("POST", "/v1/auth/login",
                               json.dumps({"username": user, "password": pw}).encode(), J)
        return st, (json.loads(b) if b else None)

    def test_audit_log_has_every_event_and_no_secret(self):
        audit = os.path.join(self.make_tmp(), "audit.jsonl")
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0", "--lockout-pair-attempts",
                         "3", "--lockout-delay", "0s", "--refresh-grace", "0s", "--audit-log", audit,
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = self.admin_port(srv)
        secrets = [PW, "wrong password!"]
        self.assertEqual(srv.request("POST", "/v1/users", json.dumps(
            {"username": "ann", "password": PW}).encode(), J)[0], 201)
        st, tok = self.login(srv, PW)
        self.assertEqual(st, 200)
        secrets += [tok["refresh_token"]]
        st, _, b = srv.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": tok["refresh_token"]}).encode(), J)
        self.assertEqual(st, 200)
        secrets += [json.loads(b)["refresh_token"]]
        # the first token again (no grace window here): reuse
        st, _, _ = srv.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": tok["refresh_token"]}).encode(), J)
        for _ in range(3):
            self.login(srv, "wrong password!")  # the third locks the pair
        self.assertEqual(self.admin(aport, "POST", "/admin/users/ann/unlock")[0], 200)
        st, c = self.admin(aport, "POST", "/admin/clients", {"name": "svc"})
        self.assertEqual(st, 201)
        secrets.append(c["client_secret"])
        basic = base64.b64encode(f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        st, _, b = srv.request("POST", "/oauth2/token", b"grant_type=client_credentials",
                               {"Authorization": "Basic " + basic,
                                "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200)
        access = json.loads(b)["access_token"]
        st, _, _ = srv.request("POST", "/oauth2/revoke", f"token={access}".encode(),
                               {"Authorization": "Basic " + basic,
                                "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200)
        self.assertEqual(self.admin(aport, "POST", "/admin/keys/rotate")[0], 200)
        self.assertEqual(self.admin(aport, "PUT", "/admin/policy", {"mode": "surge"})[0], 200)
        self.assertEqual(self.admin(aport, "POST", "/admin/users/ann/disable")[0], 200)
        self.assertEqual(self.admin(aport, "POST", "/admin/users/ann/enable")[0], 200)
        want = {"user.registered", "login.succeeded", "login.failed", "account.locked",
                "account.unlocked", "token.issued", "token.refreshed", "token.reuse_detected",
                "token.revoked", "client.created", "key.rotated", "policy.mode_changed",
                "user.sessions_revoked"}
        evs = wait_for(lambda: (lambda e: e if want <= {x["type"] for x in e} else None)(
            read_jsonl(audit)))
        self.assertIsNotNone(evs, [x["type"] for x in read_jsonl(audit)])
        ids = [e["id"] for e in evs]
        self.assertEqual(len(ids), len(set(ids)))
        for e in evs:
            self.assertEqual(set(e), {"id", "type", "time", "source", "data"})
            # which instance: HOSTNAME:PORT of its listener unless events_source names it
            self.assertRegex(e["source"], r"^[A-Za-z0-9.-]+:%d$" % srv.port)
            self.assertRegex(e["id"], r"^[A-Za-z0-9_-]{16}$")
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        with open(audit) as f:
            text = f.read()
        for s in secrets:
            self.assertNotIn(s, text)
        by = {e["type"]: e["data"] for e in evs}
        self.assertEqual(by["account.locked"]["pair_locked"], True)
        self.assertEqual(by["login.failed"]["reason"], "password")
        self.assertEqual(by["token.reuse_detected"]["action"], "family_revoked")
        self.assertEqual(by["policy.mode_changed"]["to"], "surge")
        self.assertEqual(by["user.sessions_revoked"]["reason"], "disabled")
        m = metrics(srv)
        self.assertGreaterEqual(metric_value(m, "floodgate_events_total",
                                             'type="login.failed",result="queued"'), 3)
        # SIGHUP reopens the audit log: rotate it away, the next events go to a new file
        os.rename(audit, audit + ".1")
        srv.proc.send_signal(1)
        time.sleep(0.3)
        self.login(srv, PW)
        self.assertTrue(wait_for(lambda: any(e["type"] == "login.succeeded"
                                             for e in read_jsonl(audit))))
        self.assert_clean_exit(srv)

    def make_tmp(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="fg-events-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        return d

    def test_webhook_signed_retried_deduplicated_and_dead_lettered(self):
        # attempt 1 fails with 500, attempt 2 times out, attempt 3 succeeds
        ok = Receiver(lambda eid, n: 500 if n == 1 else "sleep" if n == 2 else 200)
        dead = Receiver(lambda eid, n: 503)
        self.addCleanup(ok.close)
        self.addCleanup(dead.close)
        tmp = self.make_tmp()
        cfg = os.path.join(tmp, "fg.ini")
        with open(cfg, "w") as f:
            f.write(f"[webhook.broken]\nurl = {dead.url}\nsecret = {SECRET}x\n"
                    "events = user.registered\n")
        dl = os.path.join(tmp, "dead.jsonl")
        srv = self.start(*FAST, "--config", cfg, "--webhook", ok.url, "--webhook-secret", SECRET,
                         "--webhook-events", "user.registered,login.succeeded",
                         "--webhook-retries", "2", "--webhook-backoff", "50ms",
                         "--webhook-timeout", "700ms", "--dead-letter", dl)
        self.assertEqual(srv.request("POST", "/v1/users", json.dumps(
            {"username": "bo", "password": PW}).encode(), J)[0], 201)
        self.assertEqual(self.login(srv, PW, "bo")[0], 200)
        self.login(srv, "wrong password!", "bo")  # login.failed: filtered out
        delivered = lambda: [e for h, b, n in ok.events() if n == 3 for e in json.loads(b)]
        got = wait_for(lambda: {e["type"] for e in delivered()} >=
                       {"user.registered", "login.succeeded"} or None, 15)
        self.assertTrue(got, [(h.get("Floodgate-Event-Count"), n) for h, _, n in ok.events()])
        evs = delivered()
        self.assertEqual(sorted(e["type"] for e in evs), ["login.succeeded", "user.registered"])
        self.assertEqual(len({e["id"] for e in evs}), 2)
        attempts = {}
        for h, body, n in ok.events():
            # the signature covers "<t>.<body>" with the endpoint's secret
            m = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", h["Floodgate-Signature"])
            self.assertIsNotNone(m, h)
            mac = hmac.new(SECRET.encode(), m.group(1).encode() + b"." + body, hashlib.sha256)
            self.assertEqual(mac.hexdigest(), m.group(2))
            self.assertLess(abs(int(m.group(1)) - time.time()), 60)
            batch = json.loads(body)
            self.assertEqual(int(h["Floodgate-Event-Count"]), len(batch))
            # a retry carries the same delivery id and the same events (same ids)
            ids = [e["id"] for e in batch]
            attempts.setdefault(h["Floodgate-Delivery-Id"], set()).add(tuple(ids))
        self.assertTrue(all(len(v) == 1 for v in attempts.values()), attempts)
        # the broken endpoint: 1 + 2 retries, then the dead-letter file
        dl_lines = wait_for(lambda: read_jsonl(dl), 15)
        self.assertEqual(len(dl_lines), 1, dl_lines)
        self.assertEqual((dl_lines[0]["endpoint"], dl_lines[0]["attempts"],
                          dl_lines[0]["error"]), ("broken", 3, "HTTP 503"))
        self.assertEqual([e["type"] for e in dl_lines[0]["events"]], ["user.registered"])
        self.assertEqual(len(dead.events()), 3)
        m = metrics(srv)
        self.assertEqual(metric_value(m, "floodgate_webhook_events_total",
                                      'result="dead_lettered"'), 1)
        self.assertGreaterEqual(metric_value(m, "floodgate_webhook_events_total",
                                             'result="delivered"'), 2)
        self.assertGreaterEqual(metric_value(m, "floodgate_webhook_events_total",
                                             'result="retried"'), 4 + 2)  # ok: 2 x 2, broken: 2
        # a wrong secret does not verify (the receiver side of the check)
        h, body, _ = ok.events()[0]
        m = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", h["Floodgate-Signature"])
        bad = hmac.new(b"not the secret", m.group(1).encode() + b"." + body, hashlib.sha256)
        self.assertNotEqual(bad.hexdigest(), m.group(2))
        self.assert_clean_exit(srv)

    def test_reaction_webhooks_get_their_events_only(self):
        """The autoscaler and notify endpoints (issue #11 item 22: never configured by a
        test): each gets its own events, signed with its own secret, and nothing else."""
        scaler, notify = Receiver(lambda e, n: 200), Receiver(lambda e, n: 200)
        self.addCleanup(scaler.close)
        self.addCleanup(notify.close)
        srv = self.start(*FAST, "--admin-listen", "127.0.0.1:0",
                         "--autoscaler-webhook", scaler.url, "--autoscaler-secret", SECRET + "a",
                         "--notify-webhook", notify.url, "--notify-secret", SECRET + "n",
                         "--lockout-pair-attempts", "3", "--lockout-delay", "0s",
                         "--refresh-grace", "0s",
                         env={"FLOODGATE_ADMIN_TOKEN": TOKEN})
        aport = srv.admin_port()
        self.assertEqual(srv.request("POST", "/v1/users", json.dumps(
            {"username": "ann", "password": PW}).encode(), J)[0], 201)
        rt = self.login(srv, PW)[1]["refresh_token"]
        refresh = lambda: srv.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": rt}).encode(), J)[0]
        self.assertEqual(refresh(), 200)
        self.assertEqual(refresh(), 401)  # reuse
        for _ in range(4):
            self.login(srv, "wrong password!")
        self.assertEqual(self.admin(aport, "PUT", "/admin/policy", {"mode": "surge"})[0], 200)

        def types(rec):
            return {e["type"] for _, b, _ in rec.events() for e in json.loads(b)}
        self.assertTrue(wait_for(lambda: types(notify) >= {"account.locked",
                                                          "token.reuse_detected"}, 15),
                        types(notify))
        self.assertTrue(wait_for(lambda: "policy.mode_changed" in types(scaler), 15))
        time.sleep(0.3)
        self.assertEqual(types(notify), {"account.locked", "token.reuse_detected"})
        self.assertLessEqual(types(scaler), {"policy.mode_changed", "scale.recommendation"})
        for rec, secret in ((scaler, SECRET + "a"), (notify, SECRET + "n")):
            for h, body, _ in rec.events():
                m = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", h["Floodgate-Signature"])
                mac = hmac.new(secret.encode(), m.group(1).encode() + b"." + body,
                               hashlib.sha256)
                self.assertEqual(mac.hexdigest(), m.group(2))
        self.assert_clean_exit(srv)

    def test_events_lost_are_said_lost(self):
        """A webhook queue that is full dead-letters what does not fit, and a dead-letter
        file that cannot be opened says each event it loses (issue #11 item 22)."""
        slow = Receiver(lambda e, n: "sleep")
        self.addCleanup(slow.close)
        srv = self.start(*FAST, "--webhook", slow.url, "--webhook-secret", SECRET,
                         "--webhook-queue", "1", "--webhook-batch", "1", "--webhook-retries",
                         "0", "--webhook-timeout", "200ms", "--ratelimit-register-ip", "off",
                         "--dead-letter", "/nonexistent-dir/dead.jsonl")
        for i in range(8):
            self.assertEqual(srv.request("POST", "/v1/users", json.dumps(
                {"username": f"u{i}", "password": PW}).encode(), J)[0], 201)
        self.assertTrue(wait_for(lambda: "cannot open the dead-letter file; event lost"
                                 in srv.stderr(), 15), srv.stderr()[-2000:])
        self.assertTrue(wait_for(lambda: metric_value(
            metrics(srv), "floodgate_webhook_events_total", 'result="dead_lettered"') >= 1, 15))
        self.assert_clean_exit(srv)

    def test_nothing_blocks_when_every_sink_is_down(self):
        # a port with nothing listening, a short timeout: every delivery fails, slowly
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        tmp = self.make_tmp()
        dl = os.path.join(tmp, "dead.jsonl")
        srv = self.start(*FAST, "--webhook", f"http://127.0.0.1:{port}/x", "--webhook-secret",
                         SECRET, "--webhook-retries", "1", "--webhook-backoff", "20ms",
                         "--webhook-inflight", "1", "--dead-letter", dl,
                         "--ratelimit-register-ip", "off")
        t0 = time.monotonic()
        for i in range(40):
            st, _, _ = srv.request("POST", "/v1/users", json.dumps(
                {"username": f"u{i}", "password": PW}).encode(), J)
            self.assertEqual(st, 201)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        dead = lambda: [e for line in read_jsonl(dl) for e in line["events"]]
        evs = wait_for(lambda: (lambda e: e if len(e) >= 40 else None)(dead()), 20)
        self.assertIsNotNone(evs, len(dead()))
        self.assertEqual({e["type"] for e in evs}, {"user.registered"})
        self.assertEqual(len({e["id"] for e in evs}), 40)  # each once
        self.assert_clean_exit(srv)

    def test_reuse_revokes_every_session_when_configured(self):
        audit = os.path.join(self.make_tmp(), "audit.jsonl")
        srv = self.start(*FAST, "--audit-log", audit, "--refresh-grace", "0s",
                         "--reuse-revokes-all-sessions", "true")
        srv.request("POST", "/v1/users", json.dumps({"username": "di", "password": PW}).encode(),
                    J)
        refresh = lambda t: srv.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": t}).encode(), J)
        a = self.login(srv, PW, "di")[1]["refresh_token"]  # two sessions: two families
        b = self.login(srv, PW, "di")[1]["refresh_token"]
        self.assertEqual(refresh(a)[0], 200)
        self.assertEqual(refresh(a)[0], 401)  # reuse: a's family at once, b's by the reaction
        evs = wait_for(lambda: [e for e in read_jsonl(audit) if e["type"] == "token.revoked"])
        self.assertTrue(evs, srv.stderr()[-2000:])
        self.assertEqual(evs[0]["data"]["token"], "all_sessions")
        self.assertEqual(evs[0]["data"]["families"], 2)
        self.assertEqual(refresh(b)[0], 401)  # b was never used, yet its session is gone
        self.assert_clean_exit(srv)

    def test_rate_limit_refusals_are_an_aggregated_event(self):
        """Issue #11 item 21: ratelimit.exceeded had never been emitted in a test."""
        audit = os.path.join(self.make_tmp(), "audit.jsonl")
        srv = self.start(*FAST, "--threads", "1", "--audit-log", audit, "--ratelimit-login-ip", "1/m:1",
                         "--trusted-proxies", "127.0.0.1")
        body = json.dumps({"username": "zed", "password": PW}).encode()
        codes = [srv.request("POST", "/v1/auth/login", body,
                             {**J, "X-Forwarded-For": "198.51.100.7"})[0] for _ in range(4)]
        self.assertEqual(codes, [401, 429, 429, 429])
        evs = wait_for(lambda: [e for e in read_jsonl(audit)
                                if e["type"] == "ratelimit.exceeded"])
        self.assertTrue(evs, srv.stderr()[-1000:])
        self.assertEqual(len(evs), 1)  # three refusals, one event per rule and key per 10 s
        d = evs[0]["data"]
        self.assertEqual((d["rule"], d["ip"], d["interval_s"]), ("login_ip", "198.51.100.7", 10))
        self.assert_clean_exit(srv)

    def test_pseudonyms_and_sampling(self):
        audit = os.path.join(self.make_tmp(), "audit.jsonl")
        srv = self.start(*FAST, "--audit-log", audit, "--events-user-ids", "hashed",
                         "--events-ips", "off", "--events-token-issued-sample", "0",
                         "--events-source", "auth-eu-1")
        st, _, b = srv.request("POST", "/v1/users", json.dumps(
            {"username": "cy", "password": PW}).encode(), J)
        uid = json.loads(b)["id"]
        self.assertEqual(self.login(srv, PW, "cy")[0], 200)
        evs = wait_for(lambda: (lambda e: e if len(e) >= 2 else None)(read_jsonl(audit)))
        self.assertEqual(sorted(e["type"] for e in evs), ["login.succeeded", "user.registered"])
        pseud = {e["data"]["user_id"] for e in evs}
        self.assertEqual(len(pseud), 1)  # stable: the same user, the same pseudonym
        self.assertNotIn(uid, pseud)
        self.assertTrue(all("ip" not in e["data"] for e in evs))
        self.assertEqual({e["source"] for e in evs}, {"auth-eu-1"})
        self.assertEqual(metric_value(metrics(srv), "floodgate_events_sampled_out_total"), 1)
        self.assert_clean_exit(srv)

    def test_bad_sink_configuration_fails_start(self):
        import subprocess
        from tests.integration.fgtest import BIN
        tmp = self.make_tmp()
        for args, why in ((("--webhook", "ftp://x", "--webhook-secret", SECRET), "http://"),
                          (("--webhook", "http://127.0.0.1:1/", "--webhook-secret", "short"),
                           "secret"),
                          (("--webhook", "http://127.0.0.1:1/", "--webhook-secret", SECRET,
                            "--webhook-events", "login.fail"), "unknown event"),
                          (("--events-ips", "sometimes"), "plain, hashed or off"),
                          (("--events-source", "eu 1"), "events_source")):
            r = subprocess.run([BIN, "--listen", "127.0.0.1:0", "--data-dir",
                                os.path.join(tmp, "d"), *args],
                               capture_output=True, text=True, timeout=30,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith("FLOODGATE_")})
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(why, r.stderr, args)


class TestRedisStream(ServerTest):
    def redis(self, port):
        import shutil
        import subprocess
        import tempfile
        d = tempfile.mkdtemp(prefix="fg-redis-")
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", d],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            if p.poll() is None:
                p.terminate()
                p.wait(10)
            shutil.rmtree(d, ignore_errors=True)
        self.addCleanup(stop)
        self.assertTrue(wait_for(lambda: self.cli(port, "PING") == ["PONG"] or None))
        return stop

    def cli(self, port, *args):
        import subprocess
        r = subprocess.run(["redis-cli", "-p", str(port), "--raw", *args], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.split("\n")[:-1] if r.returncode == 0 else None

    def stream(self, port):
        out = self.cli(port, "XRANGE", "fg:events", "-", "+") or []
        return [json.loads(line) for line in out if line.startswith("{")]

    def test_events_in_a_redis_stream_and_through_an_outage(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        stop = self.redis(port)
        with socket.socket() as s:  # and a webhook nobody answers: every sink down at once
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        srv = self.start(*FAST, "--events-redis", f"redis://127.0.0.1:{port}/0",
                         "--events-redis-stream", "fg:events", "--events-redis-maxlen", "1000",
                         "--ratelimit-register-ip", "off", "--webhook",
                         f"http://127.0.0.1:{dead_port}/", "--webhook-secret", SECRET,
                         "--dead-letter", os.devnull)
        reg = lambda n: srv.request("POST", "/v1/users", json.dumps(
            {"username": n, "password": PW}).encode(), J)[0]
        self.assertEqual(reg("ann"), 201)
        evs = wait_for(lambda: self.stream(port) or None)
        self.assertEqual([e["type"] for e in evs], ["user.registered"])
        self.assertEqual(set(evs[0]), {"id", "type", "time", "source", "data"})
        # Redis goes away too: requests wait for neither
        stop()
        t0 = time.monotonic()
        for i in range(5):
            self.assertEqual(reg(f"down{i}"), 201)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        # it comes back (empty): the events of the outage arrive, then new ones
        self.redis(port)
        self.assertEqual(reg("back"), 201)
        evs = wait_for(lambda: (lambda e: e if len(e) >= 6 else None)(self.stream(port)), 15)
        self.assertIsNotNone(evs, self.stream(port))
        self.assertEqual(len({e["id"] for e in evs}), 6)
        self.assertEqual({e["type"] for e in evs}, {"user.registered"})
        self.assertGreaterEqual(metric_value(metrics(srv), "floodgate_event_stream_total",
                                             'result="added"'), 6)
        self.assert_clean_exit(srv)
