# SPDX-License-Identifier: MIT
"""scripts/install-deps must name the Debian package behind every library the Makefile links:
a package installed by hand on one machine would otherwise hide a broken build on a new one."""

import os
import re
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def owner(path):
    r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    return r.stdout.split(":")[0] if r.returncode == 0 else None


class TestInstallDeps(unittest.TestCase):
    def test_every_linked_library_has_its_package_listed(self):
        with open(os.path.join(ROOT, "scripts", "install-deps")) as f:
            listed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", f.read()))
        with open(os.path.join(ROOT, "Makefile")) as f:
            pkgs = re.search(r"^PKGS := (.*)$", f.read(), re.M).group(1).split()
        for m in pkgs:
            pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", m],
                                   capture_output=True, text=True).stdout.strip()
            pkg = owner(os.path.join(pcdir, m + ".pc"))
            self.assertIsNotNone(pkg, f"no Debian package owns {m}.pc")
            self.assertIn(pkg, listed, f"{m} comes from {pkg}, missing in scripts/install-deps")
        hp = owner("/usr/include/http_parser.h")
        self.assertIn(hp, listed)
