package arrival

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The transport protocols of the flow's endpoints.
const (
	ipTCP = 6
	ipUDP = 17
)

// headers are the fields of one captured packet that the evidence keeps.
type headers struct {
	src, dst netip.AddrPort
	proto    uint8 // 6 (TCP) or 17 (UDP)
	// flags are the TCP flags in tcpdump's letters; empty for UDP.
	flags string
}

// decode reads a packet the filter accepted: data starts at the network header, ethertype
// is the protocol the socket address reported. The flow's endpoints are TCP or UDP: a
// packet of either is read.
//
// gopacket decodes it first. Where gopacket refuses a packet the kernel filter accepts (a
// first fragment, a transport header cut short, IPv4 options gopacket finds malformed), the
// fields are read at the offsets the filter used, so every counted packet has its ends.
func decode(data []byte, ethertype uint16) (headers, bool) {
	if h, ok := decodeLayers(data, ethertype); ok {
		return h, true
	}
	return decodeRaw(data, ethertype)
}

func decodeLayers(data []byte, ethertype uint16) (headers, bool) {
	var first gopacket.LayerType
	switch ethertype {
	case ethPIPv4:
		first = layers.LayerTypeIPv4
	case ethPIPv6:
		first = layers.LayerTypeIPv6
	default:
		return headers{}, false
	}
	p := gopacket.NewPacket(data, first, gopacket.DecodeOptions{NoCopy: true})
	if p.ErrorLayer() != nil {
		// gopacket keeps the layers it failed on, half filled: do not read them.
		return headers{}, false
	}
	var srcIP, dstIP netip.Addr
	switch n := p.NetworkLayer().(type) {
	case *layers.IPv4:
		srcIP, _ = netip.AddrFromSlice(n.SrcIP)
		dstIP, _ = netip.AddrFromSlice(n.DstIP)
	case *layers.IPv6:
		srcIP, _ = netip.AddrFromSlice(n.SrcIP)
		dstIP, _ = netip.AddrFromSlice(n.DstIP)
	default:
		return headers{}, false
	}
	switch t := p.TransportLayer().(type) {
	case *layers.TCP:
		return headers{
			src:   netip.AddrPortFrom(srcIP, uint16(t.SrcPort)),
			dst:   netip.AddrPortFrom(dstIP, uint16(t.DstPort)),
			proto: ipTCP,
			flags: formatFlags(tcpFlagsOf(t)),
		}, true
	case *layers.UDP:
		return headers{
			src:   netip.AddrPortFrom(srcIP, uint16(t.SrcPort)),
			dst:   netip.AddrPortFrom(dstIP, uint16(t.DstPort)),
			proto: ipUDP,
		}, true
	}
	return headers{}, false
}

func decodeRaw(data []byte, ethertype uint16) (headers, bool) {
	l4, proto, src, dst, ok := locate(data, ethertype)
	if !ok {
		return headers{}, false
	}
	h := headers{
		src:   netip.AddrPortFrom(src, binary.BigEndian.Uint16(data[l4:])),
		dst:   netip.AddrPortFrom(dst, binary.BigEndian.Uint16(data[l4+2:])),
		proto: proto,
	}
	if proto == ipTCP {
		if len(data) >= l4+14 {
			h.flags = formatFlags(uint16(data[l4+12]&1)<<8 | uint16(data[l4+13]))
		} else {
			h.flags = "?" // cut before the flags
		}
	}
	return h, true
}

// locate is the Go twin of the filter, without the flow's endpoints: it finds the TCP or
// UDP header of an IP packet the way the filter does, and refuses what the filter refuses.
// It returns the transport header's offset (both ports are there), its protocol and the
// packet's addresses; evidence.Endpoints.Match then decides as the filter's comparisons do.
func locate(data []byte, ethertype uint16) (l4 int, proto uint8, src, dst netip.Addr, ok bool) {
	switch ethertype {
	case ethPIPv4:
		if len(data) < 20 || data[0]>>4 != 4 || (data[9] != ipTCP && data[9] != ipUDP) {
			return 0, 0, src, dst, false
		}
		proto = data[9]
		if binary.BigEndian.Uint16(data[6:])&0x1fff != 0 {
			return 0, 0, src, dst, false // not the first fragment: no ports
		}
		l4 = int(data[0]&0xf) * 4
		if l4 < 20 {
			return 0, 0, src, dst, false
		}
		src = netip.AddrFrom4([4]byte(data[12:16]))
		dst = netip.AddrFrom4([4]byte(data[16:20]))
	case ethPIPv6:
		if len(data) < 40 || data[0]>>4 != 6 {
			return 0, 0, src, dst, false
		}
		next, off := data[6], 40
		for i := 0; ; i++ {
			if next == ipTCP || next == ipUDP {
				proto = next
				break
			}
			if i == maxExtHeaders {
				return 0, 0, src, dst, false
			}
			switch next {
			case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
				if len(data) < off+2 {
					return 0, 0, src, dst, false
				}
				next, off = data[off], off+(int(data[off+1])+1)*8
			case ipv6Fragment:
				if len(data) < off+4 || binary.BigEndian.Uint16(data[off+2:])&0xfff8 != 0 {
					return 0, 0, src, dst, false
				}
				next, off = data[off], off+8
			case ipv6AH:
				// Its length counts 4-byte words, less 2.
				if len(data) < off+2 {
					return 0, 0, src, dst, false
				}
				next, off = data[off], off+(int(data[off+1])+2)*4
			default:
				return 0, 0, src, dst, false
			}
		}
		l4 = off
		src = netip.AddrFrom16([16]byte(data[8:24]))
		dst = netip.AddrFrom16([16]byte(data[24:40]))
	default:
		return 0, 0, src, dst, false
	}
	if len(data) < l4+4 {
		return 0, 0, src, dst, false
	}
	return l4, proto, src, dst, true
}

// TCP flag bits as a 16-bit value: byte 13 of the header, and the AE bit (byte 12, bit 0).
const (
	flagFIN = 0x001
	flagSYN = 0x002
	flagRST = 0x004
	flagPSH = 0x008
	flagACK = 0x010
	flagURG = 0x020
	flagECE = 0x040
	flagCWR = 0x080
	flagAE  = 0x100
)

// formatFlags prints TCP flags the way tcpdump does: S, S., P., F., R., "none" without any.
func formatFlags(f uint16) string {
	letters := [...]struct {
		bit    uint16
		letter byte
	}{
		{flagFIN, 'F'}, {flagSYN, 'S'}, {flagRST, 'R'}, {flagPSH, 'P'},
		{flagACK, '.'}, {flagURG, 'U'}, {flagECE, 'E'}, {flagCWR, 'W'}, {flagAE, 'e'},
	}
	var b strings.Builder
	for _, l := range letters {
		if f&l.bit != 0 {
			b.WriteByte(l.letter)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func tcpFlagsOf(t *layers.TCP) uint16 {
	var f uint16
	for _, b := range []struct {
		set bool
		bit uint16
	}{
		{t.FIN, flagFIN}, {t.SYN, flagSYN}, {t.RST, flagRST}, {t.PSH, flagPSH},
		{t.ACK, flagACK}, {t.URG, flagURG}, {t.ECE, flagECE}, {t.CWR, flagCWR}, {t.NS, flagAE},
	} {
		if b.set {
			f |= b.bit
		}
	}
	return f
}
