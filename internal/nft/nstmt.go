package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Statements decoded from raw attributes: ct/meta/payload/tcp option set, quota, ct count,
// synproxy, named objects, set updates, NAT, dup and fwd.

// regText renders the value a statement takes from register reg, for field f: an
// immediate printed as f's type, a loaded field by its name ("meta mark set ct mark"),
// or a mark with a mask or an or ("ct mark & 0xffff0000", "meta mark | 0x00000010").
func (r *renderer) regText(reg uint32, f field) (string, error) {
	v, ok := r.regs[reg]
	if !ok {
		return "", errUnsupported
	}
	if v.kind == rvImm {
		if uint32(len(v.data)) != f.size {
			return "", errUnsupported
		}
		return formatValue(r.env, f.typ, v.data)
	}
	if v.shift != "" && (v.mask != nil || v.xor != nil) {
		return "", errUnsupported
	}
	w := v
	w.mask, w.xor, w.shift = nil, nil, ""
	src, err := simpleField(w)
	if err != nil || src.size != f.size {
		return "", errUnsupported
	}
	if src.be != (f.be || !hostOrder(f.typ)) && hostOrder(src.typ) {
		// A host-order value written to a network-order field needs nft's byteorder.
		return "", errUnsupported
	}
	r.hideDeps(src)
	if v.mask == nil {
		return src.name + v.shift, nil
	}
	if src.typ != tHex32 || f.typ != tHex32 || len(v.mask) != 4 {
		return "", errUnsupported
	}
	m, x := hostUint(v.mask), uint32(0)
	if v.xor != nil {
		x = hostUint(v.xor)
	}
	switch {
	case x == 0:
		return fmt.Sprintf("%s & 0x%08x", src.name, m), nil
	case m == ^x:
		return fmt.Sprintf("%s | 0x%08x", src.name, x), nil
	case m == ^uint32(0):
		return fmt.Sprintf("%s ^ 0x%08x", src.name, x), nil
	case m&x == 0:
		// nft prints the bits the or sets in the mask too.
		return fmt.Sprintf("%s & 0x%08x | 0x%08x", src.name, m|x, x), nil
	}
	return "", errUnsupported
}

// metaSetFields are the meta keys nft sets, with their printed names and types.
var metaSetFields = map[expr.MetaKey]field{
	expr.MetaKeyMARK:     {name: "meta mark", typ: tHex32, size: 4},
	expr.MetaKeyPRIORITY: {name: "meta priority", typ: tTCHandle, size: 4},
	expr.MetaKeyPKTTYPE:  {name: "meta pkttype", typ: tPktType, size: 1},
	expr.MetaKeyNFTRACE:  {name: "meta nftrace", typ: tHostInt, size: 1},
}

func (r *renderer) metaSet(e *expr.Meta) error {
	f, ok := metaSetFields[e.Key]
	if !ok {
		return errUnsupported
	}
	v, ok := r.regs[e.Register]
	if ok && v.kind == rvImm && e.Key == expr.MetaKeyNFTRACE && len(v.data) > 0 && len(v.data) <= 4 {
		// The kernel reads one byte (nft_reg_load8) of the register.
		v.data = v.data[:1]
		r.regs[e.Register] = v
	}
	if ok && v.kind == rvImm && e.Key == expr.MetaKeyPKTTYPE && len(v.data) == 4 {
		v.data = v.data[:1]
		r.regs[e.Register] = v
	}
	s, err := r.regText(e.Register, f)
	if err != nil {
		return err
	}
	r.emit(f.name + " set " + s)
	return nil
}

func (r *renderer) ctSet(a rawAttrs, k uint32) error {
	sreg, ok := a.u32(unix.NFTA_CT_SREG)
	if !ok {
		return errUnsupported
	}
	var f field
	switch k {
	case unix.NFT_CT_MARK:
		f = field{name: "ct mark", typ: tHex32, size: 4}
	case unix.NFT_CT_ZONE:
		f = field{name: "ct zone", typ: tHostInt, size: 2}
	case unix.NFT_CT_EVENTMASK:
		f = field{name: "ct event", typ: tCtEvent, size: 4}
	case unix.NFT_CT_LABELS:
		f = field{name: "ct label", typ: tCtLabel, size: 16}
	default:
		return errUnsupported
	}
	if v, ok := r.regs[sreg]; ok && v.kind == rvImm && k == unix.NFT_CT_ZONE && len(v.data) == 4 {
		// nft loads the zone as 32 bits; the kernel reads 16 (nft_reg_load16).
		v.data = v.data[:2]
		r.regs[sreg] = v
	}
	s, err := r.regText(sreg, f)
	if err != nil {
		return err
	}
	r.emit(f.name + " set " + s)
	return nil
}

