package main

import (
	bin "encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

// Faults along the whole map, each broken on purpose and diagnosed end to end.

func TestE2EPreroutingDropRule(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "pre", v6, "tcp")
		s.nft(t, s.pair.Server, `table inet early {
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		tcp dport PORT drop
	}
}`)
		rep := s.diagnose(t, "prerouting_drop_rule_"+family(v6), s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Prerouting, "NETFILTER_DROP")
		if r := rep.Verdict.Rule; r == nil || r.Chain != "pre" || r.Rule != fmt.Sprintf("tcp dport %d drop", s.port) {
			t.Errorf("rule %+v, want chain pre's drop rule", r)
		}
	})
}

// TestE2ESenderEgressFirewallFromSender diagnoses on the sender itself: the drop is in
// this namespace, at output.
func TestE2ESenderEgressFirewallFromSender(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "sen", v6, "tcp")
		s.nft(t, s.pair.Client, `table inet clientguard {
	chain output {
		type filter hook output priority 0; policy accept;
		tcp dport PORT drop
	}
}`)
		repro := s.fromClient(connect)[4:] // already in the client namespace
		rep := s.diagnoseIn(t, s.pair.Client, s.flowArg(), "sender_egress_firewall_from_sender_"+family(v6), repro)
		expect(t, rep, verdict.Dropped, verdict.Output, "NETFILTER_DROP")
		if h := rep.Verdict.Netfilter; h == nil || h.Hook != "output" {
			t.Errorf("netfilter hook %+v, want output", h)
		}
		if !strings.Contains(rep.Verdict.Fix, "nft delete rule inet clientguard output handle") {
			t.Errorf("fix does not name the rule: %s", rep.Verdict.Fix)
		}
	})
}

// TestE2ENoRouteOnOutput: the sender has no route to the flow's address, so no packet is
// ever built; the route lookup tracepoint shows why.
func TestE2ENoRouteOnOutput(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "nrt", v6, "tcp")
		addr := "203.0.113.9"
		flow := fmt.Sprintf("%s:%d", addr, s.port)
		if v6 {
			addr = "2001:db8:ffff::9"
			flow = fmt.Sprintf("[%s]:%d", addr, s.port)
		}
		repro := []string{"timeout", "3", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr, s.port)}
		rep := s.diagnoseIn(t, s.pair.Client, flow, "no_route_on_output_"+family(v6), repro)
		expect(t, rep, verdict.Dropped, verdict.Output, "IP_OUTNOROUTES")
		if !strings.Contains(rep.Verdict.Fix, "ip route add "+addr) {
			t.Errorf("fix does not name the address: %s", rep.Verdict.Fix)
		}
	})
}

// TestE2ETCIngressDrop: a tc ingress program that drops everything on the server: on tcx
// where the kernel has it, else as a cls_bpf filter.
func TestE2ETCIngressDrop(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "tci", v6, "tcp")
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "drop_all", Type: ebpf.SchedCLS, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* TC_ACT_SHOT */), asm.Return()},
		})
		if err != nil {
			t.Fatalf("load the tc program: %v", err)
		}
		defer prog.Close()
		tcx := testns.HasTCX()
		if !tcx {
			s.pair.InServer(t, "tc", "qdisc", "add", "dev", testns.Iface, "clsact")
		}
		testns.Do(t, s.pair.Server, func() {
			ifi, err := net.InterfaceByName(testns.Iface)
			if err != nil {
				t.Error(err)
				return
			}
			if !tcx {
				if err := testns.AttachClsBPF(ifi.Index, true, prog, "drop_all.o:[tc]"); err != nil {
					t.Errorf("attach cls_bpf ingress: %v", err)
				}
				return
			}
			l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				t.Errorf("attach tcx ingress: %v", err)
				return
			}
			t.Cleanup(func() { l.Close() })
		})
		if t.Failed() {
			t.FailNow()
		}
		// The program drops ARP and neighbour discovery too: give the client the
		// server's address so its SYNs reach the program.
		s.staticNeighbor(t)
		rep := s.diagnose(t, "tc_ingress_drop_"+family(v6), s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Ingress, "TC_INGRESS")
		if !strings.Contains(rep.Verdict.Fix, "drop_all") {
			t.Errorf("fix does not name the program: %s", rep.Verdict.Fix)
		}
	})
}

