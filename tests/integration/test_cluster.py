# SPDX-License-Identifier: MIT
"""The store on a Redis Cluster (issue #14): two floodgate instances on a local cluster of
three primaries with a replica each. What every shared store must do (test_scaleout.py's
SharedStoreTests: a token from one instance good on the other, a revocation seen across,
refresh reuse across instances, the lockout and login rate shared, a user made on one
signing in on the other and a new password ending the sessions everywhere), where a user's
records, the login guard's counters and the cached tables live in different slots."""

import os
import subprocess
import tempfile
import unittest

from tests.integration.fgtest import REDIS_MODE, Cluster, ServerTest
from tests.integration.test_scaleout import SharedStoreTests


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


if __name__ == "__main__":
    unittest.main()
