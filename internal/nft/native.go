package nft

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Expressions google/nftables v0.3.0 does not decode faithfully (or at all) are decoded
// here from their raw attributes. Each handler names every attribute it understands and
// refuses an expression that carries any other: an attribute it ignored could change what
// the rule does.

// rawAttrs are an expression's attributes by type.
type rawAttrs map[uint16][]byte

// parseRaw splits an expression's data into its attributes (nil: not parseable).
func parseRaw(data []byte) rawAttrs {
	a := rawAttrs{}
	if len(data) == 0 {
		return a
	}
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil
	}
	for ad.Next() {
		a[ad.Type()&^unix.NLA_F_NESTED] = ad.Bytes()
	}
	if ad.Err() != nil {
		return nil
	}
	return a
}

// only reports whether every attribute present is one of known.
func (a rawAttrs) only(known ...uint16) bool {
	for t := range a {
		ok := false
		for _, k := range known {
			ok = ok || k == t
		}
		if !ok {
			return false
		}
	}
	return true
}

func (a rawAttrs) has(t uint16) bool { _, ok := a[t]; return ok }

// uint reads a big-endian unsigned attribute of n bytes; absent reads as 0.
func (a rawAttrs) uint(t uint16, n int) (uint64, bool) {
	b, ok := a[t]
	if !ok {
		return 0, true
	}
	if len(b) != n {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}

func (a rawAttrs) u32(t uint16) (uint32, bool) { v, ok := a.uint(t, 4); return uint32(v), ok }
func (a rawAttrs) u64(t uint16) (uint64, bool) { return a.uint(t, 8) }
func (a rawAttrs) u16(t uint16) (uint16, bool) { v, ok := a.uint(t, 2); return uint16(v), ok }
func (a rawAttrs) u8(t uint16) (uint8, bool)   { v, ok := a.uint(t, 1); return uint8(v), ok }

func (a rawAttrs) str(t uint16) string { return strings.TrimRight(string(a[t]), "\x00") }

// u32s reads several u32 attributes, failing if any is malformed.
func (a rawAttrs) u32s(ts ...uint16) ([]uint32, bool) {
	out := make([]uint32, len(ts))
	for i, t := range ts {
		v, ok := a.u32(t)
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// Attribute numbers of linux/netfilter/nf_tables.h that x/sys/unix does not define.
const (
	nftaSocketKey, nftaSocketDreg, nftaSocketLevel     = 1, 2, 3
	nftaOsfDreg, nftaOsfTTL, nftaOsfFlags              = 1, 2, 3
	nftaXfrmDreg, nftaXfrmKey, nftaXfrmDir, nftaXfrmSp = 1, 2, 3, 4
	nftaConnlimitCount, nftaConnlimitFlags             = 1, 2
	nftaSynproxyMss, nftaSynproxyWscale, nftaSynproxyF = 1, 2, 3
	nftaTproxyFamily, nftaTproxyRegAddr, nftaTproxyReg = 1, 2, 3
	nftaFwdSregDev, nftaFwdSregAddr, nftaFwdNfproto    = 1, 2, 3
	nftaDynsetExpressions                              = 10

	nftRtXfrm         = 4
	nftMetaSecpath    = 25
	nftMetaIifkind    = 26
	nftMetaOifkind    = 27
	nftMetaTimeNs     = 30
	nftMetaTimeDay    = 31
	nftMetaTimeHour   = 32
	nftMetaSdif       = 33
	nftMetaSdifname   = 34
	nftCtID           = 23
	nftExthdrOpIPv4   = 2
	nftExthdrOpSCTP   = 3
	nftDynsetOpDelete = 2
	nftRegSize32      = 4
)

// regSlot is a register's first 32-bit slot in the register file: NFT_REG_1..4 hold 16
// bytes each (slots 4n..4n+3), NFT_REG32_00.. (8..) one slot each from slot 4.
func regSlot(reg uint32) (int, bool) {
	switch {
	case reg >= 1 && reg <= 4:
		return int(reg) * 4, true
	case reg >= 8 && reg <= 23:
		return int(reg) - 8 + 4, true
	}
	return 0, false
}

func slotLen(n uint32) int { return int(n+nftRegSize32-1) / nftRegSize32 }

// setReg stores v in reg and forgets what it overwrote: a register overlapping another's
// slots no longer holds that value.
func (r *renderer) setReg(reg uint32, v regVal, n uint32) {
	s, ok := regSlot(reg)
	if !ok {
		r.regs[reg] = v
		return
	}
	for o, ov := range r.regs {
		os, ok := regSlot(o)
		if !ok {
			continue
		}
		if os < s+slotLen(n) && s < os+slotLen(ov.size()) {
			delete(r.regs, o)
		}
	}
	r.regs[reg] = v
}

// size is the number of bytes a register value occupies (16 when unknown).
func (v regVal) size() uint32 {
	switch v.kind {
	case rvPayload:
		return v.n
	case rvImm:
		return uint32(len(v.data))
	case rvField:
		return v.f.size
	case rvMeta, rvCt:
		if f, err := simpleField(v); err == nil {
			return f.size
		}
	}
	return 16
}

// concat returns the fields held from register reg on for n bytes: one field, or the
// components of a concatenation ("ip saddr . tcp dport"), each in its own 32-bit slots.
func (r *renderer) concat(reg, n uint32) ([]field, []regVal, error) {
	s, ok := regSlot(reg)
	if !ok {
		return nil, nil, errUnsupported
	}
	end := s + slotLen(n)
	var fs []field
	var vs []regVal
	for s < end {
		v, ok := r.regAtSlot(s)
		if !ok || v.mask != nil || v.xor != nil || v.shift != "" {
			return nil, nil, errUnsupported
		}
		f, err := simpleField(v)
		if err != nil {
			return nil, nil, err
		}
		fs = append(fs, f)
		vs = append(vs, v)
		s += slotLen(f.size)
	}
	if s != end || (len(fs) == 1 && fs[0].size != n) {
		return nil, nil, errUnsupported
	}
	return fs, vs, nil
}

func (r *renderer) regAtSlot(s int) (regVal, bool) {
	for reg, v := range r.regs {
		if rs, ok := regSlot(reg); ok && rs == s {
			return v, true
		}
	}
	return regVal{}, false
}

func joinFields(fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return strings.Join(names, " . ")
}

// native renders an expression this package decodes from its raw attributes.
func (r *renderer) native(e ruleExpr) error {
	a := e.Raw
	switch e.Name {
	case "numgen":
		return r.numgen(a)
	case "hash":
		return r.hash(a)
	case "fib":
		return r.fib(a)
	case "rt":
		return r.rt(a)
	case "socket":
		return r.socket(a)
	case "osf":
		return r.osf(a)
	case "xfrm":
		return r.xfrm(a)
	case "ct":
		return r.ct(a)
	case "exthdr":
		return r.exthdr(a)
	case "byteorder":
		return r.byteorder(a)
	case "bitwise":
		return r.shift(a)
	case "payload":
		return r.payloadSet(a)
	case "quota":
		return r.quota(a)
	case "connlimit":
		return r.connlimit(a)
	case "synproxy":
		return r.synproxy(a)
	case "objref":
		return r.objref(a)
	case "dynset":
		return r.dynset(a)
	case "nat":
		return r.nat(a)
	case "masq":
		return r.masqRedir(a, "masquerade", unix.NFTA_MASQ_FLAGS, unix.NFTA_MASQ_REG_PROTO_MIN, unix.NFTA_MASQ_REG_PROTO_MAX)
	case "redir":
		return r.masqRedir(a, "redirect", unix.NFTA_REDIR_FLAGS, unix.NFTA_REDIR_REG_PROTO_MIN, unix.NFTA_REDIR_REG_PROTO_MAX)
	case "tproxy":
		return r.tproxy(a)
	case "flow_offload":
		// "flow add @ft" (not cross-checked: this kernel has no CONFIG_NF_FLOW_TABLE).
		const nftaFlowTableName = 1
		if !a.only(nftaFlowTableName) || a.str(nftaFlowTableName) == "" {
			return errUnsupported
		}
		r.emit("flow add @" + a.str(nftaFlowTableName))
		return nil
	case "dup":
		return r.dup(a)
	case "fwd":
		return r.fwd(a)
	}
	return errUnsupported
}

// load stores a loaded field in a destination register attribute.
func (r *renderer) load(a rawAttrs, dregAttr uint16, f field) error {
	d, ok := a.u32(dregAttr)
	if !ok || d == nftRegVerdict {
		return errUnsupported
	}
	r.setReg(d, regVal{kind: rvField, f: f}, f.size)
	return nil
}

func (r *renderer) numgen(a rawAttrs) error {
	if !a.only(unix.NFTA_NG_DREG, unix.NFTA_NG_MODULUS, unix.NFTA_NG_TYPE, unix.NFTA_NG_OFFSET) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_NG_MODULUS, unix.NFTA_NG_TYPE, unix.NFTA_NG_OFFSET)
	if !ok {
		return errUnsupported
	}
	typ := map[uint32]string{0: "inc", 1: "random"}[v[1]]
	if typ == "" {
		return errUnsupported
	}
	name := fmt.Sprintf("numgen %s mod %d", typ, v[0])
	if v[2] != 0 {
		name += fmt.Sprintf(" offset %d", v[2])
	}
	return r.load(a, unix.NFTA_NG_DREG, field{name: name, typ: tHostInt, size: 4})
}

func (r *renderer) hash(a rawAttrs) error {
	if !a.only(unix.NFTA_HASH_SREG, unix.NFTA_HASH_DREG, unix.NFTA_HASH_LEN, unix.NFTA_HASH_MODULUS,
		unix.NFTA_HASH_SEED, unix.NFTA_HASH_OFFSET, unix.NFTA_HASH_TYPE) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_HASH_SREG, unix.NFTA_HASH_LEN, unix.NFTA_HASH_MODULUS, unix.NFTA_HASH_SEED,
		unix.NFTA_HASH_OFFSET, unix.NFTA_HASH_TYPE)
	if !ok {
		return errUnsupported
	}
	var name string
	switch v[5] {
	case 0: // NFT_HASH_JENKINS
		fs, _, err := r.concat(v[0], v[1])
		if err != nil {
			return err
		}
		for _, f := range fs {
			r.hideDeps(f)
		}
		name = "jhash " + joinFields(fs) + fmt.Sprintf(" mod %d", v[2])
		// The kernel dumps no seed when it chose one itself; nft prints a seed it was given.
		if a.has(unix.NFTA_HASH_SEED) {
			name += fmt.Sprintf(" seed 0x%x", v[3])
		}
	case 1: // NFT_HASH_SYM
		if a.has(unix.NFTA_HASH_SREG) || a.has(unix.NFTA_HASH_LEN) {
			return errUnsupported
		}
		name = fmt.Sprintf("symhash mod %d", v[2])
	default:
		return errUnsupported
	}
	if v[4] != 0 {
		name += fmt.Sprintf(" offset %d", v[4])
	}
	return r.load(a, unix.NFTA_HASH_DREG, field{name: name, typ: tHostInt, size: 4})
}

func (r *renderer) fib(a rawAttrs) error {
	if !a.only(unix.NFTA_FIB_DREG, unix.NFTA_FIB_RESULT, unix.NFTA_FIB_FLAGS) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_FIB_RESULT, unix.NFTA_FIB_FLAGS)
	if !ok {
		return errUnsupported
	}
	flags := v[1]
	var keys []string
	for _, k := range []struct {
		bit  uint32
		name string
	}{{unix.NFTA_FIB_F_SADDR, "saddr"}, {unix.NFTA_FIB_F_DADDR, "daddr"}, {unix.NFTA_FIB_F_MARK, "mark"}, {unix.NFTA_FIB_F_IIF, "iif"}, {unix.NFTA_FIB_F_OIF, "oif"}} {
		if flags&k.bit != 0 {
			keys = append(keys, k.name)
			flags &^= k.bit
		}
	}
	present := flags&unix.NFTA_FIB_F_PRESENT != 0
	flags &^= unix.NFTA_FIB_F_PRESENT
	if flags != 0 || len(keys) == 0 {
		return errUnsupported
	}
	f := field{name: "fib " + strings.Join(keys, " . ")}
	switch v[0] {
	case unix.NFT_FIB_RESULT_OIF:
		f.name, f.typ, f.size = f.name+" oif", tIfindex, 4
	case unix.NFT_FIB_RESULT_OIFNAME:
		f.name, f.typ, f.size = f.name+" oifname", tIfname, 16
	case unix.NFT_FIB_RESULT_ADDRTYPE:
		f.name, f.typ, f.size = f.name+" type", tFibType, 4
	default:
		return errUnsupported
	}
	if present {
		f.typ, f.size = tExists, 1
	}
	return r.load(a, unix.NFTA_FIB_DREG, f)
}

