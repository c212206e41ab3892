// Package links reads the network interfaces of a namespace from the kernel (rtnetlink):
// every stage names interfaces, counts their drops and finds their programs through it.
package links

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// XDP attach modes in IFLA_XDP_ATTACHED (linux/if_link.h), named as ip-link shows them.
const (
	xdpAttachedNone  = 0
	xdpAttachedDrv   = 1
	xdpAttachedSKB   = 2
	xdpAttachedHW    = 3
	xdpAttachedMulti = 4

	iflaXDPSKBProgID = 6
	iflaXDPHWProgID  = 7
)

var xdpHooks = map[uint8]string{
	xdpAttachedDrv: "xdp",        // native, in the driver
	xdpAttachedSKB: "xdpgeneric", // generic, on the skb
	xdpAttachedHW:  "xdpoffload", // offloaded to the NIC
}

// Link is one interface as RTM_GETLINK reports it.
type Link struct {
	Index int
	Name  string
	Type  uint16 // ARPHRD_*: the link type
	Flags uint32 // IFF_*
	// Stats holds rtnl_link_stats64 (linux/if_link.h) as far as the kernel sent it.
	Stats Stats
	// XDP lists the XDP programs attached, by hook (xdp, xdpgeneric, xdpoffload).
	XDP []XDPProgram
	// PeerNetnsID is the id (in the dumped namespace) of the namespace where the other
	// end of a veth or similar pair is; -1 when it is in the same one, or there is none.
	PeerNetnsID int32
}

// XDPProgram is an XDP program attached to an interface.
type XDPProgram struct {
	Hook string
	ID   uint32
}

// Stats are the counters of rtnl_link_stats64 the host state reports, by their index
// in the structure (each a u64): rx_errors 4, tx_errors 5, rx_dropped 6, tx_dropped 7,
// rx_missed_errors 15, rx_nohandler 23.
type Stats struct {
	RxErrors, TxErrors, RxDropped, TxDropped, RxMissed, RxNoHandler uint64
}

func decodeStats64(b []byte) Stats {
	field := func(i int) uint64 {
		if len(b) < (i+1)*8 {
			return 0
		}
		return binary.NativeEndian.Uint64(b[i*8:])
	}
	return Stats{
		RxErrors: field(4), TxErrors: field(5), RxDropped: field(6), TxDropped: field(7),
		RxMissed: field(15), RxNoHandler: field(23),
	}
}

// DumpRequest asks for every interface of the namespace.
func DumpRequest() netlink.Message {
	return netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfInfomsg),
	}
}

// Executor sends a request on a route socket and returns the answers (*netlink.Conn).
type Executor interface {
	Execute(netlink.Message) ([]netlink.Message, error)
}

// Dump lists the interfaces of the socket's namespace with their counters and XDP programs.
func Dump(c Executor) ([]Link, error) {
	msgs, err := c.Execute(DumpRequest())
	if err != nil {
		return nil, fmt.Errorf("list interfaces (RTM_GETLINK): %w", err)
	}
	return DecodeAll(msgs)
}

// DecodeAll reads the RTM_NEWLINK messages of a dump, in index order.
func DecodeAll(msgs []netlink.Message) ([]Link, error) {
	var links []Link
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		l, err := Decode(m.Data)
		if err != nil {
			return links, err
		}
		links = append(links, l)
	}
	slices.SortFunc(links, func(a, b Link) int { return a.Index - b.Index })
	return links, nil
}

// Decode reads one RTM_NEWLINK message body: ifinfomsg (family, pad, type, index, flags,
// change), then attributes.
func Decode(b []byte) (Link, error) {
	l := Link{PeerNetnsID: -1}
	if len(b) < unix.SizeofIfInfomsg {
		return l, fmt.Errorf("decode RTM_NEWLINK: %d bytes, shorter than ifinfomsg", len(b))
	}
	l.Type = binary.NativeEndian.Uint16(b[2:4])
	l.Index = int(int32(binary.NativeEndian.Uint32(b[4:8])))
	l.Flags = binary.NativeEndian.Uint32(b[8:12])
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, fmt.Errorf("decode RTM_NEWLINK of interface %d: %w", l.Index, err)
	}
	ad.ByteOrder = binary.NativeEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			l.Name = ad.String()
		case unix.IFLA_LINK_NETNSID:
			l.PeerNetnsID = ad.Int32()
		case unix.IFLA_STATS64:
			l.Stats = decodeStats64(ad.Bytes())
		case unix.IFLA_XDP:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				l.XDP = decodeXDP(nad)
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return l, fmt.Errorf("decode RTM_NEWLINK of interface %d: %w", l.Index, err)
	}
	return l, nil
}

// decodeXDP reads IFLA_XDP: one program (IFLA_XDP_PROG_ID) in the mode IFLA_XDP_ATTACHED
// says, or with mode multi one id per mode.
func decodeXDP(ad *netlink.AttributeDecoder) []XDPProgram {
	var mode uint8
	var id uint32
	perMode := map[uint8]uint32{}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_XDP_ATTACHED:
			mode = ad.Uint8()
		case unix.IFLA_XDP_PROG_ID:
			id = ad.Uint32()
		case unix.IFLA_XDP_DRV_PROG_ID:
			perMode[xdpAttachedDrv] = ad.Uint32()
		case iflaXDPSKBProgID:
			perMode[xdpAttachedSKB] = ad.Uint32()
		case iflaXDPHWProgID:
			perMode[xdpAttachedHW] = ad.Uint32()
		}
	}
	var progs []XDPProgram
	switch mode {
	case xdpAttachedNone:
	case xdpAttachedMulti:
		for _, m := range []uint8{xdpAttachedDrv, xdpAttachedSKB, xdpAttachedHW} {
			if perMode[m] != 0 {
				progs = append(progs, XDPProgram{Hook: xdpHooks[m], ID: perMode[m]})
			}
		}
	default:
		hook, ok := xdpHooks[mode]
		if !ok {
			hook = fmt.Sprintf("xdp mode %d", mode)
		}
		progs = append(progs, XDPProgram{Hook: hook, ID: id})
	}
	return progs
}

// List dumps the interfaces of the calling thread's namespace.
func List() ([]Link, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	defer c.Close()
	return Dump(c)
}

// Name names an interface of the calling thread's namespace, "" when there is none.
func Name(ifindex int) string {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return ""
	}
	return ifi.Name
}
