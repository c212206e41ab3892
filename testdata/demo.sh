#!/usr/bin/env bash
# make demo: a path broken on purpose between two throwaway namespaces, the reproduction,
# and diagnose's Markdown report on stdout. Everything it makes is removed on exit.
#
#   client (198.51.100.1) --veth-- server (198.51.100.2)
#   the server's firewall drops TCP port 8080 on input; a client connects to it.
set -euo pipefail
bin=$(realpath "${1:-./diagnose}")
[ "$(id -u)" = 0 ] || { echo "make demo needs root: it creates network namespaces" >&2; exit 3; }
client=pm-demo-client-$$
server=pm-demo-server-$$
cleanup() {
  ip netns del "$client" 2>/dev/null || true
  ip netns del "$server" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$client"
ip netns add "$server"
ip link add veth0 netns "$client" type veth peer name veth0 netns "$server"
for ns in "$client" "$server"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set veth0 up
done
ip -n "$client" addr add 198.51.100.1/24 dev veth0
ip -n "$server" addr add 198.51.100.2/24 dev veth0
ip netns exec "$server" nft -f - <<'NFT'
table inet guard {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 8080 drop
	}
}
NFT

echo "demo: the server's firewall drops TCP port 8080; diagnosing 198.51.100.2:8080 while the client connects" >&2
ip netns exec "$server" "$bin" --flow 198.51.100.2:8080 --yes --timeout 20s -- \
  ip netns exec "$client" timeout 3 bash -c 'exec 3<>/dev/tcp/198.51.100.2/8080' 
