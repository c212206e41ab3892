package nft

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Values as nft prints them: numbers, addresses, names, flags, set literals.

// hostOrder reports whether a value type is stored in host byte order.
func hostOrder(t vtype) bool {
	switch t {
	case tHostInt, tHex32, tIfindex, tCtState, tCtStatus, tFibType, tRealm, tTimeMs, tTCHandle,
		tArphrd, tIfGroup, tCtEvent, tTimeNs, tHour:
		return true
	}
	return false
}

// sortKey returns b as a big-endian number for ordering.
func sortKey(f field, b []byte) []byte {
	if !hostOrder(f.typ) || f.be || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
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
	first, last = f.host(first), f.host(last)
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
		u, ok := hostValue(b)
		if !ok {
			return "", errUnsupported
		}
		return strconv.FormatUint(u, 10), nil
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
	case tCtDir, tICMPType, tICMP6Type, tPktType, tICMPCode, tICMP6Code, tIGMPType:
		if len(b) != 1 {
			return "", errUnsupported
		}
		names := map[vtype]map[uint8]string{tCtDir: ctDirNames, tICMPType: icmpTypeNames, tICMP6Type: icmp6TypeNames, tPktType: pkttypeNames,
			tICMPCode: icmpCodeNames, tICMP6Code: icmp6CodeNames, tIGMPType: igmpTypeNames}[t]
		if n, ok := names[b[0]]; ok {
			return n, nil
		}
		return strconv.Itoa(int(b[0])), nil
	case tCtLabel:
		// The kernel's label bitmap is of longs: bit n is bit n%8 of byte n/8 on a
		// little-endian host only.
		if len(b) != 16 || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
			return "", errUnsupported
		}
		n := -1
		for i, c := range b {
			if c == 0 {
				continue
			}
			if n >= 0 || c&(c-1) != 0 {
				return "", errUnsupported
			}
			n = i*8 + bits.TrailingZeros8(c)
		}
		if n < 0 {
			return "", errUnsupported
		}
		return strconv.Itoa(n), nil
	case tRawHex:
		s := strings.TrimLeft(hex.EncodeToString(b), "0")
		if len(b) == 0 {
			return "", errUnsupported
		}
		if s == "" {
			s = "0"
		}
		return "0x" + s, nil
	case tEther:
		if len(b) != 6 {
			return "", errUnsupported
		}
		return net.HardwareAddr(b).String(), nil
	case tArpOp, tEtherType:
		if len(b) != 2 {
			return "", errUnsupported
		}
		v := binary.BigEndian.Uint16(b)
		names, unnamed := etherTypeNames, fmt.Sprintf("0x%04x", v)
		if t == tArpOp {
			names, unnamed = arpOpNames, strconv.Itoa(int(v))
		}
		if n, ok := names[v]; ok {
			return n, nil
		}
		return unnamed, nil
	}
	return formatMore(t, b)
}

// host returns a value of f in host order: as stored, or converted back when a byteorder
// expression put it in network order.
func (f field) host(b []byte) []byte {
	if !f.be || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return b
	}
	h := make([]byte, len(b))
	for i := range b {
		h[i] = b[len(b)-1-i]
	}
	return h
}

// hostValue reads a host-order unsigned integer of 1, 2, 4 or 8 bytes.
func hostValue(b []byte) (uint64, bool) {
	switch len(b) {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.NativeEndian.Uint16(b)), true
	case 4:
		return uint64(binary.NativeEndian.Uint32(b)), true
	case 8:
		return binary.NativeEndian.Uint64(b), true
	}
	return 0, false
}

// formatMore prints the value types of the expressions decoded in native.go.
func formatMore(t vtype, b []byte) (string, error) {
	u, isInt := hostValue(b)
	switch t {
	case tString:
		i := bytes.IndexByte(b, 0)
		if i < 0 || !allZero(b[i:]) {
			return "", errUnsupported
		}
		return strconv.Quote(string(b[:i])), nil
	case tExists:
		if !isInt || u > 1 {
			return "", errUnsupported
		}
		return map[uint64]string{0: "missing", 1: "exists"}[u], nil
	case tFibType, tArphrd, tMHType, tDay:
		names := map[vtype]map[uint64]string{tFibType: fibTypeNames, tArphrd: arphrdNames, tMHType: mhTypeNames,
			tDay: dayNames}[t]
		if n, ok := names[u]; ok && isInt {
			return n, nil
		}
	case tRealm:
		// nft names realms from /etc/iproute2/rt_realms, where 0 is "cosmos".
		if isInt && len(b) == 4 && u != 0 {
			return strconv.FormatUint(u, 10), nil
		}
	case tIfGroup:
		// nft names groups from /etc/iproute2/group, where 0 is "default".
		if isInt && len(b) == 4 && u == 0 {
			return `"default"`, nil
		}
	case tTimeMs:
		if isInt && len(b) == 4 {
			return msString(u), nil
		}
	case tTimeNs:
		// nft prints the second in the local time zone of the time printed.
		if isInt && len(b) == 8 && u/1e9 <= math.MaxInt64 {
			return strconv.Quote(time.Unix(int64(u/1e9), 0).In(time.Local).Format("2006-01-02 15:04:05")), nil
		}
	case tHour:
		if isInt && len(b) == 4 {
			return hourString(u), nil
		}
	case tTCHandle:
		if !isInt || len(b) != 4 {
			break
		}
		switch {
		case u == 0:
			return "none", nil
		case u == 0xffffffff:
			return "root", nil
		case u>>16 != 0:
			return fmt.Sprintf("%x:%x", u>>16, u&0xffff), nil
		}
	case tCtEvent:
		if isInt && len(b) == 4 {
			if n, ok := bitNames(ctEventBits, uint32(u)); ok {
				return n, nil
			}
		}
	}
	return "", errUnsupported
}

// hourString prints a time of day given in seconds since midnight UTC as nft 1.0.6 does:
// moved by the local time zone's offset now, with C's arithmetic (a negative remainder
// wraps around as an unsigned number), seconds only when there are some.
func hourString(sec uint64) string {
	_, off := time.Now().Zone()
	s := uint64(uint32((int64(sec) + int64(off)) % 86400))
	out := fmt.Sprintf("%02d:%02d", s/3600, s/60%60)
	if s%60 != 0 {
		out += fmt.Sprintf(":%02d", s%60)
	}
	return strconv.Quote(out)
}

// msString prints a duration in milliseconds as nft does: "1d2h3m4s5ms", "30s".
func msString(ms uint64) string {
	if ms == 0 {
		return "0s"
	}
	s := ""
	for _, u := range []struct {
		n    uint64
		name string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}} {
		if ms >= u.n {
			s += strconv.FormatUint(ms/u.n, 10) + u.name
			ms %= u.n
		}
	}
	return s
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
