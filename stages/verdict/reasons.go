package verdict

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// explanation is what a reason means and what to do about it.
type explanation struct {
	// stage is where the kernel emits the reason; "" when the reason says nothing of the
	// place (NOT_SPECIFIED), so the stage must come from the function and the stack.
	stage Stage
	why   string
	fix   func(f facts) string
}

// checkedKernels are the kernels whose whole enum skb_drop_reason the table was checked
// against, by release (testdata/kernels; TestRecordedKernelsExplained keeps the two in
// step). A reason of a kernel not among them may be missing: the verdict then says which
// kernels the table knows.
var checkedKernels = []string{"6.1.0-57-amd64", "6.18.44-fc-v1272"}

// reasons explains every core reason of enum skb_drop_reason (include/net/dropreason-core.h)
// by its name without the SKB_DROP_REASON_ prefix: all of Linux 6.18's, plus names that
// other kernels have and 6.18 lacks (older names renamed since, newer ones). Subsystem
// reasons (mac80211, Open vSwitch, qdisc) are explained per subsystem by subsystemReasons.
// A reason used at several places has the stage of its most common one; refinedByStack
// lists them.
var reasons = map[string]explanation{
	// Not drops, or no reason given.
	"NOT_DROPPED_YET": {"", "not a drop: the kernel's placeholder for a packet still in use", func(f facts) string {
		return "nothing to fix on the path: the kernel does not report this value as a drop, so seeing it is a packetmortem bug worth reporting"
	}},
	"CONSUMED": {"", "not a drop: the packet was used up normally (delivered or sent)", func(f facts) string {
		return "nothing to fix: the kernel freed the packet after using it"
	}},
	"NOT_SPECIFIED": {"", "the kernel dropped the packet without saying why", func(f facts) string {
		return fmt.Sprintf("the dropping function and its stack are the only witnesses: read the kernel source of the function named above, and the counters that moved (`nstat -az | grep -i -e drop -e err`, `ip -s link show %s`)", f.iface)
	}},

	// Sockets and their queues.
	"NO_SOCKET": {Socket, "no socket accepts the packet: nothing listens on the port at that address", noSocketFix},
	"SOCKET_CLOSE": {Socket, "the application closed the socket with this data still unread in it", func(f facts) string {
		return "the application closes its socket before reading all it received (for TCP this also sends a reset to the peer): fix its read loop or its shutdown order"
	}},
	"SOCKET_FILTER": {Socket, "a BPF filter on the receiving side refused the packet: a socket filter of the application (SO_ATTACH_FILTER/SO_ATTACH_BPF) or a cgroup ingress program", func(f facts) string {
		return "find the program: cgroup ingress programs with `bpftool cgroup tree` (systemd's IPAddressDeny= and IPIngressFilterPath= install them), socket filters with `bpftool prog show` (type socket_filter) and the application's own filter code"
	}},
	"SOCKET_RCVBUFF": {Socket, "the socket's receive buffer is full: the application does not read fast enough", func(f facts) string {
		return fmt.Sprintf("make the application read faster or give it a bigger receive buffer (SO_RCVBUF, capped by `sysctl net.core.rmem_max`; for TCP `net.ipv4.tcp_rmem`); %s shows the buffer use", ssSocket(f))
	}},
	"SOCKET_BACKLOG": {Socket, "the socket's backlog is full: packets arrive faster than the application, holding the socket, lets the kernel queue them", func(f facts) string {
		return fmt.Sprintf("make the application read faster or raise its buffers (SO_RCVBUF, `net.ipv4.tcp_rmem`): the backlog is bounded by the receive plus send buffer; %s counts these drops", nstat("TcpExtTCPBacklogDrop"))
	}},
	"PROTO_MEM": {Socket, "the protocol's memory limit for all sockets of the host is reached", func(f facts) string {
		p := protoOf(f)
		return fmt.Sprintf("find the sockets holding memory (`ss -%smn`, `cat /proc/net/sockstat`) or raise `net.ipv4.%s_mem` (it covers IPv6 too)", p[:1], p)
	}},
	"QUEUE_PURGE": {Socket, "the socket was destroyed with the packet still in its queue", func(f facts) string {
		return "the application or the peer closed the connection while data was still queued: see which side closed first in the capture"
	}},
	"PFMEMALLOC": {Socket, "the packet came from the memory reserve kept for swapping over the network, and its socket may not use it: the host is almost out of memory", func(f facts) string {
		return fmt.Sprintf("free memory on the host (`free -m`, `dmesg | grep -i -e 'page allocation' -e oom`) or raise `vm.min_free_kbytes`; %s counts these drops", nstat("TcpExtPFMemallocDrop"))
	}},
	"UNIX_DISCONNECT": {Socket, "a unix datagram socket's queue was purged: it reconnected to another peer, or its peer closed", func(f facts) string {
		return fmt.Sprintf("a unix socket carries no network flow: this drop concerns %s only if the service relays it through a local socket; check that application's peer handling", f.flow)
	}},
	"UNIX_SKIP_OOB": {Socket, "out-of-band data on a unix stream socket was skipped by a read without MSG_OOB", func(f facts) string {
		return "a unix socket carries no network flow: the application reads past its out-of-band byte; harmless unless it relies on that byte"
	}},
	"SECURITY_HOOK": {Socket, "a security module (SELinux, AppArmor, Smack or a BPF LSM program) refused the packet", func(f facts) string {
		return fmt.Sprintf("read the module's audit log (`ausearch -m avc -ts recent`, `journalctl -k | grep -i -e avc -e apparmor`) and list BPF LSM programs (`bpftool prog show`, type lsm); allow %s in the policy of the service", f.flow)
	}},
	"PSP_INPUT": {Socket, "a packet failed the PSP encryption checks of its connection (sent in clear where PSP is required, or with a wrong key)", func(f facts) string {
		return fmt.Sprintf("check the PSP association of the connection on both ends (keys, key rotation) and that %s still decrypts PSP (the device's PSP support is on)", f.iface)
	}},

	// Checksums and headers.
	"TCP_CSUM": {Socket, "bad TCP checksum", func(f facts) string {
		return csumFix(f)
	}},
	"UDP_CSUM": {Socket, "bad UDP checksum", func(f facts) string {
		return csumFix(f)
	}},
	"ICMP_CSUM": {Socket, "bad ICMP checksum", func(f facts) string {
		return csumFix(f)
	}},
	"IP_CSUM": {IPRcv, "bad IP header checksum", func(f facts) string {
		return fmt.Sprintf("the packet was corrupted on the way: capture on the sender and on the path; `ip -s link show %s` shows receive errors", f.iface)
	}},
	"IP_INHDR": {IPRcv, "invalid IP header, or its TTL (hop limit) ran out while being forwarded", func(f facts) string {
		return fmt.Sprintf("if the stack shows ip_forward or ip6_forward, the TTL ran out: look for a routing loop (`traceroute -n %s`); otherwise the sender or a middlebox builds broken headers: capture them (`tcpdump -vvni %s host %s`)", f.addr, f.iface, f.src)
	}},
	"PKT_TOO_SMALL": {IPRcv, "the packet is shorter than its headers say", func(f facts) string {
		return fmt.Sprintf("the packet was truncated on the way or built with wrong lengths: capture upstream of %s and compare the header lengths with the data", f.iface)
	}},
	"HDR_TRUNC": {IPRcv, "the packet ends before a header the kernel had to read (truncated, or a length field points past the end)", func(f facts) string {
		return fmt.Sprintf("capture upstream of %s (`tcpdump -vvni %s host %s`) and check the headers' lengths: a broken sender, tunnel or middlebox", f.iface, f.iface, f.src)
	}},
	"OTHERHOST": {IPRcv, "the frame was addressed to another host's MAC address (seen only because the interface is promiscuous)", func(f facts) string {
		return fmt.Sprintf("the sender's neighbour entry for %s points at another MAC: fix it, or look for a MAC address change (`ip link show %s`, `ip neigh` on the sender)", f.addr, f.iface)
	}},
	"IPV6DISABLED": {IPRcv, "IPv6 is disabled on the interface", func(f facts) string {
		return fmt.Sprintf("`sysctl -w net.ipv6.conf.%s.disable_ipv6=0` (and `net.ipv6.conf.all.disable_ipv6=0` if that is set)", f.iface)
	}},
	"IPV6_BAD_EXTHDR": {IPRcv, "a malformed or refused IPv6 extension header (a bad option, a forbidden routing header, or too many options)", func(f facts) string {
		return fmt.Sprintf("capture on %s (`tcpdump -vvni %s ip6 and host %s`) and see which extension header the sender adds; the limits are `net.ipv6.max_hbh_opts_number` and `net.ipv6.max_dst_opts_number`", f.iface, f.iface, f.src)
	}},
	"IPV6_TOO_MANY_EXTHDRS": {Socket, "the packet chains more IPv6 extension headers than the kernel walks before its transport header (a fixed limit, 12 where this reason exists, against floods of tiny headers)", func(f facts) string {
		return fmt.Sprintf("no setting raises the limit: see the chain with `tcpdump -vvni %s ip6 and host %s` and make the sender (a tunnel stack that nests headers, a test tool, or an attack) send fewer", f.iface, f.src)
	}},
	"UNHANDLED_PROTO": {Ingress, "nothing on this host handles the packet's protocol (its ethertype, or an unknown ICMP type)", func(f facts) string {
		return fmt.Sprintf("see the ethertype with `tcpdump -eni %s`: a VLAN tag without its VLAN device, IPv6 not available, or a protocol this host does not run; create the device or load the protocol", f.iface)
	}},
	"INVALID_PROTO": {Socket, "the packet breaks the protocol's rules (RFC 1122): an ICMP echo or timestamp request to a broadcast address, say", func(f facts) string {
		return "refused by design: echo and timestamp requests to a broadcast address are ignored while `net.ipv4.icmp_echo_ignore_broadcasts` is 1 (the safe default); query the host's own address instead"
	}},
	"IP_NOPROTO": {Socket, "no handler for the IP protocol", func(f facts) string {
		return "nothing here handles the packet's IP protocol: load its module (`modprobe sctp`, say) or stop sending it"
	}},

	// Routing and reverse-path checks.
	"IP_RPFILTER": {Routing, "reverse-path filtering: the route back to the source does not go out of the interface the packet came in on", rpFilterFix},
	"IP_INNOROUTES": {Routing, "no route for the packet's destination", func(f facts) string {
		return fmt.Sprintf("add a route for %s, or the address itself if it belongs here (`ip route get %s` shows the lookup)", f.addr, f.addr)
	}},
	"IP_INADDRERRORS": {Routing, "the destination is not an address of this host and the packet cannot be forwarded (forwarding is off or the host is unreachable)", inAddrErrorsFix},
	"IP_LOCAL_SOURCE": {Routing, "the packet claims a source address of this host", func(f facts) string {
		return fmt.Sprintf("a loop reflects this host's packets back, or someone spoofs its address; if it is intended (between local VRFs or veths), allow it: `sysctl -w net.ipv4.conf.%s.accept_local=1`", f.iface)
	}},
	"IP_INVALID_SOURCE": {Routing, "the source address is invalid (martian): multicast, broadcast or zero", func(f facts) string {
		return fmt.Sprintf("the source %s is not routable here: fix the sender or the NAT in front of it; `sysctl -w net.ipv4.conf.%s.log_martians=1` logs such packets", f.src, f.iface)
	}},
	"IP_LOCALNET": {Routing, "a loopback address (127.0.0.0/8) as source or destination on an interface other than lo", func(f facts) string {
		return fmt.Sprintf("a DNAT to 127.0.0.1 or a spoofed loopback source: DNAT to %s instead, or allow it: `sysctl -w net.ipv4.conf.%s.route_localnet=1`", f.addr, f.iface)
	}},
	"IP_INVALID_DEST": {Routing, "the destination address is invalid (0.0.0.0)", func(f facts) string {
		return fmt.Sprintf("the sender %s targets an invalid address: fix its destination", f.src)
	}},
	"UNICAST_IN_L2_MULTICAST": {Routing, "a unicast IP packet in a multicast or broadcast frame, refused by drop_unicast_in_l2_multicast", func(f facts) string {
		return fmt.Sprintf("fix the sender's neighbour entry for %s, or accept such frames: `sysctl -w net.%s.conf.%s.drop_unicast_in_l2_multicast=0`", f.addr, f.sysctlFamily(), f.iface)
	}},
	"ARP_PVLAN_DISABLE": {Routing, "proxy ARP would answer out of the interface the request came in on, which it does only with proxy_arp_pvlan", func(f facts) string {
		return fmt.Sprintf("normal when the target is on the same link as the asker; for a private-VLAN setup enable `sysctl -w net.ipv4.conf.%s.proxy_arp_pvlan=1`", f.iface)
	}},
	"XFRM_POLICY": {Socket, "an IPsec (xfrm) policy refused the packet: it lacks the protection a policy requires, or matched a block policy", func(f facts) string {
		return fmt.Sprintf("compare `ip xfrm policy` with the packet from %s: check the tunnel is up (`ip -s xfrm state`) and `cat /proc/net/xfrm_stat` for the failing check", f.src)
	}},

	// Netfilter: verdict.go takes the stage from the trace or the stack.
	"NETFILTER_DROP": {Input, "a netfilter rule or chain policy dropped the packet", func(f facts) string {
		return "change the rule that drops it (see the firewall trace); list the ruleset with `nft -a list ruleset` (iptables-legacy rules: `iptables-save`)"
	}},

	// Forwarding.
	"PKT_TOO_BIG": {Forward, "the packet is bigger than the next link's MTU and may not be fragmented (DF set, or IPv6)", func(f facts) string {
		return fmt.Sprintf("the kernel sent back an ICMP \"too big\"; if the sender never shrinks its packets, that ICMP is blocked on the way back (a path MTU black hole): let ICMP through, lower the sender's MTU, or clamp TCP's MSS (nftables: `tcp flags syn tcp option maxseg size set rt mtu` in the forward chain); `ip link show %s` shows the MTU", f.iface)
	}},

	// Fragments.
	"DUP_FRAG": {IPRcv, "a duplicate or overlapping IP fragment", func(f facts) string {
		return fmt.Sprintf("duplicates are harmless (a duplicating link or a retransmission); overlaps are refused on purpose (a broken sender or an evasion attempt): capture the fragments from %s on %s", f.src, f.iface)
	}},
	"FRAG_REASM_TIMEOUT": {IPRcv, "not all fragments of the packet arrived in time to reassemble it", func(f facts) string {
		key := "net.ipv4.ipfrag_time"
		if f.v6 {
			key = "net.ipv6.ip6frag_time"
		}
		return fmt.Sprintf("fragments are lost on the way (often a firewall that passes only the first one): capture on %s to see which arrive, and avoid fragmentation at the sender (smaller MTU or datagrams); `%s` sets the wait", f.iface, key)
	}},
	"FRAG_TOO_FAR": {IPRcv, "too many other fragments from the same source arrived while this packet's fragments were incomplete (ipfrag_max_dist): the kernel took them for lost", func(f facts) string {
		return fmt.Sprintf("heavy fragmented traffic from %s with loss or reordering: avoid fragmentation at the sender, or raise `net.ipv4.ipfrag_max_dist` (0 turns the check off)", f.src)
	}},

	// TCP.
	"TCP_FLAGS": {Socket, "TCP flags that make no sense in the connection's state (no ACK on an established connection, or SYN with FIN)", func(f facts) string {
		return fmt.Sprintf("the sender or a middlebox (a scanner, a broken NAT) builds invalid segments: capture them (`tcpdump -ni %s 'tcp port %d'`) and look at the flags", f.iface, f.port)
	}},
	"TCP_ZEROWINDOW": {Socket, "the receive window is zero: the application does not read, so new data is dropped until it does", func(f facts) string {
		return fmt.Sprintf("make the application read its socket (a growing Recv-Q in %s); the peer resends once the window opens", ssSocket(f))
	}},
	"TCP_OLD_DATA": {Socket, "retransmitted data already received", func(f facts) string {
		return fmt.Sprintf("usually harmless: a retransmission after the ACK was lost or late; many of them point at loss on the path back to %s", f.src)
	}},
	"TCP_OVERWINDOW": {Socket, "the segment starts beyond the right edge of the receive window: the sender ignores the window it was given", func(f facts) string {
		return fmt.Sprintf("a sender that overruns the window, or a middlebox that strips or rewrites the window scale option: capture the handshake on %s and compare wscale on both ends", f.iface)
	}},
	"TCP_OFOMERGE": {Socket, "the out-of-order segment's data is already queued out of order: a duplicate", func(f facts) string {
		return fmt.Sprintf("harmless on its own; many of them mean retransmissions on a lossy or reordering path (%s)", nstat("TcpExtTCPOFOMerge"))
	}},
	"TCP_OFO_QUEUE_PRUNE": {Socket, "the kernel pruned the out-of-order queue to free memory: the receive buffer was full of out-of-order data", func(f facts) string {
		return fmt.Sprintf("heavy loss or reordering meets a small receive buffer: raise the maximum of `net.ipv4.tcp_rmem` and find the loss on the path (%s)", nstat("TcpExtOfoPruned"))
	}},
	"TCP_OFO_DROP": {Socket, "an out-of-order segment could not be queued: the socket's receive memory is used up", func(f facts) string {
		return fmt.Sprintf("make the application read faster or raise `net.ipv4.tcp_rmem`; the loss that causes the reordering is upstream (%s)", nstat("TcpExtTCPOFODrop"))
	}},
	"TCP_RFC7323_PAWS": {Socket, "the segment's timestamp is older than the last one seen on the connection (PAWS, RFC 7323): it is taken for an old duplicate", func(f facts) string {
		return "usually several clients behind one NAT address with different timestamp clocks, or a connection reopened too fast: check `nstat -az | grep -i paws`; as a last resort turn timestamps off on the senders (`sysctl -w net.ipv4.tcp_timestamps=0`)"
	}},
	"TCP_RFC7323_PAWS_ACK": {Socket, "an old ACK failed the timestamp check (PAWS): a duplicate or reordered ACK", func(f facts) string {
		return "harmless on its own: a reordered or duplicated ACK (`nstat -az | grep -i paws`)"
	}},
	"TCP_RFC7323_TW_PAWS": {Socket, "a segment for a connection in TIME_WAIT failed the timestamp check (PAWS): it is taken for an old duplicate", func(f facts) string {
		return fmt.Sprintf("a client reuses the same address and port toward %s too soon with an older timestamp (often several clients behind one NAT address): `nstat -az | grep -i paws`", f.flow)
	}},
	"TCP_RFC7323_TSECR": {Socket, "the timestamp echoed by the peer (TSecr) is not one this host sent", func(f facts) string {
		return fmt.Sprintf("a middlebox rewrites TCP timestamps or the peer echoes wrong values: capture on %s and compare TSval and TSecr (%s)", f.iface, nstat("TcpExtTSEcrRejected"))
	}},
	"TCP_LISTEN_OVERFLOW": {Socket, "the listen queue is full: the application accepts connections too slowly", func(f facts) string {
		return fmt.Sprintf("%s shows Recv-Q (waiting) against Send-Q (the backlog): make the application accept faster, or raise its listen backlog and `net.core.somaxconn` (%s)", ssListen(f), nstat("TcpExtListenOverflows", "TcpExtListenDrops"))
	}},
	"TCP_OLD_SEQUENCE": {Socket, "the segment lies entirely before the receive window: a duplicate of data already received", func(f facts) string {
		return "harmless duplicates from retransmission; many of them point at a lossy path or a middlebox replaying segments"
	}},
	"TCP_INVALID_SEQUENCE": {Socket, "the TCP segment is outside the receive window", func(f facts) string {
		return "a middlebox or NAT rewrote sequence numbers, or the connection state is stale"
	}},
	"TCP_INVALID_END_SEQUENCE": {Socket, "the segment starts inside the receive window but ends beyond it: the sender overruns the window", func(f facts) string {
		return fmt.Sprintf("a sender that ignores the advertised window, or a middlebox rewriting window scaling: capture the handshake on %s and compare wscale on both ends", f.iface)
	}},
	"TCP_INVALID_ACK_SEQUENCE": {Socket, "the segment acknowledges data outside what was sent and not yet acknowledged", func(f facts) string {
		return "a stale or spoofed ACK, or a NAT or load balancer that lost the connection's state: compare captures of both ends"
	}},
	"TCP_ACK_UNSENT_DATA": {Socket, "the segment acknowledges data this host has not sent yet", func(f facts) string {
		return "a middlebox rewrites sequence numbers in one direction only (a firewall's sequence randomization, say), or the ACK is spoofed: compare the sequence numbers in captures of both ends"
	}},
	"TCP_OLD_ACK": {Socket, "the ACK is older than one already received (within the window): a duplicate or reordered ACK", func(f facts) string {
		return "harmless on its own; many of them point at reordering on the path"
	}},
	"TCP_TOO_OLD_ACK": {Socket, "the ACK is older than the whole send window: stale or forged (the kernel answers with a challenge ACK)", func(f facts) string {
		return "a peer or middlebox with stale state (a NAT or load balancer that lost the connection) or injected segments: compare captures of both ends"
	}},
	"TCP_RESET": {Socket, "a TCP reset was received: it reset the connection, or was ignored as out of window", func(f facts) string {
		return fmt.Sprintf("see who sent the reset in the capture (`tcpdump -ni %s 'tcp port %d and tcp[tcpflags] & tcp-rst != 0'`): a closed port or an aborting application on the peer, or a firewall injecting resets", f.iface, f.port)
	}},
	"TCP_INVALID_SYN": {Socket, "an unexpected SYN on an existing connection: the kernel answers it with a challenge ACK", func(f facts) string {
		return fmt.Sprintf("usually a client that reopens with the same source port while this side still holds the old connection: the challenge ACK makes the client reset it; if it persists, look for lost resets or port reuse by a NAT in front of %s", f.src)
	}},
	"TCP_CLOSE": {Socket, "the packet reached a TCP socket that is already closed", func(f facts) string {
		return "the application closed the connection before the peer stopped sending"
	}},
	"TCP_ABORT_ON_DATA": {Socket, "data arrived after the application closed the socket, so the kernel aborted the connection with a reset", func(f facts) string {
		return "the application closes while the peer still sends: let it read until the peer's FIN, or shut down writing first (shutdown(SHUT_WR)) and drain"
	}},
	"TCP_FASTOPEN": {Socket, "a segment failed the checks of a TCP Fast Open connection still in its handshake", func(f facts) string {
		return fmt.Sprintf("a Fast Open handshake failed: find the middlebox mangling the Fast Open option, or turn server-side Fast Open off (`sysctl -w net.ipv4.tcp_fastopen=1` keeps the client side only); %s", nstat("TcpExtTCPFastOpenPassiveFail"))
	}},
	"TCP_MINTTL": {Socket, "the packet's TTL (hop limit) is below the minimum the socket demands (IP_MINTTL or IPV6_MINHOPCOUNT, the GTSM protection of BGP)", func(f facts) string {
		return fmt.Sprintf("the peer %s is more hops away than the application allows: fix the application's minimum TTL (BGP's ttl-security hops) or the path", f.src)
	}},
	"TCP_AUTH_HDR": {Socket, "the segment carries TCP-MD5 and TCP-AO signatures together, or one of them twice or malformed", func(f facts) string {
		return fmt.Sprintf("the peer %s signs its segments wrongly: configure one method (TCP-MD5 or TCP-AO) on both ends (a BGP daemon's password or AO key settings)", f.src)
	}},
	"TCP_MD5NOTFOUND": {Socket, "the socket expects a TCP-MD5 signature (RFC 2385) and the segment has none", func(f facts) string {
		return fmt.Sprintf("configure the same TCP-MD5 password on the peer %s (a BGP neighbour's password, say), or remove it here", f.src)
	}},
	"TCP_MD5UNEXPECTED": {Socket, "the segment carries a TCP-MD5 signature and no key is configured here for its sender", func(f facts) string {
		return fmt.Sprintf("configure the TCP-MD5 password for %s here, or remove it on the peer", f.src)
	}},
	"TCP_MD5FAILURE": {Socket, "the segment's TCP-MD5 signature is wrong", func(f facts) string {
		return fmt.Sprintf("set the same password on both ends; a NAT or middlebox that rewrites addresses, ports or options between here and %s also breaks the signature", f.src)
	}},
	"TCP_AONOTFOUND": {Socket, "the socket requires TCP-AO (RFC 5925) and the segment has no AO option", func(f facts) string {
		return fmt.Sprintf("configure TCP-AO on the peer %s, or stop requiring it here", f.src)
	}},
	"TCP_AOUNEXPECTED": {Socket, "the segment carries a TCP-AO option and the socket has no AO keys", func(f facts) string {
		return fmt.Sprintf("configure the TCP-AO keys for %s here, or remove them on the peer", f.src)
	}},
	"TCP_AOKEYNOTFOUND": {Socket, "the segment's TCP-AO key id matches no key configured here", func(f facts) string {
		return fmt.Sprintf("the peer %s uses a key id this side lacks (a key rotation half done): install the same keys and ids on both ends", f.src)
	}},
	"TCP_AOFAILURE": {Socket, "the segment's TCP-AO signature is wrong", func(f facts) string {
		return fmt.Sprintf("the two ends hold different key material, or a middlebox between here and %s changed the segment: compare the keys", f.src)
	}},

	// IPv6 neighbour discovery.
	"IPV6_NDISC_FRAG": {Socket, "a fragmented neighbour discovery message, refused by suppress_frag_ndisc", func(f facts) string {
		return fmt.Sprintf("neighbour discovery must not be fragmented: the sender %s is broken or malicious; `sysctl -w net.ipv6.conf.%s.suppress_frag_ndisc=0` would accept it (not advised)", f.src, f.iface)
	}},
	"IPV6_NDISC_HOP_LIMIT": {Socket, "a neighbour discovery message whose hop limit is not 255: it was routed, so it cannot come from the local link", func(f facts) string {
		return fmt.Sprintf("find the router forwarding neighbour discovery, or the host %s spoofing it", f.src)
	}},
	"IPV6_NDISC_BAD_CODE": {Socket, "a neighbour discovery message with a non-zero ICMPv6 code", func(f facts) string {
		return fmt.Sprintf("the sender %s builds invalid neighbour discovery messages: fix or isolate it", f.src)
	}},
	"IPV6_NDISC_BAD_OPTIONS": {Socket, "a neighbour discovery message with malformed options", func(f facts) string {
		return fmt.Sprintf("the sender %s builds invalid neighbour discovery options: fix or isolate it", f.src)
	}},
	"IPV6_NDISC_NS_OTHERHOST": {Socket, "a neighbour solicitation for an address this host does not own: normal on a shared link", func(f facts) string {
		return fmt.Sprintf("harmless; if this host should answer for %s, configure it on %s, or proxy it: `sysctl -w net.ipv6.conf.%s.proxy_ndp=1` and `ip -6 neigh add proxy %s dev %s`", f.addr, f.iface, f.iface, f.addr, f.iface)
	}},

	// Locally sent packets.
	"IP_OUTNOROUTES": {Output, "no route to send the packet", func(f facts) string {
		return fmt.Sprintf("this host has no route for the packet's destination: add one with `ip route add` (replies to a client need a route back to it; `ip route show default` shows whether a default route exists); `ip route get %s` shows the lookup toward the flow's address", f.addr)
	}},
	"BPF_CGROUP_EGRESS": {Egress, "a cgroup BPF egress program of the sending application's cgroup dropped the packet", func(f facts) string {
		return "`bpftool cgroup tree` lists them (cgroup_skb egress); systemd's IPAddressDeny= and IPEgressFilterPath= install such programs: allow the flow there or detach the program"
	}},
	"PSP_OUTPUT": {Egress, "a packet of a PSP-protected connection could not be sent encrypted (its device cannot do PSP for it)", func(f facts) string {
		return fmt.Sprintf("route the flow through the PSP-capable device (`ip route get %s` shows %s or another one), or re-establish the PSP association", f.dst, f.iface)
	}},

	// Neighbours.
	"NEIGH_CREATEFAIL": {Egress, "no neighbour (ARP/ND) entry could be created for the next hop: the neighbour table is full or memory is short", func(f facts) string {
		return fmt.Sprintf("look for \"neighbour table overflow\" in `dmesg`; find what fills the table (`ip neigh show | wc -l`) or raise `net.%s.neigh.default.gc_thresh3` (and gc_thresh2)", f.sysctlFamily())
	}},
	"NEIGH_FAILED": {Egress, "neighbour resolution (ARP/ND) failed", func(f facts) string {
		return fmt.Sprintf("the next hop does not answer ARP/ND on %s: check it is up and reachable (`ip neigh show dev %s` shows FAILED entries)", f.iface, f.iface)
	}},
	"NEIGH_QUEUEFULL": {Egress, "too many packets waiting for neighbour resolution", func(f facts) string {
		return fmt.Sprintf("the next hop does not answer ARP/ND on %s quickly enough (`ip neigh show dev %s`); raise `net.%s.neigh.%s.unres_qlen_bytes` only once it does", f.iface, f.iface, f.sysctlFamily(), f.iface)
	}},
	"NEIGH_DEAD": {Egress, "the neighbour entry was destroyed (interface down, or the table flushed) while the packet waited on it", func(f facts) string {
		return fmt.Sprintf("transient while %s goes down or neighbours are flushed; if it repeats, find what flaps the link (`ip monitor link neigh`)", f.iface)
	}},
	"NEIGH_HH_FILLFAIL": {Egress, "no room in the packet for the link-layer header of the cached neighbour entry (a kernel or driver bug, often with stacked devices)", func(f facts) string {
		return fmt.Sprintf("look for a warning in `dmesg` and report it with the device stack (`ip -d link show %s`)", f.iface)
	}},

	// Qdiscs and devices on the way out.
	"TC_EGRESS": {Egress, "a tc egress filter dropped the packet", func(f facts) string {
		return fmt.Sprintf("inspect the egress filters on %s (`tc filter show dev %s egress`, `bpftool net show dev %s`)%s", f.iface, f.iface, f.iface, attached(f))
	}},
	"QDISC_DROP": {Egress, "the queueing discipline dropped the packet (queue full or policy)", func(f facts) string {
		return fmt.Sprintf("check the qdisc on %s (`tc -s qdisc show dev %s`)", f.iface, f.iface)
	}},
	"QDISC_OVERLIMIT": {Egress, "the qdisc's queue was over its limit", func(f facts) string {
		return fmt.Sprintf("`tc -s qdisc show dev %s` shows the limit and drops: raise the qdisc's limit, or send slower than %s can carry", f.iface, f.iface)
	}},
	"QDISC_CONGESTED": {Egress, "queue management (CoDel, fq_codel, PIE, RED) dropped it to signal congestion", func(f facts) string {
		return fmt.Sprintf("%s is congested (`tc -s qdisc show dev %s`): enable ECN so the packet is marked instead of dropped (`sysctl -w net.ipv4.tcp_ecn=1` on the senders), or add bandwidth", f.iface, f.iface)
	}},
	"CAKE_FLOOD": {Egress, "CAKE's flood protection (BLUE) dropped it: a flow that ignores congestion keeps its queue full", func(f facts) string {
		return fmt.Sprintf("find the unresponsive flow (`tc -s qdisc show dev %s`) and slow it down at its source", f.iface)
	}},
	"FQ_BAND_LIMIT": {Egress, "the fq qdisc's packet limit for the packet's priority band was reached", func(f facts) string {
		return fmt.Sprintf("`tc -s qdisc show dev %s`: raise fq's limit (`tc qdisc change dev %s <parent> fq limit <packets>`) or send less at that priority", f.iface, f.iface)
	}},
	"FQ_HORIZON_LIMIT": {Egress, "the fq qdisc dropped a packet whose departure time is beyond its horizon", func(f facts) string {
		return fmt.Sprintf("the sender sets departure times too far ahead (SO_TXTIME or EDT pacing): raise fq's horizon or cap instead of drop (`tc qdisc change dev %s <parent> fq horizon 10s horizon_cap`)", f.iface)
	}},
	"FQ_FLOW_LIMIT": {Egress, "a single flow exceeded the fq qdisc's per-flow packet limit", func(f facts) string {
		return fmt.Sprintf("raise fq's flow_limit (`tc qdisc change dev %s <parent> fq flow_limit <packets>`) or pace the sender", f.iface)
	}},
	"DUALPI2_STEP_DROP": {Egress, "the DualPI2 qdisc dropped a packet of its low-latency (L4S) queue whose delay exceeded the step threshold", func(f facts) string {
		return fmt.Sprintf("`tc -s qdisc show dev %s`: make the L4S sender ECN-capable, or raise dualpi2's step_thresh", f.iface)
	}},
	"DEV_READY": {Egress, "the device is not up", func(f facts) string {
		return fmt.Sprintf("bring %s up (`ip link set %s up`); for veth, tun or tap the peer or the process behind it must be up too (`ip link show %s`)", f.iface, f.iface, f.iface)
	}},
	"FULL_RING": {Egress, "a device ring was full: the reader of a tun, tap or veth device (or the NIC) does not keep up", func(f facts) string {
		return fmt.Sprintf("the process or VM behind %s reads too slowly: make it faster or raise the queue (`ip link set %s txqueuelen <packets>`); for a NIC, raise the ring (`ethtool -G %s rx <n>`)", f.iface, f.iface, f.iface)
	}},
	"SKB_CSUM": {Egress, "computing the packet's checksum in software failed", func(f facts) string {
		return fmt.Sprintf("an offload problem: compare `ethtool -k %s`, try `ethtool -K %s tx off` to confirm, and report it with the driver's name", f.iface, f.iface)
	}},
	"SKB_GSO_SEG": {Egress, "cutting a large (GSO) packet into wire-sized ones failed", func(f facts) string {
		return fmt.Sprintf("an offload mismatch on %s or a tunnel: try `ethtool -K %s gso off tso off` to confirm, and check the MTUs along the device stack (`ip -d link show %s`)", f.iface, f.iface, f.iface)
	}},
	"SKB_BAD_GSO": {Egress, "a large (GSO) packet with inconsistent headers was refused as malformed", func(f facts) string {
		return "a VM, a tun/tap user or a packet socket injects malformed GSO packets: check that sender (virtio-net offloads, PACKET_VNET_HDR users)"
	}},
	"TAP_FILTER": {Egress, "the eBPF filter attached to the tun/tap device (TUNSETFILTEREBPF) dropped the packet", func(f facts) string {
		return fmt.Sprintf("check the filter that the VPN or VM software behind %s installed", f.iface)
	}},
	"TAP_TXFILTER": {Egress, "the tun/tap device's address filter (TUNSETTXFILTER) does not accept the packet's destination MAC", func(f facts) string {
		return fmt.Sprintf("the VM or process behind %s filters on MAC addresses: check the destination MAC is the guest's (`ip neigh show dev %s`)", f.iface, f.iface)
	}},
	"RECURSION_LIMIT": {Egress, "the packet looped through virtual devices (a tunnel routed into itself) until the kernel's nesting limit stopped it", func(f facts) string {
		return fmt.Sprintf("a tunnel's outer packets route back into the tunnel: `ip route get <tunnel remote>` must not go through it; look for \"Dead loop\" or \"recursion\" in `dmesg` (device %s)", f.iface)
	}},
	"NO_TX_TARGET": {Egress, "no destination to send the packet to: a VXLAN device without a remote for the MAC, or a bridge without a port for it", func(f facts) string {
		return "add a forwarding entry or a default remote (`bridge fdb append 00:00:00:00:00:00 dev <vxlan> dst <remote>`), or check the bridge ports' states (`bridge link`)"
	}},
	"VXLAN_NO_REMOTE": {Egress, "no destination to send the packet to: a VXLAN device without a remote for the MAC", func(f facts) string {
		return "add a forwarding entry or a default remote (`bridge fdb append 00:00:00:00:00:00 dev <vxlan> dst <remote>`)"
	}},
	"TUNNEL_TXINFO": {Egress, "the packet reached a tunnel device in external (collect_md) mode without the metadata that says where to send it", func(f facts) string {
		return "a device in external mode needs its sender (a tc/BPF program or an Open vSwitch flow) to set the tunnel key: fix that program, or route plain traffic through a regular tunnel device"
	}},

	// Between the capture point and IP.
	"XDP": {Ingress, "an XDP program dropped the packet", func(f facts) string {
		return fmt.Sprintf("inspect the XDP program on %s (`ip link show %s`, `bpftool net`)%s", f.iface, f.iface, attached(f))
	}},
	"TC_INGRESS": {Ingress, "a tc ingress filter dropped the packet", func(f facts) string {
		return fmt.Sprintf("inspect the ingress filters on %s (`tc filter show dev %s ingress`, `bpftool net`)%s", f.iface, f.iface, attached(f))
	}},
	"TC_COOKIE_ERROR": {Ingress, "tc could not match a hardware-offloaded filter's cookie back to its software action (filters changed meanwhile)", func(f facts) string {
		return fmt.Sprintf("check the offloaded filters and the driver (`tc -s filter show dev %s ingress`); it should stop once the filters are stable", f.iface)
	}},
	"TC_CHAIN_NOTFOUND": {Ingress, "a tc action jumped to a chain that does not exist", func(f facts) string {
		return fmt.Sprintf("add the missing chain or fix the `goto chain` action (`tc filter show dev %s ingress` and `egress`)%s", f.iface, attached(f))
	}},
	"TC_RECLASSIFY_LOOP": {Ingress, "tc filters reclassified the packet too many times: a reclassify loop", func(f facts) string {
		return fmt.Sprintf("fix the filter whose action is reclassify so the packet leaves the loop (`tc filter show dev %s ingress` and `egress`)", f.iface)
	}},
	"TC_ERROR": {Ingress, "an internal tc error (kernels before 6.9 name every tc error so)", func(f facts) string {
		return fmt.Sprintf("check the tc filters and actions on %s (`tc -s filter show dev %s ingress` and `egress`) for a goto to a missing chain or a reclassify loop", f.iface, f.iface)
	}},
	"CPU_BACKLOG": {Ingress, "the per-CPU backlog is full", func(f facts) string {
		return "raise `net.core.netdev_max_backlog` or spread the load (RPS); the second column of `/proc/net/softnet_stat` counts the drops per CPU"
	}},
	"NOMEM": {Ingress, "the kernel was out of memory for the packet", func(f facts) string {
		return "the host is short of memory for network buffers: check `free -m`, `cat /proc/net/sockstat` and `dmesg | grep -i 'allocation failure'`; raise `vm.min_free_kbytes` if atomic allocations fail"
	}},
	"DEV_HDR": {Ingress, "the device's own header or metadata is invalid (a virtio-net header from a VM, or a tun/tap write)", func(f facts) string {
		return fmt.Sprintf("the VM or the program writing to %s sends a bad virtio-net header: check its offload settings and those of %s (`ethtool -k %s`)", f.iface, f.iface, f.iface)
	}},
	"SKB_UCOPY_FAULT": {Ingress, "copying the packet's data from user memory failed (a bad buffer written to a tun/tap device, or zero-copy pages that could not be copied)", func(f facts) string {
		return fmt.Sprintf("the program writing to %s (a VPN or a VM monitor) passed a bad buffer, or memory ran short while copying: check that program and the host's memory", f.iface)
	}},
	"SKB_RX_HEADROOM": {Ingress, "the packet reached the receive path with less room in front of its headers than the kernel needed there, and making more room failed", func(f facts) string {
		return fmt.Sprintf("the device or program that handed the packet to the stack on %s (a driver, a tunnel, a tun/tap writer, an XDP program that moved the packet's start) leaves too little headroom, and memory ran short for a copy: check `dmesg`, the driver (`ethtool -i %s`) and free memory, and report it with the driver's name", f.iface, f.iface)
	}},
	"PACKET_SOCK_ERROR": {Ingress, "a packet socket (tcpdump, a DHCP client, a capture) could not queue its copy: only that copy is lost, the flow's packet goes on", func(f facts) string {
		return "not a drop of the flow: a capturing program reads too slowly; give it a bigger buffer (`tcpdump -B <KiB>`) if its copies matter"
	}},
	"MAC_INVALID_SOURCE": {Ingress, "the frame's source MAC address is invalid (multicast, broadcast or zero)", func(f facts) string {
		return fmt.Sprintf("a sender with a broken or spoofed MAC address: find it with `tcpdump -eni %s`", f.iface)
	}},
	"VXLAN_INVALID_SMAC": {Ingress, "the frame's source MAC address is invalid (multicast, broadcast or zero)", func(f facts) string {
		return fmt.Sprintf("a sender behind the VXLAN with a broken or spoofed MAC address: find it with `tcpdump -eni %s`", f.iface)
	}},
	"LOCAL_MAC": {Ingress, "the frame carries this device's own MAC address as its source: a loop, or a duplicate MAC", func(f facts) string {
		return fmt.Sprintf("a forwarding loop reflects this host's frames, or another host uses the MAC of %s (`ip link show %s`): break the loop (STP) or change the MAC", f.iface, f.iface)
	}},
	"MAC_IEEE_MAC_CONTROL": {Ingress, "the frame is for an IEEE MAC Control address (pause frames), which a bridge never forwards", func(f facts) string {
		return fmt.Sprintf("refused by design; if such frames flood, check flow control with the link partner (`ethtool -a %s`)", f.iface)
	}},
	"BRIDGE_INGRESS_STP_STATE": {Ingress, "the bridge port's STP state (blocking, listening or disabled) does not let frames through", func(f facts) string {
		return fmt.Sprintf("`bridge link show dev %s` shows the port state: wait for STP to reach forwarding, fix the loop STP is blocking, or set it by hand (`bridge link set dev %s state 3`)", f.iface, f.iface)
	}},
	"VXLAN_INVALID_HDR": {Ingress, "the VXLAN header is invalid (reserved bits set, or the VNI flag missing)", func(f facts) string {
		return fmt.Sprintf("the VTEP %s sends VXLAN extensions (GBP, GPE) this device was not created with: compare `ip -d link show type vxlan` with the sender's settings", f.src)
	}},
	"VXLAN_VNI_NOT_FOUND": {Ingress, "no VXLAN device here has the packet's VNI", func(f facts) string {
		return fmt.Sprintf("create the VXLAN device for that VNI or fix the sender %s: `ip -d link show type vxlan` lists the VNIs and ports here", f.src)
	}},
	"VXLAN_ENTRY_EXISTS": {Ingress, "VXLAN learning refused to move a static forwarding entry (or one pointing to a nexthop) to the packet's source", func(f facts) string {
		return fmt.Sprintf("a MAC pinned by a static entry appeared behind another VTEP (%s): fix the entry (`bridge fdb show`) or the duplicated MAC", f.src)
	}},
	"IP_TUNNEL_ECN": {Ingress, "the tunnel's outer header says congestion (CE) while the inner packet is not ECN-capable: dropped per RFC 6040", func(f facts) string {
		return "the encapsulating end marks the outer header ECN-capable though the inner packet is not (a fixed tos on its tunnel), or a router sets CE on non-ECN traffic: check the sender's tunnel (`ip -d link show`) and `dmesg` for \"non-ECT\""
	}},
	"CAN_RX_INVALID_FRAME": {Ingress, "an invalid CAN frame (bad length or flags), or a device that cannot receive CAN frames", func(f facts) string {
		return canFix(f)
	}},
	"CANFD_RX_INVALID_FRAME": {Ingress, "an invalid CAN FD frame (bad length or flags), or a device that cannot receive CAN FD frames", func(f facts) string {
		return canFix(f)
	}},
	"CANXL_RX_INVALID_FRAME": {Ingress, "an invalid CAN XL frame (bad length or flags), or a device that cannot receive CAN XL frames", func(f facts) string {
		return canFix(f)
	}},
}

