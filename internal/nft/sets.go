package nft

import (
	"bytes"
	"sort"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Set lookups: of one field or a concatenation ("ip saddr . tcp dport"), in a named or an
// anonymous set, a verdict map (vmap) or a data map ("tcp dport map { 22 : 0x1 }", whose
// result feeds a statement).

const (
	nftaSetElemKeyEnd = 10   // NFTA_SET_ELEM_KEY_END
	nftaSetElemObjRef = 9    // NFTA_SET_ELEM_OBJREF
	nftaSetObjType    = 15   // NFTA_SET_OBJ_TYPE
	nftSetObject      = 0x40 // NFT_SET_OBJECT
)

// nft's data types (the NFTA_SET_DATA_TYPE of a map) this package prints map data of.
var mapDataTypes = map[uint32]field{
	7:  {typ: tAddr4, size: 4},  // TYPE_IPADDR
	8:  {typ: tAddr6, size: 16}, // TYPE_IP6ADDR
	13: {typ: tInt, size: 2},    // TYPE_INET_SERVICE
	19: {typ: tHex32, size: 4},  // TYPE_MARK
}

// natMap is the data of a NAT map: an address and a port ("5.6.7.8 . 8080", nft's
// concatenated type) or an address range ("5.6.7.8-5.6.7.10", an address type of twice
// the length).
type natMap struct {
	addr  field
	rng   bool
	total uint32
}

func natMapOf(set *setInfo) (natMap, bool) {
	addrs := map[uint32]field{7: {typ: tAddr4, size: 4, net: unix.NFPROTO_IPV4}, 8: {typ: tAddr6, size: 16, net: unix.NFPROTO_IPV6}}
	if a, ok := addrs[set.DataType>>6]; ok && set.DataType&0x3f == 13 { // TYPE_INET_SERVICE
		return natMap{a, false, a.size + nftRegSize32}, true
	}
	if a, ok := addrs[set.DataType]; ok && set.DataLen == 2*a.size {
		return natMap{a, true, 2 * a.size}, true
	}
	return natMap{}, false
}

// value formats one NAT map element's data.
func (m natMap) value(env Env, b []byte) (string, error) {
	n := int(m.addr.size)
	if uint32(len(b)) != m.total {
		return "", errUnsupported
	}
	if m.rng {
		return intervalString(env, m.addr, b[:n], b[n:])
	}
	if !allZero(b[n+2:]) {
		return "", errUnsupported
	}
	a, err := formatValue(env, m.addr.typ, b[:n])
	if err != nil {
		return "", err
	}
	p, err := formatValue(env, tInt, b[n:n+2])
	return a + " . " + p, err
}

func (r *renderer) lookup(e *expr.Lookup) error {
	set := r.env.Sets[e.SetName]
	if set == nil {
		return errUnsupported
	}
	var fs []field
	if v, ok := r.regs[e.SourceRegister]; ok && (v.kind == rvPayload || v.kind == rvField) && v.mask != nil && v.xor == nil && v.shift == "" {
		// A bit field: "ip dscp { cs1, cs2 }", its values in place.
		b, ok := findBitField(v)
		if !ok || (set.KeyLen != 0 && set.KeyLen != b.n) || set.interval() {
			return errUnsupported
		}
		fs = []field{{name: b.name, typ: tBits, size: b.n, layer: b.layer, net: b.net, l4: b.l4, bit: &b}}
	} else if set.KeyLen != 0 {
		var err error
		if fs, _, err = r.concat(e.SourceRegister, set.KeyLen); err != nil {
			return err
		}
	} else {
		v, ok := r.regs[e.SourceRegister]
		if !ok || v.mask != nil || v.xor != nil || v.shift != "" {
			return errUnsupported
		}
		f, err := simpleField(v)
		if err != nil {
			return err
		}
		fs = []field{f}
	}
	var data func(setElem) (string, error)
	var dataField field
	nm, nat := natMapOf(set)
	switch {
	case e.IsDestRegSet && e.DestRegister == nftRegVerdict:
		if !set.isMap() || set.DataType != nftDataVerdict || e.Invert {
			return errUnsupported
		}
		data = func(el setElem) (string, error) {
			if el.Verdict == nil {
				return "", errUnsupported
			}
			return " : " + VerdictString(el.Verdict.Code, el.Verdict.Chain), nil
		}
	case e.IsDestRegSet && nat:
		if !set.isMap() || e.Invert {
			return errUnsupported
		}
		dataField = field{typ: tNatMap, size: nm.total, net: nm.addr.net, natRange: nm.rng}
		data = func(el setElem) (string, error) {
			s, err := nm.value(r.env, el.Data)
			return " : " + s, err
		}
	case e.IsDestRegSet:
		df, ok := mapDataTypes[set.DataType]
		if !ok || !set.isMap() || e.Invert || (set.DataLen != 0 && set.DataLen != df.size) {
			return errUnsupported
		}
		dataField = df
		data = func(el setElem) (string, error) {
			if uint32(len(el.Data)) != df.size {
				return "", errUnsupported
			}
			s, err := formatValue(r.env, df.typ, el.Data)
			return " : " + s, err
		}
	case set.isMap():
		return errUnsupported
	default:
		data = func(setElem) (string, error) { return "", nil }
	}
	rhs := "@" + set.Name
	if set.anonymous() {
		var err error
		if rhs, err = setLiteral(r.env, fs, set, data); err != nil {
			return err
		}
	}
	for _, f := range fs {
		r.hideDeps(f)
	}
	lhs := joinFields(fs)
	switch {
	case e.IsDestRegSet && e.DestRegister == nftRegVerdict:
		r.emit(lhs + " vmap " + rhs)
	case e.IsDestRegSet:
		dataField.name = lhs + " map " + rhs
		r.setReg(e.DestRegister, regVal{kind: rvField, f: dataField}, dataField.size)
	case e.Invert:
		r.emit(lhs + " != " + rhs)
	default:
		r.emit(lhs + " " + rhs)
		if (lhs == "icmp type" || lhs == "icmpv6 type") && set.anonymous() && !set.interval() {
			r.icmpTypes = nil
			for _, el := range set.Elems {
				r.icmpTypes = append(r.icmpTypes, el.Key...)
			}
		}
	}
	return nil
}

// setLiteral renders an anonymous set's elements: "{ 80, 443 }", "{ 1-100 }",
// "{ 10.0.0.0/8 }", "{ 22 : accept }", "{ 1.2.3.4 . 22 }", sorted by value as nft prints
// them; data renders what an element maps to.
func setLiteral(env Env, fs []field, set *setInfo, data func(setElem) (string, error)) (string, error) {
	if set.ElemsErr != nil {
		return "", set.ElemsErr
	}
	if len(fs) > 1 {
		return concatLiteral(env, fs, set, data)
	}
	f := fs[0]
	elems := append([]setElem(nil), set.Elems...)
	for _, el := range elems {
		if uint32(len(el.Key)) != f.size || el.KeyEnd != nil {
			return "", errUnsupported
		}
	}
	key := func(b []byte) []byte { return sortKey(f, b) }
	sort.SliceStable(elems, func(i, j int) bool {
		c := bytes.Compare(key(elems[i].Key), key(elems[j].Key))
		if c != 0 {
			return c < 0
		}
		// An interval end sorts before a start at the same value.
		return elems[i].End && !elems[j].End
	})
	var items []string
	for i, el := range elems {
		var s string
		var err error
		switch {
		case !set.interval():
			if el.End {
				return "", errUnsupported
			}
			s, err = f.format(env, el.Key)
		case el.End:
			continue
		default:
			// The interval runs to the value before the next end element, or to the
			// largest value when none follows; the kernel dumps no end where the next
			// interval starts right after this one (0-4, 5-9).
			last := maxValue(f, len(el.Key))
			if i+1 < len(elems) {
				var ok bool
				if last, ok = predecessor(f, elems[i+1].Key); !ok {
					return "", errUnsupported
				}
			}
			s, err = intervalString(env, f, el.Key, last)
		}
		if err != nil {
			return "", err
		}
		d, err := data(el)
		if err != nil {
			return "", err
		}
		items = append(items, s+d)
	}
	if len(items) == 0 {
		return "", errUnsupported
	}
	return "{ " + strings.Join(items, ", ") + " }", nil
}

// concatLiteral renders the elements of a concatenation: each component in its own
// 32-bit slots, an interval set's element from its key to its key end.
func concatLiteral(env Env, fs []field, set *setInfo, data func(setElem) (string, error)) (string, error) {
	split := func(b []byte) ([][]byte, bool) {
		var parts [][]byte
		for _, f := range fs {
			n := slotLen(f.size) * nftRegSize32
			if len(b) < n || !allZero(b[f.size:n]) {
				return nil, false
			}
			parts, b = append(parts, b[:f.size]), b[n:]
		}
		return parts, len(b) == 0
	}
	for _, f := range fs {
		if hostOrder(f.typ) && !f.be {
			// Ordered as nft orders them only when every component is big-endian.
			return "", errUnsupported
		}
	}
	elems := append([]setElem(nil), set.Elems...)
	sort.SliceStable(elems, func(i, j int) bool { return bytes.Compare(elems[i].Key, elems[j].Key) < 0 })
	var items []string
	for _, el := range elems {
		if el.End {
			return "", errUnsupported
		}
		first, ok := split(el.Key)
		if !ok {
			return "", errUnsupported
		}
		last := first
		if set.interval() {
			if last, ok = split(el.KeyEnd); !ok {
				return "", errUnsupported
			}
		} else if el.KeyEnd != nil {
			return "", errUnsupported
		}
		var comps []string
		for i, f := range fs {
			s, err := intervalString(env, f, first[i], last[i])
			if err != nil {
				return "", err
			}
			comps = append(comps, s)
		}
		d, err := data(el)
		if err != nil {
			return "", err
		}
		items = append(items, strings.Join(comps, " . ")+d)
	}
	if len(items) == 0 {
		return "", errUnsupported
	}
	return "{ " + strings.Join(items, ", ") + " }", nil
}
