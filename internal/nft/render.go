package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file turns a rule's expressions back into nft syntax, the way `nft list ruleset`
// (nftables 1.0.x) prints them: it follows registers from loads to comparisons, names
// header fields from the protocol context, and hides the dependencies nft adds and hides
// itself (meta nfproto before an ip header match, meta l4proto before a tcp one).
//
// It renders only what it understands completely. Any other expression, or a known one
// used in a way not handled here, makes the whole rule fail with notDecoded: the caller
// prints the handle and the names instead. A partial rule could read as a different rule.

// ruleExpr is one expression of a rule: a decoded google/nftables expression, or only its
// name when this package cannot decode it faithfully (Expr nil).
type ruleExpr struct {
	Name string
	Expr expr.Any
	// Raw are the attributes of an expression google/nftables does not decode (Expr
	// nil), for this package's own decoders.
	Raw rawAttrs
}

// verdictData is a verdict stored in a verdict map element.
type verdictData struct {
	Code  int32
	Chain string
}

// setElem is one element of a set or map as the kernel dumps it.
type setElem struct {
	Key []byte
	// End marks the first value after an interval (NFT_SET_ELEM_INTERVAL_END).
	End bool
	// KeyEnd is the last value of an interval of a concatenation (NFTA_SET_ELEM_KEY_END).
	KeyEnd  []byte
	Data    []byte
	Verdict *verdictData
	// ObjRef names the object an element of an object map refers to.
	ObjRef string
}

// setInfo is a set or map of a table; Elems are fetched for anonymous sets only.
type setInfo struct {
	Name     string
	Flags    uint32
	KeyLen   uint32
	DataType uint32
	DataLen  uint32
	ObjType  uint32
	Elems    []setElem
	// ElemsErr is why Elems could not be fetched.
	ElemsErr error
}

const (
	nftSetConcat     = 0x80       // NFT_SET_CONCAT
	nftDataVerdict   = 0xffffff00 // NFT_DATA_VERDICT, the data type of a verdict map
	nftRegVerdict    = 0
	udataRuleComment = 0 // NFTNL_UDATA_RULE_COMMENT
)

func (s *setInfo) anonymous() bool { return s.Flags&unix.NFT_SET_ANONYMOUS != 0 }
func (s *setInfo) interval() bool  { return s.Flags&unix.NFT_SET_INTERVAL != 0 }
func (s *setInfo) isMap() bool     { return s.Flags&unix.NFT_SET_MAP != 0 }

// Env is what a rule's rendering needs besides its expressions.
type Env struct {
	// Family is the table family (NFPROTO_INET, NFPROTO_IPV4, ...).
	Family uint8
	// Sets are the table's sets by name.
	Sets map[string]*setInfo
	// IfName names an interface index for iif/oif; nil or false prints the number.
	IfName func(index uint32) (string, bool)
}

// notDecoded lists the expressions a rule could not be rendered from.
type notDecoded struct{ names []string }

func (e *notDecoded) Error() string {
	return "expressions not decoded: " + strings.Join(e.names, ", ")
}

// Undecoded is the honest stand-in for a rule that could not be rendered.
func Undecoded(handle uint64, err error) string {
	return fmt.Sprintf("handle %d # (%v)", handle, err)
}

// ruleComment extracts the comment from a rule's userdata (NFTNL_UDATA_RULE_COMMENT TLV).
func ruleComment(udata []byte) string {
	for len(udata) >= 2 {
		typ, n := udata[0], int(udata[1])
		if len(udata) < 2+n {
			return ""
		}
		if typ == udataRuleComment {
			return string(bytes.TrimRight(udata[2:2+n], "\x00"))
		}
		udata = udata[2+n:]
	}
	return ""
}

// Render renders a rule's expressions (and comment) in nft syntax.
func Render(env Env, exprs []ruleExpr, comment string) (string, error) {
	r := &renderer{env: env, regs: map[uint32]regVal{}}
	switch env.Family {
	case unix.NFPROTO_IPV4, unix.NFPROTO_IPV6:
		r.net = env.Family
	}
	for r.i = 0; r.i < len(exprs); r.i++ {
		e := exprs[r.i]
		if e.Expr == nil && e.Raw == nil {
			return "", r.fail(exprs)
		}
		if err := r.step(exprs); err != nil {
			return "", r.fail(exprs)
		}
	}
	var parts []string
	printed := false
	for _, s := range r.out {
		switch s {
		case "":
		case emptyStmt:
			parts = append(parts, "")
		default:
			parts = append(parts, s)
			printed = true
		}
	}
	if comment != "" {
		parts = append(parts, "comment "+strconv.Quote(comment))
		printed = true
	}
	if !printed {
		return "", &notDecoded{names: []string{"(empty rule)"}}
	}
	return strings.Join(parts, " "), nil
}

