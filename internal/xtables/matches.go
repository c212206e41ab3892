package xtables

import (
	"fmt"
	"net/netip"
	"strings"
)

// Matches on a packet's headers and its connection: tcp, udp, icmp, icmp6, conntrack
// (and state), multiport, mark, connmark, addrtype.

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
