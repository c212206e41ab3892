package xtables

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"
)

// saveCtx is what an extension's text depends on besides its info.
type saveCtx struct {
	family uint8
	proto  uint8
}

// saver renders an extension's options as iptables 1.8.9's libxt_NAME save function
// does (each option with its leading space), and the name it prints (an alias such as
// state, NOTRACK).
type saver func(c *saveCtx, e Ext, d info) (name, opts string, err error)

type extKey struct {
	target bool
	name   string
	rev    uint8
}

// opts wraps a saver that prints the extension under its own name.
func opts(f func(c *saveCtx, d info) (string, error)) saver {
	return func(c *saveCtx, e Ext, d info) (string, string, error) {
		s, err := f(c, d)
		return e.Name, s, err
	}
}

// sized wraps a saver that needs n bytes of info.
func sized(n int, f func(c *saveCtx, d info) (string, error)) saver {
	return opts(func(c *saveCtx, d info) (string, error) {
		if err := d.check(n); err != nil {
			return "", err
		}
		return f(c, d)
	})
}

func saveMatch(c *saveCtx, e Ext) (string, string, error) {
	return saveExt(c, extKey{false, e.Name, e.Rev}, e)
}

func saveTarget(c *saveCtx, e Ext) (string, string, error) {
	return saveExt(c, extKey{true, e.Name, e.Rev}, e)
}

func saveExt(c *saveCtx, k extKey, e Ext) (string, string, error) {
	f, ok := savers[k]
	if !ok {
		return "", "", ErrUnknown
	}
	return f(c, e, info(e.Data))
}

var savers map[extKey]saver

func init() {
	savers = map[extKey]saver{
		{false, "tcp", 0}:       sized(12, tcpSave),
		{false, "udp", 0}:       sized(9, udpSave),
		{false, "icmp", 0}:      icmpSave("--icmp-type"),
		{false, "icmp6", 0}:     icmpSave("--icmpv6-type"),
		{false, "conntrack", 1}: conntrackSave,
		{false, "conntrack", 2}: conntrackSave,
		{false, "conntrack", 3}: conntrackSave,
		{false, "comment", 0}:   sized(256, func(_ *saveCtx, d info) (string, error) { return " --comment" + saveString(d.str(0, 256)), nil }),
		{false, "multiport", 1}: multiportSave,
		{false, "mark", 1}:      sized(9, markMatchSave),
		{false, "connmark", 1}:  sized(9, markMatchSave),
		{false, "limit", 0}:     sized(8, limitSave),
		{false, "hashlimit", 3}: sized(298, hashlimitSave),
		{false, "addrtype", 1}:  addrtypeSave,
		{false, "physdev", 0}:   sized(66, physdevSave),
		{false, "owner", 1}:     sized(18, ownerSave),
		{false, "iprange", 1}:   sized(65, iprangeSave),
		{false, "string", 1}:    sized(150, stringSave),
		{false, "length", 0}:    sized(5, lengthSave),
		{false, "recent", 0}:    sized(211, recentSave(false)),
		{false, "recent", 1}:    sized(228, recentSave(true)),
		{false, "socket", 1}:    sized(1, socketSave),
		{false, "socket", 2}:    sized(1, socketSave),
		{false, "socket", 3}:    sized(1, socketSave),
		{false, "u32", 0}:       sized(1982, u32Save),
		{false, "statistic", 0}: sized(16, statisticSave),
		{false, "pkttype", 0}:   pkttypeSave,
		{false, "mac", 0}:       sized(12, macSave),
		{false, "tos", 1}:       sized(3, tosSave),
		{false, "dscp", 0}:      sized(2, dscpSave),
		{false, "ttl", 0}:       sized(2, hopSave("ttl")),
		{false, "hl", 0}:        sized(2, hopSave("hl")),
		{false, "tcpmss", 0}:    sized(5, tcpmssSave),
		{false, "cpu", 0}:       sized(8, cpuSave),
		{false, "helper", 0}:    sized(34, helperSave),
		{false, "rt", 0}:        sized(18, rtSave),
		{false, "rpfilter", 0}:  sized(1, rpfilterSave),
		{false, "set", 1}:       setMatchSave,
		{false, "set", 2}:       setMatchSave,
		{false, "set", 3}:       setMatchSave,
		{false, "set", 4}:       setMatchSave,
		{true, "SET", 3}:        setTargetSave,
		{true, "LOG", 0}:        logSave,
		{true, "REJECT", 0}:     rejectSave,
		{true, "MARK", 2}:       markTargetSave,
		{true, "CONNMARK", 1}:   sized(16, connmarkTargetSave(false)),
		{true, "CONNMARK", 2}:   sized(15, connmarkTargetSave(true)),
		{true, "DNAT", 0}:       natSave("--to-destination"),
		{true, "DNAT", 1}:       natSave("--to-destination"),
		{true, "DNAT", 2}:       natSave("--to-destination"),
		{true, "SNAT", 0}:       natSave("--to-source"),
		{true, "SNAT", 1}:       natSave("--to-source"),
		{true, "SNAT", 2}:       natSave("--to-source"),
		{true, "MASQUERADE", 0}: natSave("--to-ports"),
		{true, "REDIRECT", 0}:   natSave("--to-ports"),
		{true, "TPROXY", 1}:     sized(26, tproxySave),
		{true, "CT", 1}:         ctSave,
		{true, "CT", 2}:         ctSave,
		{true, "NOTRACK", 0}:    opts(func(*saveCtx, info) (string, error) { return "", nil }),
		{true, "TRACE", 0}:      opts(func(*saveCtx, info) (string, error) { return "", nil }),
		{true, "TCPMSS", 0}:     sized(2, tcpmssTargetSave),
		{true, "CHECKSUM", 0}:   sized(1, checksumSave),
		{true, "NFLOG", 0}:      sized(76, nflogSave),
		{true, "NFQUEUE", 3}:    sized(6, nfqueueSave),
	}
}

