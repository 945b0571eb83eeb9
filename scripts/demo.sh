#!/usr/bin/env bash
# Starts a local demo cluster on 127.0.0.1: three managers and three
# workers, each a swarmpki process in the background with its own data
# directory. Then it kills the leader with SIGKILL and shows that joins
# go on through the surviving managers. Prints how to stop everything.
#
#   scripts/demo.sh PATH_TO_SWARMPKI
set -euo pipefail

bin=$(realpath "${1:?usage: demo.sh PATH_TO_SWARMPKI}")
base=$(mktemp -d /tmp/swarmpki-demo.XXXXXX)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
declare -a addrs
for i in 1 2 3; do
    addrs[$i]="127.0.0.1:$(free_port)"
done

echo "== Creating the cluster: manager-1 on ${addrs[1]}, data under $base"
"$bin" init --data-dir "$base/manager-1" --listen-addr "${addrs[1]}" --detach >/dev/null
manager_token=$("$bin" join-token --data-dir "$base/manager-1" -q manager)
worker_token=$("$bin" join-token --data-dir "$base/manager-1" -q worker)

for i in 2 3; do
    echo "== Joining manager-$i on ${addrs[$i]}"
    "$bin" join --data-dir "$base/manager-$i" --token "$manager_token" \
        --listen-addr "${addrs[$i]}" --detach "${addrs[1]}" | head -1
done

# Workers join through different managers; followers forward to the leader.
for i in 1 2 3; do
    echo "== Joining worker-$i through manager-$i"
    "$bin" join --data-dir "$base/worker-$i" --token "$worker_token" --detach "${addrs[$i]}" | head -1
done
sleep 1

echo
echo "== Raft state, as manager-2 sees it"
"$bin" info --data-dir "$base/manager-2" | sed -n '/^Raft/,/^Certificate/p' | grep -v '^Certificate'
echo
echo "== Nodes, as manager-3 lists them"
"$bin" node ls --data-dir "$base/manager-3"

echo
echo "== Certificates on disk"
for dir in "$base"/manager-* "$base"/worker-*; do
    printf '%-10s %s\n' "$(basename "$dir")" \
        "$(openssl x509 -noout -subject -nameopt compat -in "$dir/certificates/swarm-node.crt")"
done

# Find the leader from manager-1's view and kill it without warning.
leader_addr=$("$bin" info --data-dir "$base/manager-1" | sed -n 's/.*leader \([0-9.:]*\|this manager\), commit.*/\1/p')
leader=1
for i in 1 2 3; do
    [ "${addrs[$i]}" = "$leader_addr" ] && leader=$i
done
survivor=$((leader % 3 + 1))
echo
echo "== Killing the leader, manager-$leader (pid $(cat "$base/manager-$leader/swarmpki.pid")), with SIGKILL"
kill -9 "$(cat "$base/manager-$leader/swarmpki.pid")"
start=$(date +%s.%N)
"$bin" join --data-dir "$base/worker-4" --token "$worker_token" --detach "${addrs[$survivor]}" | head -1
echo "   worker-4 joined through manager-$survivor $(python3 -c "import sys; print('%.1f' % ($(date +%s.%N) - $start))") s after the kill"
echo
echo "== Raft state after the failover, as manager-$survivor sees it"
"$bin" info --data-dir "$base/manager-$survivor" | sed -n '/^Raft/,/^Certificate/p' | grep -v '^Certificate'

echo
echo "== Restarting manager-$leader; it catches up as a follower"
"$bin" run --data-dir "$base/manager-$leader" --detach >/dev/null
sleep 1
"$bin" node ls --data-dir "$base/manager-$leader"

cat <<MSG

The cluster keeps running in the background. To look around:
    $bin info --data-dir $base/worker-1
    $bin node inspect --data-dir $base/manager-1 NODE_ID
To stop it and remove its data:
    for d in $base/*/; do $bin stop --data-dir "\$d"; done; rm -rf $base
MSG
