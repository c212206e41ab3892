package nft

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Extension headers and options (exthdr): IPv6 extension headers, TCP options, IPv4
// options and SCTP chunks, as loads (a field or "exists"), and TCP option writes.

type xfield struct {
	off, size uint32
	name      string
	typ       vtype
}

type xhdr struct {
	name   string
	fields []xfield
}

var (
	nexthdrLen  = []xfield{{0, 1, "nexthdr", tProto}, {1, 1, "hdrlength", tInt}}
	ipv6Exthdrs = map[uint8]xhdr{
		0:   {"hbh", nexthdrLen},
		43:  {"rt", append(append([]xfield(nil), nexthdrLen...), xfield{2, 1, "type", tInt}, xfield{3, 1, "seg-left", tInt})},
		44:  {"frag", []xfield{{0, 1, "nexthdr", tProto}, {1, 1, "reserved", tInt}, {4, 4, "id", tInt}}},
		60:  {"dst", nexthdrLen},
		135: {"mh", append(append([]xfield(nil), nexthdrLen...), xfield{2, 1, "type", tMHType}, xfield{3, 1, "reserved", tInt}, xfield{4, 2, "checksum", tInt})},
	}
	srhFields = []xfield{{4, 1, "last-entry", tInt}, {5, 1, "flags", tInt}, {6, 2, "tag", tInt}}
	kindLen   = []xfield{{0, 1, "kind", tInt}, {1, 1, "length", tInt}}
	tcpOption = map[uint8]xhdr{
		0:  {"eol", kindLen[:1]},
		1:  {"nop", kindLen[:1]},
		2:  {"maxseg", append(append([]xfield(nil), kindLen...), xfield{2, 2, "size", tInt})},
		3:  {"window", append(append([]xfield(nil), kindLen...), xfield{2, 1, "count", tInt})},
		4:  {"sack-perm", kindLen},
		5:  {"sack", append(append([]xfield(nil), kindLen...), xfield{2, 4, "left", tInt}, xfield{6, 4, "right", tInt})},
		8:  {"timestamp", append(append([]xfield(nil), kindLen...), xfield{2, 4, "tsval", tInt}, xfield{6, 4, "tsecr", tInt})},
		30: {"mptcp", kindLen},
	}
	ipOptHdr = []xfield{{0, 1, "type", tInt}, {1, 1, "length", tInt}}
	ipOption = map[uint8]xhdr{
		7:   {"rr", append(append([]xfield(nil), ipOptHdr...), xfield{2, 1, "ptr", tInt}, xfield{3, 4, "addr", tAddr4})},
		131: {"lsrr", append(append([]xfield(nil), ipOptHdr...), xfield{2, 1, "ptr", tInt}, xfield{3, 4, "addr", tAddr4})},
		137: {"ssrr", append(append([]xfield(nil), ipOptHdr...), xfield{2, 1, "ptr", tInt}, xfield{3, 4, "addr", tAddr4})},
		148: {"ra", append(append([]xfield(nil), ipOptHdr...), xfield{2, 2, "value", tInt})},
	}
	sctpChunk = map[uint8]string{
		0: "data", 1: "init", 2: "init-ack", 3: "sack", 4: "heartbeat", 5: "heartbeat-ack",
		6: "abort", 7: "shutdown", 8: "shutdown-ack", 9: "error", 10: "cookie-echo",
		11: "cookie-ack", 12: "ecne", 13: "cwr", 14: "shutdown-complete", 64: "i-data",
		128: "asconf-ack", 130: "re-config", 132: "pad", 192: "forward-tsn", 193: "asconf",
		194: "i-forward-tsn",
	}
	sctpChunkFields = []xfield{{0, 1, "type", tInt}, {1, 1, "flags", tInt}, {2, 2, "length", tInt}}
)