// subsystemReasons explain the reasons of subsystems with their own enums, whose names
// (OVS_DROP_METER) or, without BTF, subsystem and code (OPENVSWITCH:3) kdrop reports.
var subsystemReasons = []struct {
	prefixes []string
	explanation
}{
	{[]string{"OPENVSWITCH", "OVS_DROP_"}, explanation{Ingress, "Open vSwitch dropped the packet: a flow's drop action, a meter, a failed action or a recursion limit", func(f facts) string {
		return "`ovs-appctl ofproto/trace <bridge> <flow>` names the OpenFlow rule that drops it; `ovs-appctl dpctl/dump-flows -m | grep drop` lists the datapath's drop flows and `ovs-appctl coverage/show | grep drop` counts the reasons"
	}}},
	{[]string{"MAC80211", "RX_DROP_"}, explanation{Ingress, "the Wi-Fi stack (mac80211) discarded the frame as unusable: a decryption or integrity failure, a duplicate, or a sender that is not associated", func(f facts) string {
		return fmt.Sprintf("check the Wi-Fi link (`iw dev %s link`, `iw dev %s station dump`) and the kernel log for key or association errors (`journalctl -k | grep %s`); reconnect if the keys are out of sync", f.iface, f.iface, f.iface)
	}}},
	{[]string{"QDISC:", "QDISC_DROP_"}, explanation{Egress, "a queueing discipline dropped the packet (its queue over limit, congestion, or a per-flow limit)", func(f facts) string {
		return fmt.Sprintf("`tc -s qdisc show dev %s` names the qdisc and its drops: raise its limits or relieve the congestion", f.iface)
	}}},
}

