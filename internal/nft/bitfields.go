package nft

import (
	"fmt"
	"strconv"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Header fields narrower than a byte boundary ("ip dscp", "ip6 flowlabel"): nft loads the
// bytes that hold them, masks the field's bits and compares them in place.

type bitField struct {
	base    expr.PayloadBase
	net, l4 uint8
	off, n  uint32
	mask    uint32
	shift   uint
	name    string
	typ     vtype
	layer   int
}

var bitFields = []bitField{
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV4, 0, 0, 1, 0xf0, 4, "ip version", tInt, 1},
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV4, 0, 0, 1, 0x0f, 0, "ip hdrlength", tInt, 1},
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV4, 0, 1, 1, 0xfc, 2, "ip dscp", tDSCP, 1},
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV4, 0, 1, 1, 0x03, 0, "ip ecn", tECN, 1},
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV6, 0, 0, 1, 0xf0, 4, "ip6 version", tInt, 1},
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV6, 0, 0, 2, 0x0fc0, 6, "ip6 dscp", tDSCP, 1},
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV6, 0, 1, 1, 0x30, 4, "ip6 ecn", tECN, 1},
	{expr.PayloadBaseNetworkHeader, unix.NFPROTO_IPV6, 0, 1, 3, 0x0fffff, 0, "ip6 flowlabel", tInt, 1},
	{expr.PayloadBaseTransportHeader, 0, unix.IPPROTO_TCP, 12, 1, 0xf0, 4, "tcp doff", tInt, 2},
	{expr.PayloadBaseTransportHeader, 0, unix.IPPROTO_DCCP, 8, 1, 0x1e, 1, "dccp type", tDCCPType, 2},
	{expr.PayloadBaseLLHeader, 0, 0, 14, 2, 0x0fff, 0, "vlan id", tInt, layerVlan},
	{expr.PayloadBaseLLHeader, 0, 0, 14, 1, 0xe0, 5, "vlan pcp", tInt, layerVlan},
	{expr.PayloadBaseLLHeader, 0, 0, 14, 1, 0x10, 4, "vlan dei", tInt, layerVlan},
}

var dscpNames = map[uint32]string{
	0: "cs0", 8: "cs1", 16: "cs2", 24: "cs3", 32: "cs4", 40: "cs5", 48: "cs6", 56: "cs7",
	10: "af11", 12: "af12", 14: "af13", 18: "af21", 20: "af22", 22: "af23", 26: "af31",
	28: "af32", 30: "af33", 34: "af41", 36: "af42", 38: "af43", 46: "ef", 44: "va", 1: "lephb",
}

var ecnNames = map[uint32]string{0: "not-ect", 1: "ect1", 2: "ect0", 3: "ce"}

var dccpTypeNames = map[uint32]string{
	0: "request", 1: "response", 2: "data", 3: "ack", 4: "dataack", 5: "closereq", 6: "close",
	7: "reset", 8: "sync", 9: "syncack",
}

// findBitField returns the bit field a masked payload load reads.
func findBitField(v regVal) (bitField, bool) {
	if v.kind == rvField {
		// An extension header's bits: the loader said which can be in these bytes.
		for _, b := range v.f.bits {
			if uint32(len(v.mask)) == b.n && beUint(v.mask) == b.mask {
				return b, true
			}
		}
		return bitField{}, false
	}
	for _, b := range bitFields {
		if b.base != v.base || b.off != v.off || b.n != v.n || uint32(len(v.mask)) != v.n {
			continue
		}
		if (b.net != 0 && b.net != v.net) || (b.l4 != 0 && b.l4 != v.l4) || beUint(v.mask) != b.mask ||
			(b.layer == layerVlan && !v.vlan) {
			continue
		}
		return b, true
	}
	return bitField{}, false
}

func beUint(b []byte) uint32 {
	var u uint32
	for _, c := range b {
		u = u<<8 | uint32(c)
	}
	return u
}

// bitCmp renders a comparison of a bit field: the compared value must have no bit
// outside the field.
func (r *renderer) bitCmp(b bitField, e *expr.Cmp, op string) error {
	if uint32(len(e.Data)) != b.n || beUint(e.Data)&^b.mask != 0 {
		return errUnsupported
	}
	s, err := bitValue(b, e.Data)
	if err != nil {
		return err
	}
	f := field{name: b.name, layer: b.layer, net: b.net, l4: b.l4}
	r.match(f, b.name+" "+op+s, e.Op, nil)
	return nil
}

