package nft

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Names as nft (1.0.x) prints them. A value without a name prints as a number, as nft
// does; nothing here may turn a value into a different one.

// FamilyName names a table or hook family (NFPROTO_*) as nft does.
func FamilyName(f uint8) string {
	switch f {
	case unix.NFPROTO_INET:
		return "inet"
	case unix.NFPROTO_IPV4:
		return "ip"
	case unix.NFPROTO_IPV6:
		return "ip6"
	case unix.NFPROTO_ARP:
		return "arp"
	case unix.NFPROTO_BRIDGE:
		return "bridge"
	case unix.NFPROTO_NETDEV:
		return "netdev"
	}
	return "family " + strconv.Itoa(int(f))
}

// HookName names hook number h of a base chain in a table of family f.
func HookName(f uint8, h uint32) string {
	switch f {
	case unix.NFPROTO_NETDEV:
		switch h {
		case unix.NF_NETDEV_INGRESS:
			return "ingress"
		case unix.NF_NETDEV_EGRESS:
			return "egress"
		}
	case unix.NFPROTO_ARP:
		switch h {
		case 0:
			return "input"
		case 1:
			return "output"
		case 2:
			return "forward"
		}
	default: // ip, ip6, inet, bridge share the numbering
		switch h {
		case unix.NF_INET_PRE_ROUTING:
			return "prerouting"
		case unix.NF_INET_LOCAL_IN:
			return "input"
		case unix.NF_INET_FORWARD:
			return "forward"
		case unix.NF_INET_LOCAL_OUT:
			return "output"
		case unix.NF_INET_POST_ROUTING:
			return "postrouting"
		case 5: // NF_INET_INGRESS
			return "ingress"
		}
	}
	return "hook " + strconv.Itoa(int(h))
}

var protoNames = map[uint8]string{
	1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 50: "esp", 51: "ah",
	58: "ipv6-icmp", 132: "sctp", 136: "udplite",
}

func protoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

var nfprotoNames = map[uint8]string{unix.NFPROTO_IPV4: "ipv4", unix.NFPROTO_IPV6: "ipv6"}

var icmpTypeNames = map[uint8]string{
	0: "echo-reply", 3: "destination-unreachable", 4: "source-quench", 5: "redirect",
	8: "echo-request", 9: "router-advertisement", 10: "router-solicitation",
	11: "time-exceeded", 12: "parameter-problem", 13: "timestamp-request",
	14: "timestamp-reply", 15: "info-request", 16: "info-reply",
	17: "address-mask-request", 18: "address-mask-reply",
}

var icmp6TypeNames = map[uint8]string{
	1: "destination-unreachable", 2: "packet-too-big", 3: "time-exceeded",
	4: "parameter-problem", 128: "echo-request", 129: "echo-reply",
	130: "mld-listener-query", 131: "mld-listener-report", 132: "mld-listener-done",
	133: "nd-router-solicit", 134: "nd-router-advert", 135: "nd-neighbor-solicit",
	136: "nd-neighbor-advert", 137: "nd-redirect", 138: "router-renumbering",
	141: "ind-neighbor-solicit", 142: "ind-neighbor-advert", 143: "mld2-listener-report",
}

var pkttypeNames = map[uint8]string{0: "host", 1: "broadcast", 2: "multicast", 3: "other"}

var ctDirNames = map[uint8]string{0: "original", 1: "reply"}

var etherTypeNames = map[uint16]string{
	0x0800: "ip", 0x0806: "arp", 0x86dd: "ip6", 0x8100: "8021q", 0x88a8: "8021ad",
}

// bit is one named bit of a flag type.
type bit struct {
	v    uint32
	name string
}

var tcpFlagBits = []bit{
	{0x01, "fin"}, {0x02, "syn"}, {0x04, "rst"}, {0x08, "psh"},
	{0x10, "ack"}, {0x20, "urg"}, {0x40, "ecn"}, {0x80, "cwr"},
}

var ctStateBits = []bit{
	{0x01, "invalid"}, {0x02, "established"}, {0x04, "related"}, {0x08, "new"},
	{0x40, "untracked"},
}

var ctStatusBits = []bit{
	{0x001, "expected"}, {0x002, "seen-reply"}, {0x004, "assured"}, {0x008, "confirmed"},
	{0x010, "snat"}, {0x020, "dnat"}, {0x200, "dying"},
}

// bitNames lists the names of the bits set in v, comma separated, lowest bit first, as
// nft prints flag values. ok is false when v has a bit without a name.
func bitNames(bits []bit, v uint32) (string, bool) {
	s := ""
	for _, b := range bits {
		if v&b.v != 0 {
			if s != "" {
				s += ","
			}
			s += b.name
			v &^= b.v
		}
	}
	return s, v == 0 && s != ""
}

var logLevelNames = []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit"}

var icmpCodeNames = map[uint8]string{
	0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable", 3: "port-unreachable",
	4: "frag-needed", 9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited",
}

var icmp6CodeNames = map[uint8]string{
	0: "no-route", 1: "admin-prohibited", 3: "addr-unreachable", 4: "port-unreachable",
	5: "policy-fail", 6: "reject-route",
}

var icmpxCodeNames = map[uint8]string{
	0: "no-route", 1: "port-unreachable", 2: "host-unreachable", 3: "admin-prohibited",
}

var limitUnitNames = map[uint64]string{1: "second", 60: "minute", 3600: "hour", 86400: "day", 604800: "week"}

var fibTypeNames = map[uint64]string{
	0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
	6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve",
}

var arphrdNames = map[uint64]string{
	1: "ether", 512: "ppp", 768: "ipip", 769: "ipip6", 772: "loopback", 776: "sit", 778: "ipgre",
}

var mhTypeNames = map[uint64]string{
	0: "binding-refresh-request", 1: "home-test-init", 2: "careof-test-init", 3: "home-test",
	4: "careof-test", 5: "binding-update", 6: "binding-acknowledgement", 7: "binding-error",
	8: "fast-binding-update", 9: "fast-binding-acknowledgement", 10: "fast-binding-advertisement",
	11: "experimental-mobility-header", 12: "home-agent-switch-message",
}

var dayNames = map[uint64]string{
	0: `"Sunday"`, 1: `"Monday"`, 2: `"Tuesday"`, 3: `"Wednesday"`, 4: `"Thursday"`, 5: `"Friday"`, 6: `"Saturday"`,
}

var ctEventBits = []bit{
	{0x1, "new"}, {0x2, "related"}, {0x4, "destroy"}, {0x8, "reply"}, {0x10, "assured"},
	{0x20, "protoinfo"}, {0x40, "helper"}, {0x80, "mark"}, {0x100, "seqadj"}, {0x200, "secmark"},
	{0x400, "label"},
}

var igmpTypeNames = map[uint8]string{
	0x11: "membership-query", 0x12: "membership-report-v1", 0x16: "membership-report-v2",
	0x17: "leave-group", 0x22: "membership-report-v3",
}

var arpOpNames = map[uint16]string{
	1: "request", 2: "reply", 3: "rrequest", 4: "rreply", 8: "inrequest", 9: "inreply", 10: "nak",
}
