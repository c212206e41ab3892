package xtables

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Executor sends a netlink request and returns the replies (a *netlink.Conn on
// NETLINK_NETFILTER).
type Executor interface {
	Execute(netlink.Message) ([]netlink.Message, error)
}

// FillPolicyCounters sets the policy counters of t's built-in chains, which iptables-save
// prints on their ":CHAIN POLICY [packets:bytes]" line and google/nftables' Chain does
// not carry: it lists the table's chains over c (an nf_tables socket in the table's
// namespace) and reads each base chain's counters.
func FillPolicyCounters(c Executor, t *Table) error {
	data := []byte{t.Family, unix.NFNETLINK_V0, 0, 0}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_CHAIN_TABLE, Data: append([]byte(t.Name), 0)}})
	if err != nil {
		return err
	}
	req := netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETCHAIN), Flags: netlink.Request | netlink.Dump},
		Data:   append(data, attrs...),
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return fmt.Errorf("list the chains of table %s: %w", t.Name, err)
	}
	counters := map[string][2]uint64{}
	for _, m := range msgs {
		if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWCHAIN) || len(m.Data) < 4 {
			continue
		}
		table, chain, pb, err := chainCounters(m.Data[4:])
		if err != nil {
			return fmt.Errorf("list the chains of table %s: %w", t.Name, err)
		}
		if table == t.Name {
			counters[chain] = pb
		}
	}
	for i := range t.Chains {
		if pb, ok := counters[t.Chains[i].Name]; ok && t.Chains[i].Policy != "" {
			t.Chains[i].Packets, t.Chains[i].Bytes = pb[0], pb[1]
		}
	}
	return nil
}

// chainCounters reads a chain message's table, name and counters (NFTA_CHAIN_COUNTERS).
func chainCounters(b []byte) (table, chain string, pb [2]uint64, err error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", "", pb, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_CHAIN_TABLE:
			table = ad.String()
		case unix.NFTA_CHAIN_NAME:
			chain = ad.String()
		case unix.NFTA_CHAIN_COUNTERS:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				nad.ByteOrder = binary.BigEndian
				for nad.Next() {
					switch nad.Type() {
					case unix.NFTA_COUNTER_PACKETS:
						pb[0] = nad.Uint64()
					case unix.NFTA_COUNTER_BYTES:
						pb[1] = nad.Uint64()
					}
				}
				return nil
			})
		}
	}
	return table, chain, pb, ad.Err()
}