var rtFields = map[uint32]field{
	unix.NFT_RT_CLASSID:  {name: "rt classid", typ: tRealm, size: 4},
	unix.NFT_RT_NEXTHOP4: {name: "rt ip nexthop", typ: tAddr4, size: 4},
	unix.NFT_RT_NEXTHOP6: {name: "rt ip6 nexthop", typ: tAddr6, size: 16},
	unix.NFT_RT_TCPMSS:   {name: "rt mtu", typ: tHostInt, size: 2},
	nftRtXfrm:            {name: "rt ipsec", typ: tExists, size: 1},
}

func (r *renderer) rt(a rawAttrs) error {
	if !a.only(unix.NFTA_RT_DREG, unix.NFTA_RT_KEY) {
		return errUnsupported
	}
	k, ok := a.u32(unix.NFTA_RT_KEY)
	if !ok {
		return errUnsupported
	}
	f, ok := rtFields[k]
	if !ok {
		return errUnsupported
	}
	return r.load(a, unix.NFTA_RT_DREG, f)
}

func (r *renderer) socket(a rawAttrs) error {
	if !a.only(nftaSocketKey, nftaSocketDreg) {
		return errUnsupported
	}
	k, ok := a.u32(nftaSocketKey)
	if !ok {
		return errUnsupported
	}
	var f field
	switch k {
	case 0: // NFT_SOCKET_TRANSPARENT
		f = field{name: "socket transparent", typ: tHostInt, size: 1}
	case 1: // NFT_SOCKET_MARK
		f = field{name: "socket mark", typ: tHex32, size: 4}
	case 2: // NFT_SOCKET_WILDCARD
		f = field{name: "socket wildcard", typ: tHostInt, size: 1}
	default: // cgroupv2: nft prints the path it finds for the cgroup id on its host
		return errUnsupported
	}
	return r.load(a, nftaSocketDreg, f)
}

