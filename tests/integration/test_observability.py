# SPDX-License-Identifier: MIT
"""deploy/prometheus and deploy/grafana (issue #15 item 3): the alert rules pass promtool's
check and their unit tests, the scrape passes promtool's metrics check, and every metric a
rule or a dashboard panel names is in a real /metrics scrape."""

import json
import os
import re
import subprocess

from tests.integration.fgtest import BIN, REDIS_MODE, ServerTest, metric_value, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROM = os.path.join(ROOT, "deploy", "prometheus")
DASH = os.path.join(ROOT, "deploy", "grafana", "floodgate.json")
FAST = ("--argon2-memory", "1024", "--argon2-passes", "1")
NAME = re.compile(r"\b((?:floodgate|process)_[a-z0-9_]+)")


def promtool(*args, cwd=None):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def family(name):
    """The metric family a series name belongs to (a histogram's _bucket, _sum, _count)."""
    return re.sub(r"_(bucket|sum|count)$", "", name)


class TestObservability(ServerTest):
    def test_alert_rules_check_and_pass_their_unit_tests(self):
        r = promtool("check", "rules", "floodgate-alerts.yml", cwd=PROM)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 8 rules found", r.stdout)
        r = promtool("test", "rules", "floodgate-alerts.test.yml", cwd=PROM)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # every alert has a test that expects it to fire
        with open(os.path.join(PROM, "floodgate-alerts.yml")) as f:
            alerts = set(re.findall(r"- alert: (\w+)", f.read()))
        with open(os.path.join(PROM, "floodgate-alerts.test.yml")) as f:
            tested = f.read()
        for a in alerts:
            self.assertRegex(tested, rf"alertname: {a}\n +exp_alerts:\n +- exp_labels", a)

    def test_every_metric_named_exists_in_a_real_scrape(self):
        srv = self.start(*FAST)
        J = {"Content-Type": "application/json"}
        body = json.dumps({"username": "ann", "password": "correct horse battery"}).encode()
        self.assertEqual(srv.request("POST", "/v1/users", body, J)[0], 201)
        st, _, b = srv.request("POST", "/v1/auth/login", body, J)
        self.assertEqual(st, 200)
        st, _, _ = srv.request("POST", "/v1/auth/refresh", json.dumps(
            {"refresh_token": json.loads(b)["refresh_token"]}).encode(), J)
        self.assertEqual(st, 200)
        text = metrics(srv)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        have = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        with open(os.path.join(PROM, "floodgate-alerts.yml")) as f:
            rules = f.read()
        with open(DASH) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(dash["panels"]), 15)
        named = {family(n) for n in NAME.findall(rules + "\n".join(exprs))}
        self.assertGreater(len(named), 20)
        self.assertEqual(sorted(named - have), [], "named but not in /metrics")
        # the refresh above is counted where the dashboard and the reuse alert look
        self.assertRegex(text, r'floodgate_refresh_rotations_total\{result="rotated"\} 1\n')
        if not REDIS_MODE:  # the token it spent, held until the spent log is folded
            self.assertRegex(text, r"\nfloodgate_store_spent_held 1\n")
            self.assertRegex(text, r"\nfloodgate_store_folds_total 0\n")
            self.assertRegex(text, r"\nfloodgate_store_fold_spread 0\n")  # (none estimated)
            self.assertRegex(text, r"\nfloodgate_store_spent_filter_bytes 0\n")  # (no run)
            # three write transactions (the user, the login, the rotation), each fsync'd:
            # the time they took is counted, and it is a time, not a count of nanoseconds
            self.assertGreaterEqual(metric_value(text, "floodgate_store_commits_total"), 3)
            took = metric_value(text, "floodgate_store_commit_seconds_total")
            self.assertTrue(0 < took < 30, took)
        else:
            self.assertEqual(metric_value(text, "floodgate_store_commit_seconds_total"), 0)
        self.assert_clean_exit(srv)

    def test_threads_are_named_for_top_and_perf(self):
        """Each thread says what it is (top -H, perf --sort comm, /proc/PID/task/TID/comm):
        the event loops, the password-hashing workers, the store's writer and the event
        dispatcher (started for the audit log)."""
        srv = self.start(*FAST, "--threads", "2", "--workers", "2", "--audit-log", "-")
        task = f"/proc/{srv.proc.pid}/task"
        names = []
        for tid in os.listdir(task):
            with open(os.path.join(task, tid, "comm")) as f:
                names.append(f.read().strip())
        for want in ("fg-loop 0", "fg-loop 1", "fg-worker 0", "fg-worker 1", "fg-store",
                     "fg-events"):
            self.assertIn(want, names)
        self.assert_clean_exit(srv)
