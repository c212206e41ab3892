package arrival

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// skbMeta is what the filter reads with ancillary loads instead of packet bytes.
type skbMeta struct {
	proto   uint16 // 0: the packet's family
	pkttype uint8
	hatype  uint16
	ifindex uint32
}

const (
	arphrdEther = 1
	vethIndex   = 2
)

var (
	hostOnVeth = skbMeta{pkttype: unix.PACKET_HOST, hatype: arphrdEther, ifindex: vethIndex}
	outOnVeth  = skbMeta{pkttype: unix.PACKET_OUTGOING, hatype: arphrdEther, ifindex: vethIndex}
	hostOnLo   = skbMeta{pkttype: unix.PACKET_HOST, hatype: arphrdLoopback, ifindex: 1}
	outOnLo    = skbMeta{pkttype: unix.PACKET_OUTGOING, hatype: arphrdLoopback, ifindex: 1}
)

// runFilter runs the assembled program on data with the x/net/bpf VM. The VM knows no
// ancillary loads, so each one is replaced by the constant it would load for this skb: the
// instruction count, hence every jump, is unchanged. Out-of-bounds loads end the program
// with 0, as in the kernel.
func runFilter(t testing.TB, raw []bpf.RawInstruction, data []byte, m skbMeta) bool {
	t.Helper()
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("filter does not disassemble: %v", ins)
	}
	if m.proto == 0 && len(data) > 0 {
		m.proto = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[data[0]>>4]
	}
	for i, in := range ins {
		e, ok := in.(bpf.LoadExtension)
		if !ok {
			continue
		}
		var v uint32
		switch e.Num {
		case bpf.ExtProto:
			v = uint32(m.proto)
		case bpf.ExtType:
			v = uint32(m.pkttype)
		case bpf.ExtLinkLayerType:
			v = uint32(m.hatype)
		case bpf.ExtInterfaceIndex:
			v = m.ifindex
		default:
			t.Fatalf("instruction %d: ancillary load %v not emulated", i, e)
		}
		ins[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: v}
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("filter refused by the VM: %v", err)
	}
	n, err := vm.Run(data)
	if err != nil {
		t.Fatalf("run filter: %v", err)
	}
	if n != 0 && n != kernelSnap {
		t.Fatalf("filter returned %d, want 0 or %d", n, kernelSnap)
	}
	return n != 0
}

type frameCase struct {
	name string
	flow evidence.Flow
	data []byte
	meta skbMeta
	want bool
}

var (
	tcp4 = evidence.Flow{Addr: flowV4, Port: flowPort, Proto: evidence.TCP}
	udp4 = evidence.Flow{Addr: flowV4, Port: flowPort, Proto: evidence.UDP}
	tcp6 = evidence.Flow{Addr: flowV6, Port: flowPort, Proto: evidence.TCP}
	udp6 = evidence.Flow{Addr: flowV6, Port: flowPort, Proto: evidence.UDP}
)

