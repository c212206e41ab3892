package nftrace

import (
	"encoding/binary"
	"strconv"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// dumpLinks maps interface indexes to names with an RTM_GETLINK dump on a route socket
// of the traced namespace (trace events carry indexes only).
func dumpLinks(c executor) (map[uint32]string, error) {
	req := netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfInfomsg),
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return nil, err
	}
	links := map[uint32]string{}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		index := binary.NativeEndian.Uint32(m.Data[4:8])
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == unix.IFLA_IFNAME {
				links[index] = ad.String()
			}
		}
	}
	return links, nil
}

// ifaceName names an interface index, or says it is unknown.
func ifaceName(links map[uint32]string, index uint32) string {
	if n, ok := links[index]; ok {
		return n
	}
	return "ifindex " + strconv.FormatUint(uint64(index), 10)
}
