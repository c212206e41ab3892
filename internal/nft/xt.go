package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// xtables extensions, the "match" and "target" expressions iptables-nft writes for what it
// cannot express natively: Docker's addrtype, conntrack state, comment, DNAT and
// MASQUERADE; multiport, icmp, icmp6, pkttype, SNAT, REDIRECT, REJECT, LOG and MARK.
// nft prints them through libxtables' translation to nft syntax; this file renders the
// same text from the extension's struct (the kernel uapi headers linux/netfilter/xt_*.h,
// linux/netfilter/nf_nat.h, ipt_REJECT.h, ip6t_REJECT.h), only for the revisions
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

func xtInfo(i xt.InfoAny) []byte {
	if u, ok := i.(*xt.Unknown); ok {
		return *u
	}
	return nil
}

// emptyStmt stands for a statement nft prints as nothing (the comment match): unlike a
// hidden dependency it still takes its place between the separating spaces.
const emptyStmt = "\x00"

func (r *renderer) xtMatch(e *expr.Match) error {
	if r.env.Family != unix.NFPROTO_IPV4 && r.env.Family != unix.NFPROTO_IPV6 {
		return errUnsupported
	}
	info := xtInfo(e.Info)
	var s string
	var err error
	switch {
	case e.Name == "comment" && e.Rev == 0:
		r.emit(emptyStmt)
		return nil
	case e.Name == "addrtype" && e.Rev == 1:
		s, err = addrtypeText(info)
	case e.Name == "conntrack" && e.Rev == 3:
		s, err = conntrackText(info)
	case e.Name == "multiport" && e.Rev == 1:
		s, err = multiportText(info, r.l4)
	case e.Name == "icmp" && e.Rev == 0 && r.env.Family == unix.NFPROTO_IPV4:
		s, err = icmpText("icmp", icmpTypeNames, info)
	case e.Name == "icmp6" && e.Rev == 0 && r.env.Family == unix.NFPROTO_IPV6:
		s, err = icmpText("icmpv6", icmp6TypeNames, info)
	case e.Name == "pkttype" && e.Rev == 0:
		s, err = pkttypeText(info)
	default:
		return errUnsupported
	}
	return r.emitText(s, err)
}

