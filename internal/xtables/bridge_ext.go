package xtables

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// ebtables' extensions, printed as ebtables-nft-save 1.8.9's libebt_NAME print functions
// do. Each saver returns its options without a leading space, or an error for an info it
// does not decode whole (a bit it does not know, a part ebtables-nft-save would not
// print, a type name it would look up in a table this package does not carry).

type ebSaver func(d info) (string, error)

var ebSavers = map[string]ebSaver{
	"ip":      ebIPLayout{"--ip", "-tos", 4}.save,
	"ip6":     ebIPLayout{"--ip6", "-tclass", 16}.save,
	"arp":     ebArpSave,
	"vlan":    ebVlanSave,
	"mark_m":  ebMarkSave,
	"pkttype": ebPkttypeSave,
	"stp":     ebStpSave,
	"802_3":   eb8023Save,
	"limit":   ebLimitSave,
	"log":     ebLogSave,
	"nflog":   ebNflogSave,
}

var ebTargets = map[string]ebSaver{
	"mark":     ebMarkTargetSave,
	"dnat":     ebNatSave("--to-dst", "--dnat-target", false),
	"snat":     ebNatSave("--to-src", "--snat-target", true),
	"redirect": ebRedirectSave,
}

// ebOpts collects options as "--name [!] value".
type ebOpts []string

func (o *ebOpts) add(name string, neg bool, value string) {
	s := name
	if neg {
		s += " !"
	}
	*o = append(*o, s+" "+value)
}

func (o ebOpts) String() string { return strings.Join(o, " ") }

// ebBits refuses bits outside known.
func ebBits(bitmask, invflags, known uint32) error {
	if bitmask&^known != 0 || invflags&^bitmask != 0 {
		return ErrUnknown
	}
	return nil
}

// ebIPLayout places the fields of ebt_ip_info and ebt_ip6_info: saddr, daddr, smsk, dmsk
// (addr bytes each), tos (tclass), protocol, bitmask, invflags, then sport[2] (or an
// ICMP or IGMP type) and dport[2] (or an ICMP code). Both use the same bits, in the order
// printed: src 1, dst 2, tos 4, proto 8, sport 0x10, dport 0x20 (then ICMP 0x40 and IGMP
// 0x80, whose types ebtables names from its own table, not carried here).
type ebIPLayout struct {
	opt  string // "--ip" or "--ip6"
	tos  string // the tos option's name
	addr int
}

func (l ebIPLayout) save(d info) (string, error) {
	a := l.addr
	tos := 4 * a
	if err := d.check(tos + 12); err != nil {
		return "", err
	}
	bm, iv := uint32(d.u8(tos+2)), uint32(d.u8(tos+3))
	if err := ebBits(bm, iv, 0x3f); err != nil {
		return "", err
	}
	addr := func(at int) string {
		ad, _ := netip.AddrFromSlice(d[at : at+a])
		m, _ := netip.AddrFromSlice(d[at+2*a : at+3*a])
		return ad.String() + maskSuffix(m)
	}
	values := []struct {
		name  string
		value func() string
	}{
		{"-src", func() string { return addr(0) }},
		{"-dst", func() string { return addr(a) }},
		{l.tos, func() string { return fmt.Sprintf("0x%02X", d.u8(tos)) }},
		{"-proto", func() string { return protoName(d.u8(tos + 1)) }},
		{"-sport", func() string { return portRange(d.u16(tos+4), d.u16(tos+6)) }},
		{"-dport", func() string { return portRange(d.u16(tos+8), d.u16(tos+10)) }},
	}
	var o ebOpts
	for i, v := range values {
		if bm&(1<<i) != 0 {
			o.add(l.opt+v.name, iv&(1<<i) != 0, v.value())
		}
	}
	return o.String(), nil
}

// arpOpcodes are ebtables' names of ARP opcodes 1 to 9.
var arpOpcodes = []string{"Request", "Reply", "Request_Reverse", "Reply_Reverse", "DRARP_Request",
	"DRARP_Reply", "DRARP_Error", "InARP_Request", "ARP_NAK"}

