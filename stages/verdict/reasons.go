package verdict

import (
	"fmt"
	"strings"
)

// explanation is what a reason means and what to do about it.
type explanation struct {
	stage Stage
	why   string
	fix   func(f facts) string
}

// reasons covers the drop reasons a flow meets most; a reason missing here still gets a
// stage from its function or stack, and a generic explanation.
var reasons = map[string]explanation{
	"NO_SOCKET": {Socket, "no socket accepts the packet: nothing listens on the port at that address",
		func(f facts) string {
			return fmt.Sprintf("start the service on %s port %d, or make it bind to %s (or to all addresses) instead of another address; check with `ss -lnp '( sport = :%d )'`", f.proto, f.port, f.addr, f.port)
		}},
	"NETFILTER_DROP": {Input, "a netfilter rule or chain policy dropped the packet",
		func(f facts) string {
			return "change the rule that drops it (see the firewall trace); list the ruleset with `nft -a list ruleset`"
		}},
	"IP_RPFILTER": {Routing, "reverse-path filtering: the route back to the source does not go out of the interface the packet came in on",
		func(f facts) string {
			return fmt.Sprintf("route %s back via %s, or use loose reverse-path filtering: `sysctl -w net.ipv4.conf.%s.rp_filter=2` and `sysctl -w net.ipv4.conf.all.rp_filter=2` (the kernel uses the higher of the two)", f.src, f.iface, f.iface)
		}},
	"IP_NOPROTO": {Socket, "no handler for the IP protocol", func(f facts) string {
		return "load the module for the protocol, or stop sending it"
	}},
	"SOCKET_FILTER": {Socket, "a socket filter (SO_ATTACH_FILTER/BPF) of the receiving socket dropped the packet", func(f facts) string {
		return "check the BPF filters attached to the application's socket (`ss -0 -p`)"
	}},
	"SOCKET_RCVBUFF": {Socket, "the socket's receive buffer is full: the application does not read fast enough", func(f facts) string {
		return "make the application read faster or raise its receive buffer (SO_RCVBUF; `sysctl -w net.core.rmem_max=...`)"
	}},
	"PROTO_MEM": {Socket, "the protocol's memory limit is reached", func(f facts) string {
		return fmt.Sprintf("raise net.%s.%s_mem or find the sockets holding memory (`ss -tm`)", f.sysctlFamily(), f.proto)
	}},
	"TCP_CSUM": {Socket, "bad TCP checksum", func(f facts) string {
		return "the packet was corrupted on the way or the sender's checksum offload is broken: capture on the sender and check `ethtool -k`"
	}},
	"UDP_CSUM": {Socket, "bad UDP checksum", func(f facts) string {
		return "the packet was corrupted on the way or the sender's checksum offload is broken: capture on the sender and check `ethtool -k`"
	}},
	"IP_CSUM": {IPRcv, "bad IP header checksum", func(f facts) string {
		return "the packet was corrupted on the way: capture on the sender and on the path"
	}},
	"IP_INHDR": {IPRcv, "invalid IP header", func(f facts) string {
		return "the sender or a middlebox builds broken IP headers: capture and inspect them"
	}},
	"PKT_TOO_SMALL": {IPRcv, "the packet is shorter than its headers say", func(f facts) string { return "the packet was truncated on the way: capture upstream" }},
	"OTHERHOST": {IPRcv, "the frame was addressed to another host's MAC address", func(f facts) string {
		return "fix the neighbour entry of the sender, or check for a MAC address change (ARP/ND cache)"
	}},
	"IP_INNOROUTES": {Routing, "no route for the packet", func(f facts) string {
		return fmt.Sprintf("add a route for %s (`ip route get %s` shows the lookup)", f.addr, f.addr)
	}},
	"IP_INADDRERRORS": {Routing, "the destination address is invalid for this host", func(f facts) string {
		return fmt.Sprintf("check that %s is configured on this host (`ip addr`) and that the packet is meant for it", f.addr)
	}},
	"IP_LOCAL_SOURCE": {Routing, "the packet claims a source address of this host", func(f facts) string {
		return "find the sender spoofing or looping back this host's address"
	}},
	"IP_INVALID_SOURCE": {Routing, "the source address is invalid (martian)", func(f facts) string {
		return fmt.Sprintf("the source %s is not routable here; fix the sender or the NAT in front of it", f.src)
	}},
	"IP_INVALID_DEST": {Routing, "the destination address is invalid", func(f facts) string { return "fix the destination address" }},
	"IP_OUTNOROUTES": {Output, "no route to send the packet", func(f facts) string {
		return fmt.Sprintf("add a route to %s (`ip route get %s`)", f.addr, f.addr)
	}},
	"XDP": {Ingress, "an XDP program dropped the packet", func(f facts) string {
		return fmt.Sprintf("inspect the XDP program on %s (`ip link show %s`, `bpftool net`)", f.iface, f.iface)
	}},
	"TC_INGRESS": {Ingress, "a tc ingress filter dropped the packet", func(f facts) string {
		return fmt.Sprintf("inspect the ingress filters on %s (`tc filter show dev %s ingress`, `bpftool net`)", f.iface, f.iface)
	}},
	"TC_EGRESS": {Egress, "a tc egress filter dropped the packet", func(f facts) string {
		return fmt.Sprintf("inspect the egress filters on %s (`tc filter show dev %s egress`)", f.iface, f.iface)
	}},
	"QDISC_DROP": {Egress, "the queueing discipline dropped the packet (queue full or policy)", func(f facts) string {
		return fmt.Sprintf("check the qdisc on %s (`tc -s qdisc show dev %s`)", f.iface, f.iface)
	}},
	"NEIGH_FAILED": {Egress, "neighbour resolution (ARP/ND) failed", func(f facts) string {
		return fmt.Sprintf("the next hop does not answer ARP/ND on %s: check it is up and reachable (`ip neigh show dev %s`)", f.iface, f.iface)
	}},
	"NEIGH_QUEUEFULL": {Egress, "too many packets waiting for neighbour resolution", func(f facts) string {
		return "the next hop does not answer ARP/ND; raise unres_qlen_bytes only once it does"
	}},
	"DEV_READY": {Egress, "the device is not up", func(f facts) string { return fmt.Sprintf("bring %s up (`ip link set %s up`)", f.iface, f.iface) }},
	"TCP_INVALID_SEQUENCE": {Socket, "the TCP segment is outside the receive window", func(f facts) string {
		return "a middlebox or NAT rewrote sequence numbers, or the connection state is stale"
	}},
	"TCP_RESET":    {Socket, "the connection was reset", func(f facts) string { return "see who sent the reset in the capture" }},
	"TCP_FLAGS":    {Socket, "invalid TCP flags", func(f facts) string { return "the sender builds invalid TCP segments" }},
	"TCP_OLD_DATA": {Socket, "retransmitted data already received", func(f facts) string { return "usually harmless: a retransmission after loss of the ACK" }},
	"TCP_CLOSE":    {Socket, "the socket is closed", func(f facts) string { return "the application closed the connection before the peer stopped sending" }},
	"TCP_LISTEN_OVERFLOW": {Socket, "the listen queue is full", func(f facts) string {
		return "the application accepts too slowly: raise its listen backlog and net.core.somaxconn"
	}},
	"XFRM_POLICY":             {Input, "an IPsec (xfrm) policy rejected the packet", func(f facts) string { return "check `ip xfrm policy`" }},
	"UNICAST_IN_L2_MULTICAST": {IPRcv, "a unicast IP packet in a multicast frame", func(f facts) string { return "fix the sender's neighbour entry" }},
	"SOCKET_CLOSE":            {Socket, "the socket was closed with the packet still queued", func(f facts) string { return "the application closed its socket without reading" }},
	"QUEUE_PURGE": {Socket, "the socket was destroyed with the packet still in its queue", func(f facts) string {
		return "the application or the peer closed the connection while data was still queued: see which side closed first in the capture"
	}},
	"IPV6DISABLED": {IPRcv, "IPv6 is disabled on the interface", func(f facts) string {
		return fmt.Sprintf("`sysctl -w net.ipv6.conf.%s.disable_ipv6=0`", f.iface)
	}},
	"NOMEM":       {Ingress, "the kernel was out of memory", func(f facts) string { return "the host is short of memory" }},
	"FULL_RING":   {Ingress, "a ring buffer was full", func(f facts) string { return "raise the ring size (`ethtool -G`) or spread the load" }},
	"CPU_BACKLOG": {Ingress, "the per-CPU backlog is full", func(f facts) string { return "raise net.core.netdev_max_backlog or spread the load (RPS)" }},
}

// lookup returns the reason's explanation, or one inferred from the stage.
func lookup(reason string) (explanation, bool) {
	e, ok := reasons[strings.ToUpper(reason)]
	return e, ok
}