// payloadSet renders a payload write ("tcp dport set 80"); nft prints no checksum
// options, they follow from the field.
func (r *renderer) payloadSet(a rawAttrs) error {
	if !a.only(unix.NFTA_PAYLOAD_SREG, unix.NFTA_PAYLOAD_BASE, unix.NFTA_PAYLOAD_OFFSET, unix.NFTA_PAYLOAD_LEN,
		unix.NFTA_PAYLOAD_CSUM_TYPE, unix.NFTA_PAYLOAD_CSUM_OFFSET, unix.NFTA_PAYLOAD_CSUM_FLAGS) || !a.has(unix.NFTA_PAYLOAD_SREG) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_PAYLOAD_SREG, unix.NFTA_PAYLOAD_BASE, unix.NFTA_PAYLOAD_OFFSET, unix.NFTA_PAYLOAD_LEN)
	if !ok {
		return errUnsupported
	}
	if src, ok := r.regs[v[0]]; ok && src.kind == rvPayload && src.mask != nil {
		if src.base != expr.PayloadBase(v[1]) || src.off != v[2] || src.n != v[3] {
			return errUnsupported
		}
		return r.mangle(src)
	}
	fs, prefix, err := payloadFields(regVal{kind: rvPayload, base: expr.PayloadBase(v[1]), off: v[2], n: v[3], net: r.net, l4: r.l4,
		ether: r.ether || r.env.Family == unix.NFPROTO_BRIDGE, arp: r.env.Family == unix.NFPROTO_ARP})
	if err != nil || prefix || len(fs) != 1 {
		return errUnsupported
	}
	s, err := r.regText(v[0], fs[0])
	if err != nil {
		return err
	}
	r.hideDeps(fs[0])
	r.emit(fs[0].name + " set " + s)
	return nil
}

func (r *renderer) quota(a rawAttrs) error {
	if !a.only(unix.NFTA_QUOTA_BYTES, unix.NFTA_QUOTA_FLAGS, unix.NFTA_QUOTA_CONSUMED, unix.NFTA_QUOTA_PAD) {
		return errUnsupported
	}
	n, ok := a.u64(unix.NFTA_QUOTA_BYTES)
	used, ok2 := a.u64(unix.NFTA_QUOTA_CONSUMED)
	flags, ok3 := a.u32(unix.NFTA_QUOTA_FLAGS)
	if !ok || !ok2 || !ok3 || flags&^(unix.NFT_QUOTA_F_INV|unix.NFT_QUOTA_F_DEPLETED) != 0 {
		return errUnsupported
	}
	s := "quota "
	if flags&unix.NFT_QUOTA_F_INV != 0 {
		s += "over "
	}
	b, u := byteRate(n)
	s += fmt.Sprintf("%d %s", b, u)
	if used != 0 {
		b, u := byteRate(used)
		s += fmt.Sprintf(" used %d %s", b, u)
	}
	r.emit(s)
	return nil
}

func (r *renderer) connlimit(a rawAttrs) error {
	if !a.only(nftaConnlimitCount, nftaConnlimitFlags) {
		return errUnsupported
	}
	v, ok := a.u32s(nftaConnlimitCount, nftaConnlimitFlags)
	if !ok || v[1]&^1 != 0 {
		return errUnsupported
	}
	over := ""
	if v[1] != 0 {
		over = "over "
	}
	r.emit(fmt.Sprintf("ct count %s%d", over, v[0]))
	return nil
}

func (r *renderer) synproxy(a rawAttrs) error {
	if !a.only(nftaSynproxyMss, nftaSynproxyWscale, nftaSynproxyF) {
		return errUnsupported
	}
	mss, ok := a.u16(nftaSynproxyMss)
	ws, ok2 := a.u8(nftaSynproxyWscale)
	flags, ok3 := a.u32(nftaSynproxyF)
	const mssF, wsF, sackF, tsF = 0x1, 0x2, 0x4, 0x8
	if !ok || !ok2 || !ok3 || flags&^(mssF|wsF|sackF|tsF) != 0 {
		return errUnsupported
	}
	s := "synproxy"
	if flags&(mssF|wsF) != 0 {
		s += fmt.Sprintf(" mss %d wscale %d", mss, ws)
	}
	if flags&tsF != 0 {
		s += " timestamp"
	}
	if flags&sackF != 0 {
		s += " sack-perm"
	}
	r.emit(s)
	return nil
}

