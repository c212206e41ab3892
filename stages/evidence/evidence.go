package evidence

import (
	"net/netip"
	"time"
)

// Evidence is everything the stages recorded during one run. A stage that did not run
// leaves its field nil; a stage that ran but failed sets its Error and keeps what it got.
type Evidence struct {
	Flow Flow `json:"flow"`
	// Netns is the network namespace diagnose ran in: drops elsewhere on the host are
	// attributed to their own namespace and never count as this one's.
	Netns    Netns       `json:"netns"`
	Arrival  *Arrival    `json:"arrival,omitempty"`
	Firewall *Firewall   `json:"firewall,omitempty"`
	Kernel   *KernelDrop `json:"kernel_drop,omitempty"`
	Path     *Path       `json:"path,omitempty"`
	Host     *HostState  `json:"host_state,omitempty"`
}

// Installed is one thing a stage put into the kernel for the run, and whether it is gone:
// measured after the stages closed, not assumed.
type Installed struct {
	What    string `json:"what"`
	Removed bool   `json:"removed"`
}

// Netns identifies a network namespace by the inode of /proc/self/ns/net.
type Netns struct {
	Inode uint64 `json:"inode"`
	// Name is the name under /run/netns, when it has one.
	Name string `json:"name,omitempty"`
}

// Direction of a captured packet as the capture point saw it.
type Direction string

const (
	// In: received by this namespace (PACKET_HOST, BROADCAST, MULTICAST, OTHERHOST).
	In Direction = "in"
	// Out: sent by this namespace (PACKET_OUTGOING).
	Out Direction = "out"
)

// Packet is one captured packet of the flow.
type Packet struct {
	Time      time.Time      `json:"time"`
	Iface     string         `json:"iface"`
	Direction Direction      `json:"direction"`
	Src       netip.AddrPort `json:"src"`
	Dst       netip.AddrPort `json:"dst"`
	// Flags are TCP flags in tcpdump's letters (S, S., P., F., R.), empty for UDP.
	Flags  string `json:"flags,omitempty"`
	Length int    `json:"length"`
	// PktType is the AF_PACKET packet type (host, broadcast, multicast, otherhost, outgoing).
	PktType string `json:"pkt_type"`
	// Netns and NetnsName are the namespace of a packet captured in another namespace the
	// flow was followed into (Iface is that namespace's); empty in the one diagnosed.
	Netns     uint64 `json:"netns,omitempty"`
	NetnsName string `json:"netns_name,omitempty"`
}

// IfaceCount counts the flow's packets on one interface in one direction.
type IfaceCount struct {
	Iface     string    `json:"iface"`
	Direction Direction `json:"direction"`
	Packets   int       `json:"packets"`
	Bytes     int       `json:"bytes"`
	// Netns and NetnsName: as Packet's.
	Netns     uint64 `json:"netns,omitempty"`
	NetnsName string `json:"netns_name,omitempty"`
}

// Arrival is what the capture saw.
// The capture methods, as Arrival.Method names them.
const (
	CaptureTCX    = "tcx"              // BPF programs on tcx, on each interface
	CaptureSocket = "AF_PACKET socket" // a packet socket with a classic filter
)

type Arrival struct {
	// Ifaces are the interfaces captured on; empty means every interface ("any").
	Ifaces []string `json:"ifaces"`
	// Method is how the packets were captured: CaptureTCX or CaptureSocket; MethodNote
	// says why not tcx when it was not taken.
	Method     string `json:"method,omitempty"`
	MethodNote string `json:"method_note,omitempty"`
	// Seen counts the packets of every flow that passed the tcx capture's programs: that
	// the capture was live when it saw nothing of the flow. The packet socket's filter
	// counts nothing: 0 then.
	Seen uint64 `json:"seen,omitempty"`
	// Packets holds the first packets of the flow (at most MaxPackets); Counts covers all.
	Packets []Packet     `json:"packets"`
	Counts  []IfaceCount `json:"counts"`
	In      int          `json:"in"`
	Out     int          `json:"out"`
	// Toward counts the packets of In addressed to an endpoint of the flow (the user's, or
	// one it grew by): those on their way to the service, without the answers that come
	// back in from a namespace behind this host once the flow follows a translation there.
	Toward int `json:"toward"`
	// SocketDrops are packets of the flow the capture lost: the packet socket's ring or the
	// tcx programs' ring buffer was full.
	SocketDrops uint64 `json:"socket_drops"`
	PcapPath    string `json:"pcap_path,omitempty"`
	Error       string `json:"error,omitempty"`
}

