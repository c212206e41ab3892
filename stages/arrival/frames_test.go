package arrival

import (
	"encoding/binary"
	"net/netip"
)

// Builders of crafted packets, from the network header on (what a SOCK_DGRAM socket and
// the filter see). They build malformed packets on purpose: nothing is validated.

var (
	flowV4 = netip.MustParseAddr("198.51.100.2")
	peerV4 = netip.MustParseAddr("198.51.100.1")
	flowV6 = netip.MustParseAddr("2001:db8::2")
	peerV6 = netip.MustParseAddr("2001:db8::1")
)

const (
	flowPort = 8080
	peerPort = 40000
)

// tcpSeg is a TCP header with the given flags (low byte: byte 13, bit 8: AE) and payload.
func tcpSeg(sport, dport uint16, flags uint16, payload ...byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	binary.BigEndian.PutUint32(b[8:], 0)
	b[12] = 5<<4 | byte(flags>>8&1)
	b[13] = byte(flags)
	binary.BigEndian.PutUint16(b[14:], 65535)
	return append(b, payload...)
}

func udpDgram(sport, dport uint16, payload ...byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// v4opts are the knobs of an IPv4 header.
type v4opts struct {
	options []byte // padded to 4 bytes
	frag    uint16 // flags (MF = 0x2000) and offset, as in bytes 6-7
	ihl     int    // override of the IHL field, 0: computed
	version byte   // override, 0: 4
}

func ipv4(src, dst netip.Addr, proto uint8, o v4opts, payload []byte) []byte {
	opts := append([]byte(nil), o.options...)
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	hl := 20 + len(opts)
	b := make([]byte, hl, hl+len(payload))
	ihl := hl / 4
	if o.ihl != 0 {
		ihl = o.ihl
	}
	version := byte(4)
	if o.version != 0 {
		version = o.version
	}
	b[0] = version<<4 | byte(ihl&0xf)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(payload)))
	binary.BigEndian.PutUint16(b[4:], 0x1234)
	binary.BigEndian.PutUint16(b[6:], o.frag)
	b[8] = 64
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], opts)
	var sum uint32
	for i := 0; i < hl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	return append(b, payload...)
}

// ipv6 builds an IPv6 packet; ext is the chain of extension headers (built with extHdr and
// fragHdr), next the next-header value of the fixed header.
func ipv6(src, dst netip.Addr, next uint8, ext []byte, payload []byte) []byte {
	b := make([]byte, 40, 40+len(ext)+len(payload))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)+len(payload)))
	b[6] = next
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	b = append(b, ext...)
	return append(b, payload...)
}

// extHdr is a hop-by-hop, routing or destination options header of (units+1)*8 bytes,
// filled with PadN so that decoders accept it.
func extHdr(next uint8, units int) []byte {
	b := make([]byte, (units+1)*8)
	b[0] = next
	b[1] = byte(units)
	b[2] = 1 // PadN
	b[3] = byte(len(b) - 4)
	return b
}

// routingHdr is a type-4 (segment routing style, no addresses parsed) routing header.
func routingHdr(next uint8) []byte {
	b := make([]byte, 8)
	b[0] = next
	b[1] = 0
	b[2] = 4
	return b
}

// fragHdr is a fragment header: offset in 8-byte units, more = M flag.
func fragHdr(next uint8, offset uint16, more bool) []byte {
	b := make([]byte, 8)
	b[0] = next
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], 0xabcd)
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
