package nft

import (
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Header fields, meta and ct keys: their printed names and value types.

// field is a header field, meta key or ct key with its printed name and value type.
type field struct {
	name string
	typ  vtype
	size uint32
	// layer says which dependency a match on it makes redundant: 1 network, 2 transport.
	layer int
	// net and l4 are the protocols the field belongs to (for dependency removal).
	net, l4 uint8
}

type vtype int

const (
	tInt       vtype = iota + 1 // big-endian unsigned, decimal
	tHostInt                    // host-order unsigned, decimal
	tHex32                      // host-order u32, 0x%08x (marks)
	tAddr4                      // IPv4 address
	tAddr6                      // IPv6 address
	tProto                      // IP protocol number
	tNFProto                    // ipv4/ipv6
	tIfname                     // interface name, NUL padded, may be a wildcard prefix
	tIfindex                    // host-order interface index
	tCtState                    // host-order flags
	tCtStatus                   // host-order flags
	tCtDir                      // original/reply
	tTCPFlags                   // flags
	tICMPType                   // icmp type
	tICMP6Type                  // icmpv6 type
	tPktType                    // host/broadcast/...
	tEtherType                  // big-endian u16 ether type
)

type pfield struct {
	off, size uint32
	name      string
	typ       vtype
}

var (
	ip4Fields = []pfield{
		{2, 2, "length", tInt}, {4, 2, "id", tInt}, {8, 1, "ttl", tInt},
		{9, 1, "protocol", tProto}, {12, 4, "saddr", tAddr4}, {16, 4, "daddr", tAddr4},
	}
	ip6Fields = []pfield{
		{4, 2, "length", tInt}, {6, 1, "nexthdr", tProto}, {7, 1, "hoplimit", tInt},
		{8, 16, "saddr", tAddr6}, {24, 16, "daddr", tAddr6},
	}
	tcpFields = []pfield{
		{0, 2, "sport", tInt}, {2, 2, "dport", tInt}, {4, 4, "sequence", tInt},
		{8, 4, "ackseq", tInt}, {13, 1, "flags", tTCPFlags}, {14, 2, "window", tInt},
	}
	udpFields   = []pfield{{0, 2, "sport", tInt}, {2, 2, "dport", tInt}, {4, 2, "length", tInt}}
	portFields  = []pfield{{0, 2, "sport", tInt}, {2, 2, "dport", tInt}}
	icmpFields  = []pfield{{0, 1, "type", tICMPType}}
	icmp6Fields = []pfield{{0, 1, "type", tICMP6Type}}
)

// payloadFields maps a payload load to the fields it covers: one or more whole fields, or
// (prefix > 0) the first bytes of one address field.
func payloadFields(v regVal) (fs []field, prefix bool, err error) {
	var proto string
	var table []pfield
	layer := 0
	switch v.base {
	case expr.PayloadBaseNetworkHeader:
		layer = 1
		switch v.net {
		case unix.NFPROTO_IPV4:
			proto, table = "ip", ip4Fields
		case unix.NFPROTO_IPV6:
			proto, table = "ip6", ip6Fields
		default:
			return nil, false, errUnsupported
		}
	case expr.PayloadBaseTransportHeader:
		layer = 2
		switch v.l4 {
		case unix.IPPROTO_TCP:
			proto, table = "tcp", tcpFields
		case unix.IPPROTO_UDP:
			proto, table = "udp", udpFields
		case unix.IPPROTO_UDPLITE:
			proto, table = "udplite", portFields
		case unix.IPPROTO_SCTP:
			proto, table = "sctp", portFields
		case unix.IPPROTO_DCCP:
			proto, table = "dccp", portFields
		case unix.IPPROTO_ICMP:
			proto, table = "icmp", icmpFields
		case unix.IPPROTO_ICMPV6:
			proto, table = "icmpv6", icmp6Fields
		default:
			proto, table = "th", portFields
		}
	default:
		return nil, false, errUnsupported
	}
	mk := func(p pfield) field {
		return field{name: proto + " " + p.name, typ: p.typ, size: p.size, layer: layer, net: v.net, l4: v.l4}
	}
	pos, end := v.off, v.off+v.n
	for pos < end {
		found := false
		for _, p := range table {
			if p.off != pos {
				continue
			}
			if p.off+p.size > end {
				// The load ends inside this field: a prefix of an address.
				if len(fs) == 0 && (p.typ == tAddr4 || p.typ == tAddr6) {
					return []field{mk(p)}, true, nil
				}
				return nil, false, errUnsupported
			}
			fs = append(fs, mk(p))
			pos += p.size
			found = true
			break
		}
		if !found {
			return nil, false, errUnsupported
		}
	}
	return fs, false, nil
}

func metaField(k expr.MetaKey) (field, bool) {
	switch k {
	case expr.MetaKeyNFPROTO:
		return field{name: "meta nfproto", typ: tNFProto, size: 1}, true
	case expr.MetaKeyL4PROTO:
		return field{name: "meta l4proto", typ: tProto, size: 1}, true
	case expr.MetaKeyPROTOCOL:
		return field{name: "meta protocol", typ: tEtherType, size: 2}, true
	case expr.MetaKeyIIFNAME:
		return field{name: "iifname", typ: tIfname, size: 16}, true
	case expr.MetaKeyOIFNAME:
		return field{name: "oifname", typ: tIfname, size: 16}, true
	case expr.MetaKeyIIF:
		return field{name: "iif", typ: tIfindex, size: 4}, true
	case expr.MetaKeyOIF:
		return field{name: "oif", typ: tIfindex, size: 4}, true
	case expr.MetaKeyMARK:
		return field{name: "meta mark", typ: tHex32, size: 4}, true
	case expr.MetaKeySKUID:
		return field{name: "meta skuid", typ: tHostInt, size: 4}, true
	case expr.MetaKeySKGID:
		return field{name: "meta skgid", typ: tHostInt, size: 4}, true
	case expr.MetaKeyPKTTYPE:
		return field{name: "meta pkttype", typ: tPktType, size: 1}, true
	case expr.MetaKeyLEN:
		return field{name: "meta length", typ: tHostInt, size: 4}, true
	}
	return field{}, false
}

func ctField(k expr.CtKey) (field, bool) {
	switch k {
	case expr.CtKeySTATE:
		return field{name: "ct state", typ: tCtState, size: 4}, true
	case expr.CtKeySTATUS:
		return field{name: "ct status", typ: tCtStatus, size: 4}, true
	case expr.CtKeyMARK:
		return field{name: "ct mark", typ: tHex32, size: 4}, true
	case expr.CtKeyDIRECTION:
		return field{name: "ct direction", typ: tCtDir, size: 1}, true
	}
	return field{}, false
}

// simpleField is the single, whole field a register holds (no mask).
func simpleField(v regVal) (field, error) {
	switch v.kind {
	case rvPayload:
		fs, prefix, err := payloadFields(v)
		if err != nil || prefix || len(fs) != 1 {
			return field{}, errUnsupported
		}
		return fs[0], nil
	case rvMeta:
		if f, ok := metaField(v.meta); ok {
			return f, nil
		}
	case rvCt:
		if f, ok := ctField(v.ct); ok {
			return f, nil
		}
	}
	return field{}, errUnsupported
}