func (r *renderer) osf(a rawAttrs) error {
	if !a.only(nftaOsfDreg, nftaOsfTTL, nftaOsfFlags) {
		return errUnsupported
	}
	ttl, ok := a.u8(nftaOsfTTL)
	flags, ok2 := a.u32(nftaOsfFlags)
	if !ok || !ok2 || flags&^1 != 0 {
		return errUnsupported
	}
	name := "osf "
	switch ttl {
	case 0:
	case 1:
		name += "ttl loose "
	case 2:
		name += "ttl skip "
	default:
		return errUnsupported
	}
	if flags != 0 {
		name += "version"
	} else {
		name += "name"
	}
	return r.load(a, nftaOsfDreg, field{name: name, typ: tString, size: 16})
}

// xfrmFields are the keys of NFT_XFRM_KEY_*, named after "ipsec in|out [spnum N]".
var xfrmFields = map[uint32]field{
	1: {name: "ip daddr", typ: tAddr4, size: 4}, 2: {name: "ip6 daddr", typ: tAddr6, size: 16},
	3: {name: "ip saddr", typ: tAddr4, size: 4}, 4: {name: "ip6 saddr", typ: tAddr6, size: 16},
	5: {name: "reqid", typ: tHostInt, size: 4}, 6: {name: "spi", typ: tInt, size: 4},
}