// ports prints a port or a range "lo:hi" (tcp, udp, conntrack, length, tcpmss).
func portRange(lo, hi uint16) string {
	if lo == hi {
		return fmt.Sprintf("%d", lo)
	}
	return fmt.Sprintf("%d:%d", lo, hi)
}

func inv(b bool) string {
	if b {
		return " !"
	}
	return ""
}

// tcp (xt_tcp): spts[2], dpts[2], option, flg_mask, flg_cmp, invflags.
func tcpSave(_ *saveCtx, d info) (string, error) {
	var b strings.Builder
	iv := d.u8(11)
	b.WriteString(portsSave(d, iv))
	if d.u8(8) != 0 || iv&0x08 != 0 {
		fmt.Fprintf(&b, "%s --tcp-option %d", inv(iv&0x08 != 0), d.u8(8))
	}
	if d.u8(9) != 0 || iv&0x04 != 0 {
		if d.u8(9)&^0x3f != 0 || d.u8(10)&^0x3f != 0 {
			return "", ErrUnknown
		}
		b.WriteString(inv(iv&0x04 != 0) + " --tcp-flags " + tcpFlags(d.u8(9)) + " " + tcpFlags(d.u8(10)))
	}
	return b.String(), nil
}

var tcpFlagNames = []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"}

func tcpFlags(f uint8) string {
	var names []string
	for i, n := range tcpFlagNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "NONE"
	}
	return strings.Join(names, ",")
}

// udp (xt_udp): spts[2], dpts[2], invflags.
func udpSave(_ *saveCtx, d info) (string, error) {
	return portsSave(d, d.u8(8)), nil
}

// portsSave prints the source and destination port ranges xt_tcp and xt_udp start
// with, unless they are any port; invflags bits 0x01 and 0x02 negate them.
func portsSave(d info, invflags uint8) string {
	var s string
	if d.u16(0) != 0 || d.u16(2) != 0xffff {
		s += inv(invflags&0x01 != 0) + " --sport " + portRange(d.u16(0), d.u16(2))
	}
	if d.u16(4) != 0 || d.u16(6) != 0xffff {
		s += inv(invflags&0x02 != 0) + " --dport " + portRange(d.u16(4), d.u16(6))
	}
	return s
}

func icmpSave(opt string) saver {
	return func(_ *saveCtx, e Ext, _ info) (string, string, error) {
		m, err := DecodeICMP(e)
		if err != nil {
			return "", "", err
		}
		s := inv(m.Invert)
		if m.Type == 0xff && e.Name == "icmp" {
			return e.Name, s + " " + opt + " any", nil
		}
		s += fmt.Sprintf(" %s %d", opt, m.Type)
		if m.CodeMin != 0 || m.CodeMax != 0xff {
			s += fmt.Sprintf("/%d", m.CodeMin)
		}
		return e.Name, s, nil
	}
}