// stackRefined are the reasons the kernel emits at several stages: the table gives the
// most common one, and the dropping function or the stack should override it when they
// tell (as for NETFILTER_DROP).
var stackRefined = map[string]bool{
	"NETFILTER_DROP": true, "NOMEM": true, "HDR_TRUNC": true, "PKT_TOO_SMALL": true, "IP_INHDR": true,
	"XFRM_POLICY": true, "IPV6DISABLED": true, "PKT_TOO_BIG": true, "DEV_READY": true, "FULL_RING": true,
	"UNHANDLED_PROTO": true, "IPV6_BAD_EXTHDR": true, "SKB_UCOPY_FAULT": true, "DEV_HDR": true,
	"MAC_INVALID_SOURCE": true, "LOCAL_MAC": true, "NO_TX_TARGET": true, "PFMEMALLOC": true,
	"SOCKET_FILTER": true, "SECURITY_HOOK": true, "PACKET_SOCK_ERROR": true, "TAP_FILTER": true,
	"TC_COOKIE_ERROR": true, "TC_CHAIN_NOTFOUND": true, "TC_RECLASSIFY_LOOP": true, "TC_ERROR": true,
	"IP_INNOROUTES": true, "DUP_FRAG": true, "FRAG_REASM_TIMEOUT": true, "IP_TUNNEL_ECN": true,
	"CPU_BACKLOG": true, "SKB_CSUM": true, "RECURSION_LIMIT": true, "SKB_RX_HEADROOM": true,
}

