# SPDX-License-Identifier: MIT
"""Helpers shared by the integration tests: start the real floodgate binary on an ephemeral
loopback port with a temporary data directory, talk raw HTTP to it, stop it and check that it
exited cleanly. Every wait is bounded; every process and directory is cleaned up."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("FLOODGATE_BIN", os.path.abspath("build/asan/floodgate"))
START_TIMEOUT = 15.0

# FG_TEST_STORE=redis (make integ-redis): every server and CLI call of these tests keeps its
# state in one redis-server started here on a unix socket, instead of LMDB, each data
# directory under its own key prefix: the same tests, the other backend.
REDIS_MODE = os.environ.get("FG_TEST_STORE") == "redis"
_redis_sock = None


def _redis_call(*args):
    raw = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(_redis_sock)
        s.sendall(raw)
        return s.recv(4096)


def _redis_start():
    global _redis_sock
    import atexit
    d = tempfile.mkdtemp(prefix="fg-integ-redis-")
    _redis_sock = os.path.join(d, "redis.sock")
    p = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", _redis_sock,
                          "--unixsocketperm", "700", "--dir", d, "--save", "",
                          "--appendonly", "yes", "--appendfsync", "always",
                          "--loglevel", "warning"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        p.kill()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)
    atexit.register(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if _redis_call("PING").startswith(b"+PONG"):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def store_args(data_dir):
    """The flags that put a data directory's state in the test Redis (nothing on LMDB)."""
    if not REDIS_MODE:
        return []
    import hashlib
    if _redis_sock is None:
        _redis_start()
    prefix = "t" + hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:12] + ":"
    # successive servers on one directory are successive deployments, each default issuer
    # naming its own port: forget the last one's
    _redis_call("DEL", prefix + "pin:issuer")
    # A command may take 2 s, not the default 250 ms: this one redis-server fsyncs every
    # write for the whole suite, and once in a full `make check` it answered late, so two
    # logins of a test about something else failed with 503 (as they should: a test that
    # passes its own --redis-timeout after these flags overrides it, and
    # test_redis_faults tests the timeout on a Redis of its own).
    return ["--store", "unix://" + _redis_sock, "--redis-prefix", prefix,
            "--redis-timeout", "2s"]