var (
	ctStateNames = []struct {
		bit  uint16
		name string
	}{{CtStateInvalid, "INVALID"}, {CtStateNew, "NEW"}, {CtStateRelated, "RELATED"}, {CtStateEstablished, "ESTABLISHED"}, {CtStateUntracked, "UNTRACKED"}, {CtStateSNAT, "SNAT"}, {CtStateDNAT, "DNAT"}}
	ctStatusNames = []struct {
		bit  uint16
		name string
	}{{1 << 0, "EXPECTED"}, {1 << 1, "SEEN_REPLY"}, {1 << 2, "ASSURED"}, {1 << 3, "CONFIRMED"}}
)

func ctNames(mask uint16, names []struct {
	bit  uint16
	name string
}) string {
	var out []string
	for _, n := range names {
		if mask&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, ",")
}

// maskSuffix prints a netmask as libxtables' ipmask_to_numeric: nothing for a host
// mask, a prefix length, or the mask itself when it is not contiguous.
func maskSuffix(mask netip.Addr) string {
	bits, ok := maskBits(mask)
	switch {
	case !ok:
		return "/" + mask.String()
	case bits == mask.BitLen():
		return ""
	}
	return fmt.Sprintf("/%d", bits)
}

// maskBits returns the prefix length of a contiguous netmask.
func maskBits(mask netip.Addr) (int, bool) {
	b := mask.AsSlice()
	n := 0
	for n < 8*len(b) && b[n/8]&(0x80>>(n%8)) != 0 {
		n++
	}
	for i := n; i < 8*len(b); i++ {
		if b[i/8]&(0x80>>(i%8)) != 0 {
			return 0, false
		}
	}
	return n, true
}

func conntrackSave(c *saveCtx, e Ext, _ info) (string, string, error) {
	m, err := DecodeConntrack(e, c.family)
	if err != nil {
		return "", "", err
	}
	f, iv := m.MatchFlags, m.InvertFlags
	var b strings.Builder
	if f&ConntrackStateAlias != 0 {
		if f&^ConntrackStateAlias != ConntrackState {
			return "", "", ErrUnknown
		}
		b.WriteString(inv(iv&ConntrackState != 0) + " --state " + ctNames(m.StateMask, ctStateNames))
		return "state", b.String(), nil
	}
	if f&ConntrackState != 0 {
		b.WriteString(inv(iv&ConntrackState != 0) + " --ctstate " + ctNames(m.StateMask, ctStateNames))
	}
	if f&ConntrackProto != 0 {
		fmt.Fprintf(&b, "%s --ctproto %d", inv(iv&ConntrackProto != 0), m.L4Proto)
	}
	addrs := []struct {
		flag       uint16
		opt        string
		addr, mask netip.Addr
	}{
		{ConntrackOrigSrc, "--ctorigsrc", m.OrigSrc, m.OrigSrcMask},
		{ConntrackOrigDst, "--ctorigdst", m.OrigDst, m.OrigDstMask},
		{ConntrackReplSrc, "--ctreplsrc", m.ReplSrc, m.ReplSrcMask},
		{ConntrackReplDst, "--ctrepldst", m.ReplDst, m.ReplDstMask},
	}
	for _, a := range addrs {
		if f&a.flag != 0 {
			b.WriteString(inv(iv&a.flag != 0) + " " + a.opt + " " + a.addr.String() + maskSuffix(a.mask))
		}
	}
	ports := []string{"--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport"}
	for i, opt := range ports {
		flag := uint16(ConntrackOrigSrcPort << i)
		if f&flag != 0 {
			b.WriteString(inv(iv&flag != 0) + " " + opt + " " + portRange(m.Ports[i][0], m.Ports[i][1]))
		}
	}
	if f&ConntrackStatus != 0 {
		b.WriteString(inv(iv&ConntrackStatus != 0) + " --ctstatus " + ctNames(m.StatusMask, ctStatusNames))
	}
	if f&ConntrackExpires != 0 {
		b.WriteString(inv(iv&ConntrackExpires != 0) + " --ctexpire ")
		if m.ExpiresMin == m.ExpiresMax {
			fmt.Fprintf(&b, "%d", m.ExpiresMin)
		} else {
			fmt.Fprintf(&b, "%d:%d", m.ExpiresMin, m.ExpiresMax)
		}
	}
	if f&ConntrackDirection != 0 {
		// The kernel matches the original direction, inverted for REPLY.
		if iv&ConntrackDirection != 0 {
			b.WriteString(" --ctdir REPLY")
		} else {
			b.WriteString(" --ctdir ORIGINAL")
		}
	}
	return e.Name, b.String(), nil
}