// refinedByStack tells whether the reason's stage in the table is only its most common
// one, to be overridden by the dropping function or the stack when they tell.
func refinedByStack(reason string) bool {
	return stackRefined[canonical(reason)]
}

// canonical upper-cases a reason name; kernel enum names keep their prefix out.
func canonical(reason string) string {
	return strings.ToUpper(strings.TrimSpace(reason))
}

// lookup returns the reason's explanation: the core table first, then the subsystems by
// prefix. An unknown reason (a newer kernel's) returns false.
func lookup(reason string) (explanation, bool) {
	name := canonical(reason)
	if name == "" {
		return explanation{}, false
	}
	if e, ok := reasons[name]; ok {
		return e, true
	}
	// Full enum names: SKB_DROP_REASON_NO_SOCKET, SKB_CONSUMED.
	for _, prefix := range []string{"SKB_DROP_REASON_", "SKB_"} {
		if short, ok := strings.CutPrefix(name, prefix); ok {
			if e, ok := reasons[short]; ok {
				return e, true
			}
		}
	}
	for _, s := range subsystemReasons {
		for _, p := range s.prefixes {
			if strings.HasPrefix(name, p) {
				return s.explanation, true
			}
		}
	}
	return explanation{}, false
}

// noSocketFix tells what listens on the port, when the host state was read.
func noSocketFix(f facts) string {
	check := ssListen(f)
	switch l := strings.TrimSpace(f.listeners); {
	case l == "":
		return fmt.Sprintf("start the service on %s port %d, or make it bind to %s (or to all addresses) instead of another address; check with %s", protoOf(f), f.port, f.addr, check)
	case l == "none":
		return fmt.Sprintf("nothing listens on %s port %d here: start the service, bound to %s or %s; check with %s", protoOf(f), f.port, f.addr, anyAddr(f), check)
	default:
		addrs := listenAddrs(l)
		if len(addrs) == 0 {
			return fmt.Sprintf("sockets on port %d: %s; none accepts %s: bind the service to %s or %s; check with %s", f.port, l, f.addr, f.addr, anyAddr(f), check)
		}
		for _, a := range addrs {
			if accepts(a, f) {
				return fmt.Sprintf("a socket listens on %s, yet this packet found none: it belongs to no connection (a stale one after a restart, or a handshake the listener dropped), or the socket is bound to a device or lives in another namespace; check with `ss -lnpe 'sport = :%d'`", a, f.port)
			}
		}
		return fmt.Sprintf("the service listens on %s only: bind it to %s or %s", strings.Join(addrs, ", "), f.addr, anyAddr(f))
	}
}

