#!/usr/bin/env bash
# Starts a local demo cluster on 127.0.0.1: one manager and three workers,
# each a swarmpki process in the background with its own data directory.
# Prints the nodes, their certificates, and how to stop everything.
#
#   scripts/demo.sh PATH_TO_SWARMPKI
set -euo pipefail

bin=$(realpath "${1:?usage: demo.sh PATH_TO_SWARMPKI}")
workers=3
base=$(mktemp -d /tmp/swarmpki-demo.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"

echo "== Creating the cluster: manager on $addr, data in $base/manager"
"$bin" init --data-dir "$base/manager" --listen-addr "$addr" --detach
token=$("$bin" join-token --data-dir "$base/manager" -q worker)

for i in $(seq 1 "$workers"); do
    echo "== Joining worker-$i"
    "$bin" join --data-dir "$base/worker-$i" --token "$token" --detach "$addr"
done

# Workers show as ready after their first heartbeat.
sleep 1

echo
echo "== Nodes, as the manager lists them"
"$bin" node ls --data-dir "$base/manager"

echo
echo "== Certificates on disk"
for dir in "$base/manager" "$base"/worker-*; do
    printf '%-10s %s\n' "$(basename "$dir")" \
        "$(openssl x509 -noout -subject -nameopt compat -in "$dir/certificates/swarm-node.crt")"
    printf '%-10s %s\n' "" \
        "$(openssl x509 -noout -enddate -in "$dir/certificates/swarm-node.crt")"
done

cat <<MSG

The cluster keeps running in the background. To look around:
    $bin info --data-dir $base/worker-1
    $bin node inspect --data-dir $base/manager NODE_ID
To stop it and remove its data:
    for d in $base/*/; do $bin stop --data-dir "\$d"; done; rm -rf $base
MSG
