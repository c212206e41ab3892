package xtables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// arptables-nft (iptables 1.8.9) writes one table of family arp, filter, with base chains
// INPUT and OUTPUT. Its matches are all native: the ARP header's fields as payload
// comparisons (always the hardware type and both address lengths, Ethernet's 6 and
// IPv4's 4), and -i and -o as meta comparisons; its targets mangle and CLASSIFY are xt
// target expressions.

// Inverted parts of an arptables rule.
const (
	ArpInvIn = 1 << iota
	ArpInvOut
	ArpInvSrc
	ArpInvDst
	ArpInvSrcMAC
	ArpInvDstMAC
	ArpInvOpcode
	ArpInvHType
	ArpInvPType
)

// Parts of the ARP header an arptables rule matches, beyond addresses.
const (
	ArpHasOpcode = 1 << iota
	ArpHasPType
)

// ArpRule is one arptables rule.
type ArpRule struct {
	// InIface and OutIface are -i and -o (a trailing + is a prefix); empty means any.
	InIface, OutIface string
	// Src and Dst are -s and -d (the sender's and target's IPv4 address); the zero
	// Prefix means any. SrcMask and DstMask are a netmask that is not a prefix, as in
	// Rule.
	Src, Dst         netip.Prefix
	SrcMask, DstMask netip.Addr
	// SrcMAC and DstMAC are --source-mac and --destination-mac, whole addresses; the
	// zero MAC means any.
	SrcMAC, DstMAC MAC
	// HType is --h-type, the hardware type (1, Ethernet, unless set); Opcode and PType
	// are --opcode and --proto-type when Has says so.
	HType, Opcode, PType uint16
	Has                  uint8
	// Inv is the ArpInv* bits of the parts above that are negated.
	Inv uint16
	// Target is a target extension (mangle, CLASSIFY); when its Name is empty the rule's
	// verdict is Verdict: ACCEPT, DROP, RETURN or a chain's name.
	Target  Ext
	Verdict string
	// Packets and Bytes are the rule's counters.
	Packets, Bytes uint64
}

// ARP header fields (RFC 826) at their offsets, for Ethernet and IPv4 addresses.
const (
	arpHType  = 0
	arpPType  = 2
	arpHLen   = 4
	arpPLen   = 5
	arpOpcode = 6
	arpSHA    = 8
	arpSPA    = 14
	arpTHA    = 18
	arpTPA    = 24
)

type arpFromNft struct {
	toolReader
	r          ArpRule
	seen       map[uint32]bool
	hlen, plen bool
}

// RuleFromNftArp reads an arp rule's expressions as arptables-nft 1.8.9 reads back what
// it wrote. Anything it does not decode whole, or that arptables-nft-save 1.8.9 would
// leave out of its line (a MAC address with a mask, ! --h-type 1), is ErrNotIptables.
func RuleFromNftArp(exprs []expr.Any) (ArpRule, error) {
	s := &arpFromNft{seen: map[uint32]bool{}}
	for i, e := range exprs {
		if err := s.add(e); err != nil {
			return ArpRule{}, fmt.Errorf("expression %d (%T): %w", i, e, err)
		}
	}
	s.r.Packets, s.r.Bytes, s.r.Verdict, s.r.Target = s.packets, s.bytes, s.verdict, s.target
	switch {
	case s.load != nil:
		return ArpRule{}, fmt.Errorf("a load nothing compares: %w", ErrNotIptables)
	case s.verdict == "" && s.target.Name == "":
		return ArpRule{}, fmt.Errorf("no verdict: %w", ErrNotIptables)
	case !s.seen[arpHType] || !s.hlen || !s.plen:
		return ArpRule{}, fmt.Errorf("no match of the hardware type and Ethernet and IPv4 address lengths: %w", ErrNotIptables)
	case s.r.HType == 1 && s.r.Inv&ArpInvHType != 0:
		return ArpRule{}, fmt.Errorf("! --h-type 1, which arptables-nft-save does not print: %w", ErrNotIptables)
	}
	if _, err := s.r.Save("X"); err != nil {
		return ArpRule{}, err
	}
	return s.r, nil
}