func multiportSave(_ *saveCtx, e Ext, _ info) (string, string, error) {
	m, err := DecodeMultiport(e)
	if err != nil {
		return "", "", err
	}
	s := inv(m.Invert)
	switch m.Flags {
	case MultiportSource:
		s += " --sports "
	case MultiportDest:
		s += " --dports "
	case MultiportEither:
		s += " --ports "
	default:
		return "", "", ErrUnknown
	}
	var elems []string
	for i := 0; i < len(m.Ports); i++ {
		if m.Range[i] && i+1 < len(m.Ports) {
			elems = append(elems, fmt.Sprintf("%d:%d", m.Ports[i], m.Ports[i+1]))
			i++
			continue
		}
		elems = append(elems, fmt.Sprintf("%d", m.Ports[i]))
	}
	return e.Name, s + strings.Join(elems, ","), nil
}

// markMatchSave: xt_mark_mtinfo1 and xt_connmark_mtinfo1 (mark, mask, invert).
func markMatchSave(_ *saveCtx, d info) (string, error) {
	return inv(d.u8(8) != 0) + " --mark" + markMask(d.u32(0), d.u32(4)), nil
}

func markMask(mark, mask uint32) string {
	if mask == 0xffffffff {
		return fmt.Sprintf(" 0x%x", mark)
	}
	return fmt.Sprintf(" 0x%x/0x%x", mark, mask)
}

// Rate units of limit (XT_LIMIT_SCALE per second) and hashlimit (revision 3's scale is
// a million per second), longest first.
var rateUnits = []struct {
	name string
	secs uint64
}{{"day", 24 * 60 * 60}, {"hour", 60 * 60}, {"min", 60}, {"sec", 1}}

// rate prints an average period (scale per second) as the largest unit that counts it
// exactly enough, as libxt_limit's print_rate, and returns the unit's length in seconds.
func rate(period, scale uint64) (string, uint64) {
	if period == 0 {
		return fmt.Sprintf("%f", math.Inf(1)), 0
	}
	i := 1
	for ; i < len(rateUnits); i++ {
		mult := rateUnits[i].secs * scale
		if period > mult || mult/period < mult%period {
			break
		}
	}
	u := rateUnits[i-1]
	return fmt.Sprintf("%d/%s", u.secs*scale/period, u.name), u.secs
}

// limit (xt_rateinfo): avg, burst.
func limitSave(_ *saveCtx, d info) (string, error) {
	r, _ := rate(uint64(d.u32(0)), 10000)
	s := " --limit " + r
	if d.u32(4) != 5 {
		s += fmt.Sprintf(" --limit-burst %d", d.u32(4))
	}
	return s, nil
}

