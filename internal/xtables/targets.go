package xtables

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

func logSave(_ *saveCtx, e Ext, _ info) (string, string, error) {
	l, err := DecodeLog(e)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	if l.Prefix != "" {
		b.WriteString(" --log-prefix" + saveString(l.Prefix))
	}
	if l.Level != 4 {
		fmt.Fprintf(&b, " --log-level %d", l.Level)
	}
	for _, f := range []struct {
		bit uint8
		opt string
	}{{LogTCPSeq, " --log-tcp-sequence"}, {LogTCPOpt, " --log-tcp-options"}, {LogIPOpt, " --log-ip-options"}, {LogUID, " --log-uid"}, {LogMACDecode, " --log-macdecode"}} {
		if l.Flags&f.bit != 0 {
			b.WriteString(f.opt)
		}
	}
	return e.Name, b.String(), nil
}

// rejectNames4 and rejectNames6 are REJECT's --reject-with types by value, for ip
// (ipt_reject_with) and ip6 (ip6t_reject_with).
var (
	rejectNames4 = []string{"icmp-net-unreachable", "icmp-host-unreachable", "icmp-proto-unreachable", "icmp-port-unreachable", "icmp-echo-reply", "icmp-net-prohibited", "icmp-host-prohibited", "tcp-reset", "icmp-admin-prohibited"}
	rejectNames6 = []string{"icmp6-no-route", "icmp6-adm-prohibited", "icmp6-not-neighbour", "icmp6-addr-unreachable", "icmp6-port-unreachable", "icmp6-echo-reply", "tcp-reset", "icmp6-policy-fail", "icmp6-reject-route"}
)

func rejectSave(c *saveCtx, e Ext, _ info) (string, string, error) {
	w, err := DecodeReject(e)
	if err != nil {
		return "", "", err
	}
	names := rejectNames4
	if c.family == unix.NFPROTO_IPV6 {
		names = rejectNames6
	}
	if int(w) >= len(names) {
		return "", "", ErrUnknown
	}
	return e.Name, " --reject-with " + names[w], nil
}

func markTargetSave(_ *saveCtx, e Ext, _ info) (string, string, error) {
	v, m, err := DecodeMarkTarget(e)
	if err != nil {
		return "", "", err
	}
	return e.Name, fmt.Sprintf(" --set-xmark 0x%x/0x%x", v, m), nil
}

// CONNMARK revisions 1 and 2 (xt_connmark_tginfo1/2): ctmark, ctmask, nfmask, then mode
// (revision 1) or shift_dir, shift_bits, mode (revision 2).
func connmarkTargetSave(rev2 bool) func(*saveCtx, info) (string, error) {
	return func(_ *saveCtx, d info) (string, error) {
		ctmark, ctmask, nfmask := d.u32(0), d.u32(4), d.u32(8)
		mode := d.u8(12)
		var shiftDir, shiftBits uint8
		if rev2 {
			shiftDir, shiftBits, mode = d.u8(12), d.u8(13), d.u8(14)
		}
		var s string
		switch mode {
		case 0:
			s = fmt.Sprintf(" --set-xmark 0x%x/0x%x", ctmark, ctmask)
		case 1:
			s = fmt.Sprintf(" --save-mark --nfmask 0x%x --ctmask 0x%x", nfmask, ctmask)
		case 2:
			s = fmt.Sprintf(" --restore-mark --nfmask 0x%x --ctmask 0x%x", nfmask, ctmask)
		default:
			return "", ErrUnknown
		}
		if shiftBits != 0 {
			dir := "left"
			if shiftDir != 0 {
				dir = "right"
			}
			s += fmt.Sprintf(" --%s-shift-mark %d", dir, shiftBits)
		}
		return s, nil
	}
}

// natSave prints SNAT and DNAT (--to-source, --to-destination ADDR[-ADDR][:PORT[-PORT]]),
// MASQUERADE and REDIRECT (--to-ports), then the flags.
func natSave(opt string) saver {
	return func(c *saveCtx, e Ext, _ info) (string, string, error) {
		r, err := DecodeNATRange(e, c.family)
		if err != nil {
			return "", "", err
		}
		known := uint32(NATMapIPs | NATProtoSpecified | NATProtoRandom | NATPersistent | NATRandomFully | NATProtoOffset)
		if r.Flags&^known != 0 {
			return "", "", ErrUnknown
		}
		var b strings.Builder
		v6 := c.family == unix.NFPROTO_IPV6
		if opt == "--to-ports" {
			if r.Flags&NATProtoSpecified != 0 {
				fmt.Fprintf(&b, " --to-ports %d", r.MinPort)
				if r.MaxPort != r.MinPort {
					fmt.Fprintf(&b, "-%d", r.MaxPort)
				}
			}
		} else if r.Flags&(NATMapIPs|NATProtoSpecified) != 0 {
			b.WriteString(" " + opt + " ")
			ports := r.Flags&NATProtoSpecified != 0
			if r.Flags&NATMapIPs != 0 {
				a := r.MinAddr.String()
				if r.MaxAddr != r.MinAddr {
					a += "-" + r.MaxAddr.String()
				}
				if v6 && ports {
					a = "[" + a + "]"
				}
				b.WriteString(a)
			}
			if ports {
				fmt.Fprintf(&b, ":%d", r.MinPort)
				if r.MaxPort != r.MinPort {
					fmt.Fprintf(&b, "-%d", r.MaxPort)
				}
				if r.Flags&NATProtoOffset != 0 {
					fmt.Fprintf(&b, "/%d", r.BasePort)
				}
			}
		}
		if r.Flags&NATProtoRandom != 0 {
			b.WriteString(" --random")
		}
		if r.Flags&NATRandomFully != 0 {
			b.WriteString(" --random-fully")
		}
		if r.Flags&NATPersistent != 0 {
			b.WriteString(" --persistent")
		}
		return e.Name, b.String(), nil
	}
}

