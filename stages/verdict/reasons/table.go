package reasons

// core explains every core reason of enum skb_drop_reason (include/net/dropreason-core.h)
// by its name without the SKB_DROP_REASON_ prefix: all of Linux 6.18's, plus names that
// other kernels have and 6.18 lacks (older names renamed since, newer ones). Subsystem
// reasons (mac80211, Open vSwitch, qdisc) are explained per subsystem by subsystems. A
// reason used at several places has the stage of its most common one; stageVaries lists
// them.
var core = map[string]Entry{
	// Not drops, or no reason given.
	"NOT_DROPPED_YET": {Why: "not a drop: the kernel's placeholder for a packet still in use",
		Fix: "nothing to fix on the path: the kernel does not report this value as a drop, so seeing it is a packetmortem bug worth reporting"},
	"CONSUMED": {Why: "not a drop: the packet was used up normally (delivered or sent)",
		Fix: "nothing to fix: the kernel freed the packet after using it"},
	"NOT_SPECIFIED": {Why: "the kernel dropped the packet without saying why",
		Fix: "the dropping function and its stack are the only witnesses: read the kernel source of the function named above, and the counters that moved (`nstat -az | grep -i -e drop -e err`, `ip -s link show {iface}`)"},

	// Sockets and their queues.
	"NO_SOCKET": {Stage: "socket", Why: "no socket accepts the packet: nothing listens on the port at that address",
		// Without the host's state: what to check.
		Fix: "start the service on {proto} port {port}, or make it bind to {addr} (or to all addresses) instead of another address; check with " + ssListen,
		FixIf: map[Situation]string{
			NothingListens:   "nothing listens on {proto} port {port} here: start the service, bound to {addr} or {any}; check with " + ssListen,
			ListenersUnknown: "sockets on port {port}: {listeners}; none accepts {addr}: bind the service to {addr} or {any}; check with " + ssListen,
			ListenerTakes:    "a socket listens on {listener}, yet this packet found none: it belongs to no connection (a stale one after a restart, or a handshake the listener dropped), or the socket is bound to a device or lives in another namespace; check with `ss -lnpe 'sport = :{port}'`",
			ListensElsewhere: "the service listens on {listening} only: bind it to {addr} or {any}",
		}},
	"SOCKET_CLOSE": {Stage: "socket", Why: "the application closed the socket with this data still unread in it",
		Fix: "the application closes its socket before reading all it received (for TCP this also sends a reset to the peer): fix its read loop or its shutdown order"},
	"SOCKET_FILTER": {Stage: "socket", Why: "a BPF filter on the receiving side refused the packet: a socket filter of the application (SO_ATTACH_FILTER/SO_ATTACH_BPF) or a cgroup ingress program",
		Fix: "find the program: cgroup ingress programs with `bpftool cgroup tree` (systemd's IPAddressDeny= and IPIngressFilterPath= install them), socket filters with `bpftool prog show` (type socket_filter) and the application's own filter code"},
	"SOCKET_RCVBUFF": {Stage: "socket", Why: "the socket's receive buffer is full: the application does not read fast enough",
		Fix: "make the application read faster or give it a bigger receive buffer (SO_RCVBUF, capped by `sysctl net.core.rmem_max`; for TCP `net.ipv4.tcp_rmem`); `ss -{p}nm 'sport = :{port}'` shows the buffer use"},
	"SOCKET_BACKLOG": {Stage: "socket", Why: "the socket's backlog is full: packets arrive faster than the application, holding the socket, lets the kernel queue them",
		Fix: "make the application read faster or raise its buffers (SO_RCVBUF, `net.ipv4.tcp_rmem`): the backlog is bounded by the receive plus send buffer; `nstat -az TcpExtTCPBacklogDrop` counts these drops"},
	"PROTO_MEM": {Stage: "socket", Why: "the protocol's memory limit for all sockets of the host is reached",
		Fix: "find the sockets holding memory (`ss -{p}mn`, `cat /proc/net/sockstat`) or raise `net.ipv4.{proto}_mem` (it covers IPv6 too)"},
	"QUEUE_PURGE": {Stage: "socket", Why: "the socket was destroyed with the packet still in its queue",
		Fix: "the application or the peer closed the connection while data was still queued: see which side closed first in the capture"},
	"PFMEMALLOC": {Stage: "socket", Why: "the packet came from the memory reserve kept for swapping over the network, and its socket may not use it: the host is almost out of memory",
		Fix: "free memory on the host (`free -m`, `dmesg | grep -i -e 'page allocation' -e oom`) or raise `vm.min_free_kbytes`; `nstat -az TcpExtPFMemallocDrop` counts these drops"},
	"UNIX_DISCONNECT": {Stage: "socket", Why: "a unix datagram socket's queue was purged: it reconnected to another peer, or its peer closed",
		Fix: "a unix socket carries no network flow: this drop concerns {flow} only if the service relays it through a local socket; check that application's peer handling"},
	"UNIX_SKIP_OOB": {Stage: "socket", Why: "out-of-band data on a unix stream socket was skipped by a read without MSG_OOB",
		Fix: "a unix socket carries no network flow: the application reads past its out-of-band byte; harmless unless it relies on that byte"},
	"SECURITY_HOOK": {Stage: "socket", Why: "a security module (SELinux, AppArmor, Smack or a BPF LSM program) refused the packet",
		Fix: "read the module's audit log (`ausearch -m avc -ts recent`, `journalctl -k | grep -i -e avc -e apparmor`) and list BPF LSM programs (`bpftool prog show`, type lsm); allow {flow} in the policy of the service"},
	"PSP_INPUT": {Stage: "socket", Why: "a packet failed the PSP encryption checks of its connection (sent in clear where PSP is required, or with a wrong key)",
		Fix: "check the PSP association of the connection on both ends (keys, key rotation) and that {iface} still decrypts PSP (the device's PSP support is on)"},

	// Checksums and headers.
	"TCP_CSUM":  {Stage: "socket", Why: "bad TCP checksum", Fix: csumFix},
	"UDP_CSUM":  {Stage: "socket", Why: "bad UDP checksum", Fix: csumFix},
	"ICMP_CSUM": {Stage: "socket", Why: "bad ICMP checksum", Fix: csumFix},
	"IP_CSUM": {Stage: "ip_rcv", Why: "bad IP header checksum",
		Fix: "the packet was corrupted on the way: capture on the sender and on the path; `ip -s link show {iface}` shows receive errors"},
	"IP_INHDR": {Stage: "ip_rcv", Why: "invalid IP header, or its TTL (hop limit) ran out while being forwarded",
		Fix: "if the stack shows ip_forward or ip6_forward, the TTL ran out: look for a routing loop (`traceroute -n {addr}`); otherwise the sender or a middlebox builds broken headers: capture them (`tcpdump -vvni {iface} host {src}`)"},
	"PKT_TOO_SMALL": {Stage: "ip_rcv", Why: "the packet is shorter than its headers say",
		Fix: "the packet was truncated on the way or built with wrong lengths: capture upstream of {iface} and compare the header lengths with the data"},
	"HDR_TRUNC": {Stage: "ip_rcv", Why: "the packet ends before a header the kernel had to read (truncated, or a length field points past the end)",
		Fix: "capture upstream of {iface} (`tcpdump -vvni {iface} host {src}`) and check the headers' lengths: a broken sender, tunnel or middlebox"},
	"OTHERHOST": {Stage: "ip_rcv", Why: "the frame was addressed to another host's MAC address (seen only because the interface is promiscuous)",
		Fix: "the sender's neighbour entry for {addr} points at another MAC: fix it, or look for a MAC address change (`ip link show {iface}`, `ip neigh` on the sender)"},
	"IPV6DISABLED": {Stage: "ip_rcv", Why: "IPv6 is disabled on the interface",
		Fix: "`sysctl -w net.ipv6.conf.{iface}.disable_ipv6=0` (and `net.ipv6.conf.all.disable_ipv6=0` if that is set)"},
	"IPV6_BAD_EXTHDR": {Stage: "ip_rcv", Why: "a malformed or refused IPv6 extension header (a bad option, a forbidden routing header, or too many options)",
		Fix: "capture on {iface} (`tcpdump -vvni {iface} ip6 and host {src}`) and see which extension header the sender adds; the limits are `net.ipv6.max_hbh_opts_number` and `net.ipv6.max_dst_opts_number`"},
	"IPV6_TOO_MANY_EXTHDRS": {Stage: "socket", Why: "the packet chains more IPv6 extension headers than the kernel walks before its transport header (a fixed limit, 12 where this reason exists, against floods of tiny headers)",
		Fix: "no setting raises the limit: see the chain with `tcpdump -vvni {iface} ip6 and host {src}` and make the sender (a tunnel stack that nests headers, a test tool, or an attack) send fewer"},
	"UNHANDLED_PROTO": {Stage: "ingress", Why: "nothing on this host handles the packet's protocol (its ethertype, or an unknown ICMP type)",
		Fix: "see the ethertype with `tcpdump -eni {iface}`: a VLAN tag without its VLAN device, IPv6 not available, or a protocol this host does not run; create the device or load the protocol"},
	"INVALID_PROTO": {Stage: "socket", Why: "the packet breaks the protocol's rules (RFC 1122): an ICMP echo or timestamp request to a broadcast address, say",
		Fix: "refused by design: echo and timestamp requests to a broadcast address are ignored while `net.ipv4.icmp_echo_ignore_broadcasts` is 1 (the safe default); query the host's own address instead"},
	"IP_NOPROTO": {Stage: "socket", Why: "no handler for the IP protocol",
		Fix: "nothing here handles the packet's IP protocol: load its module (`modprobe sctp`, say) or stop sending it"},

	// Routing and reverse-path checks.
	"IP_RPFILTER": {Stage: "routing", Why: "reverse-path filtering: the route back to the source does not go out of the interface the packet came in on",
		Fix: rpRouteBack + ", or use loose reverse-path filtering: " + rpLoosen + " (the kernel uses the higher of it and `net.ipv4.conf.all.rp_filter`, so this is enough unless you want the check off, which needs both at 0)",
		FixIf: map[Situation]string{
			RPFilterLoose:    "reverse-path filtering is already loose ({iface} is {rp_filter}, `all` is {rp_filter_all}: the kernel uses the higher of the two), so {src} has no route back at all: " + rpRouteBack + ", or turn the check off with `sysctl -w net.ipv4.conf.{iface}.rp_filter=0` and `sysctl -w net.ipv4.conf.all.rp_filter=0`",
			RPFilterRead:     rpRouteBack + ", or use loose reverse-path filtering: " + rpLoosen + " (now {rp_filter}; `all` is {rp_filter_all}: the kernel uses the higher of the two)",
			RPFilterHalfRead: rpRouteBack + ", or use loose reverse-path filtering: " + rpLoosen + " ({iface} is {rp_filter}, `all` is {rp_filter_all}: the kernel uses the higher of the two)",
		}},
	"IP_INNOROUTES": {Stage: "routing", Why: "no route for the packet's destination",
		Fix: "add a route for {addr}, or the address itself if it belongs here (`ip route get {addr}` shows the lookup)"},
	"IP_INADDRERRORS": {Stage: "routing", Why: "the destination is not an address of this host and the packet cannot be forwarded (forwarding is off or the host is unreachable)",
		Fix: addOwnAddr + "; if this host should route it, enable forwarding (`sysctl -w {forwarding}=1`); `ip route get {addr} iif {iface}` shows the lookup",
		FixIf: map[Situation]string{
			ForwardingOff: "{addr} is not an address of this host and forwarding is off ({forwarding} is 0): " + addOwnAddr + ", or, if this host routes, `sysctl -w {forwarding}=1`",
			ForwardingOn:  "forwarding is on ({forwarding} is {ip_forward}), so the route to {addr} says unreachable: `ip route get {addr} iif {iface}` shows it; replace the unreachable route or " + addOwnAddr,
		}},
	"IP_LOCAL_SOURCE": {Stage: "routing", Why: "the packet claims a source address of this host",
		Fix: "a loop reflects this host's packets back, or someone spoofs its address; if it is intended (between local VRFs or veths), allow it: `sysctl -w net.ipv4.conf.{iface}.accept_local=1`"},
	"IP_INVALID_SOURCE": {Stage: "routing", Why: "the source address is invalid (martian): multicast, broadcast or zero",
		Fix: "the source {src} is not routable here: fix the sender or the NAT in front of it; `sysctl -w net.ipv4.conf.{iface}.log_martians=1` logs such packets"},
	"IP_LOCALNET": {Stage: "routing", Why: "a loopback address (127.0.0.0/8) as source or destination on an interface other than lo",
		Fix: "a DNAT to 127.0.0.1 or a spoofed loopback source: DNAT to {addr} instead, or allow it: `sysctl -w net.ipv4.conf.{iface}.route_localnet=1`"},
	"IP_INVALID_DEST": {Stage: "routing", Why: "the destination address is invalid (0.0.0.0)",
		Fix: "the sender {src} targets an invalid address: fix its destination"},
	"UNICAST_IN_L2_MULTICAST": {Stage: "routing", Why: "a unicast IP packet in a multicast or broadcast frame, refused by drop_unicast_in_l2_multicast",
		Fix: "fix the sender's neighbour entry for {addr}, or accept such frames: `sysctl -w net.{family}.conf.{iface}.drop_unicast_in_l2_multicast=0`"},
	"ARP_PVLAN_DISABLE": {Stage: "routing", Why: "proxy ARP would answer out of the interface the request came in on, which it does only with proxy_arp_pvlan",
		Fix: "normal when the target is on the same link as the asker; for a private-VLAN setup enable `sysctl -w net.ipv4.conf.{iface}.proxy_arp_pvlan=1`"},
	"XFRM_POLICY": {Stage: "socket", Why: "an IPsec (xfrm) policy refused the packet: it lacks the protection a policy requires, or matched a block policy",
		Fix: "compare `ip xfrm policy` with the packet from {src}: check the tunnel is up (`ip -s xfrm state`) and `cat /proc/net/xfrm_stat` for the failing check"},

	// Netfilter: the verdict takes the stage from the trace or the stack.
	"NETFILTER_DROP": {Stage: "input", Why: "a netfilter rule or chain policy dropped the packet",
		Fix: "change the rule that drops it (see the firewall trace); list the ruleset with `nft -a list ruleset` (iptables-legacy rules: `iptables-save`)"},

	// Forwarding.
	"PKT_TOO_BIG": {Stage: "forward", Why: "the packet is bigger than the next link's MTU and may not be fragmented (DF set, or IPv6)",
		Fix: "the kernel sent back an ICMP \"too big\"; if the sender never shrinks its packets, that ICMP is blocked on the way back (a path MTU black hole): let ICMP through, lower the sender's MTU, or clamp TCP's MSS (nftables: `tcp flags syn tcp option maxseg size set rt mtu` in the forward chain); `ip link show {iface}` shows the MTU"},

	// Fragments.
	"DUP_FRAG": {Stage: "ip_rcv", Why: "a duplicate or overlapping IP fragment",
		Fix: "duplicates are harmless (a duplicating link or a retransmission); overlaps are refused on purpose (a broken sender or an evasion attempt): capture the fragments from {src} on {iface}"},
	"FRAG_REASM_TIMEOUT": {Stage: "ip_rcv", Why: "not all fragments of the packet arrived in time to reassemble it",
		Fix: "fragments are lost on the way (often a firewall that passes only the first one): capture on {iface} to see which arrive, and avoid fragmentation at the sender (smaller MTU or datagrams); `{frag_time}` sets the wait"},
	"FRAG_TOO_FAR": {Stage: "ip_rcv", Why: "too many other fragments from the same source arrived while this packet's fragments were incomplete (ipfrag_max_dist): the kernel took them for lost",
		Fix: "heavy fragmented traffic from {src} with loss or reordering: avoid fragmentation at the sender, or raise `net.ipv4.ipfrag_max_dist` (0 turns the check off)"},

	// TCP.
	"TCP_FLAGS": {Stage: "socket", Why: "TCP flags that make no sense in the connection's state (no ACK on an established connection, or SYN with FIN)",
		Fix: "the sender or a middlebox (a scanner, a broken NAT) builds invalid segments: capture them (`tcpdump -ni {iface} 'tcp port {port}'`) and look at the flags"},
	"TCP_ZEROWINDOW": {Stage: "socket", Why: "the receive window is zero: the application does not read, so new data is dropped until it does",
		Fix: "make the application read its socket (a growing Recv-Q in `ss -{p}nm 'sport = :{port}'`); the peer resends once the window opens"},
	"TCP_OLD_DATA": {Stage: "socket", Why: "retransmitted data already received",
		Fix: "usually harmless: a retransmission after the ACK was lost or late; many of them point at loss on the path back to {src}"},
	"TCP_OVERWINDOW": {Stage: "socket", Why: "the segment starts beyond the right edge of the receive window: the sender ignores the window it was given",
		Fix: "a sender that overruns the window, or a middlebox that strips or rewrites the window scale option: capture the handshake on {iface} and compare wscale on both ends"},
	"TCP_OFOMERGE": {Stage: "socket", Why: "the out-of-order segment's data is already queued out of order: a duplicate",
		Fix: "harmless on its own; many of them mean retransmissions on a lossy or reordering path (`nstat -az TcpExtTCPOFOMerge`)"},
	"TCP_OFO_QUEUE_PRUNE": {Stage: "socket", Why: "the kernel pruned the out-of-order queue to free memory: the receive buffer was full of out-of-order data",
		Fix: "heavy loss or reordering meets a small receive buffer: raise the maximum of `net.ipv4.tcp_rmem` and find the loss on the path (`nstat -az TcpExtOfoPruned`)"},
	"TCP_OFO_DROP": {Stage: "socket", Why: "an out-of-order segment could not be queued: the socket's receive memory is used up",
		Fix: "make the application read faster or raise `net.ipv4.tcp_rmem`; the loss that causes the reordering is upstream (`nstat -az TcpExtTCPOFODrop`)"},
	"TCP_RFC7323_PAWS": {Stage: "socket", Why: "the segment's timestamp is older than the last one seen on the connection (PAWS, RFC 7323): it is taken for an old duplicate",
		Fix: "usually several clients behind one NAT address with different timestamp clocks, or a connection reopened too fast: check `nstat -az | grep -i paws`; as a last resort turn timestamps off on the senders (`sysctl -w net.ipv4.tcp_timestamps=0`)"},
	"TCP_RFC7323_PAWS_ACK": {Stage: "socket", Why: "an old ACK failed the timestamp check (PAWS): a duplicate or reordered ACK",
		Fix: "harmless on its own: a reordered or duplicated ACK (`nstat -az | grep -i paws`)"},
	"TCP_RFC7323_TW_PAWS": {Stage: "socket", Why: "a segment for a connection in TIME_WAIT failed the timestamp check (PAWS): it is taken for an old duplicate",
		Fix: "a client reuses the same address and port toward {flow} too soon with an older timestamp (often several clients behind one NAT address): `nstat -az | grep -i paws`"},
	"TCP_RFC7323_TSECR": {Stage: "socket", Why: "the timestamp echoed by the peer (TSecr) is not one this host sent",
		Fix: "a middlebox rewrites TCP timestamps or the peer echoes wrong values: capture on {iface} and compare TSval and TSecr (`nstat -az TcpExtTSEcrRejected`)"},
	"TCP_LISTEN_OVERFLOW": {Stage: "socket", Why: "the listen queue is full: the application accepts connections too slowly",
		Fix: "`ss -l{p}np 'sport = :{port}'` shows Recv-Q (waiting) against Send-Q (the backlog): make the application accept faster, or raise its listen backlog and `net.core.somaxconn` (`nstat -az TcpExtListenOverflows TcpExtListenDrops`)"},
	"TCP_OLD_SEQUENCE": {Stage: "socket", Why: "the segment lies entirely before the receive window: a duplicate of data already received",
		Fix: "harmless duplicates from retransmission; many of them point at a lossy path or a middlebox replaying segments"},
	"TCP_INVALID_SEQUENCE": {Stage: "socket", Why: "the TCP segment is outside the receive window",
		Fix: "a middlebox or NAT rewrote sequence numbers, or the connection state is stale"},
	"TCP_INVALID_END_SEQUENCE": {Stage: "socket", Why: "the segment starts inside the receive window but ends beyond it: the sender overruns the window",
		Fix: "a sender that ignores the advertised window, or a middlebox rewriting window scaling: capture the handshake on {iface} and compare wscale on both ends"},
	"TCP_INVALID_ACK_SEQUENCE": {Stage: "socket", Why: "the segment acknowledges data outside what was sent and not yet acknowledged",
		Fix: "a stale or spoofed ACK, or a NAT or load balancer that lost the connection's state: compare captures of both ends"},
	"TCP_ACK_UNSENT_DATA": {Stage: "socket", Why: "the segment acknowledges data this host has not sent yet",
		Fix: "a middlebox rewrites sequence numbers in one direction only (a firewall's sequence randomization, say), or the ACK is spoofed: compare the sequence numbers in captures of both ends"},
	"TCP_OLD_ACK": {Stage: "socket", Why: "the ACK is older than one already received (within the window): a duplicate or reordered ACK",
		Fix: "harmless on its own; many of them point at reordering on the path"},
	"TCP_TOO_OLD_ACK": {Stage: "socket", Why: "the ACK is older than the whole send window: stale or forged (the kernel answers with a challenge ACK)",
		Fix: "a peer or middlebox with stale state (a NAT or load balancer that lost the connection) or injected segments: compare captures of both ends"},
	"TCP_RESET": {Stage: "socket", Why: "a TCP reset was received: it reset the connection, or was ignored as out of window",
		Fix: "see who sent the reset in the capture (`tcpdump -ni {iface} 'tcp port {port} and tcp[tcpflags] & tcp-rst != 0'`): a closed port or an aborting application on the peer, or a firewall injecting resets"},
	"TCP_INVALID_SYN": {Stage: "socket", Why: "an unexpected SYN on an existing connection: the kernel answers it with a challenge ACK",
		Fix: "usually a client that reopens with the same source port while this side still holds the old connection: the challenge ACK makes the client reset it; if it persists, look for lost resets or port reuse by a NAT in front of {src}"},
	"TCP_CLOSE": {Stage: "socket", Why: "the packet reached a TCP socket that is already closed",
		Fix: "the application closed the connection before the peer stopped sending"},
	"TCP_ABORT_ON_DATA": {Stage: "socket", Why: "data arrived after the application closed the socket, so the kernel aborted the connection with a reset",
		Fix: "the application closes while the peer still sends: let it read until the peer's FIN, or shut down writing first (shutdown(SHUT_WR)) and drain"},
	"TCP_FASTOPEN": {Stage: "socket", Why: "a segment failed the checks of a TCP Fast Open connection still in its handshake",
		Fix: "a Fast Open handshake failed: find the middlebox mangling the Fast Open option, or turn server-side Fast Open off (`sysctl -w net.ipv4.tcp_fastopen=1` keeps the client side only); `nstat -az TcpExtTCPFastOpenPassiveFail`"},
	"TCP_MINTTL": {Stage: "socket", Why: "the packet's TTL (hop limit) is below the minimum the socket demands (IP_MINTTL or IPV6_MINHOPCOUNT, the GTSM protection of BGP)",
		Fix: "the peer {src} is more hops away than the application allows: fix the application's minimum TTL (BGP's ttl-security hops) or the path"},
	"TCP_AUTH_HDR": {Stage: "socket", Why: "the segment carries TCP-MD5 and TCP-AO signatures together, or one of them twice or malformed",
		Fix: "the peer {src} signs its segments wrongly: configure one method (TCP-MD5 or TCP-AO) on both ends (a BGP daemon's password or AO key settings)"},
	"TCP_MD5NOTFOUND": {Stage: "socket", Why: "the socket expects a TCP-MD5 signature (RFC 2385) and the segment has none",
		Fix: "configure the same TCP-MD5 password on the peer {src} (a BGP neighbour's password, say), or remove it here"},
	"TCP_MD5UNEXPECTED": {Stage: "socket", Why: "the segment carries a TCP-MD5 signature and no key is configured here for its sender",
		Fix: "configure the TCP-MD5 password for {src} here, or remove it on the peer"},
	"TCP_MD5FAILURE": {Stage: "socket", Why: "the segment's TCP-MD5 signature is wrong",
		Fix: "set the same password on both ends; a NAT or middlebox that rewrites addresses, ports or options between here and {src} also breaks the signature"},
	"TCP_AONOTFOUND": {Stage: "socket", Why: "the socket requires TCP-AO (RFC 5925) and the segment has no AO option",
		Fix: "configure TCP-AO on the peer {src}, or stop requiring it here"},
	"TCP_AOUNEXPECTED": {Stage: "socket", Why: "the segment carries a TCP-AO option and the socket has no AO keys",
		Fix: "configure the TCP-AO keys for {src} here, or remove them on the peer"},
	"TCP_AOKEYNOTFOUND": {Stage: "socket", Why: "the segment's TCP-AO key id matches no key configured here",
		Fix: "the peer {src} uses a key id this side lacks (a key rotation half done): install the same keys and ids on both ends"},
	"TCP_AOFAILURE": {Stage: "socket", Why: "the segment's TCP-AO signature is wrong",
		Fix: "the two ends hold different key material, or a middlebox between here and {src} changed the segment: compare the keys"},

	// IPv6 neighbour discovery.
	"IPV6_NDISC_FRAG": {Stage: "socket", Why: "a fragmented neighbour discovery message, refused by suppress_frag_ndisc",
		Fix: "neighbour discovery must not be fragmented: the sender {src} is broken or malicious; `sysctl -w net.ipv6.conf.{iface}.suppress_frag_ndisc=0` would accept it (not advised)"},
	"IPV6_NDISC_HOP_LIMIT": {Stage: "socket", Why: "a neighbour discovery message whose hop limit is not 255: it was routed, so it cannot come from the local link",
		Fix: "find the router forwarding neighbour discovery, or the host {src} spoofing it"},
	"IPV6_NDISC_BAD_CODE": {Stage: "socket", Why: "a neighbour discovery message with a non-zero ICMPv6 code",
		Fix: "the sender {src} builds invalid neighbour discovery messages: fix or isolate it"},
	"IPV6_NDISC_BAD_OPTIONS": {Stage: "socket", Why: "a neighbour discovery message with malformed options",
		Fix: "the sender {src} builds invalid neighbour discovery options: fix or isolate it"},
	"IPV6_NDISC_NS_OTHERHOST": {Stage: "socket", Why: "a neighbour solicitation for an address this host does not own: normal on a shared link",
		Fix: "harmless; if this host should answer for {addr}, configure it on {iface}, or proxy it: `sysctl -w net.ipv6.conf.{iface}.proxy_ndp=1` and `ip -6 neigh add proxy {addr} dev {iface}`"},

	// Locally sent packets.
	"IP_OUTNOROUTES": {Stage: "output", Why: "no route to send the packet",
		Fix: "this host has no route for the packet's destination: add one with `ip route add` (replies to a client need a route back to it; `ip route show default` shows whether a default route exists); `ip route get {addr}` shows the lookup toward the flow's address"},
	"BPF_CGROUP_EGRESS": {Stage: "egress", Why: "a cgroup BPF egress program of the sending application's cgroup dropped the packet",
		Fix: "`bpftool cgroup tree` lists them (cgroup_skb egress); systemd's IPAddressDeny= and IPEgressFilterPath= install such programs: allow the flow there or detach the program"},
	"PSP_OUTPUT": {Stage: "egress", Why: "a packet of a PSP-protected connection could not be sent encrypted (its device cannot do PSP for it)",
		Fix: "route the flow through the PSP-capable device (`ip route get {dst}` shows {iface} or another one), or re-establish the PSP association"},

	// Neighbours.
	"NEIGH_CREATEFAIL": {Stage: "egress", Why: "no neighbour (ARP/ND) entry could be created for the next hop: the neighbour table is full or memory is short",
		Fix: "look for \"neighbour table overflow\" in `dmesg`; find what fills the table (`ip neigh show | wc -l`) or raise `net.{family}.neigh.default.gc_thresh3` (and gc_thresh2)"},
	"NEIGH_FAILED": {Stage: "egress", Why: "neighbour resolution (ARP/ND) failed",
		Fix: "the next hop does not answer ARP/ND on {iface}: check it is up and reachable (`ip neigh show dev {iface}` shows FAILED entries)"},
	"NEIGH_QUEUEFULL": {Stage: "egress", Why: "too many packets waiting for neighbour resolution",
		Fix: "the next hop does not answer ARP/ND on {iface} quickly enough (`ip neigh show dev {iface}`); raise `net.{family}.neigh.{iface}.unres_qlen_bytes` only once it does"},
	"NEIGH_DEAD": {Stage: "egress", Why: "the neighbour entry was destroyed (interface down, or the table flushed) while the packet waited on it",
		Fix: "transient while {iface} goes down or neighbours are flushed; if it repeats, find what flaps the link (`ip monitor link neigh`)"},
	"NEIGH_HH_FILLFAIL": {Stage: "egress", Why: "no room in the packet for the link-layer header of the cached neighbour entry (a kernel or driver bug, often with stacked devices)",
		Fix: "look for a warning in `dmesg` and report it with the device stack (`ip -d link show {iface}`)"},

	// Qdiscs and devices on the way out.
	"TC_EGRESS": {Stage: "egress", Why: "a tc egress filter dropped the packet",
		Fix: "inspect the egress filters on {iface} (`tc filter show dev {iface} egress`, `bpftool net show dev {iface}`){attached}"},
	"QDISC_DROP": {Stage: "egress", Why: "the queueing discipline dropped the packet (queue full or policy)",
		Fix: "check the qdisc on {iface} (`tc -s qdisc show dev {iface}`)"},
	"QDISC_OVERLIMIT": {Stage: "egress", Why: "the qdisc's queue was over its limit",
		Fix: "`tc -s qdisc show dev {iface}` shows the limit and drops: raise the qdisc's limit, or send slower than {iface} can carry"},
	"QDISC_CONGESTED": {Stage: "egress", Why: "queue management (CoDel, fq_codel, PIE, RED) dropped it to signal congestion",
		Fix: "{iface} is congested (`tc -s qdisc show dev {iface}`): enable ECN so the packet is marked instead of dropped (`sysctl -w net.ipv4.tcp_ecn=1` on the senders), or add bandwidth"},
	"CAKE_FLOOD": {Stage: "egress", Why: "CAKE's flood protection (BLUE) dropped it: a flow that ignores congestion keeps its queue full",
		Fix: "find the unresponsive flow (`tc -s qdisc show dev {iface}`) and slow it down at its source"},
	"FQ_BAND_LIMIT": {Stage: "egress", Why: "the fq qdisc's packet limit for the packet's priority band was reached",
		Fix: "`tc -s qdisc show dev {iface}`: raise fq's limit (`tc qdisc change dev {iface} <parent> fq limit <packets>`) or send less at that priority"},
	"FQ_HORIZON_LIMIT": {Stage: "egress", Why: "the fq qdisc dropped a packet whose departure time is beyond its horizon",
		Fix: "the sender sets departure times too far ahead (SO_TXTIME or EDT pacing): raise fq's horizon or cap instead of drop (`tc qdisc change dev {iface} <parent> fq horizon 10s horizon_cap`)"},
	"FQ_FLOW_LIMIT": {Stage: "egress", Why: "a single flow exceeded the fq qdisc's per-flow packet limit",
		Fix: "raise fq's flow_limit (`tc qdisc change dev {iface} <parent> fq flow_limit <packets>`) or pace the sender"},
	"DUALPI2_STEP_DROP": {Stage: "egress", Why: "the DualPI2 qdisc dropped a packet of its low-latency (L4S) queue whose delay exceeded the step threshold",
		Fix: "`tc -s qdisc show dev {iface}`: make the L4S sender ECN-capable, or raise dualpi2's step_thresh"},
	"DEV_READY": {Stage: "egress", Why: "the device is not up",
		Fix: "bring {iface} up (`ip link set {iface} up`); for veth, tun or tap the peer or the process behind it must be up too (`ip link show {iface}`)"},
	"FULL_RING": {Stage: "egress", Why: "a device ring was full: the reader of a tun, tap or veth device (or the NIC) does not keep up",
		Fix: "the process or VM behind {iface} reads too slowly: make it faster or raise the queue (`ip link set {iface} txqueuelen <packets>`); for a NIC, raise the ring (`ethtool -G {iface} rx <n>`)"},
	"SKB_CSUM": {Stage: "egress", Why: "computing the packet's checksum in software failed",
		Fix: "an offload problem: compare `ethtool -k {iface}`, try `ethtool -K {iface} tx off` to confirm, and report it with the driver's name"},
	"SKB_GSO_SEG": {Stage: "egress", Why: "cutting a large (GSO) packet into wire-sized ones failed",
		Fix: "an offload mismatch on {iface} or a tunnel: try `ethtool -K {iface} gso off tso off` to confirm, and check the MTUs along the device stack (`ip -d link show {iface}`)"},
	"SKB_BAD_GSO": {Stage: "egress", Why: "a large (GSO) packet with inconsistent headers was refused as malformed",
		Fix: "a VM, a tun/tap user or a packet socket injects malformed GSO packets: check that sender (virtio-net offloads, PACKET_VNET_HDR users)"},
	"TAP_FILTER": {Stage: "egress", Why: "the eBPF filter attached to the tun/tap device (TUNSETFILTEREBPF) dropped the packet",
		Fix: "check the filter that the VPN or VM software behind {iface} installed"},
	"TAP_TXFILTER": {Stage: "egress", Why: "the tun/tap device's address filter (TUNSETTXFILTER) does not accept the packet's destination MAC",
		Fix: "the VM or process behind {iface} filters on MAC addresses: check the destination MAC is the guest's (`ip neigh show dev {iface}`)"},
	"RECURSION_LIMIT": {Stage: "egress", Why: "the packet looped through virtual devices (a tunnel routed into itself) until the kernel's nesting limit stopped it",
		Fix: "a tunnel's outer packets route back into the tunnel: `ip route get <tunnel remote>` must not go through it; look for \"Dead loop\" or \"recursion\" in `dmesg` (device {iface})"},
	"NO_TX_TARGET": {Stage: "egress", Why: "no destination to send the packet to: a VXLAN device without a remote for the MAC, or a bridge without a port for it",
		Fix: "add a forwarding entry or a default remote (`bridge fdb append 00:00:00:00:00:00 dev <vxlan> dst <remote>`), or check the bridge ports' states (`bridge link`)"},
	"VXLAN_NO_REMOTE": {Stage: "egress", Why: "no destination to send the packet to: a VXLAN device without a remote for the MAC",
		Fix: "add a forwarding entry or a default remote (`bridge fdb append 00:00:00:00:00:00 dev <vxlan> dst <remote>`)"},
	"TUNNEL_TXINFO": {Stage: "egress", Why: "the packet reached a tunnel device in external (collect_md) mode without the metadata that says where to send it",
		Fix: "a device in external mode needs its sender (a tc/BPF program or an Open vSwitch flow) to set the tunnel key: fix that program, or route plain traffic through a regular tunnel device"},

	// Between the capture point and IP.
	"XDP": {Stage: "ingress", Why: "an XDP program dropped the packet",
		Fix: "inspect the XDP program on {iface} (`ip link show {iface}`, `bpftool net`){attached}"},
	"TC_INGRESS": {Stage: "ingress", Why: "a tc ingress filter dropped the packet",
		Fix: "inspect the ingress filters on {iface} (`tc filter show dev {iface} ingress`, `bpftool net`){attached}"},
	"TC_COOKIE_ERROR": {Stage: "ingress", Why: "tc could not match a hardware-offloaded filter's cookie back to its software action (filters changed meanwhile)",
		Fix: "check the offloaded filters and the driver (`tc -s filter show dev {iface} ingress`); it should stop once the filters are stable"},
	"TC_CHAIN_NOTFOUND": {Stage: "ingress", Why: "a tc action jumped to a chain that does not exist",
		Fix: "add the missing chain or fix the `goto chain` action (`tc filter show dev {iface} ingress` and `egress`){attached}"},
	"TC_RECLASSIFY_LOOP": {Stage: "ingress", Why: "tc filters reclassified the packet too many times: a reclassify loop",
		Fix: "fix the filter whose action is reclassify so the packet leaves the loop (`tc filter show dev {iface} ingress` and `egress`)"},
	"TC_ERROR": {Stage: "ingress", Why: "an internal tc error (kernels before 6.9 name every tc error so)",
		Fix: "check the tc filters and actions on {iface} (`tc -s filter show dev {iface} ingress` and `egress`) for a goto to a missing chain or a reclassify loop"},
	"CPU_BACKLOG": {Stage: "ingress", Why: "the per-CPU backlog is full",
		Fix: "raise `net.core.netdev_max_backlog` or spread the load (RPS); the second column of `/proc/net/softnet_stat` counts the drops per CPU"},
	"NOMEM": {Stage: "ingress", Why: "the kernel was out of memory for the packet",
		Fix: "the host is short of memory for network buffers: check `free -m`, `cat /proc/net/sockstat` and `dmesg | grep -i 'allocation failure'`; raise `vm.min_free_kbytes` if atomic allocations fail"},
	"DEV_HDR": {Stage: "ingress", Why: "the device's own header or metadata is invalid (a virtio-net header from a VM, or a tun/tap write)",
		Fix: "the VM or the program writing to {iface} sends a bad virtio-net header: check its offload settings and those of {iface} (`ethtool -k {iface}`)"},
	"SKB_UCOPY_FAULT": {Stage: "ingress", Why: "copying the packet's data from user memory failed (a bad buffer written to a tun/tap device, or zero-copy pages that could not be copied)",
		Fix: "the program writing to {iface} (a VPN or a VM monitor) passed a bad buffer, or memory ran short while copying: check that program and the host's memory"},
	"SKB_RX_HEADROOM": {Stage: "ingress", Why: "the packet reached the receive path with less room in front of its headers than the kernel needed there, and making more room failed",
		Fix: "the device or program that handed the packet to the stack on {iface} (a driver, a tunnel, a tun/tap writer, an XDP program that moved the packet's start) leaves too little headroom, and memory ran short for a copy: check `dmesg`, the driver (`ethtool -i {iface}`) and free memory, and report it with the driver's name"},
	"PACKET_SOCK_ERROR": {Stage: "ingress", Why: "a packet socket (tcpdump, a DHCP client, a capture) could not queue its copy: only that copy is lost, the flow's packet goes on",
		Fix: "not a drop of the flow: a capturing program reads too slowly; give it a bigger buffer (`tcpdump -B <KiB>`) if its copies matter"},
	"MAC_INVALID_SOURCE": {Stage: "ingress", Why: "the frame's source MAC address is invalid (multicast, broadcast or zero)",
		Fix: "a sender with a broken or spoofed MAC address: find it with `tcpdump -eni {iface}`"},
	"VXLAN_INVALID_SMAC": {Stage: "ingress", Why: "the frame's source MAC address is invalid (multicast, broadcast or zero)",
		Fix: "a sender behind the VXLAN with a broken or spoofed MAC address: find it with `tcpdump -eni {iface}`"},
	"LOCAL_MAC": {Stage: "ingress", Why: "the frame carries this device's own MAC address as its source: a loop, or a duplicate MAC",
		Fix: "a forwarding loop reflects this host's frames, or another host uses the MAC of {iface} (`ip link show {iface}`): break the loop (STP) or change the MAC"},
	"MAC_IEEE_MAC_CONTROL": {Stage: "ingress", Why: "the frame is for an IEEE MAC Control address (pause frames), which a bridge never forwards",
		Fix: "refused by design; if such frames flood, check flow control with the link partner (`ethtool -a {iface}`)"},
	"BRIDGE_INGRESS_STP_STATE": {Stage: "ingress", Why: "the bridge port's STP state (blocking, listening or disabled) does not let frames through",
		Fix: "`bridge link show dev {iface}` shows the port state: wait for STP to reach forwarding, fix the loop STP is blocking, or set it by hand (`bridge link set dev {iface} state 3`)"},
	"VXLAN_INVALID_HDR": {Stage: "ingress", Why: "the VXLAN header is invalid (reserved bits set, or the VNI flag missing)",
		Fix: "the VTEP {src} sends VXLAN extensions (GBP, GPE) this device was not created with: compare `ip -d link show type vxlan` with the sender's settings"},
	"VXLAN_VNI_NOT_FOUND": {Stage: "ingress", Why: "no VXLAN device here has the packet's VNI",
		Fix: "create the VXLAN device for that VNI or fix the sender {src}: `ip -d link show type vxlan` lists the VNIs and ports here"},
	"VXLAN_ENTRY_EXISTS": {Stage: "ingress", Why: "VXLAN learning refused to move a static forwarding entry (or one pointing to a nexthop) to the packet's source",
		Fix: "a MAC pinned by a static entry appeared behind another VTEP ({src}): fix the entry (`bridge fdb show`) or the duplicated MAC"},
	"IP_TUNNEL_ECN": {Stage: "ingress", Why: "the tunnel's outer header says congestion (CE) while the inner packet is not ECN-capable: dropped per RFC 6040",
		Fix: "the encapsulating end marks the outer header ECN-capable though the inner packet is not (a fixed tos on its tunnel), or a router sets CE on non-ECN traffic: check the sender's tunnel (`ip -d link show`) and `dmesg` for \"non-ECT\""},
	"CAN_RX_INVALID_FRAME":   {Stage: "ingress", Why: "an invalid CAN frame (bad length or flags), or a device that cannot receive CAN frames", Fix: canFix},
	"CANFD_RX_INVALID_FRAME": {Stage: "ingress", Why: "an invalid CAN FD frame (bad length or flags), or a device that cannot receive CAN FD frames", Fix: canFix},
	"CANXL_RX_INVALID_FRAME": {Stage: "ingress", Why: "an invalid CAN XL frame (bad length or flags), or a device that cannot receive CAN XL frames", Fix: canFix},
}

