package hoststate

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// loadMessages reads testdata/<name>.hex: raw netlink messages recorded by the end-to-end
// tests with -record.
func loadMessages(t *testing.T, name string) []netlink.Message {
	return testns.NetlinkMessages(t, filepath.Join("testdata", name+".hex"))
}

// names are the interfaces of the recorded server namespace (testdata/links.hex); every
// fresh namespace numbers them alike: lo 1, veth0 2.
func names(t *testing.T) map[int]string {
	t.Helper()
	ifs, err := links.DecodeAll(loadMessages(t, "links"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]string{}
	for _, l := range ifs {
		m[l.Index] = l.Name
	}
	return m
}

func TestIfaceDrops(t *testing.T) {
	t.Parallel()
	before := map[int]links.Stats{2: {RxDropped: 5, TxErrors: 1}, 3: {RxDropped: 7}}
	after := []links.Link{
		{Index: 2, Name: "veth0", Stats: links.Stats{RxDropped: 8, TxErrors: 1}},
		{Index: 3, Name: "veth1", Stats: links.Stats{RxDropped: 7}},  // unchanged
		{Index: 4, Name: "new0", Stats: links.Stats{RxNoHandler: 2}}, // appeared during the run
		{Index: 5, Name: "reset0", Stats: links.Stats{RxDropped: 0}}, // nothing
	}
	got := ifaceDrops(before, after)
	want := []evidence.InterfaceDrops{{Iface: "new0", RxNoHandler: 2}, {Iface: "veth0", RxDropped: 3}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("interface drops %+v, want %+v", got, want)
	}
}

func TestDecodeRoutes(t *testing.T) {
	t.Parallel()
	n := names(t)
	for _, tc := range []struct {
		fixture string
		want    routeReply
		oif     string
	}{
		// Without policy rules the local table is merged into main: table 254.
		{"route_local_v4", routeReply{Type: "local", Table: 254}, "lo"},
		{"route_back_v4", routeReply{Type: "unicast", Table: 254, Gateway: netip.MustParseAddr("203.0.113.1")}, "veth1"},
		{"route_back_v6", routeReply{Type: "unicast", Table: 254}, "veth0"},
	} {
		msgs := loadMessages(t, tc.fixture)
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages", tc.fixture, len(msgs))
		}
		got, err := decodeRoute(msgs[0])
		if err != nil {
			t.Errorf("%s: %v", tc.fixture, err)
			continue
		}
		if n[got.Oif] != tc.oif {
			t.Errorf("%s: oif %d (%s), want %s", tc.fixture, got.Oif, n[got.Oif], tc.oif)
		}
		got.Oif = 0
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.fixture, got, tc.want)
		}
	}
	if _, err := decodeRoute(netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK}}); err == nil {
		t.Errorf("a link message decoded as a route")
	}
}

func TestRouteRequest(t *testing.T) {
	t.Parallel()
	q := routeQuery{Dst: netip.MustParseAddr("198.51.100.2"), Src: netip.MustParseAddr("198.51.100.1"), Iif: "veth0", IifIndex: 2}
	if q.String() != "198.51.100.2 from 198.51.100.1 iif veth0" {
		t.Errorf("query %q", q.String())
	}
	m := routeRequest(q)
	d := m.Data
	if m.Header.Type != unix.RTM_GETROUTE || m.Header.Flags != netlink.Request || d[0] != unix.AF_INET || d[1] != 32 || d[2] != 32 ||
		binary.NativeEndian.Uint32(d[8:]) != unix.RTM_F_LOOKUP_TABLE {
		t.Errorf("request header %+v, rtmsg % x", m.Header, d[:unix.SizeofRtMsg])
	}
	attrs, err := netlink.UnmarshalAttributes(d[unix.SizeofRtMsg:])
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint16][]byte{}
	for _, a := range attrs {
		got[a.Type] = a.Data
	}
	if string(got[unix.RTA_DST]) != string([]byte{198, 51, 100, 2}) || string(got[unix.RTA_SRC]) != string([]byte{198, 51, 100, 1}) ||
		binary.NativeEndian.Uint32(got[unix.RTA_IIF]) != 2 || len(attrs) != 3 {
		t.Errorf("request attributes %v", got)
	}
	m = routeRequest(routeQuery{Dst: netip.MustParseAddr("2001:db8::1")})
	if m.Data[0] != unix.AF_INET6 || m.Data[1] != 128 || m.Data[2] != 0 {
		t.Errorf("IPv6 request rtmsg % x", m.Data[:unix.SizeofRtMsg])
	}
}

