package xtables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"golang.org/x/sys/unix"
)

// The x_tables blob as the kernel hands it to IPT_SO_GET_ENTRIES / IP6T_SO_GET_ENTRIES:
// entries (struct ipt_entry / ip6t_entry, linux/netfilter_ipv4/ip_tables.h and
// netfilter_ipv6/ip6_tables.h) one after the other, each followed by its matches and its
// target (struct xt_entry_match / xt_entry_target, linux/netfilter/x_tables.h). The offsets
// below are those of a 64-bit kernel talking to a 64-bit process (XT_ALIGN is 8);
// TestLayoutMatchesKernelBTF checks them against the running kernel's BTF.
const (
	// extHeaderSize is sizeof(struct xt_entry_match) and sizeof(struct xt_entry_target):
	// a u16 size, a 29-byte name and a revision; the extension's info follows.
	extHeaderSize = 32
	extNameLen    = 29
	// getinfoSize is sizeof(struct ipt_getinfo) (ip6t_getinfo is the same): name[32],
	// valid_hooks, hook_entry[5], underflow[5], num_entries, size.
	getinfoSize     = 84
	infoValidHooks  = 32
	infoHookEntry   = 36
	infoUnderflow   = 56
	infoNumEntries  = 76
	infoSize        = 80
	tableNameLen    = 32
	getEntriesSize  = 40 // sizeof(struct ipt_get_entries): name[32], size, then the aligned entries
	getEntriesTotal = 32 // offset of its size field
	numHooks        = unix.NF_INET_NUMHOOKS
	// stdVerdictOffset is where struct xt_standard_target keeps its int verdict, and
	// xt_error_target its name.
	stdVerdictOffset = extHeaderSize
	errorNameLen     = 30
)

// Verdicts of a standard target: a negative value is -verdict-1 (NF_DROP 0, NF_ACCEPT 1,
// NF_STOLEN 2, NF_QUEUE 3, NF_REPEAT 4: XT_RETURN); a positive one is the offset of the
// entry jumped to.
var stdVerdicts = map[int32]string{-1: "DROP", -2: "ACCEPT", -3: "STOLEN", -4: "QUEUE", -5: "RETURN", -6: "STOP"}

// builtinChains are the built-in chains' names by hook number (NF_INET_*).
var builtinChains = [numHooks]string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

// layout is where one family's entry keeps each field. Both headers (struct ipt_ip,
// ip6t_ip6) start alike: source, destination, their masks, then the interfaces and their
// masks, then the protocol; the rest differs.
type layout struct {
	family                   uint8
	domain, level            int // the raw socket's family and the getsockopt level
	namesFile                string
	addrLen                  int
	flags, invflags          int
	targetOffset, nextOffset int
	counters, entrySize      int
	gotoFlag, fragFlag       uint8
}

func (l *layout) src() int      { return 0 }
func (l *layout) dst() int      { return l.addrLen }
func (l *layout) smsk() int     { return 2 * l.addrLen }
func (l *layout) dmsk() int     { return 3 * l.addrLen }
func (l *layout) inIface() int  { return 4 * l.addrLen }
func (l *layout) outIface() int { return l.inIface() + unix.IFNAMSIZ }
func (l *layout) inMask() int   { return l.inIface() + 2*unix.IFNAMSIZ }
func (l *layout) outMask() int  { return l.inIface() + 3*unix.IFNAMSIZ }
func (l *layout) proto() int    { return l.inIface() + 4*unix.IFNAMSIZ }

// The getsockopts, the same numbers for both families: IPT_SO_GET_INFO and
// IPT_SO_GET_ENTRIES, IP6T_SO_GET_INFO and IP6T_SO_GET_ENTRIES.
const (
	soGetInfo    = 64
	soGetEntries = 65
)

var (
	// ipv4Layout is struct ipt_entry, its struct ipt_ip first.
	ipv4Layout = layout{
		family: unix.NFPROTO_IPV4, domain: unix.AF_INET, level: unix.IPPROTO_IP,
		namesFile: "ip_tables_names", addrLen: 4, flags: 82, invflags: 83,
		targetOffset: 88, nextOffset: 90, counters: 96, entrySize: 112,
		gotoFlag: 0x02, fragFlag: 0x01, // IPT_F_GOTO, IPT_F_FRAG
	}
	// ipv6Layout is struct ip6t_entry: struct ip6t_ip6 has a tos byte before flags and is
	// padded to 136 bytes, and the counters are aligned to 8 after comefrom.
	ipv6Layout = layout{
		family: unix.NFPROTO_IPV6, domain: unix.AF_INET6, level: unix.IPPROTO_IPV6,
		namesFile: "ip6_tables_names", addrLen: 16, flags: 131, invflags: 132,
		targetOffset: 140, nextOffset: 142, counters: 152, entrySize: 168,
		gotoFlag: 0x04, // IP6T_F_GOTO; no fragment flag
	}
)