// hashlimit revision 3 (xt_hashlimit_mtinfo3): name[255], then hashlimit_cfg3 at 256.
func hashlimitSave(c *saveCtx, d info) (string, error) {
	const (
		sip, spt, dip, dpt = 4, 8, 1, 2
		invert, bytes      = 0x10, 0x20
		rateMatch          = 0x40
	)
	avg, burst, mode := d.u64(256), d.u64(264), d.u32(272)
	size, max, gc, expire, interval := d.u32(276), d.u32(280), d.u32(284), d.u32(288), d.u32(292)
	srcmask, dstmask := d.u8(296), d.u8(297)
	var b strings.Builder
	if mode&invert != 0 {
		b.WriteString(" --hashlimit-above ")
	} else {
		b.WriteString(" --hashlimit-upto ")
	}
	var quantum uint64
	if mode&bytes != 0 {
		s, q := hashlimitBytes(avg, burst)
		b.WriteString(s)
		quantum = q
	} else {
		r, secs := rate(avg, 1000000)
		b.WriteString(r)
		fmt.Fprintf(&b, " --hashlimit-burst %d", burst)
		quantum = secs * 1000
	}
	if mode&(sip|spt|dip|dpt) != 0 {
		var names []string
		for _, m := range []struct {
			bit  uint32
			name string
		}{{sip, "srcip"}, {spt, "srcport"}, {dip, "dstip"}, {dpt, "dstport"}} {
			if mode&m.bit != 0 {
				names = append(names, m.name)
			}
		}
		b.WriteString(" --hashlimit-mode " + strings.Join(names, ","))
	}
	b.WriteString(" --hashlimit-name " + d.str(0, 255))
	if size != 0 {
		fmt.Fprintf(&b, " --hashlimit-htable-size %d", size)
	}
	if max != 0 {
		fmt.Fprintf(&b, " --hashlimit-htable-max %d", max)
	}
	if gc != 1000 {
		fmt.Fprintf(&b, " --hashlimit-htable-gcinterval %d", gc)
	}
	if uint64(expire) != quantum {
		fmt.Fprintf(&b, " --hashlimit-htable-expire %d", expire)
	}
	full := uint8(32)
	if c.family == unix.NFPROTO_IPV6 {
		full = 128
	}
	if srcmask != full {
		fmt.Fprintf(&b, " --hashlimit-srcmask %d", srcmask)
	}
	if dstmask != full {
		fmt.Fprintf(&b, " --hashlimit-dstmask %d", dstmask)
	}
	if mode&rateMatch != 0 {
		b.WriteString(" --hashlimit-rate-match")
		if interval != 1 {
			fmt.Fprintf(&b, " --hashlimit-rate-interval %d", interval)
		}
	}
	return b.String(), nil
}

// hashlimitBytes prints a byte rate: the kernel keeps a cost per byte, which libxt_hashlimit
// turns back into bytes per second in the largest unit that gives the same cost.
func hashlimitBytes(avg, burst uint64) (string, uint64) {
	units := []struct {
		name   string
		thresh uint64
	}{{"m", 1 << 20}, {"k", 1 << 10}, {"", 1}}
	costToBytes := func(cost uint64) uint64 {
		r := uint64(math.MaxUint32)
		if cost != 0 {
			r = math.MaxUint32 / cost
		}
		return (r - 1) << 4
	}
	bytesToCost := func(b uint64) uint64 { return math.MaxUint32 / ((b >> 4) + 1) }
	r := costToBytes(avg)
	i := 0
	for ; i < len(units)-1; i++ {
		if r >= units[i].thresh && bytesToCost(r&^(units[i].thresh-1)) == avg {
			break
		}
	}
	s := fmt.Sprintf("%d%sb/s", r/units[i].thresh, units[i].name)
	if burst == 0 {
		return s, 15000
	}
	r *= burst
	for i = 0; i < len(units)-1; i++ {
		if r >= units[i].thresh {
			break
		}
	}
	return s + fmt.Sprintf(" --hashlimit-burst %d%sb", r/units[i].thresh, units[i].name), 60000
}

var addrtypeNames = []string{"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"}