// TestE2EMalformed: packets with a bad IP or TCP checksum, crafted on a packet socket in
// the client, so no kernel fixes them on the way.
func TestE2EMalformed(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		v6     bool
		badIP  bool
		stage  verdict.Stage
		reason string
	}{
		{"ip_checksum", false, true, verdict.IPRcv, "IP_CSUM"},
		{"tcp_checksum_v4", false, false, verdict.Socket, "TCP_CSUM"},
		{"tcp_checksum_v6", true, false, verdict.Socket, "TCP_CSUM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, "mal", c.v6, "tcp")
			// Received checksums are trusted when the device says it checked them: veth
			// does, unless told not to.
			s.pair.InServer(t, "ethtool", "-K", testns.Iface, "rx", "off")
			mac := s.serverMAC(t)
			rep := s.diagnoseSending(t, "malformed_"+c.name, func() { s.sendCrafted(t, mac, c.badIP) })
			expect(t, rep, verdict.Dropped, c.stage, c.reason)
		})
	}
}

// diagnoseSending runs diagnose with a reproduction that only says diagnose is armed and
// waits, while send, from the test, makes the traffic (crafted packets).
func (s *scenario) diagnoseSending(t *testing.T, name string, send func()) *report.Report {
	t.Helper()
	repro, armed := whenArmed(t, "sleep", "1.5")
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-armed
		send()
	}()
	rep := s.diagnose(t, name, repro)
	<-done
	return rep
}

// whenArmed returns a reproduction command that opens a FIFO once diagnose has armed every
// stage and started it, then runs command; and a channel closed when that happens. Tests
// that make the traffic themselves wait for it: arming takes a second or more in a slow VM.
func whenArmed(t *testing.T, command ...string) ([]string, <-chan struct{}) {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "armed")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	armed := make(chan struct{})
	go func() {
		// Opening a FIFO for reading waits for a writer: the reproduction.
		if f, err := os.Open(fifo); err == nil {
			f.Close()
			close(armed)
		}
	}()
	return append([]string{"sh", "-c", `: > "$1"; shift; exec "$@"`, "sh", fifo}, command...), armed
}

// staticNeighbor gives the client a permanent neighbour entry for the server, so it sends
// to the server without asking (ARP, neighbour discovery) first.
func (s *scenario) staticNeighbor(t *testing.T) {
	t.Helper()
	mac := s.serverMAC(t).String()
	for _, addr := range []string{testns.ServerV4, testns.ServerV6} {
		s.pair.InClient(t, "ip", "neigh", "replace", addr, "lladdr", mac, "dev", testns.Iface, "nud", "permanent")
	}
}

func (s *scenario) serverMAC(t *testing.T) net.HardwareAddr {
	t.Helper()
	out := testns.Run(t, "ip", "-n", s.pair.Server, "-o", "link", "show", testns.Iface)
	mac, err := net.ParseMAC(strings.Fields(out[strings.Index(out, "link/ether"):])[1])
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// sendCrafted sends three SYNs to the flow with a broken checksum from the client.
func (s *scenario) sendCrafted(t *testing.T, dstMAC net.HardwareAddr, badIP bool) {
	syn := &layers.TCP{SrcPort: 40001, DstPort: layers.TCPPort(s.port), SYN: true, Seq: 1, Window: 64240}
	s.sendSegments(t, dstMAC, syn, func(pkt []byte) {
		switch {
		case badIP:
			pkt[10] ^= 0xff // IPv4 header checksum
		case s.v6:
			pkt[40+16] ^= 0xff // TCP checksum after the 40-byte IPv6 header
		default:
			pkt[20+16] ^= 0xff
		}
	})
}

// sendSegments sends three copies of TCP segment tcp from the client to the server, on a
// packet socket so that no kernel on the way fixes or refuses them; mangle, when not nil,
// breaks the serialized packet first.
func (s *scenario) sendSegments(t *testing.T, dstMAC net.HardwareAddr, tcp *layers.TCP, mangle func(pkt []byte)) {
	src, dst := netip.MustParseAddr(testns.ClientV4), netip.MustParseAddr(testns.ServerV4)
	if s.v6 {
		src, dst = netip.MustParseAddr(testns.ClientV6), netip.MustParseAddr(testns.ServerV6)
	}
	var network gopacket.SerializableLayer
	ethType := uint16(unix.ETH_P_IP)
	if s.v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		network, ethType = ip, unix.ETH_P_IPV6
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Id: 7}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		network = ip
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, network, tcp); err != nil {
		t.Errorf("craft: %v", err)
		return
	}
	pkt := buf.Bytes()
	if mangle != nil {
		mangle(pkt)
	}
	testns.Do(t, s.pair.Client, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, 0)
		if err != nil {
			t.Errorf("packet socket: %v", err)
			return
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName(testns.Iface)
		if err != nil {
			t.Error(err)
			return
		}
		to := &unix.SockaddrLinklayer{Protocol: htons(ethType), Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], dstMAC)
		for i := 0; i < 3; i++ {
			if err := unix.Sendto(fd, pkt, 0, to); err != nil {
				t.Errorf("send crafted packet: %v", err)
				return
			}
		}
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestE2EFlood: a flood of unrelated drops between the same namespaces during the
// diagnosis changes nothing: the flow's verdict is right, and the flood is filtered out in
// the kernel. Serial: the flood loads the whole host, and would slow the others.
func TestE2EFlood(t *testing.T) {
	s := newScenario(t, "fld", false, "tcp")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent int
	testns.Do(t, s.pair.Client, func() {
		c, err := net.Dial("udp", net.JoinHostPort(testns.ServerV4, fmt.Sprint(s.port+1)))
		if err != nil {
			t.Fatalf("flood socket: %v", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Errors are the ICMP port unreachables coming back: keep sending.
				_, _ = c.Write([]byte("flood"))
				sent++
			}
		}()
	})
	rep := s.diagnose(t, "flood", s.fromClient(connect))
	close(stop)
	wg.Wait()
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	k := rep.Stages.KernelDrop
	if k.Seen < 1000 || k.Matched > 20 {
		t.Errorf("kfree_skb saw %d events and matched %d during a flood of %d datagrams: want the flood seen and filtered out", k.Seen, k.Matched, sent)
	}
	for _, d := range k.Drops {
		if d.Dst.Port() != s.port && d.Src.Port() != s.port {
			t.Errorf("a drop of another flow reached the report: %+v", d)
		}
	}
}