// listenAddrs picks the local addresses out of a listeners description such as
// "tcp 127.0.0.1:8080 LISTEN, tcp [::1]:8080 LISTEN".
func listenAddrs(s string) []string {
	var out []string
	for _, field := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\n' || r == '\t' }) {
		if i := strings.IndexByte(field, '%'); i >= 0 && !strings.HasPrefix(field, "[") {
			if j := strings.LastIndexByte(field, ':'); j > i {
				field = field[:i] + field[j:] // ss prints 127.0.0.53%lo:53
			}
		}
		if ap, err := netip.ParseAddrPort(field); err == nil {
			out = append(out, ap.String())
		} else if strings.HasPrefix(field, "*:") {
			out = append(out, field)
		}
	}
	return out
}

// accepts tells whether a socket bound to local would take the flow's packets by address:
// the flow's own address, or a wildcard of its family (an IPv6 wildcard takes IPv4 too
// unless it is v6only, which the listeners text does not say).
func accepts(local string, f facts) bool {
	if strings.HasPrefix(local, "*:") {
		return true
	}
	ap, err := netip.ParseAddrPort(local)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	if a.IsUnspecified() {
		return a.Is6() || !f.v6
	}
	flowAddr, err := netip.ParseAddr(f.addr)
	return err == nil && a == flowAddr.Unmap()
}

