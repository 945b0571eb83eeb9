"""The command line as the contract: option placement, help texts, exit
statuses and the read-only commands."""

import json
import os
import socket
import subprocess
import unittest

from harness import BIN, ClusterCase

COMMANDS = ["init", "join", "run", "stop", "info", "node", "join-token", "update"]


class CliTest(ClusterCase):
    def test_help_on_every_command(self):
        for command in COMMANDS:
            r = subprocess.run([BIN, command, "--help"], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 0, (command, r.stderr))
            self.assertIn("Usage: swarmpki", r.stdout, command)
        overview = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(overview.returncode, 0)
        for command in COMMANDS:
            self.assertIn(command, overview.stdout)

    def test_no_arguments_is_usage_error(self):
        r = subprocess.run([BIN], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)

    def test_malformed_address_usage_error(self):
        token = "SWMTKN-1-" + "a" * 50 + "-" + "b" * 25
        cases = [
            ("join", "--token", token, "127.0.0.1"),
            ("join", "--token", token, "127.0.0.1:99999"),
            ("join", "--token", token, "--listen-addr", "::1:4000", "127.0.0.1:4000"),
            ("init", "--listen-addr", "127.0.0.1:0"),
            ("init", "--listen-addr", "127.0.0.1:4000", "--advertise-addr", "host"),
        ]
        for args in cases:
            with self.subTest(args=args):
                node = self.node("bad-address")
                r = node.cli(*args)
                self.assertEqual(r.code, 2, r)
                self.assertIn("invalid address", r.err)
                self.assertFalse(os.path.exists(node.data_dir))

    def test_unspecified_advertise_usage_error(self):
        token = "SWMTKN-1-" + "a" * 50 + "-" + "b" * 25
        cases = [
            ("init", "--listen-addr", "0.0.0.0:4000"),
            ("init", "--listen-addr", "127.0.0.1:4000", "--advertise-addr", "[::]:4000"),
            ("join", "--token", token, "--listen-addr", "0.0.0.0:4000", "127.0.0.1:4001"),
        ]
        for args in cases:
            with self.subTest(args=args):
                node = self.node("unspecified")
                r = node.cli(*args)
                self.assertEqual(r.code, 2, r)
                self.assertIn("every interface", r.err)
                self.assertIn("--advertise-addr", r.err)
                self.assertFalse(os.path.exists(node.data_dir))

    def test_stop_when_not_running(self):
        manager = self.node("manager")
        manager.init()
        manager.stop()
        r = manager.cli("stop")
        self.assertEqual(r.code, 0, r)
        self.assertIn("is not running", r.out)

    def test_data_dir_after_command_and_from_env(self):
        manager = self.node("manager")
        manager.init()
        after = subprocess.run([BIN, "info", "--data-dir", manager.data_dir],
                               capture_output=True, text=True, timeout=30, env=self.env)
        self.assertEqual(after.returncode, 0, after.stderr)
        equals = subprocess.run([BIN, "info", f"--data-dir={manager.data_dir}"],
                                capture_output=True, text=True, timeout=30, env=self.env)
        self.assertEqual(equals.returncode, 0, equals.stderr)
        env = dict(self.env, SWARMPKI_DATA_DIR=manager.data_dir)
        from_env = subprocess.run([BIN, "info"], capture_output=True, text=True, timeout=30,
                                  env=env)
        self.assertEqual(from_env.returncode, 0, from_env.stderr)
        self.assertEqual(after.stdout, from_env.stdout)

    def test_manager_info(self):
        manager = self.node("manager")
        manager.init()
        r = manager.cli("info")
        self.assertEqual(r.code, 0, r)
        conf = manager.conf()
        self.assertIn(conf["cluster_id"], r.out)
        self.assertIn(conf["node_id"], r.out)
        self.assertIn("manager", r.out)
        self.assertIn(manager.addr, r.out)
        self.assertIn("2160h0m0s", r.out)

    def test_node_inspect_and_table(self):
        manager = self.node("manager")
        manager.init()
        worker = self.node("worker")
        worker.join(manager)
        worker_id = worker.conf()["node_id"]
        r = manager.cli("node", "inspect", worker_id)
        self.assertEqual(r.code, 0, r)
        node = json.loads(r.out)
        self.assertEqual(node["id"], worker_id)
        self.assertEqual(node["role"], "worker")
        self.assertEqual(len(node["cert_serial"]), 40)
        missing = manager.cli("node", "inspect", "0" * 25)
        self.assertEqual(missing.code, 1, missing)
        self.assertIn("not found", missing.err)
        table = manager.cli("node", "ls")
        self.assertEqual(table.code, 0, table)
        lines = table.out.splitlines()
        self.assertTrue(lines[0].startswith("ID"))
        self.assertEqual(len(lines), 3)
        self.assertTrue(any(line.startswith(worker_id) for line in lines))
        self.assertEqual(manager.cli("node", "ls", "--format", "yaml").code, 2)

    def test_manager_commands_on_worker(self):
        manager = self.node("manager")
        manager.init()
        worker = self.node("worker")
        worker.join(manager)
        r = worker.cli("node", "ls")
        self.assertEqual(r.code, 1, r)
        self.assertIn("worker", r.err)

    def test_join_into_existing_node_dir(self):
        manager = self.node("manager")
        manager.init()
        r = manager.cli("join", "--token", manager.token("worker"), manager.addr)
        self.assertEqual(r.code, 1, r)
        self.assertIn("already contains a swarmpki node", r.err)
        self.assertTrue(os.path.exists(os.path.join(manager.data_dir, "node.conf")))

    def test_init_cert_expiry_minimum(self):
        manager = self.node("manager")
        r = manager.cli("init", "--listen-addr", "127.0.0.1:1", "--cert-expiry", "59m")
        self.assertEqual(r.code, 2, r)
        self.assertIn("minimum is 1h", r.err)
        self.assertFalse(os.path.exists(manager.data_dir))

    def test_init_on_busy_port(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        addr = "127.0.0.1:%d" % busy.getsockname()[1]
        manager = self.node("manager")
        r = manager.cli("init", "--listen-addr", addr)
        busy.close()
        self.assertEqual(r.code, 1, r)
        self.assertIn("cannot listen on " + addr, r.err)
        self.assertFalse(os.path.exists(manager.data_dir))

    def test_run_on_busy_port(self):
        manager = self.node("manager")
        manager.init()
        manager.stop()
        host, port = manager.addr.split(":")
        busy = socket.socket()
        busy.bind((host, int(port)))
        busy.listen(1)
        r = manager.cli("run", "--detach")
        busy.close()
        self.assertEqual(r.code, 1, r)
        self.assertIn("address already in use", r.err)
        # The failed start must stop cleanly: the pid file is gone and a
        # later start works.
        self.assertEqual(manager.pid(), 0)
        manager.run()

    def test_commands_without_node(self):
        empty = self.node("empty")
        os.makedirs(empty.data_dir)
        r = empty.cli("info")
        self.assertEqual(r.code, 1, r)
        self.assertIn("contains no swarmpki node", r.err)


if __name__ == "__main__":
    unittest.main()