func addrtypeList(mask uint16) string {
	var names []string
	for i, n := range addrtypeNames {
		if mask&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

func addrtypeSave(_ *saveCtx, e Ext, _ info) (string, string, error) {
	a, err := DecodeAddrtype(e)
	if err != nil {
		return "", "", err
	}
	if (a.Src|a.Dst)>>len(addrtypeNames) != 0 {
		return "", "", ErrUnknown
	}
	var b strings.Builder
	if a.Src != 0 {
		b.WriteString(inv(a.Flags&AddrtypeInvertSource != 0) + " --src-type " + addrtypeList(a.Src))
	}
	if a.Dst != 0 {
		b.WriteString(inv(a.Flags&AddrtypeInvertDest != 0) + " --dst-type " + addrtypeList(a.Dst))
	}
	if a.Flags&AddrtypeLimitIfaceIn != 0 {
		b.WriteString(" --limit-iface-in")
	}
	if a.Flags&AddrtypeLimitIfaceOut != 0 {
		b.WriteString(" --limit-iface-out")
	}
	return e.Name, b.String(), nil
}

// physdev (xt_physdev_info): physindev[16], in_mask[16], physoutdev[16], out_mask[16],
// invert, bitmask.
func physdevSave(_ *saveCtx, d info) (string, error) {
	const in, out, bridged, isIn, isOut = 1, 2, 4, 8, 0x10
	iv, bits := d.u8(64), d.u8(65)
	var b strings.Builder
	if bits&isIn != 0 {
		b.WriteString(inv(iv&isIn != 0) + " --physdev-is-in")
	}
	if bits&in != 0 {
		b.WriteString(inv(iv&in != 0) + " --physdev-in " + d.str(0, 16))
	}
	if bits&isOut != 0 {
		b.WriteString(inv(iv&isOut != 0) + " --physdev-is-out")
	}
	if bits&out != 0 {
		b.WriteString(inv(iv&out != 0) + " --physdev-out " + d.str(32, 16))
	}
	if bits&bridged != 0 {
		b.WriteString(inv(iv&bridged != 0) + " --physdev-is-bridged")
	}
	return b.String(), nil
}

// owner revision 1 (xt_owner_match_info): uid_min, uid_max, gid_min, gid_max, match,
// invert.
func ownerSave(_ *saveCtx, d info) (string, error) {
	const uid, gid, socket, suppl = 1, 2, 4, 8
	match, iv := d.u8(16), d.u8(17)
	var b strings.Builder
	item := func(flag uint8, opt string, lo, hi uint32, ranged bool) {
		if match&flag == 0 {
			return
		}
		b.WriteString(inv(iv&flag != 0) + " " + opt)
		if !ranged {
			return
		}
		if lo == hi {
			fmt.Fprintf(&b, " %d", lo)
		} else {
			fmt.Fprintf(&b, " %d-%d", lo, hi)
		}
	}
	item(socket, "--socket-exists", 0, 0, false)
	item(uid, "--uid-owner", d.u32(0), d.u32(4), true)
	item(gid, "--gid-owner", d.u32(8), d.u32(12), true)
	item(suppl, "--suppl-groups", 0, 0, false)
	return b.String(), nil
}

// iprange revision 1 (xt_iprange_mtinfo): src_min, src_max, dst_min, dst_max, flags.
func iprangeSave(c *saveCtx, d info) (string, error) {
	const src, dst, srcInv, dstInv = 1, 2, 0x10, 0x20
	f := d.u8(64)
	var b strings.Builder
	if f&src != 0 {
		b.WriteString(inv(f&srcInv != 0) + " --src-range " + d.inetAddr(0, c.family).String() + "-" + d.inetAddr(16, c.family).String())
	}
	if f&dst != 0 {
		b.WriteString(inv(f&dstInv != 0) + " --dst-range " + d.inetAddr(32, c.family).String() + "-" + d.inetAddr(48, c.family).String())
	}
	return b.String(), nil
}

// string revision 1 (xt_string_info): from, to, algo[16], pattern[128], patlen, flags.
func stringSave(_ *saveCtx, d info) (string, error) {
	const invert, icase = 1, 2
	n := int(d.u8(148))
	if n > 128 {
		return "", ErrUnknown
	}
	pat := d[20 : 20+n]
	f := d.u8(149)
	var b strings.Builder
	b.WriteString(inv(f&invert != 0))
	hex := false
	for _, c := range pat {
		if c < 0x20 || c > 0x7e {
			hex = true
		}
	}
	if hex {
		b.WriteString(` --hex-string "|`)
		for _, c := range pat {
			fmt.Fprintf(&b, "%02x", c)
		}
		b.WriteString(`|"`)
	} else {
		b.WriteString(` --string "`)
		for _, c := range pat {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteString(`"`)
	}
	b.WriteString(" --algo " + d.str(4, 16))
	if d.u16(0) != 0 {
		fmt.Fprintf(&b, " --from %d", d.u16(0))
	}
	if d.u16(2) != 0xffff {
		fmt.Fprintf(&b, " --to %d", d.u16(2))
	}
	if f&icase != 0 {
		b.WriteString(" --icase")
	}
	return b.String(), nil
}

// length (xt_length_info): min, max, invert.
func lengthSave(_ *saveCtx, d info) (string, error) {
	return inv(d.u8(4) != 0) + " --length " + portRange(d.u16(0), d.u16(2)), nil
}

// recent (xt_recent_mtinfo, and _v1 with a mask): seconds, hit_count, check_set,
// invert, name[200], side, mask.
func recentSave(withMask bool) func(c *saveCtx, d info) (string, error) {
	return func(c *saveCtx, d info) (string, error) {
		const check, set, update, remove, ttl, reap = 1, 2, 4, 8, 16, 32
		cs := d.u8(8)
		var b strings.Builder
		b.WriteString(inv(d.u8(9) != 0))
		for _, o := range []struct {
			bit uint8
			opt string
		}{{set, " --set"}, {check, " --rcheck"}, {update, " --update"}, {remove, " --remove"}} {
			if cs&o.bit != 0 {
				b.WriteString(o.opt)
			}
		}
		if d.u32(0) != 0 {
			fmt.Fprintf(&b, " --seconds %d", d.u32(0))
		}
		if cs&reap != 0 {
			b.WriteString(" --reap")
		}
		if d.u32(4) != 0 {
			fmt.Fprintf(&b, " --hitcount %d", d.u32(4))
		}
		if cs&ttl != 0 {
			b.WriteString(" --rttl")
		}
		b.WriteString(" --name " + d.str(10, 200))
		if withMask {
			b.WriteString(" --mask " + d.inetAddr(212, c.family).String())
		}
		switch d.u8(210) {
		case 0:
			b.WriteString(" --rsource")
		case 1:
			b.WriteString(" --rdest")
		}
		return b.String(), nil
	}
}

// socket revisions 1 to 3 (xt_socket_mtinfo*): flags.
func socketSave(_ *saveCtx, d info) (string, error) {
	f := d.u8(0)
	var b strings.Builder
	for i, opt := range []string{" --transparent", " --nowildcard", " --restore-skmark"} {
		if f&(1<<i) != 0 {
			b.WriteString(opt)
		}
	}
	return b.String(), nil
}

// u32 (struct xt_u32): tests[11] of 180 bytes (location[11] and value[11] of 8 bytes,
// nnums, nvalues), ntests, invert.
func u32Save(_ *saveCtx, d info) (string, error) {
	const testSize = 180
	n := int(d.u8(1980))
	if n > 11 {
		return "", ErrUnknown
	}
	var b strings.Builder
	b.WriteString(inv(d.u8(1981) != 0) + ` --u32 "`)
	for t := 0; t < n; t++ {
		base := t * testSize
		nnums, nvalues := int(d.u8(base+176)), int(d.u8(base+177))
		if nnums > 11 || nvalues > 11 || nnums == 0 {
			return "", ErrUnknown
		}
		if t > 0 {
			b.WriteString("&&")
		}
		fmt.Fprintf(&b, "0x%x", d.u32(base))
		for i := 1; i < nnums; i++ {
			switch d.u8(base + 8*i + 4) {
			case 0:
				b.WriteString("&")
			case 1:
				b.WriteString("<<")
			case 2:
				b.WriteString(">>")
			case 3:
				b.WriteString("@")
			}
			fmt.Fprintf(&b, "0x%x", d.u32(base+8*i))
		}
		b.WriteString("=")
		for i := 0; i < nvalues; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			lo, hi := d.u32(base+88+8*i), d.u32(base+88+8*i+4)
			if lo == hi {
				fmt.Fprintf(&b, "0x%x", lo)
			} else {
				fmt.Fprintf(&b, "0x%x:0x%x", lo, hi)
			}
		}
	}
	b.WriteString(`"`)
	return b.String(), nil
}

// statistic (xt_statistic_info): mode, flags, then probability or every, packet.
func statisticSave(_ *saveCtx, d info) (string, error) {
	iv := inv(d.u16(2)&1 != 0)
	switch d.u16(0) {
	case 0:
		return fmt.Sprintf(" --mode random%s --probability %.11f", iv, float64(d.u32(4))/0x80000000), nil
	case 1:
		return fmt.Sprintf(" --mode nth%s --every %d --packet %d", iv, d.u32(4)+1, d.u32(8)), nil
	}
	return "", ErrUnknown
}

var pkttypeNames = map[uint32]string{0: "unicast", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}

func pkttypeSave(_ *saveCtx, e Ext, _ info) (string, string, error) {
	t, iv, err := DecodePkttype(e)
	if err != nil {
		return "", "", err
	}
	n, ok := pkttypeNames[t]
	if !ok {
		n = fmt.Sprintf("%d", t)
	}
	return e.Name, inv(iv) + " --pkt-type " + n, nil
}

// mac (xt_mac_info): srcaddr[6], int invert.
func macSave(_ *saveCtx, d info) (string, error) {
	return fmt.Sprintf("%s --mac-source %02x:%02x:%02x:%02x:%02x:%02x", inv(d.u32(8) != 0), d[0], d[1], d[2], d[3], d[4], d[5]), nil
}

// tos revision 1 (xt_tos_match_info): tos_mask, tos_value, invert.
func tosSave(_ *saveCtx, d info) (string, error) {
	return fmt.Sprintf("%s --tos 0x%02x/0x%02x", inv(d.u8(2) != 0), d.u8(1), d.u8(0)), nil
}

// dscp (xt_dscp_info): dscp, invert.
func dscpSave(_ *saveCtx, d info) (string, error) {
	return fmt.Sprintf("%s --dscp 0x%02x", inv(d.u8(1) != 0), d.u8(0)), nil
}

// ttl and hl (ipt_ttl_info, ip6t_hl_info): mode (eq, ne, lt, gt), value.
func hopSave(opt string) func(*saveCtx, info) (string, error) {
	return func(_ *saveCtx, d info) (string, error) {
		var s string
		switch d.u8(0) {
		case 0:
			s = " --" + opt + "-eq"
		case 1:
			s = " ! --" + opt + "-eq"
		case 2:
			s = " --" + opt + "-lt"
		case 3:
			s = " --" + opt + "-gt"
		default:
			return "", ErrUnknown
		}
		return fmt.Sprintf("%s %d", s, d.u8(1)), nil
	}
}

// tcpmss match (xt_tcpmss_match_info): mss_min, mss_max, invert.
func tcpmssSave(_ *saveCtx, d info) (string, error) {
	return inv(d.u8(4) != 0) + " --mss " + portRange(d.u16(0), d.u16(2)), nil
}

// cpu (xt_cpu_info): cpu, invert.
func cpuSave(_ *saveCtx, d info) (string, error) {
	return fmt.Sprintf("%s --cpu %d", inv(d.u32(4) != 0), d.u32(0)), nil
}

// helper (xt_helper_info): int invert, name[30].
func helperSave(_ *saveCtx, d info) (string, error) {
	return inv(d.u32(0) != 0) + " --helper" + saveString(d.str(4, 30)), nil
}

// rt (ip6t_rt): rt_type, segsleft[2], hdrlen, flags, invflags; the type 0 addresses are
// not decoded.
func rtSave(_ *saveCtx, d info) (string, error) {
	const typ, length, res, fstMask = 0x01, 0x04, 0x08, 0x30
	const invTyp, invSgs, invLen = 0x01, 0x02, 0x04
	f, iv := d.u8(16), d.u8(17)
	if f&(res|fstMask) != 0 {
		return "", ErrUnknown
	}
	var b strings.Builder
	if f&typ != 0 {
		fmt.Fprintf(&b, "%s --rt-type %d", inv(iv&invTyp != 0), d.u32(0))
	}
	if lo, hi := d.u32(4), d.u32(8); lo != 0 || hi != 0xffffffff {
		b.WriteString(inv(iv&invSgs != 0) + " --rt-segsleft ")
		if lo != hi {
			fmt.Fprintf(&b, "%d:%d", lo, hi)
		} else {
			fmt.Fprintf(&b, "%d", lo)
		}
	}
	if f&length != 0 {
		fmt.Fprintf(&b, "%s --rt-len %d", inv(iv&invLen != 0), d.u32(12))
	}
	return b.String(), nil
}

// rpfilter (xt_rpfilter_info): flags loose, validmark, accept-local, invert.
func rpfilterSave(_ *saveCtx, d info) (string, error) {
	var b strings.Builder
	for i, opt := range []string{" --loose", " --validmark", " --accept-local", " --invert"} {
		if d.u8(0)&(1<<i) != 0 {
			b.WriteString(opt)
		}
	}
	return b.String(), nil
}