// rpFilterFix quotes the interface's and `all`'s rp_filter values when they were read.
func rpFilterFix(f facts) string {
	set := fmt.Sprintf("`sysctl -w net.ipv4.conf.%s.rp_filter=2`", f.iface)
	route := fmt.Sprintf("route %s back via %s (`ip route get %s` shows where the replies go now)", f.src, f.iface, f.src)
	ifv, allv := strings.TrimSpace(f.rpFilterIface), strings.TrimSpace(f.rpFilterAll)
	switch {
	case ifv != "" && allv != "":
		if maxRP(ifv, allv) == 2 {
			return fmt.Sprintf("reverse-path filtering is already loose (%s is %s, `all` is %s: the kernel uses the higher of the two), so %s has no route back at all: %s, or turn the check off with `sysctl -w net.ipv4.conf.%s.rp_filter=0` and `sysctl -w net.ipv4.conf.all.rp_filter=0`",
				f.iface, ifv, allv, f.src, route, f.iface)
		}
		return fmt.Sprintf("%s, or use loose reverse-path filtering: %s (now %s; `all` is %s: the kernel uses the higher of the two)", route, set, ifv, allv)
	case ifv != "" || allv != "":
		return fmt.Sprintf("%s, or use loose reverse-path filtering: %s (%s is %s, `all` is %s: the kernel uses the higher of the two)",
			route, set, f.iface, orUnread(ifv), orUnread(allv))
	default:
		return fmt.Sprintf("%s, or use loose reverse-path filtering: %s (the kernel uses the higher of it and `net.ipv4.conf.all.rp_filter`, so this is enough unless you want the check off, which needs both at 0)", route, set)
	}
}