// TestE2EForward: the server routes to a third namespace; its forward chain drops the flow.
func TestE2EForward(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "fwd", false, "tcp")
	far := s.third(t)
	s.nft(t, s.pair.Server, `table inet router {
	chain forward {
		type filter hook forward priority 0; policy accept;
		tcp dport PORT drop
	}
}`)
	repro := []string{"ip", "netns", "exec", s.pair.Client, "timeout", "3", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/203.0.113.2/%d", s.port)}
	rep := s.diagnoseIn(t, s.pair.Server, fmt.Sprintf("203.0.113.2:%d", s.port), "forward_drop_rule", repro)
	expect(t, rep, verdict.Dropped, verdict.Forward, "NETFILTER_DROP")
	_ = far
}

// TestE2EForwardingOff: the same route, with forwarding off: the packets for another host
// arrive and go nowhere; the verdict says forwarding is off.
func TestE2EForwardingOff(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "fof", false, "tcp")
	s.third(t)
	s.pair.InServer(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	repro := []string{"ip", "netns", "exec", s.pair.Client, "timeout", "3", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/203.0.113.2/%d", s.port)}
	rep := s.diagnoseIn(t, s.pair.Server, fmt.Sprintf("203.0.113.2:%d", s.port), "forwarding_off", repro)
	if rep.Verdict.Stage != string(verdict.Routing) || !strings.Contains(rep.Verdict.Summary+rep.Verdict.Fix, "net.ipv4.ip_forward") {
		t.Fatalf("verdict %s/%s: %s\n%s; want routing, naming net.ipv4.ip_forward", rep.Verdict.Outcome, rep.Verdict.Stage, rep.Verdict.Summary, rep.Verdict.Fix)
	}
}

// third adds a namespace behind the server, 203.0.113.2, reached by the client through the
// server (203.0.113.1), with forwarding on.
func (s *scenario) third(t *testing.T) string {
	t.Helper()
	far := testns.Name("far")
	testns.Run(t, "ip", "netns", "add", far)
	t.Cleanup(func() { _ = runQuiet("ip", "netns", "del", far) })
	testns.Run(t, "ip", "link", "add", "veth1", "netns", s.pair.Server, "type", "veth", "peer", "name", "veth1", "netns", far)
	for _, cmd := range [][]string{
		{"ip", "-n", s.pair.Server, "link", "set", "veth1", "up"},
		{"ip", "-n", s.pair.Server, "addr", "add", "203.0.113.1/24", "dev", "veth1"},
		{"ip", "-n", far, "link", "set", "lo", "up"},
		{"ip", "-n", far, "link", "set", "veth1", "up"},
		{"ip", "-n", far, "addr", "add", "203.0.113.2/24", "dev", "veth1"},
		{"ip", "-n", far, "route", "add", "default", "via", "203.0.113.1"},
		{"ip", "-n", s.pair.Client, "route", "add", "203.0.113.0/24", "via", testns.ServerV4},
		{"ip", "netns", "exec", s.pair.Server, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	} {
		testns.Run(t, cmd...)
	}
	return far
}

// TestE2EPostroutingDropRule: the sender's postrouting chain drops the flow.
func TestE2EPostroutingDropRule(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "pst", v6, "tcp")
		s.nft(t, s.pair.Client, `table inet late {
	chain post {
		type filter hook postrouting priority 0; policy accept;
		tcp dport PORT drop
	}
}`)
		repro := s.fromClient(connect)[4:]
		rep := s.diagnoseIn(t, s.pair.Client, s.flowArg(), "postrouting_drop_rule_"+family(v6), repro)
		expect(t, rep, verdict.Dropped, verdict.Postrouting, "NETFILTER_DROP")
		if r := rep.Verdict.Rule; r == nil || r.Chain != "post" {
			t.Errorf("rule %+v, want chain post's drop rule", r)
		}
	})
}

