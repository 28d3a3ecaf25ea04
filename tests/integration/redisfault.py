# SPDX-License-Identifier: MIT
"""A fault-injecting proxy in front of a real redis-server, for the tests of what floodgate
does when Redis answers wrongly, late, or not at all. It forwards every command and reply
unchanged, except those a rule matches; a rule can answer in Redis's place (the command never
runs), run the command and answer something else, delay the command, or drop the connection.
pause() stops accepting and cuts every connection (a Redis that is down); resume() listens on
the same port again. Plain threads and blocking sockets; everything stops with close()."""

import collections
import socket
import threading
import time


def _line(buf, pos):
    end = buf.find(b"\r\n", pos)
    return (None, None) if end < 0 else (buf[pos:end], end + 2)


def parse(buf, pos=0):
    """One RESP2 value at buf[pos:]: (value, end), or (None, None) if it is not all there.
    Bulk strings are bytes, arrays lists, errors and status lines (kind, text) tuples."""
    if pos >= len(buf):
        return None, None
    kind = buf[pos:pos + 1]
    head, p = _line(buf, pos + 1)
    if head is None:
        return None, None
    if kind in (b"+", b"-"):
        return (kind, head), p
    if kind == b":":
        return int(head), p
    n = int(head)
    if kind == b"$":
        if n < 0:
            return b"", p
        if len(buf) < p + n + 2:
            return None, None
        return buf[p:p + n], p + n + 2
    if kind == b"*":
        items = []
        for _ in range(max(n, 0)):
            v, p = parse(buf, p)
            if p is None:
                return None, None
            items.append(v)
        return items, p
    raise ValueError(f"not RESP: {buf[pos:pos + 20]!r}")


def lua(branch):
    """Matches the store's script calls of one branch ("rotate", "issue", "put", ...)."""
    b = branch.encode()
    return lambda args: args[0].upper() == b"EVALSHA" and b in args[3:]


def command(name, contains=None):
    """Matches a plain command (GET, HMGET, ...), optionally with an argument containing a
    given substring."""
    n, c = name.upper().encode(), contains.encode() if contains else None
    return lambda args: args[0].upper() == n and (c is None or any(c in a for a in args[1:]))


def bulk(s):
    s = s.encode() if isinstance(s, str) else s
    return b"$%d\r\n%s\r\n" % (len(s), s)


def array(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


ERROR = b"-ERR injected by the test\r\n"
NIL = b"$-1\r\n"


class _Conn:
    def __init__(self, proxy, csock):
        self.proxy = proxy
        self.c = csock
        self.up = socket.create_connection(("127.0.0.1", proxy.upstream))
        self.lock = threading.Lock()
        self.slots = collections.deque()  # answers owed to the client, in order
        self.fwd = collections.deque()  # (slot, replacement) waiting for Redis's reply
        self.raw = False  # subscribed: Redis's messages go straight through
        self.dead = False
        for f in (self.client_side, self.redis_side):
            threading.Thread(target=f, daemon=True).start()

    def close(self):
        self.dead = True
        for s in (self.c, self.up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def flush(self):
        while self.slots and self.slots[0][0] is not None:
            self.c.sendall(self.slots.popleft()[0])

    def client_side(self):
        buf = b""
        try:
            while not self.dead:
                data = self.c.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    args, end = parse(buf)
                    if end is None:
                        break
                    raw, buf = buf[:end], buf[end:]
                    self.one(args, raw)
        except (OSError, ValueError):
            pass
        self.close()

    def one(self, args, raw):
        if args[0].upper() in (b"SUBSCRIBE", b"PSUBSCRIBE"):
            self.raw = True
        action = self.proxy.action_for(args)
        if action == "close":
            raise OSError("dropped by the test")
        with self.lock:
            slot = [None]
            self.slots.append(slot)
            if isinstance(action, bytes):
                slot[0] = action
                self.flush()
                return
            self.fwd.append((slot, action[1] if isinstance(action, tuple) and
                             action[0] == "after" else None))
        if isinstance(action, tuple) and action[0] == "delay":
            time.sleep(action[1])
        self.up.sendall(raw)

    def redis_side(self):
        buf = b""
        try:
            while not self.dead:
                data = self.up.recv(65536)
                if not data:
                    break
                if self.raw:
                    with self.lock:
                        self.slots.clear()
                        self.c.sendall(data)
                    continue
                buf += data
                while True:
                    _, end = parse(buf)
                    if end is None:
                        break
                    reply, buf = buf[:end], buf[end:]
                    with self.lock:
                        slot, instead = self.fwd.popleft()
                        slot[0] = instead if instead is not None else reply
                        self.flush()
        except (OSError, ValueError, IndexError):
            pass
        self.close()


class FaultProxy:
    def __init__(self, test, upstream_port):
        self.upstream = upstream_port
        self.lock = threading.Lock()
        self.rules = []  # [match, action, times left]
        self.seen = collections.Counter()
        self.conns = []
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.listener = None
        self.resume()
        test.addCleanup(self.close)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def rule(self, match, action, times=1, name=None):
        """From now on the next `times` commands `match` accepts get `action` (None: forward):
        bytes (answered in Redis's place; the command never runs), ("after", bytes) (it runs,
        the client gets bytes), ("delay", seconds), or "close" (the connection is dropped,
        the command never runs). `name` counts the matches in self.seen."""
        with self.lock:
            self.rules.append([match, action, times, name])

    def clear(self):
        with self.lock:
            self.rules.clear()

    def action_for(self, args):
        with self.lock:
            for r in self.rules:
                if r[2] > 0 and r[0](args):
                    r[2] -= 1
                    if r[3]:
                        self.seen[r[3]] += 1
                    return r[1]
        return None

    def _accept(self, listener):
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            try:
                conn = _Conn(self, c)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append(conn)

    def pause(self):
        """Redis is unreachable: nothing listens, every connection is cut."""
        if self.listener:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            c.close()

    def resume(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def close(self):
        self.pause()
