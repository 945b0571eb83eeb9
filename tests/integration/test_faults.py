"""Bad input and faults: wrong tokens, unreachable managers, hostile
clients, bad CSRs, crashes and damaged data directories."""

import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import wire
from harness import ClusterCase, free_port, openssl, wait_until

JOIN_REQ = 4
ERROR = 1


def flip_secret(token):
    """Return token with its secret changed but still well formed."""
    last = token[-1]
    return token[:-1] + ("1" if last != "1" else "2")


class TokenFaultTest(ClusterCase):
    def setUp(self):
        super().setUp()
        self.manager = self.node("manager")
        self.manager.init()
        self.worker_token = self.manager.token("worker")

    def assert_nothing_left(self, node):
        self.assertFalse(os.path.exists(node.data_dir), os.listdir(self.base))
        self.assertEqual(len(self.manager.nodes()), 1)

    def test_malformed_token(self):
        worker = self.node("worker")
        r = worker.join(self.manager, "SWMTKN-1-abc", expect=1)
        self.assertIn("invalid join token", r.err)
        self.assert_nothing_left(worker)
        worker.join(self.manager)
        self.assertEqual(len(self.manager.nodes()), 2)

    def test_wrong_secret(self):
        worker = self.node("worker")
        r = worker.join(self.manager, flip_secret(self.worker_token), expect=1)
        self.assertIn("secret does not match", r.err)
        self.assertNotIn(self.worker_token[-25:], r.err)
        self.assert_nothing_left(worker)
        worker.join(self.manager)

    def test_digest_of_another_root(self):
        other = self.node("other")
        other.init()
        foreign = other.token("worker")
        worker = self.node("worker")
        r = worker.join(self.manager, foreign, expect=1)
        self.assertIn("does not match the join token", r.err)
        self.assertIn(foreign[9:59], r.err)
        self.assertIn(self.worker_token[9:59], r.err)
        self.assert_nothing_left(worker)
        worker.join(self.manager)

    def test_manager_token_needs_listen_addr(self):
        worker = self.node("worker")
        r = worker.join(self.manager, self.manager.token("manager"), expect=1)
        self.assertIn("must join with --listen-addr", r.err)
        self.assert_nothing_left(worker)

    def test_refused_address(self):
        worker = self.node("worker")
        dead = f"127.0.0.1:{free_port()}"
        start = time.monotonic()
        r = worker.cli("join", "--token", self.worker_token, dead)
        self.assertEqual(r.code, 1, r)
        self.assertLess(time.monotonic() - start, 12)
        self.assertIn(dead, r.err)
        self.assertFalse(os.path.exists(worker.data_dir))

    def test_silent_address(self):
        # A listener that accepts and never responds: the join must time out.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        addr = "127.0.0.1:%d" % silent.getsockname()[1]
        worker = self.node("worker")
        start = time.monotonic()
        r = worker.cli("join", "--token", self.worker_token, addr)
        elapsed = time.monotonic() - start
        silent.close()
        self.assertEqual(r.code, 1, r)
        self.assertLess(elapsed, 15)
        self.assertIn(addr, r.err)
        self.assertFalse(os.path.exists(worker.data_dir))
        worker.join(self.manager)

    def test_usage_errors_exit_2(self):
        cases = [("join",), ("init",), ("node",), ("update",), ("join-token",),
                 ("bogus",), ("update", "--cert-expiry", "5x")]
        for args in cases:
            r = self.manager.cli(*args)
            self.assertEqual(r.code, 2, (args, r))
            self.assertTrue(r.err.startswith("swarmpki: "), (args, r))


