package arrival

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Snaplen is the most bytes of a packet the pcap keeps, link header included: what a frame
// of the capture ring holds (kernelSnap bytes from the network header on), and the
// SLL2 header.
const (
	kernelSnap = ringFrameSize - ringNetOffset
	Snaplen    = kernelSnap + sll2Len
)

// maxExtHeaders is how many IPv6 extension headers the filter walks (the loop is unrolled).
const maxExtHeaders = 6

// Values the filter tests.
const (
	ethPIPv4       = 0x0800
	ethPIPv6       = 0x86dd
	arphrdLoopback = 772 // ARPHRD_LOOPBACK
	packetOutgoing = 4   // PACKET_OUTGOING

	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6AH       = 51
	ipv6DestOpts = 60
)

// Scratch memory slots.
const (
	memSport = 0
	memDport = 1
	memNext  = 2
	memProto = 3
)

// Filter returns the classic BPF program that accepts the flow's packets on every
// interface: what a capture with no --iface attaches (with --iface, the same program starts
// with a test of the interface index).
//
// The program runs in the kernel on every packet the AF_PACKET socket sees,
// before the packet is queued. The socket is SOCK_DGRAM (cooked), so the program sees the
// packet from its network header on every link type (Ethernet, loopback, tun, ...), and
// learns the network protocol from the ancillary load SKF_AD_PROTOCOL instead of a link
// header. What it selects, precisely:
//
//   - interface: when the capture names interfaces, SKF_AD_IFINDEX is one of them;
//   - loopback: on a loopback device (SKF_AD_HATYPE == ARPHRD_LOOPBACK) the PACKET_OUTGOING
//     copy is refused, so a packet over lo is counted once, as it is received;
//   - IPv4 (protocol 0x0800), when an endpoint is IPv4: version 4, IHL >= 5, TCP or UDP,
//     fragment offset 0; ports are read at IHL*4, so IP options are honoured (without
//     options, the common case, at fixed offsets, which cost less);
//   - IPv6 (protocol 0x86dd), when an endpoint is IPv6: version 6; up to 6 (maxExtHeaders)
//     hop-by-hop, routing, destination options, authentication or fragment headers are
//     walked to the TCP or UDP header;
//   - both ports must be in the captured bytes (a truncated header is refused);
//   - for some endpoint, the protocol is its and (src == Addr && sport == Port) ||
//     (dst == Addr && dport == Port).
//
// Endpoints that apply in one namespace are the caller's to choose: the socket sees one.
//
// Fragments: a fragment with a non-zero offset carries no transport header, so nothing ties
// it to the flow statelessly; it is refused, as libpcap's "port" filter does. A first
// fragment carries the ports and is accepted. A fragmented datagram thus shows as its
// first fragment only.
//
// Not matched: frames with an 802.1Q or 802.1ad tag in the packet (SKF_AD_PROTOCOL is
// 0x8100: the stack strips a tag before the taps, so only a QinQ frame's inner tag or a
// device without VLAN offload on egress leaves one), IPv4-mapped IPv6 addresses for an IPv4
// endpoint, and IPv6 packets with ESP or more than 6 extension headers before the transport
// header. flow.h (the kernel drop and path stages) and the tcx capture select the same
// (TestFlowHAgreesWithCapture).
func Filter(ends evidence.Endpoints) ([]bpf.RawInstruction, error) {
	return filterOn(ends, nil)
}

// maxFilterIfaces is the most interfaces the filter tests itself. A classic filter counts
// against net.core.optmem_max, which is 20480 bytes on older kernels (Debian 12's 6.1):
// about 1,000 interfaces at two instructions each fill it, and the kernel refuses the
// filter with ENOMEM. Beyond this many, the reader tests the interface instead
// (inFilter).
const maxFilterIfaces = 64

// inFilter tells whether the filter tests these interfaces itself.
func inFilter(ifindexes []int) bool { return len(ifindexes) <= maxFilterIfaces }

// filterOn is Filter restricted to the interfaces with these indexes (nil: all), when it
// can test that many (inFilter).
func filterOn(ends evidence.Endpoints, ifindexes []int) ([]bpf.RawInstruction, error) {
	if !inFilter(ifindexes) {
		ifindexes = nil
	}
	ins, err := program(ends, ifindexes)
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(ins)
}

