package hoststate

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	cilink "github.com/cilium/ebpf/link"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// End-to-end tests: they run as root in namespaces made by testns, skip locally without
// root and fail under CI=true. Traffic only goes between the test's own namespaces
// (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

var saveFixtures = flag.Bool("record", false, "save the netlink answers of the end-to-end tests to testdata/*.hex, the unit tests' fixtures")

// startIn arms a snapshot inside namespace ns.
func startIn(t testing.TB, ns string, flow evidence.Flow) *Snapshot {
	t.Helper()
	var s *Snapshot
	var err error
	testns.Do(t, ns, func() { s, err = Start(context.Background(), Config{Flow: flow}) })
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return s
}

// stopIn reads the host state inside namespace ns and logs how long it took.
func stopIn(t *testing.T, ns string, s *Snapshot, peers []netip.Addr, ifaces []string) *evidence.HostState {
	t.Helper()
	var hs *evidence.HostState
	var took time.Duration
	testns.Do(t, ns, func() {
		began := time.Now()
		hs = s.Stop(context.Background(), peers, ifaces)
		took = time.Since(began)
	})
	t.Logf("Stop took %v", took)
	for _, e := range hs.Errors {
		t.Logf("host state error: %s", e)
	}
	return hs
}

func flowOf(t testing.TB, spec string, proto evidence.Proto) evidence.Flow {
	t.Helper()
	f, err := evidence.ParseFlow(spec, proto)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func findRoute(t *testing.T, hs *evidence.HostState, query string) evidence.RouteLookup {
	t.Helper()
	for _, r := range hs.Routes {
		if r.Query == query {
			return r
		}
	}
	t.Fatalf("no route lookup %q in %+v", query, hs.Routes)
	return evidence.RouteLookup{}
}

// TestRPFilter: strict rp_filter on veth0 while the route back to the client leaves by
// another interface. The sysctl is read from the server's namespace, the reverse lookup
// shows the other interface and the input lookup fails with the source validation error.
func TestRPFilter(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hs")
	// A second pair inside the server namespace; the client's /32 is routed through it.
	p.InServer(t, "ip", "link", "add", "veth1", "type", "veth", "peer", "name", "veth1p")
	p.InServer(t, "ip", "link", "set", "veth1", "up")
	p.InServer(t, "ip", "link", "set", "veth1p", "up")
	p.InServer(t, "ip", "addr", "add", "203.0.113.2/24", "dev", "veth1")
	p.InServer(t, "ip", "route", "add", testns.ClientV4+"/32", "via", "203.0.113.1", "dev", "veth1")
	p.InServer(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.veth0.rp_filter=1")
	// ip_forward the opposite of the host's, to see which namespace was read.
	hostFwd := strings.TrimSpace(testns.Run(t, "cat", "/proc/sys/net/ipv4/ip_forward"))
	nsFwd := map[string]string{"0": "1", "1": "0"}[hostFwd]
	p.InServer(t, "sysctl", "-qw", "net.ipv4.ip_forward="+nsFwd)

	flow := flowOf(t, testns.ServerV4+":"+fmt.Sprint(testns.Port()), evidence.TCP)
	peers := []netip.Addr{netip.MustParseAddr(testns.ClientV4)}
	s := startIn(t, p.Server, flow)
	hs := stopIn(t, p.Server, s, peers, []string{testns.Iface})

	for name, want := range map[string]string{
		"net.ipv4.conf.veth0.rp_filter": "1",
		"net.ipv4.conf.all.rp_filter":   "0",
		"net.ipv4.ip_forward":           nsFwd,
	} {
		if got := hs.Sysctls[name]; got != want {
			t.Errorf("sysctl %s = %q, want %q", name, got, want)
		}
	}
	if _, ok := hs.Sysctls["net.ipv4.conf.veth1.rp_filter"]; ok {
		t.Errorf("read the sysctls of veth1, an interface not given")
	}
	out := findRoute(t, hs, testns.ServerV4)
	// Table 254: without policy rules the kernel merges the local table into main.
	if out.Type != "local" || out.Oif != "lo" || out.Err != "" {
		t.Errorf("route to the flow: %+v, want local via lo", out)
	}
	back := findRoute(t, hs, testns.ClientV4+" from "+testns.ServerV4)
	if back.Type != "unicast" || back.Oif != "veth1" || back.Gateway != "203.0.113.1" || back.Table != 254 || back.Err != "" {
		t.Errorf("route back: %+v, want unicast via 203.0.113.1 dev veth1 in table 254", back)
	}
	in := findRoute(t, hs, testns.ServerV4+" from "+testns.ClientV4+" iif veth0")
	t.Logf("input lookup with strict rp_filter: %+v", in)
	if !strings.Contains(in.Err, "(EINVAL)") && !strings.Contains(in.Err, "(EXDEV)") {
		t.Errorf("input lookup error %q, want EINVAL or EXDEV", in.Err)
	}
	if !strings.Contains(in.Err, "rp_filter 1 (strict) on veth0 and the route back to 198.51.100.1 leaves by veth1") {
		t.Errorf("input lookup error %q does not explain the reverse path filter", in.Err)
	}

	// Control: without rp_filter the same lookup delivers locally.
	p.InServer(t, "sysctl", "-qw", "net.ipv4.conf.veth0.rp_filter=0")
	hs = stopIn(t, p.Server, startIn(t, p.Server, flow), peers, []string{testns.Iface})
	in = findRoute(t, hs, testns.ServerV4+" from "+testns.ClientV4+" iif veth0")
	if in.Err != "" || in.Type != "local" || in.Oif != "lo" {
		t.Errorf("input lookup without rp_filter: %+v, want local via lo", in)
	}

	if *saveFixtures {
		testns.Do(t, p.Server, func() {
			record(t, unix.NETLINK_ROUTE,
				exchange{"links", "RTM_GETLINK dump of the server namespace of TestRPFilter", links.DumpRequest()},
				exchange{"route_local_v4", "ip route get " + out.Query, routeRequest(routeQuery{Dst: flow.Addr})},
				exchange{"route_back_v4", "ip route get " + back.Query, routeRequest(routeQuery{Dst: peers[0], Src: flow.Addr})})
		})
	}
}

// TestIPv6 looks up the routes of an IPv6 flow, a client-side flow (the flow's address is
// the far end) and an unreachable one.
func TestIPv6(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hs6")
	p.InServer(t, "ip", "-6", "route", "add", "unreachable", "2001:db8:dead::/48")
	server, client := netip.MustParseAddr(testns.ServerV6), netip.MustParseAddr(testns.ClientV6)
	port := testns.Port()

	flow := flowOf(t, fmt.Sprintf("[%s]:%d", server, port), evidence.UDP)
	hs := stopIn(t, p.Server, startIn(t, p.Server, flow), []netip.Addr{client}, []string{testns.Iface})
	if r := findRoute(t, hs, testns.ServerV6); r.Type != "local" || r.Err != "" {
		t.Errorf("route to the flow: %+v, want local", r)
	}
	back := findRoute(t, hs, testns.ClientV6+" from "+testns.ServerV6)
	if back.Type != "unicast" || back.Oif != "veth0" || back.Err != "" {
		t.Errorf("route back: %+v, want unicast via veth0", back)
	}
	if r := findRoute(t, hs, testns.ServerV6+" from "+testns.ClientV6+" iif veth0"); r.Type != "local" || r.Err != "" {
		t.Errorf("input lookup: %+v, want local", r)
	}
	if hs.Sysctls["net.ipv6.conf.veth0.disable_ipv6"] != "0" {
		t.Errorf("net.ipv6.conf.veth0.disable_ipv6 = %q, want 0", hs.Sysctls["net.ipv6.conf.veth0.disable_ipv6"])
	}

	// This host is the client of [2001:db8::1]:port: the answers come from the flow's address.
	flow = flowOf(t, fmt.Sprintf("[%s]:%d", client, port), evidence.UDP)
	hs = stopIn(t, p.Server, startIn(t, p.Server, flow), []netip.Addr{server}, []string{testns.Iface})
	want := []string{testns.ClientV6, testns.ClientV6 + " from " + testns.ServerV6, testns.ServerV6 + " from " + testns.ClientV6 + " iif veth0"}
	if got := queries(hs); !equal(got, want) {
		t.Errorf("client-side lookups %q, want %q", got, want)
	}

	flow = flowOf(t, fmt.Sprintf("[2001:db8:dead::1]:%d", port), evidence.UDP)
	hs = stopIn(t, p.Server, startIn(t, p.Server, flow), nil, nil)
	if r := findRoute(t, hs, "2001:db8:dead::1"); r.Type != "unreachable" || !strings.Contains(r.Err, "EHOSTUNREACH") {
		t.Errorf("lookup into an unreachable route: %+v", r)
	}
	if _, ok := hs.Sysctls["net.ipv6.conf.veth0.forwarding"]; !ok {
		t.Errorf("no interface given, yet veth0's sysctls were not read: %v", hs.Sysctls)
	}

	if *saveFixtures {
		testns.Do(t, p.Server, func() {
			record(t, unix.NETLINK_ROUTE,
				exchange{"route_back_v6", "ip route get " + back.Query, routeRequest(routeQuery{Dst: client, Src: server})})
		})
	}
}

func queries(hs *evidence.HostState) []string {
	var q []string
	for _, r := range hs.Routes {
		q = append(q, r.Query)
	}
	return q
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

// TestListeners finds a TCP listener on 127.0.0.1 only, an IPv6-only UDP socket, and a TCP
// socket bound to the port but not listening.
func TestListeners(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hsl")
	port := testns.Port()
	var closers []func() error
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
	})
	testns.Do(t, p.Server, func() {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("listen: %v", err)
			return
		}
		closers = append(closers, l.Close)
		u, err := net.ListenPacket("udp6", fmt.Sprintf("[::]:%d", port)) // Go sets IPV6_V6ONLY for udp6
		if err != nil {
			t.Errorf("listen udp: %v", err)
			return
		}
		closers = append(closers, u.Close)
		u4, err := net.ListenPacket("udp4", fmt.Sprintf("%s:%d", testns.ServerV4, port))
		if err != nil {
			t.Errorf("listen udp4: %v", err)
			return
		}
		closers = append(closers, u4.Close)
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Errorf("socket: %v", err)
			return
		}
		closers = append(closers, func() error { return unix.Close(fd) })
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, testns.Iface); err != nil {
			t.Errorf("bind to device: %v", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet6{Port: int(port), Addr: netip.MustParseAddr(testns.ServerV6).As16()}); err != nil {
			t.Errorf("bind: %v", err)
		}
	})
	if t.Failed() {
		return
	}

	flow := flowOf(t, fmt.Sprintf("%s:%d", testns.ServerV4, port), evidence.TCP)
	hs := stopIn(t, p.Server, startIn(t, p.Server, flow), nil, nil)
	t.Logf("TCP listeners: %+v", hs.Listeners)
	want := []evidence.Listener{
		{Proto: "tcp", Local: netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", port)), State: "LISTEN"},
		{Proto: "tcp", Local: netip.MustParseAddrPort(fmt.Sprintf("[%s]:%d", testns.ServerV6, port)), State: "BOUND", BoundIface: testns.Iface,
			V6Only: true}, // bound to an IPv6 address that is not v4-mapped: the kernel sets v6only
	}
	if kernelBefore(6, 7) {
		want = want[:1] // bound-only sockets are dumped since 6.7
	}
	if fmt.Sprint(hs.Listeners) != fmt.Sprint(want) {
		t.Errorf("TCP listeners %+v, want %+v", hs.Listeners, want)
	}

	flow.Proto = evidence.UDP
	hs = stopIn(t, p.Server, startIn(t, p.Server, flow), nil, nil)
	want = []evidence.Listener{
		{Proto: "udp", Local: netip.MustParseAddrPort(fmt.Sprintf("%s:%d", testns.ServerV4, port)), State: "UNCONN"},
		{Proto: "udp", Local: netip.MustParseAddrPort(fmt.Sprintf("[::]:%d", port)), State: "UNCONN", V6Only: true},
	}
	if fmt.Sprint(hs.Listeners) != fmt.Sprint(want) {
		t.Errorf("UDP sockets %+v, want %+v", hs.Listeners, want)
	}

	// Another port has none of them.
	flow.Port = port + 1
	if hs = stopIn(t, p.Server, startIn(t, p.Server, flow), nil, nil); len(hs.Listeners) != 0 {
		t.Errorf("sockets of port %d reported for port %d: %+v", port, port+1, hs.Listeners)
	}

	if *saveFixtures {
		testns.Do(t, p.Server, func() {
			record(t, unix.NETLINK_SOCK_DIAG,
				exchange{"sockdiag_tcp_v4", fmt.Sprintf("TCP IPv4 sockets on port %d", port), sockDiagRequest(unix.AF_INET, evidence.TCP, port)},
				exchange{"sockdiag_tcp_v6", fmt.Sprintf("TCP IPv6 sockets on port %d", port), sockDiagRequest(unix.AF_INET6, evidence.TCP, port)},
				exchange{"sockdiag_udp_v6", fmt.Sprintf("UDP IPv6 sockets on port %d", port), sockDiagRequest(unix.AF_INET6, evidence.UDP, port)})
		})
	}
}