// frameCases are crafted packets with the decision the filter must take. Those seen as
// received on a veth (hostOnVeth) can be replayed through a real kernel.
func frameCases() []frameCase {
	syn := tcpSeg(peerPort, flowPort, flagSYN)
	synAck := tcpSeg(flowPort, peerPort, flagSYN|flagACK)
	v4 := func(src, dst netip.Addr, proto uint8, payload []byte) []byte {
		return ipv4(src, dst, proto, v4opts{}, payload)
	}
	ra := []byte{0x94, 0x04, 0, 0} // router alert
	lying := cat(tcpSeg(peerPort, flowPort, flagSYN)[:4])
	return []frameCase{
		// IPv4, TCP
		{"v4 tcp to flow", tcp4, v4(peerV4, flowV4, ipTCP, syn), hostOnVeth, true},
		{"v4 tcp from flow", tcp4, v4(flowV4, peerV4, ipTCP, synAck), hostOnVeth, true},
		{"v4 tcp from flow outgoing", tcp4, v4(flowV4, peerV4, ipTCP, synAck), outOnVeth, true},
		{"v4 tcp flow port on the peer side", tcp4, v4(flowV4, peerV4, ipTCP, syn), hostOnVeth, false},
		{"v4 tcp flow address, other port", tcp4, v4(peerV4, flowV4, ipTCP, tcpSeg(peerPort, flowPort+1, flagSYN)), hostOnVeth, false},
		{"v4 tcp other address", tcp4, v4(peerV4, netip.MustParseAddr("198.51.100.3"), ipTCP, syn), hostOnVeth, false},
		{"v4 udp for a tcp flow", tcp4, v4(peerV4, flowV4, ipUDP, udpDgram(peerPort, flowPort, 1, 2)), hostOnVeth, false},
		{"v4 icmp for a tcp flow", tcp4, v4(peerV4, flowV4, 1, syn), hostOnVeth, false},
		{"v4 tcp with options", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{options: ra}, syn), hostOnVeth, true},
		{"v4 tcp options look like the port", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{options: lying},
			tcpSeg(peerPort, flowPort+1, flagSYN)), hostOnVeth, false},
		{"v4 tcp 40 bytes of options", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{options: bytes.Repeat([]byte{1}, 40)}, syn), hostOnVeth, true},
		{"v4 ihl 4", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{ihl: 4}, syn), hostOnVeth, false},
		{"v4 version 6 in an IPv4 frame", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{version: 6}, syn), skbMeta{proto: ethPIPv4, hatype: arphrdEther, ifindex: vethIndex}, false},
		{"v4 first fragment", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{frag: 0x2000}, syn), hostOnVeth, true},
		{"v4 first fragment DF", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{frag: 0x4000}, syn), hostOnVeth, true},
		{"v4 later fragment looking like the flow", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{frag: 0x2000 | 185}, syn), hostOnVeth, false},
		{"v4 last fragment looking like the flow", tcp4, ipv4(peerV4, flowV4, ipTCP, v4opts{frag: 1}, syn), hostOnVeth, false},
		{"v4 header only", tcp4, v4(peerV4, flowV4, ipTCP, nil), hostOnVeth, false},
		{"v4 cut in the ports", tcp4, v4(peerV4, flowV4, ipTCP, syn[:3]), hostOnVeth, false},
		{"v4 only the ports", tcp4, v4(peerV4, flowV4, ipTCP, syn[:4]), hostOnVeth, true},
		{"v4 cut in the header", tcp4, v4(peerV4, flowV4, ipTCP, syn)[:19], hostOnVeth, false},
		{"v4 empty", tcp4, nil, skbMeta{proto: ethPIPv4, hatype: arphrdEther, ifindex: vethIndex}, false},
		{"v4 as ARP", tcp4, v4(peerV4, flowV4, ipTCP, syn), skbMeta{proto: 0x0806, hatype: arphrdEther, ifindex: vethIndex}, false},
		{"v4 with VLAN protocol", tcp4, v4(peerV4, flowV4, ipTCP, syn), skbMeta{proto: 0x8100, hatype: arphrdEther, ifindex: vethIndex}, false},
		// A tag left in the packet (QinQ's inner one) is not read through, by any stage.
		{"v4 tcp in an 802.1Q tag", tcp4, cat([]byte{0, 100, 0x08, 0}, v4(peerV4, flowV4, ipTCP, syn)), skbMeta{proto: 0x8100, hatype: arphrdEther, ifindex: vethIndex}, false},
		{"v6 packet for a v4 flow", tcp4, ipv6(peerV6, flowV6, ipTCP, nil, syn), hostOnVeth, false},
		{"v4-mapped v6 for a v4 flow", tcp4, ipv6(netip.MustParseAddr("::ffff:198.51.100.1"), netip.MustParseAddr("::ffff:198.51.100.2"), ipTCP, nil, syn), hostOnVeth, false},
		// loopback: the outgoing copy is refused, only there
		{"v4 lo received", tcp4, v4(peerV4, flowV4, ipTCP, syn), hostOnLo, true},
		{"v4 lo outgoing", tcp4, v4(peerV4, flowV4, ipTCP, syn), outOnLo, false},
		{"v4 other host", tcp4, v4(peerV4, flowV4, ipTCP, syn), skbMeta{pkttype: unix.PACKET_OTHERHOST, hatype: arphrdEther, ifindex: vethIndex}, true},
		// IPv4, UDP
		{"v4 udp to flow", udp4, v4(peerV4, flowV4, ipUDP, udpDgram(peerPort, flowPort, 'x')), hostOnVeth, true},
		{"v4 udp from flow", udp4, v4(flowV4, peerV4, ipUDP, udpDgram(flowPort, peerPort, 'x')), outOnVeth, true},
		{"v4 udp other port", udp4, v4(peerV4, flowV4, ipUDP, udpDgram(peerPort, 53, 'x')), hostOnVeth, false},
		{"v4 tcp for a udp flow", udp4, v4(peerV4, flowV4, ipTCP, syn), hostOnVeth, false},

		// IPv6, TCP
		{"v6 tcp to flow", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, syn), hostOnVeth, true},
		{"v6 tcp from flow", tcp6, ipv6(flowV6, peerV6, ipTCP, nil, synAck), outOnVeth, true},
		{"v6 tcp flow port on the peer side", tcp6, ipv6(flowV6, peerV6, ipTCP, nil, syn), hostOnVeth, false},
		{"v6 tcp other port", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, tcpSeg(peerPort, 22, flagSYN)), hostOnVeth, false},
		{"v6 tcp other address", tcp6, ipv6(peerV6, netip.MustParseAddr("2001:db8::3"), ipTCP, nil, syn), hostOnVeth, false},
		{"v6 tcp address differs in the last word only", tcp6, ipv6(peerV6, netip.MustParseAddr("2001:db8::1:2"), ipTCP, nil, syn), hostOnVeth, false},
		{"v6 tcp address differs in the second word only", tcp6, ipv6(peerV6, netip.MustParseAddr("2001:db8:1::2"), ipTCP, nil, syn), hostOnVeth, false},
		// Outside the test ranges: checked in the VM only, never sent.
		{"v6 tcp address differs in the first word only", tcp6, ipv6(peerV6, netip.MustParseAddr("2001:db9::2"), ipTCP, nil, syn), hostOnVeth, false},
		{"v6 udp for a tcp flow", tcp6, ipv6(peerV6, flowV6, ipUDP, nil, udpDgram(peerPort, flowPort)), hostOnVeth, false},
		{"v6 icmp6 for a tcp flow", tcp6, ipv6(peerV6, flowV6, 58, nil, syn), hostOnVeth, false},
		{"v6 hop-by-hop", tcp6, ipv6(peerV6, flowV6, ipv6HopByHop, extHdr(ipTCP, 0), syn), hostOnVeth, true},
		{"v6 long destination options", tcp6, ipv6(peerV6, flowV6, ipv6DestOpts, extHdr(ipTCP, 3), syn), hostOnVeth, true},
		{"v6 hop-by-hop, routing, destination options", tcp6, ipv6(peerV6, flowV6, ipv6HopByHop,
			cat(extHdr(ipv6Routing, 0), routingHdr(ipv6DestOpts), extHdr(ipTCP, 1)), syn), hostOnVeth, true},
		{"v6 first fragment", tcp6, ipv6(peerV6, flowV6, ipv6Fragment, fragHdr(ipTCP, 0, true), syn), hostOnVeth, true},
		{"v6 later fragment looking like the flow", tcp6, ipv6(peerV6, flowV6, ipv6Fragment, fragHdr(ipTCP, 185, true), syn), hostOnVeth, false},
		{"v6 last fragment looking like the flow", tcp6, ipv6(peerV6, flowV6, ipv6Fragment, fragHdr(ipTCP, 1, false), syn), hostOnVeth, false},
		{"v6 destination options then first fragment", tcp6, ipv6(peerV6, flowV6, ipv6DestOpts,
			cat(extHdr(ipv6Fragment, 0), fragHdr(ipTCP, 0, true)), syn), hostOnVeth, true},
		{"v6 six extension headers", tcp6, ipv6(peerV6, flowV6, ipv6DestOpts, extChain(6), syn), hostOnVeth, true},
		{"v6 seven extension headers", tcp6, ipv6(peerV6, flowV6, ipv6DestOpts, extChain(7), syn), hostOnVeth, false},
		{"v6 authentication header", tcp6, ipv6(peerV6, flowV6, 51, cat([]byte{ipTCP, 4, 0, 0}, make([]byte, 20)), syn), hostOnVeth, true},
		{"v6 authentication header, other port", tcp6, ipv6(peerV6, flowV6, 51, cat([]byte{ipTCP, 4, 0, 0}, make([]byte, 20)), tcpSeg(peerPort, flowPort+1, flagSYN)), hostOnVeth, false},
		{"v6 authentication header cut short", tcp6, ipv6(peerV6, flowV6, 51, []byte{ipTCP, 4, 0, 0}, nil), hostOnVeth, false},
		{"v6 cut in the extension header", tcp6, ipv6(peerV6, flowV6, ipv6DestOpts, nil, []byte{ipTCP}), hostOnVeth, false},
		{"v6 extension header longer than the packet", tcp6, ipv6(peerV6, flowV6, ipv6DestOpts, extHdr(ipTCP, 0)[:2], syn[:4]), hostOnVeth, false},
		{"v6 header only", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, nil), hostOnVeth, false},
		{"v6 cut in the ports", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, syn[:3]), hostOnVeth, false},
		{"v6 only the ports", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, syn[:4]), hostOnVeth, true},
		{"v6 cut in the addresses", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, syn)[:30], hostOnVeth, false},
		{"v6 version 4 in an IPv6 frame", tcp6, ipv4(peerV4, flowV4, ipTCP, v4opts{}, syn), skbMeta{proto: ethPIPv6, hatype: arphrdEther, ifindex: vethIndex}, false},
		{"v4 packet for a v6 flow", tcp6, v4(peerV4, flowV4, ipTCP, syn), hostOnVeth, false},
		{"v6 lo received", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, syn), hostOnLo, true},
		{"v6 lo outgoing", tcp6, ipv6(peerV6, flowV6, ipTCP, nil, syn), outOnLo, false},
		// IPv6, UDP
		{"v6 udp to flow", udp6, ipv6(peerV6, flowV6, ipUDP, nil, udpDgram(peerPort, flowPort, 'x')), hostOnVeth, true},
		{"v6 udp from flow", udp6, ipv6(flowV6, peerV6, ipUDP, nil, udpDgram(flowPort, peerPort, 'x')), outOnVeth, true},
		{"v6 udp hop-by-hop", udp6, ipv6(peerV6, flowV6, ipv6HopByHop, extHdr(ipUDP, 0), udpDgram(peerPort, flowPort)), hostOnVeth, true},
		{"v6 udp other port", udp6, ipv6(peerV6, flowV6, ipUDP, nil, udpDgram(peerPort, 53)), hostOnVeth, false},
	}
}