// arp (ebt_arp_info): htype, ptype, opcode, then at 8 saddr, smsk, daddr, dmsk, then
// smaddr, smmsk, dmaddr, dmmsk (6 bytes each), bitmask, invflags.
func ebArpSave(d info) (string, error) {
	const opcode, htype, ptype, srcIP, dstIP, srcMAC, dstMAC, grat = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
	if err := d.check(50); err != nil {
		return "", err
	}
	bm, iv := uint32(d.u8(48)), uint32(d.u8(49))
	if err := ebBits(bm, iv, 0xff); err != nil {
		return "", err
	}
	var o ebOpts
	if bm&opcode != 0 {
		op := d.be16(4)
		name := fmt.Sprint(op)
		if op >= 1 && int(op) <= len(arpOpcodes) {
			name = arpOpcodes[op-1]
		}
		o.add("--arp-op", iv&opcode != 0, name)
	}
	if bm&htype != 0 {
		o.add("--arp-htype", iv&htype != 0, fmt.Sprint(d.be16(0)))
	}
	if bm&ptype != 0 {
		o.add("--arp-ptype", iv&ptype != 0, fmt.Sprintf("0x%x", d.be16(2)))
	}
	if bm&srcIP != 0 {
		o.add("--arp-ip-src", iv&srcIP != 0, d.addr4(8).String()+maskSuffix(d.addr4(12)))
	}
	if bm&dstIP != 0 {
		o.add("--arp-ip-dst", iv&dstIP != 0, d.addr4(16).String()+maskSuffix(d.addr4(20)))
	}
	for _, m := range []struct {
		bit uint32
		at  int
		opt string
	}{{srcMAC, 24, "--arp-mac-src"}, {dstMAC, 36, "--arp-mac-dst"}} {
		if bm&m.bit == 0 {
			continue
		}
		o.add(m.opt, iv&m.bit != 0, plainMAC(d[m.at:m.at+6], d[m.at+6:m.at+12]))
	}
	if bm&grat != 0 {
		s := "--arp-gratuitous"
		if iv&grat != 0 {
			s = "! " + s
		}
		o = append(o, s)
	}
	return o.String(), nil
}

// vlan (ebt_vlan_info): id, prio, encap (be16 at 4), bitmask, invflags.
func ebVlanSave(d info) (string, error) {
	const id, prio, encap = 0x01, 0x02, 0x04
	if err := d.check(8); err != nil {
		return "", err
	}
	bm, iv := uint32(d.u8(6)), uint32(d.u8(7))
	if err := ebBits(bm, iv, id|prio|encap); err != nil {
		return "", err
	}
	var o ebOpts
	if bm&id != 0 {
		o.add("--vlan-id", iv&id != 0, fmt.Sprint(d.u16(0)))
	}
	if bm&prio != 0 {
		o.add("--vlan-prio", iv&prio != 0, fmt.Sprint(d.u8(2)))
	}
	if bm&encap != 0 {
		o.add("--vlan-encap", iv&encap != 0, fmt.Sprintf("%04X", d.be16(4)))
	}
	return o.String(), nil
}

// mark_m (ebt_mark_m_info): unsigned long mark, mask; invert, bitmask (AND 1, OR 2).
func ebMarkSave(d info) (string, error) {
	if err := d.check(18); err != nil {
		return "", err
	}
	mark, mask, iv, bm := d.u64(0), d.u64(8), d.u8(16), d.u8(17)
	if iv > 1 {
		return "", ErrUnknown
	}
	var v string
	switch {
	case bm == 2:
		v = fmt.Sprintf("/0x%x", mask)
	case bm != 1:
		return "", ErrUnknown
	case mask != 0xffffffff:
		v = fmt.Sprintf("0x%x/0x%x", mark, mask)
	default:
		v = fmt.Sprintf("0x%x", mark)
	}
	var o ebOpts
	o.add("--mark", iv != 0, v)
	return o.String(), nil
}

// pkttype (ebt_pkttype_info): pkt_type, invert.
func ebPkttypeSave(d info) (string, error) {
	if err := d.check(2); err != nil {
		return "", err
	}
	names := []string{"host", "broadcast", "multicast", "otherhost", "outgoing"}
	t := int(d.u8(0))
	v := fmt.Sprint(t)
	if t < len(names) {
		v = names[t]
	}
	var o ebOpts
	o.add("--pkttype-type", d.u8(1) != 0, v)
	return o.String(), nil
}