func orUnread(v string) string {
	if v == "" {
		return "unread"
	}
	return v
}

// maxRP is the effective rp_filter mode: the higher of the two values, -1 if unreadable.
func maxRP(a, b string) int {
	x, errX := strconv.Atoi(a)
	y, errY := strconv.Atoi(b)
	if errX != nil || errY != nil {
		return -1
	}
	return max(x, y)
}

// inAddrErrorsFix says whether forwarding is the cause, when the host state was read.
func inAddrErrorsFix(f facts) string {
	key := "net.ipv4.ip_forward"
	if f.v6 {
		key = "net.ipv6.conf.all.forwarding"
	}
	own := fmt.Sprintf("if %s should be this host's, add it (`ip addr add %s dev %s`)", f.addr, f.addr, f.iface)
	switch strings.TrimSpace(f.ipForward) {
	case "0":
		return fmt.Sprintf("%s is not an address of this host and forwarding is off (%s is 0): %s, or, if this host routes, `sysctl -w %s=1`", f.addr, key, own, key)
	case "":
		return fmt.Sprintf("%s; if this host should route it, enable forwarding (`sysctl -w %s=1`); `ip route get %s iif %s` shows the lookup", own, key, f.addr, f.iface)
	default:
		return fmt.Sprintf("forwarding is on (%s is %s), so the route to %s says unreachable: `ip route get %s iif %s` shows it; replace the unreachable route or %s", key, strings.TrimSpace(f.ipForward), f.addr, f.addr, f.iface, own)
	}
}