// objrefNames prints a reference to a named object, by object type.
var objrefNames = map[uint32]string{
	unix.NFT_OBJECT_COUNTER:    "counter name ",
	unix.NFT_OBJECT_QUOTA:      "quota name ",
	unix.NFT_OBJECT_LIMIT:      "limit name ",
	unix.NFT_OBJECT_CT_HELPER:  "ct helper set ",
	unix.NFT_OBJECT_CT_TIMEOUT: "ct timeout set ",
	unix.NFT_OBJECT_CT_EXPECT:  "ct expectation set ",
	unix.NFT_OBJECT_SYNPROXY:   "synproxy name ",
	unix.NFT_OBJECT_SECMARK:    "meta secmark set ",
	unix.NFT_OBJECT_CONNLIMIT:  "ct count name ",
	unix.NFT_OBJECT_TUNNEL:     "tunnel name ",
}

func (r *renderer) objref(a rawAttrs) error {
	if a.has(unix.NFTA_OBJREF_SET_NAME) {
		return r.objrefMap(a)
	}
	if !a.only(unix.NFTA_OBJREF_IMM_TYPE, unix.NFTA_OBJREF_IMM_NAME) || !a.has(unix.NFTA_OBJREF_IMM_NAME) {
		return errUnsupported
	}
	t, ok := a.u32(unix.NFTA_OBJREF_IMM_TYPE)
	p, known := objrefNames[t]
	if !ok || !known || t == unix.NFT_OBJECT_CONNLIMIT || t == unix.NFT_OBJECT_TUNNEL {
		return errUnsupported
	}
	r.emit(p + strconv.Quote(a.str(unix.NFTA_OBJREF_IMM_NAME)))
	return nil
}

// dynset renders a set update from the packet path: "add @s { ip saddr timeout 10s }".
func (r *renderer) dynset(a rawAttrs) error {
	if !a.only(unix.NFTA_DYNSET_SET_NAME, unix.NFTA_DYNSET_SET_ID, unix.NFTA_DYNSET_OP, unix.NFTA_DYNSET_SREG_KEY,
		unix.NFTA_DYNSET_TIMEOUT, unix.NFTA_DYNSET_EXPR, unix.NFTA_DYNSET_FLAGS, nftaDynsetExpressions, unix.NFTA_DYNSET_PAD) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_DYNSET_OP, unix.NFTA_DYNSET_SREG_KEY, unix.NFTA_DYNSET_FLAGS)
	timeout, ok2 := a.u64(unix.NFTA_DYNSET_TIMEOUT)
	const fExpr = 0x2 // NFT_DYNSET_F_EXPR
	if !ok || !ok2 || v[2]&^fExpr != 0 {
		return errUnsupported
	}
	op := map[uint32]string{unix.NFT_DYNSET_OP_ADD: "add", unix.NFT_DYNSET_OP_UPDATE: "update", nftDynsetOpDelete: "delete"}[v[0]]
	set := r.env.Sets[a.str(unix.NFTA_DYNSET_SET_NAME)]
	if op == "" || set == nil || set.anonymous() || set.isMap() {
		return errUnsupported
	}
	fs, _, err := r.concat(v[1], set.KeyLen)
	if err != nil {
		return err
	}
	for _, f := range fs {
		r.hideDeps(f)
	}
	s := op + " @" + set.Name + " { " + joinFields(fs)
	if timeout != 0 {
		s += " timeout " + msString(timeout)
	}
	var nested [][]byte
	if b, ok := a[unix.NFTA_DYNSET_EXPR]; ok {
		nested = append(nested, b)
	}
	if b, ok := a[nftaDynsetExpressions]; ok {
		list := parseList(b)
		if list == nil {
			return errUnsupported
		}
		nested = append(nested, list...)
	}
	for _, b := range nested {
		t, err := r.setElemExpr(b)
		if err != nil {
			return err
		}
		s += " " + t
	}
	r.emit(s + " }")
	return nil
}