// MaxPackets bounds Arrival.Packets so a flood cannot grow the report without limit.
const MaxPackets = 64

// Firewall is the nftables trace of the flow.
type Firewall struct {
	// Table is the temporary trace table, e.g. "inet packetmortem_1234".
	Table     string `json:"table"`
	Installed bool   `json:"installed"`
	Removed   bool   `json:"removed"`
	// Traces are the traced packets in arrival order; one per packet and hook.
	Traces []Trace `json:"traces"`
	// Lost counts trace messages lost to a full netlink socket (ENOBUFS): each overflow
	// counts once, so it is a lower bound.
	Lost uint64 `json:"lost"`
	// Omitted counts trace events of the flow not kept because the trace reached its
	// size limit (a flood); the traces kept are the first ones.
	Omitted uint64 `json:"omitted,omitempty"`
	// Skipped says why no trace table was installed: with no nftables chain in the
	// namespace nothing there can drop a packet, and tracing would only cost every packet.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`

	// Netns and NetnsName are the namespace of a trace in Elsewhere; empty for the one
	// diagnosed.
	Netns     uint64 `json:"netns,omitempty"`
	NetnsName string `json:"netns_name,omitempty"`
	// Followed is the endpoint of the flow that led there (an address of that namespace),
	// and Since when its trace began: a packet that went there before (often the one whose
	// translation taught the endpoint) was not traced there.
	Followed string    `json:"followed,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// Elsewhere are the traces of the other namespaces of this host the flow went on to,
	// in the order it was followed there.
	Elsewhere []Firewall `json:"elsewhere,omitempty"`
	// Legacy is what iptables-legacy holds in the namespace: the nftables trace cannot see
	// it. Nil when it has no table there.
	Legacy *Legacy `json:"legacy,omitempty"`
}

// Legacy is the namespace's iptables-legacy (x_tables) firewall, read from the kernel
// before and after the run: its rules are not traced, so a rule that dropped the flow is
// found by its counters.
type Legacy struct {
	// Tables are its tables, "ip filter", "ip6 nat", ...
	Tables []string `json:"tables"`
	// Rules counts their rules; Policies their built-in chains whose policy is not ACCEPT.
	Rules    int `json:"rules"`
	Policies int `json:"policies"`
	// Grown are the rules and chain policies that could have dropped the flow's packets
	// (DROP, REJECT, a DROP policy, reached from a hook by rules that can match them)
	// whose packet counters grew during the run.
	Grown []LegacyRule `json:"grown,omitempty"`
	// AlsoNftables says the namespace has nftables rules too (iptables-nft's or nft's,
	// diagnose's own left out): two firewalls, each blind to the other's tools.
	AlsoNftables bool   `json:"also_nftables,omitempty"`
	Error        string `json:"error,omitempty"`
}

// LegacyRule is a rule or a chain policy of iptables-legacy that counted packets during
// the run.
type LegacyRule struct {
	// Step is the rule (Type "rule", with Number and Rule) or the policy, as a trace would
	// have named it; its Backend is "legacy".
	Step TraceStep `json:"step"`
	// Hooks are the netfilter hooks whose built-in chain reaches it (prerouting, input,
	// forward, output, postrouting), directly or by jumps.
	Hooks []string `json:"hooks"`
	// Packets is how many more packets it counted during the run.
	Packets uint64 `json:"packets"`
	// MatchesFlow says its addresses, interfaces and protocol can match the flow's
	// packets (its other matches are not judged).
	MatchesFlow bool `json:"matches_flow"`
}

// Other is the trace of namespace netns, another than the one diagnosed; nil when it was
// not traced.
func (f *Firewall) Other(netns uint64) *Firewall {
	if f == nil {
		return nil
	}
	for i := range f.Elsewhere {
		if f.Elsewhere[i].Netns == netns {
			return &f.Elsewhere[i]
		}
	}
	return nil
}

// Trace is one packet's walk through the netfilter hooks of one family and hook.
type Trace struct {
	ID uint32 `json:"id"`
	// Family is the family of the hook the packet passed: ip or ip6 (inet tables hook
	// there too), bridge, netdev, arp. Steps carry their table's family (inet, ...).
	Family string `json:"family"`
	Hook   string `json:"hook"` // prerouting, input, forward, output, postrouting
	Iif    string `json:"iif,omitempty"`
	Oif    string `json:"oif,omitempty"`
	// Src and Dst are decoded from the traced network and transport headers when present.
	Src netip.AddrPort `json:"src,omitempty"`
	Dst netip.AddrPort `json:"dst,omitempty"`
	// Steps are the rules and policies the packet met, in order, outside diagnose's own table.
	Steps []TraceStep `json:"steps"`
	// Verdict is the final verdict on this hook: accept, drop, queue, stolen, or empty when
	// the trace ended without one.
	Verdict string `json:"verdict"`
	// DroppedBy is the step that dropped the packet, when Verdict is drop.
	DroppedBy *TraceStep `json:"dropped_by,omitempty"`
}

// TraceStep is one trace event: a rule that matched, a return, or a chain policy.
type TraceStep struct {
	Type   string `json:"type"` // rule, return, policy
	Family string `json:"family"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	Handle uint64 `json:"handle,omitempty"`
	// Rule is the rule as the tool that wrote it prints it: in nft syntax, as `nft -a list
	// ruleset` would, or for a rule of iptables (either backend) as iptables-save prints
	// its line ("-A INPUT -p tcp -m tcp --dport 8443 -j DROP"); likewise for ebtables-nft
	// and arptables-nft, whose user-defined chain's policy rule is the "-P CHAIN POLICY"
	// that set it.
	Rule string `json:"rule,omitempty"`
	// Syntax names Rule's language: "nft", "iptables", "ip6tables", "ebtables" or
	// "arptables"; empty when there is no rule text.
	Syntax string `json:"syntax,omitempty"`
	// Nft is the rule in nft syntax when Rule is in iptables' (a rule of iptables-nft).
	Nft string `json:"nft,omitempty"`
	// Backend is "legacy" for a rule of iptables-legacy (x_tables): it has no handle, and
	// was found by its counters, not traced.
	Backend string `json:"backend,omitempty"`
	// Partial says what of Rule is shown by name only (an iptables extension whose
	// options were not decoded): the text then does not say all the rule does.
	Partial []string `json:"partial,omitempty"`
	// Number is the rule's place in its chain, from 1, as iptables numbers rules.
	Number int `json:"number,omitempty"`
	// Reject says what the rule answered the packet it dropped with (RejectTCPReset,
	// RejectICMP), when it rejects: the client then sees what a closed port gives.
	Reject  string `json:"reject,omitempty"`
	Verdict string `json:"verdict"` // continue, accept, drop, jump X, goto X, return
}

