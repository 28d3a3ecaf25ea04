# SPDX-License-Identifier: MIT
"""The documented deployment, by hand (issue #15 item 5: docs/deploy.md's commands run as
written, the unit's start done as systemd would do it), and the Debian package (issue #15
item 2), installed on this machine with dpkg and purged
again: its system user, who may read its configuration, its admin token made once, its
state and log directories, the manual page, the hardened unit; the installed binary started
as the service would start it (the configuration, the secrets, the user), its server key
made where the hardened unit can write; a reinstall keeps the token and the data; a purge
takes everything away. Run by `make package` (part of `make check`) with FLOODGATE_DEB
naming the .deb that `make deb` built; as root only, and never over an installed floodgate."""

import gzip
import grp
import json
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import time
import unittest

from tests.integration.fgtest import ROOT, parse_one, recv_all

DEB = os.environ.get("FLOODGATE_DEB", "")
UNIT = "/lib/systemd/system/floodgate.service"


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", "floodgate"],
                       capture_output=True, text=True)
    return "install ok installed" in r.stdout


def mode_owner(path):
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name)


def get(port, path, token=None):
    h = f"Authorization: Bearer {token}\r\n" if token else ""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{h}\r\n".encode())
        return parse_one(recv_all(s, 10))


def unit_start(unit_path, extra):
    """What systemd does with the shipped unit, without systemd (none runs as PID 1 here):
    its StateDirectory and LogsDirectory made for its User, its EnvironmentFile read, its
    ExecStart run as that user (setpriv execs it: SIGTERM reaches floodgate), with extra
    arguments (ports of the test's own). The process and its log file."""
    with open(unit_path) as f:
        unit = dict(re.findall(r"^(\w+)=(.*)$", f.read(), re.M))
    user = unit["User"]
    for path, mode in (("/var/lib/" + unit["StateDirectory"],
                        unit.get("StateDirectoryMode", "0755")),
                       ("/var/log/" + unit["LogsDirectory"], "0755")):
        subprocess.run(["install", "-d", "-m", mode, "-o", user, "-g", unit["Group"], path],
                       check=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    with open(unit["EnvironmentFile"].lstrip("-")) as f:
        env.update(dict(re.findall(r"^(\w+)=(.*)$", f.read(), re.M)))
    log_path = "/tmp/fg-package-test.log"
    log = open(log_path, "wb")
    p = subprocess.Popen(["/usr/bin/setpriv", "--reuid", user, "--regid", unit["Group"],
                          "--init-groups", *unit["ExecStart"].split(), *extra],
                         env=env, stdout=subprocess.DEVNULL, stderr=log)
    return p, log_path


def ports_of(log_path, timeout=20):
    deadline, ports, text = time.monotonic() + timeout, {}, ""
    while time.monotonic() < deadline and len(ports) < 2:
        with open(log_path) as f:
            text = f.read()
        for what, port in re.findall(r'"msg":"(listening|admin API listening)",'
                                     r'"addr":"127\.0\.0\.1:(\d+)"', text):
            ports[what] = int(port)
        time.sleep(0.05)
    return ports.get("listening"), ports.get("admin API listening"), text


@unittest.skipUnless(DEB, "make package runs it, with the .deb make deb built")
@unittest.skipUnless(os.geteuid() == 0, "dpkg -i needs root")
class PackageTest(unittest.TestCase):
    def test_a_deployment_by_hand_as_documented(self):
        """docs/deploy.md, "The service, by hand": each command as written (as root: sudo
        dropped), but systemctl (no systemd runs here), whose start is done as the unit
        says; the service ready, its key made, stopped by SIGTERM with exit 0; then all of
        it taken away again."""
        if installed() or os.path.exists("/etc/floodgate") or subprocess.run(
                ["getent", "passwd", "floodgate"], capture_output=True).returncode == 0:
            self.skipTest("floodgate is installed here already: not touched")
        with open(os.path.join(ROOT, "docs", "deploy.md")) as f:
            doc = f.read()
        block = re.search(r"## The service, by hand\n\n```sh\n(.*?)```", doc, re.S).group(1)
        self.addCleanup(self.undeploy)
        ran = 0
        for line in block.strip().split("\n"):
            cmd = re.sub(r"(^|&& )sudo ", r"\1", line)
            if "systemctl" in cmd:
                continue
            r = subprocess.run(["sh", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                               timeout=60, env={"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:"
                                                        "/sbin:/bin"})
            self.assertEqual(r.returncode, 0, f"{line}\n{r.stdout}{r.stderr}")
            ran += 1
        self.assertGreaterEqual(ran, 7)
        unit = "/etc/systemd/system/floodgate.service"
        r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), r.stdout)
        p, log = unit_start(unit, ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        port, aport, text = ports_of(log)
        self.assertIsNotNone(aport, text)
        self.assertEqual(get(port, "/readyz")[0], 200)
        self.assertEqual(mode_owner("/var/lib/floodgate/secret.key"),
                         (0o600, "floodgate", "floodgate"))
        with open("/etc/floodgate/secrets.env") as f:
            token = f.read().strip().split("=", 1)[1]
        self.assertEqual(get(aport, "/admin/users", token)[0], 200)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0)

    def undeploy(self):
        subprocess.run("rm -rf /usr/local/bin/floodgate /etc/floodgate /var/lib/floodgate "
                       "/var/log/floodgate /etc/systemd/system/floodgate.service; "
                       "userdel floodgate", shell=True, capture_output=True)
        if os.path.exists("/tmp/fg-package-test.log"):
            os.unlink("/tmp/fg-package-test.log")

    def install(self):
        if installed():
            self.skipTest("a floodgate package is installed here already: not touched")
        had_user = subprocess.run(["getent", "passwd", "floodgate"],
                                  capture_output=True).returncode == 0
        if not had_user:  # (the package leaves its system user; the test leaves none)
            self.addCleanup(subprocess.run, ["userdel", "floodgate"], capture_output=True)
        self.addCleanup(self.purge)
        r = subprocess.run(["dpkg", "-i", DEB], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def purge(self):
        subprocess.run(["dpkg", "--purge", "floodgate"], capture_output=True, timeout=300)

    def secrets(self):
        with open("/etc/floodgate/secrets.env") as f:
            m = re.fullmatch(r"FLOODGATE_ADMIN_TOKEN=([0-9a-f]{64})\n", f.read())
        self.assertIsNotNone(m)
        return m.group(1)

    def test_install_start_reinstall_purge(self):
        self.install()
        # the system user, and who may read what
        u = pwd.getpwnam("floodgate")
        self.assertEqual((u.pw_dir, u.pw_shell), ("/var/lib/floodgate", "/usr/sbin/nologin"))
        self.assertEqual(mode_owner("/etc/floodgate"), (0o750, "root", "floodgate"))
        self.assertEqual(mode_owner("/etc/floodgate/floodgate.ini"), (0o640, "root", "floodgate"))
        self.assertEqual(mode_owner("/etc/floodgate/secrets.env"), (0o600, "root", "root"))
        self.assertEqual(mode_owner("/var/lib/floodgate"), (0o700, "floodgate", "floodgate"))
        self.assertEqual(mode_owner("/var/log/floodgate"), (0o750, "floodgate", "floodgate"))
        token = self.secrets()
        # the package's version is the binary's (debian/changelog against core/version.h)
        v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "floodgate"],
                           capture_output=True, text=True).stdout
        r = subprocess.run(["/usr/sbin/floodgate", "--version"], capture_output=True, text=True)
        self.assertTrue(r.stdout.startswith(f"floodgate {v} "), (v, r.stdout))
        # the manual page, made from --help
        with gzip.open("/usr/share/man/man8/floodgate.8.gz", "rt") as f:
            man = f.read().replace("\\-", "-")  # (roff's escaped hyphens)
        self.assertIn("floodgate check-config FILE", man)
        self.assertIn("--admin-token", man)
        # the unit: the packaged binary, verified, hardened
        with open(UNIT) as f:
            self.assertIn("ExecStart=/usr/sbin/floodgate --config /etc/floodgate/floodgate.ini",
                          f.read())
        r = subprocess.run(["systemd-analyze", "verify", UNIT], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), r.stdout)
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for floodgate\.service: ([\d.]+)", r.stdout)
        self.assertLessEqual(float(m.group(1)), 2.5, r.stdout)
        # check-config as the docs say, reading the configuration as the service's user
        r = subprocess.run(["/usr/sbin/runuser", "-u", "floodgate", "--", "/usr/sbin/floodgate",
                            "check-config", "/etc/floodgate/floodgate.ini"],
                           env={"PATH": "/usr/bin:/bin", "FLOODGATE_ADMIN_TOKEN": token},
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        # started as the service: ready, its key made in its state directory, its admin API
        p, log = unit_start(UNIT, ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.addCleanup(lambda: os.path.exists(log) and os.unlink(log))
        port, aport, text = ports_of(log)
        self.assertIsNotNone(aport, text)
        self.assertEqual(get(port, "/readyz")[0], 200)
        self.assertEqual(mode_owner("/var/lib/floodgate/secret.key"),
                         (0o600, "floodgate", "floodgate"))
        st, _, body = get(aport, "/admin/users", token)
        self.assertEqual((st, json.loads(body)), (200, []))
        self.assertEqual(get(aport, "/admin/console")[0], 200)
        r = subprocess.run(["/usr/sbin/runuser", "-u", "floodgate", "--", "/usr/sbin/floodgate",
                            "--data-dir", "/var/lib/floodgate", "user", "list"],
                           env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)  # the CLI beside the running service
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0)
        key = open("/var/lib/floodgate/secret.key", "rb").read()
        # a reinstall (an upgrade) keeps the token, the key and the data
        r = subprocess.run(["dpkg", "-i", DEB], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.secrets(), token)
        self.assertEqual(open("/var/lib/floodgate/secret.key", "rb").read(), key)
        self.assertTrue(os.path.exists("/var/lib/floodgate/data.mdb"))
        # purged: nothing left but the system user
        r = subprocess.run(["dpkg", "--purge", "floodgate"], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for gone in ("/usr/sbin/floodgate", "/etc/floodgate", "/var/lib/floodgate",
                     "/var/log/floodgate", UNIT,
                     "/etc/systemd/system/multi-user.target.wants/floodgate.service"):
            self.assertFalse(os.path.lexists(gone), gone)
