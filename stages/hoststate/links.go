package hoststate

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/stages/evidence"
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

// link is one interface as RTM_GETLINK reports it.
type link struct {
	Index int
	Name  string
	// Stats holds rtnl_link_stats64 (linux/if_link.h) as far as the kernel sent it.
	Stats linkStats
	// XDP lists the XDP programs attached, by hook (xdp, xdpgeneric, xdpoffload).
	XDP []xdpProgram
}

type xdpProgram struct {
	Hook string
	ID   uint32
}

// linkStats are the counters of rtnl_link_stats64 the host state reports, by their index
// in the structure (each a u64): rx_errors 4, tx_errors 5, rx_dropped 6, tx_dropped 7,
// rx_missed_errors 15, rx_nohandler 23.
type linkStats struct {
	RxErrors, TxErrors, RxDropped, TxDropped, RxMissed, RxNoHandler uint64
}

func decodeStats64(b []byte) linkStats {
	field := func(i int) uint64 {
		if len(b) < (i+1)*8 {
			return 0
		}
		return binary.NativeEndian.Uint64(b[i*8:])
	}
	return linkStats{
		RxErrors: field(4), TxErrors: field(5), RxDropped: field(6), TxDropped: field(7),
		RxMissed: field(15), RxNoHandler: field(23),
	}
}

func linkRequest() netlink.Message {
	return netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfInfomsg),
	}
}

// dumpLinks lists the namespace's interfaces with their counters and XDP programs.
func dumpLinks(c *netlink.Conn) ([]link, error) {
	msgs, err := c.Execute(linkRequest())
	if err != nil {
		return nil, fmt.Errorf("list interfaces (RTM_GETLINK): %w", err)
	}
	return decodeLinks(msgs)
}

func decodeLinks(msgs []netlink.Message) ([]link, error) {
	var links []link
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		l, err := decodeLink(m.Data)
		if err != nil {
			return links, err
		}
		links = append(links, l)
	}
	slices.SortFunc(links, func(a, b link) int { return a.Index - b.Index })
	return links, nil
}

func decodeLink(b []byte) (link, error) {
	var l link
	if len(b) < unix.SizeofIfInfomsg {
		return l, fmt.Errorf("decode RTM_NEWLINK: %d bytes, shorter than ifinfomsg", len(b))
	}
	l.Index = int(int32(binary.NativeEndian.Uint32(b[4:8])))
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, fmt.Errorf("decode RTM_NEWLINK of interface %d: %w", l.Index, err)
	}
	ad.ByteOrder = binary.NativeEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			l.Name = ad.String()
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
func decodeXDP(ad *netlink.AttributeDecoder) []xdpProgram {
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
	var progs []xdpProgram
	switch mode {
	case xdpAttachedNone:
	case xdpAttachedMulti:
		for _, m := range []uint8{xdpAttachedDrv, xdpAttachedSKB, xdpAttachedHW} {
			if perMode[m] != 0 {
				progs = append(progs, xdpProgram{Hook: xdpHooks[m], ID: perMode[m]})
			}
		}
	default:
		hook, ok := xdpHooks[mode]
		if !ok {
			hook = fmt.Sprintf("xdp mode %d", mode)
		}
		progs = append(progs, xdpProgram{Hook: hook, ID: id})
	}
	return progs
}

// ifaceDrops compares interface counters by index; an interface that appeared during the
// run counts from zero. Only interfaces with a counter that went up are returned, by name.
func ifaceDrops(before map[int]linkStats, after []link) []evidence.InterfaceDrops {
	out := []evidence.InterfaceDrops{}
	up := func(b, a uint64) uint64 {
		if a > b {
			return a - b
		}
		return 0
	}
	for _, l := range after {
		b := before[l.Index]
		a := l.Stats
		d := evidence.InterfaceDrops{
			Iface:       l.Name,
			RxDropped:   up(b.RxDropped, a.RxDropped),
			TxDropped:   up(b.TxDropped, a.TxDropped),
			RxErrors:    up(b.RxErrors, a.RxErrors),
			TxErrors:    up(b.TxErrors, a.TxErrors),
			RxMissed:    up(b.RxMissed, a.RxMissed),
			RxNoHandler: up(b.RxNoHandler, a.RxNoHandler),
		}
		if d.RxDropped+d.TxDropped+d.RxErrors+d.TxErrors+d.RxMissed+d.RxNoHandler > 0 {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(x, y evidence.InterfaceDrops) int { return strings.Compare(x.Iface, y.Iface) })
	return out
}
