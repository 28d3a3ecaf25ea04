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

    def kill_under_refreshes(self, wait_replicas):
        """kill -9 of a primary under refreshes while its replica is behind: its slots'
        refreshes get 503 (never "invalid") until the replica is promoted; the other slots
        answer throughout; the old primary, started again, becomes the new one's replica.
        Returns (instance, tokens: each user's last acknowledged token, the users whose
        last acknowledged token is unknown after it all: their last rotations lost)."""
        a = self.instance("--redis-wait-replicas", str(wait_replicas), "--refresh-grace", "30s",
                          *UNLIMITED)
        tokens = self.users(a, 12)
        victim = self.cluster.primary_of(self.slot_of(tokens["user0"]))
        replica = self.cluster.replica_of(victim)
        hit = {u for u, t in tokens.items() if self.cluster.primary_of(self.slot_of(t)) == victim}
        spared = set(tokens) - hit
        self.assertTrue(spared, "every user on one primary")
        self.assertEqual(metric_value(metrics(a), "floodgate_store_up"), 1)
        halt, log = self.load(a, tokens)
        try:
            time.sleep(1.0)
            # the replica falls behind: killed and started again, it loads its own
            # append-only file and waits for a full copy of its primary's data, which comes
            # after repl-diskless-sync-delay (5 s): until then what the primary writes is on
            # the primary alone (WAIT 1 cannot be satisfied: those refreshes answer 503)
            self.cluster.kill(replica)
            time.sleep(0.3)
            self.cluster.start(replica)
            time.sleep(0.3)
            t_kill = time.monotonic()
            self.cluster.kill(victim)
            # the replica is promoted (cluster-node-timeout 1 s); meanwhile the store is
            # partly down, which /metrics says and /readyz does not (other slots serve)
            self.assertTrue(wait_for(lambda: metric_value(metrics(a), "floodgate_store_up") == 0,
                                     10))
            self.assertEqual(a.request("GET", "/readyz")[0], 200)
            promoted = wait_for(lambda: self.cluster.primary_of(self.slot_of(tokens["user0"]))
                                == replica, 20)
            self.assertTrue(promoted, "no failover")
            time.sleep(1.0)
            t_back = time.monotonic()
            # the old primary comes back as the new one's replica (a full copy, at once)
            self.cluster.cli(replica, "config", "set", "repl-diskless-sync-delay", "0")
            self.cluster.start(victim)
            self.assertTrue(wait_for(lambda: "master_link_status:up" in self.cluster.cli(
                victim, "info", "replication"), 30), "the old primary did not rejoin")
            # (an answer: 200, or without WAIT 401 for a token whose rotation was lost)
            answered = lambda: [r for r in log if r[0] > t_back and r[1] in hit
                                and r[2] not in (0, 503)]
            self.assertTrue(wait_for(answered, 30), "the hit slots never answered again")
            time.sleep(0.5)
        finally:
            halt()
        self.assertTrue(wait_for(lambda: metric_value(metrics(a), "floodgate_store_up") == 1, 10))
        statuses = {st for _, _, st in log}
        self.assertEqual(statuses - {200, 503, 200 if wait_replicas else 401}, set(),
                         "an unexpected answer")
        during = [r for r in log if t_kill < r[0] < t_back]
        self.assertTrue([r for r in during if r[1] in spared and r[2] == 200],
                        "the other slots did not answer while a primary was down")
        acked = sum(1 for r in log if r[2] == 200)
        # each user's last acknowledged token: good (200) or lost (401). The cluster is
        # whole again, but on a loaded machine the rejoined replica may still be slow to
        # confirm a write (WAIT): a 503 is "not confirmed, try again", and a client tries
        # again with the same token (a rotation applied but not confirmed is inside the
        # grace period); one that still answers 503 after 10 s fails the test
        def settled(token):
            deadline = time.monotonic() + 10
            while True:
                st = self.refresh(a, token)[0]
                if st != 503 or time.monotonic() > deadline:
                    return st
                time.sleep(0.2)
        after = {u: settled(t) for u, t in tokens.items()}
        self.assertEqual(set(after.values()) - {200, 401}, set(), after)
        lost = sorted(u for u, st in after.items() if st == 401)
        print(f"\n# redis_wait_replicas = {wait_replicas}: {acked} rotations acknowledged, "
              f"{len(during)} requests while a primary was down, lost: {len(lost)}",
              file=sys.stderr)
        return a, tokens, lost

    def test_a_primary_killed_under_refreshes_loses_no_acknowledged_rotation(self):
        """With redis_wait_replicas = 1, afterwards every user's last acknowledged token is
        good: no acknowledged rotation lost."""
        a, _, lost = self.kill_under_refreshes(1)
        self.assertEqual(lost, [])
        self.assert_clean_exit(a)

    def test_without_wait_a_killed_primary_may_lose_a_last_rotation_which_asks_for_a_sign_in(self):
        """With redis_wait_replicas = 0 (the default) a rotation the primary acknowledged
        and died before its replica had it is lost (docs/deploy.md): the user's newest
        token is unknown after the failover (401 invalid_grant, never a 503 that would be
        retried forever, never a pass) and a sign-in mends it; every other user's token
        rotates. How many were lost in this run is printed."""
        a, tokens, lost = self.kill_under_refreshes(0)
        for u in lost:
            st, _, body = a.request("POST", "/v1/auth/refresh",
                                    json.dumps({"refresh_token": tokens[u]}).encode(), J)
            self.assertEqual((st, json.loads(body).get("error")), (401, "invalid_grant"), body)
            self.assertEqual(self.login(a, u)[0], 200)
        self.assert_clean_exit(a)
        if not lost:
            # The replica is meant to lag (restarted just before, waiting for a full copy),
            # but once in a while it had everything when its primary died: seen once in a
            # make check (lost: 0 of 10,733). Then no rotation was lost and nothing above
            # was shown: said so, not passed and not failed.
            self.skipTest("the replica had caught up when its primary was killed: no "
                          "rotation was lost, so none could be shown mended")

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