func (r *renderer) xfrm(a rawAttrs) error {
	if !a.only(nftaXfrmDreg, nftaXfrmKey, nftaXfrmDir, nftaXfrmSp) {
		return errUnsupported
	}
	k, ok := a.u32(nftaXfrmKey)
	dir, ok2 := a.u8(nftaXfrmDir)
	sp, ok3 := a.u32(nftaXfrmSp)
	if !ok || !ok2 || !ok3 || dir > 1 {
		return errUnsupported
	}
	name := "ipsec " + []string{"in", "out"}[dir]
	if sp != 0 {
		name += " spnum " + strconv.FormatUint(uint64(sp), 10)
	}
	f, ok := xfrmFields[k]
	if !ok {
		return errUnsupported
	}
	f.name = name + " " + f.name
	return r.load(a, nftaXfrmDreg, f)
}

// byteorder: nft converts a host-order value to network order before an ordered
// comparison or an interval lookup; the field keeps its name and reads big-endian now.
func (r *renderer) byteorder(a rawAttrs) error {
	if !a.only(unix.NFTA_BYTEORDER_SREG, unix.NFTA_BYTEORDER_DREG, unix.NFTA_BYTEORDER_OP, unix.NFTA_BYTEORDER_LEN, unix.NFTA_BYTEORDER_SIZE) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_BYTEORDER_SREG, unix.NFTA_BYTEORDER_DREG, unix.NFTA_BYTEORDER_OP, unix.NFTA_BYTEORDER_LEN, unix.NFTA_BYTEORDER_SIZE)
	if !ok || v[2] != unix.NFT_BYTEORDER_HTON {
		return errUnsupported
	}
	rv, ok := r.regs[v[0]]
	if !ok || rv.mask != nil || rv.xor != nil || rv.shift != "" || rv.hton {
		return errUnsupported
	}
	f, err := simpleField(rv)
	if err != nil || !hostOrder(f.typ) || f.size != v[3] || f.size != v[4] {
		return errUnsupported
	}
	switch f.size {
	case 2, 4, 8:
	default:
		return errUnsupported
	}
	rv.hton = true
	r.setReg(v[1], rv, f.size)
	return nil
}

