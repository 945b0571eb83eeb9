"""Helpers for integration tests that run real swarmpki processes.

Every node gets a data directory under a fresh temporary directory and a
free port on 127.0.0.1. Teardown stops the processes this test started (by
their process ids), then fails the test if any node's log contains a sanitizer
report.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("SWARMPKI_BIN", "swarmpki")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
RAFT_LINE = re.compile(r"^Raft:\s+term (\d+), leader (.+), commit (\d+), applied (\d+)$")


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
        # Pids this test killed with SIGKILL. Their pid files stay behind,
        # and teardown must not signal a pid that the system may reuse.
        self.dead_pids = set()

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

    def join_manager(self, manager, *extra, expect=0):
        """Join as a manager through manager, listening on a free port."""
        self.addr = f"127.0.0.1:{free_port()}"
        return self.join(manager, manager.token("manager"), "--listen-addr", self.addr, *extra,
                         expect=expect)

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
        self.dead_pids.add(pid)
        wait_gone(pid)

    def token(self, role):
        r = self.cli("join-token", "-q", role)
        self.case.assertEqual(r.code, 0, r)
        return r.out.strip()

    def nodes(self):
        r = self.cli("node", "ls", "--format", "json")
        self.case.assertEqual(r.code, 0, r)
        return json.loads(r.out)

    def try_nodes(self):
        """Return the node list, or None while the node cannot list it."""
        r = self.cli("node", "ls", "--format", "json")
        if r.code != 0:
            return None
        return json.loads(r.out)

    def raft_info(self):
        """Parse the Raft lines of `info`, or return None when info fails.

        The result contains term, leader (an address, "this manager" or
        "none"), commit, applied and members, a list of dicts with raft_id,
        node_id, addr, role, reachable and leader."""
        r = self.cli("info")
        if r.code != 0:
            return None
        result = None
        for line in r.out.splitlines():
            match = RAFT_LINE.match(line)
            if match:
                result = {"term": int(match[1]), "leader": match[2], "commit": int(match[3]),
                          "applied": int(match[4]), "members": []}
            elif result is not None and line.startswith("  "):
                fields = line.split()
                if len(fields) < 5:
                    continue
                result["members"].append({
                    "raft_id": fields[0], "node_id": fields[1], "addr": fields[2],
                    "role": fields[3], "reachable": fields[4].rstrip(",") == "reachable",
                    "leader": fields[-1] == "leader"})
            elif result is not None and line and not line.startswith("Members:"):
                break
        return result

    def node_id(self):
        return self.conf()["node_id"]

    def cert_serial(self):
        """Return the serial of swarm-node.crt as 40 lowercase hex digits."""
        r = openssl("x509", "-noout", "-serial", "-in", self.cert_path())
        self.case.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip().split("=")[1].lower().zfill(40)

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


def has_exited(pid):
    """Return whether process pid has exited.

    A detached node is reparented to the init process, which may reap it
    late. A zombie counts as exited, because it holds no locks, files or
    ports any more. Without /proc only a reaped process counts."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The state follows the command name, which is in parentheses.
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return os.path.exists("/proc/self/stat")
    except (OSError, IndexError):
        return False