func kernelBefore(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	return ma < major || (ma == major && mi < minor)
}

// TestPrograms attaches a tcx program, a cls_bpf filter and a generic XDP program to veth0
// in the server namespace and finds each with its hook and name.
func TestPrograms(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hsp")
	// Without tcx (before 6.6) the ingress program goes on as a cls_bpf filter instead.
	tcx := testns.HasTCX()
	p.InServer(t, "tc", "qdisc", "add", "dev", testns.Iface, "clsact")
	tcProg := loadProgram(t, ebpf.SchedCLS, "pmt_hs_tcx", 0)  // TC_ACT_OK
	clsProg := loadProgram(t, ebpf.SchedCLS, "pmt_hs_cls", 0) // TC_ACT_OK
	xdpProg := loadProgram(t, ebpf.XDP, "pmt_hs_xdp", 2)      // XDP_PASS
	var attached []cilink.Link
	t.Cleanup(func() {
		for _, l := range attached {
			l.Close()
		}
	})
	testns.Do(t, p.Server, func() {
		ifi, err := net.InterfaceByName(testns.Iface)
		if err != nil {
			t.Errorf("veth0: %v", err)
			return
		}
		if tcx {
			l, err := cilink.AttachTCX(cilink.TCXOptions{Interface: ifi.Index, Program: tcProg, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				t.Errorf("attach tcx: %v", err)
				return
			}
			attached = append(attached, l)
		} else if err := testns.AttachClsBPF(ifi.Index, true, tcProg, "pmt-test.o:[tcx]"); err != nil {
			t.Errorf("attach cls_bpf ingress: %v", err)
			return
		}
		x, err := cilink.AttachXDP(cilink.XDPOptions{Program: xdpProg, Interface: ifi.Index, Flags: cilink.XDPGenericMode})
		if err != nil {
			t.Errorf("attach xdp: %v", err)
			return
		}
		attached = append(attached, x)
		if err := testns.AttachClsBPF(ifi.Index, false, clsProg, "pmt-test.o:[tc]"); err != nil {
			t.Errorf("attach cls_bpf: %v", err)
		}
	})
	if t.Failed() {
		return
	}
	flow := flowOf(t, fmt.Sprintf("%s:%d", testns.ServerV4, testns.Port()), evidence.TCP)
	hs := stopIn(t, p.Server, startIn(t, p.Server, flow), nil, nil)
	t.Logf("programs: %+v", hs.Programs)
	ids := map[string]uint32{}
	for name, prog := range map[string]*ebpf.Program{"pmt_hs_tcx": tcProg, "pmt_hs_cls": clsProg, "pmt_hs_xdp": xdpProg} {
		info, err := prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		ids[name] = uint32(id)
	}
	want := []evidence.AttachedProgram{
		{Iface: "veth0", Hook: "tc egress", Name: "pmt_hs_cls", ID: ids["pmt_hs_cls"]},
		{Iface: "veth0", Hook: "tcx ingress", Name: "pmt_hs_tcx", ID: ids["pmt_hs_tcx"]},
		{Iface: "veth0", Hook: "xdpgeneric", Name: "pmt_hs_xdp", ID: ids["pmt_hs_xdp"]},
	}
	if !tcx {
		want[1].Hook = "tc ingress"
	}
	if fmt.Sprint(hs.Programs) != fmt.Sprint(want) {
		t.Errorf("programs %+v, want %+v", hs.Programs, want)
	}
	if len(hs.Errors) != 0 {
		t.Errorf("errors: %q", hs.Errors)
	}

	if *saveFixtures {
		testns.Do(t, p.Server, func() {
			ifi, err := net.InterfaceByName(testns.Iface)
			if err != nil {
				t.Error(err)
				return
			}
			record(t, unix.NETLINK_ROUTE,
				exchange{"links_programs", "RTM_GETLINK dump with a generic XDP program on veth0", links.DumpRequest()},
				exchange{"tfilter_egress", "RTM_GETTFILTER dump of veth0's clsact egress with a cls_bpf filter", tcRequest(unix.RTM_GETTFILTER, ifi.Index, tcHIngress|tcHMinEgress)})
		})
	}

	// Detached, they are gone.
	for _, l := range attached {
		l.Close()
	}
	attached = nil
	p.InServer(t, "tc", "qdisc", "del", "dev", testns.Iface, "clsact")
	hs = stopIn(t, p.Server, startIn(t, p.Server, flow), nil, nil)
	if len(hs.Programs) != 0 {
		t.Errorf("programs after detaching: %+v", hs.Programs)
	}
}

// loadProgram loads a program that returns ret at once; the test closes it.
func loadProgram(t *testing.T, typ ebpf.ProgramType, name string, ret int32) *ebpf.Program {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: name, Type: typ, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, ret), asm.Return()},
	})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// TestCounters sends UDP datagrams to a closed port of the server between Start and Stop:
// Udp NoPorts (and Udp6 NoPorts) move in the server's namespace.
func TestCounters(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hsc")
	port := testns.Port()
	flow := flowOf(t, fmt.Sprintf("%s:%d", testns.ServerV4, port), evidence.UDP)
	s := startIn(t, p.Server, flow)
	for _, dst := range []string{testns.ServerV4, "[" + testns.ServerV6 + "]"} {
		refused(t, p.Client, fmt.Sprintf("%s:%d", dst, port))
	}
	hs := stopIn(t, p.Server, s, []netip.Addr{netip.MustParseAddr(testns.ClientV4)}, []string{testns.Iface})
	t.Logf("counters: %+v", hs.Counters)
	got := map[string]uint64{}
	for _, c := range hs.Counters {
		got[c.Name] = c.Delta
		if c.Delta == 0 || c.After-c.Before != c.Delta {
			t.Errorf("counter %+v is not a move", c)
		}
	}
	for _, name := range []string{"Udp NoPorts", "Udp6 NoPorts", "Icmp OutDestUnreachs", "Icmp6 OutDestUnreachs"} {
		if got[name] < 1 {
			t.Errorf("counter %s moved by %d, want at least 1", name, got[name])
		}
	}
	if got["Udp NoPorts"] > 5 {
		t.Errorf("Udp NoPorts moved by %d: counters of another namespace?", got["Udp NoPorts"])
	}
	if len(hs.Errors) != 0 {
		t.Errorf("errors: %q", hs.Errors)
	}
}