func (r *renderer) ct(a rawAttrs) error {
	if !a.only(unix.NFTA_CT_KEY, unix.NFTA_CT_DREG, unix.NFTA_CT_DIRECTION, unix.NFTA_CT_SREG) {
		return errUnsupported
	}
	k, ok := a.u32(unix.NFTA_CT_KEY)
	if !ok {
		return errUnsupported
	}
	if a.has(unix.NFTA_CT_SREG) {
		if a.has(unix.NFTA_CT_DREG) || a.has(unix.NFTA_CT_DIRECTION) {
			return errUnsupported
		}
		return r.ctSet(a, k)
	}
	dir, ok := a.u8(unix.NFTA_CT_DIRECTION)
	if !ok || dir > 1 {
		return errUnsupported
	}
	f, ok := ctKeyField(k, a.has(unix.NFTA_CT_DIRECTION))
	if k == unix.NFT_CT_SRC || k == unix.NFT_CT_DST {
		// The address of the table's family: nft uses these keys in ip and ip6 tables.
		f = field{name: "ct ip saddr", typ: tAddr4, size: 4}
		if r.env.Family == unix.NFPROTO_IPV6 {
			f = field{name: "ct ip6 saddr", typ: tAddr6, size: 16}
		}
		if k == unix.NFT_CT_DST {
			f.name = strings.Replace(f.name, "saddr", "daddr", 1)
		}
		ok = ok && (r.env.Family == unix.NFPROTO_IPV4 || r.env.Family == unix.NFPROTO_IPV6)
	}
	if !ok {
		return errUnsupported
	}
	if a.has(unix.NFTA_CT_DIRECTION) {
		f.name = "ct " + ctDirNames[dir] + strings.TrimPrefix(f.name, "ct")
	}
	return r.load(a, unix.NFTA_CT_DREG, f)
}

// parseRawList returns the NFTA_LIST_ELEM payloads of a nested list (nil: malformed).
func parseRawList(b []byte) [][]byte {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil
	}
	out := [][]byte{}
	for ad.Next() {
		if ad.Type()&^unix.NLA_F_NESTED != unix.NFTA_LIST_ELEM {
			return nil
		}
		out = append(out, ad.Bytes())
	}
	if ad.Err() != nil {
		return nil
	}
	return out
}

// shift renders a bitwise shift (NFT_BITWISE_LSHIFT/RSHIFT), which nft prints after the
// value it shifts: "meta mark set ct mark >> 8". Masks and xors are google/nftables'.
func (r *renderer) shift(a rawAttrs) error {
	if !a.only(unix.NFTA_BITWISE_SREG, unix.NFTA_BITWISE_DREG, unix.NFTA_BITWISE_LEN, nftaBitwiseOp, nftaBitwiseData) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_BITWISE_SREG, unix.NFTA_BITWISE_DREG, unix.NFTA_BITWISE_LEN, nftaBitwiseOp)
	n := dataValue(a[nftaBitwiseData])
	if !ok || len(n) != 4 {
		return errUnsupported
	}
	op := map[uint32]string{1: " << ", 2: " >> "}[v[3]] // NFT_BITWISE_LSHIFT, _RSHIFT
	rv, ok := r.regs[v[0]]
	if op == "" || !ok || rv.kind == rvImm || rv.mask != nil || rv.xor != nil || rv.shift != "" || rv.hton {
		return errUnsupported
	}
	f, err := simpleField(rv)
	if err != nil || f.size != v[2] || f.typ != tHex32 {
		return errUnsupported
	}
	rv.shift = op + strconv.FormatUint(uint64(hostUint(n)), 10)
	r.setReg(v[1], rv, f.size)
	return nil
}