// parseList returns the elements of a nested NFTA_LIST_ELEM list (nil: malformed).
func parseList(b []byte) [][]byte {
	out := [][]byte{}
	a := parseRawList(b)
	if a == nil {
		return nil
	}
	return append(out, a...)
}

// setElemExpr renders an expression attached to set elements (a counter, a limit).
func (r *renderer) setElemExpr(b []byte) (string, error) {
	name, data, err := splitExpr(b)
	if err != nil {
		return "", errUnsupported
	}
	e := decodeExpr(r.env.Family, name, data)
	switch e := e.(type) {
	case *expr.Counter:
		// The element's template: nft prints it without numbers.
		if e.Packets != 0 || e.Bytes != 0 {
			return "", errUnsupported
		}
		return "counter", nil
	case *expr.Limit:
		sub := &renderer{env: r.env, regs: map[uint32]regVal{}}
		if err := sub.limit(e); err != nil || len(sub.out) != 1 {
			return "", errUnsupported
		}
		return sub.out[0], nil
	}
	return "", errUnsupported
}

// natFlags prints the flags nft shows after a NAT statement.
func natFlags(fl uint32) (string, bool) {
	var parts []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{unix.NF_NAT_RANGE_PROTO_RANDOM, "random"}, {unix.NF_NAT_RANGE_PROTO_RANDOM_FULLY, "fully-random"}, {unix.NF_NAT_RANGE_PERSISTENT, "persistent"}} {
		if fl&f.bit != 0 {
			parts = append(parts, f.name)
			fl &^= f.bit
		}
	}
	if fl&^(unix.NF_NAT_RANGE_MAP_IPS|unix.NF_NAT_RANGE_PROTO_SPECIFIED) != 0 {
		return "", false
	}
	if len(parts) == 0 {
		return "", true
	}
	return " " + strings.Join(parts, ","), true
}

// immReg reads the immediate value of a register of n bytes.
func (r *renderer) immReg(reg uint32, n int) ([]byte, bool) {
	v, ok := r.regs[reg]
	if !ok || v.kind != rvImm || len(v.data) != n {
		return nil, false
	}
	return v.data, true
}

// natTarget renders "1.2.3.4", "1.2.3.4-1.2.3.10", "[2001:db8::1]:80", ":80-90" from the
// registers of a NAT statement (0: absent).
func (r *renderer) natTarget(fam uint32, amin, amax, pmin, pmax uint32) (string, error) {
	s := ""
	v6 := fam == unix.NFPROTO_IPV6
	if v, ok := r.regs[amin]; ok && v.kind == rvField && v.f.typ == tNatMap {
		// "dnat ip to ip saddr . tcp dport map { 1.2.3.4 . 80 : 5.6.7.8 . 8080 }": the
		// map's data fills the address register and the one after it.
		s, ok := regSlot(amin)
		n := 4
		if v6 {
			n = 16
		}
		next := s + slotLen(uint32(n))
		at := func(reg uint32) bool { rs, ok := regSlot(reg); return ok && rs == next }
		ok = ok && v.f.net == map[bool]uint8{false: unix.NFPROTO_IPV4, true: unix.NFPROTO_IPV6}[v6]
		if v.f.natRange {
			ok = ok && at(amax) && pmin == 0 && pmax == 0
		} else {
			ok = ok && (amax == 0 || amax == amin) && at(pmin) && (pmax == 0 || pmax == pmin)
		}
		if !ok {
			return "", errUnsupported
		}
		return v.f.name, nil
	}
	if v, ok := r.regs[amin]; ok && v.kind == rvField && (amax == 0 || amax == amin) && pmin == 0 {
		// An address from a map: "dnat to ip saddr map { ... }".
		if v.f.typ != map[bool]vtype{false: tAddr4, true: tAddr6}[v6] {
			return "", errUnsupported
		}
		return v.f.name, nil
	}
	if amin != 0 {
		n := 4
		if v6 {
			n = 16
		}
		lo, ok := r.immReg(amin, n)
		hi, ok2 := r.immReg(amax, n)
		if amax == 0 {
			hi, ok2 = lo, true
		}
		if !ok || !ok2 {
			return "", errUnsupported
		}
		a, _ := netip.AddrFromSlice(lo)
		s = a.String()
		if !bytes.Equal(lo, hi) {
			if p, ok := prefixOf(lo, hi); ok {
				s = p
			} else {
				b, _ := netip.AddrFromSlice(hi)
				s += "-" + b.String()
			}
		}
		if v6 && pmin != 0 {
			s = "[" + s + "]"
		}
	}
	if pmin != 0 {
		lo, ok := r.immReg(pmin, 2)
		hi, ok2 := r.immReg(pmax, 2)
		if pmax == 0 {
			hi, ok2 = lo, true
		}
		if !ok || !ok2 {
			return "", errUnsupported
		}
		s += fmt.Sprintf(":%d", binary.BigEndian.Uint16(lo))
		if !bytes.Equal(lo, hi) {
			s += fmt.Sprintf("-%d", binary.BigEndian.Uint16(hi))
		}
	}
	return s, nil
}

