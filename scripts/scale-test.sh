#!/usr/bin/env bash
# Long test, not part of the default run: a three-manager cluster issues
# JOINS certificates (default 20,000) through join-bench, the managers are
# restarted from their data directories, and a fourth manager joins and
# catches up by snapshot. Passes when the new manager applied as far as
# the leader and serves a worker joined after it.
#
#   scripts/scale-test.sh BUILD_DIR [JOINS]
set -euo pipefail

build=$(realpath "${1:?usage: scale-test.sh BUILD_DIR [JOINS]}")
joins=${2:-20000}
bin="$build/node/swarmpki"
base=$(mktemp -d /tmp/swarmpki-scale.XXXXXX)
trap 'for d in "$base"/*/*/; do "$bin" stop --data-dir "$d" >/dev/null 2>&1 || true; done; rm -rf "$base"' EXIT

echo "== Issuing $joins certificates through a 3-manager cluster"
"$build/bench/join-bench" --managers 3 --concurrency 64 --threads 2 --joins "$joins" \
    --warmup 0 --keep --dir "$base" | grep -E '^(joins|result)'
cluster=$(ls -d "$base"/join-bench.*)

echo "== Restarting the managers"
for m in m1 m2 m3; do
    "$bin" run --data-dir "$cluster/$m" --detach >/dev/null
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
leader_addr=$(sed -n 's/^listen_addr=//p' "$cluster/m1/node.conf")
token=$("$bin" join-token --data-dir "$cluster/m1" -q manager)

echo "== Joining a fourth manager"
start=$(date +%s.%N)
"$bin" join --data-dir "$cluster/m4" --token "$token" --listen-addr "127.0.0.1:$port" \
    --detach "$leader_addr" >/dev/null
echo "   joined in $(python3 -c "print('%.1f' % ($(date +%s.%N) - $start))") s"

applied() {
    "$bin" info --data-dir "$1" | sed -n 's/.*commit [0-9]*, applied \([0-9]*\).*/\1/p'
}
worker_token=$("$bin" join-token --data-dir "$cluster/m1" -q worker)
"$bin" join --data-dir "$cluster/w-last" --token "$worker_token" --detach "127.0.0.1:$port" >/dev/null
last_id=$(sed -n 's/^node_id=//p' "$cluster/w-last/node.conf")

for _ in $(seq 50); do
    a1=$(applied "$cluster/m1")
    a4=$(applied "$cluster/m4")
    [ "$a1" = "$a4" ] && break
    sleep 0.2
done
echo "   applied index: leader side $a1, new manager $a4"
[ "$a1" = "$a4" ] || { echo "FAIL: the new manager did not catch up"; exit 1; }
"$bin" node inspect --data-dir "$cluster/m4" "$last_id" >/dev/null ||
    { echo "FAIL: the new manager does not list worker $last_id"; exit 1; }
grep -q "snapshot" "$cluster/m4/swarmpki.log" ||
    { echo "FAIL: the new manager took or installed no snapshot"; exit 1; }
echo "1 passed, 0 failed"
