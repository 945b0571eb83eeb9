"""Clusters of several managers replicating through Raft: agreement on the
leader and the node list, forwarded joins, rejected manager joins, catch-up
by snapshot, hostile peers, clean stops and a full power cycle."""

import os
import re
import time
import unittest

import wire
from harness import ManagerCase, free_port, openssl, wait_until

RAFT_MSG = 12
ERROR = 1
STATUS_DENIED = 4
SNAPSHOT_TAKEN = re.compile(r'msg="snapshot taken" index=(\d+)')


def snapshot_index(node):
    """Return the index of the newest snapshot node logged, or 0."""
    found = [int(i) for i in SNAPSHOT_TAKEN.findall(node.log())]
    return max(found, default=0)


class ManagersTest(ManagerCase):
    def test_three_managers_agree(self):
        managers = self.start_managers(3)
        leader = self.wait_leader(managers)
        addrs = sorted(m.addr for m in managers)
        ids = sorted(m.node_id() for m in managers)
        for m in managers:
            info = m.raft_info()
            self.assertIsNotNone(info, m.name)
            voters = [s for s in info["members"] if s["role"] == "voter"]
            self.assertEqual(len(voters), 3, (m.name, info))
            self.assertEqual(sorted(s["addr"] for s in voters), addrs, (m.name, info))
            self.assertEqual(sorted(s["node_id"] for s in voters), ids, (m.name, info))
            expected = "this manager" if m is leader else leader.addr
            self.assertEqual(info["leader"], expected, (m.name, info))

        table = self.wait_same_nodes(managers)
        self.assertEqual(sorted((i, r) for i, r, _ in table), [(i, "manager") for i in ids])

        follower = next(m for m in managers if m is not leader)
        worker = self.node("worker")
        worker.join(follower)
        worker_id = worker.node_id()
        cluster_id = leader.conf()["cluster_id"]

        verify = openssl("verify", "-CAfile", worker.cert_path("swarm-root-ca.crt"),
                         worker.cert_path())
        self.assertEqual(verify.returncode, 0, verify.stderr)
        subject = openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
                          worker.cert_path()).stdout.strip()
        self.assertEqual(subject, f"subject=CN={worker_id},OU=swarm-worker,O={cluster_id}")
        with open(worker.cert_path("swarm-root-ca.crt")) as f:
            worker_root = f.read()
        for m in managers:
            with open(m.cert_path("swarm-root-ca.crt")) as f:
                self.assertEqual(f.read(), worker_root, m.name)

        table = self.wait_same_nodes(managers)
        self.assertIn((worker_id, "worker", worker.cert_serial()), table)
        self.assertEqual(len(table), 4, table)

    def test_manager_join_duplicate_address(self):
        managers = self.start_managers(2)
        leader = self.wait_leader(managers)
        follower = next(m for m in managers if m is not leader)
        before = self.wait_same_nodes(managers)
        # Through the follower (forwarded) and through the leader, each time
        # advertising the address of the other manager.
        cases = [("via-follower", follower, leader.addr), ("via-leader", leader, follower.addr)]
        for name, via, used_addr in cases:
            with self.subTest(name):
                joiner = self.node(f"manager-{name}")
                r = joiner.join_manager(via, "--advertise-addr", used_addr, expect=1)
                self.assertIn("already used", r.err)
                self.assertIn(used_addr, r.err)
                self.assertFalse(os.path.exists(joiner.data_dir), os.listdir(self.base))
                self.assertEqual(self.wait_same_nodes(managers), before)
                info = leader.raft_info()
                self.assertEqual(len(info["members"]), 2, info)

        # The rejected attempts leave the cluster able to add a manager.
        third = self.node("manager-2")
        self.managers.append(third)
        third.join_manager(follower)
        self.wait_voters(self.managers, 3)

    def test_joined_manager_starts_settled(self):
        # join --detach returns once the new manager has caught up and
        # reaches the others, so info shows no member as unreachable.
        managers = self.start_managers(2)
        third = self.node("manager-2")
        self.managers.append(third)
        third.join_manager(managers[1])
        info = third.raft_info()
        self.assertEqual(info["applied"], info["commit"], info)
        self.assertEqual(len(info["members"]), 3, info)
        for member in info["members"]:
            self.assertTrue(member["reachable"], info)
        listed = {n["id"]: n for n in third.nodes()}
        self.assertEqual(len(listed), 3)
        for node in listed.values():
            self.assertEqual(node["status"], "ready", listed)

    def test_follower_lists_node_it_joined(self):
        # The follower sends the response to a forwarded join only once it
        # applied the entry itself, so its node list has the node right away.
        managers = self.start_managers(3)
        leader = self.wait_leader(managers)
        follower = next(m for m in managers if m is not leader)
        token = follower.token("worker")
        for i in range(8):
            worker = self.node(f"worker-{i}")
            worker.join(follower, token)
            node_id = worker.node_id()
            listed = {n["id"] for n in follower.nodes()}
            self.assertIn(node_id, listed, f"join {i}")

    def test_manager_join_unreachable_address(self):
        managers = self.start_managers(2)
        leader = self.wait_leader(managers)
        follower = next(m for m in managers if m is not leader)
        before = self.wait_same_nodes(managers)
        # A manager of another cluster listens at one address, so the key
        # served there is not the joiner's. Nothing listens at the other.
        other = self.node("other-cluster")
        other.init()
        closed = f"127.0.0.1:{free_port()}"
        cases = [("closed-port", closed, "cannot reach the new manager"),
                 ("other-process", other.addr, "another process listens there")]
        for name, advertised, reason in cases:
            with self.subTest(name):
                joiner = self.node(f"manager-{name}")
                r = joiner.join_manager(follower, "--advertise-addr", advertised, expect=1)
                self.assertIn(reason, r.err)
                self.assertIn(advertised, r.err)
                self.assertIn("--advertise-addr", r.err)
                self.assertFalse(os.path.exists(joiner.data_dir), os.listdir(self.base))
                self.assertEqual(self.wait_same_nodes(managers), before)
                self.assertEqual(len(leader.raft_info()["members"]), 2)

        # Nothing was recorded, so the address stays free for a manager
        # that really listens there.
        third = self.node("manager-2")
        self.managers.append(third)
        third.addr = closed
        third.join(follower, follower.token("manager"), "--listen-addr", closed)
        self.wait_voters(self.managers, 3)

    def test_snapshot_catch_up(self):
        self.env["SWARMPKI_SNAPSHOT_EVERY"] = "20"
        managers = self.start_managers(3)
        leader = self.wait_leader(managers)
        lagging = next(m for m in managers if m is not leader)
        live = [m for m in managers if m is not lagging]
        self.wait_same_nodes(managers)
        behind = lagging.raft_info()["applied"]
        lagging.stop()

        # With a snapshot every 20 entries, a manager keeps only 2 log entries
        # before its snapshot. Once every live manager's snapshot is more than
        # 5 entries past the stopped manager's applied index, the entries that
        # manager lacks start before the log, so it must install a snapshot.
        joined = []
        for batch in range(6):
            joined += self.join_workers(live[batch % 2], 10, f"worker-{batch}")
            if min(snapshot_index(m) for m in live) > behind + 5:
                break
        self.assertGreater(min(snapshot_index(m) for m in live), behind + 5,
                           f"no snapshot past index {behind} after {len(joined)} joins")

        lagging.run()
        table = self.wait_same_nodes(managers, timeout=30)
        listed = {node_id for node_id, _, _ in table}
        for w in joined:
            self.assertIn(w.node_id(), listed, w.name)

        newcomer = self.node("manager-3")
        self.managers.append(newcomer)
        newcomer.join_manager(lagging)
        self.wait_voters(self.managers, 4, timeout=30)
        table = self.wait_same_nodes(self.managers, timeout=30)
        self.assertEqual(len(table), 4 + len(joined), table)

    def raft_frame(self, sender, to, term, body_type, body):
        message = [1, body_type, sender, to, term, body]
        return {"t": RAFT_MSG, "id": 9, "bin": wire.pack(message)}

    def test_raft_frame_from_non_manager(self):
        managers = self.start_managers(3)
        leader = self.wait_leader(managers)
        follower = next(m for m in managers if m is not leader)
        info = leader.raft_info()
        term = info["term"]
        raft_ids = {s["addr"]: int(s["raft_id"], 16) for s in info["members"]}
        leader_id = raft_ids[leader.addr]
        follower_id = raft_ids[follower.addr]

        # A forced vote request with a much higher term. A leader that
        # accepted it would step down and adopt the term.
        vote = self.raft_frame(follower_id, leader_id, term + 1000, 3,
                               [1 << 40, term + 999, False, True])

        # Check the encoding first, with a manager certificate. A stale vote
        # response decodes without a log line. A frame with an unknown format
        # sent after it on the same connection is logged, which shows that
        # the decoder read and accepted the first frame.
        stale = self.raft_frame(follower_id, leader_id, 1, 4, [False, False])
        bad_format = dict(stale, bin=wire.pack([99, 4, follower_id, leader_id, 1, [False, False]]))
        with wire.tls_connect(leader.addr, follower.cert_path(),
                              follower.cert_path("swarm-node.key")) as s:
            s.sendall(wire.frame(stale) + wire.frame(bad_format))
            self.assertTrue(wait_until(lambda: "format 99" in leader.log(), timeout=5),
                            leader.log()[-2000:])
        invalid = [line for line in leader.log().splitlines() if "invalid Raft message" in line]
        self.assertEqual(len(invalid), 1, invalid)

        worker = self.node("worker")
        worker.join(follower)
        answer = wire.request(leader.addr, vote, worker.cert_path(),
                              worker.cert_path("swarm-node.key"))
        self.assertIsNotNone(answer)
        self.assertEqual(answer["t"], ERROR, answer)
        self.assertEqual(answer["code"], STATUS_DENIED, answer)
        self.assertTrue(wait_until(lambda: "request rejected" in leader.log(), timeout=5))
        rejected = [line for line in leader.log().splitlines() if "request rejected" in line]
        self.assertIn(worker.node_id(), rejected[-1])
        self.assertIn("manager certificate", rejected[-1])

        answer = wire.request(leader.addr, vote)
        self.assertEqual(answer["t"], ERROR, answer)
        self.assertEqual(answer["code"], STATUS_DENIED, answer)
        self.assertIn("node certificate", answer["text"])

        other = self.node("other-cluster")
        other.init()
        count = leader.log().count("connection rejected")
        with self.assertRaises((OSError, ConnectionError)):
            answer = wire.request(leader.addr, vote, other.cert_path(),
                                  other.cert_path("swarm-node.key"))
            # TLS 1.3 reports a rejected client certificate after the
            # handshake, so the connection closes without a response.
            if answer is None:
                raise ConnectionError("closed without a response")
        self.assertTrue(wait_until(lambda: leader.log().count("connection rejected") > count,
                                   timeout=5), leader.log()[-2000:])

        for m in managers:
            info = m.raft_info()
            self.assertLess(info["term"], term + 1000, (m.name, info))
        self.assertIs(self.wait_leader(managers), leader)
        self.node("worker-after").join(follower)
        self.assertEqual(len(self.wait_same_nodes(managers)), 5)

    def test_stop_leader_hands_over(self):
        managers = self.start_managers(3)
        leader = self.wait_leader(managers)
        survivors = [m for m in managers if m is not leader]
        leader.stop()
        stopped = time.monotonic()
        successor = wait_until(lambda: self.find_leader(survivors), timeout=10, interval=0.05)
        elapsed = time.monotonic() - stopped
        self.assertIsNotNone(successor, [m.raft_info() for m in survivors])
        self.assertLess(elapsed, 2.0, "seconds from the stop to a leader among the survivors")
        self.assertIn("leadership handed over", leader.log())

        worker = self.node("worker")
        started = time.monotonic()
        worker.join(survivors[0])
        self.assertLess(time.monotonic() - started, 3.0, "seconds the join after the stop took")
        self.wait_same_nodes(survivors)

    def test_power_cycle(self):
        managers = self.start_managers(3)
        self.node("worker-before").join(managers[1])
        before = self.wait_same_nodes(managers)
        for m in managers:
            m.stop()

        order = list(managers)
        self.rng.shuffle(order)
        first_two, last = order[:2], order[2]
        for m in first_two:
            m.run()
        self.wait_leader(first_two, timeout=20)
        worker = self.node("worker-after")
        worker.join(first_two[0])

        last.run()
        table = self.wait_same_nodes(managers, timeout=30)
        for row in before:
            self.assertIn(row, table)
        self.assertIn((worker.node_id(), "worker", worker.cert_serial()), table)
        self.wait_voters(managers, 3)


if __name__ == "__main__":
    unittest.main()