// program builds the filter as instructions, before assembly. Conditional jumps reach 255
// instructions at most: each section keeps its own, and the endpoints' comparisons end in
// a return of their own, so that the program grows with the endpoints and no jump does.
func program(ends evidence.Endpoints, ifindexes []int) ([]bpf.Instruction, error) {
	var v4, v6 evidence.Endpoints
	for _, e := range ends {
		switch {
		case !e.Addr.IsValid():
			return nil, errors.New("build capture filter: an endpoint of the flow has no address")
		case e.Proto != evidence.TCP && e.Proto != evidence.UDP:
			return nil, fmt.Errorf("build capture filter: unknown protocol %q", e.Proto)
		case e.Addr.Unmap().Is4():
			e.Addr = e.Addr.Unmap()
			v4 = append(v4, e)
		default:
			v6 = append(v6, e)
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil, errors.New("build capture filter: the flow has no endpoint")
	}
	a := &asm{}

	if len(ifindexes) > 0 {
		a.op(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex})
		// Two instructions per interface, so any number stays within a conditional jump's
		// reach of 255.
		for i, idx := range ifindexes {
			other := fmt.Sprintf("notif%d", i)
			a.jif(bpf.JumpEqual, uint32(idx), "", other)
			a.ja("iface")
			a.label(other)
		}
		a.op(bpf.RetConstant{Val: 0})
		a.label("iface")
	}
	// A packet sent over lo is seen leaving and entering: keep the entering copy.
	a.op(bpf.LoadExtension{Num: bpf.ExtLinkLayerType})
	a.jif(bpf.JumpEqual, arphrdLoopback, "", "proto")
	a.op(bpf.LoadExtension{Num: bpf.ExtType})
	a.jif(bpf.JumpEqual, packetOutgoing, "reject", "")
	a.label("proto")
	a.op(bpf.LoadExtension{Num: bpf.ExtProto})
	if len(v4) > 0 {
		a.jif(bpf.JumpEqual, ethPIPv4, "", "notv4")
		a.ja("v4")
		a.label("notv4")
	}
	if len(v6) > 0 {
		a.jif(bpf.JumpEqual, ethPIPv6, "", "notv6")
		a.ja("v6")
		a.label("notv6")
	}
	a.label("reject")
	a.op(bpf.RetConstant{Val: 0})

	if len(v4) > 0 {
		a.label("v4")
		// The kernel checks, in one pass down the program, that each scratch slot is
		// written before it is read, and carries what it knows past a return into the
		// instructions after it: written here, the slots are known to the endpoints'
		// comparisons whichever rejection precedes them.
		for _, n := range []int{memProto, memSport, memDport} {
			a.op(bpf.StoreScratch{Src: bpf.RegA, N: n})
		}
		a.op(bpf.LoadAbsolute{Off: 0, Size: 1})
		// Almost every packet has no IP options: its ports are at fixed offsets, which
		// absolute loads reach without the helper call an indirect load costs.
		a.jif(bpf.JumpEqual, 0x45, "", "v4options")
		a.v4Header("v4reject")
		a.op(bpf.LoadAbsolute{Off: 20, Size: 2})
		a.op(bpf.StoreScratch{Src: bpf.RegA, N: memSport})
		a.op(bpf.LoadAbsolute{Off: 22, Size: 2})
		a.op(bpf.StoreScratch{Src: bpf.RegA, N: memDport})
		a.ja("v4ends")
		a.label("v4options")
		a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
		a.jif(bpf.JumpEqual, 0x40, "", "v4reject")
		a.v4Header("v4reject")
		a.op(bpf.LoadMemShift{Off: 0}) // X = IHL*4
		a.op(bpf.TXA{})
		a.jif(bpf.JumpGreaterOrEqual, 20, "", "v4reject")
		a.ports()
		a.ja("v4ends")
		a.label("v4reject")
		a.op(bpf.RetConstant{Val: 0})
		a.label("v4ends")
		a.ends("v4", v4, 12, 16)
	}
	if len(v6) > 0 {
		a.label("v6")
		a.op(bpf.LoadAbsolute{Off: 0, Size: 1})
		a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
		a.jif(bpf.JumpEqual, 0x60, "", "v6reject")
		a.op(bpf.LoadAbsolute{Off: 6, Size: 1})
		// No extension header, the common case: the ports are at fixed offsets.
		a.jif(bpf.JumpEqual, ipTCP, "v6fixed", "")
		a.jif(bpf.JumpEqual, ipUDP, "v6fixed", "v6ext")
		a.label("v6fixed")
		a.op(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
		a.op(bpf.LoadAbsolute{Off: 40, Size: 2})
		a.op(bpf.StoreScratch{Src: bpf.RegA, N: memSport})
		a.op(bpf.LoadAbsolute{Off: 42, Size: 2})
		a.op(bpf.StoreScratch{Src: bpf.RegA, N: memDport})
		a.ja("v6ends")
		a.label("v6ext")
		a.op(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})
		// Invariant at each "next" label: A is a next-header value, X the offset of the
		// header it announces.
		for i := 0; i < maxExtHeaders; i++ {
			ext, frag, ah, next := fmt.Sprintf("ext%d", i), fmt.Sprintf("frag%d", i), fmt.Sprintf("ah%d", i), fmt.Sprintf("next%d", i+1)
			a.jif(bpf.JumpEqual, ipTCP, "l4", "")
			a.jif(bpf.JumpEqual, ipUDP, "l4", "")
			a.jif(bpf.JumpEqual, ipv6HopByHop, ext, "")
			a.jif(bpf.JumpEqual, ipv6Routing, ext, "")
			a.jif(bpf.JumpEqual, ipv6DestOpts, ext, "")
			a.jif(bpf.JumpEqual, ipv6AH, ah, "")
			a.jif(bpf.JumpEqual, ipv6Fragment, frag, "v6reject")

			// Authentication header: length (hdr[1]+2)*4; the others (hdr[1]+1)*8.
			a.label(ah)
			a.skipHeader(2, 2, next)
			a.label(ext)
			a.skipHeader(1, 3, next)

			// Fragment header: 8 bytes; only the first fragment has the ports.
			a.label(frag)
			a.op(bpf.LoadIndirect{Off: 2, Size: 2})
			a.jif(bpf.JumpBitsSet, 0xfff8, "v6reject", "")
			a.op(bpf.LoadIndirect{Off: 0, Size: 1})
			a.op(bpf.StoreScratch{Src: bpf.RegA, N: memNext})
			a.op(bpf.TXA{})
			a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 8})
			a.op(bpf.TAX{})
			a.op(bpf.LoadScratch{Dst: bpf.RegA, N: memNext})
			a.label(next)
		}
		a.jif(bpf.JumpEqual, ipTCP, "l4", "")
		a.jif(bpf.JumpEqual, ipUDP, "l4", "")
		a.label("v6reject")
		a.op(bpf.RetConstant{Val: 0})
		a.label("l4")
		a.op(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
		a.ports()
		a.label("v6ends")
		a.ends("v6", v6, 8, 24)
	}
	return a.resolve()
}

