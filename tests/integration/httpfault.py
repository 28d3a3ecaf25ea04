# SPDX-License-Identifier: MIT
"""A fault-injecting HTTP/1.1 proxy in front of a real floodgate listener, for the tests of
what a client of floodgate (the rehearsal tool) does when the server answers with an error,
late, with bytes that are not HTTP, or not at all. Requests that no rule matches are
forwarded unchanged on a kept-alive upstream connection per client connection."""

import http.client
import http.server
import threading
import time

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


class HTTPFaultProxy:
    def __init__(self, test, upstream_port):
        self.upstream = upstream_port
        self.lock = threading.Lock()
        self.rules = []  # [method, path prefix, action, times left]
        self.counts = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                action = proxy.action_for(self.command, self.path)
                if action == "close":
                    self.close_connection = True
                    return
                if action == "garbage":
                    self.wfile.write(b"this is not HTTP at all\r\n\r\n")
                    self.close_connection = True
                    return
                if isinstance(action, tuple) and action[0] == "status":
                    b = b'{"error":"injected"}'
                    self.send_response(action[1])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(b)))
                    self.end_headers()
                    self.wfile.write(b)
                    return
                if isinstance(action, tuple) and action[0] == "delay":
                    time.sleep(action[1])
                if not getattr(self, "up", None):
                    self.up = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=30)
                hdr = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                try:
                    self.up.request(self.command, self.path, body, hdr)
                    r = self.up.getresponse()
                    data = r.read()
                except OSError:
                    self.close_connection = True
                    return
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None  # a client that gave up is not news
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        test.addCleanup(self.close)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def rule(self, method, prefix, action, times=1 << 30):
        """The next `times` requests for a path starting with `prefix` (and `method`, unless
        None) get `action`: ("status", code) answered here with a JSON body, ("delay", s)
        then forwarded, "close" (no answer), or "garbage" (bytes that are not HTTP)."""
        with self.lock:
            self.rules.append([method, prefix, action, times])

    def action_for(self, method, path):
        with self.lock:
            for r in self.rules:
                if r[3] > 0 and (r[0] is None or r[0] == method) and path.startswith(r[1]):
                    r[3] -= 1
                    key = (method, r[1])
                    self.counts[key] = self.counts.get(key, 0) + 1
                    return r[2]
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()