// 802_3 (ebt_802_3_info): sap, type (be16 at 2), bitmask, invflags.
func eb8023Save(d info) (string, error) {
	const sap, typ = 0x01, 0x02
	if err := d.check(6); err != nil {
		return "", err
	}
	bm, iv := uint32(d.u8(4)), uint32(d.u8(5))
	if err := ebBits(bm, iv, sap|typ); err != nil {
		return "", err
	}
	var o ebOpts
	if bm&sap != 0 {
		o.add("--802_3-sap", iv&sap != 0, fmt.Sprintf("0x%02x", d.u8(0)))
	}
	if bm&typ != 0 {
		o.add("--802_3-type", iv&typ != 0, fmt.Sprintf("0x%04x", d.be16(2)))
	}
	return o.String(), nil
}

// limit: the ebt_limit_info (avg, burst) RuleFromNftBridge made from the native limit.
func ebLimitSave(d info) (string, error) {
	if err := d.check(8); err != nil {
		return "", err
	}
	r, _ := rate(uint64(d.u32(0)), 10000)
	return fmt.Sprintf("--limit %s --limit-burst %d", r, d.u32(4)), nil
}

// syslogLevels are the log levels by number, as ebtables names them.
var syslogLevels = []string{"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"}

// log (ebt_log_info): loglevel, prefix[30], bitmask (u32 at 32: ip 1, arp 2, ip6 8).
func ebLogSave(d info) (string, error) {
	const ip, arp, ip6 = 0x01, 0x02, 0x08
	if err := d.check(36); err != nil {
		return "", err
	}
	level, bm := int(d.u8(0)), d.u32(32)
	if level >= len(syslogLevels) || bm&^(ip|arp|ip6) != 0 {
		return "", ErrUnknown
	}
	o := ebOpts{"--log-level " + syslogLevels[level]}
	if p := d.str(1, 30); p != "" {
		o = append(o, ebQuoted("--log-prefix", p))
	}
	for _, f := range []struct {
		bit  uint32
		name string
	}{{ip, "--log-ip"}, {arp, "--log-arp"}, {ip6, "--log-ip6"}} {
		if bm&f.bit != 0 {
			o = append(o, f.name)
		}
	}
	return o.String(), nil
}

// ebQuoted prints a prefix option as ebtables does: always between double quotes, as
// it is.
func ebQuoted(opt, s string) string { return opt + ` "` + s + `"` }

// nflog (ebt_nflog_info): len, group, threshold, flags, pad, prefix[64].
func ebNflogSave(d info) (string, error) {
	if err := d.check(76); err != nil {
		return "", err
	}
	var o ebOpts
	if p := d.str(12, 64); p != "" {
		o = append(o, ebQuoted("--nflog-prefix", p))
	}
	o = append(o, fmt.Sprintf("--nflog-group %d", d.u16(4)))
	if n := d.u32(0); n != 0 {
		o = append(o, fmt.Sprintf("--nflog-range %d", n))
	}
	if t := d.u16(6); t != 1 {
		o = append(o, fmt.Sprintf("--nflog-threshold %d", t))
	}
	return o.String(), nil
}

// ebVerdicts are the standard verdicts a target's info holds (EBT_ACCEPT -1 to
// EBT_RETURN -4).
var ebVerdicts = map[int32]string{-1: "ACCEPT", -2: "DROP", -3: "CONTINUE", -4: "RETURN"}

func ebVerdict(t int32) (string, error) {
	v, ok := ebVerdicts[t]
	if !ok {
		return "", ErrUnknown
	}
	return v, nil
}

// ebVerdictBits is EBT_VERDICT_BITS: a target that keeps other flags in its int keeps
// the verdict in these low bits, the others set.
const ebVerdictBits = 0xf

