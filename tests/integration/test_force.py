"""init --force-new-cluster: a manager that lost its majority for good
restarts as the only member, with all its state."""

import unittest

from harness import ClusterCase, free_port


class ForceNewClusterTest(ClusterCase):
    def join_manager(self, name, through):
        node = self.node(name)
        node.addr = f"127.0.0.1:{free_port()}"
        r = node.cli("join", "--token", through.token("manager"), "--listen-addr", node.addr,
                     "--detach", through.addr)
        self.assertEqual(r.code, 0, r)
        self.started.append(node)
        return node

    def test_force_new_cluster_keeps_state(self):
        first = self.node("m1")
        first.init()
        others = [self.join_manager(f"m{i}", first) for i in (2, 3)]
        worker = self.node("worker")
        worker.join(first)
        before = {n["id"] for n in first.nodes()}
        cluster_id = first.conf()["cluster_id"]
        token = first.token("worker")

        for m in others:
            m.kill9()
        lonely = self.node("lonely")
        r = lonely.cli("join", "--token", token, first.addr)
        self.assertEqual(r.code, 1, r)
        self.assertIn("the cluster has no leader", r.err)

        running = first.cli("init", "--force-new-cluster")
        self.assertEqual(running.code, 1, running)
        self.assertIn("stop it first", running.err)
        first.stop()
        r = first.cli("init", "--force-new-cluster", "--detach")
        self.assertEqual(r.code, 0, r)

        after = {n["id"]: n for n in first.nodes()}
        removed = {m.conf()["node_id"] for m in others}
        self.assertEqual(set(after), before - removed)
        self.assertEqual(first.conf()["cluster_id"], cluster_id)
        self.assertEqual(first.token("worker"), token)
        info = first.cli("info")
        self.assertIn("leader this manager", info.out)
        self.assertNotIn("unreachable", info.out)

        lonely.join(first)
        fresh = self.join_manager("m4", first)
        self.assertIn(fresh.conf()["node_id"], {n["id"] for n in first.nodes()})


if __name__ == "__main__":
    unittest.main()
