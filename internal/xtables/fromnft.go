package xtables

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// ErrNotIptables says a table, chain or rule is not one iptables-nft would have written:
// the caller shows it in nft's syntax instead.
var ErrNotIptables = errors.New("not written by iptables-nft")

// hookNames are the built-in chains by hook (NF_INET_*), in the order iptables prints
// them.
var hookNames = []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

// builtinHooks are the built-in chains of the tables iptables-nft knows.
var builtinHooks = map[string][]nftables.ChainHook{
	"filter":   {*nftables.ChainHookInput, *nftables.ChainHookForward, *nftables.ChainHookOutput},
	"nat":      {*nftables.ChainHookPrerouting, *nftables.ChainHookInput, *nftables.ChainHookOutput, *nftables.ChainHookPostrouting},
	"mangle":   {*nftables.ChainHookPrerouting, *nftables.ChainHookInput, *nftables.ChainHookForward, *nftables.ChainHookOutput, *nftables.ChainHookPostrouting},
	"raw":      {*nftables.ChainHookPrerouting, *nftables.ChainHookOutput},
	"security": {*nftables.ChainHookInput, *nftables.ChainHookForward, *nftables.ChainHookOutput},
}

// NftTableOrder is the order iptables-nft-save prints a family's tables in.
var NftTableOrder = []string{"mangle", "security", "raw", "filter", "nat"}

// FromNft reads an iptables-nft table (an ip or ip6 table named filter, nat, mangle, raw
// or security) as iptables-nft-save does: the built-in chains in hook order, then the
// user-defined chains by name, each with its rules in order. iptables-nft makes a
// built-in chain when a rule first needs it, and iptables-nft-save prints those it has
// not made as "ACCEPT [0:0]": so does FromNft. chains and rules are the table's, as
// google/nftables lists them (those of other tables are ignored). Base chains' policy
// counters are not in google/nftables' Chain: FillPolicyCounters reads them.
func FromNft(t *nftables.Table, chains []*nftables.Chain, rules []*nftables.Rule) (*Table, error) {
	var family uint8
	switch t.Family {
	case nftables.TableFamilyIPv4:
		family = unix.NFPROTO_IPV4
	case nftables.TableFamilyIPv6:
		family = unix.NFPROTO_IPV6
	default:
		return nil, fmt.Errorf("table %s of family %d: %w", t.Name, t.Family, ErrNotIptables)
	}
	hooks, ok := builtinHooks[t.Name]
	if !ok {
		return nil, fmt.Errorf("table %s: %w (iptables has no table of that name)", t.Name, ErrNotIptables)
	}
	type chainAt struct {
		c    Chain
		hook int
	}
	var list []chainAt
	index := map[string]int{}
	for _, h := range hooks {
		index[hookNames[h]] = len(list)
		list = append(list, chainAt{c: Chain{Name: hookNames[h], Policy: "ACCEPT"}, hook: int(h)})
	}
	for _, c := range chains {
		if c.Table != nil && (c.Table.Name != t.Name || c.Table.Family != t.Family) {
			continue
		}
		i, builtin := index[c.Name]
		switch {
		case c.Hooknum != nil && (!builtin || list[i].hook != int(*c.Hooknum) || !builtinBase(t.Name, c)):
			return nil, fmt.Errorf("table %s chain %s: %w (not a built-in chain of the table)", t.Name, c.Name, ErrNotIptables)
		case c.Hooknum == nil && builtin:
			return nil, fmt.Errorf("table %s chain %s: %w (a regular chain of a built-in chain's name)", t.Name, c.Name, ErrNotIptables)
		case builtin:
			if c.Policy != nil && *c.Policy == nftables.ChainPolicyDrop {
				list[i].c.Policy = "DROP"
			}
		default:
			index[c.Name] = len(list)
			list = append(list, chainAt{c: Chain{Name: c.Name}, hook: -1})
		}
	}
	for _, r := range rules {
		if r.Table != nil && (r.Table.Name != t.Name || r.Table.Family != t.Family) {
			continue
		}
		i, err := ruleChain(t, r, index)
		if err != nil {
			return nil, err
		}
		rule, err := RuleFromNft(family, r.Exprs)
		if err != nil {
			return nil, fmt.Errorf("table %s chain %s rule %d: %w", t.Name, r.Chain.Name, r.Handle, err)
		}
		list[i].c.Rules = append(list[i].c.Rules, rule)
	}
	slices.SortStableFunc(list, func(a, b chainAt) int { return saveOrder(a.hook, b.hook, a.c.Name, b.c.Name) })
	out := &Table{Family: family, Name: t.Name}
	for _, ca := range list {
		out.Chains = append(out.Chains, ca.c)
	}
	return out, nil
}