def wait_gone(pid, timeout=15):
    """Wait until process pid has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if has_exited(pid):
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
        # Signal every node before waiting for any, because a manager that
        # loses its quorum waits for a leadership transfer before it exits.
        signalled = []
        for node in self.started:
            pid = node.pid()
            if pid <= 0 or pid in node.dead_pids:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            signalled.append(pid)
        for pid in signalled:
            if not wait_gone(pid, timeout=10):
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid)
        reports = []
        for node in self.started:
            log = node.log()
            at = min((log.find(m) for m in SANITIZER_MARKS if m in log), default=-1)
            if at >= 0:
                reports.append(f"--- {node.name} ---\n{log[max(0, at - 1500):at + 6000]}")
        shutil.rmtree(self.base, ignore_errors=True)
        if reports:
            self.fail("sanitizer report in node logs:\n" + "\n".join(reports))

    def node(self, name):
        return Node(self, name)


class ManagerCase(ClusterCase):
    """A ClusterCase for clusters of several managers.

    Random choices come from self.rng, seeded from SWARMPKI_TEST_SEED when
    set. A failed test prints the seed and the tail of every manager's log."""

    def setUp(self):
        super().setUp()
        self.seed = int(os.environ.get("SWARMPKI_TEST_SEED") or random.randrange(1 << 31))
        self.rng = random.Random(self.seed)
        self.managers = []

    def tearDown(self):
        if self.has_failed():
            self.print_debug()
        super().tearDown()

    def has_failed(self):
        """Return whether the test method or one of its subtests failed.

        unittest has no public way to ask this during tearDown, so this
        reads its private state: the result's lists on Python 3.11 and
        later, the outcome's error list before that."""
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        reports = list(getattr(outcome, "errors", []))
        result = getattr(outcome, "result", None)
        if result is not None:
            reports += list(getattr(result, "failures", [])) + list(getattr(result, "errors", []))
        return any(getattr(test, "test_case", test) is self and error is not None
                   for test, error in reports)

    def print_debug(self):
        lines = [f"\n=== {self.id()} failed; SWARMPKI_TEST_SEED={self.seed} ==="]
        for m in self.managers:
            try:
                node_id = m.node_id()
            except (FileNotFoundError, KeyError):
                node_id = "-"
            lines.append(f"--- {m.name} addr={m.addr} node_id={node_id} pid={m.pid()} ---")
            tail = [line for line in m.log().splitlines() if "level=debug" not in line]
            lines.extend(tail[-40:])
        print("\n".join(lines), file=sys.stderr)

    def start_managers(self, count):
        """Start a cluster of count managers, each joining through the one
        before it, and wait until all of them are voters."""
        first = self.node("manager-0")
        first.init()
        self.managers.append(first)
        for i in range(1, count):
            m = self.node(f"manager-{i}")
            self.managers.append(m)
            m.join_manager(self.managers[i - 1])
        self.wait_voters(self.managers, count)
        return list(self.managers)

    def wait_voters(self, managers, count, timeout=20):
        """Wait until every manager in managers lists count voters and they
        name the same leader."""
        def settled():
            for m in managers:
                info = m.raft_info()
                if info is None:
                    return False
                if sum(1 for s in info["members"] if s["role"] == "voter") != count:
                    return False
            return self.find_leader(managers) is not None

        ok = wait_until(settled, timeout=timeout, interval=0.2)
        self.assertTrue(ok, f"managers did not settle on {count} voters: " +
                        repr({m.name: m.raft_info() for m in managers}))

    def find_leader(self, managers):
        """Return the manager that every one of managers names as leader, or
        None when they do not agree or the leader is not among them."""
        by_addr = {m.addr: m for m in managers}
        named = set()
        for m in managers:
            info = m.raft_info()
            if info is None or info["leader"] == "none":
                return None
            named.add(m.addr if info["leader"] == "this manager" else info["leader"])
        if len(named) != 1:
            return None
        return by_addr.get(named.pop())

    def wait_leader(self, managers, timeout=15):
        leader = wait_until(lambda: self.find_leader(managers), timeout=timeout, interval=0.1)
        self.assertIsNotNone(leader, "no leader that all of " +
                             ", ".join(m.name for m in managers) + " agree on")
        return leader

    @staticmethod
    def node_table(nodes):
        """Reduce a node list to what every manager must agree on."""
        return sorted((n["id"], n["role"], n["cert_serial"]) for n in nodes)

    def wait_same_nodes(self, managers, timeout=20):
        """Wait until every manager lists the same nodes; return that list."""
        tables = {}

        def same():
            tables.clear()
            for m in managers:
                nodes = m.try_nodes()
                if nodes is None:
                    return False
                tables[m.name] = self.node_table(nodes)
            return len({tuple(t) for t in tables.values()}) == 1

        self.assertTrue(wait_until(same, timeout=timeout, interval=0.2),
                        f"managers list different nodes: {tables!r}")
        return next(iter(tables.values()))

    def join_workers(self, via, count, prefix, threads=3):
        """Join count workers through manager via, threads at a time, and
        return them. The test fails if any join fails."""
        token = via.token("worker")
        joined = []
        failures = []
        names = iter(range(count))
        lock = threading.Lock()

        def work():
            while True:
                with lock:
                    index = next(names, None)
                if index is None:
                    return
                w = self.node(f"{prefix}-{index}")
                r = w.join(via, token, expect=None)
                with lock:
                    (joined if r.code == 0 else failures).append((w, r))

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        self.assertEqual([(w.name, r) for w, r in failures], [])
        return [w for w, _ in joined]