func csumFix(f facts) string {
	return fmt.Sprintf("the packet was corrupted on the way or the sender's checksum offload is broken: capture on the sender and check `ethtool -k` there (and on %s: `ethtool -k %s`)", f.iface, f.iface)
}

func canFix(f facts) string {
	return fmt.Sprintf("a CAN bus carries no IP flow: check the frames' format on the sender and the device's mode (`ip -d link show %s`)", f.iface)
}

// attached names the programs on the interface, when the host state was read.
func attached(f facts) string {
	if p := strings.TrimSpace(f.programs); p != "" {
		return "; attached now: " + p
	}
	return ""
}

func protoOf(f facts) string {
	if f.proto == "" {
		return "tcp"
	}
	return f.proto
}

func anyAddr(f facts) string {
	if f.v6 {
		return "::"
	}
	return "0.0.0.0"
}

// ssListen is the ss command that shows the sockets listening on the flow's port.
func ssListen(f facts) string {
	return fmt.Sprintf("`ss -l%snp 'sport = :%d'`", protoOf(f)[:1], f.port)
}

// ssSocket is the ss command that shows the flow's sockets with their memory.
func ssSocket(f facts) string {
	return fmt.Sprintf("`ss -%snm 'sport = :%d'`", protoOf(f)[:1], f.port)
}

func nstat(counters ...string) string {
	return "`nstat -az " + strings.Join(counters, " ") + "`"
}