func TestErrText(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		&netlink.OpError{Op: "receive", Err: unix.EINVAL}:                       "invalid argument (EINVAL)",
		&netlink.OpError{Op: "receive", Err: unix.EXDEV, Message: "bad source"}: "invalid cross-device link (EXDEV): bad source",
		&netlink.OpError{Op: "receive", Err: unix.ENETUNREACH}:                  "network is unreachable (ENETUNREACH)",
		errors.New("no answer"):                                                 "no answer",
	} {
		if got := errText(err); got != want {
			t.Errorf("errText(%v) = %q, want %q", err, got, want)
		}
	}
	for errno, want := range map[unix.Errno]string{unix.EHOSTUNREACH: "unreachable", unix.EINVAL: "blackhole", unix.EACCES: "prohibit", unix.ENETUNREACH: ""} {
		if got := outputErrType(&netlink.OpError{Err: errno}); got != want {
			t.Errorf("output lookup failing with %v: type %q, want %q", errno, got, want)
		}
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	sysctls := map[string]string{
		"net.ipv4.conf.all.rp_filter":      "0",
		"net.ipv4.conf.veth0.rp_filter":    "1",
		"net.ipv4.conf.veth1.rp_filter":    "2",
		"net.ipv4.conf.veth2.rp_filter":    "0",
		"net.ipv4.conf.veth0.forwarding":   "0",
		"net.ipv4.conf.all.accept_local":   "0",
		"net.ipv4.conf.veth2.accept_local": "0",
	}
	in := func(iif, src string) evidence.RouteLookup {
		return evidence.RouteLookup{Dst: "198.51.100.2", Src: src, Iif: iif}
	}
	einval := &netlink.OpError{Err: unix.EINVAL}
	for _, tc := range []struct {
		name string
		err  error
		in   evidence.RouteLookup
		back evidence.RouteLookup
		want string
	}{
		{"strict, other way back", einval, in("veth0", "198.51.100.1"), evidence.RouteLookup{Type: "unicast", Oif: "veth1"},
			"reverse path filter: rp_filter 1 (strict) on veth0 and the route back to 198.51.100.1 leaves by veth1"},
		{"strict, EXDEV of older kernels", &netlink.OpError{Err: unix.EXDEV}, in("veth0", "198.51.100.1"), evidence.RouteLookup{Type: "unicast", Oif: "veth1"},
			"reverse path filter: rp_filter 1 (strict) on veth0 and the route back to 198.51.100.1 leaves by veth1"},
		{"strict, same way back", einval, in("veth0", "198.51.100.1"), evidence.RouteLookup{Type: "unicast", Oif: "veth0"}, ""},
		{"loose, no way back", einval, in("veth1", "198.51.100.1"), evidence.RouteLookup{Err: "network is unreachable (ENETUNREACH)"},
			"reverse path filter: rp_filter 2 (loose) on veth1 and no route back to 198.51.100.1"},
		{"loose, a way back", einval, in("veth1", "198.51.100.1"), evidence.RouteLookup{Type: "unicast", Oif: "veth0"}, ""},
		{"local source", einval, in("veth2", "198.51.100.2"), evidence.RouteLookup{Type: "local", Oif: "lo"},
			"source 198.51.100.2 is an address of this host and accept_local is 0"},
		{"loopback source", einval, in("veth2", "127.0.0.1"), evidence.RouteLookup{}, "martian source: 127.0.0.1 is never a valid source on the wire"},
		{"forwarding off", &netlink.OpError{Err: unix.EHOSTUNREACH}, in("veth0", "198.51.100.1"), evidence.RouteLookup{},
			"198.51.100.2 is not local and forwarding is off on veth0"},
		{"IPv6 has no rp_filter", einval, evidence.RouteLookup{Dst: "2001:db8::2", Src: "2001:db8::1", Iif: "veth0"}, evidence.RouteLookup{Oif: "veth1"}, ""},
	} {
		if got := explain(tc.err, tc.in, tc.back, sysctls); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUsablePeers(t *testing.T) {
	t.Parallel()
	flow := netip.MustParseAddr("198.51.100.2")
	in := []netip.Addr{
		netip.MustParseAddr("198.51.100.1"),
		netip.MustParseAddr("::ffff:198.51.100.1"), // the same, mapped
		netip.MustParseAddr("2001:db8::1"),         // other family
		flow,
		{},
		netip.MustParseAddr("203.0.113.9"),
	}
	got, dropped := usablePeers(flow, in)
	if len(got) != 2 || got[0].String() != "198.51.100.1" || got[1].String() != "203.0.113.9" || dropped != 0 {
		t.Errorf("peers %v, %d dropped", got, dropped)
	}
	var many []netip.Addr
	for i := range MaxPeers + 3 {
		many = append(many, netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}))
	}
	if got, dropped := usablePeers(flow, many); len(got) != MaxPeers || dropped != 3 {
		t.Errorf("%d peers kept, %d dropped; want %d and 3", len(got), dropped, MaxPeers)
	}
}

