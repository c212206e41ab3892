package hoststate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// routeTypes names rtm_type (RTN_*), as ip-route prints them.
var routeTypes = [...]string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve"}

func routeTypeName(t uint8) string {
	if int(t) < len(routeTypes) {
		return routeTypes[t]
	}
	return fmt.Sprintf("type %d", t)
}

// routeQuery is one RTM_GETROUTE lookup, like `ip route get DST [from SRC] [iif IIF]`.
// With Iif the kernel does the input lookup a received packet gets, source validation
// (rp_filter, martian sources) included; without it the output lookup of a sent packet.
type routeQuery struct {
	Dst, Src netip.Addr
	Iif      string
	IifIndex int
}

// String is the query as `ip route get` arguments: "198.51.100.2 from 198.51.100.1 iif veth0".
func (q routeQuery) String() string {
	s := q.Dst.String()
	if q.Src.IsValid() {
		s += " from " + q.Src.String()
	}
	if q.Iif != "" {
		s += " iif " + q.Iif
	}
	return s
}

func routeRequest(q routeQuery) netlink.Message {
	family, bits := uint8(unix.AF_INET), uint8(32)
	if q.Dst.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	hdr := make([]byte, unix.SizeofRtMsg)
	hdr[0] = family
	hdr[1] = bits
	if q.Src.IsValid() {
		hdr[2] = bits
	}
	// RTM_F_LOOKUP_TABLE: report the table the route came from, not always main.
	binary.NativeEndian.PutUint32(hdr[8:], unix.RTM_F_LOOKUP_TABLE)
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.RTA_DST, q.Dst.AsSlice())
	if q.Src.IsValid() {
		ae.Bytes(unix.RTA_SRC, q.Src.AsSlice())
	}
	if q.IifIndex != 0 {
		ae.Uint32(unix.RTA_IIF, uint32(q.IifIndex))
	}
	attrs, _ := ae.Encode() // fixed-size attributes: cannot fail
	return netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETROUTE, Flags: netlink.Request},
		Data:   append(hdr, attrs...),
	}
}

// routeReply is the decoded RTM_NEWROUTE answer to a lookup.
type routeReply struct {
	Type    string
	Table   uint32
	Oif     int
	Gateway netip.Addr
}

func decodeRoute(m netlink.Message) (routeReply, error) {
	var r routeReply
	if m.Header.Type != unix.RTM_NEWROUTE {
		return r, fmt.Errorf("decode route: message type %d is not RTM_NEWROUTE", m.Header.Type)
	}
	b := m.Data
	if len(b) < unix.SizeofRtMsg {
		return r, fmt.Errorf("decode route: %d bytes, shorter than rtmsg", len(b))
	}
	r.Table = uint32(b[4])
	r.Type = routeTypeName(b[7])
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofRtMsg:])
	if err != nil {
		return r, fmt.Errorf("decode route: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.RTA_TABLE:
			r.Table = ad.Uint32()
		case unix.RTA_OIF:
			r.Oif = int(ad.Uint32())
		case unix.RTA_GATEWAY:
			r.Gateway, _ = netip.AddrFromSlice(ad.Bytes())
		case unix.RTA_VIA:
			// struct rtvia: a u16 family, then the address (an IPv6 next hop of an IPv4 route).
			if v := ad.Bytes(); len(v) > 2 {
				r.Gateway, _ = netip.AddrFromSlice(v[2:])
			}
		}
	}
	if err := ad.Err(); err != nil {
		return r, fmt.Errorf("decode route: %w", err)
	}
	return r, nil
}

// lookupRoute runs one lookup. Its failure is the lookup's result, in RouteLookup.Err, never
// an error of the stage; it is also returned, for explain.
func lookupRoute(c *netlink.Conn, q routeQuery, names map[int]string) (evidence.RouteLookup, error) {
	rl := evidence.RouteLookup{Query: q.String(), Dst: q.Dst.String(), Iif: q.Iif}
	if q.Src.IsValid() {
		rl.Src = q.Src.String()
	}
	if q.Iif != "" && q.IifIndex == 0 {
		err := errors.New("no such interface in this network namespace")
		rl.Err = err.Error()
		return rl, err
	}
	msgs, err := c.Execute(routeRequest(q))
	if err == nil && len(msgs) == 0 {
		err = errors.New("no answer")
	}
	if err != nil {
		rl.Err = errText(err)
		if q.Iif == "" {
			// The output lookup fails with the errno of the route type it met (fib_props):
			// unreachable EHOSTUNREACH, blackhole EINVAL, prohibit EACCES. The source is one
			// of this host's addresses or none, so EINVAL cannot mean a bad source here.
			rl.Type = outputErrType(err)
		} else if errors.Is(err, unix.EACCES) {
			rl.Type = "prohibit"
		}
		return rl, err
	}
	r, err := decodeRoute(msgs[0])
	if err != nil {
		rl.Err = err.Error()
		return rl, err
	}
	rl.Type, rl.Table = r.Type, r.Table
	if r.Oif != 0 {
		rl.Oif = names[r.Oif]
		if rl.Oif == "" {
			rl.Oif = fmt.Sprintf("if%d", r.Oif)
		}
	}
	if r.Gateway.IsValid() {
		rl.Gateway = r.Gateway.String()
	}
	return rl, nil
}

func outputErrType(err error) string {
	switch {
	case errors.Is(err, unix.EHOSTUNREACH):
		return "unreachable"
	case errors.Is(err, unix.EINVAL):
		return "blackhole"
	case errors.Is(err, unix.EACCES):
		return "prohibit"
	}
	return ""
}

// errText writes a netlink error as the kernel's words and the errno's name, with the
// extended acknowledgement's message when there is one: "invalid argument (EINVAL)".
func errText(err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error() + " (" + unix.ErrnoName(errno) + ")"
	var op *netlink.OpError
	if errors.As(err, &op) && op.Message != "" {
		s += ": " + op.Message
	}
	return s
}