func (r *renderer) nat(a rawAttrs) error {
	if !a.only(unix.NFTA_NAT_TYPE, unix.NFTA_NAT_FAMILY, unix.NFTA_NAT_REG_ADDR_MIN, unix.NFTA_NAT_REG_ADDR_MAX,
		unix.NFTA_NAT_REG_PROTO_MIN, unix.NFTA_NAT_REG_PROTO_MAX, unix.NFTA_NAT_FLAGS) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_NAT_TYPE, unix.NFTA_NAT_FAMILY, unix.NFTA_NAT_REG_ADDR_MIN, unix.NFTA_NAT_REG_ADDR_MAX,
		unix.NFTA_NAT_REG_PROTO_MIN, unix.NFTA_NAT_REG_PROTO_MAX, unix.NFTA_NAT_FLAGS)
	if !ok {
		return errUnsupported
	}
	typ := map[uint32]string{unix.NFT_NAT_SNAT: "snat", unix.NFT_NAT_DNAT: "dnat"}[v[0]]
	if typ == "" || (v[1] != unix.NFPROTO_IPV4 && v[1] != unix.NFPROTO_IPV6) || (v[2] == 0 && v[4] == 0) {
		return errUnsupported
	}
	const netmap = 0x40 // NF_NAT_RANGE_NETMAP
	fl, ok := natFlags(v[6] &^ netmap)
	if !ok {
		return errUnsupported
	}
	to, err := r.natTarget(v[1], v[2], v[3], v[4], v[5])
	if err != nil {
		return err
	}
	if v[6]&netmap != 0 {
		// "snat ip prefix to ip saddr map { 10.0.0.0/8 : 192.168.0.0/16 }"
		m, ok := r.regs[v[2]]
		if !ok || m.kind != rvField || m.f.typ != tNatMap || !m.f.natRange {
			return errUnsupported
		}
		to = "prefix to " + to
	} else {
		to = "to " + to
	}
	s := typ
	if m, ok := r.regs[v[2]]; r.env.Family == unix.NFPROTO_INET || (ok && m.kind == rvField && m.f.typ == tNatMap) {
		// nft names the family of a NAT map with concatenated data even in an ip table.
		s += " " + map[uint32]string{unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6"}[v[1]]
	}
	r.emit(s + " " + to + fl)
	return nil
}

// masqRedir renders masquerade and redirect, given their attribute numbers.
func (r *renderer) masqRedir(a rawAttrs, name string, flags, pmin, pmax uint16) error {
	if !a.only(flags, pmin, pmax) {
		return errUnsupported
	}
	v, ok := a.u32s(flags, pmin, pmax)
	if !ok {
		return errUnsupported
	}
	fl, ok := natFlags(v[0])
	if !ok {
		return errUnsupported
	}
	s := name
	if v[1] != 0 {
		to, err := r.natTarget(0, 0, 0, v[1], v[2])
		if err != nil {
			return err
		}
		s += " to " + to
	}
	r.emit(s + fl)
	return nil
}

// device renders the interface a dup or fwd sends to.
func (r *renderer) device(reg uint32) (string, error) {
	b, ok := r.immReg(reg, 4)
	if !ok || r.env.IfName == nil {
		return "", errUnsupported
	}
	n, ok := r.env.IfName(hostUint(b))
	if !ok {
		return "", errUnsupported
	}
	return strconv.Quote(n), nil
}

func (r *renderer) addrReg(reg uint32, fam uint8) (string, error) {
	n := 4
	if fam == unix.NFPROTO_IPV6 {
		n = 16
	}
	b, ok := r.immReg(reg, n)
	if !ok {
		return "", errUnsupported
	}
	a, _ := netip.AddrFromSlice(b)
	return a.String(), nil
}

