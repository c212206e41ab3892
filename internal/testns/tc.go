package testns

import (
	"encoding/binary"

	"github.com/cilium/ebpf"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// AttachClsBPF attaches prog as a direct-action cls_bpf filter on the clsact qdisc of the
// interface, on ingress or egress, as `tc filter add ... bpf da` does, under name (tc's
// "object:[section]"): where tcx is missing (before 6.6), how tests put a program on a
// device's path. The qdisc must exist (`tc qdisc add dev IF clsact`); call it on a thread
// in the interface's namespace (Do).
func AttachClsBPF(ifindex int, ingress bool, prog *ebpf.Program, name string) error {
	const (
		sizeofTcMsg   = 20         // family, 3 pad, ifindex, handle, parent, info
		tcHClsact     = 0xFFFF0000 // the clsact qdisc's major
		tcHMinIngress = 0xFFF2
		tcHMinEgress  = 0xFFF3
		tcaBPFFD      = 6
		tcaBPFName    = 7
		tcaBPFFlags   = 8
		actDirect     = 1 // TCA_BPF_FLAG_ACT_DIRECT
	)
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	parent := uint32(tcHClsact | tcHMinEgress)
	if ingress {
		parent = tcHClsact | tcHMinIngress
	}
	tcm := make([]byte, sizeofTcMsg)
	binary.NativeEndian.PutUint32(tcm[4:], uint32(ifindex))
	binary.NativeEndian.PutUint32(tcm[12:], parent)
	// tcm_info: priority 1 in the upper half, protocol ETH_P_ALL (big-endian) in the lower.
	all := uint16(unix.ETH_P_ALL)
	binary.NativeEndian.PutUint32(tcm[16:], 1<<16|uint32(all<<8|all>>8))
	opts := netlink.NewAttributeEncoder()
	opts.Uint32(tcaBPFFD, uint32(prog.FD()))
	opts.String(tcaBPFName, name)
	opts.Uint32(tcaBPFFlags, actDirect)
	ob, err := opts.Encode()
	if err != nil {
		return err
	}
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.TCA_KIND, "bpf")
	ae.Bytes(unix.TCA_OPTIONS|unix.NLA_F_NESTED, ob)
	ab, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWTFILTER, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data:   append(tcm, ab...),
	})
	return err
}