// What a rejecting rule answers with (TraceStep.Reject).
const (
	RejectTCPReset = "tcp reset"
	RejectICMP     = "icmp error"
)

// KernelDrop is what the kfree_skb program recorded.
type KernelDrop struct {
	// Attach says how the program is attached: "tp_btf/kfree_skb" or "tracepoint/skb/kfree_skb".
	Attach string `json:"attach"`
	Drops  []Drop `json:"drops"`
	// Seen is how many kfree_skb events the program saw in total, Matched how many belonged
	// to the flow; Lost how many matched events the ring buffer could not take.
	Seen    uint64 `json:"seen"`
	Matched uint64 `json:"matched"`
	Lost    uint64 `json:"lost"`
	// ReasonsFromBTF is false when the kernel has no skb_drop_reason enum in BTF.
	ReasonsFromBTF bool `json:"reasons_from_btf"`
	// Translations are the changes of the flow connection's addresses or ports the programs
	// learned from conntrack, in the order learned.
	Translations []Translation `json:"translations,omitempty"`
	Notes        []string      `json:"notes,omitempty"`
	Error        string        `json:"error,omitempty"`
}

// Translation is a change of the flow connection's addresses or ports on this host (DNAT,
// SNAT, masquerade, redirect), read from its conntrack entry while a packet still carried
// it: Orig is the connection as its first packet came, Reply as the answers go back.
type Translation struct {
	Proto Proto `json:"proto"`
	Orig  Tuple `json:"orig"`
	Reply Tuple `json:"reply"`
	// Kind is DNAT (the destination changed), SNAT (the source) or DNAT+SNAT.
	Kind string `json:"kind"`
	// Netns is the namespace of the packet that showed it.
	Netns     uint64 `json:"netns"`
	NetnsName string `json:"netns_name,omitempty"`
	// Learned are the ends the flow grew by from it.
	Learned []netip.AddrPort `json:"learned"`
	// Out is the device the translated packet was leaving Netns by, when that is where it
	// showed the translation (not a drop): what links this namespace to the next.
	Out string `json:"out,omitempty"`
}

