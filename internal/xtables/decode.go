package xtables

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// The info structs that more than one renderer reads (iptables-save's text here, nft's
// translation in internal/nft), decoded into typed values. Each decoder takes the
// revision iptables 1.8.9 writes and fails with ErrShort or ErrUnknown otherwise.

// infoOf returns e's info when e is extension name of revision rev and its info holds
// size bytes.
func infoOf(e Ext, name string, rev uint8, size int) (info, error) {
	if e.Name != name || e.Rev != rev {
		return nil, ErrUnknown
	}
	d := info(e.Data)
	return d, d.check(size)
}

// Addrtype is xt_addrtype_info_v1 (addrtype revision 1): masks of route types, bit
// 1<<RTN_* (RTN_UNSPEC is bit 0).
type Addrtype struct {
	Src, Dst uint16
	Flags    uint32
}

// Addrtype flags (XT_ADDRTYPE_*).
const (
	AddrtypeInvertSource  = 0x1
	AddrtypeInvertDest    = 0x2
	AddrtypeLimitIfaceIn  = 0x4
	AddrtypeLimitIfaceOut = 0x8
)

// DecodeAddrtype decodes addrtype revision 1.
func DecodeAddrtype(e Ext) (Addrtype, error) {
	d, err := infoOf(e, "addrtype", 1, 8)
	if err != nil {
		return Addrtype{}, err
	}
	return Addrtype{Src: d.u16(0), Dst: d.u16(2), Flags: d.u32(4)}, nil
}

// Conntrack is xt_conntrack_mtinfo1/2/3 (conntrack revisions 1 to 3; -m state is
// revision 3 with ConntrackStateAlias), ports in host order. Revisions 1 and 2 have one
// port per direction: the high port equals the low one.
type Conntrack struct {
	OrigSrc, OrigSrcMask, OrigDst, OrigDstMask netip.Addr
	ReplSrc, ReplSrcMask, ReplDst, ReplDstMask netip.Addr
	ExpiresMin, ExpiresMax                     uint32
	L4Proto                                    uint16
	// Ports: original source, original destination, reply source, reply destination;
	// each [low, high].
	Ports                   [4][2]uint16
	MatchFlags, InvertFlags uint16
	StateMask, StatusMask   uint16
}

// Conntrack match flags (XT_CONNTRACK_*).
const (
	ConntrackState       = 1 << 0
	ConntrackProto       = 1 << 1
	ConntrackOrigSrc     = 1 << 2
	ConntrackOrigDst     = 1 << 3
	ConntrackReplSrc     = 1 << 4
	ConntrackReplDst     = 1 << 5
	ConntrackStatus      = 1 << 6
	ConntrackExpires     = 1 << 7
	ConntrackOrigSrcPort = 1 << 8
	ConntrackOrigDstPort = 1 << 9
	ConntrackReplSrcPort = 1 << 10
	ConntrackReplDstPort = 1 << 11
	ConntrackDirection   = 1 << 12
	ConntrackStateAlias  = 1 << 13
)

// Conntrack state bits (XT_CONNTRACK_STATE_BIT(ctinfo) and the special ones).
const (
	CtStateInvalid     = 1 << 0
	CtStateEstablished = 1 << 1
	CtStateRelated     = 1 << 2
	CtStateNew         = 1 << 3
	CtStateSNAT        = 1 << 6
	CtStateDNAT        = 1 << 7
	CtStateUntracked   = 1 << 8
)