// TestE2ENeighbourFailure: the sender's next hop never answers ARP or neighbour
// discovery: the queued SYN dies at egress.
func TestE2ENeighbourFailure(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "nei", v6, "tcp")
		addr, flow := "198.51.100.77", fmt.Sprintf("198.51.100.77:%d", s.port)
		if v6 {
			addr, flow = "2001:db8::77", fmt.Sprintf("[2001:db8::77]:%d", s.port)
		}
		repro := []string{"timeout", "6", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr, s.port)}
		rep := s.diagnoseIn(t, s.pair.Client, flow, "neighbour_failure_"+family(v6), repro)
		// IPv6 neighbour discovery frees the queued packets without a reason: the verdict
		// keeps the kernel's word and explains it from the function.
		reason := map[bool]string{false: "NEIGH_FAILED", true: "NOT_SPECIFIED"}[v6]
		expect(t, rep, verdict.Dropped, verdict.Egress, reason)
		if !strings.Contains(rep.Verdict.Explanation, "neighbour resolution") {
			t.Errorf("explanation does not say neighbour resolution failed: %s", rep.Verdict.Explanation)
		}
		if !strings.Contains(rep.Verdict.Fix, testns.Iface) {
			t.Errorf("fix does not name the interface: %s", rep.Verdict.Fix)
		}
	})
}

// TestE2EQdiscDrop: a queue on the sender's interface that holds nothing drops every packet.
func TestE2EQdiscDrop(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "qdi", v6, "tcp")
		s.staticNeighbor(t)
		s.pair.InClient(t, "tc", "qdisc", "add", "dev", testns.Iface, "root", "pfifo", "limit", "0")
		repro := s.fromClient(connect)[4:]
		rep := s.diagnoseIn(t, s.pair.Client, s.flowArg(), "qdisc_drop_"+family(v6), repro)
		expect(t, rep, verdict.Dropped, verdict.Egress, "QDISC_DROP")
		if !strings.Contains(rep.Verdict.Fix, "tc -s qdisc show dev "+testns.Iface) {
			t.Errorf("fix does not name the interface's qdisc: %s", rep.Verdict.Fix)
		}
	})
}

// TestE2EBridgeFamilyDrop: the server's veth0 is a bridge port and a bridge-family rule
// drops the flow on its way up to the host: the verdict tells the bridge family from IP's.
func TestE2EBridgeFamilyDrop(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "brf", false, "tcp")
	for _, cmd := range [][]string{
		{"ip", "addr", "flush", "dev", testns.Iface},
		{"ip", "link", "add", "br0", "type", "bridge"},
		{"ip", "link", "set", testns.Iface, "master", "br0"},
		{"ip", "link", "set", "br0", "up"},
		{"ip", "addr", "add", testns.ServerV4 + "/24", "dev", "br0"},
	} {
		s.pair.InServer(t, cmd...)
	}
	s.nft(t, s.pair.Server, `table bridge bguard {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport PORT drop
	}
}`)
	rep := s.diagnose(t, "bridge_family_drop", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Ingress, "NETFILTER_DROP")
	if h := rep.Verdict.Netfilter; h == nil || h.Family != "bridge" || h.Hook != "input" {
		t.Errorf("netfilter hook %+v, want bridge input", h)
	}
}