func layoutOf(family uint8) (*layout, error) {
	switch family {
	case unix.NFPROTO_IPV4:
		return &ipv4Layout, nil
	case unix.NFPROTO_IPV6:
		return &ipv6Layout, nil
	}
	return nil, fmt.Errorf("iptables-legacy: family %d is neither IPv4 (%d) nor IPv6 (%d)", family, unix.NFPROTO_IPV4, unix.NFPROTO_IPV6)
}

// legacyEntry is one entry of the blob, decoded.
type legacyEntry struct {
	off, next int
	rule      Rule
	// std: the target is the standard one, with verdict; errorName: an ERROR target
	// (a user chain's head, or the blob's end), with its name.
	std       bool
	verdict   int32
	isError   bool
	errorName string
	// unconditional: the header matches every packet and there is no match, as the
	// kernel requires of a policy.
	unconditional bool
}

var xtEndian = binary.NativeEndian

func xtString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseLegacy builds the table from the kernel's answers to GET_INFO (info) and
// GET_ENTRIES (blob, the entries without the ipt_get_entries header), as libiptc reads
// them for iptables-legacy-save: a built-in chain runs from its hook entry to its underflow,
// whose standard verdict is the policy; a user chain from its ERROR-target head to the
// unconditional RETURN libiptc ends it with; a last ERROR entry ends the blob.
func parseLegacy(l *layout, table string, info, blob []byte) (*Table, error) {
	if len(info) != getinfoSize {
		return nil, fmt.Errorf("iptables-legacy table %s: info of %d bytes, want %d", table, len(info), getinfoSize)
	}
	valid := xtEndian.Uint32(info[infoValidHooks:])
	var hookEntry, underflow [numHooks]int
	for h := range numHooks {
		hookEntry[h] = int(xtEndian.Uint32(info[infoHookEntry+4*h:]))
		underflow[h] = int(xtEndian.Uint32(info[infoUnderflow+4*h:]))
	}
	entries, err := parseEntries(l, blob)
	if err != nil {
		return nil, fmt.Errorf("iptables-legacy table %s: %w", table, err)
	}
	if n := xtEndian.Uint32(info[infoNumEntries:]); int(n) != len(entries) {
		return nil, fmt.Errorf("iptables-legacy table %s: %d entries, the kernel said %d", table, len(entries), n)
	}
	hookAt := map[int]int{}
	for h := range numHooks {
		if valid&(1<<h) != 0 {
			hookAt[hookEntry[h]] = h
		}
	}

	// span is one chain's entries; first and last bound the offsets a jump into it names.
	type span struct {
		chain       Chain
		hook        int // -1 for a user chain
		first, last int
		entries     []*legacyEntry
	}
	var spans []*span
	var cur *span
	closeSpan := func() error {
		if cur == nil {
			return nil
		}
		if cur.hook >= 0 {
			return fmt.Errorf("iptables-legacy table %s: chain %s has no policy at offset %d", table, cur.chain.Name, underflow[cur.hook])
		}
		// libiptc ends every user chain with an unconditional RETURN that
		// iptables-save does not print.
		if n := len(cur.entries); n > 0 {
			if e := cur.entries[n-1]; e.std && e.verdict == -5 && e.unconditional {
				cur.entries = cur.entries[:n-1]
			}
		}
		spans = append(spans, cur)
		cur = nil
		return nil
	}
	for i, e := range entries {
		if h, ok := hookAt[e.off]; ok {
			if err := closeSpan(); err != nil {
				return nil, err
			}
			cur = &span{chain: Chain{Name: builtinChains[h]}, hook: h, first: e.off}
		} else if e.isError {
			if err := closeSpan(); err != nil {
				return nil, err
			}
			if i == len(entries)-1 {
				break
			}
			cur = &span{chain: Chain{Name: e.errorName}, hook: -1, first: e.off, last: e.off}
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("iptables-legacy table %s: the entry at offset %d belongs to no chain", table, e.off)
		}
		cur.last = e.off
		if cur.hook >= 0 && e.off == underflow[cur.hook] {
			policy, ok := stdVerdicts[e.verdict]
			if !e.std || !e.unconditional || e.verdict >= 0 || !ok {
				return nil, fmt.Errorf("iptables-legacy table %s: chain %s's policy at offset %d is not an unconditional standard verdict", table, cur.chain.Name, e.off)
			}
			cur.chain.Policy = policy
			cur.chain.Packets, cur.chain.Bytes = e.rule.Packets, e.rule.Bytes
			spans = append(spans, cur)
			cur = nil
			continue
		}
		cur.entries = append(cur.entries, e)
	}
	if cur != nil {
		return nil, fmt.Errorf("iptables-legacy table %s: chain %s is not ended by an ERROR entry", table, cur.chain.Name)
	}

	// A jump names an offset inside the chain jumped to (libiptc: its first rule, just
	// after the head). The spans are in the blob's order here: search them (kube-proxy's
	// tables have thousands of chains).
	chainAt := func(off int) (string, bool) {
		i := sort.Search(len(spans), func(i int) bool { return spans[i].last >= off })
		if i < len(spans) && spans[i].first <= off {
			return spans[i].chain.Name, true
		}
		return "", false
	}
	t := &Table{Family: l.family, Name: table}
	for _, s := range spans {
		for _, e := range s.entries {
			r := e.rule
			if e.std {
				switch {
				case e.verdict < 0:
					v, ok := stdVerdicts[e.verdict]
					if !ok {
						return nil, fmt.Errorf("iptables-legacy table %s: chain %s: standard verdict %d at offset %d is no netfilter verdict", table, s.chain.Name, e.verdict, e.off)
					}
					r.Verdict = v
				case int(e.verdict) == e.off+e.next:
					// No target: libiptc jumps to the next entry.
				default:
					name, ok := chainAt(int(e.verdict))
					if !ok {
						return nil, fmt.Errorf("iptables-legacy table %s: chain %s: the jump at offset %d to %d lands in no chain", table, s.chain.Name, e.off, e.verdict)
					}
					r.Verdict = name
				}
			} else if e.isError {
				return nil, fmt.Errorf("iptables-legacy table %s: chain %s: an ERROR target at offset %d inside the chain", table, s.chain.Name, e.off)
			}
			// The goto flag means something only for a jump to a chain.
			r.Goto = r.Goto && e.std && e.verdict >= 0 && r.Verdict != ""
			s.chain.Rules = append(s.chain.Rules, r)
		}
	}
	// iptables-legacy-save's order: built-ins in hook order, then user chains sorted by
	// name, as libiptc keeps them (and writes them to the kernel).
	slices.SortStableFunc(spans, func(a, b *span) int { return saveOrder(a.hook, b.hook, a.chain.Name, b.chain.Name) })
	for _, s := range spans {
		t.Chains = append(t.Chains, s.chain)
	}
	return t, nil
}

