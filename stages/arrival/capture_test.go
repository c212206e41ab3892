package arrival

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// start runs Start in namespace ns and closes the capture when the test ends.
func start(t *testing.T, ns string, cfg Config) *Capture {
	t.Helper()
	var (
		c   *Capture
		err error
	)
	if cfg.Method == MethodAuto {
		cfg.Method = testMethod
	}
	testns.Do(t, ns, func() { c, err = Start(context.Background(), cfg) })
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.Flow, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// connect opens a TCP connection from namespace ns to addr:port with bash's /dev/tcp.
// Nothing listens: the connection is refused, which the test wants.
func connect(t *testing.T, ns string, addr string, port uint16) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "timeout", "3", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr, port))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("connect %s:%d from %s: it succeeded, want refused", addr, port, ns)
	}
	if !strings.Contains(string(out), "refused") {
		t.Fatalf("connect %s:%d from %s: %v\n%s (want connection refused)", addr, port, ns, err, out)
	}
}

// sendUDP sends one datagram from namespace ns to addr:port.
func sendUDP(t *testing.T, ns string, addr string, port uint16) {
	t.Helper()
	testns.Run(t, "ip", "netns", "exec", ns, "timeout", "3", "bash", "-c",
		fmt.Sprintf("echo packetmortem >/dev/udp/%s/%d", addr, port))
}