// TestE2EFatesDiffer: the handshake gets through but the data is dropped: the verdict is
// the data's, and says the fates differ.
func TestE2EFatesDiffer(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "fat", false, "tcp")
	stop := s.listen(t)
	defer stop()
	s.nft(t, s.pair.Server, `table inet dataguard {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport PORT tcp flags & psh == psh drop
	}
}`)
	rep := s.diagnose(t, "fates_differ", s.fromClient(`exec 3<>/dev/tcp/ADDR/PORT && echo hello >&3; sleep 1.5; exec 3>&-; true`))
	expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
	// "fates differ: 1 ACK(s) and 1 SYN(s) got through, 4 data segment(s) dropped": the
	// kinds are listed in alphabetical order, so the SYN need not come last.
	_, fates, _ := strings.Cut(rep.Verdict.Summary, "fates differ: ")
	through, dropped, _ := strings.Cut(fates, " got through, ")
	if !strings.Contains(through, "SYN(s)") || !strings.Contains(dropped, "data segment(s) dropped") {
		t.Errorf("summary does not say the SYN got through and the data did not: %s", rep.Verdict.Summary)
	}
}

// TestE2EMulticastRPF: the server routes multicast; its forwarding cache expects the
// client's group traffic on another interface, so what arrives on veth0 fails the
// multicast reverse-path check.
func TestE2EMulticastRPF(t *testing.T) {
	t.Parallel()
	testns.RequireKernelConfig(t, "CONFIG_IP_MROUTE")
	s := newScenario(t, "mcr", false, "udp")
	s.third(t)
	const group = "239.1.2.3"
	s.pair.InClient(t, "ip", "route", "add", "239.0.0.0/8", "dev", testns.Iface)
	var mrouter int
	testns.Do(t, s.pair.Server, func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_IGMP)
		if err != nil {
			t.Errorf("igmp socket: %v", err)
			return
		}
		mrouter = fd
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, mrtInit, 1); err != nil {
			t.Errorf("MRT_INIT: %v", err)
			return
		}
		for vif, name := range []string{testns.Iface, "veth1"} {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				t.Error(err)
				return
			}
			// struct vifctl: vifi, flags (VIFF_USE_IFINDEX), threshold, rate, ifindex, remote.
			v := make([]byte, 16)
			bin.LittleEndian.PutUint16(v[0:], uint16(vif))
			v[2], v[3] = 0x8, 1
			bin.LittleEndian.PutUint32(v[8:], uint32(ifi.Index))
			if err := setsockoptBytes(fd, mrtAddVif, v); err != nil {
				t.Errorf("MRT_ADD_VIF %s: %v", name, err)
				return
			}
		}
		// struct mfcctl: origin, group, parent vif 1 (veth1): traffic of the client is
		// expected there, not on veth0.
		m := make([]byte, 60)
		copy(m[0:], net.ParseIP(testns.ClientV4).To4())
		copy(m[4:], net.ParseIP(group).To4())
		bin.LittleEndian.PutUint16(m[8:], 1)
		m[10+0] = 1 // forward to vif 0 with TTL threshold 1
		if err := setsockoptBytes(fd, mrtAddMfc, m); err != nil {
			t.Errorf("MRT_ADD_MFC: %v", err)
		}
	})
	if mrouter == 0 || t.Failed() {
		t.FailNow()
	}
	defer unix.Close(mrouter)
	flow := fmt.Sprintf("%s:%d", group, s.port)
	repro := []string{"ip", "netns", "exec", s.pair.Client, "bash", "-c", fmt.Sprintf("for i in 1 2 3; do echo x > /dev/udp/%s/%d; sleep 0.2; done", group, s.port)}
	rep := s.diagnoseIn(t, s.pair.Server, flow, "multicast_rpf", repro)
	if rep.Verdict.Outcome != string(verdict.Dropped) || rep.Verdict.Stage != string(verdict.MulticastRPF) {
		t.Fatalf("verdict %s/%s: %s, want dropped in multicast_rpf", rep.Verdict.Outcome, rep.Verdict.Stage, rep.Verdict.Summary)
	}
	if !strings.Contains(rep.Verdict.Fix, "ip mroute show") || !strings.Contains(rep.Verdict.Fix, testns.Iface) {
		t.Errorf("fix does not point at the multicast route and the interface: %s", rep.Verdict.Fix)
	}
}

// Multicast routing socket options (linux/mroute.h).
const (
	mrtInit   = 200
	mrtAddVif = 202
	mrtAddMfc = 204
)

func setsockoptBytes(fd, opt int, b []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_IP, uintptr(opt), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