class HostileClientTest(ClusterCase):
    def setUp(self):
        super().setUp()
        self.manager = self.node("manager")
        self.manager.init()

    def join_works(self, name):
        self.node(name).join(self.manager)

    def log_has(self, text):
        return wait_until(lambda: text in self.manager.log(), timeout=5)

    def test_garbage_bytes(self):
        host, port = self.manager.addr.split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(os.urandom(4096))
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertTrue(self.log_has("connection rejected"), self.manager.log()[-2000:])
        self.join_works("worker")

    def test_oversized_frame(self):
        with wire.tls_connect(self.manager.addr) as s:
            s.sendall(b"\x7f\xff\xff\xff" + b"x" * 100)
            s.settimeout(5)
            self.assertIsNone(wire.read_frame(s))
        self.assertTrue(self.log_has("frame"), self.manager.log()[-2000:])
        self.join_works("worker")

    def test_stalled_handshake(self):
        host, port = self.manager.addr.split(":")
        stalled = socket.create_connection((host, int(port)), timeout=20)
        # The first bytes of a TLS record header, then nothing.
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01")
        self.join_works("worker")
        start = time.monotonic()
        try:
            data = stalled.recv(1024)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.monotonic() - start, 15)
        stalled.close()
        self.assertTrue(self.log_has("connection rejected"))

    def test_foreign_client_certificate(self):
        other = self.node("other")
        other.init()
        cert = other.cert_path()
        key = other.cert_path("swarm-node.key")
        with self.assertRaises((OSError, ConnectionError)):
            answer = wire.request(self.manager.addr, {"t": 6, "id": 1, "host": "x"}, cert, key)
            # TLS 1.3 reports a rejected client certificate after the
            # handshake: the connection closes without a response.
            if answer is None:
                raise ConnectionError("closed")
        self.assertTrue(self.log_has("connection rejected"))
        self.join_works("worker")

    def send_csr(self, csr_pem):
        token = self.manager.token("worker")
        return wire.request(self.manager.addr, {"t": JOIN_REQ, "id": 7, "token": token,
                                                "csr": csr_pem, "host": "bad"})

    def make_csr(self, keyspec):
        d = tempfile.mkdtemp(dir=self.base)
        key = os.path.join(d, "key.pem")
        csr = os.path.join(d, "csr.pem")
        r = openssl("req", "-new", "-newkey", keyspec, "-nodes", "-keyout", key,
                    "-subj", "/CN=x", "-out", csr)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(csr) as f:
            return f.read()

    def test_rsa512_csr(self):
        answer = self.send_csr(self.make_csr("rsa:512"))
        self.assertEqual(answer["t"], ERROR)
        self.assertIn("RSA", answer["text"])
        self.assertEqual(len(self.manager.nodes()), 1)
        self.assertTrue(self.log_has("join rejected"))
        self.join_works("worker")

    def test_wrong_signature_csr(self):
        pem = self.make_csr("ec:" + self.ec_params())
        # Flip one byte inside the base64 body near the end: the signature.
        lines = pem.splitlines()
        body = lines[-2]
        flipped = body[:-6] + ("A" if body[-6] != "A" else "B") + body[-5:]
        lines[-2] = flipped
        answer = self.send_csr("\n".join(lines) + "\n")
        self.assertEqual(answer["t"], ERROR)
        self.assertEqual(len(self.manager.nodes()), 1)
        self.join_works("worker")

    def test_garbage_csr(self):
        answer = self.send_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                               "-----END CERTIFICATE REQUEST-----\n")
        self.assertEqual(answer["t"], ERROR)
        self.assertEqual(len(self.manager.nodes()), 1)

    def ec_params(self):
        path = os.path.join(self.base, "p256.pem")
        r = openssl("ecparam", "-name", "prime256v1", "-out", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return path


class CrashTest(ClusterCase):
    def test_kill_manager_during_joins(self):
        manager = self.node("manager")
        manager.init()
        token = manager.token("worker")
        acknowledged = []
        stop = threading.Event()

        def joiner(index):
            n = 0
            while not stop.is_set() and n < 40:
                node = self.node(f"w{index}-{n}")
                r = node.cli("join", "--token", token, manager.addr, "--detach", timeout=30)
                if r.code == 0:
                    self.started.append(node)
                    acknowledged.append(node.conf()["node_id"])
                n += 1

        threads = [threading.Thread(target=joiner, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        self.assertTrue(wait_until(lambda: len(acknowledged) >= 3, timeout=30))
        manager.kill9()
        stop.set()
        for t in threads:
            t.join()
        manager.run()
        listed = {n["id"] for n in manager.nodes()}
        missing = [i for i in acknowledged if i not in listed]
        self.assertEqual(missing, [])

    def test_other_version_refused(self):
        manager = self.node("manager")
        manager.init()
        manager.stop()
        path = os.path.join(manager.data_dir, "node.conf")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("version=1", "version=7"))
        r = manager.run(expect=1)
        self.assertIn(path, r.err)
        self.assertIn("version 7", r.err)

    def test_corrupt_store_refused(self):
        manager = self.node("manager")
        manager.init()
        manager.stop()
        path = os.path.join(manager.data_dir, "store", "store.mdb")
        with open(path, "r+b") as f:
            f.write(os.urandom(8192))
        r = manager.run(expect=1)
        self.assertIn(path, r.err)

    def test_truncated_store_refused(self):
        manager = self.node("manager")
        manager.init()
        manager.stop()
        path = os.path.join(manager.data_dir, "store", "store.mdb")
        os.truncate(path, 100)
        r = manager.run(expect=1)
        self.assertIn(path, r.err)

    def test_missing_key_refused(self):
        worker_manager = self.node("manager")
        worker_manager.init()
        worker = self.node("worker")
        worker.join(worker_manager)
        worker.stop()
        os.unlink(worker.cert_path("swarm-node.key"))
        r = worker.run(expect=1)
        self.assertIn("swarm-node.key", r.err)


if __name__ == "__main__":
    unittest.main()
