"""Helpers for integration tests that run real swarmpki processes.

Every node gets a data directory under a fresh temporary directory and a
free port on 127.0.0.1. Teardown stops the processes this test started (by
their process ids), then fails the test if any node's log contains a sanitizer
report.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("SWARMPKI_BIN", "swarmpki")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return f"exit={self.code} stdout={self.out!r} stderr={self.err!r}"


class Node:
    """One data directory and the swarmpki process running from it."""

    def __init__(self, case, name):
        self.case = case
        self.name = name
        self.data_dir = os.path.join(case.base, name)
        self.addr = None

    def cli(self, *args, timeout=60):
        proc = subprocess.run([BIN, "--data-dir", self.data_dir, *args], capture_output=True,
                              text=True, timeout=timeout, env=self.case.env)
        return Result(proc)

    def pid(self):
        try:
            with open(os.path.join(self.data_dir, "swarmpki.pid")) as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def init(self, *extra):
        self.addr = f"127.0.0.1:{free_port()}"
        r = self.cli("init", "--listen-addr", self.addr, "--detach", *extra)
        self.case.assertEqual(r.code, 0, r)
        self.case.started.append(self)
        return r

    def join(self, manager, token=None, *extra, expect=0):
        token = token or manager.token("worker")
        r = self.cli("join", "--token", token, "--detach", *extra, manager.addr)
        if expect is not None:
            self.case.assertEqual(r.code, expect, r)
        if r.code == 0:
            self.case.started.append(self)
        return r

    def run(self, expect=0):
        r = self.cli("run", "--detach")
        if expect is not None:
            self.case.assertEqual(r.code, expect, r)
        if r.code == 0 and self not in self.case.started:
            self.case.started.append(self)
        return r

    def stop(self):
        r = self.cli("stop")
        self.case.assertEqual(r.code, 0, r)

    def kill9(self):
        pid = self.pid()
        self.case.assertGreater(pid, 0, f"{self.name} has no pid file")
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)

    def token(self, role):
        r = self.cli("join-token", "-q", role)
        self.case.assertEqual(r.code, 0, r)
        return r.out.strip()

    def nodes(self):
        r = self.cli("node", "ls", "--format", "json")
        self.case.assertEqual(r.code, 0, r)
        return json.loads(r.out)

    def conf(self):
        values = {}
        with open(os.path.join(self.data_dir, "node.conf")) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    key, value = line.strip().split("=", 1)
                    values[key] = value
        return values

    def log(self):
        try:
            with open(os.path.join(self.data_dir, "swarmpki.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cert_path(self, name="swarm-node.crt"):
        return os.path.join(self.data_dir, "certificates", name)


def wait_gone(pid, timeout=15):
    """Wait until process pid has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def wait_until(predicate, timeout=15, interval=0.1):
    """Poll predicate until it returns a true value; return that value or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def openssl(*args):
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    return proc


class ClusterCase(unittest.TestCase):
    """Base class: a temporary directory and cleanup of every node started."""

    heartbeat_ms = "300"

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="swarmpki-it-")
        self.started = []
        self.env = dict(os.environ, SWARMPKI_HEARTBEAT_MS=self.heartbeat_ms)

    def tearDown(self):
        for node in self.started:
            pid = node.pid()
            if pid > 0:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                if not wait_gone(pid, timeout=10):
                    os.kill(pid, signal.SIGKILL)
                    wait_gone(pid)
        reports = []
        for node in self.started:
            log = node.log()
            if any(mark in log for mark in SANITIZER_MARKS):
                reports.append(f"--- {node.name} ---\n{log[-4000:]}")
        shutil.rmtree(self.base, ignore_errors=True)
        if reports:
            self.fail("sanitizer report in node logs:\n" + "\n".join(reports))

    def node(self, name):
        return Node(self, name)
