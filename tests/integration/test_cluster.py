"""A manager and workers: init, join, certificates on disk, listing,
heartbeats and restarts."""

import json
import os
import re
import stat
import subprocess
import time
import unittest

from harness import ClusterCase, openssl, wait_gone, wait_until

ID = re.compile(r"^[0-9a-z]{25}$")


class ClusterTest(ClusterCase):
    def test_init_join_and_certificates(self):
        manager = self.node("manager")
        out = manager.init().out
        cluster_id = manager.conf()["cluster_id"]
        self.assertRegex(cluster_id, ID)
        self.assertIn(cluster_id, out)
        self.assertIn("swarmpki join --data-dir DIR --token SWMTKN-1-", out)

        workers = [self.node(f"worker-{i}") for i in range(3)]
        for w in workers:
            w.join(manager)

        nodes = manager.nodes()
        self.assertEqual(len(nodes), 4)
        by_id = {n["id"]: n for n in nodes}
        for w in workers:
            node_id = w.conf()["node_id"]
            self.assertRegex(node_id, ID)
            self.assertEqual(by_id[node_id]["role"], "worker")
            subject = openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
                              w.cert_path()).stdout.strip()
            self.assertEqual(subject, f"subject=CN={node_id},OU=swarm-worker,O={cluster_id}")
            serial = openssl("x509", "-noout", "-serial", "-in", w.cert_path()).stdout
            self.assertEqual(serial.strip().split("=")[1].lower().zfill(40),
                             by_id[node_id]["cert_serial"])
            verify = openssl("verify", "-CAfile", w.cert_path("swarm-root-ca.crt"), w.cert_path())
            self.assertEqual(verify.returncode, 0, verify.stderr)
            mode = stat.S_IMODE(os.stat(w.cert_path("swarm-node.key")).st_mode)
            self.assertEqual(mode, 0o600)
        self.assertEqual(by_id[manager.conf()["node_id"]]["role"], "manager")

    def test_worker_status_follows_heartbeats(self):
        manager = self.node("manager")
        manager.init()
        worker = self.node("worker")
        worker.join(manager)
        node_id = worker.conf()["node_id"]

        def status():
            return {n["id"]: n["status"] for n in manager.nodes()}[node_id]

        self.assertTrue(wait_until(lambda: status() == "ready", timeout=10))
        worker.kill9()
        # Three missed heartbeats of 300 ms, checked every second.
        self.assertTrue(wait_until(lambda: status() == "down", timeout=10))
        worker.run()
        self.assertTrue(wait_until(lambda: status() == "ready", timeout=10))

    def test_manager_restart_keeps_joins(self):
        manager = self.node("manager")
        manager.init()
        workers = [self.node(f"worker-{i}") for i in range(3)]
        for w in workers:
            w.join(manager)
        before = sorted(n["id"] for n in manager.nodes())
        manager.kill9()
        manager.run()
        after = sorted(n["id"] for n in manager.nodes())
        self.assertEqual(before, after)

        # Workers reconnect by themselves after the restart.
        def all_ready():
            return all(n["status"] == "ready" for n in manager.nodes())

        self.assertTrue(wait_until(all_ready, timeout=15))

    def test_worker_restart_keeps_identity(self):
        manager = self.node("manager")
        manager.init()
        worker = self.node("worker")
        worker.join(manager)
        node_id = worker.conf()["node_id"]
        with open(worker.cert_path()) as f:
            cert = f.read()
        worker.kill9()
        worker.run()
        self.assertEqual(worker.conf()["node_id"], node_id)
        with open(worker.cert_path()) as f:
            self.assertEqual(f.read(), cert)
        info = worker.cli("info")
        self.assertEqual(info.code, 0, info)
        self.assertIn(node_id, info.out)

    def test_stop_and_run(self):
        manager = self.node("manager")
        manager.init()
        pid = manager.pid()
        manager.stop()
        self.assertFalse(os.path.exists(os.path.join(manager.data_dir, "swarmpki.pid")))
        # stop returns once the process has exited; init may reap it later.
        self.assertTrue(wait_gone(pid, timeout=0.5))
        r = manager.cli("info")
        self.assertEqual(r.code, 1, r)
        self.assertIn("no swarmpki node is running", r.err)
        manager.run()
        self.assertEqual(manager.cli("info").code, 0)

    def test_second_process_is_rejected(self):
        manager = self.node("manager")
        manager.init()
        r = manager.cli("run")
        self.assertEqual(r.code, 1, r)
        self.assertIn("another swarmpki process", r.err)

    def test_join_token_output(self):
        manager = self.node("manager")
        manager.init()
        worker_token = manager.token("worker")
        manager_token = manager.token("manager")
        self.assertRegex(worker_token, r"^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$")
        self.assertNotEqual(worker_token, manager_token)
        self.assertEqual(worker_token[:59], manager_token[:59])
        r = manager.cli("join-token", "worker")
        self.assertIn(f"--token {worker_token} {manager.addr}", r.out)

    def test_update_cert_expiry(self):
        manager = self.node("manager")
        manager.init()
        r = manager.cli("update", "--cert-expiry", "30m")
        self.assertEqual(r.code, 2, r)
        self.assertIn("minimum is 1h", r.err)
        r = manager.cli("update", "--cert-expiry", "1h30m")
        self.assertEqual(r.code, 0, r)
        worker = self.node("worker")
        worker.join(manager)
        end = openssl("x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in",
                      worker.cert_path())
        start = openssl("x509", "-noout", "-startdate", "-dateopt", "iso_8601", "-in",
                        worker.cert_path())
        fmt = "%Y-%m-%d %H:%M:%SZ"
        not_after = time.mktime(time.strptime(end.stdout.strip().split("=")[1], fmt))
        not_before = time.mktime(time.strptime(start.stdout.strip().split("=")[1], fmt))
        # Backdated by 1 h, valid for 1h30m from issuance.
        self.assertEqual(not_after - not_before, 2.5 * 3600)

    def test_node_ls_in_parts(self):
        # 3,800 nodes make about 1.1 MB of JSON, more than the 1 MiB of text
        # one control response may carry, so the list arrives in parts.
        manager = self.node("manager")
        manager.init()
        joins = 3800
        bench = subprocess.run(
            [os.environ["JOIN_BENCH"], "--manager", manager.addr, "--token",
             manager.token("worker"), "--joins", str(joins), "--warmup", "0",
             "--concurrency", "16"],
            capture_output=True, text=True, timeout=240, env=self.env)
        self.assertEqual(bench.returncode, 0, bench.stderr)

        r = manager.cli("node", "ls", "--format", "json")
        self.assertEqual(r.code, 0, r.err)
        self.assertGreater(len(r.out), 1024 * 1024)
        nodes = json.loads(r.out)
        self.assertEqual(len(nodes), joins + 1)
        self.assertEqual(len({n["id"] for n in nodes}), joins + 1)
        self.assertEqual(sum(1 for n in nodes if n["role"] == "worker"), joins)

        r = manager.cli("node", "ls")
        self.assertEqual(r.code, 0, r.err)
        lines = r.out.splitlines()
        self.assertTrue(lines[0].startswith("ID "))
        self.assertEqual(len(lines), joins + 2)
        self.assertEqual({line.split()[0] for line in lines[1:]}, {n["id"] for n in nodes})


if __name__ == "__main__":
    unittest.main()