func (r *renderer) xtTarget(e *expr.Target) error {
	if r.env.Family != unix.NFPROTO_IPV4 && r.env.Family != unix.NFPROTO_IPV6 {
		return errUnsupported
	}
	info := xtInfo(e.Info)
	var s string
	var err error
	switch {
	case r.env.Family == unix.NFPROTO_IPV4 && e.Name == "DNAT" && e.Rev == 2:
		s, err = natRange2Text("dnat", info)
	case r.env.Family == unix.NFPROTO_IPV4 && e.Rev == 0 && (e.Name == "SNAT" || e.Name == "MASQUERADE" || e.Name == "REDIRECT"):
		s, err = natCompatText(strings.ToLower(e.Name), info)
	case e.Name == "REJECT" && e.Rev == 0:
		s, err = rejectText(r.env.Family, info)
	case e.Name == "LOG" && e.Rev == 0:
		return r.xtLog(info)
	case e.Name == "MARK" && e.Rev == 2:
		s, err = markText(info)
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

// addrtype (xt_addrtype_info_v1): source and dest type masks, flags.
const (
	xtAddrtypeInvertSource  = 0x1
	xtAddrtypeInvertDest    = 0x2
	xtAddrtypeLimitIfaceIn  = 0x4
	xtAddrtypeLimitIfaceOut = 0x8
)

// addrtypeNames are the route types by bit (1 << RTN_*) that nft's translation names;
// throw, nat and xresolve it leaves out of the set, so a mask with them is not decoded.
var addrtypeNames = []string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit"}

func addrtypeText(info []byte) (string, error) {
	if len(info) < 8 {
		return "", errUnsupported
	}
	src := binary.NativeEndian.Uint16(info[0:])
	dst := binary.NativeEndian.Uint16(info[2:])
	flags := binary.NativeEndian.Uint32(info[4:])
	dir, mask, inv := "saddr", src, uint32(xtAddrtypeInvertSource)
	switch {
	case src != 0 && dst != 0:
		// nft prints only the source type.
		return "", errUnsupported
	case dst != 0:
		dir, mask, inv = "daddr", dst, xtAddrtypeInvertDest
	case src == 0:
		return "", errUnsupported
	}
	if flags&^(inv|xtAddrtypeLimitIfaceIn|xtAddrtypeLimitIfaceOut) != 0 {
		return "", errUnsupported
	}
	key := dir
	switch flags & (xtAddrtypeLimitIfaceIn | xtAddrtypeLimitIfaceOut) {
	case 0:
	case xtAddrtypeLimitIfaceIn:
		key += " . iif"
	case xtAddrtypeLimitIfaceOut:
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
const (
	ctMtinfo3Size         = 162 // without the tail padding
	ctMtinfo3MatchFlags   = 146
	ctMtinfo3InvertFlags  = 148
	ctMtinfo3StateMask    = 150
	xtConntrackState      = 1 << 0
	xtConntrackStateAlias = 1 << 13 // -m state
)

// ctStateOrder is the order nft's translation prints states in, with their
// XT_CONNTRACK_STATE_* bits; snat and dnat (1<<6, 1<<7) it prints as one "ct status",
// losing the other.
var ctStateOrder = []struct {
	bit  uint16
	name string
}{{1 << 0, "invalid"}, {1 << 3, "new"}, {1 << 2, "related"}, {1 << 1, "established"}, {1 << 8, "untracked"}}

func conntrackText(info []byte) (string, error) {
	if len(info) < ctMtinfo3Size {
		return "", errUnsupported
	}
	match := binary.NativeEndian.Uint16(info[ctMtinfo3MatchFlags:])
	invert := binary.NativeEndian.Uint16(info[ctMtinfo3InvertFlags:])
	state := binary.NativeEndian.Uint16(info[ctMtinfo3StateMask:])
	if match&^xtConntrackStateAlias != xtConntrackState || invert&^xtConntrackState != 0 {
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

// multiport (xt_multiport_v1): flags, count, ports[15], pflags[15], invert.
const (
	xtMultiPorts         = 15
	xtMultiportV1Size    = 2 + 2*xtMultiPorts + xtMultiPorts + 1
	xtMultiportSource    = 0
	xtMultiportDest      = 1
	multiportPflagsStart = 2 + 2*xtMultiPorts
)

// multiportProtos names the protocols nft's translation was seen to print; it takes the
// protocol from the rule's -p match.
var multiportProtos = map[uint8]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_SCTP: "sctp"}

func multiportText(info []byte, l4 uint8) (string, error) {
	proto, ok := multiportProtos[l4]
	if !ok || len(info) < xtMultiportV1Size {
		return "", errUnsupported
	}
	dir := ""
	switch info[0] {
	case xtMultiportSource:
		dir = "sport"
	case xtMultiportDest:
		dir = "dport"
	default:
		// --ports, either direction: nft prints a concatenation, not decoded.
		return "", errUnsupported
	}
	count := int(info[1])
	if count == 0 || count > xtMultiPorts {
		return "", errUnsupported
	}
	port := func(i int) uint16 { return binary.NativeEndian.Uint16(info[2+2*i:]) }
	var elems []string
	for i := 0; i < count; i++ {
		if info[multiportPflagsStart+i] != 0 {
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
	switch info[xtMultiportV1Size-1] {
	case 0:
	case 1:
		op = "!= "
	default:
		return "", errUnsupported
	}
	return proto + " " + dir + " " + op + val, nil
}

// NAT ranges (linux/netfilter/nf_nat.h).
const (
	natMapIPs         = 1 << 0
	natProtoSpecified = 1 << 1
	natProtoRandom    = 1 << 2
	natPersistent     = 1 << 3
	natRandomFully    = 1 << 4
)

// natRange is what nft's translation prints of a NAT range.
type natRange struct {
	flags            uint32
	minAddr, maxAddr netip.Addr
	minPort, maxPort uint16
}

// natRange2Text renders nf_nat_range2 (DNAT revision 2) of an ip table.
func natRange2Text(verb string, info []byte) (string, error) {
	if len(info) < 42 {
		return "", errUnsupported
	}
	var a, b [4]byte
	copy(a[:], info[4:8])
	copy(b[:], info[20:24])
	return natText(verb, natRange{
		flags:   binary.NativeEndian.Uint32(info[0:]),
		minAddr: netip.AddrFrom4(a), maxAddr: netip.AddrFrom4(b),
		minPort: binary.BigEndian.Uint16(info[36:]), maxPort: binary.BigEndian.Uint16(info[38:]),
	})
}

// natCompatText renders nf_nat_ipv4_multi_range_compat (SNAT, MASQUERADE, REDIRECT
// revision 0).
func natCompatText(verb string, info []byte) (string, error) {
	if len(info) < 20 || binary.NativeEndian.Uint32(info[0:]) != 1 {
		return "", errUnsupported
	}
	var a, b [4]byte
	copy(a[:], info[8:12])
	copy(b[:], info[12:16])
	return natText(verb, natRange{
		flags:   binary.NativeEndian.Uint32(info[4:]),
		minAddr: netip.AddrFrom4(a), maxAddr: netip.AddrFrom4(b),
		minPort: binary.BigEndian.Uint16(info[16:]), maxPort: binary.BigEndian.Uint16(info[18:]),
	})
}

func natText(verb string, nr natRange) (string, error) {
	known := uint32(natMapIPs | natProtoSpecified | natProtoRandom | natPersistent | natRandomFully)
	switch verb {
	case "masquerade":
		known = natProtoSpecified | natProtoRandom | natRandomFully
	case "redirect":
		// Only seen with ports (iptables' --to-ports).
		if nr.flags&natProtoSpecified == 0 {
			return "", errUnsupported
		}
		known = natProtoSpecified
	case "dnat", "snat":
		if nr.flags&(natMapIPs|natProtoSpecified) == 0 {
			return "", errUnsupported
		}
	}
	// Anything else (a port offset, netmap) nft prints as "xt target NAME".
	if nr.flags&^known != 0 {
		return "", errUnsupported
	}
	to := ""
	if nr.flags&natMapIPs != 0 {
		to = nr.minAddr.String()
		if nr.maxAddr != nr.minAddr {
			to += "-" + nr.maxAddr.String()
		}
	}
	if nr.flags&natProtoSpecified != 0 {
		to += fmt.Sprintf(":%d", nr.minPort)
		if nr.maxPort != nr.minPort {
			to += fmt.Sprintf("-%d", nr.maxPort)
		}
	}
	s := verb
	if to != "" {
		s += " to " + to
	}
	var opts []string
	if nr.flags&natProtoRandom != 0 {
		opts = append(opts, "random")
	}
	if nr.flags&natRandomFully != 0 {
		opts = append(opts, "fully-random")
	}
	if nr.flags&natPersistent != 0 {
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

func rejectText(family uint8, info []byte) (string, error) {
	if len(info) < 4 {
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
	s, ok := names[binary.NativeEndian.Uint32(info)]
	if !ok {
		return "", errUnsupported
	}
	return s, nil
}

// LOG (xt_log_info): level, logflags, prefix[30]. Its translation prints what the native
// log statement prints for the same level and flags (XT_LOG_* are NF_LOG_*), the prefix
// between quotes as it is: only prefixes that quoting leaves alone are decoded.
func (r *renderer) xtLog(info []byte) error {
	if len(info) < 32 {
		return errUnsupported
	}
	level, flags := info[0], info[1]
	prefix := info[2:32]
	if i := bytes.IndexByte(prefix, 0); i >= 0 {
		prefix = prefix[:i]
	} else {
		return errUnsupported
	}
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
func markText(info []byte) (string, error) {
	if len(info) < 8 {
		return "", errUnsupported
	}
	mark := binary.NativeEndian.Uint32(info[0:])
	mask := binary.NativeEndian.Uint32(info[4:])
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

func icmpText(proto string, names map[uint8]string, info []byte) (string, error) {
	if len(info) < 4 || info[1] != 0 || info[2] != 0xff {
		return "", errUnsupported
	}
	op := ""
	switch info[3] {
	case 0:
	case 1:
		op = "!= "
	default:
		return "", errUnsupported
	}
	if info[0] == 0xff && proto == "icmp" && op == "" {
		return "ip protocol icmp", nil
	}
	known := xtICMPTypes
	if proto == "icmpv6" {
		known = xtICMP6Types
	}
	if !slices.Contains(known, info[0]) {
		return "", errUnsupported
	}
	return proto + " type " + op + names[info[0]], nil
}

// pkttype (xt_pkttype_info): an int packet type (PACKET_*) and an int invert. nft's
// translation calls PACKET_HOST unicast.
var xtPkttypeNames = map[uint32]string{0: "unicast", 1: "broadcast", 2: "multicast"}

func pkttypeText(info []byte) (string, error) {
	if len(info) < 8 {
		return "", errUnsupported
	}
	n, ok := xtPkttypeNames[binary.NativeEndian.Uint32(info[0:])]
	if !ok {
		return "", errUnsupported
	}
	switch binary.NativeEndian.Uint32(info[4:]) {
	case 0:
		return "pkttype " + n, nil
	case 1:
		return "pkttype != " + n, nil
	}
	return "", errUnsupported
}
