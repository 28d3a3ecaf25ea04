# SPDX-License-Identifier: MIT
"""Process life: configuration sources, CLI, graceful shutdown with requests in flight, log
reopening and the access log."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from tests.integration.fgtest import BIN, REDIS_MODE, ServerTest, read_responses


def run(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=20, env=e)


class TestCli(ServerTest):
    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--listen", "--data-dir", "--max-body-bytes", "--header-timeout",
                     "--worker-queue", "--drain-timeout", "check-config"):
            self.assertIn(flag, r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^floodgate \d+\.\d+\.\d+")

    def test_check_config(self):
        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
            f.write("[server]\nlisten = 127.0.0.1:9999\n[limits]\nmax_body_bytes = 32k\n")
            good = f.name
        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
            f.write("[server]\nlisten = 127.0.0.1:9999\n\n[limits]\nmax_bodyy = 1\n")
            bad = f.name
        try:
            r = run("check-config", good)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run("check-config", bad)
            self.assertEqual(r.returncode, 1)
            self.assertIn(bad + ":5", r.stderr)
            self.assertIn("max_bodyy", r.stderr)
        finally:
            os.unlink(good)
            os.unlink(bad)

    def test_check_config_names_every_error_in_order(self):
        """Issue #15 item 6: each error with its file and line, in file order, a key given
        twice is one, the FLOODGATE_* environment is checked too, and an admin listener
        beyond loopback is a warning (also at start-up)."""
        d = tempfile.mkdtemp(prefix="fg-cc-")
        self.addCleanup(shutil.rmtree, d, True)
        ini = os.path.join(d, "fg.ini")
        with open(ini, "w") as f:
            f.write("[server]\n"                      # 1
                    "listen = 127.0.0.1:9999\n"       # 2
                    "threads = many\n"                # 3: not a number
                    "this line has no equals\n"       # 4: syntax
                    "[limits]\n"                      # 5
                    "max_body_bytes = 32k\n"          # 6
                    "max_body_bytes = 64k\n"          # 7: twice
                    "[webhook.crm]\n"                 # 8
                    "url = https://crm.example/h\n"   # 9
                    "url = https://crm.example/i\n"   # 10: twice
                    "colour = blue\n")                # 11: unknown
        r = run("check-config", ini, env={"FLOODGATE_MAX_HEADER_BYTES": "huge"})
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if "configuration error" in ln]
        where = [ln.split(": ")[2] for ln in lines]
        self.assertEqual(where, [f"{ini}:3", f"{ini}:4", f"{ini}:7", f"{ini}:10", f"{ini}:11",
                                 "FLOODGATE_MAX_HEADER_BYTES"], r.stderr)
        self.assertIn("given twice", lines[2])
        self.assertIn("given twice", lines[3])
        self.assertIn("6 errors", r.stderr)
        # start-up names the first, with its line
        r = run("--config", ini, "--data-dir", d)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{ini}:3", r.stderr)
        # a good file with a bad environment: the variable is named
        with open(ini, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:9999\n")
        r = run("check-config", ini, env={"FLOODGATE_THREADS": "-1"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("FLOODGATE_THREADS", r.stderr)
        r = run("check-config", ini)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)
        # the admin API beyond loopback: a warning, not an error
        token = {"FLOODGATE_ADMIN_TOKEN": "t" * 40}
        r = run("check-config", ini, env=dict(token, FLOODGATE_ADMIN_LISTEN="0.0.0.0:0"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not a loopback address", r.stderr)
        r = run("check-config", ini, env=dict(token, FLOODGATE_ADMIN_LISTEN="[::1]:0"))
        self.assertNotIn("not a loopback address", r.stderr)
        srv = self.start(env=dict(token, FLOODGATE_ADMIN_LISTEN="0.0.0.0:0"))
        self.assertIn("the admin API listens beyond this machine", srv.stderr())
        self.assert_clean_exit(srv)

    def test_bad_flags_and_env(self):
        r = run("--no-such-flag", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option", r.stderr)
        r = run("--max-body-bytes", "lots")
        self.assertEqual(r.returncode, 2)
        self.assertIn("max_body_bytes", r.stderr)
        r = run(env={"FLOODGATE_LISTEN_PORT": "1"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("FLOODGATE_LISTEN_PORT", r.stderr)
        r = run("frobnicate")
        self.assertEqual(r.returncode, 2)

    def test_precedence_file_env_flag(self):
        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
            f.write("[limits]\nmax_body_bytes = 10\nmax_headers = 5\n")
            path = f.name
        try:
            # file says 10 bytes, env raises it to 20, the flag to 30: a 25-byte body passes
            # only if the flag won; max_headers comes from the file alone.
            srv = self.start("--config", path, "--max-body-bytes", "30",
                             env={"FLOODGATE_MAX_BODY_BYTES": "20"})
            body = b'{"k":"0123456789abcdefg"}'
            st, _, _ = srv.request("POST", "/test/echo", body,
                                   {"Content-Type": "application/json"})
            self.assertEqual(st, 200)
            st, _, _ = srv.request("POST", "/test/echo", body + b" " * 10,
                                   {"Content-Type": "application/json"})
            self.assertEqual(st, 413)
            st, _, _ = srv.request("GET", "/healthz", None,
                                   {f"X-{i}": "1" for i in range(5)})
            self.assertEqual(st, 431)
            self.assert_clean_exit(srv)
        finally:
            os.unlink(path)

    def test_unusable_listen_address_fails_cleanly(self):
        d = tempfile.mkdtemp(prefix="fg-cli-")
        r = run("--listen", "256.1.1.1:0", "--data-dir", d)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen", r.stderr)
        r = run("--listen", "nonsense", "--data-dir", d)
        self.assertEqual(r.returncode, 2)
        shutil.rmtree(d, ignore_errors=True)


class TestShutdown(ServerTest):
    def test_in_flight_requests_finish_then_exit_0(self):
        srv = self.start()
        results = []

        def slow():
            results.append(srv.request("POST", "/test/work?ms=700", b"", timeout=10))

        threads = [threading.Thread(target=slow) for _ in range(2)]
        for t in threads:
            t.start()
        # an idle keep-alive connection must be closed by the drain, not waited for
        idle = srv.connect()
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_responses(idle, 1)[0][0], 200)
        time.sleep(0.2)
        srv.signal(signal.SIGTERM)
        time.sleep(0.1)
        # no new connections once draining
        refused = False
        try:
            s = srv.connect(timeout=1)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            refused = read_responses(s, 1, timeout=1) == []
            s.close()
        except OSError:
            refused = True
        self.assertTrue(refused, "a new connection was served during the drain")
        for t in threads:
            t.join(10)
        idle.close()
        self.assertEqual([r[0] for r in results], [200, 200])
        self.assertTrue(all(r[1].get("connection") == "close" for r in results))
        self.assert_clean_exit(srv)
        self.assertIn('"msg":"draining"', srv.stderr())
        self.assertIn('"msg":"stopped"', srv.stderr())

    def test_drain_timeout_cuts_stragglers(self):
        srv = self.start("--drain-timeout", "300ms")
        s = srv.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /heal")  # half a request
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.signal(signal.SIGINT)
        self.assert_clean_exit(srv, timeout=10)
        self.assertLess(time.monotonic() - t0, 5)
        s.close()


class TestShutdownQueued(ServerTest):
    args = ("--workers", "1", "--worker-queue", "8", "--drain-timeout", "300ms")

    def test_drain_timeout_cancels_queued_jobs(self):
        """Shutdown is bounded by the drain timeout, not by the length of the worker queue:
        queued jobs are answered 503 and only the running one is waited for."""
        srv = self.start()
        results = []

        def slow():
            results.append(srv.request("POST", "/test/work?ms=1500", b"", timeout=10)[0])

        threads = [threading.Thread(target=slow) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assert_clean_exit(srv, timeout=10)
        took = time.monotonic() - t0
        for t in threads:
            t.join(10)
        # 4 x 1.5 s queued on one worker would take 6 s; the running job ends within 1.5 s.
        self.assertLess(took, 3.0)


class TestLogs(ServerTest):
    def test_sighup_reopens_log_and_access_log_is_json(self):
        d = tempfile.mkdtemp(prefix="fg-logs-")
        self.addCleanup(shutil.rmtree, d, True)
        log, access = os.path.join(d, "fg.log"), os.path.join(d, "access.log")
        srv = self.start("--log-file", log, "--access-log", access)
        for _ in range(3):
            srv.request("GET", "/healthz")
        os.rename(log, log + ".1")
        os.rename(access, access + ".1")
        time.sleep(0.6)  # the access log flushes at least every 250 ms
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not os.path.exists(log):
            time.sleep(0.05)
        self.assertTrue(os.path.exists(log), "SIGHUP did not reopen the log")
        srv.request("GET", "/nope")
        self.assert_clean_exit(srv)
        with open(access + ".1") as f:
            lines = [json.loads(x) for x in f]
        self.assertEqual([x["status"] for x in lines], [200, 200, 200])
        self.assertEqual(lines[0]["path"], "/healthz")
        self.assertEqual(lines[0]["remote"], "127.0.0.1")
        with open(access) as f:
            self.assertEqual(json.loads(f.readline())["status"], 404)
        with open(log + ".1") as f:
            first = [json.loads(x) for x in f]
        self.assertEqual(first[0]["msg"], "listening")
        with open(log) as f:
            self.assertIn("logs reopened", f.read())


class TestDocs(ServerTest):
    def test_configuration_reference_matches_binary(self):
        """docs/configuration.md must list exactly what the binary accepts."""
        r = run("--config-reference")
        self.assertEqual(r.returncode, 0)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(os.path.join(root, "docs", "configuration.md")) as f:
            doc = f.read()
        self.assertIn(r.stdout, doc, "docs/configuration.md is stale: run tools/gen-docs")


class TestFilesAtRest(ServerTest):
    """Issue #11 item 14: the server key is refused when others may read it or it is not
    32 bytes; the audit log and the dead-letter file are created 0600."""

    def test_secret_key_permissions_and_length(self):
        import tempfile
        import shutil
        d = tempfile.mkdtemp(prefix="fg-key-")
        self.addCleanup(shutil.rmtree, d, True)
        key = os.path.join(d, "secret.key")
        for mode, size, want in ((0o644, 32, "group or others"), (0o640, 32, "group or others"),
                                 (0o600, 31, "exactly 32 bytes"), (0o600, 33, "exactly 32 bytes")):
            with open(key, "wb") as f:
                f.write(os.urandom(size))
            os.chmod(key, mode)
            r = run("--data-dir", d, "--listen", "127.0.0.1:0")
            self.assertEqual(r.returncode, 1, (mode, size, r.stderr))
            self.assertIn(want, r.stderr, (mode, size))
            r = run("--data-dir", d, "client", "list")  # the CLI refuses it too
            self.assertNotEqual(r.returncode, 0)
        os.unlink(key)  # made anew: 0600, 32 bytes
        r = run("--data-dir", d, "client", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(key)
        self.assertEqual((st.st_mode & 0o777, st.st_size), (0o600, 32))

    def test_audit_log_is_private(self):
        import tempfile
        import shutil
        d = tempfile.mkdtemp(prefix="fg-audit-")
        self.addCleanup(shutil.rmtree, d, True)
        audit = os.path.join(d, "audit.jsonl")
        old = os.umask(0o022)
        try:
            srv = self.start("--audit-log", audit)
        finally:
            os.umask(old)
        srv.request("POST", "/v1/users", b'{"username":"ann","password":"long enough pw"}',
                    {"Content-Type": "application/json"})
        from tests.integration.fgtest import wait_for
        self.assertTrue(wait_for(lambda: os.path.exists(audit) and os.path.getsize(audit) > 0))
        self.assertEqual(os.stat(audit).st_mode & 0o777, 0o600)
        self.assert_clean_exit(srv)


class TestDamagedStore(ServerTest):
    """Issue #11 items 16 and 17: a truncated data.mdb is refused with one line (it crashed
    the server and the CLI with SIGBUS), and an emptied store in a directory that held one
    does not silently start empty."""

    def populated(self):
        import tempfile
        import shutil
        d = tempfile.mkdtemp(prefix="fg-damaged-")
        self.addCleanup(shutil.rmtree, d, True)
        r = run("--data-dir", d, "--argon2-memory", "1024", "--argon2-passes", "1",
                "client", "create", "svc")
        self.assertEqual(r.returncode, 0, r.stderr)
        return d

    def test_truncated_store_is_refused_not_sigbus(self):
        d = self.populated()
        path = os.path.join(d, "data.mdb")
        whole = open(path, "rb").read()
        for share in (0.5, 0.9, 0.99):
            with open(path, "wb") as f:
                f.write(whole[:int(len(whole) * share)])
            for args in (("--listen", "127.0.0.1:0"), ("client", "list")):
                r = run("--data-dir", d, *args)
                self.assertEqual(r.returncode, 1, (share, args, r.returncode, r.stderr[-300:]))
                self.assertIn("truncated", r.stderr, (share, args))
        with open(path, "wb") as f:
            f.write(whole)
        self.assertEqual(run("--data-dir", d, "client", "list").returncode, 0)

    def test_emptied_store_is_refused_unless_init(self):
        d = self.populated()
        path = os.path.join(d, "data.mdb")
        for how in ("empty", "missing"):
            if how == "empty":
                open(path, "wb").close()
            else:
                os.unlink(path)
            r = run("--data-dir", d, "--listen", "127.0.0.1:0")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("refusing to start empty", r.stderr)
            r = run("--data-dir", d, "client", "list")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("refusing to start empty", r.stderr)
        # the operator's word: a new, empty store
        r = run("--data-dir", d, "--init-store", "client", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(os.path.getsize(path), 0)
        # a fresh directory needs no word
        import tempfile
        import shutil
        fresh = tempfile.mkdtemp(prefix="fg-fresh-")
        self.addCleanup(shutil.rmtree, fresh, True)
        self.assertEqual(run("--data-dir", fresh, "client", "list").returncode, 0)


@unittest.skipIf(REDIS_MODE, "the embedded store's disk")
class TestFullDisk(ServerTest):
    """Issue #11 item 18: on a full disk writes answer 503 (as before), /readyz turns 503
    while commits fail, the log names the cause and does not repeat it hundreds of times,
    and everything recovers when space comes back, unrestarted."""

    def setUp(self):
        import tempfile
        self.mnt = tempfile.mkdtemp(prefix="fg-fulldisk-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode:
            os.rmdir(self.mnt)
            self.skipTest("cannot mount a small tmpfs here (needs root): " + r.stderr.strip())

        def unmount():
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)
            os.rmdir(self.mnt)
        self.addCleanup(unmount)

    def test_full_disk_turns_readyz_503_and_recovers(self):
        from tests.integration.fgtest import wait_for
        data = os.path.join(self.mnt, "data")
        srv = self.start("--data-dir", data, "--argon2-memory", "1024", "--argon2-passes", "1",
                         "--ratelimit-register-ip", "off")
        self.assertEqual(srv.request("GET", "/readyz")[0], 200)
        # fill what is left of the disk
        filler = os.path.join(self.mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        codes = []
        for i in range(300):
            st, _, _ = srv.request("POST", "/v1/users", json.dumps(
                {"username": f"u{i}", "password": "long enough pw"}).encode(),
                {"Content-Type": "application/json"})
            codes.append(st)
            if st == 503:
                break
        self.assertEqual(codes[-1], 503, codes[-5:])
        for i in range(50):  # more failing writes: logged once, not fifty times
            srv.request("POST", "/v1/users", json.dumps(
                {"username": f"v{i}", "password": "long enough pw"}).encode(),
                {"Content-Type": "application/json"})
        st, _, body = srv.request("GET", "/readyz")
        self.assertEqual((st, json.loads(body)["reason"]), (503, "store"))
        log = srv.stderr()
        self.assertIn("No space left on device", log)
        self.assertLessEqual(log.count('"msg":"store commit failed'), 2, log[-2000:])
        # space comes back: the writer's own probe finds it, no request needed
        os.unlink(filler)
        self.assertTrue(wait_for(lambda: srv.request("GET", "/readyz")[0] == 200, 10))
        st, _, _ = srv.request("POST", "/v1/users", json.dumps(
            {"username": "after", "password": "long enough pw"}).encode(),
            {"Content-Type": "application/json"})
        self.assertEqual(st, 201)
        self.assert_clean_exit(srv)


@unittest.skipIf(REDIS_MODE, "the embedded store's map")
class TestStoreFull(ServerTest):
    """Issue #11 item 21: LMDB's MDB_MAP_FULL had never run. The store full: writes answer
    503 and change nothing, /readyz says so, reads go on, the log names the setting."""

    def test_map_full(self):
        from tests.integration.fgtest import admin_call
        token = "full-" + "0123456789abcdef" * 3
        srv = self.start("--store-map-size", "1m", "--admin-listen", "127.0.0.1:0",
                         env={"FLOODGATE_ADMIN_TOKEN": token})
        aport = srv.admin_port()
        scopes = " ".join(f"scope-{i:04d}" for i in range(90))  # ~1 KB a client
        st, n, first = 201, 0, None
        while st == 201 and n < 3000:
            st, body = admin_call(aport, token, "POST", "/admin/clients",
                                  {"name": f"c{n}", "scopes": scopes})
            first = first or (body or {}).get("client_id")
            n += 1
        self.assertEqual(st, 503, body)
        self.assertGreater(n, 10)
        st, _, body = srv.request("GET", "/readyz")
        self.assertEqual((st, json.loads(body)["reason"]), (503, "store"))
        self.assertIn("store_map_size", srv.stderr())
        # nothing half-written, and what was stored stays readable
        st, lst = admin_call(aport, token, "GET", "/admin/clients")
        self.assertEqual(st, 200)
        self.assertEqual(len(lst), n - 1)
        self.assertIn(first, {c["client_id"] for c in lst})
        self.assert_clean_exit(srv)


class TestPortSharing(ServerTest):
    """A second floodgate on a port another process listens on is refused (issue #15 item
    7: SO_REUSEPORT had it take a share of the traffic silently, with its own issuer);
    listen_shared = true lets it join on purpose, for a zero-downtime restart."""

    def test_second_instance_is_refused_unless_shared(self):
        a = self.start("--issuer", "http://a.example")
        d = tempfile.mkdtemp(prefix="fg-share-")
        self.addCleanup(shutil.rmtree, d, True)
        r = run("--data-dir", d, "--listen", f"127.0.0.1:{a.port}", "--issuer",
                "http://b.example")
        self.assertEqual(r.returncode, 1, r.stderr[-500:])
        self.assertIn("another process already listens on listen", r.stderr)
        self.assertIn("listen_shared", r.stderr)
        # any process, not only floodgate: a listener with SO_REUSEPORT of its own
        other = socket.socket()
        self.addCleanup(other.close)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        r = run("--data-dir", d, "--listen", f"127.0.0.1:{other.getsockname()[1]}")
        self.assertEqual(r.returncode, 1, r.stderr[-500:])
        self.assertIn("another process already listens on listen", r.stderr)
        # on purpose: b joins a, and the two answer on the same port
        b = self.start("--listen", f"127.0.0.1:{a.port}", "--listen-shared", "true",
                       "--issuer", "http://b.example")
        self.assertEqual(b.port, a.port)
        issuers = set()
        for _ in range(40):
            st, _, body = a.request("GET", "/.well-known/openid-configuration")
            self.assertEqual(st, 200)
            issuers.add(self.json(body)["issuer"])
        self.assertEqual(issuers, {"http://a.example", "http://b.example"})
        self.assert_clean_exit(b)
        self.assert_clean_exit(a)


class TestStartRefusals(ServerTest):
    """A server that cannot start as configured says why in one line and exits 1 (issue #11
    item 22: these paths had never run)."""

    def test_each_refusal_names_its_cause(self):
        d = tempfile.mkdtemp(prefix="fg-refuse-")
        self.addCleanup(shutil.rmtree, d, True)
        blocker = os.path.join(d, "file")
        open(blocker, "w").close()
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        port.listen(1)
        taken = port.getsockname()[1]
        self.addCleanup(port.close)
        cases = [
            (("--access-log", "/nonexistent-dir/a.log"), "cannot open access log"),
            (("--data-dir", os.path.join(blocker, "sub")), "data directory"),
            (("--password-denylist", "/nonexistent/deny.txt"), "deny list"),
            (("--listen", f"127.0.0.1:{taken}"), "another process already listens on listen"),
            (("--admin-listen", f"127.0.0.1:{taken}", "--admin-token", "t" * 40),
             "another process already listens on admin_listen"),
            # shared on purpose, the port still cannot be had: that listener has no
            # SO_REUSEPORT, so the bind itself fails
            (("--listen", f"127.0.0.1:{taken}", "--listen-shared", "true"), "cannot listen"),
            (("--store", "redis://127.0.0.1:1"), "cannot open the store"),
            (("--issuer", "https://" + "i" * 300 + ".example"), "longer than 256"),
            (("--default-audience", "a" * 300), "longer than 256"),
        ]
        for args, words in cases:
            full = ("--data-dir", os.path.join(d, "data"), "--listen", "127.0.0.1:0") + args
            r = run(*full)
            self.assertEqual(r.returncode, 1, (args, r.stderr[-500:]))
            self.assertIn(words, r.stderr, args)
        # a store address that is not one is a configuration error (exit 2), also for
        # --check-config
        r = run("--data-dir", os.path.join(d, "data"), "--store", "memcached://x")
        self.assertEqual(r.returncode, 2, r.stderr[-500:])
        self.assertIn("store: 'memcached://x' is not a Redis address", r.stderr)
        ini = os.path.join(d, "fg.ini")
        with open(ini, "w") as f:
            f.write("[server]\nstore = memcached://x\n")
        r = run("check-config", ini)
        self.assertEqual(r.returncode, 1, r.stderr[-500:])
        self.assertIn("is not a Redis address", r.stderr)