// v4Header checks an IPv4 header's protocol (TCP or UDP, kept in scratch memory) and
// fragment offset (the first fragment's only: the others carry no ports).
func (a *asm) v4Header(reject string) {
	a.op(bpf.LoadAbsolute{Off: 9, Size: 1})
	a.op(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
	a.op(bpf.LoadAbsolute{Off: 6, Size: 2})
	a.jif(bpf.JumpBitsSet, 0x1fff, reject, "")
}

// ends compares the packet with each endpoint of one family, with its protocol and ports
// in scratch memory and its addresses at src and dst: an endpoint that matches returns
// the snap length, the end of the list 0. Ports before addresses: on a busy address most
// packets belong to other ports, and a port costs one comparison where an IPv6 address
// costs four. The destination first: the flow's packets come to it more often than they
// leave it.
func (a *asm) ends(family string, ends evidence.Endpoints, src, dst uint32) {
	for i, e := range ends {
		addr := e.Addr.AsSlice()
		srcSide, hit, next := fmt.Sprintf("%s_%d_src", family, i), fmt.Sprintf("%s_%d_hit", family, i), fmt.Sprintf("%s_%d_next", family, i)
		a.op(bpf.LoadScratch{Dst: bpf.RegA, N: memProto})
		a.jif(bpf.JumpEqual, uint32(e.Proto.Number()), "", next)
		a.op(bpf.LoadScratch{Dst: bpf.RegA, N: memDport})
		a.jif(bpf.JumpEqual, uint32(e.Port), "", srcSide)
		a.addrMatch(addr, dst, hit, srcSide)
		a.label(srcSide)
		a.op(bpf.LoadScratch{Dst: bpf.RegA, N: memSport})
		a.jif(bpf.JumpEqual, uint32(e.Port), "", next)
		a.addrMatch(addr, src, hit, next)
		a.label(hit)
		a.op(bpf.RetConstant{Val: kernelSnap})
		a.label(next)
	}
	a.op(bpf.RetConstant{Val: 0})
}

// skipHeader steps over the extension header at X, whose length is (hdr[1]+add)<<shift,
// and jumps to next with A its next header and X the header after it.
func (a *asm) skipHeader(add, shift uint32, next string) {
	a.op(bpf.LoadIndirect{Off: 0, Size: 1})
	a.op(bpf.StoreScratch{Src: bpf.RegA, N: memNext})
	a.op(bpf.LoadIndirect{Off: 1, Size: 1})
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: add})
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: shift})
	a.op(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.op(bpf.TAX{})
	a.op(bpf.LoadScratch{Dst: bpf.RegA, N: memNext})
	a.ja(next)
}