// parseEntries decodes each entry of the blob, checking every size against its bounds.
func parseEntries(l *layout, blob []byte) ([]*legacyEntry, error) {
	var entries []*legacyEntry
	for off := 0; off < len(blob); {
		if len(blob)-off < l.entrySize {
			return nil, fmt.Errorf("truncated entry at offset %d", off)
		}
		b := blob[off:]
		to, next := int(xtEndian.Uint16(b[l.targetOffset:])), int(xtEndian.Uint16(b[l.nextOffset:]))
		if to < l.entrySize || next < to+extHeaderSize || next > len(b) {
			return nil, fmt.Errorf("entry at offset %d: target offset %d and size %d do not fit", off, to, next)
		}
		e := &legacyEntry{off: off, next: next}
		if err := decodeHeader(l, b, &e.rule); err != nil {
			return nil, fmt.Errorf("entry at offset %d: %w", off, err)
		}
		for m := l.entrySize; m < to; {
			ext, size, err := decodeExt(b[m:to])
			if err != nil {
				return nil, fmt.Errorf("entry at offset %d, match at %d: %w", off, m, err)
			}
			e.rule.Matches = append(e.rule.Matches, ext)
			m += size
		}
		target, _, err := decodeExt(b[to:next])
		if err != nil {
			return nil, fmt.Errorf("entry at offset %d, target: %w", off, err)
		}
		switch target.Name {
		case "": // XT_STANDARD_TARGET
			if len(target.Data) < 4 {
				return nil, fmt.Errorf("entry at offset %d: standard target of %d bytes", off, len(target.Data))
			}
			e.std, e.verdict = true, int32(xtEndian.Uint32(target.Data))
		case "ERROR": // XT_ERROR_TARGET
			e.isError, e.errorName = true, xtString(target.Data[:min(len(target.Data), errorNameLen)])
		default:
			e.rule.Target = target
		}
		// As the kernel's unconditional(): the whole ipt_ip (ip6t_ip6) zero, no match.
		e.unconditional = to == l.entrySize && allZero(b[:l.invflags+1])
		e.rule.Packets = xtEndian.Uint64(b[l.counters:])
		e.rule.Bytes = xtEndian.Uint64(b[l.counters+8:])
		entries = append(entries, e)
		off += next
	}
	return entries, nil
}