// TestInterfaceDrops drops frames on an interface between Start and Stop: frames sent on a
// veth whose peer is down, bypassing the qdisc, count as tx_dropped.
func TestInterfaceDrops(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hsi")
	p.InServer(t, "ip", "link", "add", "veth1", "type", "veth", "peer", "name", "veth1p")
	p.InServer(t, "ip", "link", "set", "veth1", "up") // veth1p stays down: veth1 has no carrier
	flow := flowOf(t, fmt.Sprintf("%s:%d", testns.ServerV4, testns.Port()), evidence.UDP)
	s := startIn(t, p.Server, flow)
	testns.Do(t, p.Server, func() {
		ifi, err := net.InterfaceByName("veth1")
		if err != nil {
			t.Error(err)
			return
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			t.Error(err)
			return
		}
		frame := make([]byte, 60)
		copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5}) // local experimental ethertype
		for range 3 {
			// The send fails (no carrier) after the drop was counted.
			_ = unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
		}
	})
	hs := stopIn(t, p.Server, s, nil, nil)
	want := []evidence.InterfaceDrops{{Iface: "veth1", TxDropped: 3}}
	if fmt.Sprint(hs.Interfaces) != fmt.Sprint(want) {
		t.Errorf("interface drops %+v, want %+v", hs.Interfaces, want)
	}
}