// Pieces that several fixes share.
const (
	// ssListen shows the sockets listening on the flow's port.
	ssListen = "`ss -l{p}np 'sport = :{port}'`"
	csumFix  = "the packet was corrupted on the way or the sender's checksum offload is broken: capture on the sender and check `ethtool -k` there (and on {iface}: `ethtool -k {iface}`)"
	canFix   = "a CAN bus carries no IP flow: check the frames' format on the sender and the device's mode (`ip -d link show {iface}`)"

	rpRouteBack = "route {src} back via {iface} (`ip route get {src}` shows where the replies go now)"
	rpLoosen    = "`sysctl -w net.ipv4.conf.{iface}.rp_filter=2`"
	addOwnAddr  = "if {addr} should be this host's, add it (`ip addr add {addr} dev {iface}`)"
)

// subsystems explain the reasons of subsystems with their own enums, whose names
// (OVS_DROP_METER) or, without BTF, subsystem and code (OPENVSWITCH:3) kdrop reports.
var subsystems = []struct {
	prefixes []string
	entry    Entry
}{
	{[]string{"OPENVSWITCH", "OVS_DROP_"}, Entry{Stage: "ingress", Why: "Open vSwitch dropped the packet: a flow's drop action, a meter, a failed action or a recursion limit",
		Fix: "`ovs-appctl ofproto/trace <bridge> <flow>` names the OpenFlow rule that drops it; `ovs-appctl dpctl/dump-flows -m | grep drop` lists the datapath's drop flows and `ovs-appctl coverage/show | grep drop` counts the reasons"}},
	{[]string{"MAC80211", "RX_DROP_"}, Entry{Stage: "ingress", Why: "the Wi-Fi stack (mac80211) discarded the frame as unusable: a decryption or integrity failure, a duplicate, or a sender that is not associated",
		Fix: "check the Wi-Fi link (`iw dev {iface} link`, `iw dev {iface} station dump`) and the kernel log for key or association errors (`journalctl -k | grep {iface}`); reconnect if the keys are out of sync"}},
	{[]string{"QDISC:", "QDISC_DROP_"}, Entry{Stage: "egress", Why: "a queueing discipline dropped the packet (its queue over limit, congestion, or a per-flow limit)",
		Fix: "`tc -s qdisc show dev {iface}` names the qdisc and its drops: raise its limits or relieve the congestion"}},
}

