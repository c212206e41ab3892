package hoststate

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// sock_diag (linux/inet_diag.h, linux/sock_diag.h): not in x/sys/unix.
const (
	sizeofInetDiagReqV2 = 56 // family, protocol, ext, pad, states u32, inet_diag_sockid
	sizeofInetDiagMsg   = 72 // family, state, timer, retrans, inet_diag_sockid, 5 u32

	inetDiagReqBytecode = 1  // INET_DIAG_REQ_BYTECODE, a request attribute
	inetDiagSKV6Only    = 11 // INET_DIAG_SKV6ONLY, a u8 in answers about IPv6 sockets
	inetDiagBCSEq       = 11 // INET_DIAG_BC_S_EQ: the local port equals the next op's no

	tcpClose         = 7
	tcpListen        = 10
	tcpBoundInactive = 13 // bound, not listening nor connected: dumped only on request (6.7+)
)

var tcpStates = [...]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
	12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE",
}

// stateName names a socket's state by the kernel's TCP state, except TCP_CLOSE: a UDP
// socket that is not connected is UNCONN (as ss says), and a TCP socket in TCP_CLOSE is one
// only bound to the port, neither listening nor connected (the kernel dumps those, in
// state TCP_CLOSE, when asked for TCP_BOUND_INACTIVE): BOUND.
func stateName(proto evidence.Proto, state uint8) string {
	if state == tcpClose {
		if proto == evidence.UDP {
			return "UNCONN"
		}
		return "BOUND"
	}
	if int(state) < len(tcpStates) && tcpStates[state] != "" {
		return tcpStates[state]
	}
	return fmt.Sprintf("state %d", state)
}

// listenerStates are the states asked for: for TCP the listeners and the sockets only bound
// to the port (connections on the port are the flow itself, and may be many); for UDP all.
func listenerStates(proto evidence.Proto) uint32 {
	if proto == evidence.UDP {
		return ^uint32(0)
	}
	return 1<<tcpListen | 1<<tcpBoundInactive
}

// sockDiagRequest asks for the sockets of one family and protocol whose local port is port,
// in the given states. The port filter is inet_diag bytecode, so the kernel sends only
// those: one S_EQ op that jumps to the end (accept) when it matches, past it (reject) when not.
func sockDiagRequest(family uint8, proto evidence.Proto, port uint16) netlink.Message {
	req := make([]byte, sizeofInetDiagReqV2)
	req[0] = family
	req[1] = proto.Number()
	binary.NativeEndian.PutUint32(req[4:], listenerStates(proto))
	bc := make([]byte, 8)
	bc[0], bc[1] = inetDiagBCSEq, 8
	binary.NativeEndian.PutUint16(bc[2:], 12)
	binary.NativeEndian.PutUint16(bc[6:], port)
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(inetDiagReqBytecode, bc)
	attrs, _ := ae.Encode()
	return netlink.Message{
		Header: netlink.Header{Type: unix.SOCK_DIAG_BY_FAMILY, Flags: netlink.Request | netlink.Dump},
		Data:   append(req, attrs...),
	}
}

// sockDiag lists the sockets of protocol proto bound to port, both families.
func sockDiag(c *netlink.Conn, proto evidence.Proto, port uint16, names map[int]string) ([]evidence.Listener, []error) {
	out := []evidence.Listener{}
	var errs []error
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		msgs, err := c.Execute(sockDiagRequest(family, proto, port))
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s sockets on port %d (sock_diag %s): %w", proto, port, familyName(family), err))
			continue
		}
		ls, err := decodeSockDiag(msgs, proto, names)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, ls...)
	}
	slices.SortStableFunc(out, func(a, b evidence.Listener) int {
		if a.Local.Addr().Is4() != b.Local.Addr().Is4() {
			if a.Local.Addr().Is4() {
				return -1
			}
			return 1
		}
		return a.Local.Compare(b.Local)
	})
	return out, errs
}

func familyName(f uint8) string {
	if f == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

func decodeSockDiag(msgs []netlink.Message, proto evidence.Proto, names map[int]string) ([]evidence.Listener, error) {
	var out []evidence.Listener
	for _, m := range msgs {
		if m.Header.Type != unix.SOCK_DIAG_BY_FAMILY {
			continue
		}
		l, err := decodeInetDiagMsg(m.Data, proto, names)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

// decodeInetDiagMsg reads struct inet_diag_msg: the local address and port from the socket
// id (ports big-endian, addresses in network order), the bound device from idiag_if, and
// INET_DIAG_SKV6ONLY from the attributes that follow.
func decodeInetDiagMsg(b []byte, proto evidence.Proto, names map[int]string) (evidence.Listener, error) {
	l := evidence.Listener{Proto: string(proto)}
	if len(b) < sizeofInetDiagMsg {
		return l, fmt.Errorf("decode sock_diag answer: %d bytes, shorter than inet_diag_msg", len(b))
	}
	family, state := b[0], b[1]
	sport := binary.BigEndian.Uint16(b[4:6])
	var addr netip.Addr
	switch family {
	case unix.AF_INET:
		addr = netip.AddrFrom4([4]byte(b[8:12]))
	case unix.AF_INET6:
		addr = netip.AddrFrom16([16]byte(b[8:24]))
	default:
		return l, fmt.Errorf("decode sock_diag answer: family %d", family)
	}
	l.Local = netip.AddrPortFrom(addr, sport)
	l.State = stateName(proto, state)
	if ifindex := int(binary.NativeEndian.Uint32(b[40:44])); ifindex != 0 {
		l.BoundIface = names[ifindex]
		if l.BoundIface == "" {
			l.BoundIface = fmt.Sprintf("if%d", ifindex)
		}
	}
	ad, err := netlink.NewAttributeDecoder(b[sizeofInetDiagMsg:])
	if err != nil {
		return l, fmt.Errorf("decode sock_diag answer for %v: %w", l.Local, err)
	}
	for ad.Next() {
		if ad.Type() == inetDiagSKV6Only {
			l.V6Only = ad.Uint8() != 0
		}
	}
	if err := ad.Err(); err != nil {
		return l, fmt.Errorf("decode sock_diag answer for %v: %w", l.Local, err)
	}
	return l, nil
}