// Users run diagnose under `ip netns exec`: the test binary runs itself there, without
// entering the namespace on a thread, and must read the namespace's sysctls, counters and
// sockets (it has its own /sys there, which the stage does not use).
func TestUnderIPNetnsExec(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hsn")
	p.InServer(t, "sysctl", "-qw", "net.ipv4.conf.veth0.rp_filter=2")
	port := testns.Port()
	var l net.Listener
	var err error
	testns.Do(t, p.Server, func() { l, err = net.Listen("tcp", fmt.Sprintf("%s:%d", testns.ServerV4, port)) })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var hs evidence.HostState
	testns.RunChild(t, p.Server, testns.ChildArgs{Mode: "read", Port: port}, &hs)
	if hs.Sysctls["net.ipv4.conf.veth0.rp_filter"] != "2" {
		t.Errorf("rp_filter of veth0 read as %q, want 2", hs.Sysctls["net.ipv4.conf.veth0.rp_filter"])
	}
	if len(hs.Listeners) != 1 || hs.Listeners[0].State != "LISTEN" || hs.Listeners[0].Local.Port() != port {
		t.Errorf("listeners %+v, want the one on port %d", hs.Listeners, port)
	}
	if len(hs.Errors) != 0 {
		t.Errorf("errors %q", hs.Errors)
	}
}