// decodeExt reads one xt_entry_match or xt_entry_target and returns it and its size. The
// info is what the kernel copied out: its XT_ALIGNed size, private parts zeroed.
func decodeExt(b []byte) (Ext, int, error) {
	if len(b) < extHeaderSize {
		return Ext{}, 0, fmt.Errorf("%d bytes left, less than an extension header", len(b))
	}
	size := int(xtEndian.Uint16(b))
	if size < extHeaderSize || size > len(b) {
		return Ext{}, 0, fmt.Errorf("extension size %d does not fit in %d bytes", size, len(b))
	}
	return Ext{
		Name: xtString(b[2 : 2+extNameLen]),
		Rev:  b[2+extNameLen],
		Data: bytes.Clone(b[extHeaderSize:size]),
	}, size, nil
}

// decodeHeader fills the rule's -s -d -i -o -p -f and their inversions.
func decodeHeader(l *layout, b []byte, r *Rule) error {
	inv := b[l.invflags]
	field := func(off, n int) []byte { return b[off : off+n] }
	r.Src, r.SrcMask = maskedPrefix(field(l.src(), l.addrLen), field(l.smsk(), l.addrLen), inv&InvSrc != 0)
	r.Dst, r.DstMask = maskedPrefix(field(l.dst(), l.addrLen), field(l.dmsk(), l.addrLen), inv&InvDst != 0)
	r.InIface = ifaceName(field(l.inIface(), unix.IFNAMSIZ), field(l.inMask(), unix.IFNAMSIZ))
	r.OutIface = ifaceName(field(l.outIface(), unix.IFNAMSIZ), field(l.outMask(), unix.IFNAMSIZ))
	proto := xtEndian.Uint16(b[l.proto():])
	if proto > 0xff {
		return fmt.Errorf("protocol %d is no IP protocol", proto)
	}
	r.Proto = uint8(proto)
	flags := b[l.flags]
	r.Frag = l.fragFlag != 0 && flags&l.fragFlag != 0
	r.Goto = flags&l.gotoFlag != 0
	r.Inv = inv & (InvInIface | InvOutIface | InvSrc | InvDst | InvProto | InvFrag)
	return nil
}

// maskedPrefix turns an address and its mask into a Prefix: the zero Prefix for any address,
// unless negated (! -s 0.0.0.0/0 matches nothing, and says so). A mask that is not a
// prefix (-s 198.51.0.0/255.255.0.255) is returned beside the address at its full length,
// as the model keeps it.
func maskedPrefix(addr, mask []byte, inverted bool) (netip.Prefix, netip.Addr) {
	a, _ := netip.AddrFromSlice(addr)
	m, _ := netip.AddrFromSlice(mask)
	ones, ok := maskBits(m)
	switch {
	case !ok:
		return netip.PrefixFrom(a, a.BitLen()), m
	case ones == 0 && !inverted:
		return netip.Prefix{}, netip.Addr{}
	}
	return netip.PrefixFrom(a, ones).Masked(), netip.Addr{}
}

// ifaceName is -i/-o as iptables prints it: the name's bytes under the mask, and a + when
// the mask ends before the name does (a prefix match).
func ifaceName(name, mask []byte) string {
	if mask[0] == 0 {
		return ""
	}
	var s []byte
	for i := range name {
		if mask[i] == 0 {
			if name[i-1] != 0 {
				s = append(s, '+')
			}
			break
		}
		if name[i] != 0 {
			s = append(s, name[i])
		}
	}
	return string(s)
}