func (r *renderer) dup(a rawAttrs) error {
	if !a.only(unix.NFTA_DUP_SREG_ADDR, unix.NFTA_DUP_SREG_DEV) {
		return errUnsupported
	}
	v, ok := a.u32s(unix.NFTA_DUP_SREG_ADDR, unix.NFTA_DUP_SREG_DEV)
	if !ok {
		return errUnsupported
	}
	s := "dup to"
	if v[0] != 0 {
		if r.env.Family != unix.NFPROTO_IPV4 && r.env.Family != unix.NFPROTO_IPV6 {
			return errUnsupported
		}
		addr, err := r.addrReg(v[0], r.env.Family)
		if err != nil {
			return err
		}
		s += " " + addr
		if v[1] != 0 {
			s += " device"
		}
	}
	if v[1] != 0 {
		d, err := r.device(v[1])
		if err != nil {
			return err
		}
		s += " " + d
	}
	if s == "dup to" {
		return errUnsupported
	}
	r.emit(s)
	return nil
}

func (r *renderer) fwd(a rawAttrs) error {
	if !a.only(nftaFwdSregDev, nftaFwdSregAddr, nftaFwdNfproto) || !a.has(nftaFwdSregDev) {
		return errUnsupported
	}
	v, ok := a.u32s(nftaFwdSregDev, nftaFwdSregAddr, nftaFwdNfproto)
	if !ok {
		return errUnsupported
	}
	d, err := r.device(v[0])
	if err != nil {
		return err
	}
	if v[1] == 0 {
		r.emit("fwd to " + d)
		return nil
	}
	fam := map[uint32]string{unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6"}[v[2]]
	if fam == "" {
		return errUnsupported
	}
	addr, err := r.addrReg(v[1], uint8(v[2]))
	if err != nil {
		return err
	}
	r.emit("fwd " + fam + " to " + addr + " device " + d)
	return nil
}

func (r *renderer) tproxy(a rawAttrs) error {
	if !a.only(nftaTproxyFamily, nftaTproxyRegAddr, nftaTproxyReg) {
		return errUnsupported
	}
	v, ok := a.u32s(nftaTproxyFamily, nftaTproxyRegAddr, nftaTproxyReg)
	if !ok || (v[1] == 0 && v[2] == 0) {
		return errUnsupported
	}
	fam := ""
	switch v[0] {
	case unix.NFPROTO_UNSPEC:
		if v[1] != 0 {
			return errUnsupported
		}
	case unix.NFPROTO_IPV4, unix.NFPROTO_IPV6:
		if r.env.Family == unix.NFPROTO_INET {
			fam = map[uint32]string{unix.NFPROTO_IPV4: "ip ", unix.NFPROTO_IPV6: "ip6 "}[v[0]]
		}
	default:
		return errUnsupported
	}
	to, err := r.natTarget(v[0], v[1], v[1], v[2], v[2])
	if err != nil {
		return err
	}
	r.emit("tproxy " + fam + "to " + to)
	return nil
}

// objrefMap renders a reference to the object an object map finds for a key:
// "counter name tcp dport map { 22 : "c22" }".
func (r *renderer) objrefMap(a rawAttrs) error {
	if !a.only(unix.NFTA_OBJREF_SET_SREG, unix.NFTA_OBJREF_SET_NAME, unix.NFTA_OBJREF_SET_ID) {
		return errUnsupported
	}
	sreg, ok := a.u32(unix.NFTA_OBJREF_SET_SREG)
	set := r.env.Sets[a.str(unix.NFTA_OBJREF_SET_NAME)]
	if !ok || set == nil || set.Flags&nftSetObject == 0 {
		return errUnsupported
	}
	p, known := objrefNames[set.ObjType]
	if !known || set.ObjType == unix.NFT_OBJECT_CONNLIMIT || set.ObjType == unix.NFT_OBJECT_TUNNEL {
		return errUnsupported
	}
	fs, _, err := r.concat(sreg, set.KeyLen)
	if err != nil {
		return err
	}
	rhs := "@" + set.Name
	if set.anonymous() {
		rhs, err = setLiteral(r.env, fs, set, func(el setElem) (string, error) {
			if el.ObjRef == "" {
				return "", errUnsupported
			}
			return " : " + strconv.Quote(el.ObjRef), nil
		})
		if err != nil {
			return err
		}
	}
	for _, f := range fs {
		r.hideDeps(f)
	}
	r.emit(p + joinFields(fs) + " map " + rhs)
	return nil
}
