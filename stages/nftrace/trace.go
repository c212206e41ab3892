package nftrace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// traceMsgType is the netlink message type of an nftables trace event.
const traceMsgType = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_TRACE)

// traceEvent is one NFT_MSG_TRACE message: a packet met a rule, a return, or a policy.
//
// The kernel sends the packet's headers and interfaces only with the first event of each
// base-chain invocation (nft_do_chain on a hook), so HasPacket marks where an invocation
// starts. The hook itself is never sent: it is the hook of the invocation's base chain.
type traceEvent struct {
	// Family is the nft.Genmsg family: the family of the table (inet for an inet table).
	Family uint8
	ID     uint32
	Type   uint32 // unix.NFT_TRACETYPE_*
	Table  string
	Chain  string
	// Handle is the rule handle; 0 when the event names no rule (policy, end of chain).
	Handle uint64
	// Verdict is the verdict code (NF_ACCEPT, NFT_JUMP, ...) and VerdictChain its target,
	// when HasVerdict.
	HasVerdict   bool
	Verdict      int32
	VerdictChain string
	// Policy is the chain policy (NF_ACCEPT or NF_DROP), when HasPolicy.
	HasPolicy bool
	Policy    uint32
	// NFProto is the protocol family of the hook (NFPROTO_IPV4 for an inet table too).
	NFProto uint32
	Mark    uint32

	// Packet information, present on the first event of an invocation only.
	HasPacket bool
	Iif, Oif  uint32
	IifType   uint16
	OifType   uint16
	LL        []byte
	Network   []byte
	Transport []byte
}

// decodeTrace decodes the payload of an NFT_MSG_TRACE message: the 4-byte nft.Genmsg
// followed by NFTA_TRACE_* attributes, big-endian.
func decodeTrace(data []byte) (traceEvent, error) {
	var ev traceEvent
	if len(data) < 4 {
		return ev, errors.New("trace message too short for nft.Genmsg")
	}
	ev.Family = data[0]
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return ev, fmt.Errorf("trace attributes: %w", err)
	}
	ad.ByteOrder = binary.BigEndian
	seenID := false
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_TRACE_TABLE:
			ev.Table = ad.String()
		case unix.NFTA_TRACE_CHAIN:
			ev.Chain = ad.String()
		case unix.NFTA_TRACE_RULE_HANDLE:
			ev.Handle = ad.Uint64()
		case unix.NFTA_TRACE_TYPE:
			ev.Type = ad.Uint32()
		case unix.NFTA_TRACE_VERDICT:
			ev.HasVerdict = true
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				nad.ByteOrder = binary.BigEndian
				for nad.Next() {
					switch nad.Type() {
					case unix.NFTA_VERDICT_CODE:
						ev.Verdict = int32(nad.Uint32())
					case unix.NFTA_VERDICT_CHAIN:
						ev.VerdictChain = nad.String()
					}
				}
				return nil
			})
		case unix.NFTA_TRACE_ID:
			ev.ID = ad.Uint32()
			seenID = true
		case unix.NFTA_TRACE_LL_HEADER:
			ev.LL, ev.HasPacket = ad.Bytes(), true
		case unix.NFTA_TRACE_NETWORK_HEADER:
			ev.Network, ev.HasPacket = ad.Bytes(), true
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			ev.Transport, ev.HasPacket = ad.Bytes(), true
		case unix.NFTA_TRACE_IIF:
			ev.Iif, ev.HasPacket = ad.Uint32(), true
		case unix.NFTA_TRACE_IIFTYPE:
			ev.IifType = ad.Uint16()
		case unix.NFTA_TRACE_OIF:
			ev.Oif, ev.HasPacket = ad.Uint32(), true
		case unix.NFTA_TRACE_OIFTYPE:
			ev.OifType = ad.Uint16()
		case unix.NFTA_TRACE_MARK:
			ev.Mark = ad.Uint32()
		case unix.NFTA_TRACE_NFPROTO:
			ev.NFProto = ad.Uint32()
		case unix.NFTA_TRACE_POLICY:
			ev.HasPolicy = true
			ev.Policy = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return ev, fmt.Errorf("trace attributes: %w", err)
	}
	if !seenID || ev.Table == "" || ev.Chain == "" {
		return ev, fmt.Errorf("trace message without id, table or chain")
	}
	return ev, nil
}

// packetAddrs decodes source and destination from a traced network header (IPv4 or IPv6,
// by its version nibble) and, for TCP, UDP, UDP-Lite and SCTP, the ports from the
// transport header. proto is the IP protocol (0 when unknown, e.g. behind IPv6 extension
// headers). ok is false when the network header is missing or malformed.
func packetAddrs(network, transport []byte) (src, dst netip.AddrPort, proto uint8, ok bool) {
	if len(network) < 1 {
		return src, dst, 0, false
	}
	var s, d netip.Addr
	switch network[0] >> 4 {
	case 4:
		if len(network) < 20 {
			return src, dst, 0, false
		}
		s = netip.AddrFrom4([4]byte(network[12:16]))
		d = netip.AddrFrom4([4]byte(network[16:20]))
		proto = network[9]
	case 6:
		if len(network) < 40 {
			return src, dst, 0, false
		}
		s = netip.AddrFrom16([16]byte(network[8:24]))
		d = netip.AddrFrom16([16]byte(network[24:40]))
		proto = network[6]
		if !hasPorts(proto) {
			// An extension header: the transport protocol is not known from here.
			proto = 0
		}
	default:
		return src, dst, 0, false
	}
	var sp, dp uint16
	if hasPorts(proto) && len(transport) >= 4 {
		sp = binary.BigEndian.Uint16(transport[0:2])
		dp = binary.BigEndian.Uint16(transport[2:4])
	}
	return netip.AddrPortFrom(s, sp), netip.AddrPortFrom(d, dp), proto, true
}

func hasPorts(proto uint8) bool {
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP:
		return true
	}
	return false
}