// asm is a tiny assembler with forward labels, so the program reads top to bottom.
type asm struct {
	ins    []bpf.Instruction
	jumps  []jump
	labels map[string]int
}

type jump struct {
	at            int
	ifTrue, ifNot string // "" is the next instruction
}

func (a *asm) op(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

// jif jumps to ifTrue when "A cond val" holds, else to ifNot ("" = fall through).
func (a *asm) jif(cond bpf.JumpTest, val uint32, ifTrue, ifNot string) {
	a.jumps = append(a.jumps, jump{at: len(a.ins), ifTrue: ifTrue, ifNot: ifNot})
	a.op(bpf.JumpIf{Cond: cond, Val: val})
}

// ja jumps to label unconditionally.
func (a *asm) ja(label string) {
	a.jumps = append(a.jumps, jump{at: len(a.ins), ifTrue: label})
	a.op(bpf.Jump{})
}

// ports loads both ports at X into scratch memory. Loading both first means a packet too
// short to hold them is refused (an out-of-bounds load ends the program with 0).
func (a *asm) ports() {
	a.op(bpf.LoadIndirect{Off: 0, Size: 2})
	a.op(bpf.StoreScratch{Src: bpf.RegA, N: memSport})
	a.op(bpf.LoadIndirect{Off: 2, Size: 2})
	a.op(bpf.StoreScratch{Src: bpf.RegA, N: memDport})
}

// addrMatch compares the address at off with addr, 32 bits at a time.
func (a *asm) addrMatch(addr []byte, off uint32, ifEqual, ifNot string) {
	for i := 0; i < len(addr); i += 4 {
		word := uint32(addr[i])<<24 | uint32(addr[i+1])<<16 | uint32(addr[i+2])<<8 | uint32(addr[i+3])
		a.op(bpf.LoadAbsolute{Off: off + uint32(i), Size: 4})
		if i+4 < len(addr) {
			a.jif(bpf.JumpEqual, word, "", ifNot)
		} else {
			a.jif(bpf.JumpEqual, word, ifEqual, ifNot)
		}
	}
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	skip := func(from int, label string) (uint32, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := a.labels[label]
		if !ok {
			return 0, fmt.Errorf("build capture filter: no label %q", label)
		}
		if to <= from {
			return 0, fmt.Errorf("build capture filter: backward jump to %q", label)
		}
		return uint32(to - from - 1), nil
	}
	for _, j := range a.jumps {
		t, err := skip(j.at, j.ifTrue)
		if err != nil {
			return nil, err
		}
		f, err := skip(j.at, j.ifNot)
		if err != nil {
			return nil, err
		}
		switch ins := a.ins[j.at].(type) {
		case bpf.Jump:
			ins.Skip = t
			a.ins[j.at] = ins
		case bpf.JumpIf:
			if t > 255 || f > 255 {
				return nil, fmt.Errorf("build capture filter: jump from %d too far for classic BPF", j.at)
			}
			ins.SkipTrue, ins.SkipFalse = uint8(t), uint8(f)
			a.ins[j.at] = ins
		}
	}
	if len(a.ins) > 4096 {
		return nil, fmt.Errorf("build capture filter: %d instructions, more than the kernel's 4096", len(a.ins))
	}
	return a.ins, nil
}
