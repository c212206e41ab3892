package nft

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/xtables"
)

// xtables extensions, the "match" and "target" expressions iptables-nft writes for what it
// cannot express natively: Docker's addrtype, conntrack state, comment, DNAT and
// MASQUERADE; multiport, icmp, icmp6, pkttype, SNAT, REDIRECT, REJECT, LOG and MARK.
// nft prints them through libxtables' translation to nft syntax; this file renders the
// same text from the extension's struct as package xtables decodes it (the one decoder,
// which also prints iptables-save's text of it), only for the revisions
// iptables-nft 1.8.9 writes and only where nft 1.0.6's text says all the struct says:
// where its translation drops a condition (addrtype with both a source and a destination
// type, conntrack's snat/dnat states) or has none, the rule falls back to Undecoded.

// decodeXt keeps an extension's info as the kernel returns it (xt.Unknown): the renderer
// reads the struct itself, so what it decodes does not depend on google/nftables' typed
// infos, which cover only some extensions.
func decodeXt(name string, data []byte) (xtName string, e expr.Any) {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return "", nil
	}
	ad.ByteOrder = binary.BigEndian
	var rev uint32
	var info []byte
	hasRev, hasInfo := false, false
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_MATCH_NAME: // == NFTA_TARGET_NAME
			xtName = strings.TrimRight(ad.String(), "\x00")
		case unix.NFTA_MATCH_REV:
			rev, hasRev = ad.Uint32(), true
		case unix.NFTA_MATCH_INFO:
			info, hasInfo = ad.Bytes(), true
		default:
			return xtName, nil
		}
	}
	if ad.Err() != nil || xtName == "" || !hasRev || !hasInfo {
		return xtName, nil
	}
	u := xt.Unknown(info)
	if name == "match" {
		return xtName, &expr.Match{Name: xtName, Rev: rev, Info: &u}
	}
	return xtName, &expr.Target{Name: xtName, Rev: rev, Info: &u}
}

// xtExt is the extension as package xtables models it; only infos kept as the kernel
// returned them (decodeXt) are decoded.
func xtExt(name string, rev uint32, i xt.InfoAny) xtables.Ext {
	e := xtables.Ext{Name: name, Rev: uint8(rev)}
	if u, ok := i.(*xt.Unknown); ok && rev <= 0xff {
		e.Data = *u
	}
	return e
}

// emptyStmt stands for a statement nft prints as nothing (the comment match): unlike a
// hidden dependency it still takes its place between the separating spaces.
const emptyStmt = "\x00"

func (r *renderer) xtMatch(e *expr.Match) error {
	if r.env.Family != unix.NFPROTO_IPV4 && r.env.Family != unix.NFPROTO_IPV6 {
		return errUnsupported
	}
	x := xtExt(e.Name, e.Rev, e.Info)
	var s string
	var err error
	switch {
	case e.Name == "comment" && e.Rev == 0:
		r.emit(emptyStmt)
		return nil
	case e.Name == "addrtype":
		s, err = addrtypeText(x)
	case e.Name == "conntrack" && e.Rev == 3:
		s, err = conntrackText(x, r.env.Family)
	case e.Name == "multiport":
		s, err = multiportText(x, r.l4)
	case e.Name == "icmp" && r.env.Family == unix.NFPROTO_IPV4:
		s, err = icmpText("icmp", icmpTypeNames, x)
	case e.Name == "icmp6" && r.env.Family == unix.NFPROTO_IPV6:
		s, err = icmpText("icmpv6", icmp6TypeNames, x)
	case e.Name == "pkttype":
		s, err = pkttypeText(x)
	default:
		return errUnsupported
	}
	return r.emitText(s, err)
}

func (r *renderer) xtTarget(e *expr.Target) error {
	if r.env.Family != unix.NFPROTO_IPV4 && r.env.Family != unix.NFPROTO_IPV6 {
		return errUnsupported
	}
	x := xtExt(e.Name, e.Rev, e.Info)
	var s string
	var err error
	switch {
	case r.env.Family == unix.NFPROTO_IPV4 && ((e.Name == "DNAT" && e.Rev == 2) || (e.Rev == 0 && (e.Name == "SNAT" || e.Name == "MASQUERADE" || e.Name == "REDIRECT"))):
		s, err = natText(x)
	case e.Name == "REJECT":
		s, err = rejectText(r.env.Family, x)
	case e.Name == "LOG":
		return r.xtLog(x)
	case e.Name == "MARK":
		s, err = markText(x)
	default:
		// ip6 NAT targets too: nft 1.0.6 does not find their translation and prints
		// nothing, so there is no text to agree with.
		return errUnsupported
	}
	return r.emitText(s, err)
}