// exthdrField names what an exthdr expression reads (or writes).
func exthdrField(op uint32, typ uint8, off, n uint32, present bool) (field, error) {
	var prefix string
	var h xhdr
	f := field{}
	switch op {
	case unix.NFT_EXTHDR_OP_IPV6:
		x, ok := ipv6Exthdrs[typ]
		if !ok {
			return f, errUnsupported
		}
		h, f.layer, f.net = x, 1, unix.NFPROTO_IPV6
		if present {
			return field{name: "exthdr " + h.name, typ: tExists, size: 1, layer: 1, net: unix.NFPROTO_IPV6}, nil
		}
		prefix = h.name
		if typ == 43 && off >= 4 && !present {
			// Past the common routing header: nft names the segment routing header's
			// fields (addresses at 8 are ambiguous between rt0, rt2 and srh: not named).
			h, prefix = xhdr{"srh", srhFields}, "srh"
		}
	case unix.NFT_EXTHDR_OP_TCPOPT:
		x, ok := tcpOption[typ]
		if !ok {
			return f, errUnsupported
		}
		h, prefix = x, "tcp option "+x.name
	case nftExthdrOpIPv4:
		x, ok := ipOption[typ]
		if !ok {
			return f, errUnsupported
		}
		h, prefix, f.layer, f.net = x, "ip option "+x.name, 1, unix.NFPROTO_IPV4
	case nftExthdrOpSCTP:
		n, ok := sctpChunk[typ]
		if !ok {
			return f, errUnsupported
		}
		h, prefix = xhdr{n, sctpChunkFields}, "sctp chunk "+n
	default:
		return f, errUnsupported
	}
	if present {
		if off != 0 {
			return f, errUnsupported
		}
		f.name, f.typ, f.size = prefix, tExists, 1
		return f, nil
	}
	for _, x := range h.fields {
		if x.off == off && x.size == n {
			f.name, f.typ, f.size = prefix+" "+x.name, x.typ, x.size
			return f, nil
		}
	}
	if bits := exthdrBits[[4]uint32{op, uint32(typ), off, n}]; bits != nil {
		f.typ, f.size = tExthdrBits, n
		for _, b := range bits {
			b.name, b.layer, b.net = prefix+" "+b.name, f.layer, f.net
			f.bits = append(f.bits, b)
		}
		return f, nil
	}
	return f, errUnsupported
}

// exthdrBits are the bit fields of extension headers and options, by operation, type,
// offset and length of the bytes nft loads for them.
var exthdrBits = map[[4]uint32][]bitField{
	{unix.NFT_EXTHDR_OP_IPV6, 44, 2, 2}: {{n: 2, mask: 0xfff8, shift: 3, name: "frag-off", typ: tInt}},
	{unix.NFT_EXTHDR_OP_IPV6, 44, 3, 1}: {{n: 1, mask: 0x06, shift: 1, name: "reserved2", typ: tInt},
		{n: 1, mask: 0x01, name: "more-fragments", typ: tInt}},
	{unix.NFT_EXTHDR_OP_TCPOPT, 30, 2, 1}: {{n: 1, mask: 0xf0, shift: 4, name: "subtype", typ: tInt}},
}

func (r *renderer) exthdr(a rawAttrs) error {
	if !a.only(unix.NFTA_EXTHDR_DREG, unix.NFTA_EXTHDR_TYPE, unix.NFTA_EXTHDR_OFFSET, unix.NFTA_EXTHDR_LEN,
		unix.NFTA_EXTHDR_FLAGS, unix.NFTA_EXTHDR_OP, unix.NFTA_EXTHDR_SREG) {
		return errUnsupported
	}
	typ, ok := a.u8(unix.NFTA_EXTHDR_TYPE)
	v, ok2 := a.u32s(unix.NFTA_EXTHDR_OFFSET, unix.NFTA_EXTHDR_LEN, unix.NFTA_EXTHDR_FLAGS, unix.NFTA_EXTHDR_OP, unix.NFTA_EXTHDR_SREG)
	if !ok || !ok2 || v[2]&^unix.NFT_EXTHDR_F_PRESENT != 0 {
		return errUnsupported
	}
	present := v[2] != 0
	f, err := exthdrField(v[3], typ, v[0], v[1], present)
	if err != nil {
		return err
	}
	if !a.has(unix.NFTA_EXTHDR_SREG) {
		return r.load(a, unix.NFTA_EXTHDR_DREG, f)
	}
	// A write: only TCP options can be written.
	if a.has(unix.NFTA_EXTHDR_DREG) || present || v[3] != unix.NFT_EXTHDR_OP_TCPOPT {
		return errUnsupported
	}
	val, err := r.regText(v[4], f)
	if err != nil {
		return err
	}
	r.emit(fmt.Sprintf("%s set %s", f.name, val))
	return nil
}