// bitValue prints the value of bit field b held in place in data.
func bitValue(b bitField, data []byte) (string, error) {
	val := (beUint(data) & b.mask) >> b.shift
	switch b.typ {
	case tDSCP:
		if s, ok := dscpNames[val]; ok {
			return s, nil
		}
		return fmt.Sprintf("0x%02x", val), nil
	case tECN:
		return ecnNames[val], nil
	case tDCCPType:
		if s, ok := dccpTypeNames[val]; ok {
			return s, nil
		}
	}
	return strconv.FormatUint(uint64(val), 10), nil
}

// mangle renders a write of part of the bytes just loaded ("ip ttl set 64", "ip dscp set
// cs1"): nft loads the 16-bit word that holds the field (for the checksum update), keeps
// the other bits with the mask and sets the field's with the xor.
func (r *renderer) mangle(v regVal) error {
	n := int(v.n)
	if n > 4 || len(v.mask) != n || (v.xor != nil && len(v.xor) != n) {
		return errUnsupported
	}
	all := uint32(1)<<(8*n) - 1
	if n == 4 {
		all = ^uint32(0)
	}
	bits := ^beUint(v.mask) & all
	x := uint32(0)
	if v.xor != nil {
		x = beUint(v.xor)
	}
	if bits == 0 || x&^bits != 0 {
		return errUnsupported
	}
	// A bit field of the protocol.
	for _, b := range bitFields {
		if b.base != v.base || (b.net != 0 && b.net != v.net) || (b.l4 != 0 && b.l4 != v.l4) ||
			(b.layer == layerVlan && !v.vlan) || b.off < v.off || b.off+b.n > v.off+v.n {
			continue
		}
		sh := 8 * (v.off + v.n - b.off - b.n)
		if b.mask<<sh != bits {
			continue
		}
		val := make([]byte, b.n)
		for i := range val {
			val[i] = byte((x >> sh) >> (8 * (int(b.n) - 1 - i)))
		}
		f := field{name: b.name, layer: b.layer, net: b.net, l4: b.l4}
		s, err := bitValue(b, val)
		if err != nil {
			return err
		}
		r.hideDeps(f)
		r.emit(b.name + " set " + s)
		return nil
	}
	// Whole bytes of a named field.
	first, last := -1, -1
	for i := 0; i < n; i++ {
		switch byte(bits >> (8 * (n - 1 - i))) {
		case 0xff:
			if first < 0 {
				first = i
			}
			last = i
		case 0:
		default:
			return errUnsupported
		}
	}
	w := v
	w.mask, w.xor, w.off, w.n = nil, nil, v.off+uint32(first), uint32(last-first+1)
	fs, prefix, err := namedPayloadFields(w)
	if err != nil || prefix || len(fs) != 1 {
		return errUnsupported
	}
	val := make([]byte, w.n)
	for i := range val {
		val[i] = byte(x >> (8 * (n - 1 - first - i)))
	}
	s, err := formatValue(r.env, fs[0].typ, val)
	if err != nil {
		return err
	}
	r.hideDeps(fs[0])
	r.emit(fs[0].name + " set " + s)
	return nil
}

// format prints a value of field f (a set element's key).
func (f field) format(env Env, b []byte) (string, error) {
	if f.typ != tBits {
		return formatValue(env, f.typ, f.host(b))
	}
	if f.bit == nil || uint32(len(b)) != f.bit.n || beUint(b)&^f.bit.mask != 0 {
		return "", errUnsupported
	}
	return bitValue(*f.bit, b)
}

// bitRange renders a range of a bit field ("vlan id 1-5", "ip dscp cs1-cs3").
func (r *renderer) bitRange(v regVal, op string, from, to []byte) error {
	b, ok := findBitField(v)
	f := field{name: b.name, typ: tBits, size: b.n, layer: b.layer, net: b.net, l4: b.l4, bit: &b}
	if !ok {
		return errUnsupported
	}
	lo, err := f.format(r.env, from)
	if err != nil {
		return err
	}
	hi, err := f.format(r.env, to)
	if err != nil {
		return err
	}
	if b.typ == tDSCP {
		// nft prints the ends of a dscp range as numbers.
		lo = fmt.Sprintf("0x%02x", (beUint(from)&b.mask)>>b.shift)
		hi = fmt.Sprintf("0x%02x", (beUint(to)&b.mask)>>b.shift)
	}
	r.match(f, f.name+" "+op+lo+"-"+hi, expr.CmpOpNeq, nil)
	return nil
}