// DecodeConntrack decodes conntrack revisions 1, 2 and 3 for family.
func DecodeConntrack(e Ext, family uint8) (Conntrack, error) {
	d := info(e.Data)
	if e.Name != "conntrack" || e.Rev < 1 || e.Rev > 3 {
		return Conntrack{}, ErrUnknown
	}
	size := map[uint8]int{1: 152, 2: 154, 3: 162}[e.Rev]
	if err := d.check(size); err != nil {
		return Conntrack{}, err
	}
	var c Conntrack
	addrs := []*netip.Addr{&c.OrigSrc, &c.OrigSrcMask, &c.OrigDst, &c.OrigDstMask, &c.ReplSrc, &c.ReplSrcMask, &c.ReplDst, &c.ReplDstMask}
	for i, a := range addrs {
		*a = d.inetAddr(16*i, family)
	}
	c.ExpiresMin, c.ExpiresMax = d.u32(128), d.u32(132)
	c.L4Proto = d.u16(136)
	for i := range c.Ports {
		if e.Rev == 3 {
			c.Ports[i] = [2]uint16{d.u16(138 + 2*i), d.u16(154 + 2*i)}
		} else {
			p := d.be16(138 + 2*i)
			c.Ports[i] = [2]uint16{p, p}
		}
	}
	c.MatchFlags, c.InvertFlags = d.u16(146), d.u16(148)
	if e.Rev == 1 {
		c.StateMask, c.StatusMask = uint16(d.u8(150)), uint16(d.u8(151))
	} else {
		c.StateMask, c.StatusMask = d.u16(150), d.u16(152)
	}
	return c, nil
}

// Multiport is xt_multiport_v1 (multiport revision 1): Ports are single ports or, where
// Range[i] is set, the range from Ports[i] to Ports[i+1].
type Multiport struct {
	Flags  uint8 // MultiportSource, MultiportDest or MultiportEither
	Ports  []uint16
	Range  []bool
	Invert bool
}

// Multiport directions (enum xt_multiport_flags).
const (
	MultiportSource = 0
	MultiportDest   = 1
	MultiportEither = 2
)

// DecodeMultiport decodes multiport revision 1.
func DecodeMultiport(e Ext) (Multiport, error) {
	d, err := infoOf(e, "multiport", 1, 48)
	if err != nil {
		return Multiport{}, err
	}
	n := int(d.u8(1))
	if n > 15 {
		return Multiport{}, ErrUnknown
	}
	m := Multiport{Flags: d.u8(0), Invert: d.u8(47) != 0}
	for i := 0; i < n; i++ {
		m.Ports = append(m.Ports, d.u16(2+2*i))
		m.Range = append(m.Range, d.u8(32+i) != 0)
	}
	return m, nil
}

// NATRange is a NAT target's range, from nf_nat_range2 (DNAT, SNAT revision 2),
// nf_nat_range (revision 1; ip6 MASQUERADE and REDIRECT revision 0) or
// nf_nat_ipv4_multi_range_compat (ip SNAT, DNAT, MASQUERADE, REDIRECT revision 0).
// Ports in host order.
type NATRange struct {
	Flags            uint32
	MinAddr, MaxAddr netip.Addr
	MinPort, MaxPort uint16
	BasePort         uint16
}

// NAT range flags (NF_NAT_RANGE_*).
const (
	NATMapIPs         = 1 << 0
	NATProtoSpecified = 1 << 1
	NATProtoRandom    = 1 << 2
	NATPersistent     = 1 << 3
	NATRandomFully    = 1 << 4
	NATProtoOffset    = 1 << 5
	NATNetmap         = 1 << 6
)