// TestChild is TestUnderIPNetnsExec's other half: it reads the host state of the server's
// flow on the port it is given.
func TestChild(t *testing.T) {
	args := testns.Child(t)
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: args.Port, Proto: evidence.TCP}
	s, err := Start(context.Background(), Config{Flow: flow})
	if err != nil {
		t.Fatal(err)
	}
	testns.WriteChildResult(t, s.Stop(context.Background(), nil, []string{testns.Iface}))
}

// refused sends one UDP datagram from namespace ns to dst and waits for the ICMP port
// unreachable that refuses it.
func refused(t *testing.T, ns, dst string) {
	t.Helper()
	var err error
	testns.Do(t, ns, func() {
		var c net.Conn
		if c, err = net.Dial("udp", dst); err != nil {
			return
		}
		defer c.Close()
		if _, err = c.Write([]byte("packetmortem test")); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 16))
	})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("UDP to %s from %s: %v, want connection refused", dst, ns, err)
	}
}

// BenchmarkStop measures Stop with every part in use; its aim is well under 50 ms (make
// bench runs it: a timed test would fail on a loaded machine, not on slow code).
func BenchmarkStop(b *testing.B) {
	p := testns.NewPair(b, "hst")
	flow := flowOf(b, fmt.Sprintf("%s:%d", testns.ServerV4, testns.Port()), evidence.TCP)
	peers := []netip.Addr{netip.MustParseAddr(testns.ClientV4)}
	b.StopTimer()
	for range b.N {
		s := startIn(b, p.Server, flow)
		testns.Do(b, p.Server, func() {
			b.StartTimer()
			s.Stop(context.Background(), peers, []string{testns.Iface})
			b.StopTimer()
		})
	}
}

// TestCancelled: a cancelled context stops Stop early with a line saying what was not read.
func TestCancelled(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "hsx")
	flow := flowOf(t, fmt.Sprintf("%s:%d", testns.ServerV4, testns.Port()), evidence.TCP)
	s := startIn(t, p.Server, flow)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var hs *evidence.HostState
	testns.Do(t, p.Server, func() { hs = s.Stop(ctx, nil, nil) })
	if len(hs.Errors) != 1 || !strings.Contains(hs.Errors[0], "context canceled") {
		t.Errorf("errors %q, want one saying the run was cancelled", hs.Errors)
	}
	if again := s.Stop(context.Background(), nil, nil); again != hs {
		t.Errorf("a second Stop read the state again")
	}
}

// record saves the answers to each request, opening a netlink socket of family on the
// calling thread. It runs inside testns.Do, on a goroutine of its own: it reports failures
// with t.Error, never t.Fatal.
func record(t *testing.T, family int, exchanges ...exchange) {
	t.Helper()
	c, err := netlink.Dial(family, nil)
	if err != nil {
		t.Errorf("record: %v", err)
		return
	}
	defer c.Close()
	for _, e := range exchanges {
		recordExchange(t, c, e.name, e.comment, e.req)
	}
}

type exchange struct {
	name, comment string
	req           netlink.Message
}

// recordExchange sends req and saves the answers to testdata/<name>.hex: a comment, then
// each raw netlink message (header included) in hex, one a line.
func recordExchange(t *testing.T, c *netlink.Conn, name, comment string, req netlink.Message) {
	t.Helper()
	msgs, err := c.Execute(req)
	if err != nil {
		t.Errorf("record %s: %v", name, err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Raw netlink answers (header included), one per line, recorded by\n")
	fmt.Fprintf(&b, "# go test -run %s -record on Linux %s.\n# %s\n", t.Name(), kernelRelease(), comment)
	for _, m := range msgs {
		raw, err := m.MarshalBinary()
		if err != nil {
			t.Errorf("record %s: %v", name, err)
			return
		}
		b.WriteString(hex.EncodeToString(raw) + "\n")
	}
	path := filepath.Join("testdata", name+".hex")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Errorf("record %s: %v", name, err)
		return
	}
	t.Logf("recorded %d messages to %s", len(msgs), path)
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
