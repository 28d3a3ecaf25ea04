# SPDX-License-Identifier: MIT
"""The store on a Redis Cluster (issue #14): floodgate instances on a local cluster of three
primaries with a replica each. What every shared store must do (test_scaleout.py's
SharedStoreTests: a token from one instance good on the other, a revocation seen across,
refresh reuse across instances, the lockout and login rate shared, a user made on one
signing in on the other and a new password ending the sessions everywhere), where a user's
records, the login guard's counters and the cached tables live in different slots; and the
faults: a primary killed under refreshes, a reshard of 1,000 slots under load."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from tests.integration.fgtest import (REDIS_MODE, Cluster, ServerTest, metric_value, metrics,
                                      wait_for)
from tests.integration.test_scaleout import J, SharedStoreTests


# the load comes from one address: its limits off (what is tested is the store)
UNLIMITED = ("--ratelimit-register-ip", "off", "--ratelimit-login-ip", "off",
             "--ratelimit-refresh-ip", "off")


def group_of(token):
    """The group a refresh token carries in its first three characters (tok_refresh.h)."""
    return int.from_bytes(base64.urlsafe_b64decode(token[:3] + "="), "big")


@unittest.skipIf(REDIS_MODE, "starts its own cluster: the same test in both runs")
class ClusterTest(SharedStoreTests, ServerTest):
    def setUp(self):
        self.cluster = Cluster(self)
        self.tmp = tempfile.mkdtemp(prefix="fg-cluster-test-")
        self.key = os.path.join(self.tmp, "shared-secret.key")
        self.shared = ("--store", self.cluster.url, "--redis-prefix", "fg:",
                       "--secret-key-file", self.key, "--issuer", "https://auth.example")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.tmp], check=False)

    def users(self, srv, n):
        """n users signed in on srv: {name: refresh token}."""
        tokens = {}
        for i in range(n):
            name = f"user{i}"
            self.register(srv, name)
            st, _, body = self.login(srv, name)
            self.assertEqual(st, 200, body)
            tokens[name] = json.loads(body)["refresh_token"]
        return tokens

    def slot_of(self, token):
        return self.cluster.keyslot("{g%04x}" % group_of(token))

    @staticmethod
    def refresh(srv, token):
        st, _, body = srv.request("POST", "/v1/auth/refresh",
                                  json.dumps({"refresh_token": token}).encode(), J)
        return st, (json.loads(body)["refresh_token"] if st == 200 else None)

    def load(self, srv, tokens, threads=3):
        """Refreshes every user's token in turn from `threads` threads until stopped: each
        200 makes the successor the user's token (acknowledged), a 503 retries the same
        token. Returns (stop, log): log holds (time, user, status)."""
        stop, log = threading.Event(), []
        names = sorted(tokens)

        def run(mine):
            while not stop.is_set():
                for u in mine:
                    try:
                        st, nxt = self.refresh(srv, tokens[u])
                    except OSError:
                        st, nxt = 0, None
                    log.append((time.monotonic(), u, st))
                    if st == 200:
                        tokens[u] = nxt
        ts = [threading.Thread(target=run, args=(names[k::threads],)) for k in range(threads)]
        for t in ts:
            t.start()

        def halt():
            stop.set()
            for t in ts:
                t.join(30)
        return halt, log

    def test_a_primary_killed_under_refreshes_loses_no_acknowledged_rotation(self):
        """kill -9 of a primary with redis_wait_replicas = 1: its slots' refreshes get 503
        (never "invalid") until its replica is promoted and has a replica again (the old
        primary, restarted); the other slots answer throughout; afterwards every user's
        last acknowledged token is good: no acknowledged rotation lost."""
        a = self.instance("--redis-wait-replicas", "1", "--refresh-grace", "30s", *UNLIMITED)
        tokens = self.users(a, 12)
        victim = self.cluster.primary_of(self.slot_of(tokens["user0"]))
        hit = {u for u, t in tokens.items() if self.cluster.primary_of(self.slot_of(t)) == victim}
        spared = set(tokens) - hit
        self.assertTrue(spared, "every user on one primary")
        self.assertEqual(metric_value(metrics(a), "floodgate_store_up"), 1)
        halt, log = self.load(a, tokens)
        try:
            time.sleep(1.0)
            t_kill = time.monotonic()
            self.cluster.kill(victim)
            # the replica is promoted (cluster-node-timeout 1 s); meanwhile the store is
            # partly down, which /metrics says and /readyz does not (other slots serve)
            self.assertTrue(wait_for(lambda: metric_value(metrics(a), "floodgate_store_up") == 0,
                                     10))
            self.assertEqual(a.request("GET", "/readyz")[0], 200)
            promoted = wait_for(lambda: self.cluster.primary_of(self.slot_of(tokens["user0"]))
                                not in (None, victim), 20)
            self.assertTrue(promoted, "no failover")
            time.sleep(1.0)
            t_back = time.monotonic()
            self.cluster.start(victim)  # it comes back as the new primary's replica
            acked_after = lambda: [r for r in log if r[0] > t_back and r[1] in hit and r[2] == 200]
            self.assertTrue(wait_for(acked_after, 30), "the hit slots never answered again")
            time.sleep(0.5)
        finally:
            halt()
        statuses = {st for _, _, st in log}
        self.assertEqual(statuses - {200, 503}, set(), "an answer other than 200 or 503")
        during = [r for r in log if t_kill < r[0] < t_back]
        self.assertTrue([r for r in during if r[1] in spared and r[2] == 200],
                        "the other slots did not answer while a primary was down")
        self.assertEqual({r[2] for r in during if r[1] in hit} - {503, 200}, set())
        acked = sum(1 for r in log if r[2] == 200)
        # every user's last acknowledged token rotates: none of them was lost
        lost = [u for u, t in tokens.items() if self.refresh(a, t)[0] != 200]
        print(f"\n# {acked} rotations acknowledged, {len(during)} requests while down, "
              f"lost: {len(lost)}", file=sys.stderr)
        self.assertEqual(lost, [])
        self.assertTrue(wait_for(lambda: metric_value(metrics(a), "floodgate_store_up") == 1, 10))
        self.assert_clean_exit(a)

    def test_a_reshard_of_1000_slots_under_load_answers_every_request(self):
        """redis-cli --cluster reshard moves 1,000 slots from one primary to another while
        refreshes run: every request is answered 200 (MOVED, ASK and TRYAGAIN are followed
        and retried inside floodgate), and the users whose slots moved are served by the
        new owner after."""
        a = self.instance("--refresh-grace", "30s", *UNLIMITED)
        tokens = self.users(a, 100)  # (about 6 of them in the slots that move)
        nodes = self.cluster.nodes()
        primaries = sorted(p for p, n in nodes.items() if n[1])
        src, dst = primaries[0], primaries[1]
        before = {u: self.cluster.primary_of(self.slot_of(t)) for u, t in tokens.items()}
        halt, log = self.load(a, tokens)
        try:
            time.sleep(0.5)
            r = subprocess.run(
                ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{src}", "--cluster-from",
                 nodes[src][0], "--cluster-to", nodes[dst][0], "--cluster-slots", "1000",
                 "--cluster-yes"], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
            time.sleep(0.5)
        finally:
            halt()
        moved = [u for u, t in tokens.items()
                 if before[u] == src and self.cluster.primary_of(self.slot_of(t)) == dst]
        bad = [x for x in log if x[2] != 200]
        print(f"\n# {len(log)} refreshes during the reshard, {len(moved)} users moved, "
              f"not 200: {len(bad)}", file=sys.stderr)
        self.assertEqual(bad, [])
        self.assertTrue(moved, "no user's slot was among those moved")
        for u in moved:
            self.assertEqual(self.refresh(a, tokens[u])[0], 200)
        redirects = sum(float(ln.split()[-1]) for ln in metrics(a).splitlines()
                        if ln.startswith("floodgate_store_node_redirects_total{"))
        self.assertGreater(redirects, 0)
        self.assert_clean_exit(a)


if __name__ == "__main__":
    unittest.main()