class Server:
    def __init__(self, *args, env=None):
        self.dir = tempfile.mkdtemp(prefix="fg-integ-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "stderr.log")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
        # ASan: fail loudly, and report leaks at exit.
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        full_env.update(env or {})
        # a test may restart on an earlier server's directory (a later --data-dir wins)
        data = args[args.index("--data-dir") + 1] if "--data-dir" in args else self.data
        cmd = [BIN, "--listen", "127.0.0.1:0", "--data-dir", self.data, "--threads", "2",
               "--workers", "2", *store_args(data), *args]
        # With --log-file the JSON log goes there; stderr keeps only sanitizer reports.
        self.json_log = args[args.index("--log-file") + 1] if "--log-file" in args else None
        self.signalled = False
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env=full_env)
        try:
            self.port = self._wait_port()
        except RuntimeError:
            self.cleanup()  # a server that did not start leaves nothing behind either
            raise

    def _wait_port(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = self.stderr()
            m = re.search(r'"msg":"listening","addr":"127\.0\.0\.1:(\d+)"', text)
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError("floodgate exited during start-up:\n" + text)
            time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError("floodgate did not log its address in time:\n" + self.stderr())

    def stderr(self):
        text = b""
        for p in (self.log_path, self.json_log):
            if p and os.path.exists(p):
                with open(p, "rb") as f:
                    text += f.read()
        return text.decode("utf-8", "replace")

    def admin_port(self, timeout=10.0):
        """The admin listener's port (started with --admin-listen 127.0.0.1:0)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r'"msg":"admin API listening","addr":"127\.0\.0\.1:(\d+)"',
                          self.stderr())
            if m:
                return int(m.group(1))
            time.sleep(0.02)
        raise RuntimeError("no admin listener:\n" + self.stderr())

    def connect(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        """One request on a new connection with Connection: close; returns (status, headers,
        body)."""
        h = {"Host": "localhost", "Connection": "close"}
        h.update(headers or {})
        if body is not None:
            h.setdefault("Content-Length", str(len(body)))
        raw = f"{method} {path} HTTP/1.1\r\n".encode()
        raw += b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n"
        raw += body or b""
        with self.connect(timeout) as s:
            s.sendall(raw)
            return parse_one(recv_all(s, timeout))

    def signal(self, sig):
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.signalled = True
        self.proc.send_signal(sig)

    def stop(self, timeout=15.0):
        """SIGTERM, wait, and return the exit code; kills it if it does not exit in time."""
        if self.proc.poll() is None and not self.signalled:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # a server that does not exit on SIGTERM is a bug: its threads' stacks go to the
            # test's output (when gdb is installed) before it is killed
            if shutil.which("gdb"):
                sys.stderr.write(subprocess.run(
                    ["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt"],
                    capture_output=True, text=True, timeout=60).stdout)
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.log.close()
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def admin_call(port, token, method, path, obj=None):
    """One admin API request (JSON in, JSON out): (status, body parsed or None)."""
    body = json.dumps(obj).encode() if obj is not None else b""
    raw = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        st, _, b = parse_one(recv_all(s, 10))
    return st, (json.loads(b) if b else None)


def wait_for(cond, timeout=10.0):
    """cond()'s first true value within timeout seconds (polled every 50 ms), else its last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return cond()


def recv_all(s, timeout=5.0):
    """Reads until the peer closes or `timeout` passes."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def parse_one(data):
    """Parses one response from bytes; returns (status, headers dict lower-cased, body)."""
    responses = parse_many(data)
    if not responses:
        raise AssertionError(f"no complete response in {data[:200]!r}")
    return responses[0]


def _parse_from(data, pos, complete):
    """Responses in data from offset pos: (list, offset after the last one). With
    `complete`, a response whose body has not fully arrived is left for later."""
    out = []
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        start = end + 4
        if status == 100:
            pos = start
            continue
        n = int(headers.get("content-length", "0"))
        if complete and len(data) - start < n:
            break
        out.append((status, headers, bytes(data[start:start + n])))
        pos = start + n
    return out, pos


def parse_many(data):
    return _parse_from(data, 0, False)[0]


def read_responses(s, count, timeout=5.0):
    """Reads until `count` complete responses arrived (or timeout); returns them. Parses
    only what is new at each read (an 8 MB answer stream stays linear)."""
    s.settimeout(timeout)
    data = bytearray()
    got, pos = [], 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < count:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        more, pos = _parse_from(data, pos, True)
        got += more
    return got + _parse_from(data, pos, False)[0]


def is_closed(s, timeout=3.0):
    """True if the peer closed the connection (EOF or reset) within `timeout`."""
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def metrics(server):
    status, _, body = server.request("GET", "/metrics")
    assert status == 200
    return body.decode()


def metric_value(text, name, labels=""):
    pat = re.escape(name + (("{" + labels + "}") if labels else "")) + r" (\S+)"
    m = re.search(r"^" + pat + r"$", text, re.M)
    return float(m.group(1)) if m else None


class ServerTest(unittest.TestCase):
    """A test case with a server started per test (fresh state, own port)."""

    args = ()

    def start(self, *args, env=None):
        srv = Server(*self.args, *args, env=env)
        self.addCleanup(srv.cleanup)
        return srv

    def assert_clean_exit(self, srv, timeout=15.0):
        rc = srv.stop(timeout)
        err = srv.stderr()
        self.assertEqual(rc, 0, "floodgate did not exit 0; stderr:\n" + err[-4000:])
        self.assertNotIn("ERROR: AddressSanitizer", err)
        self.assertNotIn("runtime error:", err)
        self.assertNotIn("LeakSanitizer", err)
        self.assertNotIn("ThreadSanitizer", err)  # when FLOODGATE_BIN is a TSan build

    def json(self, body):
        return json.loads(body.decode())


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(test, fg_ports, app_port=None, edits=()):
    """Runs the shipped deploy/nginx/floodgate.conf in a real nginx (stopped at the test's
    cleanup) with one upstream line per floodgate port, and a stand-in application that
    echoes what the gateway told it; edits: (old, new) replacements of one place each, as an
    operator would make (e.g. a scope on the verify URL). Returns nginx's port."""
    tmp = tempfile.mkdtemp(prefix="fg-nginx-")
    test.addCleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
    port, app = free_port(), app_port or free_port()
    with open(os.path.join(ROOT, "deploy", "nginx", "floodgate.conf")) as f:
        site = f.read()
    line = re.search(r"\n( *)server 127\.0\.0\.1:8080( [^;]*);", site)
    test.assertIsNotNone(line, "the shipped upstream line")
    ups = "".join(f"\n{line.group(1)}server 127.0.0.1:{p}{line.group(2)};" for p in fg_ports)
    site = site[:line.start()] + ups + site[line.end():]
    for old, new in (("127.0.0.1:9000", f"127.0.0.1:{app}"),
                     ("127.0.0.1:8000", f"127.0.0.1:{port}"), *edits):
        test.assertEqual(site.count(old), 1, old)
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
    test.addCleanup(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port
        except OSError:
            if p.poll() is not None:
                test.fail("nginx did not start: " + p.stderr.read().decode())
            time.sleep(0.05)
    test.fail("nginx did not listen")


class Cluster:
    """A local Redis Cluster: `primaries` redis-servers with `replicas` each, on free
    loopback ports (each with its bus port + 10000 free), append-only files fsync'd at every
    write, made by redis-cli --cluster create and waited for until every node says ok."""

    def __init__(self, test, primaries=3, replicas=1):
        self.dir = tempfile.mkdtemp(prefix="fg-cluster-")
        self.procs = {}
        test.addCleanup(self.cleanup)
        self.ports = []
        while len(self.ports) < primaries * (1 + replicas):
            self.ports.append(self._free_pair())
        for i in range(len(self.ports)):
            # a port free when chosen can be taken before its server binds it (another
            # test's connection): the server exits at once, and this one moves
            for _ in range(5):
                if self.start(self.ports[i], may_move=True):
                    break
                self.ports[i] = self._free_pair()
            else:
                raise RuntimeError("redis-server did not start on any of 5 ports")
        subprocess.run(["redis-cli", "--cluster", "create",
                        *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       capture_output=True, text=True, timeout=60, check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in self.cli(p, "cluster", "info") for p in self.ports) \
                    and all(self.synced(p) for p in self.ports):
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not come up")

    def _free_pair(self):
        """A free loopback port whose cluster bus port (+10000) is free too."""
        while True:
            p = free_port()
            if p + 10000 < 65536 and p not in self.ports and _port_free(p + 10000):
                return p

    def synced(self, port):
        """A primary, or a replica whose link to its primary is up (WAIT counts it)."""
        info = self.cli(port, "info", "replication")
        return "role:master" in info or "master_link_status:up" in info

    def start(self, port, may_move=False):
        """Starts the node of `port` and waits for its PONG. With may_move, a server that
        exits at once (its port or bus port taken) returns False instead of failing."""
        d = os.path.join(self.dir, str(port))
        os.makedirs(d, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--loglevel", "warning",
             # a replica is promoted however long its link was down (the default refuses
             # one that lost it more than 10 node timeouts ago: since its start, for one
             # restarted that has not synced yet, which is the replica the tests want)
             "--cluster-replica-validity-factor", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.cli(port, "ping").strip() == "PONG":
                    return True
            except (subprocess.SubprocessError, OSError):
                pass
            if may_move and self.procs[port].poll() is not None:
                del self.procs[port]
                return False
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self):
        return "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2])

    def kill(self, port):
        """kill -9: only what its append-only file had fsync'd survives, and its replica is
        promoted after cluster-node-timeout (1 s)."""
        self.procs[port].kill()
        self.procs[port].wait(10)

    def nodes(self, port=None):
        """CLUSTER NODES as a node asks it: {port: (id, is_primary, primary_id, slots)}."""
        out = {}
        ask = port or next(p for p in self.ports if self.procs[p].poll() is None)
        for ln in self.cli(ask, "cluster", "nodes").splitlines():
            f = ln.split()
            if len(f) < 8 or "fail" in f[2].split(","):
                continue
            slots = []
            for r in f[8:]:
                if r.startswith("["):
                    continue
                a, _, b = r.partition("-")
                slots.append((int(a), int(b or a)))
            out[int(f[1].split("@")[0].rsplit(":", 1)[1])] = (
                f[0], "master" in f[2], f[3], slots)
        return out

    def primary_of(self, slot, port=None):
        for p, (_, primary, _, slots) in self.nodes(port).items():
            if primary and any(a <= slot <= b for a, b in slots):
                return p
        return None

    def replica_of(self, primary):
        nodes = self.nodes()
        pid = nodes[primary][0]
        return next(p for p, (_, is_primary, of, _) in nodes.items() if not is_primary and of == pid)

    def keyslot(self, key):
        alive = next(p for p in self.ports if self.procs[p].poll() is None)
        return int(self.cli(alive, "cluster", "keyslot", key).strip())

    @staticmethod
    def cli(port, *args):
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                              text=True, timeout=10).stdout

    def cleanup(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Redis:
    """A redis-server on a free loopback port with its data in its own directory
    (append-only file, fsync'd at every write: what docs/deploy.md recommends), which a test
    can stop and start again on the same data."""

    def __init__(self, test, replica_of=None):
        self.dir = tempfile.mkdtemp(prefix="fg-redis-")
        test.addCleanup(self.cleanup)
        self.port = free_port()
        self.proc = None
        self.replica_of = replica_of  # a primary's port: this one replicates it
        self.start()

    def start(self):
        follow = ["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else []
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--loglevel", "warning", *follow], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self, kill=False):
        """SIGTERM (Redis saves and exits), or with kill=True SIGKILL: a crash, after which
        only what the append-only file had fsync'd survives."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout

    def calls(self, command):
        """How many times Redis has run `command` (INFO commandstats)."""
        out = subprocess.run(["redis-cli", "-p", str(self.port), "INFO", "commandstats"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        m = re.search(rf"^cmdstat_{command.lower()}:calls=(\d+)", out, re.M)
        return int(m.group(1)) if m else 0

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
