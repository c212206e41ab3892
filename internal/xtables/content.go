package xtables

import (
	"fmt"
	"strings"
)

// Matches on what a packet holds: string, length, u32, pkttype, mac, tos, dscp, ttl, hl,
// tcpmss, rt.

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