func TestDecodeSockDiag(t *testing.T) {
	t.Parallel()
	n := names(t)
	check := func(fixture string, proto evidence.Proto, want string) {
		t.Helper()
		ls, err := decodeSockDiag(loadMessages(t, fixture), proto, n)
		if err != nil {
			t.Fatalf("%s: %v", fixture, err)
		}
		if len(ls) != 1 {
			t.Fatalf("%s: %+v, want one socket", fixture, ls)
		}
		l := ls[0]
		got := l.Proto + " " + l.Local.Addr().String() + " " + l.State + " " + l.BoundIface
		if l.V6Only {
			got += " v6only"
		}
		if got != want || l.Local.Port() == 0 {
			t.Errorf("%s: %q port %d, want %q", fixture, got, l.Local.Port(), want)
		}
	}
	check("sockdiag_tcp_v4", evidence.TCP, "tcp 127.0.0.1 LISTEN ")
	check("sockdiag_tcp_v6", evidence.TCP, "tcp 2001:db8::2 BOUND veth0 v6only")
	check("sockdiag_udp_v6", evidence.UDP, "udp :: UNCONN  v6only")
	if _, err := decodeInetDiagMsg(make([]byte, 10), evidence.TCP, n); err == nil {
		t.Errorf("short inet_diag_msg: no error")
	}
}

func TestSockDiagRequest(t *testing.T) {
	t.Parallel()
	m := sockDiagRequest(unix.AF_INET6, evidence.TCP, 8080)
	d := m.Data
	if m.Header.Type != unix.SOCK_DIAG_BY_FAMILY || m.Header.Flags != netlink.Request|netlink.Dump ||
		d[0] != unix.AF_INET6 || d[1] != unix.IPPROTO_TCP || binary.NativeEndian.Uint32(d[4:]) != 1<<10|1<<13 {
		t.Errorf("request %+v % x", m.Header, d[:8])
	}
	attrs, err := netlink.UnmarshalAttributes(d[sizeofInetDiagReqV2:])
	if err != nil || len(attrs) != 1 || attrs[0].Type != inetDiagReqBytecode {
		t.Fatalf("request attributes %v, %v", attrs, err)
	}
	// S_EQ, yes +8 (the end: accept), no +12 (past the end: reject), then the port.
	if bc := attrs[0].Data; hex.EncodeToString(bc) != hex.EncodeToString([]byte{11, 8, 12, 0, 0, 0, 0x90, 0x1f}) {
		t.Errorf("bytecode % x", bc)
	}
	if m := sockDiagRequest(unix.AF_INET, evidence.UDP, 53); binary.NativeEndian.Uint32(m.Data[4:]) != ^uint32(0) || m.Data[1] != unix.IPPROTO_UDP {
		t.Errorf("UDP asks for states %#x", binary.NativeEndian.Uint32(m.Data[4:]))
	}
}

func TestDecodeFilters(t *testing.T) {
	t.Parallel()
	progs, err := decodeFilters(loadMessages(t, "tfilter_egress"), "tc egress")
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) != 1 || progs[0].Hook != "tc egress" || progs[0].TCName != "pmt-test.o:[tc]" || progs[0].ID == 0 || progs[0].Index != 2 {
		t.Errorf("cls_bpf filters %+v", progs)
	}
}

func TestNamePrograms(t *testing.T) {
	t.Parallel()
	// Ids that name no program: the name falls back to tc's, and each failure is a line.
	progs := []program{
		{Index: 2, Hook: "tc ingress", ID: 0xfffffff0, TCName: "obj.o:[tc]"},
		{Index: 1, Hook: "xdp", ID: 0xfffffff1},
	}
	got, errs := namePrograms(progs, map[int]string{1: "lo", 2: "veth0"})
	if len(got) != 2 || got[0].Iface != "lo" || got[1].Name != "obj.o:[tc]" || got[1].Iface != "veth0" {
		t.Errorf("programs %+v", got)
	}
	if len(errs) != 2 {
		t.Errorf("errors %v, want two", errs)
	}
}

func TestStateName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		proto evidence.Proto
		state uint8
		want  string
	}{
		{evidence.TCP, 10, "LISTEN"}, {evidence.TCP, 7, "BOUND"}, {evidence.UDP, 7, "UNCONN"},
		{evidence.UDP, 1, "ESTABLISHED"}, {evidence.TCP, 99, "state 99"},
	} {
		if got := stateName(tc.proto, tc.state); got != tc.want {
			t.Errorf("state %d of %s: %q, want %q", tc.state, tc.proto, got, tc.want)
		}
	}
}
