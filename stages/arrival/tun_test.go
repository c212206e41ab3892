package arrival

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// openTun makes a tun device named name in namespace ns: IP packets with no link header
// (ARPHRD_NONE), or linkType when not 0 (TUNSETLINK, before it is up). Writing to the
// returned file is the device receiving a packet. The device goes with the file, which the
// test's cleanup closes.
func openTun(t *testing.T, ns, name string, linkType int) *os.File {
	t.Helper()
	var f *os.File
	testns.Do(t, ns, func() {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Errorf("open /dev/net/tun: %v", err)
			return
		}
		f = os.NewFile(uintptr(fd), "tun "+name)
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err == nil && linkType != 0 {
			err = unix.IoctlSetInt(fd, unix.TUNSETLINK, linkType)
		}
		if err != nil {
			t.Errorf("make tun device %s: %v", name, err)
		}
	})
	if t.Failed() {
		if f != nil {
			f.Close()
		}
		t.FailNow()
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A device with no link header (tun, WireGuard, IP tunnels) is captured in both directions,
// its packets decoded from their first byte, and written to the pcap as IP; whatever link
// type it says it is (here as a tun device and as one set to ARPHRD_IPGRE, which GRE
// tunnels have).
func TestCaptureTun(t *testing.T) {
	for _, linkType := range []int{0, unix.ARPHRD_IPGRE} {
		t.Run(strconv.Itoa(linkType), func(t *testing.T) { testCaptureTun(t, linkType) })
	}
}

func testCaptureTun(t *testing.T, linkType int) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	tun := openTun(t, p.Server, "tun0", linkType)
	p.InServer(t, "ip", "addr", "add", "203.0.113.2/24", "dev", "tun0")
	p.InServer(t, "ip", "link", "set", "tun0", "up")
	far, here := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	port := testns.Port()
	flow := evidence.Flow{Addr: far, Port: port, Proto: evidence.UDP}
	pcap := filepath.Join(t.TempDir(), "tun.pcap")
	c := start(t, p.Server, Config{Flow: flow, PcapPath: pcap})
	const in, out = 3, 2
	for i := range in {
		if _, err := tun.Write(ipv4(far, here, ipUDP, v4opts{}, udpDgram(port, 9, byte(i)))); err != nil {
			t.Fatalf("write to tun0: %v", err)
		}
	}
	testns.SendDatagrams(t, p.Server, netip.AddrPortFrom(far, port), out)
	waitPackets(t, c, in+out)
	a := c.Stop()
	if a.Method != map[string]string{MethodTCX: methodTCXName, MethodSocket: methodSocketName}[testMethod] {
		t.Errorf("captured with %q (%s)", a.Method, a.MethodNote)
	}
	want := []evidence.IfaceCount{
		{Iface: "tun0", Direction: evidence.In, Packets: in, Bytes: in * 29},
		{Iface: "tun0", Direction: evidence.Out, Packets: out, Bytes: out * 29},
	}
	if !slices.Equal(a.Counts, want) {
		t.Errorf("counts %+v, want %+v", a.Counts, want)
	}
	// tcx counts every packet it looks at, the ICMP errors the server sends back included;
	// the packet socket counts none.
	if testMethod == MethodTCX && a.Seen < in+out || testMethod == MethodSocket && a.Seen != 0 {
		t.Errorf("%s: seen %d, with %d packets of the flow", testMethod, a.Seen, in+out)
	}
	if len(a.Packets) != in+out || a.Packets[0].Src != netip.AddrPortFrom(far, port) || a.Packets[0].Dst != netip.AddrPortFrom(here, 9) {
		t.Errorf("packets %+v, want the first from %s:%d to %s:9", a.Packets, far, port, here)
	}
	// Packet types: 0 host (in), 4 outgoing.
	lines := tshark(t, pcap, "sll.pkttype", "ip.src", "udp.srcport", "udp.dstport")
	if len(lines) != in+out {
		t.Fatalf("tshark reads %q, want %d packets", lines, in+out)
	}
	for i, l := range lines {
		f := strings.Split(l, "|")
		ps := strconv.Itoa(int(port))
		if i < in && (f[0] != "0" || f[1] != far.String() || f[2] != ps) || i >= in && (f[0] != "4" || f[1] != here.String() || f[3] != ps) {
			t.Errorf("packet %d reads %q in the pcap", i, l)
		}
	}
}

// Where tcx cannot run (here: no CAP_BPF, CAP_SYS_ADMIN nor CAP_NET_ADMIN, as in a
// container that keeps CAP_NET_RAW), the default captures with the packet socket and says
// why; asking for tcx is an error then.
func TestCaptureFallsBackToSocket(t *testing.T) {
	testns.RequirePrivileges(t)
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}
	startIn := func(cfg Config) (c *Capture, err error) {
		testns.Do(t, p.Server, func() {
			// Do's thread dies with it, and its lowered capabilities with it.
			if err = dropCaps(unix.CAP_BPF, unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN); err == nil {
				c, err = Start(context.Background(), cfg)
			}
		})
		return c, err
	}

	c, err := startIn(Config{Flow: flow, Method: MethodAuto})
	if err != nil {
		t.Fatal(err)
	}
	testns.SendDatagrams(t, p.Client, netip.AddrPortFrom(flow.Addr, flow.Port), 2)
	waitPackets(t, c, 2)
	a := c.Stop()
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if a.Method != methodSocketName || !strings.Contains(a.MethodNote, "not tcx") || !strings.Contains(a.MethodNote, "CAP_BPF") || a.In != 2 {
		t.Errorf("method %q, note %q, in %d: want the packet socket, a note that says tcx needs CAP_BPF, 2 in", a.Method, a.MethodNote, a.In)
	}

	if c, err := startIn(Config{Flow: flow, Method: MethodTCX}); !errors.Is(err, kerr.ErrPrivilege) {
		c.Close()
		t.Errorf("tcx asked for: %v, want kerr.ErrPrivilege", err)
	}
}

// On a kernel without tcx (before 6.6; Debian 12's 6.1), the default captures with the
// packet socket and says that tcx is what is missing, not a privilege or a kernel option;
// asking for tcx is refused as unsupported.
func TestCaptureWithoutTCX(t *testing.T) {
	testns.RequirePrivileges(t)
	if testns.HasTCX() {
		t.Skipf("kernel %s has tcx: the fallback for its absence runs on one without (make vm-test boots 6.1)", testns.Release())
	}
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}
	var c *Capture
	var err error
	testns.Do(t, p.Server, func() { c, err = Start(context.Background(), Config{Flow: flow, Method: MethodAuto}) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testns.SendDatagrams(t, p.Client, netip.AddrPortFrom(flow.Addr, flow.Port), 2)
	waitPackets(t, c, 2)
	a := c.Stop()
	if a.Method != methodSocketName || !strings.Contains(a.MethodNote, "the kernel has no tcx (Linux 6.6+)") || strings.Contains(a.MethodNote, "CONFIG_") || a.In != 2 {
		t.Errorf("method %q, note %q, in %d: want the packet socket, a note that the kernel has no tcx, 2 in", a.Method, a.MethodNote, a.In)
	}
	testns.Do(t, p.Server, func() {
		var c *Capture
		if c, err = Start(context.Background(), Config{Flow: flow, Method: MethodTCX}); err == nil {
			c.Close()
		}
	})
	if !errors.Is(err, kerr.ErrUnsupported) || !strings.Contains(err.Error(), "no tcx") {
		t.Errorf("tcx asked for: %v, want kerr.ErrUnsupported saying the kernel has no tcx", err)
	}
}
