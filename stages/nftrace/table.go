package nftrace

import (
	"encoding/binary"
	"os"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/nft"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// nftTableFOwner is NFT_TABLE_F_OWNER, which x/sys/unix lacks.
const nftTableFOwner = 0x2

// tablePrefix starts the name of every trace table diagnose makes.
const tablePrefix = "packetmortem_"

// tracePriority runs the trace chains before raw (-300) and conntrack (-200), so every
// later chain on the hook sees the packet marked.
const tracePriority = -310

// Names of the trace chains in the trace table.
const (
	chainPrerouting = "prerouting"
	chainOutput     = "output"
)

func defaultTableName() string { return tablePrefix + strconv.Itoa(os.Getpid()) }

// newOwnerTableBatch is the batch that creates the trace table with NFT_TABLE_F_OWNER:
// the kernel deletes an owned table when the owning netlink socket closes, so a killed
// diagnose leaves nothing behind. google/nftables v0.3.0 always sends flags 0, hence
// the hand-made message. NLM_F_EXCL: never adopt a table of the same name.
func newOwnerTableBatch(name string) ([]netlink.Message, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: nft.CString(name)},
		{Type: unix.NFTA_TABLE_FLAGS, Data: binary.BigEndian.AppendUint32(nil, nftTableFOwner)},
	})
	if err != nil {
		return nil, err
	}
	batchHdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}
	return []netlink.Message{
		{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request}, Data: batchHdr},
		{
			Header: netlink.Header{
				Type:  nft.MsgType(unix.NFT_MSG_NEWTABLE),
				Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl,
			},
			Data: append(nft.Genmsg(unix.NFPROTO_INET), attrs...),
		},
		{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request}, Data: batchHdr},
	}, nil
}

// flowRules returns the expressions of the trace rules for an endpoint of the flow: one for
// packets to Addr:Port, one for packets from it. Each matches family, protocol, address and port and
// sets nftrace; none has a verdict, so the packet continues as if they were not there:
//
//	meta nfproto ipv4 meta l4proto tcp ip daddr A tcp dport P meta nftrace set 1
//	meta nfproto ipv4 meta l4proto tcp ip saddr A tcp sport P meta nftrace set 1
func flowRules(e evidence.Endpoint) [][]expr.Any {
	nfproto := byte(unix.NFPROTO_IPV4)
	saddrOff, daddrOff := uint32(12), uint32(16)
	addr := e.Addr.Unmap().AsSlice()
	if len(addr) == 16 {
		nfproto = unix.NFPROTO_IPV6
		saddrOff, daddrOff = 8, 24
	}
	port := binary.BigEndian.AppendUint16(nil, e.Port)
	rule := func(addrOff, portOff uint32) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{e.Proto.Number()}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOff, Len: uint32(len(addr))},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
			&expr.Immediate{Register: 1, Data: []byte{1}}, // nftrace is one byte (load8)
			&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1},
		}
	}
	return [][]expr.Any{rule(daddrOff, 2), rule(saddrOff, 0)}
}

// traceChains are the base chains of the trace table: prerouting sees every packet that
// arrives (for this host or forwarded), output every packet this namespace sends.
func traceChains(t *nftables.Table) []*nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return []*nftables.Chain{
		{Name: chainPrerouting, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting,
			Priority: nftables.ChainPriorityRef(tracePriority), Policy: &accept},
		{Name: chainOutput, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookOutput,
			Priority: nftables.ChainPriorityRef(tracePriority), Policy: &accept},
	}
}