// fail names the rule's expressions: the rule as a whole could not be rendered (the
// expression that failed is exprs[r.i]; a rule is only shown whole or not at all).
func (r *renderer) fail(exprs []ruleExpr) error {
	var names []string
	for _, e := range exprs {
		names = append(names, e.Name)
	}
	return &notDecoded{names: names}
}

type regKind int

const (
	rvPayload regKind = iota + 1
	rvMeta
	rvCt
	rvImm
	// rvField is any other loaded value, named and typed when loaded (numgen, fib, ...).
	rvField
)

// regVal is what a register holds: a loaded header field or meta/ct key, possibly
// masked, or immediate data. net and l4 are the protocol context at load time.
type regVal struct {
	kind    regKind
	base    expr.PayloadBase
	off, n  uint32
	meta    expr.MetaKey
	ct      expr.CtKey
	data    []byte
	mask    []byte
	net, l4 uint8
	f       field
	// xor is a bitwise xor after the mask (a mark set's "| 0x10"); hton a byteorder
	// conversion to network order.
	xor  []byte
	hton bool
	// shift is a bitwise shift nft prints after the value (" >> 8").
	shift string
	// ether and arp say a link or network header load was in an ethernet or an ARP
	// context, where nft names the fields, vlan after a vlan ether type; icmp the icmp
	// types matched before it.
	ether, arp, vlan bool
	icmp             []uint8
}

type dep struct {
	idx int
	v   uint8
	ok  bool
}

type renderer struct {
	env  Env
	i    int
	regs map[uint32]regVal
	out  []string
	// net is the network protocol (NFPROTO_IPV4/6) known from the family or a match;
	// l4 the transport protocol known from an equality match (0: unknown).
	net, l4 uint8
	// netDep and l4Dep are matches nft would hide when a header match that implies them
	// follows.
	netDep, l4Dep dep
	// llDep is the "meta iiftype ether" nft adds before an ethernet header match; ether
	// says one was met.
	llDep dep
	ether bool
	// vlanDep is the "ether type 8021q" before a vlan header match; vlan says one was met.
	vlanDep dep
	vlan    bool
	// icmpTypes are the icmp or icmpv6 types a match allowed; icmpDep that match when it
	// was on one type.
	icmpTypes []uint8
	icmpDep   dep
}

var errUnsupported = fmt.Errorf("unsupported")

func (r *renderer) emit(s string) int {
	r.out = append(r.out, s)
	return len(r.out) - 1
}