// ruleChain is the index of a rule's chain among a table's.
func ruleChain(t *nftables.Table, r *nftables.Rule, index map[string]int) (int, error) {
	if r.Chain == nil {
		return 0, fmt.Errorf("table %s: a rule names no chain", t.Name)
	}
	i, ok := index[r.Chain.Name]
	if !ok {
		return 0, fmt.Errorf("table %s: a rule of chain %s, which is not listed", t.Name, r.Chain.Name)
	}
	return i, nil
}

// builtinBase says whether a base chain has the type and priority iptables-nft gives
// the built-in chain of its hook: iptables-nft-save prints no other table.
func builtinBase(table string, c *nftables.Chain) bool {
	prio := map[string]int32{"raw": -300, "mangle": -150, "filter": 0, "security": 50}[table]
	typ := nftables.ChainTypeFilter
	switch {
	case table == "nat":
		typ, prio = nftables.ChainTypeNAT, -100
		if *c.Hooknum == *nftables.ChainHookInput || *c.Hooknum == *nftables.ChainHookPostrouting {
			prio = 100
		}
	case table == "mangle" && *c.Hooknum == *nftables.ChainHookOutput:
		typ = nftables.ChainTypeRoute
	}
	return c.Type == typ && c.Priority != nil && int32(*c.Priority) == prio
}

// loads is what the last load of a rule's expressions put in a register, and the mask a
// bitwise expression applied to it, until a comparison takes them.
type loads struct {
	load expr.Any
	mask []byte
}

func (l *loads) bitwise(e *expr.Bitwise) error {
	if l.load == nil || l.mask != nil || len(e.Mask) != int(e.Len) || !allZero(e.Xor) {
		return ErrNotIptables
	}
	l.mask = e.Mask
	return nil
}

func (l *loads) take() (expr.Any, []byte) {
	load, mask := l.load, l.mask
	l.load, l.mask = nil, nil
	return load, mask
}

// native reads the loads ebtables-nft and arptables-nft write (the interface names, the
// header at base) and their masks; handled is false for another expression.
func (l *loads) native(e expr.Any, base expr.PayloadBase) (handled bool, err error) {
	switch e := e.(type) {
	case *expr.Meta:
		if e.SourceRegister || (e.Key != expr.MetaKeyIIFNAME && e.Key != expr.MetaKeyOIFNAME) {
			return true, ErrNotIptables
		}
		l.load, l.mask = e, nil
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad || e.Base != base {
			return true, ErrNotIptables
		}
		l.load, l.mask = e, nil
	case *expr.Bitwise:
		return true, l.bitwise(e)
	default:
		return false, nil
	}
	return true, nil
}

// toolReader is what reading an ebtables or arptables rule shares: the loads, then the
// counters and the verdict or target at the end.
type toolReader struct {
	loads
	packets, bytes uint64
	verdict        string
	target         Ext
}

// common reads the loads, the counter and the verdict; handled is false for another
// expression.
func (s *toolReader) common(e expr.Any, base expr.PayloadBase) (handled bool, err error) {
	if handled, err := s.native(e, base); handled {
		return true, err
	}
	switch e := e.(type) {
	case *expr.Counter:
		s.packets, s.bytes = e.Packets, e.Bytes
	case *expr.Verdict:
		v, isGoto, err := verdictName(e)
		if err != nil || isGoto {
			return true, ErrNotIptables
		}
		return true, s.end(v, Ext{})
	default:
		return false, nil
	}
	return true, nil
}

