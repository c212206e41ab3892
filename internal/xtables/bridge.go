package xtables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ebtables-nft (iptables 1.8.9) writes tables of family bridge: filter and nat (its
// broute table is refused by ebtables-nft-restore 1.8.9, so a bridge broute table is
// nobody's here). It writes -p, -i, -o, -s and -d as native expressions, limit as a native
// limit, and every other match, watcher (log, nflog) and target as xt expressions holding
// the ebt_*_info structs of linux/netfilter_bridge/.

// MAC is an Ethernet address and its mask; the zero mask means any address.
type MAC struct {
	Addr, Mask [6]byte
}

// IsZero says the rule does not match this address.
func (m MAC) IsZero() bool { return m.Mask == [6]byte{} }

// Inverted parts of an ebtables rule's header (ebtables' EBT_I* invflags).
const (
	EbInvIn    = 0x01
	EbInvOut   = 0x02
	EbInvSrc   = 0x08
	EbInvDst   = 0x10
	EbInvProto = 0x04
)

// BridgeRule is one ebtables rule.
type BridgeRule struct {
	// Proto is -p's ethertype, 0 for any; Length is -p Length (802.3 frames, whose
	// ethertype field is a length below 0x0600) instead.
	Proto  uint16
	Length bool
	// InIface and OutIface are -i and -o (a trailing + is a prefix); empty means any.
	InIface, OutIface string
	// Src and Dst are -s and -d.
	Src, Dst MAC
	// Inv is the EbInv* bits of the parts above that are negated.
	Inv uint8
	// Exts are the matches (ip, ip6, arp, vlan, mark_m, pkttype, stp, 802_3, limit) and
	// watchers (log, nflog) in the rule's order, which ebtables-save keeps. limit is
	// native in nf_tables: its Ext holds an ebt_limit_info made from it.
	Exts []Ext
	// Target is a target extension (mark, dnat, snat, redirect); when its Name is empty
	// the rule's verdict is Verdict: ACCEPT, DROP, RETURN, CONTINUE or a chain's name.
	Target  Ext
	Verdict string
	// Policy marks the rule ebtables-nft appends to a user-defined chain to give it a
	// policy other than RETURN: it is the chain's policy, not one of its rules.
	Policy bool
	// Packets and Bytes are the rule's counters.
	Packets, Bytes uint64
}

// ebtablesPolicyUdata is the rule userdata ebtables-nft puts on a user-defined chain's
// policy rule: libnftnl's TLV of type UDATA_TYPE_EBTABLES_POLICY (1), a 4-byte value 1.
var ebtablesPolicyUdata = []byte{1, 4, 1, 0, 0, 0}

// IsEbtablesPolicy says whether a rule's userdata marks it as a user-defined chain's
// policy (ebtables-nft -P CHAIN DROP).
func IsEbtablesPolicy(userdata []byte) bool { return bytes.Equal(userdata, ebtablesPolicyUdata) }

// ebFromNft is the state of reading one bridge rule.
type ebFromNft struct {
	toolReader
	r BridgeRule
}

// RuleFromNftBridge reads a bridge rule's expressions as ebtables-nft 1.8.9 reads back
// what it wrote, userdata its NFTA_RULE_USERDATA (which marks a chain's policy rule).
// Anything it does not decode whole, or that ebtables-nft-save would print wrong (see
// the refusals in the extension savers), is ErrNotIptables.
func RuleFromNftBridge(exprs []expr.Any, userdata []byte) (BridgeRule, error) {
	s := &ebFromNft{}
	for i, e := range exprs {
		if err := s.add(e); err != nil {
			return BridgeRule{}, fmt.Errorf("expression %d (%T): %w", i, e, err)
		}
	}
	if s.load != nil {
		return BridgeRule{}, fmt.Errorf("a load nothing compares: %w", ErrNotIptables)
	}
	s.r.Packets, s.r.Bytes, s.r.Verdict, s.r.Target = s.packets, s.bytes, s.verdict, s.target
	if s.verdict == "" && s.target.Name == "" {
		s.r.Verdict = "CONTINUE"
	}
	if len(userdata) > 0 {
		if !IsEbtablesPolicy(userdata) || !s.r.isPolicy() {
			return BridgeRule{}, fmt.Errorf("rule userdata %x: %w", userdata, ErrNotIptables)
		}
		s.r.Policy = true
	}
	// What ebtables-nft-save prints must be what the rule does: render it once now so
	// that a rule it would misprint is refused here, not printed.
	if _, err := s.r.save("X"); err != nil {
		return BridgeRule{}, err
	}
	return s.r, nil
}

// isPolicy says whether the rule is one ebtables-nft writes for a chain's policy: a
// counter and ACCEPT or DROP, nothing else.
func (r *BridgeRule) isPolicy() bool {
	return r.Proto == 0 && !r.Length && r.InIface == "" && r.OutIface == "" && r.Src.IsZero() && r.Dst.IsZero() &&
		r.Inv == 0 && len(r.Exts) == 0 && r.Target.Name == "" && (r.Verdict == "ACCEPT" || r.Verdict == "DROP")
}

func (s *ebFromNft) add(e expr.Any) error {
	if handled, err := s.common(e, expr.PayloadBaseLLHeader); handled {
		return err
	}
	switch e := e.(type) {
	case *expr.Cmp:
		return s.compare(e)
	case *expr.Match:
		data, err := infoBytes(unix.NFPROTO_BRIDGE, e.Rev, e.Info)
		if err != nil || e.Rev != 0 {
			return ErrNotIptables
		}
		s.r.Exts = append(s.r.Exts, Ext{Name: e.Name, Data: data})
	case *expr.Target:
		data, err := infoBytes(unix.NFPROTO_BRIDGE, e.Rev, e.Info)
		if err != nil || e.Rev != 0 {
			return ErrNotIptables
		}
		if e.Name == "log" || e.Name == "nflog" {
			s.r.Exts = append(s.r.Exts, Ext{Name: e.Name, Data: data})
			return nil
		}
		return s.end("", Ext{Name: e.Name, Data: data})
	case *expr.Limit:
		// ebtables' units: a second, minute, hour, day.
		switch e.Unit {
		case expr.LimitTimeSecond, expr.LimitTimeMinute, expr.LimitTimeHour, expr.LimitTimeDay:
		default:
			return ErrNotIptables
		}
		if e.Type != expr.LimitTypePkts || e.Over || e.Rate == 0 {
			return ErrNotIptables
		}
		// ebtables-nft reads it back as ebt_limit_info's avg (in 1/10000 s) and burst.
		m := make(info, 8)
		m.put32(0, uint32(10000*uint64(e.Unit)/e.Rate))
		m.put32(4, e.Burst)
		s.r.Exts = append(s.r.Exts, Ext{Name: "limit", Data: m})
	default:
		return ErrNotIptables
	}
	return nil
}

// ebtablesLength is the smallest ethertype; a smaller value is an 802.3 length.
const ebtablesLength = 0x0600

func (s *ebFromNft) compare(c *expr.Cmp) error {
	load, mask := s.take()
	neg := false
	switch c.Op {
	case expr.CmpOpEq:
	case expr.CmpOpNeq:
		neg = true
	default:
		// -p Length is "ethertype < 0x0600", ! -p Length ">= 0x0600".
		p, ok := load.(*expr.Payload)
		if !ok || p.Offset != 12 || p.Len != 2 || mask != nil || s.r.Proto != 0 || s.r.Length ||
			!bytes.Equal(c.Data, []byte{ebtablesLength >> 8, ebtablesLength & 0xff}) {
			return ErrNotIptables
		}
		switch c.Op {
		case expr.CmpOpLt:
		case expr.CmpOpGte:
			s.r.Inv |= EbInvProto
		default:
			return ErrNotIptables
		}
		s.r.Length = true
		return nil
	}
	switch l := load.(type) {
	case *expr.Meta:
		bit, dst := uint8(EbInvIn), &s.r.InIface
		if l.Key == expr.MetaKeyOIFNAME {
			bit, dst = EbInvOut, &s.r.OutIface
		}
		if err := setIface(dst, c.Data, mask); err != nil {
			return err
		}
		if neg {
			s.r.Inv |= bit
		}
		return nil
	case *expr.Payload:
		if len(c.Data) != int(l.Len) {
			return ErrNotIptables
		}
		switch {
		case l.Offset == 12 && l.Len == 2 && mask == nil:
			if s.r.Proto != 0 || s.r.Length {
				return ErrNotIptables
			}
			s.r.Proto = binary.BigEndian.Uint16(c.Data)
			if s.r.Proto < ebtablesLength {
				return ErrNotIptables
			}
			if neg {
				s.r.Inv |= EbInvProto
			}
			return nil
		case l.Offset == 0 || l.Offset == 6:
			m, ok := payloadMAC(l.Len, c.Data, mask)
			if !ok {
				return ErrNotIptables
			}
			dst, bit := &s.r.Dst, uint8(EbInvDst)
			if l.Offset == 6 {
				dst, bit = &s.r.Src, EbInvSrc
			}
			if !dst.IsZero() {
				return ErrNotIptables
			}
			*dst = m
			if neg {
				s.r.Inv |= bit
			}
			return nil
		}
	}
	return ErrNotIptables
}

// setIface sets -i or -o from a comparison of the interface's name.
func setIface(dst *string, data, mask []byte) error {
	name, ok := cmpIface(data)
	if mask != nil || !ok || *dst != "" {
		return ErrNotIptables
	}
	*dst = name
	return nil
}

// payloadMAC reads an address compared by its first n bytes (a mask of whole bytes), or
// whole under a bitwise mask.
func payloadMAC(n uint32, data, mask []byte) (MAC, bool) {
	var m MAC
	if n == 0 || n > 6 || (mask != nil && n != 6) {
		return m, false
	}
	copy(m.Addr[:], data)
	if mask != nil {
		copy(m.Mask[:], mask)
	} else {
		for i := 0; i < int(n); i++ {
			m.Mask[i] = 0xff
		}
	}
	for i := range m.Addr {
		if m.Addr[i]&^m.Mask[i] != 0 {
			return m, false
		}
	}
	return m, !m.IsZero()
}

// ebtablesNames are the ethertypes of Debian 12's /etc/ethertypes, whose names
// ebtables prints (a static binary does not read the file: taken as fixed here).
var ebtablesNames = map[uint16]string{
	0x0800: "IPv4", 0x0805: "X25", 0x0806: "ARP", 0x0808: "FR_ARP", 0x08FF: "BPQ", 0x22F3: "TRILL",
	0x22F4: "L2-IS-IS", 0x6558: "TEB", 0x6559: "RAW_FR", 0x8035: "RARP", 0x809B: "ATALK", 0x80F3: "AARP",
	0x8100: "802_1Q", 0x8137: "IPX", 0x8191: "NetBEUI", 0x86DD: "IPv6", 0x880B: "PPP", 0x8847: "MPLS",
	0x8848: "MPLS_MULTI", 0x884C: "ATMMPOA", 0x8863: "PPP_DISC", 0x8864: "PPP_SES", 0x8884: "ATMFATE",
	0x888E: "EAPOL", 0x88A8: "S-TAG", 0x88C7: "EAP_PREAUTH", 0x88CC: "LLDP", 0x88E5: "MACSEC", 0x88E7: "PBB",
	0x88F5: "MVRP", 0x88F7: "PTP", 0x8906: "FCOE", 0x8914: "FIP", 0x8915: "ROCE", 0xA0ED: "LoWPAN",
}

// Save renders the rule as the "-A CHAIN ..." line ebtables-nft-save (1.8.9) prints for
// it; a chain's policy rule as "-P CHAIN POLICY", the ebtables command that sets it. An
// error says ebtables-nft-save's text would not say what the rule does.
func (r BridgeRule) Save(chain string) (string, error) {
	if r.Policy {
		return "-P " + chain + " " + r.Verdict, nil
	}
	return r.save(chain)
}

// Counters are the rule's packet and byte counts.
func (r BridgeRule) Counters() (packets, bytes uint64) { return r.Packets, r.Bytes }

func (r *BridgeRule) save(chain string) (string, error) {
	var b strings.Builder
	b.WriteString("-A " + chain)
	invS := func(bit uint8) string {
		if r.Inv&bit != 0 {
			return " !"
		}
		return ""
	}
	switch {
	case r.Length:
		b.WriteString(" -p" + invS(EbInvProto) + " Length")
	case r.Proto != 0:
		name, ok := ebtablesNames[r.Proto]
		if !ok {
			name = fmt.Sprintf("0x%x", r.Proto)
		}
		b.WriteString(" -p" + invS(EbInvProto) + " " + name)
	}
	if !r.Src.IsZero() {
		b.WriteString(" -s" + invS(EbInvSrc) + " " + ebMAC(r.Src))
	}
	if !r.Dst.IsZero() {
		b.WriteString(" -d" + invS(EbInvDst) + " " + ebMAC(r.Dst))
	}
	if r.InIface != "" {
		b.WriteString(" -i" + invS(EbInvIn) + " " + r.InIface)
	}
	if r.OutIface != "" {
		b.WriteString(" -o" + invS(EbInvOut) + " " + r.OutIface)
	}
	if err := ebWatchersOrdered(r.Exts); err != nil {
		return "", err
	}
	for _, e := range r.Exts {
		f, ok := ebSavers[e.Name]
		if !ok {
			return "", fmt.Errorf("ebtables extension %s: %w", e.Name, ErrNotIptables)
		}
		s, err := f(info(e.Data))
		if err != nil {
			return "", fmt.Errorf("ebtables extension %s: %w", e.Name, err)
		}
		b.WriteString(" " + s)
	}
	if r.Target.Name == "" {
		b.WriteString(" -j " + r.Verdict)
		return b.String(), nil
	}
	f, ok := ebTargets[r.Target.Name]
	if !ok {
		return "", fmt.Errorf("ebtables target %s: %w", r.Target.Name, ErrNotIptables)
	}
	s, err := f(info(r.Target.Data))
	if err != nil {
		return "", fmt.Errorf("ebtables target %s: %w", r.Target.Name, err)
	}
	b.WriteString(" -j " + r.Target.Name + " " + s)
	return b.String(), nil
}

// ebWatchersOrdered refuses a log watcher after an nflog one: ebtables-nft-save 1.8.9
// drops it from the line.
func ebWatchersOrdered(exts []Ext) error {
	nflog := false
	for _, e := range exts {
		switch {
		case e.Name == "nflog":
			nflog = true
		case e.Name == "log" && nflog:
			return fmt.Errorf("a log watcher after an nflog one, which ebtables-nft-save does not print: %w", ErrNotIptables)
		}
	}
	return nil
}

// ebMAC prints an address and mask as ebtables does: the names of its four well-known
// pairs, else the address and, unless it is all ones, the mask.
func ebMAC(m MAC) string {
	ones := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	switch {
	case m.Addr == [6]byte{} && m.Mask == [6]byte{1}:
		return "Unicast"
	case m.Addr == [6]byte{1} && m.Mask == [6]byte{1}:
		return "Multicast"
	case m.Addr == ones && m.Mask == ones:
		return "Broadcast"
	case m.Addr == [6]byte{0x01, 0x80, 0xc2} && m.Mask == ones:
		return "BGA"
	}
	return plainMAC(m.Addr[:], m.Mask[:])
}

func macString(b []byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}