func (r *renderer) step(exprs []ruleExpr) error {
	if exprs[r.i].Expr == nil {
		return r.native(exprs[r.i])
	}
	switch e := exprs[r.i].Expr.(type) {
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad || e.DestRegister == 0 || e.Len == 0 {
			return errUnsupported
		}
		r.setReg(e.DestRegister, regVal{kind: rvPayload, base: e.Base, off: e.Offset, n: e.Len, net: r.net, l4: r.l4,
			ether: r.ether || r.env.Family == unix.NFPROTO_BRIDGE, arp: r.env.Family == unix.NFPROTO_ARP, icmp: r.icmpTypes, vlan: r.vlan}, e.Len)
	case *expr.Meta:
		if e.SourceRegister {
			return r.metaSet(e)
		}
		f, ok := metaField(e.Key)
		if !ok {
			f.size = 16
		}
		r.setReg(e.Register, regVal{kind: rvMeta, meta: e.Key}, f.size)
	case *expr.Ct:
		if e.SourceRegister {
			return errUnsupported
		}
		r.setReg(e.Register, regVal{kind: rvCt, ct: e.Key}, 16)
	case *expr.Bitwise:
		v, ok := r.regs[e.SourceRegister]
		if !ok || v.kind == rvImm || v.mask != nil || v.shift != "" || v.hton || len(e.Mask) == 0 || len(e.Xor) != len(e.Mask) {
			return errUnsupported
		}
		v.mask = e.Mask
		if !allZero(e.Xor) {
			v.xor = e.Xor
		}
		r.setReg(e.DestRegister, v, e.Len)
	case *expr.Immediate:
		if e.Register == nftRegVerdict {
			return errUnsupported
		}
		r.setReg(e.Register, regVal{kind: rvImm, data: e.Data}, uint32(len(e.Data)))
	case *expr.Cmp:
		// nft turns "a-b" into cmp gte a, cmp lte b on the same register.
		if e.Op == expr.CmpOpGte && r.i+1 < len(exprs) {
			if next, ok := exprs[r.i+1].Expr.(*expr.Cmp); ok && next.Op == expr.CmpOpLte && next.Register == e.Register {
				r.i++
				return r.rangeMatch(e.Register, "", e.Data, next.Data)
			}
		}
		return r.cmp(e)
	case *expr.Range:
		op := ""
		switch e.Op {
		case expr.CmpOpEq:
		case expr.CmpOpNeq:
			op = "!= "
		default:
			return errUnsupported
		}
		return r.rangeMatch(e.Register, op, e.FromData, e.ToData)
	case *expr.Lookup:
		return r.lookup(e)
	case *expr.Counter:
		r.emit(fmt.Sprintf("counter packets %d bytes %d", e.Packets, e.Bytes))
	case *expr.Log:
		return r.log(e)
	case *expr.Limit:
		return r.limit(e)
	case *expr.Reject:
		return r.reject(e)
	case *expr.Notrack:
		r.emit("notrack")
	case *expr.Match:
		return r.xtMatch(e)
	case *expr.Target:
		return r.xtTarget(e)
	case *expr.Verdict:
		switch e.Kind {
		case expr.VerdictAccept, expr.VerdictDrop, expr.VerdictContinue, expr.VerdictReturn:
		case expr.VerdictJump, expr.VerdictGoto:
			if e.Chain == "" {
				return errUnsupported
			}
		default:
			return errUnsupported
		}
		r.emit(VerdictString(int32(e.Kind), e.Chain))
	default:
		return errUnsupported
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var opStrings = map[expr.CmpOp]string{
	expr.CmpOpEq: "", expr.CmpOpNeq: "!= ", expr.CmpOpLt: "< ", expr.CmpOpLte: "<= ",
	expr.CmpOpGt: "> ", expr.CmpOpGte: ">= ",
}

func (r *renderer) cmp(e *expr.Cmp) error {
	v, ok := r.regs[e.Register]
	if !ok || v.kind == rvImm || v.xor != nil || v.shift != "" {
		return errUnsupported
	}
	op, ok := opStrings[e.Op]
	if !ok {
		return errUnsupported
	}
	if (v.kind == rvPayload || v.kind == rvField) && v.mask != nil {
		if b, ok := findBitField(v); ok {
			return r.bitCmp(b, e, op)
		}
	}
	if v.kind == rvPayload {
		fs, prefix, err := payloadFields(v)
		if err != nil {
			return err
		}
		switch {
		case prefix || (v.mask != nil && (fs[0].typ == tAddr4 || fs[0].typ == tAddr6)):
			if len(fs) != 1 || (op != "" && op != "!= ") {
				return errUnsupported
			}
			s, err := prefixString(fs[0], v, e.Data)
			if err != nil {
				return err
			}
			r.match(fs[0], fs[0].name+" "+op+s, e.Op, nil)
			return nil
		case len(fs) > 1:
			// nft merges adjacent equality matches into one load.
			if e.Op != expr.CmpOpEq || v.mask != nil || uint32(len(e.Data)) != v.n {
				return errUnsupported
			}
			data := e.Data
			for _, f := range fs {
				s, err := formatValue(r.env, f.typ, data[:f.size])
				if err != nil {
					return err
				}
				r.match(f, f.name+" "+s, e.Op, data[:f.size])
				data = data[f.size:]
			}
			return nil
		}
		return r.fieldCmp(fs[0], v.mask, e.Op, op, e.Data)
	}
	f, err := simpleFieldKey(v)
	if err != nil {
		return err
	}
	if (v.mask != nil || uint32(len(e.Data)) < f.size) && (f.typ == tAddr4 || f.typ == tAddr6) && (op == "" || op == "!= ") {
		// An address prefix of a ct or ipsec address ("ct reply ip6 daddr 2001:db8::/32"):
		// nft compares the first bytes, masked when the prefix ends inside a byte.
		s, err := prefixString(f, regVal{n: uint32(len(e.Data)), mask: v.mask}, e.Data)
		if err != nil {
			return err
		}
		r.match(f, f.name+" "+op+s, e.Op, nil)
		return nil
	}
	return r.fieldCmp(f, v.mask, e.Op, op, e.Data)
}

// simpleFieldKey is the meta or ct field of a register, mask allowed.
func simpleFieldKey(v regVal) (field, error) {
	w := v
	w.mask = nil
	return simpleField(w)
}

// fieldCmp renders a comparison of a whole field (possibly masked) with data.
func (r *renderer) fieldCmp(f field, mask []byte, cop expr.CmpOp, op string, data []byte) error {
	if f.typ == tIfname && mask == nil && (cop == expr.CmpOpEq || cop == expr.CmpOpNeq) && len(data) > 0 && len(data) < int(f.size) {
		// A shorter comparison is a prefix match: iifname "veth*".
		s, err := formatValue(r.env, tIfname, data)
		if err != nil {
			return err
		}
		r.match(f, f.name+" "+op+s, cop, nil)
		return nil
	}
	if f.typ == tExists && mask == nil && (len(data) == 1 || len(data) == 4) {
		// A boolean compares one byte or the whole 32-bit register, as its loader stored it.
		f.size = uint32(len(data))
	}
	if uint32(len(data)) != f.size || (mask != nil && uint32(len(mask)) != f.size) {
		return errUnsupported
	}
	data = f.host(data)
	switch f.typ {
	case tTCPFlags, tCtState, tCtStatus:
		return r.flagCmp(f, mask, cop, data)
	case tCtLabel:
		// "ct label 3": the label's bit masked, compared with zero.
		if cop != expr.CmpOpNeq || !allZero(data) {
			return errUnsupported
		}
		s, err := formatValue(r.env, tCtLabel, mask)
		if err != nil {
			return err
		}
		r.match(f, f.name+" "+s, cop, nil)
		return nil
	}
	if mask != nil {
		// "meta mark & 0x000000ff == 0x00000001", "@nh,0,8 & 0xf0 == 0x40",
		// "ip frag-off & 8191 != 0"
		if (f.typ != tHex32 && f.typ != tRawHex && f.typ != tInt) || (cop != expr.CmpOpEq && cop != expr.CmpOpNeq) {
			return errUnsupported
		}
		m, _ := formatValue(r.env, f.typ, mask)
		s, _ := formatValue(r.env, f.typ, data)
		o := "=="
		if cop == expr.CmpOpNeq {
			o = "!="
		}
		r.match(f, fmt.Sprintf("%s & %s %s %s", f.name, m, o, s), cop, nil)
		return nil
	}
	s, err := formatValue(r.env, f.typ, data)
	if err != nil {
		return err
	}
	r.match(f, f.name+" "+op+s, cop, data)
	return nil
}

// flagValue reads a flag field: one byte (tcp flags) or a host-order u32 (ct).
func flagValue(f field, b []byte) uint32 {
	if f.size == 1 {
		return uint32(b[0])
	}
	return hostUint(b)
}

func flagBits(f field) []bit {
	switch f.typ {
	case tTCPFlags:
		return tcpFlagBits
	case tCtState:
		return ctStateBits
	}
	return ctStatusBits
}

// flagCmp renders tcp flags, ct state and ct status matches the way nft 1.0 prints them.
func (r *renderer) flagCmp(f field, mask []byte, cop expr.CmpOp, data []byte) error {
	bitsOf := flagBits(f)
	v := flagValue(f, data)
	if mask != nil {
		m := flagValue(f, mask)
		mn, ok := bitNames(bitsOf, m)
		if !ok {
			return errUnsupported
		}
		switch {
		case cop == expr.CmpOpNeq && v == 0: // "ct state established,related"
			r.match(f, f.name+" "+mn, cop, nil)
		case cop == expr.CmpOpEq && v == 0: // "tcp flags ! syn"
			r.match(f, f.name+" ! "+mn, cop, nil)
		case cop == expr.CmpOpEq && f.typ == tTCPFlags && v&^m == 0: // "tcp flags syn / syn,ack"
			vn, ok := bitNames(bitsOf, v)
			if !ok {
				return errUnsupported
			}
			r.match(f, f.name+" "+vn+" / "+mn, cop, nil)
		default:
			return errUnsupported
		}
		return nil
	}
	if cop != expr.CmpOpEq && cop != expr.CmpOpNeq {
		return errUnsupported
	}
	o := "== "
	if cop == expr.CmpOpNeq {
		o = "!= "
	}
	if bits.OnesCount32(v) == 1 {
		n, ok := bitNames(bitsOf, v)
		if !ok {
			return errUnsupported
		}
		r.match(f, f.name+" "+o+n, cop, nil)
		return nil
	}
	if f.typ == tTCPFlags && cop == expr.CmpOpEq {
		// nft prints a multi-flag equality as a number: "tcp flags == 0x12".
		r.match(f, fmt.Sprintf("%s == 0x%02x", f.name, v), cop, nil)
		return nil
	}
	return errUnsupported
}

// prefixString renders an address prefix match: the load covers the first bytes of the
// field, a mask (if any) must be a prefix mask.
func prefixString(f field, v regVal, data []byte) (string, error) {
	if uint32(len(data)) != v.n {
		return "", errUnsupported
	}
	ones := int(v.n) * 8
	if v.mask != nil {
		if uint32(len(v.mask)) != v.n {
			return "", errUnsupported
		}
		ones = 0
		ended := false
		for _, b := range v.mask {
			k := bits.OnesCount8(b)
			if b != byte(0xff<<(8-k)) || (ended && k > 0) {
				// Not of the form 11..1100..00.
				return "", errUnsupported
			}
			ended = ended || k < 8
			ones += k
		}
	}
	full := make([]byte, f.size)
	copy(full, data)
	if v.mask != nil {
		for i := range v.mask {
			full[i] &= v.mask[i]
		}
	}
	if f.typ == tEther {
		// "ether daddr 01:00:00:00:00:00/8"
		return fmt.Sprintf("%s/%d", net.HardwareAddr(full), ones), nil
	}
	a, ok := netip.AddrFromSlice(full)
	if !ok {
		return "", errUnsupported
	}
	return netip.PrefixFrom(a, ones).String(), nil
}

// match records a match statement and updates the protocol context and dependencies.
// data is the compared value for equality matches of whole fields (nil otherwise).
func (r *renderer) match(f field, s string, cop expr.CmpOp, data []byte) {
	r.hideDeps(f)
	idx := r.emit(s)
	if cop != expr.CmpOpEq || data == nil {
		return
	}
	r.learn(f, idx, data)
}

// hideDeps hides the dependencies a match on field f makes redundant, as nft does.
func (r *renderer) hideDeps(f field) {
	if f.layer == layerVlan && r.vlanDep.ok {
		r.out[r.vlanDep.idx] = ""
		r.vlanDep.ok = false
	}
	if f.icmpDep && r.icmpDep.ok {
		r.out[r.icmpDep.idx] = ""
		r.icmpDep.ok = false
	}
	switch f.layer {
	case layerLink:
		if r.llDep.ok {
			r.out[r.llDep.idx] = ""
			r.llDep.ok = false
		}
	case 1:
		if r.netDep.ok && r.netDep.v == f.net {
			r.out[r.netDep.idx] = ""
			r.netDep.ok = false
		}
	case 2:
		if r.l4Dep.ok && r.l4Dep.v == f.l4 {
			r.out[r.l4Dep.idx] = ""
			r.l4Dep.ok = false
		}
		if r.netDep.ok && ((f.l4 == unix.IPPROTO_ICMP && r.netDep.v == unix.NFPROTO_IPV4) ||
			(f.l4 == unix.IPPROTO_ICMPV6 && r.netDep.v == unix.NFPROTO_IPV6)) {
			r.out[r.netDep.idx] = ""
			r.netDep.ok = false
		}
	}
}

// learn updates the protocol context after an equality match on f (emitted at idx).
func (r *renderer) learn(f field, idx int, data []byte) {
	switch f.name {
	case "meta nfproto":
		switch r.env.Family {
		case unix.NFPROTO_INET, unix.NFPROTO_BRIDGE, unix.NFPROTO_NETDEV:
			r.net = data[0]
			r.netDep = dep{idx: idx, v: data[0], ok: true}
		}
	case "meta l4proto":
		r.l4 = data[0]
		r.l4Dep = dep{idx: idx, v: data[0], ok: true}
	case "ip protocol":
		r.l4 = data[0]
		if r.env.Family == unix.NFPROTO_IPV4 {
			r.l4Dep = dep{idx: idx, v: data[0], ok: true}
		}
	case "ip6 nexthdr":
		r.l4 = data[0]
		if r.env.Family == unix.NFPROTO_IPV6 {
			r.l4Dep = dep{idx: idx, v: data[0], ok: true}
		}
	case "icmp type", "icmpv6 type":
		r.icmpTypes = []uint8{data[0]}
		r.icmpDep = dep{idx: idx, v: data[0], ok: true}
	case "ether type":
		// A vlan header follows: nft hides this match (8021q, its own dependency) before
		// a vlan id, pcp or dei.
		switch binary.BigEndian.Uint16(data) {
		case 0x8100:
			r.vlan = true
			r.vlanDep = dep{idx: idx, ok: true}
		case 0x88a8:
			r.vlan = true
		}
	case "meta protocol", "vlan type":
		// nft's network dependency in bridge and netdev tables.
		if r.env.Family != unix.NFPROTO_BRIDGE && r.env.Family != unix.NFPROTO_NETDEV {
			return
		}
		switch binary.BigEndian.Uint16(data) {
		case 0x0800:
			r.net = unix.NFPROTO_IPV4
		case 0x86dd:
			r.net = unix.NFPROTO_IPV6
		default:
			return
		}
		r.netDep = dep{idx: idx, v: r.net, ok: true}
	case "meta iiftype":
		// nft's dependency for an ethernet header match in inet, ip, ip6 and netdev tables.
		if binary.NativeEndian.Uint16(data) == 1 {
			r.llDep = dep{idx: idx, v: 1, ok: true}
			r.ether = true
		}
	}
}

func (r *renderer) rangeMatch(reg uint32, op string, from, to []byte) error {
	v, ok := r.regs[reg]
	if ok && (v.kind == rvPayload || v.kind == rvField) && v.mask != nil && v.xor == nil && v.shift == "" {
		return r.bitRange(v, op, from, to)
	}
	if !ok || v.mask != nil || v.xor != nil || v.shift != "" {
		return errUnsupported
	}
	f, err := simpleField(v)
	if err != nil {
		return err
	}
	switch f.typ {
	case tInt, tHostInt, tAddr4, tAddr6, tProto, tHex32, tTimeMs, tTimeNs, tHour:
	default:
		return errUnsupported
	}
	if uint32(len(from)) != f.size || uint32(len(to)) != f.size {
		return errUnsupported
	}
	from, to = f.host(from), f.host(to)
	a, err := formatValue(r.env, f.typ, from)
	if err != nil {
		return err
	}
	b, err := formatValue(r.env, f.typ, to)
	if err != nil {
		return err
	}
	r.match(f, f.name+" "+op+a+"-"+b, expr.CmpOpNeq, nil)
	return nil
}

// lookupOf returns the set a lookup expression reads.
func lookupOf(e ruleExpr) (string, bool) {
	if l, ok := e.Expr.(*expr.Lookup); ok {
		return l.SetName, true
	}
	if e.Name == "objref" && e.Raw.has(unix.NFTA_OBJREF_SET_NAME) {
		return e.Raw.str(unix.NFTA_OBJREF_SET_NAME), true
	}
	return "", false
}

// RenderExprs renders a rule made of google/nftables expressions as nft prints it, after
// the kernel's encoding and back, as a rule read from the kernel would be.
func RenderExprs(family uint8, es []expr.Any) (string, error) {
	var attrs []netlink.Attribute
	for _, e := range es {
		b, err := expr.Marshal(family, e)
		if err != nil {
			return "", fmt.Errorf("encode %T: %w", e, err)
		}
		attrs = append(attrs, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: b})
	}
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return "", err
	}
	decoded, err := decodeExprs(family, b)
	if err != nil {
		return "", err
	}
	return Render(Env{Family: family}, decoded, "")
}