// extChain is n destination-options headers, the last announcing TCP.
func extChain(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		next := uint8(ipv6DestOpts)
		if i == n-1 {
			next = ipTCP
		}
		b = append(b, extHdr(next, 0)...)
	}
	return b
}

func TestFilterFrames(t *testing.T) {
	t.Parallel()
	for _, c := range frameCases() {
		t.Run(c.name, func(t *testing.T) {
			raw, err := Filter(evidence.Endpoints{c.flow.Endpoint()})
			if err != nil {
				t.Fatal(err)
			}
			if got := runFilter(t, raw, c.data, c.meta); got != c.want {
				t.Errorf("filter for %s: accept = %v, want %v", c.flow, got, c.want)
			}
			// The Go twin used by decode and by the fuzz test agrees.
			if got := twinAccepts(evidence.Endpoints{c.flow.Endpoint()}, c.data, c.meta); got != c.want {
				t.Errorf("Go twin for %s: accept = %v, want %v", c.flow, got, c.want)
			}
		})
	}
}

func TestFilterInterfaces(t *testing.T) {
	t.Parallel()
	pkt := ipv4(peerV4, flowV4, ipTCP, v4opts{}, tcpSeg(peerPort, flowPort, flagSYN))
	raw, err := filterOn(evidence.Endpoints{tcp4.Endpoint()}, []int{3, 7})
	if err != nil {
		t.Fatal(err)
	}
	for ifindex, want := range map[uint32]bool{1: false, 2: false, 3: true, 7: true, 8: false} {
		m := skbMeta{pkttype: unix.PACKET_HOST, hatype: arphrdEther, ifindex: ifindex}
		if got := runFilter(t, raw, pkt, m); got != want {
			t.Errorf("ifindex %d: accept = %v, want %v", ifindex, got, want)
		}
	}
	// Restricted to lo, the outgoing copy is still refused.
	raw, err = filterOn(evidence.Endpoints{tcp4.Endpoint()}, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if runFilter(t, raw, pkt, outOnLo) || !runFilter(t, raw, pkt, hostOnLo) {
		t.Error("on lo only: want the received copy, not the outgoing one")
	}
}

// TestFilterSizes builds the largest programs the package can make and has the kernel
// check them: attaching a classic filter to an ordinary socket needs no privilege.
// smallestOptmem is the least net.core.optmem_max of the kernels we test on (Debian 12's
// 6.1): a classic filter's size counts against it.
const smallestOptmem = 20480

// TestFilterSizes attaches every size of filter the capture builds, up to the interface
// lists it stops testing in the filter, and more. As root it does so in a namespace of its
// own whose net.core.optmem_max is the smallest we know, where the kernel has the setting
// per namespace (6.9+); on older kernels the setting is global and is used as it is.
func TestFilterSizes(t *testing.T) {
	testns.SkipShort(t, "the kernel's check of classic filters")
	attach := func() {
		many := make([]int, 1000)
		for i := range many {
			many[i] = i + 1
		}
		for _, f := range []evidence.Flow{tcp4, udp6} {
			for _, ifs := range [][]int{nil, {1}, many[:maxFilterIfaces], many} {
				raw, err := filterOn(evidence.Endpoints{f.Endpoint()}, ifs)
				if err != nil {
					t.Fatalf("%s on %d interfaces: %v", f, len(ifs), err)
				}
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				prog := make([]unix.SockFilter, len(raw))
				for i, r := range raw {
					prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
				}
				err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
				unix.Close(fd)
				if err != nil {
					t.Errorf("kernel refuses the filter for %s on %d interfaces (%d instructions): %v", f, len(ifs), len(raw), err)
				}
				t.Logf("%s, %d interfaces: %d instructions", f, len(ifs), len(raw))
			}
		}
	}
	if os.Geteuid() != 0 {
		attach()
		return
	}
	ns := testns.Name("optmem")
	testns.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	testns.Do(t, ns, func() {
		const optmem = "/proc/sys/net/core/optmem_max"
		if err := os.WriteFile(optmem, []byte(strconv.Itoa(smallestOptmem)), 0); err != nil {
			t.Logf("cannot set %s in a namespace (global before 6.9): %v", optmem, err)
		}
		b, _ := os.ReadFile(optmem)
		t.Logf("net.core.optmem_max = %s", strings.TrimSpace(string(b)))
		attach()
	})
}

// Beyond maxFilterIfaces the filter leaves the interface test to the reader.
func TestFilterInterfaceLimit(t *testing.T) {
	t.Parallel()
	ifs := make([]int, maxFilterIfaces+1)
	for i := range ifs {
		ifs[i] = i + 1
	}
	all, err := filterOn(evidence.Endpoints{tcp4.Endpoint()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	most, err := filterOn(evidence.Endpoints{tcp4.Endpoint()}, ifs[:maxFilterIfaces])
	if err != nil {
		t.Fatal(err)
	}
	over, err := filterOn(evidence.Endpoints{tcp4.Endpoint()}, ifs)
	if err != nil {
		t.Fatal(err)
	}
	if len(most) <= len(all) || !slices.Equal(over, all) {
		t.Errorf("filter sizes: all interfaces %d, %d interfaces %d, %d interfaces %d; want the last the same as the first",
			len(all), maxFilterIfaces, len(most), len(ifs), len(over))
	}
	if !inFilter(ifs[:maxFilterIfaces]) || inFilter(ifs) {
		t.Error("inFilter disagrees with filterOn")
	}
}

func TestFilterBadFlow(t *testing.T) {
	t.Parallel()
	for _, f := range []evidence.Flow{{Port: 80, Proto: evidence.TCP}, {Addr: flowV4, Port: 80, Proto: "sctp"}} {
		if _, err := Filter(evidence.Endpoints{f.Endpoint()}); err == nil {
			t.Errorf("Filter(%+v): no error", f)
		}
	}
	if _, err := Filter(nil); err == nil {
		t.Error("Filter of no endpoint: no error")
	}
	// A v4-mapped endpoint address is the IPv4 address.
	mapped := evidence.Endpoint{Addr: netip.MustParseAddr("::ffff:198.51.100.2"), Port: flowPort, Proto: evidence.TCP}
	raw, err := Filter(evidence.Endpoints{mapped})
	if err != nil {
		t.Fatal(err)
	}
	if !runFilter(t, raw, ipv4(peerV4, flowV4, ipTCP, v4opts{}, tcpSeg(peerPort, flowPort, flagSYN)), hostOnVeth) {
		t.Error("flow ::ffff:198.51.100.2 does not match 198.51.100.2")
	}
}

// twinAccepts is the filter's decision computed in Go: locate, the twin decode uses, then
// the endpoints' own Match.
func twinAccepts(ends evidence.Endpoints, data []byte, m skbMeta) bool {
	if m.hatype == arphrdLoopback && m.pkttype == unix.PACKET_OUTGOING {
		return false
	}
	if m.proto == 0 && len(data) > 0 {
		m.proto = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[data[0]>>4]
	}
	if !slices.ContainsFunc(ends, func(e evidence.Endpoint) bool {
		return (m.proto == ethPIPv4 && e.Addr.Unmap().Is4()) || (m.proto == ethPIPv6 && e.Addr.Unmap().Is6())
	}) {
		return false
	}
	l4, proto, src, dst, ok := locate(data, m.proto)
	if !ok {
		return false
	}
	for i := range ends {
		ends[i].Addr = ends[i].Addr.Unmap()
	}
	_, match := ends.Match(proto,
		netip.AddrPortFrom(src, uint16(data[l4])<<8|uint16(data[l4+1])),
		netip.AddrPortFrom(dst, uint16(data[l4+2])<<8|uint16(data[l4+3])), 0)
	return match
}

func sameEnd(flow evidence.Flow, ap netip.AddrPort) bool {
	return ap.Addr() == flow.Addr.Unmap() && ap.Port() == flow.Port
}

// gopacketDecides is the reference decision from gopacket's decoders. decided is false
// where gopacket cannot tell (it stops at fragments, at truncated or malformed transport
// headers, at IPv4 options it finds malformed): there the Go twin is the reference.
func gopacketDecides(flow evidence.Flow, data []byte, m skbMeta) (accept, decided bool) {
	if m.hatype == arphrdLoopback && m.pkttype == unix.PACKET_OUTGOING {
		return false, true
	}
	first := layers.LayerTypeIPv4
	if flow.Addr.Unmap().Is6() {
		first = layers.LayerTypeIPv6
	}
	if m.proto != map[gopacket.LayerType]uint16{layers.LayerTypeIPv4: ethPIPv4, layers.LayerTypeIPv6: ethPIPv6}[first] {
		return false, true // another network protocol, or the flow's other family
	}
	p := gopacket.NewPacket(data, first, gopacket.DecodeOptions{NoCopy: true})
	var (
		src, dst netip.Addr
		exts     int
	)
	ls := p.Layers()
	for i, l := range ls {
		if i+1 < len(ls) {
			if _, failed := ls[i+1].(*gopacket.DecodeFailure); failed {
				// gopacket keeps a layer it failed to decode, followed by the failure.
				return false, false
			}
		}
		switch l := l.(type) {
		case *layers.IPv4:
			if l.Version != 4 {
				return false, true
			}
			if l.FragOffset != 0 {
				return false, true
			}
			src, _ = netip.AddrFromSlice(l.SrcIP)
			dst, _ = netip.AddrFromSlice(l.DstIP)
		case *layers.IPv6:
			if l.Version != 6 {
				return false, true
			}
			src, _ = netip.AddrFromSlice(l.SrcIP)
			dst, _ = netip.AddrFromSlice(l.DstIP)
		case *layers.IPv6HopByHop, *layers.IPv6Routing, *layers.IPv6Destination, *layers.IPSecAH:
			exts++
		case *layers.IPv6Fragment:
			if l.FragmentOffset != 0 {
				return false, true
			}
			exts++
		case *layers.TCP, *layers.UDP:
			if exts > maxExtHeaders {
				return false, true
			}
			if l.LayerType() != map[evidence.Proto]gopacket.LayerType{evidence.TCP: layers.LayerTypeTCP, evidence.UDP: layers.LayerTypeUDP}[flow.Proto] {
				return false, true
			}
			var sp, dp uint16
			if tcp, ok := l.(*layers.TCP); ok {
				sp, dp = uint16(tcp.SrcPort), uint16(tcp.DstPort)
			} else {
				u := l.(*layers.UDP)
				sp, dp = uint16(u.SrcPort), uint16(u.DstPort)
			}
			return sameEnd(flow, netip.AddrPortFrom(src, sp)) || sameEnd(flow, netip.AddrPortFrom(dst, dp)), true
		case gopacket.Payload, *gopacket.Fragment, *gopacket.DecodeFailure:
			return false, false
		default:
			// Anything else on the way (ESP, ICMP, ...): the filter stops there.
			if _, isNet := l.(gopacket.NetworkLayer); !isNet {
				return false, true
			}
		}
	}
	return false, false
}

// FuzzFilter compares the filter, run in the VM, with gopacket's decision where gopacket
// decides, and with the Go twin always.
func FuzzFilter(f *testing.F) {
	for _, c := range frameCases() {
		m := c.meta
		if m.proto == 0 && len(c.data) > 0 {
			m.proto = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[c.data[0]>>4]
		}
		f.Add(c.data, m.proto, m.pkttype, m.hatype, c.flow.Addr.Is6(), c.flow.Proto == evidence.UDP)
	}
	filters := map[evidence.Flow][]bpf.RawInstruction{}
	for _, fl := range []evidence.Flow{tcp4, udp4, tcp6, udp6} {
		raw, err := Filter(evidence.Endpoints{fl.Endpoint()})
		if err != nil {
			f.Fatal(err)
		}
		filters[fl] = raw
	}
	f.Fuzz(func(t *testing.T, data []byte, proto uint16, pkttype uint8, hatype uint16, v6, udp bool) {
		t.Parallel()
		flow := map[[2]bool]evidence.Flow{{false, false}: tcp4, {false, true}: udp4, {true, false}: tcp6, {true, true}: udp6}[[2]bool{v6, udp}]
		if proto == 0 {
			proto = 1 // 0 means "from the data" to runFilter
		}
		m := skbMeta{proto: proto, pkttype: pkttype, hatype: hatype, ifindex: vethIndex}
		got := runFilter(t, filters[flow], data, m)
		if twin := twinAccepts(evidence.Endpoints{flow.Endpoint()}, data, m); got != twin {
			t.Fatalf("flow %s, %+v, packet %x: filter %v, Go twin %v", flow, m, data, got, twin)
		}
		if want, decided := gopacketDecides(flow, data, m); decided && got != want {
			t.Fatalf("flow %s, %+v, packet %x: filter %v, gopacket %v", flow, m, data, got, want)
		}
	})
}

// TestGopacketReference makes sure the fuzz reference decides the plain cases itself.
func TestGopacketReference(t *testing.T) {
	t.Parallel()
	decided := 0
	for _, c := range frameCases() {
		m := c.meta
		if m.proto == 0 && len(c.data) > 0 {
			m.proto = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[c.data[0]>>4]
		}
		want, ok := gopacketDecides(c.flow, c.data, m)
		if !ok {
			continue
		}
		decided++
		if want != c.want {
			t.Errorf("%s: gopacket reference says %v, case says %v", c.name, want, c.want)
		}
	}
	if decided < len(frameCases())*2/3 {
		t.Errorf("gopacket decided only %d of %d cases", decided, len(frameCases()))
	}
	t.Logf("gopacket decided %d of %d cases", decided, len(frameCases()))
}