// tshark reads a pcap file and returns one line of fields per packet.
func tshark(t *testing.T, path string, fields ...string) []string {
	t.Helper()
	bin := testns.Tool(t, "tshark")
	args := []string{"-r", path, "-T", "fields", "-E", "separator=|"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", path, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestCaptureRefusedTCP(t *testing.T) {
	for _, v := range []struct{ name, server, client string }{
		{"ipv4", testns.ServerV4, testns.ClientV4},
		{"ipv6", testns.ServerV6, testns.ClientV6},
	} {
		t.Run(v.name, func(t *testing.T) {
			checkFDs(t)
			p := testns.NewPair(t, "ar")
			port, other := testns.Port(), testns.Port()
			flow := evidence.Flow{Addr: netip.MustParseAddr(v.server), Port: port, Proto: evidence.TCP}
			pcap := filepath.Join(t.TempDir(), "flow.pcap")
			var (
				mu   sync.Mutex
				seen []evidence.Packet
			)
			c := start(t, p.Server, Config{Flow: flow, PcapPath: pcap, OnPacket: func(pk evidence.Packet) {
				mu.Lock()
				seen = append(seen, pk)
				mu.Unlock()
			}})

			connect(t, p.Client, v.server, other)
			before := time.Now()
			connect(t, p.Client, v.server, port)
			after := time.Now()
			// No wait: the RST left before the client saw it, so both packets are queued on
			// the socket, and Stop must read them.
			a := c.Stop()

			if a.Error != "" {
				t.Errorf("Error = %q", a.Error)
			}
			if a.In != 1 || a.Out != 1 || len(a.Packets) != 2 {
				t.Fatalf("in %d, out %d, packets %+v; want the SYN in and the RST out", a.In, a.Out, a.Packets)
			}
			syn, rst := a.Packets[0], a.Packets[1]
			client := netip.MustParseAddr(v.client)
			if syn.Iface != testns.Iface || syn.Direction != evidence.In || syn.Flags != "S" || syn.PktType != "host" ||
				syn.Dst != netip.AddrPortFrom(flow.Addr, port) || syn.Src.Addr() != client {
				t.Errorf("first packet %+v, want the SYN from %s received on %s", syn, client, testns.Iface)
			}
			if rst.Iface != testns.Iface || rst.Direction != evidence.Out || rst.Flags != "R." || rst.PktType != "outgoing" ||
				rst.Src != syn.Dst || rst.Dst != syn.Src {
				t.Errorf("second packet %+v, want the RST answering %+v", rst, syn)
			}
			if syn.Time.Before(before) || rst.Time.Before(syn.Time) || rst.Time.After(after) {
				t.Errorf("times %v, %v: want them in order, while the client connected (%v to %v)", syn.Time, rst.Time, before, after)
			}
			wantCounts := []evidence.IfaceCount{
				{Iface: testns.Iface, Direction: evidence.In, Packets: 1, Bytes: syn.Length},
				{Iface: testns.Iface, Direction: evidence.Out, Packets: 1, Bytes: rst.Length},
			}
			if !slices.Equal(a.Counts, wantCounts) {
				t.Errorf("Counts = %+v, want %+v", a.Counts, wantCounts)
			}
			hdr := 20
			if flow.Addr.Is6() {
				hdr = 40
			}
			if rst.Length != hdr+20 || syn.Length <= hdr+20 {
				t.Errorf("lengths SYN %d, RST %d: want the IP lengths (RST %d, SYN with options more)", syn.Length, rst.Length, hdr+20)
			}
			if a.SocketDrops != 0 || a.PcapPath != pcap || a.Ifaces != nil {
				t.Errorf("drops %d, pcap %q, ifaces %v", a.SocketDrops, a.PcapPath, a.Ifaces)
			}
			mu.Lock()
			if !slices.Equal(seen, a.Packets) || c.Packets() != 2 {
				t.Errorf("OnPacket saw %+v, Packets() = %d; want the 2 packets", seen, c.Packets())
			}
			mu.Unlock()
			if again := c.Stop(); again != a {
				t.Error("a second Stop returned other evidence")
			}

			ip := "ip"
			if flow.Addr.Is6() {
				ip = "ipv6"
			}
			lines := tshark(t, pcap, "sll.pkttype", "sll.ifindex", ip+".src", "tcp.srcport", "tcp.dstport", "tcp.flags.str")
			vethIndex := ifindex(t, p.Server, testns.Iface)
			want := []string{
				fmt.Sprintf("0|%d|%s|%d|%d|", vethIndex, v.client, syn.Src.Port(), port),
				fmt.Sprintf("4|%d|%s|%d|%d|", vethIndex, v.server, port, syn.Src.Port()),
			}
			if len(lines) != 2 || !strings.HasPrefix(lines[0], want[0]) || !strings.HasPrefix(lines[1], want[1]) {
				t.Errorf("tshark reads\n%s\nwant lines starting\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestCaptureUDP(t *testing.T) {
	for _, v := range []struct{ name, server string }{{"ipv4", testns.ServerV4}, {"ipv6", testns.ServerV6}} {
		t.Run(v.name, func(t *testing.T) {
			checkFDs(t)
			p := testns.NewPair(t, "ar")
			port, other := testns.Port(), testns.Port()
			flow := evidence.Flow{Addr: netip.MustParseAddr(v.server), Port: port, Proto: evidence.UDP}
			pcap := filepath.Join(t.TempDir(), "flow.pcap")
			c := start(t, p.Server, Config{Flow: flow, PcapPath: pcap})
			sendUDP(t, p.Client, v.server, other)
			sendUDP(t, p.Client, v.server, port)
			sendUDP(t, p.Client, v.server, port)
			waitPackets(t, c, 2)
			a := c.Stop()
			// The port unreachable answers are ICMP: not the flow's.
			if a.In != 2 || a.Out != 0 || len(a.Packets) != 2 {
				t.Fatalf("in %d out %d packets %+v; want 2 datagrams in", a.In, a.Out, a.Packets)
			}
			for _, pk := range a.Packets {
				if pk.Dst != netip.AddrPortFrom(flow.Addr, port) || pk.Flags != "" || pk.Iface != testns.Iface || pk.Direction != evidence.In {
					t.Errorf("packet %+v, want a datagram to %s on %s", pk, flow, testns.Iface)
				}
			}
			lines := tshark(t, pcap, "udp.dstport", "udp.length")
			if len(lines) != 2 || lines[0] != fmt.Sprintf("%d|21", port) {
				t.Errorf("tshark reads %q, want 2 datagrams to %d of 21 bytes", lines, port)
			}
		})
	}
}

// waitPackets waits until the capture counted n packets (traffic sent from another
// namespace may still be in the receiving backlog when the sender returns).
func waitPackets(t *testing.T, c *Capture, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Packets() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Packets() < n {
		t.Fatalf("captured %d packets, want %d", c.Packets(), n)
	}
}

func ifindex(t *testing.T, ns, name string) int {
	t.Helper()
	var (
		i   *net.Interface
		err error
	)
	testns.Do(t, ns, func() { i, err = net.InterfaceByName(name) })
	if err != nil {
		t.Fatalf("interface %s in %s: %v", name, ns, err)
	}
	return i.Index
}

func TestCaptureOnlyNamedInterface(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	port := testns.Port()
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: port, Proto: evidence.TCP}
	onLo := start(t, p.Server, Config{Flow: flow, Ifaces: []string{"lo"}})
	onVeth := start(t, p.Server, Config{Flow: flow, Ifaces: []string{testns.Iface, "lo", testns.Iface}})
	connect(t, p.Client, testns.ServerV4, port)
	waitPackets(t, onVeth, 2)
	time.Sleep(50 * time.Millisecond)
	if a := onLo.Stop(); a.In+a.Out != 0 || len(a.Packets) != 0 || len(a.Counts) != 0 || !slices.Equal(a.Ifaces, []string{"lo"}) {
		t.Errorf("capture on lo saw %+v; want nothing (the traffic went over %s)", a, testns.Iface)
	}
	if a := onVeth.Stop(); a.In != 1 || a.Out != 1 || !slices.Equal(a.Ifaces, []string{testns.Iface, "lo"}) {
		t.Errorf("capture on %s and lo: in %d out %d ifaces %v; want 1 and 1 on [%s lo]", testns.Iface, a.In, a.Out, a.Ifaces, testns.Iface)
	}
}

// TestCaptureLoopback counts each packet over lo once, whether the capture is on every
// interface or on lo alone.
func TestCaptureLoopback(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	port := testns.Port()
	flow := evidence.Flow{Addr: netip.MustParseAddr("127.0.0.1"), Port: port, Proto: evidence.TCP}
	anyIf := start(t, p.Server, Config{Flow: flow})
	onLo := start(t, p.Server, Config{Flow: flow, Ifaces: []string{"lo"}})
	connect(t, p.Server, "127.0.0.1", port)
	for _, c := range []*Capture{anyIf, onLo} {
		waitPackets(t, c, 2)
	}
	time.Sleep(50 * time.Millisecond) // a duplicate would be there by now
	for name, c := range map[string]*Capture{"any": anyIf, "lo": onLo} {
		a := c.Stop()
		if len(a.Packets) != 2 || a.In != 2 || a.Out != 0 {
			t.Fatalf("capture on %s: in %d out %d, packets %+v; want the SYN and the RST once each", name, a.In, a.Out, a.Packets)
		}
		if a.Packets[0].Flags != "S" || a.Packets[1].Flags != "R." || a.Packets[0].Iface != "lo" || a.Packets[0].PktType != "host" {
			t.Errorf("capture on %s: %+v", name, a.Packets)
		}
	}
}

func TestStartErrors(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.TCP}
	// A second veth pair inside the server namespace, left down.
	testns.Run(t, "ip", "-n", p.Server, "link", "add", "down0", "type", "veth", "peer", "name", "down1")
	try := func(cfg Config) error {
		var (
			c   *Capture
			err error
		)
		testns.Do(t, p.Server, func() { c, err = Start(context.Background(), cfg) })
		if err == nil {
			c.Close()
			return nil
		}
		if c != nil {
			t.Errorf("Start failed (%v) but returned a capture", err)
		}
		if cerr := c.Close(); cerr != nil {
			t.Errorf("Close after a failed Start: %v", cerr)
		}
		return err
	}

	err := try(Config{Flow: flow, Ifaces: []string{testns.Iface, "eth9"}})
	if !errors.Is(err, ErrBadInterface) || !strings.Contains(err.Error(), `"eth9"`) ||
		!strings.Contains(err.Error(), "lo, "+testns.Iface) {
		t.Errorf("unknown interface: %v; want ErrBadInterface naming eth9 and listing lo, %s", err, testns.Iface)
	}
	err = try(Config{Flow: flow, Ifaces: []string{"down0"}})
	if !errors.Is(err, ErrBadInterface) || !strings.Contains(err.Error(), "down") {
		t.Errorf("down interface: %v; want ErrBadInterface saying it is down", err)
	}

	// An existing pcap file is kept, unless Overwrite.
	pcap := filepath.Join(t.TempDir(), "old.pcap")
	if err := os.WriteFile(pcap, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := try(Config{Flow: flow, PcapPath: pcap}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("existing pcap: %v; want an error saying it exists", err)
	}
	if b, _ := os.ReadFile(pcap); string(b) != "keep me" {
		t.Errorf("existing pcap was changed: %q", b)
	}
	if err := try(Config{Flow: flow, PcapPath: pcap, Overwrite: true}); err != nil {
		t.Errorf("Overwrite: %v", err)
	}
	if r, err := os.Open(pcap); err != nil {
		t.Error(err)
	} else {
		if _, err := pcapgo.NewReader(r); err != nil {
			t.Errorf("overwritten pcap: %v", err)
		}
		r.Close()
	}
	// A pcap in a missing directory fails after the socket was made: nothing is left open.
	if err := try(Config{Flow: flow, PcapPath: filepath.Join(t.TempDir(), "no", "such.pcap")}); err == nil {
		t.Error("pcap in a missing directory: no error")
	}
	if err := try(Config{Flow: evidence.Flow{Port: 80, Proto: evidence.TCP}}); err == nil {
		t.Error("flow without address: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, Config{Flow: flow}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestPrivilege drops the capabilities the method needs on a locked thread and expects the
// privilege error that says which: CAP_NET_RAW for the packet socket, CAP_BPF for tcx.
func TestPrivilege(t *testing.T) {
	testns.RequirePrivileges(t)
	checkFDs(t)
	caps, want, name := []int{unix.CAP_NET_RAW}, kerr.ErrPrivilege, "CAP_NET_RAW"
	if testMethod == MethodTCX {
		caps, want, name = []int{unix.CAP_BPF, unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN}, kerr.ErrPrivilege, "CAP_BPF"
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it dies with the goroutine and its lowered
		// capabilities with it.
		runtimeLockOSThread()
		if err := dropCaps(caps...); err != nil {
			errc <- fmt.Errorf("drop %s: %w", name, err)
			return
		}
		c, err := Start(context.Background(), Config{Flow: tcp4, Method: testMethod})
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	err := <-errc
	if !errors.Is(err, want) || !strings.Contains(err.Error(), name) {
		t.Errorf("Start without %s: %v; want %v", name, err, want)
	}
}

// TestStopByContext ends the reading with the context; Stop still returns the evidence.
func TestStopByContext(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	port := testns.Port()
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: port, Proto: evidence.TCP}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		c   *Capture
		err error
	)
	testns.Do(t, p.Server, func() { c, err = Start(ctx, Config{Flow: flow}) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect(t, p.Client, testns.ServerV4, port)
	waitPackets(t, c, 2)
	cancel()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		t.Fatal("reader still running 2s after the context was cancelled")
	}
	if a := c.Stop(); a.In != 1 || a.Out != 1 {
		t.Errorf("after cancel: in %d out %d, want 1 and 1", a.In, a.Out)
	}
}

// TestKernelAgreesWithVM replays the crafted packets through a real kernel: a client
// namespace sends them on the veth, captures of four flows run in the server namespace,
// and each must accept exactly the packets the VM accepts for its flow.
func TestKernelAgreesWithVM(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	serverMAC, clientMAC := mac(t, p.Server), mac(t, p.Client)
	flows := []evidence.Flow{tcp4, udp4, tcp6, udp6}
	dir := t.TempDir()
	caps := make([]*Capture, len(flows))
	for i, f := range flows {
		caps[i] = start(t, p.Server, Config{Flow: f, PcapPath: filepath.Join(dir, fmt.Sprint(i, ".pcap"))})
	}

	type frame struct {
		ethertype uint16
		data      []byte
	}
	var frames []frame
	for _, c := range frameCases() {
		if c.meta.pkttype != unix.PACKET_HOST || c.meta.hatype != arphrdEther {
			continue // only received-on-Ethernet cases can be replayed
		}
		et := c.meta.proto
		if et == 0 {
			et = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[c.data[0]>>4]
		}
		if !testAddresses(et, c.data) {
			t.Logf("not sending %q: an address outside the test ranges", c.name)
			continue
		}
		frames = append(frames, frame{et, c.data})
	}
	// A last packet every capture accepts, to know when the others went through.
	markers := []frame{
		{ethPIPv4, ipv4(peerV4, flowV4, ipTCP, v4opts{}, tcpSeg(39999, flowPort, flagRST))},
		{ethPIPv4, ipv4(peerV4, flowV4, ipUDP, v4opts{}, udpDgram(39999, flowPort))},
		{ethPIPv6, ipv6(peerV6, flowV6, ipTCP, nil, tcpSeg(39999, flowPort, flagRST))},
		{ethPIPv6, ipv6(peerV6, flowV6, ipUDP, nil, udpDgram(39999, flowPort))},
	}
	testns.Do(t, p.Client, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Errorf("client packet socket: %v", err)
			return
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifindexHere(t, testns.Iface), Halen: 6}
		copy(to.Addr[:], serverMAC)
		for _, f := range append(slices.Clone(frames), markers...) {
			eth := append(append(append([]byte(nil), serverMAC...), clientMAC...), byte(f.ethertype>>8), byte(f.ethertype))
			if err := unix.Sendto(fd, append(eth, f.data...), 0, to); err != nil {
				t.Errorf("send %x: %v", f.data, err)
			}
		}
	})
	for _, c := range caps {
		waitPackets(t, c, 1)
	}
	time.Sleep(100 * time.Millisecond)

	for i, f := range flows {
		a := caps[i].Stop()
		raw, err := Filter(evidence.Endpoints{f.Endpoint()})
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, fr := range append(slices.Clone(frames), markers[i]) {
			if runFilter(t, raw, fr.data, skbMeta{proto: fr.ethertype, pkttype: unix.PACKET_HOST, hatype: arphrdEther, ifindex: vethIndex}) {
				want = append(want, fmt.Sprintf("%04x %x", fr.ethertype, fr.data))
			}
		}
		for _, rec := range readPcap(t, a.PcapPath) {
			if rec[10] == unix.PACKET_OUTGOING {
				continue // the server's answers
			}
			got = append(got, fmt.Sprintf("%02x%02x %x", rec[0], rec[1], rec[sll2Len:]))
		}
		slices.Sort(want)
		slices.Sort(got)
		want = slices.Compact(want)
		got = slices.Compact(got)
		if !slices.Equal(got, want) {
			t.Errorf("flow %s: the kernel accepted\n%s\nthe VM\n%s", f, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		t.Logf("flow %s: kernel and VM agree on %d of %d packets accepted", f, len(got), len(frames)+1)
	}
}

func readPcap(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != 276 || r.Snaplen() != Snaplen {
		t.Errorf("pcap link type %d snaplen %d, want 276 (LINUX_SLL2) and %d", r.LinkType(), r.Snaplen(), Snaplen)
	}
	var recs [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		recs = append(recs, data)
	}
	return recs
}

func mac(t *testing.T, ns string) net.HardwareAddr {
	t.Helper()
	var (
		i   *net.Interface
		err error
	)
	testns.Do(t, ns, func() { i, err = net.InterfaceByName(testns.Iface) })
	if err != nil {
		t.Fatal(err)
	}
	return i.HardwareAddr
}

func ifindexHere(t *testing.T, name string) int {
	i, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return i.Index
}

// TestCaptureLateInterface sends more than MaxPackets packets over a veth pair made after
// Start, then removes it: both ends are named (looked up in the capture's namespace from
// the reader, which runs outside it), every packet is counted, the first MaxPackets are
// kept.
func TestCaptureLateInterface(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}
	c := start(t, p.Server, Config{Flow: flow})
	testns.Run(t, "ip", "-n", p.Server, "link", "add", "late0", "type", "veth", "peer", "name", "late1")
	testns.Run(t, "ip", "-n", p.Server, "link", "set", "late0", "up")
	testns.Run(t, "ip", "-n", p.Server, "link", "set", "late1", "up")
	const n = evidence.MaxPackets + 6
	testns.Do(t, p.Server, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Errorf("packet socket: %v", err)
			return
		}
		defer unix.Close(fd)
		late0, err := net.InterfaceByName("late0")
		if err != nil {
			t.Error(err)
			return
		}
		to := &unix.SockaddrLinklayer{Ifindex: ifindexHere(t, "late1"), Protocol: htons(ethPIPv4), Halen: 6}
		copy(to.Addr[:], late0.HardwareAddr)
		for i := range n {
			pkt := ipv4(netip.MustParseAddr(testns.ClientV4), flow.Addr, ipUDP, v4opts{}, udpDgram(peerPort, flow.Port, byte(i)))
			if err := unix.Sendto(fd, pkt, 0, to); err != nil {
				t.Errorf("send: %v", err)
			}
		}
	})
	waitPackets(t, c, 2*n)
	// An interface removed during the capture takes the capture's hold on it along:
	// stopping and closing (start's cleanup) still succeed.
	testns.Run(t, "ip", "-n", p.Server, "link", "del", "late0")
	a := c.Stop()
	if a.Error != "" {
		t.Errorf("capture error after an interface went: %s", a.Error)
	}
	want := []evidence.IfaceCount{
		{Iface: "late0", Direction: evidence.In, Packets: n, Bytes: n * 29},
		{Iface: "late1", Direction: evidence.Out, Packets: n, Bytes: n * 29},
	}
	if !slices.Equal(a.Counts, want) || a.In != n || a.Out != n {
		t.Errorf("counts %+v in %d out %d; want %+v", a.Counts, a.In, a.Out, want)
	}
	if len(a.Packets) != evidence.MaxPackets {
		t.Errorf("%d packets kept, want %d", len(a.Packets), evidence.MaxPackets)
	}
	// The pcapng names its interfaces from these.
	names, _ := c.Interfaces()
	if !slices.Contains(slices.Collect(maps.Values(names)), "late0") || !slices.Contains(slices.Collect(maps.Values(names)), "late1") {
		t.Errorf("interfaces %v lack late0 and late1", names)
	}
}

// TestStopDrains holds the reader in OnPacket while more packets queue up, then stops:
// Stop must return only after reading them.
// stall holds the reader in OnPacket on the first packet, until release.
type stall struct {
	entered, released chan struct{}
	once              sync.Once
}

func newStall() *stall { return &stall{entered: make(chan struct{}), released: make(chan struct{})} }

func (s *stall) onPacket(evidence.Packet) {
	s.once.Do(func() {
		close(s.entered)
		<-s.released
	})
}

// wait returns once the reader is held.
func (s *stall) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no packet reached OnPacket")
	}
}

func (s *stall) release() { close(s.released) }

func TestStopDrains(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}
	stall := newStall()
	c := start(t, p.Server, Config{Flow: flow, OnPacket: stall.onPacket})
	sendUDP(t, p.Client, testns.ServerV4, flow.Port)
	stall.wait(t)
	for range 5 {
		sendUDP(t, p.Client, testns.ServerV4, flow.Port)
	}
	time.Sleep(100 * time.Millisecond) // queued on the socket by now
	stopped := make(chan *evidence.Arrival)
	go func() { stopped <- c.Stop() }()
	time.Sleep(50 * time.Millisecond)
	stall.release()
	a := <-stopped
	if a.In != 6 {
		t.Errorf("Stop returned %d packets in, want 6", a.In)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after Stop: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// testAddresses reports whether every address byte present in a crafted packet belongs to
// 198.51.100.0/24 (IPv4) or 2001:db8::/32 (IPv6), the only ranges tests may send to.
func testAddresses(ethertype uint16, data []byte) bool {
	prefix := func(off int, want []byte) bool {
		for i, b := range want {
			if off+i < len(data) && data[off+i] != b {
				return false
			}
		}
		return true
	}
	switch {
	case len(data) == 0:
		return true
	case ethertype == ethPIPv4 || data[0]>>4 == 4:
		return prefix(12, []byte{198, 51, 100}) && prefix(16, []byte{198, 51, 100})
	case ethertype == ethPIPv6 || data[0]>>4 == 6:
		return prefix(8, []byte{0x20, 0x01, 0x0d, 0xb8}) && prefix(24, []byte{0x20, 0x01, 0x0d, 0xb8})
	}
	return false
}

// A flow that grows by an endpoint of the other family while the capture runs: on tcx the
// programs, loaded for IPv4 only, are swapped for ones that take IPv6 too, in every link,
// and the IPv4 endpoint is still captured after the swap. With each method the package's
// tests run with (testMethod).
func TestCaptureGrowsOtherFamily(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "ag")
	port, port6 := testns.Port(), testns.Port()
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: port, Proto: evidence.UDP}
	c := start(t, p.Server, Config{Flow: flow})
	sendUDP(t, p.Client, testns.ServerV4, port)
	waitPackets(t, c, 1)
	six := evidence.Endpoint{ID: 2, Addr: netip.MustParseAddr(testns.ServerV6), Port: port6, Proto: evidence.UDP}
	if err := c.Grow(six); err != nil {
		t.Fatalf("Grow(%s): %v", six, err)
	}
	sendUDP(t, p.Client, testns.ServerV6, port6)
	sendUDP(t, p.Client, testns.ServerV4, port)
	waitPackets(t, c, 3)
	a := c.Stop()
	var got []netip.AddrPort
	for _, pk := range a.Packets {
		got = append(got, pk.Dst)
	}
	want := []netip.AddrPort{netip.AddrPortFrom(flow.Addr, port), netip.AddrPortFrom(six.Addr, port6), netip.AddrPortFrom(flow.Addr, port)}
	if !slices.Equal(got, want) {
		t.Errorf("captured datagrams to %v, want %v", got, want)
	}
}
