package nft

import (
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Header fields, meta and ct keys: their printed names and value types.

// field is a header field, meta key or ct key with its printed name and value type.
type field struct {
	name string
	typ  vtype
	size uint32
	// layer says which dependency a match on it makes redundant: 1 network, 2 transport,
	// layerLink the ethernet header.
	layer int
	// net and l4 are the protocols the field belongs to (for dependency removal).
	net, l4 uint8
	// be says a host-order value was converted to network order (byteorder hton).
	be bool
	// icmpDep says the field implies the icmp type matched just before (icmp mtu: type
	// destination-unreachable), which nft then hides.
	icmpDep bool
	// natRange says a NAT map's data (tNatMap) is an address range, not address and port.
	natRange bool
	// bit is the bit field a tBits value is in place in; bits the bit fields a masked
	// load of this field (tExthdrBits) can read.
	bit  *bitField
	bits []bitField
}

type vtype int

const (
	tInt        vtype = iota + 1 // big-endian unsigned, decimal
	tHostInt                     // host-order unsigned, decimal
	tHex32                       // host-order u32, 0x%08x (marks)
	tAddr4                       // IPv4 address
	tAddr6                       // IPv6 address
	tProto                       // IP protocol number
	tNFProto                     // ipv4/ipv6
	tIfname                      // interface name, NUL padded, may be a wildcard prefix
	tIfindex                     // host-order interface index
	tCtState                     // host-order flags
	tCtStatus                    // host-order flags
	tCtDir                       // original/reply
	tTCPFlags                    // flags
	tICMPType                    // icmp type
	tICMP6Type                   // icmpv6 type
	tPktType                     // host/broadcast/...
	tEtherType                   // big-endian u16 ether type
	tString                      // NUL-padded string, quoted (helper, osf, interface kind)
	tExists                      // boolean: exists/missing
	tFibType                     // host-order u32 route type
	tRealm                       // host-order u32 route realm
	tTimeMs                      // host-order milliseconds (ct expiration)
	tTCHandle                    // host-order u32 tc handle (meta priority)
	tArphrd                      // host-order u16 interface type
	tDay                         // day of week
	tIfGroup                     // host-order u32 interface group
	tMHType                      // mobility header type
	tCtEvent                     // host-order u32 conntrack event bits
	tICMPCode                    // icmp code
	tICMP6Code                   // icmpv6 code
	tEther                       // ethernet address
	tDSCP                        // dscp of ip or ip6
	tRawHex                      // raw payload, big-endian, 0x%x
	tCtLabel                     // one bit of the 128-bit conntrack label bitmap
	tNatMap                      // a NAT map's result: address and port, or an address range
	tArpOp                       // big-endian u16 arp operation
	tTimeNs                      // host-order u64 nanoseconds since the epoch, printed in local time
	tHour                        // host-order u32 seconds since midnight UTC, printed in local time
	tBits                        // a bit field's value in place (field.bit)
	tDCCPType                    // dccp packet type
	tExthdrBits                  // bytes of an extension header holding bit fields (field.bits)
	tECN                         // ecn of ip or ip6
	tIGMPType                    // igmp type
)

// layerLink and layerVlan are the layers of the ethernet and vlan headers (matches on
// them hide "meta iiftype ether" and "ether type 8021q").
const (
	layerLink = 3
	layerVlan = 4
)

type pfield struct {
	off, size uint32
	name      string
	typ       vtype
}

// icmpTypeFields are the icmp and icmpv6 fields whose meaning depends on the type, named
// only after a match on the type that nft's dependency for them would make: the echo
// types for id and sequence (nft prints that match), exactly the one type for the others
// (nft hides it).
func icmpTypeFields(v regVal) []pfield {
	if len(v.icmp) == 0 {
		return nil
	}
	echo := map[uint8]bool{0: true, 8: true}
	if v.l4 == unix.IPPROTO_ICMPV6 {
		echo = map[uint8]bool{128: true, 129: true}
	}
	allEcho := true
	for _, t := range v.icmp {
		allEcho = allEcho && echo[t]
	}
	if allEcho {
		return []pfield{{4, 2, "id", tInt}, {6, 2, "sequence", tInt}}
	}
	if len(v.icmp) != 1 {
		return nil
	}
	switch [2]uint8{v.l4, v.icmp[0]} {
	case [2]uint8{unix.IPPROTO_ICMP, 3}:
		return []pfield{{6, 2, "mtu", tInt}}
	case [2]uint8{unix.IPPROTO_ICMP, 5}:
		return []pfield{{4, 4, "gateway", tInt}}
	case [2]uint8{unix.IPPROTO_ICMPV6, 2}:
		return []pfield{{4, 4, "mtu", tInt}}
	case [2]uint8{unix.IPPROTO_ICMPV6, 130}:
		return []pfield{{4, 2, "max-delay", tInt}}
	}
	return nil
}

var (
	ip4Fields = []pfield{
		{2, 2, "length", tInt}, {4, 2, "id", tInt}, {6, 2, "frag-off", tInt}, {8, 1, "ttl", tInt},
		{9, 1, "protocol", tProto}, {10, 2, "checksum", tInt}, {12, 4, "saddr", tAddr4}, {16, 4, "daddr", tAddr4},
	}
	ip6Fields = []pfield{
		{4, 2, "length", tInt}, {6, 1, "nexthdr", tProto}, {7, 1, "hoplimit", tInt},
		{8, 16, "saddr", tAddr6}, {24, 16, "daddr", tAddr6},
	}
	tcpFields = []pfield{
		{0, 2, "sport", tInt}, {2, 2, "dport", tInt}, {4, 4, "sequence", tInt},
		{8, 4, "ackseq", tInt}, {13, 1, "flags", tTCPFlags}, {14, 2, "window", tInt},
		{16, 2, "checksum", tInt}, {18, 2, "urgptr", tInt},
	}
	udpFields  = []pfield{{0, 2, "sport", tInt}, {2, 2, "dport", tInt}, {4, 2, "length", tInt}, {6, 2, "checksum", tInt}}
	portFields = []pfield{{0, 2, "sport", tInt}, {2, 2, "dport", tInt}}
	// The fields after the checksum depend on the type (id or gateway at 4): nft prints
	// them with a type dependency, not rendered here.
	arpFields = []pfield{
		{0, 2, "htype", tInt}, {2, 2, "ptype", tEtherType}, {4, 1, "hlen", tInt}, {5, 1, "plen", tInt},
		{6, 2, "operation", tArpOp}, {8, 6, "saddr ether", tEther}, {14, 4, "saddr ip", tAddr4},
		{18, 6, "daddr ether", tEther}, {24, 4, "daddr ip", tAddr4},
	}
	vlanFields  = []pfield{{16, 2, "type", tEtherType}}
	etherFields = []pfield{{0, 6, "daddr", tEther}, {6, 6, "saddr", tEther}, {12, 2, "type", tEtherType}}
	icmpFields  = []pfield{{0, 1, "type", tICMPType}, {1, 1, "code", tICMPCode}, {2, 2, "checksum", tInt}}
	icmp6Fields = []pfield{{0, 1, "type", tICMP6Type}, {1, 1, "code", tICMP6Code}, {2, 2, "checksum", tInt}}
	espFields   = []pfield{{0, 4, "spi", tInt}, {4, 4, "sequence", tInt}}
	ahFields    = []pfield{{0, 1, "nexthdr", tProto}, {1, 1, "hdrlength", tInt}, {2, 2, "reserved", tInt}, {4, 4, "spi", tInt}, {8, 4, "sequence", tInt}}
	compFields  = []pfield{{0, 1, "nexthdr", tProto}, {1, 1, "flags", tInt}, {2, 2, "cpi", tInt}}
	igmpFields  = []pfield{{0, 1, "type", tIGMPType}, {1, 1, "mrt", tInt}, {2, 2, "checksum", tInt}, {4, 4, "group", tAddr4}}
)

// payloadFields maps a payload load to the fields it covers: one or more whole fields, or
// (prefix > 0) the first bytes of one address field.
type transportHeader struct {
	name   string
	fields []pfield
}

// transportHeaders are the transport headers nft 1.0.6 knows, by IP protocol.
var transportHeaders = map[uint8]transportHeader{
	unix.IPPROTO_TCP: {"tcp", tcpFields}, unix.IPPROTO_UDP: {"udp", udpFields},
	unix.IPPROTO_UDPLITE: {"udplite", portFields}, unix.IPPROTO_SCTP: {"sctp", portFields},
	unix.IPPROTO_DCCP: {"dccp", portFields}, unix.IPPROTO_ICMP: {"icmp", icmpFields},
	unix.IPPROTO_ICMPV6: {"icmpv6", icmp6Fields}, unix.IPPROTO_ESP: {"esp", espFields},
	unix.IPPROTO_AH: {"ah", ahFields}, unix.IPPROTO_COMP: {"comp", compFields},
	unix.IPPROTO_IGMP: {"igmp", igmpFields},
}

func payloadFields(v regVal) ([]field, bool, error) {
	if v.base == expr.PayloadBaseLLHeader && !v.ether {
		return rawPayload(v)
	}
	if v.n == 0 || v.off+v.n < v.off {
		return nil, false, errUnsupported
	}
	fs, prefix, err := namedPayloadFields(v)
	if err != nil && rawOnly(v) {
		return rawPayload(v)
	}
	return fs, prefix, err
}

// rawOnly reports whether nft itself has no name for a payload load and prints it raw
// ("@nh,16,16"): no network protocol known, past the fixed header, an inner header.
func rawOnly(v regVal) bool {
	switch v.base {
	case expr.PayloadBaseNetworkHeader:
		return !v.arp && (v.net == 0 || (v.net == unix.NFPROTO_IPV4 && v.off >= 20) || (v.net == unix.NFPROTO_IPV6 && v.off >= 40))
	case expr.PayloadBaseTransportHeader:
		_, known := transportHeaders[v.l4]
		return !known
	case payloadBaseInner:
		return true
	}
	return false
}

// payloadBaseInner is NFT_PAYLOAD_INNER_HEADER (google/nftables has no name for it).
const payloadBaseInner = expr.PayloadBase(unix.NFT_PAYLOAD_INNER_HEADER)

var rawBases = map[expr.PayloadBase]string{
	expr.PayloadBaseLLHeader: "ll", expr.PayloadBaseNetworkHeader: "nh",
	expr.PayloadBaseTransportHeader: "th", payloadBaseInner: "ih",
}

func rawPayload(v regVal) ([]field, bool, error) {
	b, ok := rawBases[v.base]
	if !ok || v.n == 0 {
		return nil, false, errUnsupported
	}
	return []field{{name: fmt.Sprintf("@%s,%d,%d", b, v.off*8, v.n*8), typ: tRawHex, size: v.n}}, false, nil
}

// namedPayloadFields maps a payload load to the header fields nft names.
func namedPayloadFields(v regVal) (fs []field, prefix bool, err error) {
	var proto string
	var table []pfield
	layer := 0
	switch v.base {
	case expr.PayloadBaseNetworkHeader:
		layer = 1
		switch {
		case v.arp:
			proto, table = "arp", arpFields
		case v.net == unix.NFPROTO_IPV4:
			proto, table = "ip", ip4Fields
		case v.net == unix.NFPROTO_IPV6:
			proto, table = "ip6", ip6Fields
		default:
			return nil, false, errUnsupported
		}
	case expr.PayloadBaseLLHeader:
		proto, table, layer = "ether", etherFields, layerLink
		if v.vlan && v.off >= 14 {
			proto, table = "vlan", vlanFields
		}
	case expr.PayloadBaseTransportHeader:
		layer = 2
		t, ok := transportHeaders[v.l4]
		if !ok {
			// A protocol nft has no header for: its generic transport header.
			t = transportHeader{"th", portFields}
		}
		proto, table = t.name, t.fields
		if extra := icmpTypeFields(v); extra != nil {
			table = append(append([]pfield(nil), t.fields...), extra...)
		}
	default:
		return nil, false, errUnsupported
	}
	mk := func(p pfield) field {
		// The fields of one icmp type: nft hides the match on that type.
		dep := (v.l4 == unix.IPPROTO_ICMP || v.l4 == unix.IPPROTO_ICMPV6) && (p.name == "mtu" || p.name == "gateway" || p.name == "max-delay")
		return field{name: proto + " " + p.name, typ: p.typ, size: p.size, layer: layer, net: v.net, l4: v.l4, icmpDep: dep}
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
				if len(fs) == 0 && (p.typ == tAddr4 || p.typ == tAddr6 || p.typ == tEther) {
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

// metaFields are the meta keys nft matches on, by printed name and value type.
var metaFields = map[expr.MetaKey]field{
	expr.MetaKeyNFPROTO:    {name: "meta nfproto", typ: tNFProto, size: 1},
	expr.MetaKeyL4PROTO:    {name: "meta l4proto", typ: tProto, size: 1},
	expr.MetaKeyPROTOCOL:   {name: "meta protocol", typ: tEtherType, size: 2},
	expr.MetaKeyIIFNAME:    {name: "iifname", typ: tIfname, size: 16},
	expr.MetaKeyOIFNAME:    {name: "oifname", typ: tIfname, size: 16},
	expr.MetaKeyIIF:        {name: "iif", typ: tIfindex, size: 4},
	expr.MetaKeyOIF:        {name: "oif", typ: tIfindex, size: 4},
	expr.MetaKeyMARK:       {name: "meta mark", typ: tHex32, size: 4},
	expr.MetaKeySKUID:      {name: "meta skuid", typ: tHostInt, size: 4},
	expr.MetaKeySKGID:      {name: "meta skgid", typ: tHostInt, size: 4},
	expr.MetaKeyPKTTYPE:    {name: "meta pkttype", typ: tPktType, size: 1},
	expr.MetaKeyLEN:        {name: "meta length", typ: tHostInt, size: 4},
	expr.MetaKeyPRIORITY:   {name: "meta priority", typ: tTCHandle, size: 4},
	expr.MetaKeyIIFTYPE:    {name: "meta iiftype", typ: tArphrd, size: 2},
	expr.MetaKeyOIFTYPE:    {name: "meta oiftype", typ: tArphrd, size: 2},
	expr.MetaKeyRTCLASSID:  {name: "meta rtclassid", typ: tRealm, size: 4},
	expr.MetaKeyBRIIIFNAME: {name: "meta ibrname", typ: tIfname, size: 16},
	expr.MetaKeyBRIOIFNAME: {name: "meta obrname", typ: tIfname, size: 16},
	expr.MetaKeyCPU:        {name: "meta cpu", typ: tHostInt, size: 4},
	expr.MetaKeyIIFGROUP:   {name: "iifgroup", typ: tIfGroup, size: 4},
	expr.MetaKeyOIFGROUP:   {name: "oifgroup", typ: tIfGroup, size: 4},
	expr.MetaKeyCGROUP:     {name: "meta cgroup", typ: tHostInt, size: 4},
	expr.MetaKeyPRANDOM:    {name: "meta random", typ: tInt, size: 4},
	nftMetaSecpath:         {name: "meta ipsec", typ: tExists, size: 1},
	nftMetaIifkind:         {name: "meta iifkind", typ: tString, size: 16},
	nftMetaOifkind:         {name: "meta oifkind", typ: tString, size: 16},
	nftMetaTimeDay:         {name: "meta day", typ: tDay, size: 1},
	nftMetaTimeNs:          {name: "meta time", typ: tTimeNs, size: 8},
	nftMetaTimeHour:        {name: "meta hour", typ: tHour, size: 4},
	nftMetaSdif:            {name: "meta sdif", typ: tIfindex, size: 4},
	nftMetaSdifname:        {name: "meta sdifname", typ: tIfname, size: 16},
}

func metaField(k expr.MetaKey) (field, bool) {
	f, ok := metaFields[k]
	return f, ok
}

func ctField(k expr.CtKey) (field, bool) { return ctKeyField(uint32(k), false) }

// ctKeyField is a ct key as a field; dir says the key comes with a direction (the
// addresses and ports of a tuple have one always).
func ctKeyField(k uint32, dir bool) (field, bool) {
	if !dir {
		switch k {
		case unix.NFT_CT_SRC, unix.NFT_CT_DST, unix.NFT_CT_SRC_IP, unix.NFT_CT_DST_IP, unix.NFT_CT_SRC_IP6,
			unix.NFT_CT_DST_IP6, unix.NFT_CT_PROTO_SRC, unix.NFT_CT_PROTO_DST:
			return field{}, false
		}
	}
	switch k {
	case unix.NFT_CT_SRC, unix.NFT_CT_DST:
		// Sized by the family: the caller knows it.
		return field{}, true
	case unix.NFT_CT_ZONE:
		return field{name: "ct zone", typ: tHostInt, size: 2}, true
	case unix.NFT_CT_LABELS:
		return field{name: "ct label", typ: tCtLabel, size: 16}, true
	case unix.NFT_CT_BYTES:
		return field{name: "ct bytes", typ: tHostInt, size: 8}, true
	case unix.NFT_CT_PKTS:
		return field{name: "ct packets", typ: tHostInt, size: 8}, true
	case unix.NFT_CT_AVGPKT:
		return field{name: "ct avgpkt", typ: tHostInt, size: 8}, true
	case unix.NFT_CT_SRC_IP:
		return field{name: "ct ip saddr", typ: tAddr4, size: 4}, true
	case unix.NFT_CT_DST_IP:
		return field{name: "ct ip daddr", typ: tAddr4, size: 4}, true
	case unix.NFT_CT_SRC_IP6:
		return field{name: "ct ip6 saddr", typ: tAddr6, size: 16}, true
	case unix.NFT_CT_DST_IP6:
		return field{name: "ct ip6 daddr", typ: tAddr6, size: 16}, true
	case unix.NFT_CT_PROTO_SRC:
		return field{name: "ct proto-src", typ: tInt, size: 2}, true
	case unix.NFT_CT_PROTO_DST:
		return field{name: "ct proto-dst", typ: tInt, size: 2}, true
	}
	if dir {
		return field{}, false
	}
	switch k {
	case unix.NFT_CT_STATE:
		return field{name: "ct state", typ: tCtState, size: 4}, true
	case unix.NFT_CT_STATUS:
		return field{name: "ct status", typ: tCtStatus, size: 4}, true
	case unix.NFT_CT_MARK:
		return field{name: "ct mark", typ: tHex32, size: 4}, true
	case unix.NFT_CT_DIRECTION:
		return field{name: "ct direction", typ: tCtDir, size: 1}, true
	case unix.NFT_CT_EXPIRATION:
		return field{name: "ct expiration", typ: tTimeMs, size: 4}, true
	case unix.NFT_CT_HELPER:
		return field{name: "ct helper", typ: tString, size: 16}, true
	case unix.NFT_CT_L3PROTOCOL:
		return field{name: "ct l3proto", typ: tNFProto, size: 1}, true
	case unix.NFT_CT_PROTOCOL:
		return field{name: "ct protocol", typ: tProto, size: 1}, true
	case nftCtID:
		return field{name: "ct id", typ: tInt, size: 4}, true
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
			f.be = v.hton
			return f, nil
		}
	case rvCt:
		if f, ok := ctField(v.ct); ok {
			f.be = v.hton
			return f, nil
		}
	case rvField:
		f := v.f
		f.be = v.hton
		return f, nil
	}
	return field{}, errUnsupported
}