// mark target (ebt_mark_t_info): unsigned long mark, int target (the operation in the
// bits above the verdict's).
func ebMarkTargetSave(d info) (string, error) {
	if err := d.check(12); err != nil {
		return "", err
	}
	t := int32(d.u32(8))
	ops := map[int32]string{-16: "--mark-set", -32: "--mark-or", -48: "--mark-and", -64: "--mark-xor"}
	op, ok := ops[t&^ebVerdictBits]
	if !ok {
		return "", ErrUnknown
	}
	v, err := ebVerdict(t | ^ebVerdictBits)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s 0x%x --mark-target %s", op, d.u64(0), v), nil
}

// natArpBit is NAT_ARP_BIT: cleared in snat's target for --snat-arp.
const natArpBit = 0x10

// dnat and snat (ebt_nat_info): mac[6], int target.
func ebNatSave(to, target string, arpBit bool) ebSaver {
	return func(d info) (string, error) {
		if err := d.check(12); err != nil {
			return "", err
		}
		t := int32(d.u32(8))
		o := ebOpts{to + " " + macString(d[0:6])}
		if arpBit && t&natArpBit == 0 {
			o = append(o, "--snat-arp")
			t |= natArpBit
		}
		v, err := ebVerdict(t)
		if err != nil {
			return "", err
		}
		return append(o, target+" "+v).String(), nil
	}
}

// redirect (ebt_redirect_info): int target; ACCEPT is not printed.
func ebRedirectSave(d info) (string, error) {
	if err := d.check(4); err != nil {
		return "", err
	}
	v, err := ebVerdict(int32(d.u32(0)))
	if err != nil {
		return "", err
	}
	if v == "ACCEPT" {
		return "", nil
	}
	return "--redirect-target " + v, nil
}

// stp (ebt_stp_info): type, then at 4 its config (flags, root prio range, root address
// and mask, root cost range, sender prio range, sender address and mask, then the port,
// message age, max age, hello time and forward delay ranges), bitmask and invflags
// (u16 at 68 and 70), one bit per option in the order printed.
func ebStpSave(d info) (string, error) {
	if err := d.check(72); err != nil {
		return "", err
	}
	bm, iv := uint32(d.u16(68)), uint32(d.u16(70))
	if err := ebBits(bm, iv, 0x0fff); err != nil {
		return "", err
	}
	named := func(v uint8, names map[uint8]string) string {
		if n, ok := names[v]; ok {
			return n
		}
		return fmt.Sprint(v)
	}
	u16Range := func(at int) string { return portRange(d.u16(at), d.u16(at+2)) }
	mac := func(at int) string { return plainMAC(d[at:at+6], d[at+6:at+12]) }
	values := []struct {
		name  string
		value func() string
	}{
		{"type", func() string { return named(d.u8(0), map[uint8]string{0: "config", 0x80: "tcn"}) }},
		{"flags", func() string {
			return named(d.u8(4), map[uint8]string{1: "topology-change", 0x80: "topology-change-ack"})
		}},
		{"root-prio", func() string { return u16Range(6) }},
		{"root-addr", func() string { return mac(10) }},
		{"root-cost", func() string {
			if lo, hi := d.u32(24), d.u32(28); lo != hi {
				return fmt.Sprintf("%d:%d", lo, hi)
			}
			return fmt.Sprint(d.u32(24))
		}},
		{"sender-prio", func() string { return u16Range(32) }},
		{"sender-addr", func() string { return mac(36) }},
		{"port", func() string { return u16Range(48) }},
		{"msg-age", func() string { return u16Range(52) }},
		{"max-age", func() string { return u16Range(56) }},
		{"hello-time", func() string { return u16Range(60) }},
		{"forward-delay", func() string { return u16Range(64) }},
	}
	var o ebOpts
	for i, v := range values {
		if bm&(1<<i) != 0 {
			o.add("--stp-"+v.name, iv&(1<<i) != 0, v.value())
		}
	}
	return o.String(), nil
}

// plainMAC prints an address under its mask as the arp and stp matches do: unlike -s
// and -d, without the names of well-known addresses.
func plainMAC(addr, mask []byte) string {
	masked := make([]byte, 6)
	for i := range masked {
		masked[i] = addr[i] & mask[i]
	}
	v := macString(masked)
	if !bytes.Equal(mask, bytes.Repeat([]byte{0xff}, 6)) {
		v += "/" + macString(mask)
	}
	return v
}