// emitText emits an extension's text, or fails with the error that came instead.
func (r *renderer) emitText(s string, err error) error {
	if err != nil {
		return err
	}
	r.emit(s)
	return nil
}

// addrtypeNames are the route types by bit (1 << RTN_*) that nft's translation names;
// throw, nat and xresolve it leaves out of the set, so a mask with them is not decoded.
var addrtypeNames = []string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit"}

func addrtypeText(x xtables.Ext) (string, error) {
	a, err := xtables.DecodeAddrtype(x)
	if err != nil {
		return "", errUnsupported
	}
	src, dst, flags := a.Src, a.Dst, a.Flags
	dir, mask, inv := "saddr", src, uint32(xtables.AddrtypeInvertSource)
	switch {
	case src != 0 && dst != 0:
		// nft prints only the source type.
		return "", errUnsupported
	case dst != 0:
		dir, mask, inv = "daddr", dst, xtables.AddrtypeInvertDest
	case src == 0:
		return "", errUnsupported
	}
	if flags&^(inv|xtables.AddrtypeLimitIfaceIn|xtables.AddrtypeLimitIfaceOut) != 0 {
		return "", errUnsupported
	}
	key := dir
	switch flags & (xtables.AddrtypeLimitIfaceIn | xtables.AddrtypeLimitIfaceOut) {
	case 0:
	case xtables.AddrtypeLimitIfaceIn:
		key += " . iif"
	case xtables.AddrtypeLimitIfaceOut:
		key += " . oif"
	default:
		return "", errUnsupported
	}
	if mask>>len(addrtypeNames) != 0 {
		return "", errUnsupported
	}
	var names []string
	for i, n := range addrtypeNames {
		if mask&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	val := names[0]
	if len(names) > 1 {
		val = "{ " + strings.Join(names, ", ") + " }"
	}
	op := ""
	if flags&inv != 0 {
		op = "!= "
	}
	return "fib " + key + " type " + op + val, nil
}

// conntrack (xt_conntrack_mtinfo3): only the state match, alone, is decoded.
// ctStateOrder is the order nft's translation prints states in, with their
// XT_CONNTRACK_STATE_* bits; snat and dnat (1<<6, 1<<7) it prints as one "ct status",
// losing the other.
var ctStateOrder = []struct {
	bit  uint16
	name string
}{{xtables.CtStateInvalid, "invalid"}, {xtables.CtStateNew, "new"}, {xtables.CtStateRelated, "related"}, {xtables.CtStateEstablished, "established"}, {xtables.CtStateUntracked, "untracked"}}

func conntrackText(x xtables.Ext, family uint8) (string, error) {
	c, err := xtables.DecodeConntrack(x, family)
	if err != nil {
		return "", errUnsupported
	}
	match, invert, state := c.MatchFlags, c.InvertFlags, c.StateMask
	if match&^xtables.ConntrackStateAlias != xtables.ConntrackState || invert&^xtables.ConntrackState != 0 {
		return "", errUnsupported
	}
	var names []string
	rest := state
	for _, s := range ctStateOrder {
		if state&s.bit != 0 {
			names = append(names, s.name)
			rest &^= s.bit
		}
	}
	if rest != 0 || len(names) == 0 {
		return "", errUnsupported
	}
	s := "ct state "
	if invert != 0 {
		s += "! "
	}
	return s + strings.Join(names, ","), nil
}

// multiport (xt_multiport_v1).

// multiportProtos names the protocols nft's translation was seen to print; it takes the
// protocol from the rule's -p match.
var multiportProtos = map[uint8]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_SCTP: "sctp"}