// TPROXY revision 1 (xt_tproxy_target_info_v1): mark_mask, mark_value, laddr, lport.
func tproxySave(c *saveCtx, d info) (string, error) {
	return fmt.Sprintf(" --on-port %d --on-ip %s --tproxy-mark 0x%x/0x%x", d.be16(24), d.inetAddr(8, c.family), d.u32(4), d.u32(0)), nil
}

// CT revisions 1 and 2 (xt_ct_target_info_v1): flags, zone, ct_events, exp_events,
// helper[16], timeout[32]. The NOTRACK target iptables 1.8.9 writes as CT with the
// alias flag.
func ctSave(_ *saveCtx, e Ext, d info) (string, string, error) {
	const notrack, alias, dirOrig, dirRepl, zoneMark = 1, 2, 4, 8, 0x10
	if err := d.check(60); err != nil {
		return "", "", err
	}
	f, zone := d.u16(0), d.u16(2)
	if f&alias != 0 {
		return "NOTRACK", "", nil
	}
	var b strings.Builder
	if f&notrack != 0 {
		b.WriteString(" --notrack")
	}
	if h := d.str(12, 16); h != "" {
		b.WriteString(" --helper " + h)
	}
	if t := d.str(28, 32); t != "" {
		b.WriteString(" --timeout " + t)
	}
	events := func(opt string, mask uint32, names []string) {
		if mask == 0 {
			return
		}
		var out []string
		for i, n := range names {
			if mask&(1<<i) != 0 {
				out = append(out, n)
			}
		}
		b.WriteString(" " + opt + " " + strings.Join(out, ","))
	}
	events("--ctevents", d.u32(4), []string{"new", "related", "destroy", "reply", "assured", "protoinfo", "helper", "mark", "natseqinfo", "secmark"})
	events("--expevents", d.u32(8), []string{"new"})
	zoneText := fmt.Sprintf(" %d", zone)
	if f&zoneMark != 0 {
		zoneText = " mark"
	}
	switch {
	case f&(dirOrig|dirRepl) == dirOrig:
		b.WriteString(" --zone-orig" + zoneText)
	case f&(dirOrig|dirRepl) == dirRepl:
		b.WriteString(" --zone-reply" + zoneText)
	case zone != 0 || f&zoneMark != 0:
		b.WriteString(" --zone" + zoneText)
	}
	return e.Name, b.String(), nil
}

// TCPMSS target (xt_tcpmss_info): mss, 0xffff for the path MTU.
func tcpmssTargetSave(_ *saveCtx, d info) (string, error) {
	if d.u16(0) == 0xffff {
		return " --clamp-mss-to-pmtu", nil
	}
	return fmt.Sprintf(" --set-mss %d", d.u16(0)), nil
}

// CHECKSUM (xt_CHECKSUM_info): operation.
func checksumSave(_ *saveCtx, d info) (string, error) {
	if d.u8(0)&1 != 0 {
		return " --checksum-fill", nil
	}
	return "", nil
}

// NFLOG (xt_nflog_info): len, group, threshold, flags, pad, prefix[64] at 12.
func nflogSave(_ *saveCtx, d info) (string, error) {
	var b strings.Builder
	if p := d.str(12, 64); p != "" {
		b.WriteString(" --nflog-prefix" + saveString(p))
	}
	if d.u16(4) != 0 {
		fmt.Fprintf(&b, " --nflog-group %d", d.u16(4))
	}
	if d.u16(8)&1 != 0 {
		fmt.Fprintf(&b, " --nflog-size %d", d.u32(0))
	}
	// iptables 1.8.9's default threshold is 0 (the uapi header's; older ones said 1).
	if d.u16(6) != 0 {
		fmt.Fprintf(&b, " --nflog-threshold %d", d.u16(6))
	}
	return b.String(), nil
}

// NFQUEUE revision 3 (xt_NFQ_info_v3): queuenum, queues_total, flags.
func nfqueueSave(_ *saveCtx, d info) (string, error) {
	const bypass, fanout = 1, 2
	num, total, f := d.u16(0), d.u16(2), d.u16(4)
	var s string
	if total > 1 {
		s = fmt.Sprintf(" --queue-balance %d:%d", num, num+total-1)
	} else {
		s = fmt.Sprintf(" --queue-num %d", num)
	}
	if f&bypass != 0 {
		s += " --queue-bypass"
	}
	if f&fanout != 0 {
		s += " --queue-cpu-fanout"
	}
	return s, nil
}