// From is the end the translation replaced: the destination the client asked for, or for
// an SNAT the source it came from.
func (t *Translation) From() netip.AddrPort {
	if t.Kind == "SNAT" {
		return t.Orig.Src
	}
	return t.Orig.Dst
}

// To is the end the translation put in its place: a DNAT's backend, an SNAT's address.
func (t *Translation) To() netip.AddrPort {
	if t.Kind == "SNAT" {
		return t.Reply.Dst
	}
	return t.Reply.Src
}

// Carries says whether a packet from src to dst, as it looks once translated, is of the
// translated connection, in either direction: the reply tuple says both of its ends, the
// client's port included. An end alone would not do: another connection to the same
// backend address (a second client, a container of the same address in another
// namespace) would pass for the flow's.
func (t *Translation) Carries(src, dst netip.AddrPort) bool {
	return src == t.Reply.Dst && dst == t.Reply.Src || src == t.Reply.Src && dst == t.Reply.Dst
}

// Tuple is one direction of a connection.
type Tuple struct {
	Src netip.AddrPort `json:"src"`
	Dst netip.AddrPort `json:"dst"`
}

// Drop is one kfree_skb of a flow packet.
type Drop struct {
	Time time.Time `json:"time"`
	// Reason is the drop reason without its SKB_DROP_REASON_ prefix (NO_SOCKET); for a
	// subsystem reason with no name in BTF, "SUBSYS:code".
	Reason     string `json:"reason"`
	ReasonCode uint32 `json:"reason_code"`
	// Location is the dropping call site, symbolized (tcp_v4_rcv+0x91); Function is its symbol.
	Location string `json:"location"`
	Function string `json:"function"`
	// Netns is the namespace of the skb's device (or socket); Elsewhere is true when it is
	// not the namespace diagnose runs in.
	Netns     uint64         `json:"netns"`
	NetnsName string         `json:"netns_name,omitempty"`
	Elsewhere bool           `json:"elsewhere"`
	Ifindex   int            `json:"ifindex,omitempty"`
	Iface     string         `json:"iface,omitempty"`
	Src       netip.AddrPort `json:"src"`
	Dst       netip.AddrPort `json:"dst"`
	// Published are the ports the Docker container that holds Netns publishes on the host,
	// as `docker ps` shows them ("8080->80/tcp", "127.0.0.1:9090->80/udp"): the way users
	// reach the port the packet was dropped at.
	Published []string `json:"published,omitempty"`
	// Flags are TCP flags as in Packet.Flags.
	Flags string `json:"flags,omitempty"`
	// ByConntrack says the packet was the flow's by its conntrack entry, its headers having
	// been translated (Src and Dst are what the headers said).
	ByConntrack bool `json:"by_conntrack,omitempty"`
	// Stack is the kernel stack, innermost first, tracing frames removed.
	Stack []string `json:"stack"`
}