// end sets the rule's verdict or target: one of them, once.
func (s *toolReader) end(verdict string, target Ext) error {
	if s.verdict != "" || s.target.Name != "" {
		return ErrNotIptables
	}
	s.verdict, s.target = verdict, target
	return nil
}

// verdictName names a verdict as the iptables tools do: ACCEPT, DROP, RETURN, or the
// chain jumped (or gone) to.
func verdictName(e *expr.Verdict) (name string, isGoto bool, err error) {
	switch e.Kind {
	case expr.VerdictAccept:
		return "ACCEPT", false, nil
	case expr.VerdictDrop:
		return "DROP", false, nil
	case expr.VerdictReturn:
		return "RETURN", false, nil
	case expr.VerdictJump:
		return e.Chain, false, nil
	case expr.VerdictGoto:
		return e.Chain, true, nil
	}
	return "", false, ErrNotIptables
}

// fromNft is the state of reading one rule's expressions.
type fromNft struct {
	loads
	family uint8
	r      Rule
	// imm is the data of the last immediate into a data register (meta nftrace set).
	imm []byte
}

// RuleFromNft reads a rule's expressions as iptables-nft 1.8.9 reads back what it wrote
// (family unix.NFPROTO_IPV4 or NFPROTO_IPV6). The native expressions it writes for the
// header (-i, -o, -s, -d, -p, -f), for the tcp and udp ports and flags, the mark match,
// limit, NFLOG and TRACE become that part of the rule or that extension; match and
// target expressions become Ext with their info. Anything else is ErrNotIptables.
func RuleFromNft(family uint8, exprs []expr.Any) (Rule, error) {
	s := &fromNft{family: family}
	for i, e := range exprs {
		if err := s.add(e); err != nil {
			return Rule{}, fmt.Errorf("expression %d (%T): %w", i, e, err)
		}
	}
	if s.load != nil || s.imm != nil {
		return Rule{}, fmt.Errorf("a load or an immediate nothing uses: %w", ErrNotIptables)
	}
	return s.r, nil
}

func (s *fromNft) add(e expr.Any) error {
	switch e := e.(type) {
	case *expr.Meta:
		if e.SourceRegister {
			if e.Key != expr.MetaKeyNFTRACE || !bytes.Equal(s.imm, []byte{1}) {
				return ErrNotIptables
			}
			s.imm = nil
			return s.setTarget(Ext{Name: "TRACE"})
		}
		switch e.Key {
		case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME, expr.MetaKeyL4PROTO, expr.MetaKeyMARK:
		default:
			return ErrNotIptables
		}
		s.load, s.mask = e, nil
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad {
			return ErrNotIptables
		}
		s.load, s.mask = e, nil
	case *expr.Bitwise:
		return s.bitwise(e)
	case *expr.Cmp:
		return s.compare(e.Op, e.Data, nil)
	case *expr.Range:
		switch e.Op {
		case expr.CmpOpEq:
			return s.compare(expr.CmpOpEq, e.FromData, e.ToData)
		case expr.CmpOpNeq:
			return s.compare(expr.CmpOpNeq, e.FromData, e.ToData)
		}
		return ErrNotIptables
	case *expr.Counter:
		s.r.Packets, s.r.Bytes = e.Packets, e.Bytes
	case *expr.Immediate:
		if e.Register == 0 {
			return ErrNotIptables
		}
		s.imm = e.Data
	case *expr.Verdict:
		if s.r.Target.Name != "" || s.r.Verdict != "" {
			return ErrNotIptables
		}
		v, isGoto, err := verdictName(e)
		if err != nil {
			return err
		}
		s.r.Verdict, s.r.Goto = v, isGoto
	case *expr.Match:
		data, err := infoBytes(s.family, e.Rev, e.Info)
		if err != nil {
			return err
		}
		s.r.Matches = append(s.r.Matches, Ext{Name: e.Name, Rev: uint8(e.Rev), Data: data})
	case *expr.Target:
		data, err := infoBytes(s.family, e.Rev, e.Info)
		if err != nil {
			return err
		}
		return s.setTarget(Ext{Name: e.Name, Rev: uint8(e.Rev), Data: data})
	case *expr.Limit:
		return s.limit(e)
	case *expr.Log:
		return s.log(e)
	default:
		return ErrNotIptables
	}
	return nil
}