// stageVaries are the reasons the kernel emits at several stages: the table gives the
// most common one, and the dropping function or the stack should override it when they
// tell (as for NETFILTER_DROP).
var stageVaries = map[string]bool{
	"NETFILTER_DROP": true, "NOMEM": true, "HDR_TRUNC": true, "PKT_TOO_SMALL": true, "IP_INHDR": true,
	"XFRM_POLICY": true, "IPV6DISABLED": true, "PKT_TOO_BIG": true, "DEV_READY": true, "FULL_RING": true,
	"UNHANDLED_PROTO": true, "IPV6_BAD_EXTHDR": true, "SKB_UCOPY_FAULT": true, "DEV_HDR": true,
	"MAC_INVALID_SOURCE": true, "LOCAL_MAC": true, "NO_TX_TARGET": true, "PFMEMALLOC": true,
	"SOCKET_FILTER": true, "SECURITY_HOOK": true, "PACKET_SOCK_ERROR": true, "TAP_FILTER": true,
	"TC_COOKIE_ERROR": true, "TC_CHAIN_NOTFOUND": true, "TC_RECLASSIFY_LOOP": true, "TC_ERROR": true,
	"IP_INNOROUTES": true, "DUP_FRAG": true, "FRAG_REASM_TIMEOUT": true, "IP_TUNNEL_ECN": true,
	"CPU_BACKLOG": true, "SKB_CSUM": true, "RECURSION_LIMIT": true, "SKB_RX_HEADROOM": true,
}

// standsFor names what a drop without a reason means at functions that drop for one
// cause only: IPv6 neighbour discovery failures, for one, carry no reason on 6.18.
var standsFor = map[string]string{
	"neigh_invalidate":    "NEIGH_FAILED",
	"neigh_timer_handler": "NEIGH_FAILED",
	"ip6_pkt_drop":        "IP_INNOROUTES",
	"ip_error":            "IP_INNOROUTES",
}

// ofFunction explains drops without a reason at functions whose drops have no reason of
// their own in the kernel's enum.
var ofFunction = map[string]Entry{
	"ip_mr_input": {Stage: "multicast_rpf", Why: "multicast routing refused the packet: the multicast forwarding cache expects this source's traffic for the group on another interface (the multicast reverse-path check), or no interface takes it",
		Fix: "compare the (source, group) entry's incoming interface with {iface}, where the packet arrived: `ip mroute show`; fix the multicast routing daemon's RPF interface or the unicast route back to {src} it follows"},
}