// Path is how far the flow's packets got, from tracepoints along the kernel path
// (net:netif_receive_skb, fib:fib_table_lookup, sock:*, tcp:tcp_send_reset, icmp:icmp_send,
// skb:skb_copy_datagram_iovec). kfree_skb is in KernelDrop.
type Path struct {
	// Attached lists the tracepoints in use; Missing those this kernel lacks, with why.
	Attached []string       `json:"attached"`
	Missing  []MissingPoint `json:"missing,omitempty"`
	// Events are the first events of the flow (bounded, like Drops); Counts counts all,
	// per point and namespace.
	Events []PathEvent  `json:"events"`
	Counts []PointCount `json:"counts"`
	Lost   uint64       `json:"lost"`
	Notes  []string     `json:"notes,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// MissingPoint is a tracepoint the path stage could not use.
type MissingPoint struct {
	Point string `json:"point"`
	Why   string `json:"why"`
}

// Path points: where along the path an event was seen.
const (
	PointReceive   = "netif_receive_skb"       // the packet reached the stack (after XDP, before tc ingress)
	PointRoute     = "fib_table_lookup"        // a route lookup for the flow, with its result
	PointSockState = "inet_sock_set_state"     // a socket of the flow changed TCP state
	PointDataReady = "sk_data_ready"           // a socket of the flow was woken with data
	PointCopied    = "skb_copy_datagram_iovec" // the application read the packet
	PointReset     = "tcp_send_reset"          // this host answered with a TCP reset
	PointICMP      = "icmp_send"               // this host answered with an ICMP error
)

// PathEvent is one tracepoint hit of the flow.
type PathEvent struct {
	Time      time.Time      `json:"time"`
	Point     string         `json:"point"`
	Netns     uint64         `json:"netns"`
	Elsewhere bool           `json:"elsewhere"`
	Iface     string         `json:"iface,omitempty"`
	Src       netip.AddrPort `json:"src"`
	Dst       netip.AddrPort `json:"dst"`
	Flags     string         `json:"flags,omitempty"`
	// Route lookups: the table, the result's output interface and gateway, and the error
	// (0, or a negative errno such as -101 ENETUNREACH); Iif is the input interface of
	// the lookup for received packets.
	Table   uint32 `json:"table,omitempty"`
	Iif     string `json:"iif,omitempty"`
	Oif     string `json:"oif,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	Err     int    `json:"err,omitempty"`
	// Socket state changes: TCP states by name (SYN_RECV, ESTABLISHED, CLOSE, ...).
	OldState string `json:"old_state,omitempty"`
	NewState string `json:"new_state,omitempty"`
	// ICMP errors sent: type and code.
	ICMPType int `json:"icmp_type,omitempty"`
	ICMPCode int `json:"icmp_code,omitempty"`
	// Length is the bytes read for skb_copy_datagram_iovec.
	Length int `json:"length,omitempty"`
}

// PointCount counts the flow's events at one point in one namespace.
type PointCount struct {
	Point     string `json:"point"`
	Netns     uint64 `json:"netns"`
	Elsewhere bool   `json:"elsewhere"`
	Events    int    `json:"events"`
	// NetnsName names a namespace elsewhere as the report does (a container, a process).
	NetnsName string `json:"netns_name,omitempty"`
}