func (s *fromNft) setTarget(t Ext) error {
	if s.r.Target.Name != "" || s.r.Verdict != "" {
		return ErrNotIptables
	}
	s.r.Target = t
	return nil
}

// infoBytes returns an extension's info as the kernel holds it: google/nftables decodes
// some infos into types, which marshal back to the same bytes.
func infoBytes(family uint8, rev uint32, i xt.InfoAny) ([]byte, error) {
	if u, ok := i.(*xt.Unknown); ok {
		return []byte(*u), nil
	}
	if i == nil {
		return nil, nil
	}
	b, err := xt.Marshal(xt.TableFamily(family), rev, i)
	if err != nil {
		return nil, fmt.Errorf("extension info: %w", err)
	}
	return b, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// compare applies a comparison (to, for a range, its upper end) to what the last load
// read.
func (s *fromNft) compare(op expr.CmpOp, data, to []byte) error {
	load, mask := s.take()
	if load == nil {
		return ErrNotIptables
	}
	switch l := load.(type) {
	case *expr.Meta:
		if to != nil {
			return ErrNotIptables
		}
		return s.meta(l.Key, op, data, mask)
	case *expr.Payload:
		switch l.Base {
		case expr.PayloadBaseNetworkHeader:
			if to != nil || len(data) != int(l.Len) {
				return ErrNotIptables
			}
			return s.network(l, op, data, mask)
		case expr.PayloadBaseTransportHeader:
			return s.transport(l, op, data, to, mask)
		}
	}
	return ErrNotIptables
}

func invOp(op expr.CmpOp) (bool, error) {
	switch op {
	case expr.CmpOpEq:
		return false, nil
	case expr.CmpOpNeq:
		return true, nil
	}
	return false, ErrNotIptables
}

func (s *fromNft) meta(key expr.MetaKey, op expr.CmpOp, data, mask []byte) error {
	neg, err := invOp(op)
	if err != nil {
		return err
	}
	switch key {
	case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
		name, ok := cmpIface(data)
		if mask != nil || !ok {
			return ErrNotIptables
		}
		bit := uint8(InvInIface)
		dst := &s.r.InIface
		if key == expr.MetaKeyOIFNAME {
			bit, dst = InvOutIface, &s.r.OutIface
		}
		if *dst != "" {
			return ErrNotIptables
		}
		*dst = name
		if neg {
			s.r.Inv |= bit
		}
	case expr.MetaKeyL4PROTO:
		if mask != nil || len(data) != 1 || s.r.Proto != 0 {
			return ErrNotIptables
		}
		s.r.Proto = data[0]
		if neg {
			s.r.Inv |= InvProto
		}
	case expr.MetaKeyMARK:
		if len(data) != 4 || (mask != nil && len(mask) != 4) {
			return ErrNotIptables
		}
		m := info(make([]byte, 16))
		binary.NativeEndian.PutUint32(m[0:], binary.NativeEndian.Uint32(data))
		binary.NativeEndian.PutUint32(m[4:], 0xffffffff)
		if mask != nil {
			copy(m[4:8], mask)
		}
		if neg {
			m[8] = 1
		}
		s.r.Matches = append(s.r.Matches, Ext{Name: "mark", Rev: 1, Data: m})
	}
	return nil
}

// cmpIface reads an interface name compared by an iptables-nft tool: with its
// terminating NUL for a whole name, without it for a prefix (printed with a + after it).
func cmpIface(data []byte) (string, bool) {
	if len(data) == 0 || len(data) > unix.IFNAMSIZ {
		return "", false
	}
	name := string(data)
	if data[len(data)-1] == 0 {
		name = strings.TrimRight(name, "\x00")
	} else {
		name += "+"
	}
	return name, name != "" && !strings.ContainsRune(name, 0)
}

// network reads -s, -d (address and mask), -p (ip protocol, ip6 nexthdr) and -f.
func (s *fromNft) network(l *expr.Payload, op expr.CmpOp, data, mask []byte) error {
	neg, err := invOp(op)
	if err != nil {
		return err
	}
	size, src, dst, proto := 4, uint32(12), uint32(16), uint32(9)
	if s.family == unix.NFPROTO_IPV6 {
		size, src, dst, proto = 16, 8, 24, 6
	}
	switch {
	case l.Offset == src || l.Offset == dst:
		if int(l.Len) > size || l.Len == 0 {
			return ErrNotIptables
		}
		addr := make([]byte, size)
		copy(addr, data)
		m := make([]byte, size)
		if mask != nil {
			copy(m, mask)
		} else {
			for i := 0; i < int(l.Len); i++ {
				m[i] = 0xff
			}
		}
		a, _ := netip.AddrFromSlice(addr)
		ma, _ := netip.AddrFromSlice(m)
		p, pm, bit := &s.r.Src, &s.r.SrcMask, uint8(InvSrc)
		if l.Offset == dst {
			p, pm, bit = &s.r.Dst, &s.r.DstMask, InvDst
		}
		if p.IsValid() {
			return ErrNotIptables
		}
		if bits, ok := maskBits(ma); ok {
			*p = netip.PrefixFrom(a, bits)
		} else {
			*p, *pm = netip.PrefixFrom(a, a.BitLen()), ma
		}
		if neg {
			s.r.Inv |= bit
		}
	case l.Offset == proto && l.Len == 1 && mask == nil:
		if s.r.Proto != 0 {
			return ErrNotIptables
		}
		s.r.Proto = data[0]
		if neg {
			s.r.Inv |= InvProto
		}
	case s.family == unix.NFPROTO_IPV4 && l.Offset == 6 && l.Len == 2 && bytes.Equal(mask, []byte{0x1f, 0xff}) && allZero(data):
		// -f is "fragment offset != 0"; ! -f is "== 0".
		s.r.Frag = true
		if !neg {
			s.r.Inv |= InvFrag
		}
	default:
		return ErrNotIptables
	}
	return nil
}

// transport reads the tcp and udp ports and tcp flags into the rule's tcp or udp match,
// making one (ports any, no flags) at the first of them, as iptables-nft does.
func (s *fromNft) transport(l *expr.Payload, op expr.CmpOp, data, to, mask []byte) error {
	var name string
	var size, invAt int
	switch s.r.Proto {
	case unix.IPPROTO_TCP:
		name, size, invAt = "tcp", 12, 11
	case unix.IPPROTO_UDP:
		name, size, invAt = "udp", 10, 8
	default:
		return ErrNotIptables
	}
	if s.r.Inv&InvProto != 0 {
		return ErrNotIptables
	}
	var m info
	for i := range s.r.Matches {
		if s.r.Matches[i].Name == name {
			m = s.r.Matches[i].Data
			break
		}
	}
	if m == nil {
		m = make(info, size)
		binary.NativeEndian.PutUint16(m[2:], 0xffff)
		binary.NativeEndian.PutUint16(m[6:], 0xffff)
		s.r.Matches = append(s.r.Matches, Ext{Name: name, Data: m})
	}
	if len(m) < size {
		return ErrNotIptables
	}
	if name == "tcp" && l.Offset == 13 && l.Len == 1 {
		neg, err := invOp(op)
		if err != nil || to != nil || len(mask) != 1 {
			return ErrNotIptables
		}
		m[9], m[10] = mask[0], data[0]
		if neg {
			m[invAt] |= 0x04
		}
		return nil
	}
	if l.Offset == 0 && l.Len == 4 && to == nil && mask == nil && len(data) == 4 {
		// Both ports, single ones, in one comparison; iptables-nft 1.8.9 writes both
		// negated (! --sport A ! --dport B) as one "!=" and reads it back so.
		neg, err := invOp(op)
		if err != nil {
			return err
		}
		for i, at := range []int{0, 4} {
			p := binary.BigEndian.Uint16(data[2*i:])
			binary.NativeEndian.PutUint16(m[at:], p)
			binary.NativeEndian.PutUint16(m[at+2:], p)
		}
		if neg {
			m[invAt] |= 0x01 | 0x02
		}
		return nil
	}
	if l.Len != 2 || (l.Offset != 0 && l.Offset != 2) || mask != nil || len(data) != 2 {
		return ErrNotIptables
	}
	v := binary.BigEndian.Uint16(data)
	lo, hi, neg := v, v, false
	switch op {
	case expr.CmpOpEq:
	case expr.CmpOpNeq:
		neg = true
	case expr.CmpOpLte:
		lo = 0
	// iptables-nft reads the strict comparisons it writes for a negated open range
	// (! --dport :1023) as the complementary range (--dport 1024:65535).
	case expr.CmpOpGt:
		if v == 0xffff {
			return ErrNotIptables
		}
		lo, hi = v+1, 0xffff
	case expr.CmpOpGte:
		hi = 0xffff
	case expr.CmpOpLt:
		if v == 0 {
			return ErrNotIptables
		}
		lo, hi = 0, v-1
	default:
		return ErrNotIptables
	}
	if to != nil {
		if len(to) != 2 || (op != expr.CmpOpEq && op != expr.CmpOpNeq) {
			return ErrNotIptables
		}
		hi = binary.BigEndian.Uint16(to)
	}
	at, bit := 0, uint8(0x01)
	if l.Offset == 2 {
		at, bit = 4, 0x02
	}
	binary.NativeEndian.PutUint16(m[at:], lo)
	binary.NativeEndian.PutUint16(m[at+2:], hi)
	if neg {
		m[invAt] |= bit
	}
	return nil
}

// limit is the limit match (xt_rateinfo: avg in 1/10000 s per packet, burst).
func (s *fromNft) limit(e *expr.Limit) error {
	if e.Type != expr.LimitTypePkts || e.Over || e.Rate == 0 {
		return ErrNotIptables
	}
	m := make([]byte, 40)
	binary.NativeEndian.PutUint32(m[0:], uint32(10000*uint64(e.Unit)/e.Rate))
	binary.NativeEndian.PutUint32(m[4:], e.Burst)
	s.r.Matches = append(s.r.Matches, Ext{Name: "limit", Data: m})
	return nil
}

// log is NFLOG when the log statement names a group (xt_nflog_info), else LOG
// (xt_log_info).
func (s *fromNft) log(e *expr.Log) error {
	has := func(attr int) bool { return e.Key&(1<<attr) != 0 }
	prefix := strings.TrimRight(string(e.Data), "\x00")
	if has(unix.NFTA_LOG_GROUP) {
		if len(prefix) >= 64 {
			return ErrNotIptables
		}
		m := make([]byte, 76)
		binary.NativeEndian.PutUint32(m[0:], e.Snaplen)
		binary.NativeEndian.PutUint16(m[4:], e.Group)
		binary.NativeEndian.PutUint16(m[6:], e.QThreshold)
		if has(unix.NFTA_LOG_SNAPLEN) {
			binary.NativeEndian.PutUint16(m[8:], 1)
		}
		copy(m[12:], prefix)
		return s.setTarget(Ext{Name: "NFLOG", Data: m})
	}
	if len(prefix) >= 30 {
		return ErrNotIptables
	}
	m := make([]byte, 32)
	m[0] = 4
	if has(unix.NFTA_LOG_LEVEL) {
		m[0] = uint8(e.Level)
	}
	m[1] = uint8(e.Flags)
	copy(m[2:], prefix)
	return s.setTarget(Ext{Name: "LOG", Data: m})
}