func multiportText(x xtables.Ext, l4 uint8) (string, error) {
	proto, ok := multiportProtos[l4]
	m, err := xtables.DecodeMultiport(x)
	if !ok || err != nil {
		return "", errUnsupported
	}
	dir := ""
	switch m.Flags {
	case xtables.MultiportSource:
		dir = "sport"
	case xtables.MultiportDest:
		dir = "dport"
	default:
		// --ports, either direction: nft prints a concatenation, not decoded.
		return "", errUnsupported
	}
	count := len(m.Ports)
	if count == 0 {
		return "", errUnsupported
	}
	port := func(i int) uint16 { return m.Ports[i] }
	var elems []string
	for i := 0; i < count; i++ {
		if m.Range[i] {
			if i+1 >= count {
				return "", errUnsupported
			}
			elems = append(elems, fmt.Sprintf("%d-%d", port(i), port(i+1)))
			i++
			continue
		}
		elems = append(elems, fmt.Sprintf("%d", port(i)))
	}
	val := elems[0]
	if len(elems) > 1 {
		val = "{ " + strings.Join(elems, ", ") + " }"
	}
	op := ""
	if m.Invert {
		op = "!= "
	}
	return proto + " " + dir + " " + op + val, nil
}

// natText renders the NAT targets of an ip table: DNAT revision 2, SNAT, MASQUERADE and
// REDIRECT revision 0.
func natText(x xtables.Ext) (string, error) {
	nr, err := xtables.DecodeNATRange(x, unix.NFPROTO_IPV4)
	if err != nil {
		return "", errUnsupported
	}
	return natRangeText(strings.ToLower(x.Name), nr)
}

func natRangeText(verb string, nr xtables.NATRange) (string, error) {
	known := uint32(xtables.NATMapIPs | xtables.NATProtoSpecified | xtables.NATProtoRandom | xtables.NATPersistent | xtables.NATRandomFully)
	switch verb {
	case "masquerade":
		known = xtables.NATProtoSpecified | xtables.NATProtoRandom | xtables.NATRandomFully
	case "redirect":
		// Only seen with ports (iptables' --to-ports).
		if nr.Flags&xtables.NATProtoSpecified == 0 {
			return "", errUnsupported
		}
		known = xtables.NATProtoSpecified
	case "dnat", "snat":
		if nr.Flags&(xtables.NATMapIPs|xtables.NATProtoSpecified) == 0 {
			return "", errUnsupported
		}
	}
	// Anything else (a port offset, netmap) nft prints as "xt target NAME".
	if nr.Flags&^known != 0 {
		return "", errUnsupported
	}
	to := ""
	if nr.Flags&xtables.NATMapIPs != 0 {
		to = nr.MinAddr.String()
		if nr.MaxAddr != nr.MinAddr {
			to += "-" + nr.MaxAddr.String()
		}
	}
	if nr.Flags&xtables.NATProtoSpecified != 0 {
		to += fmt.Sprintf(":%d", nr.MinPort)
		if nr.MaxPort != nr.MinPort {
			to += fmt.Sprintf("-%d", nr.MaxPort)
		}
	}
	s := verb
	if to != "" {
		s += " to " + to
	}
	var opts []string
	if nr.Flags&xtables.NATProtoRandom != 0 {
		opts = append(opts, "random")
	}
	if nr.Flags&xtables.NATRandomFully != 0 {
		opts = append(opts, "fully-random")
	}
	if nr.Flags&xtables.NATPersistent != 0 {
		opts = append(opts, "persistent")
	}
	if len(opts) > 0 {
		s += " " + strings.Join(opts, ",")
	}
	return s, nil
}

// REJECT's ipt_reject_with and ip6t_reject_with values, as nft's translation prints them;
// the port unreachable default prints as a bare "reject".
var (
	iptRejectText = map[uint32]string{
		0: "reject with icmp type net-unreachable", 1: "reject with icmp type host-unreachable",
		2: "reject with icmp type prot-unreachable", 3: "reject",
		5: "reject with icmp type net-prohibited", 6: "reject with icmp type host-prohibited",
		7: "reject with tcp reset", 8: "reject with icmp type admin-prohibited",
	}
	ip6tRejectText = map[uint32]string{
		0: "reject with icmpv6 type no-route", 1: "reject with icmpv6 type admin-prohibited",
		3: "reject with icmpv6 type addr-unreachable", 4: "reject", 6: "reject with tcp reset",
		7: "reject with icmpv6 type policy-fail", 8: "reject with icmpv6 type reject-route",
	}
)