// HostState is the host's own configuration and counters that bear on a verdict, read
// with netlink and /proc in the diagnosed namespace, before and after the capture.
type HostState struct {
	// Sysctls are the relevant settings by full name: net.ipv4.conf.veth0.rp_filter, ...
	Sysctls map[string]string `json:"sysctls"`
	// Routes are route lookups for the flow: to the flow's address and back to each peer
	// seen in the capture, as `ip route get` would do them.
	Routes []RouteLookup `json:"routes"`
	// Listeners are the sockets bound to the flow's port (sock_diag), any address.
	Listeners []Listener `json:"listeners"`
	// Programs are tc and XDP programs attached to interfaces of the namespace.
	Programs []AttachedProgram `json:"programs"`
	// Counters are the SNMP and netstat counters that moved during the run (nstat-style).
	Counters []Counter `json:"counters"`
	// Interfaces are the interfaces whose drop or error counters moved during the run.
	Interfaces []InterfaceDrops `json:"interfaces"`
	// SoftnetDropped is the increase of softnet_stat's dropped column over the run.
	SoftnetDropped uint64 `json:"softnet_dropped"`
	// Conntrack holds the connection tracking table's count and max, when loaded.
	Conntrack *Conntrack `json:"conntrack,omitempty"`
	// ConntrackLog are the kernel log's lines, written during the run, in which conntrack
	// says why a packet of the flow was invalid ("nf_ct_tcp: invalid tcp flag combination
	// IN=... SRC=..."): only when net.netfilter.nf_conntrack_log_invalid asks for them.
	ConntrackLog []string `json:"conntrack_log,omitempty"`
	Errors       []string `json:"errors,omitempty"`
}

// RouteLookup is one route lookup and its result.
type RouteLookup struct {
	// Query is the lookup as an `ip route get` command line: "198.51.100.1 from 198.51.100.2 iif veth0".
	Query string `json:"query"`
	Dst   string `json:"dst"`
	Src   string `json:"src,omitempty"`
	Iif   string `json:"iif,omitempty"`
	// Result: the route type (unicast, local, unreachable, prohibit, blackhole, ...),
	// the output interface and gateway, the table; Err is the lookup's error text.
	Type    string `json:"type,omitempty"`
	Oif     string `json:"oif,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	Table   uint32 `json:"table,omitempty"`
	Err     string `json:"err,omitempty"`
}

// Listener is a socket bound to the flow's port.
type Listener struct {
	Proto string         `json:"proto"`
	Local netip.AddrPort `json:"local"`
	State string         `json:"state"`
	// V6Only is set for IPv6 sockets that refuse IPv4-mapped traffic.
	V6Only bool `json:"v6only,omitempty"`
	// BoundIface is SO_BINDTODEVICE's interface, if any.
	BoundIface string `json:"bound_iface,omitempty"`
}

// AttachedProgram is a BPF program on a packet hook of an interface.
type AttachedProgram struct {
	Iface string `json:"iface"`
	// Hook: xdp, tc ingress, tc egress, tcx ingress, tcx egress.
	Hook string `json:"hook"`
	Name string `json:"name"`
	ID   uint32 `json:"id"`
}

// Counter is one counter's move over the run: "IpExt InNoRoutes", "Udp NoPorts".
type Counter struct {
	Name   string `json:"name"`
	Before uint64 `json:"before"`
	After  uint64 `json:"after"`
	Delta  uint64 `json:"delta"`
}

// InterfaceDrops is one interface's drop and error counters' increase over the run.
type InterfaceDrops struct {
	Iface       string `json:"iface"`
	RxDropped   uint64 `json:"rx_dropped"`
	TxDropped   uint64 `json:"tx_dropped"`
	RxErrors    uint64 `json:"rx_errors"`
	TxErrors    uint64 `json:"tx_errors"`
	RxMissed    uint64 `json:"rx_missed,omitempty"`
	RxNoHandler uint64 `json:"rx_nohandler,omitempty"`
}

// Conntrack is the connection tracking table's fill.
type Conntrack struct {
	Count uint64 `json:"count"`
	Max   uint64 `json:"max"`
}
