package xtables

import (
	"fmt"
	"strings"
)

// Matches on where a packet comes from or goes to, or on who sent it: physdev, owner,
// iprange, recent, socket, cpu, helper, rpfilter.

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

// cpu (xt_cpu_info): cpu, invert.
func cpuSave(_ *saveCtx, d info) (string, error) {
	return fmt.Sprintf("%s --cpu %d", inv(d.u32(4) != 0), d.u32(0)), nil
}

// helper (xt_helper_info): int invert, name[30].
func helperSave(_ *saveCtx, d info) (string, error) {
	return inv(d.u32(0) != 0) + " --helper" + saveString(d.str(4, 30)), nil
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