func (s *arpFromNft) add(e expr.Any) error {
	if handled, err := s.common(e, expr.PayloadBaseNetworkHeader); handled {
		return err
	}
	switch e := e.(type) {
	case *expr.Cmp:
		return s.compare(e)
	case *expr.Target:
		data, err := infoBytes(unix.NFPROTO_ARP, e.Rev, e.Info)
		if err != nil || e.Rev != 0 {
			return ErrNotIptables
		}
		return s.end("", Ext{Name: e.Name, Data: data})
	}
	return ErrNotIptables
}

func (s *arpFromNft) compare(c *expr.Cmp) error {
	load, mask := s.take()
	neg, err := invOp(c.Op)
	if err != nil {
		return err
	}
	if l, ok := load.(*expr.Meta); ok {
		bit, dst := uint16(ArpInvIn), &s.r.InIface
		if l.Key == expr.MetaKeyOIFNAME {
			bit, dst = ArpInvOut, &s.r.OutIface
		}
		if err := setIface(dst, c.Data, mask); err != nil {
			return err
		}
		s.inv(neg, bit)
		return nil
	}
	l, ok := load.(*expr.Payload)
	if !ok || len(c.Data) != int(l.Len) || s.seen[l.Offset] {
		return ErrNotIptables
	}
	s.seen[l.Offset] = true
	u16 := func() (uint16, bool) {
		if l.Len != 2 || mask != nil {
			return 0, false
		}
		return binary.BigEndian.Uint16(c.Data), true
	}
	switch l.Offset {
	case arpHType, arpPType, arpOpcode:
		v, ok := u16()
		if !ok {
			return ErrNotIptables
		}
		switch l.Offset {
		case arpHType:
			s.r.HType = v
			s.inv(neg, ArpInvHType)
		case arpPType:
			s.r.PType, s.r.Has = v, s.r.Has|ArpHasPType
			s.inv(neg, ArpInvPType)
		default:
			s.r.Opcode, s.r.Has = v, s.r.Has|ArpHasOpcode
			s.inv(neg, ArpInvOpcode)
		}
	case arpHLen, arpPLen:
		want := byte(6)
		if l.Offset == arpPLen {
			want = 4
		}
		if neg || l.Len != 1 || mask != nil || c.Data[0] != want {
			return ErrNotIptables
		}
		if l.Offset == arpHLen {
			s.hlen = true
		} else {
			s.plen = true
		}
	case arpSHA, arpTHA:
		// arptables-nft-save 1.8.9 prints a MAC address only when compared whole.
		if l.Len != 6 || mask != nil {
			return ErrNotIptables
		}
		m, bit := &s.r.SrcMAC, uint16(ArpInvSrcMAC)
		if l.Offset == arpTHA {
			m, bit = &s.r.DstMAC, ArpInvDstMAC
		}
		*m = MAC{Addr: [6]byte(c.Data), Mask: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		s.inv(neg, bit)
	case arpSPA, arpTPA:
		if l.Len == 0 || l.Len > 4 || (mask != nil && len(mask) != int(l.Len)) {
			return ErrNotIptables
		}
		var a, m [4]byte
		copy(a[:], c.Data)
		if mask != nil {
			copy(m[:], mask)
		} else {
			copy(m[:], bytes.Repeat([]byte{0xff}, int(l.Len)))
		}
		addr, ma := netip.AddrFrom4(a), netip.AddrFrom4(m)
		p, pm, bit := &s.r.Src, &s.r.SrcMask, uint16(ArpInvSrc)
		if l.Offset == arpTPA {
			p, pm, bit = &s.r.Dst, &s.r.DstMask, ArpInvDst
		}
		if bits, ok := maskBits(ma); ok {
			*p = netip.PrefixFrom(addr, bits)
		} else {
			*p, *pm = netip.PrefixFrom(addr, 32), ma
		}
		s.inv(neg, bit)
	default:
		return ErrNotIptables
	}
	return nil
}

func (s *arpFromNft) inv(neg bool, bit uint16) {
	if neg {
		s.r.Inv |= bit
	}
}

// Counters are the rule's packet and byte counts.
func (r ArpRule) Counters() (packets, bytes uint64) { return r.Packets, r.Bytes }

// Save renders the rule as the "-A CHAIN ..." line arptables-nft-save (1.8.9) prints:
// the target's name first, then the matches, then the target's options.
func (r ArpRule) Save(chain string) (string, error) {
	var b strings.Builder
	b.WriteString("-A " + chain + " -j ")
	var targetOpts string
	switch r.Target.Name {
	case "":
		b.WriteString(r.Verdict)
	case "mangle", "CLASSIFY":
		opts, err := arpTargetSave(r.Target)
		if err != nil {
			return "", fmt.Errorf("arptables target %s: %w", r.Target.Name, err)
		}
		b.WriteString(r.Target.Name)
		targetOpts = opts
	default:
		return "", fmt.Errorf("arptables target %s: %w", r.Target.Name, ErrNotIptables)
	}
	opt := func(bit uint16, name, value string) {
		if r.Inv&bit != 0 {
			b.WriteString(" !")
		}
		b.WriteString(" " + name + " " + value)
	}
	if r.InIface != "" {
		opt(ArpInvIn, "-i", r.InIface)
	}
	if r.OutIface != "" {
		opt(ArpInvOut, "-o", r.OutIface)
	}
	addr := func(p netip.Prefix, mask netip.Addr) string {
		switch {
		case mask.IsValid():
			return p.Addr().String() + "/" + mask.String()
		case p.Bits() == 32:
			return p.Addr().String()
		}
		return p.String()
	}
	if r.Src.IsValid() {
		opt(ArpInvSrc, "-s", addr(r.Src, r.SrcMask))
	}
	if !r.SrcMAC.IsZero() {
		opt(ArpInvSrcMAC, "--src-mac", macString(r.SrcMAC.Addr[:]))
	}
	if r.Dst.IsValid() {
		opt(ArpInvDst, "-d", addr(r.Dst, r.DstMask))
	}
	if !r.DstMAC.IsZero() {
		opt(ArpInvDstMAC, "--dst-mac", macString(r.DstMAC.Addr[:]))
	}
	if r.Has&ArpHasOpcode != 0 {
		opt(ArpInvOpcode, "--opcode", fmt.Sprint(r.Opcode))
	}
	if r.HType != 1 {
		opt(ArpInvHType, "--h-type", fmt.Sprint(r.HType))
	}
	if r.Has&ArpHasPType != 0 {
		opt(ArpInvPType, "--proto-type", fmt.Sprintf("0x%x", r.PType))
	}
	return b.String() + targetOpts, nil
}

// arpTargetSave prints mangle (struct arpt_mangle: src_devaddr[16], tgt_devaddr[16],
// src_ip, tgt_ip, flags, int target) and CLASSIFY (xt_classify_target_info: priority).
func arpTargetSave(e Ext) (string, error) {
	d := info(e.Data)
	if e.Name == "CLASSIFY" {
		if err := d.check(4); err != nil {
			return "", err
		}
		p := d.u32(0)
		return fmt.Sprintf(" --set-class %x:%x", p>>16, p&0xffff), nil
	}
	const sdev, tdev, sip, tip = 0x01, 0x02, 0x04, 0x08
	if err := d.check(48); err != nil {
		return "", err
	}
	flags := d.u8(40)
	if flags&^(sdev|tdev|sip|tip) != 0 {
		return "", ErrUnknown
	}
	var b strings.Builder
	if flags&sip != 0 {
		b.WriteString(" --mangle-ip-s " + d.addr4(32).String())
	}
	if flags&sdev != 0 {
		b.WriteString(" --mangle-mac-s " + macString(d[0:6]))
	}
	if flags&tip != 0 {
		b.WriteString(" --mangle-ip-d " + d.addr4(36).String())
	}
	if flags&tdev != 0 {
		b.WriteString(" --mangle-mac-d " + macString(d[16:22]))
	}
	// NF_DROP 0, NF_ACCEPT 1, XT_CONTINUE -1.
	switch int32(d.u32(44)) {
	case 1:
	case 0:
		b.WriteString(" --mangle-target DROP")
	case -1:
		b.WriteString(" --mangle-target CONTINUE")
	default:
		return "", ErrUnknown
	}
	return b.String(), nil
}