func rejectText(family uint8, x xtables.Ext) (string, error) {
	w, err := xtables.DecodeReject(x)
	if err != nil {
		return "", errUnsupported
	}
	names := iptRejectText
	switch family {
	case unix.NFPROTO_IPV4:
	case unix.NFPROTO_IPV6:
		names = ip6tRejectText
	default:
		return "", errUnsupported
	}
	s, ok := names[w]
	if !ok {
		return "", errUnsupported
	}
	return s, nil
}

// LOG (xt_log_info): level, logflags, prefix[30]. Its translation prints what the native
// log statement prints for the same level and flags (XT_LOG_* are NF_LOG_*), the prefix
// between quotes as it is: only prefixes that quoting leaves alone are decoded.
func (r *renderer) xtLog(x xtables.Ext) error {
	l, err := xtables.DecodeLog(x)
	if err != nil || len(l.Prefix) == 30 {
		// A prefix that fills the array has no NUL: not one iptables wrote.
		return errUnsupported
	}
	level, flags, prefix := l.Level, l.Flags, []byte(l.Prefix)
	for _, c := range prefix {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return errUnsupported
		}
	}
	if level > 7 {
		return errUnsupported
	}
	e := &expr.Log{Level: expr.LogLevel(level), Flags: expr.LogFlags(flags)}
	e.Key = 1<<unix.NFTA_LOG_LEVEL | 1<<unix.NFTA_LOG_FLAGS
	if len(prefix) > 0 {
		e.Key |= 1 << unix.NFTA_LOG_PREFIX
		e.Data = prefix
	}
	return r.log(e)
}

// MARK revision 2 (xt_mark_tginfo2): the mark becomes (mark & ^mask) ^ value. The
// translation names the simplest operation that does it.
func markText(x xtables.Ext) (string, error) {
	mark, mask, err := xtables.DecodeMarkTarget(x)
	if err != nil {
		return "", errUnsupported
	}
	switch {
	case mask == 0xffffffff:
		return fmt.Sprintf("meta mark set 0x%x", mark), nil
	case mark == 0:
		return fmt.Sprintf("meta mark set mark and 0x%x", ^mask), nil
	case mark == mask:
		return fmt.Sprintf("meta mark set mark or 0x%x", mark), nil
	case mask == 0:
		return fmt.Sprintf("meta mark set mark xor 0x%x", mark), nil
	}
	return fmt.Sprintf("meta mark set mark and 0x%x xor 0x%x", ^mask, mark), nil
}

// icmp and icmp6 (ipt_icmp, ip6t_icmp): type, code range, invflags. nft's translation
// names the type when the match takes any code; "any" (type 255) it prints as the
// protocol match; with a code range it has none. Its type names are nft's.
// The types nft's translation names, from iptables' own table: for the others it has
// no translation.
var (
	xtICMPTypes  = []uint8{0, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 17, 18}
	xtICMP6Types = []uint8{1, 2, 3, 4, 128, 129, 133, 134, 135, 136, 137}
)

func icmpText(proto string, names map[uint8]string, x xtables.Ext) (string, error) {
	m, err := xtables.DecodeICMP(x)
	if err != nil || m.CodeMin != 0 || m.CodeMax != 0xff {
		return "", errUnsupported
	}
	op := ""
	if m.Invert {
		op = "!= "
	}
	if m.Type == 0xff && proto == "icmp" && op == "" {
		return "ip protocol icmp", nil
	}
	known := xtICMPTypes
	if proto == "icmpv6" {
		known = xtICMP6Types
	}
	if !slices.Contains(known, m.Type) {
		return "", errUnsupported
	}
	return proto + " type " + op + names[m.Type], nil
}

// pkttype (xt_pkttype_info): an int packet type (PACKET_*) and an int invert. nft's
// translation calls PACKET_HOST unicast.
var xtPkttypeNames = map[uint32]string{0: "unicast", 1: "broadcast", 2: "multicast"}

func pkttypeText(x xtables.Ext) (string, error) {
	t, inv, err := xtables.DecodePkttype(x)
	if err != nil {
		return "", errUnsupported
	}
	n, ok := xtPkttypeNames[t]
	if !ok {
		return "", errUnsupported
	}
	if inv {
		return "pkttype != " + n, nil
	}
	return "pkttype " + n, nil
}
