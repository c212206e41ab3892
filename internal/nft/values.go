package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Values as nft prints them: numbers, addresses, names, flags, set literals.

// setLiteral renders an anonymous set's elements: "{ 80, 443 }", "{ 1-100 }",
// "{ 10.0.0.0/8 }", "{ 22 : accept }", sorted by value as nft prints them.
func setLiteral(env Env, f field, set *setInfo, vmap bool) (string, error) {
	if set.ElemsErr != nil {
		return "", set.ElemsErr
	}
	elems := append([]setElem(nil), set.Elems...)
	for _, el := range elems {
		if uint32(len(el.Key)) != f.size {
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
	data := func(el setElem) (string, error) {
		if !vmap {
			return "", nil
		}
		if el.Verdict == nil {
			return "", errUnsupported
		}
		return " : " + VerdictString(el.Verdict.Code, el.Verdict.Chain), nil
	}
	var items []string
	if !set.interval() {
		for _, el := range elems {
			if el.End {
				return "", errUnsupported
			}
			s, err := formatValue(env, f.typ, el.Key)
			if err != nil {
				return "", err
			}
			d, err := data(el)
			if err != nil {
				return "", err
			}
			items = append(items, s+d)
		}
	} else {
		for i, el := range elems {
			if el.End {
				continue
			}
			// The interval runs to the value before the next end element, or to the
			// largest value when none follows.
			last := maxValue(f, len(el.Key))
			if i+1 < len(elems) && elems[i+1].End {
				var ok bool
				last, ok = predecessor(f, elems[i+1].Key)
				if !ok {
					return "", errUnsupported
				}
			} else if i+1 < len(elems) {
				// Two starts in a row: the first is a single value, not open-ended.
				last = el.Key
			}
			s, err := intervalString(env, f, el.Key, last)
			if err != nil {
				return "", err
			}
			d, err := data(el)
			if err != nil {
				return "", err
			}
			items = append(items, s+d)
		}
	}
	if len(items) == 0 {
		return "", errUnsupported
	}
	return "{ " + strings.Join(items, ", ") + " }", nil
}

// hostOrder reports whether a value type is stored in host byte order.
func hostOrder(t vtype) bool {
	switch t {
	case tHostInt, tHex32, tIfindex, tCtState, tCtStatus:
		return true
	}
	return false
}

// sortKey returns b as a big-endian number for ordering.
func sortKey(f field, b []byte) []byte {
	if !hostOrder(f.typ) || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return b
	}
	k := make([]byte, len(b))
	for i := range b {
		k[i] = b[len(b)-1-i]
	}
	return k
}

func maxValue(f field, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// predecessor returns the value one below b in the field's byte order.
func predecessor(f field, b []byte) ([]byte, bool) {
	k := append([]byte(nil), sortKey(f, b)...)
	i := len(k) - 1
	for ; i >= 0; i-- {
		if k[i] > 0 {
			k[i]--
			break
		}
		k[i] = 0xff
	}
	if i < 0 {
		return nil, false
	}
	return sortKey(f, k), true
}

// intervalString renders [first, last]: one value, an address prefix, or a range.
func intervalString(env Env, f field, first, last []byte) (string, error) {
	a, err := formatValue(env, f.typ, first)
	if err != nil {
		return "", err
	}
	if bytes.Equal(first, last) {
		return a, nil
	}
	if f.typ == tAddr4 || f.typ == tAddr6 {
		if p, ok := prefixOf(first, last); ok {
			return p, nil
		}
	}
	b, err := formatValue(env, f.typ, last)
	if err != nil {
		return "", err
	}
	return a + "-" + b, nil
}

// prefixOf returns first/len when [first, last] is exactly one prefix block.
func prefixOf(first, last []byte) (string, bool) {
	n := len(first) * 8
	ones := 0
	for ones < n {
		i, m := ones/8, byte(0x80>>(ones%8))
		if first[i]&m != last[i]&m {
			break
		}
		ones++
	}
	for b := ones; b < n; b++ {
		i, m := b/8, byte(0x80>>(b%8))
		if first[i]&m != 0 || last[i]&m == 0 {
			return "", false
		}
	}
	a, ok := netip.AddrFromSlice(first)
	if !ok {
		return "", false
	}
	return netip.PrefixFrom(a, ones).String(), true
}

// formatValue prints a value of type t as nft does.
func formatValue(env Env, t vtype, b []byte) (string, error) {
	switch t {
	case tInt:
		if len(b) == 0 || len(b) > 8 {
			return "", errUnsupported
		}
		var u uint64
		for _, c := range b {
			u = u<<8 | uint64(c)
		}
		return strconv.FormatUint(u, 10), nil
	case tHostInt:
		if len(b) != 4 {
			return "", errUnsupported
		}
		return strconv.FormatUint(uint64(hostUint(b)), 10), nil
	case tHex32:
		if len(b) != 4 {
			return "", errUnsupported
		}
		return fmt.Sprintf("0x%08x", hostUint(b)), nil
	case tAddr4, tAddr6:
		a, ok := netip.AddrFromSlice(b)
		if !ok || (t == tAddr4) != (len(b) == 4) {
			return "", errUnsupported
		}
		return a.String(), nil
	case tProto:
		if len(b) != 1 {
			return "", errUnsupported
		}
		return protoName(b[0]), nil
	case tNFProto:
		if len(b) != 1 {
			return "", errUnsupported
		}
		if n, ok := nfprotoNames[b[0]]; ok {
			return n, nil
		}
		return strconv.Itoa(int(b[0])), nil
	case tIfname:
		return ifnameString(b)
	case tIfindex:
		if len(b) != 4 {
			return "", errUnsupported
		}
		i := hostUint(b)
		if env.IfName != nil {
			if n, ok := env.IfName(i); ok {
				return strconv.Quote(n), nil
			}
		}
		return strconv.FormatUint(uint64(i), 10), nil
	case tCtState, tCtStatus, tTCPFlags:
		f := field{typ: t, size: uint32(len(b))}
		n, ok := bitNames(flagBits(f), flagValue(f, b))
		if !ok {
			return "", errUnsupported
		}
		return n, nil
	case tCtDir, tICMPType, tICMP6Type, tPktType:
		if len(b) != 1 {
			return "", errUnsupported
		}
		names := map[vtype]map[uint8]string{tCtDir: ctDirNames, tICMPType: icmpTypeNames, tICMP6Type: icmp6TypeNames, tPktType: pkttypeNames}[t]
		if n, ok := names[b[0]]; ok {
			return n, nil
		}
		return strconv.Itoa(int(b[0])), nil
	case tEtherType:
		if len(b) != 2 {
			return "", errUnsupported
		}
		v := binary.BigEndian.Uint16(b)
		if n, ok := etherTypeNames[v]; ok {
			return n, nil
		}
		return fmt.Sprintf("0x%04x", v), nil
	}
	return "", errUnsupported
}

// ifnameString prints an interface name match: NUL-terminated is exact ("lo"), a shorter
// comparison without NUL is a prefix match ("veth*").
func ifnameString(b []byte) (string, error) {
	if len(b) == 0 || len(b) > 16 {
		return "", errUnsupported
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		if !allZero(b[i:]) {
			return "", errUnsupported
		}
		return strconv.Quote(string(b[:i])), nil
	}
	if len(b) == 16 {
		return strconv.Quote(string(b)), nil
	}
	return strconv.Quote(string(b) + "*"), nil
}

func hostUint(b []byte) uint32 {
	var buf [4]byte
	copy(buf[:], b)
	return binary.NativeEndian.Uint32(buf[:])
}