// DecodeNATRange decodes the range of SNAT, DNAT, MASQUERADE and REDIRECT in the
// revisions iptables 1.8.9 writes for family.
func DecodeNATRange(e Ext, family uint8) (NATRange, error) {
	d := info(e.Data)
	switch e.Name {
	case "SNAT", "DNAT", "MASQUERADE", "REDIRECT":
	default:
		return NATRange{}, ErrUnknown
	}
	switch {
	case e.Rev == 0 && family == unix.NFPROTO_IPV4:
		if err := d.check(20); err != nil {
			return NATRange{}, err
		}
		if d.u32(0) != 1 {
			return NATRange{}, ErrUnknown
		}
		return NATRange{Flags: d.u32(4), MinAddr: d.addr4(8), MaxAddr: d.addr4(12), MinPort: d.be16(16), MaxPort: d.be16(18)}, nil
	case e.Rev == 1 || e.Rev == 2 || (e.Rev == 0 && family == unix.NFPROTO_IPV6 && (e.Name == "MASQUERADE" || e.Name == "REDIRECT")):
		size := 40
		if e.Rev == 2 {
			size = 42
		}
		if err := d.check(size); err != nil {
			return NATRange{}, err
		}
		r := NATRange{Flags: d.u32(0), MinAddr: d.inetAddr(4, family), MaxAddr: d.inetAddr(20, family), MinPort: d.be16(36), MaxPort: d.be16(38)}
		if e.Rev == 2 {
			r.BasePort = d.be16(40)
		}
		return r, nil
	}
	return NATRange{}, ErrUnknown
}

// DecodeReject returns REJECT's reject-with value (enum ipt_reject_with or
// ip6t_reject_with by family).
func DecodeReject(e Ext) (uint32, error) {
	d, err := infoOf(e, "REJECT", 0, 4)
	if err != nil {
		return 0, err
	}
	return d.u32(0), nil
}

// RejectsWithReset says whether a REJECT target answers with a TCP reset, rather than an
// ICMP error: the client reports the reset as "connection refused".
func RejectsWithReset(family uint8, e Ext) bool {
	w, err := DecodeReject(e)
	if err != nil {
		return false
	}
	names := rejectNames4
	if family == unix.NFPROTO_IPV6 {
		names = rejectNames6
	}
	return int(w) < len(names) && names[w] == "tcp-reset"
}

// Log is xt_log_info (LOG revision 0).
type Log struct {
	Level, Flags uint8
	Prefix       string
}

// LOG flags (XT_LOG_*).
const (
	LogTCPSeq    = 0x01
	LogTCPOpt    = 0x02
	LogIPOpt     = 0x04
	LogUID       = 0x08
	LogMACDecode = 0x20
)

// DecodeLog decodes LOG revision 0.
func DecodeLog(e Ext) (Log, error) {
	d, err := infoOf(e, "LOG", 0, 32)
	if err != nil {
		return Log{}, err
	}
	return Log{Level: d.u8(0), Flags: d.u8(1), Prefix: d.str(2, 30)}, nil
}

// DecodeMarkTarget decodes MARK revision 2 (xt_mark_tginfo2): the mark becomes
// (mark & ^mask) ^ value.
func DecodeMarkTarget(e Ext) (value, mask uint32, err error) {
	d, err := infoOf(e, "MARK", 2, 8)
	if err != nil {
		return 0, 0, err
	}
	return d.u32(0), d.u32(4), nil
}

// ICMP is ipt_icmp or ip6t_icmp (icmp, icmp6 revision 0).
type ICMP struct {
	Type             uint8
	CodeMin, CodeMax uint8
	Invert           bool
}

// DecodeICMP decodes icmp and icmp6 revision 0.
func DecodeICMP(e Ext) (ICMP, error) {
	name := "icmp"
	if e.Name == "icmp6" {
		name = e.Name
	}
	d, err := infoOf(e, name, 0, 4)
	if err != nil {
		return ICMP{}, err
	}
	if d.u8(3)&^1 != 0 {
		return ICMP{}, ErrUnknown
	}
	return ICMP{Type: d.u8(0), CodeMin: d.u8(1), CodeMax: d.u8(2), Invert: d.u8(3) != 0}, nil
}

// DecodePkttype decodes pkttype revision 0 (xt_pkttype_info): a PACKET_* type.
func DecodePkttype(e Ext) (pkttype uint32, invert bool, err error) {
	d, err := infoOf(e, "pkttype", 0, 8)
	if err != nil {
		return 0, false, err
	}
	return d.u32(0), d.u32(4) != 0, nil
}
