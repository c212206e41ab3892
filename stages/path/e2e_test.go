package path

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/internal/tracefs"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// End-to-end tests: real traffic between two namespaces the test makes. They need root
// and skip without it, except under CI=true, where they fail instead.

var (
	serverV4 = netip.MustParseAddr(testns.ServerV4)
	clientV4 = netip.MustParseAddr(testns.ClientV4)
	serverV6 = netip.MustParseAddr(testns.ServerV6)
	clientV6 = netip.MustParseAddr(testns.ClientV6)
)

// What the running kernel's tracepoints can show, from its BTF (testns), not from the
// product's own probes: the tests expect what each kernel offers.

// wantPoints is how many tracepoints attach for a TCP flow of the family on this kernel:
// all but those it lacks (sk_data_ready before 6.3).
func wantPoints(v4 bool) int {
	events := []string{"netif_receive_skb", "inet_sock_set_state", "sk_data_ready", "skb_copy_datagram_iovec", "tcp_send_reset"}
	if v4 {
		events = append(events, "fib_table_lookup", "icmp_send")
	} else {
		events = append(events, "fib6_table_lookup")
	}
	n := 0
	for _, e := range events {
		if testns.HasTracepoint(e) {
			n++
		}
	}
	return n
}

// resetsWithoutSocket tells whether tcp:tcp_send_reset fires for the reset answering a port
// nothing listens on: from 6.10, when the event gained its reason (enum sk_rst_reason).
func resetsWithoutSocket() bool { return testns.HasKernelType[*btf.Enum]("sk_rst_reason") }

// checkResetNote fails unless the evidence says, on a kernel whose tcp_send_reset needs a
// socket, that such resets are not counted, and says nothing of it elsewhere.
func checkResetNote(t *testing.T, path *evidence.Path) {
	t.Helper()
	noted := slices.ContainsFunc(path.Notes, func(n string) bool {
		return strings.Contains(n, "tcp:tcp_send_reset fires on this kernel only for resets a socket sends")
	})
	if noted == resetsWithoutSocket() {
		t.Errorf("kernel %s: notes %q; want the note that resets without a socket go unseen only where they do", testns.Release(), path.Notes)
	}
}

// wantDataReady returns the sk_data_ready event the match picks where the kernel has the
// tracepoint; where it has not, it checks that the evidence says so and why.
func wantDataReady(t *testing.T, path *evidence.Path, what string, netns uint64, match func(evidence.PathEvent) bool) {
	t.Helper()
	if testns.HasTracepoint("sk_data_ready") {
		want(t, path, what, evidence.PointDataReady, netns, match)
		return
	}
	if !slices.ContainsFunc(path.Missing, func(m evidence.MissingPoint) bool {
		return m.Point == evidence.PointDataReady && m.Why == "this kernel has no tracepoint sock:sk_data_ready (it came with Linux 6.3)"
	}) {
		t.Errorf("kernel %s has no sk_data_ready; missing %+v does not say so", testns.Release(), path.Missing)
	}
}

// startProbe starts a probe that the test closes, checking it releases every object.
func startProbe(t *testing.T, cfg Config, attachers ...attacher) *Probe {
	t.Helper()
	checkReleased(t)
	if len(attachers) == 0 {
		attachers = []attacher{attachBTF, attachClassic}
	}
	p, err := start(context.Background(), cfg, attachers)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	testns.CloseOnCleanup(t, p)
	return p
}

// stop stops the probe, checks that Stop detached every program and returns the same
// evidence twice, and logs it.
func stop(t *testing.T, p *Probe) *evidence.Path {
	t.Helper()
	links := bpfrt.OpenObjects()[bpfrt.Link]
	ev := p.Stop()
	b, _ := json.MarshalIndent(ev, "", "  ")
	t.Logf("evidence: %s", b)
	if again := p.Stop(); again != ev {
		t.Error("second Stop returned different evidence")
	}
	if ev.Error != "" {
		t.Errorf("error: %s", ev.Error)
	}
	btfLinks := 0
	for _, a := range ev.Attached {
		// A point shed under load was detached before Stop: its link is gone already.
		shed := slices.ContainsFunc(ev.Notes, func(n string) bool { return strings.Contains(n, ":"+strings.TrimPrefix(a, "tp_btf/")+" detached") })
		if strings.HasPrefix(a, "tp_btf/") && !shed {
			btfLinks++
		}
	}
	if got := bpfrt.OpenObjects()[bpfrt.Link]; got > links-btfLinks {
		t.Errorf("after Stop %d bpf links open, want at most %d: Stop must detach", got, links-btfLinks)
	}
	if ev.Lost != 0 {
		t.Errorf("lost %d events", ev.Lost)
	}
	return ev
}

// events returns the events at point, in namespace netns, for which ok is true.
func events(path *evidence.Path, point string, netns uint64, ok func(evidence.PathEvent) bool) []evidence.PathEvent {
	var out []evidence.PathEvent
	for _, e := range path.Events {
		if e.Point == point && e.Netns == netns && (ok == nil || ok(e)) {
			out = append(out, e)
		}
	}
	return out
}

func want(t *testing.T, path *evidence.Path, what, point string, netns uint64, ok func(evidence.PathEvent) bool) evidence.PathEvent {
	t.Helper()
	got := events(path, point, netns, ok)
	if len(got) == 0 {
		t.Errorf("no %s event: %s", point, what)
		return evidence.PathEvent{}
	}
	return got[0]
}

// count is Counts' number for point in netns.
func count(path *evidence.Path, point string, netns uint64) int {
	for _, c := range path.Counts {
		if c.Point == point && c.Netns == netns {
			return c.Events
		}
	}
	return 0
}

// connectRefused connects from ns to dst with bash's /dev/tcp, as a user would, and
// expects the connection refused.
func connectRefused(t *testing.T, ns string, dst netip.AddrPort) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "timeout", "3", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", dst.Addr(), dst.Port()))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Connection refused") {
		t.Fatalf("connect to %v from %s: %v, %s; want connection refused", dst, ns, err, out)
	}
}

// udpRefused sends one datagram from ns to dst and waits for the ICMP error.
func udpRefused(t *testing.T, ns string, dst netip.AddrPort) {
	t.Helper()
	var err error
	testns.Do(t, ns, func() {
		var c net.Conn
		if c, err = net.Dial("udp", dst.String()); err != nil {
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
		t.Fatalf("udp to %v from %s: %v, want connection refused", dst, ns, err)
	}
}

// exchange runs a listener on dst in the server namespace and a client in the client
// namespace that sends a line: the server reads it and closes.
func exchange(t *testing.T, pair *testns.Pair, proto evidence.Proto, listen, dst netip.AddrPort) string {
	t.Helper()
	var got string
	var ln net.Listener
	var pc net.PacketConn
	var err error
	testns.Do(t, pair.Server, func() {
		if proto == evidence.TCP {
			ln, err = net.Listen("tcp", listen.String())
		} else {
			pc, err = net.ListenPacket("udp", listen.String())
		}
	})
	if err != nil {
		t.Fatalf("listen on %v: %v", listen, err)
	}
	served := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		if proto == evidence.UDP {
			defer pc.Close()
			pc.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, _, err := pc.ReadFrom(buf)
			got = string(buf[:n])
			served <- err
			return
		}
		defer ln.Close()
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(3 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		got = string(buf[:n])
		served <- err
	}()
	testns.Do(t, pair.Client, func() {
		var c net.Conn
		if c, err = net.DialTimeout(string(proto), dst.String(), 2*time.Second); err != nil {
			return
		}
		defer c.Close()
		if _, err = c.Write([]byte("hello\n")); err != nil || proto == evidence.UDP {
			return
		}
		// The server closes after reading: wait for it, so the teardown is traced too.
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if err == io.EOF {
			err = nil
		}
	})
	if err != nil {
		t.Fatalf("client to %v: %v", dst, err)
	}
	if err := <-served; err != nil {
		t.Fatalf("server on %v: %v", listen, err)
	}
	return got
}

// A TCP connection to a port with no listener: the SYN reaches the server's stack on
// veth0, is routed to the local address, and is answered with a reset. The client's side
// of the flow is seen too, in its namespace.
func TestTCPRefused(t *testing.T) {
	pair := testns.NewPair(t, "pr")
	server, client := testns.Inode(t, pair.Server), testns.Inode(t, pair.Client)
	for _, tc := range []struct {
		name           string
		server, client netip.Addr
		attachers      []attacher
		attach         string
	}{
		{"v4", serverV4, clientV4, nil, "tp_btf/"},
		{"v6", serverV6, clientV6, nil, "tp_btf/"},
		{"v4-classic", serverV4, clientV4, []attacher{attachClassic}, "tracepoint/"},
		{"v6-classic", serverV6, clientV6, []attacher{attachClassic}, "tracepoint/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := netip.AddrPortFrom(tc.server, testns.Port())
			p := startProbe(t, Config{Flow: evidence.Flow{Addr: tc.server, Port: dst.Port(), Proto: evidence.TCP}, Netns: server}, tc.attachers...)
			begin := time.Now()
			connectRefused(t, pair.Client, dst)
			testns.WaitEvents(t, p, 3) // the SYN received, its lookup, the reset
			path := stop(t, p)
			for _, a := range path.Attached {
				if !strings.HasPrefix(a, tc.attach) {
					t.Errorf("attached %s, want %s*", a, tc.attach)
				}
			}
			if wantAttached := wantPoints(tc.server.Is4()); len(path.Attached) != wantAttached {
				t.Errorf("attached %q, want %d points", path.Attached, wantAttached)
			}

			syn := func(e evidence.PathEvent) bool { return e.Dst == dst && e.Src.Addr() == tc.client && e.Flags == "S" }
			rx := want(t, path, "the SYN in the server's namespace", evidence.PointReceive, server, syn)
			if rx.Iface != testns.Iface || rx.Elsewhere {
				t.Errorf("receive: iface %q elsewhere %v", rx.Iface, rx.Elsewhere)
			}
			if rx.Time.Before(begin.Add(-time.Second)) || rx.Time.After(time.Now().Add(time.Second)) {
				t.Errorf("time %v not around %v", rx.Time, begin)
			}
			rt := want(t, path, "the SYN's route lookup", evidence.PointRoute, server, func(e evidence.PathEvent) bool {
				return e.Dst == dst && e.Src.Addr() == tc.client
			})
			if rt.Err != 0 || rt.Iif != testns.Iface || rt.Table == 0 || rt.Elsewhere {
				t.Errorf("route: err %d iif %q table %d elsewhere %v", rt.Err, rt.Iif, rt.Table, rt.Elsewhere)
			}
			// The reset's route back is looked up in softirq: its namespace comes from the
			// result's device, or (classic tracepoint) from the SYN being received.
			want(t, path, "the lookup of the reset's route back", evidence.PointRoute, server, func(e evidence.PathEvent) bool {
				return e.Src == dst && e.Dst.Addr() == tc.client && e.Err == 0 && e.Oif == testns.Iface && !e.Elsewhere
			})
			checkResetNote(t, path)
			if resetsWithoutSocket() {
				rst := want(t, path, "the reset answering the SYN", evidence.PointReset, server, syn)
				if rst.Iface != testns.Iface {
					t.Errorf("reset: iface %q", rst.Iface)
				}
			} else if got := events(path, evidence.PointReset, server, nil); len(got) != 0 {
				t.Errorf("kernel %s traced the reset to a closed port, which it does not: %+v", testns.Release(), got)
			}
			// The client's side: its SYN routed out, its socket opened and closed by the
			// reset, the reset received.
			want(t, path, "the client's lookup", evidence.PointRoute, client, func(e evidence.PathEvent) bool {
				return e.Dst == dst && e.Err == 0 && e.Oif == testns.Iface && e.Elsewhere
			})
			want(t, path, "the reset reaching the client", evidence.PointReceive, client, func(e evidence.PathEvent) bool {
				return e.Src == dst && strings.Contains(e.Flags, "R") && e.Elsewhere
			})
			want(t, path, "the client's socket closing", evidence.PointSockState, client, func(e evidence.PathEvent) bool {
				return e.Dst == dst && e.OldState == "SYN_SENT" && e.NewState == "CLOSE"
			})
			if got := events(path, evidence.PointICMP, server, nil); len(got) != 0 {
				t.Errorf("icmp events %+v for a TCP reset", got)
			}
			if count(path, evidence.PointReceive, server) < 1 || resetsWithoutSocket() && count(path, evidence.PointReset, server) < 1 {
				t.Errorf("counts %+v", path.Counts)
			}
		})
	}
}

// A healthy TCP connection, the listener in the server namespace: the packets arrive, the
// socket goes SYN_RECV -> ESTABLISHED, is woken, and the application reads the line.
func TestTCPDelivered(t *testing.T) {
	pair := testns.NewPair(t, "pd")
	server := testns.Inode(t, pair.Server)
	for _, tc := range []struct {
		name           string
		listen, server netip.Addr
	}{
		{"v4", serverV4, serverV4},
		{"v4-dual-stack-listener", netip.IPv6Unspecified(), serverV4},
		{"v6", serverV6, serverV6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := testns.Port()
			dst := netip.AddrPortFrom(tc.server, port)
			p := startProbe(t, Config{Flow: evidence.Flow{Addr: tc.server, Port: port, Proto: evidence.TCP}, Netns: server})
			if got := exchange(t, pair, evidence.TCP, netip.AddrPortFrom(tc.listen, port), dst); got != "hello\n" {
				t.Fatalf("server read %q", got)
			}
			path := stop(t, p)
			want(t, path, "the SYN", evidence.PointReceive, server, func(e evidence.PathEvent) bool {
				return e.Dst == dst && e.Flags == "S" && e.Iface == testns.Iface
			})
			want(t, path, "the data", evidence.PointReceive, server, func(e evidence.PathEvent) bool {
				return e.Dst == dst && strings.Contains(e.Flags, "P")
			})
			want(t, path, "the accepted socket established", evidence.PointSockState, server, func(e evidence.PathEvent) bool {
				return e.Src == dst && e.OldState == "SYN_RECV" && e.NewState == "ESTABLISHED"
			})
			if tc.listen == tc.server {
				want(t, path, "the listener", evidence.PointSockState, server, func(e evidence.PathEvent) bool {
					return e.Src == dst && e.OldState == "CLOSE" && e.NewState == "LISTEN"
				})
			}
			wantDataReady(t, path, "the socket woken", server, func(e evidence.PathEvent) bool {
				return e.Src == dst && e.Dst.Addr() != netip.IPv6Unspecified() && e.Dst.Port() != 0
			})
			cp := want(t, path, "the line read", evidence.PointCopied, server, func(e evidence.PathEvent) bool {
				return e.Dst == dst
			})
			if cp.Length != len("hello\n") || cp.Elsewhere {
				t.Errorf("copied %d bytes elsewhere %v, want %d", cp.Length, cp.Elsewhere, len("hello\n"))
			}
			if got := events(path, evidence.PointReset, server, nil); len(got) != 0 {
				t.Errorf("resets %+v in a healthy connection", got)
			}
		})
	}
}

// UDP to a closed port: the datagram arrives and is answered with port unreachable. For
// IPv6 the ICMPv6 error has no tracepoint: Missing says so.
func TestUDPRefused(t *testing.T) {
	pair := testns.NewPair(t, "pu")
	server := testns.Inode(t, pair.Server)
	for _, tc := range []struct {
		name           string
		server, client netip.Addr
	}{
		{"v4", serverV4, clientV4},
		{"v6", serverV6, clientV6},
	} {
		// Both ways the receive prefilter reads headers: bpf_rdonly_cast (6.2+) and the
		// probe read older kernels take.
		for _, probeRead := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/probe-read=%v", tc.name, probeRead), func(t *testing.T) {
				dst := netip.AddrPortFrom(tc.server, testns.Port())
				p := startProbe(t, Config{Flow: evidence.Flow{Addr: tc.server, Port: dst.Port(), Proto: evidence.UDP}, Netns: server, probeRead: probeRead})
				udpRefused(t, pair.Client, dst)
				path := stop(t, p)
				for _, a := range path.Attached {
					if strings.Contains(a, "inet_sock_set_state") || strings.Contains(a, "tcp_send_reset") {
						t.Errorf("attached %s for a UDP flow", a)
					}
				}
				from := func(e evidence.PathEvent) bool { return e.Dst == dst && e.Src.Addr() == tc.client }
				want(t, path, "the datagram", evidence.PointReceive, server, from)
				want(t, path, "the datagram's route", evidence.PointRoute, server, func(e evidence.PathEvent) bool {
					return from(e) && e.Err == 0 && e.Iif == testns.Iface
				})
				if tc.server.Is4() {
					icmp := want(t, path, "port unreachable", evidence.PointICMP, server, from)
					if icmp.ICMPType != 3 || icmp.ICMPCode != 3 || icmp.Iface != testns.Iface || icmp.Elsewhere {
						t.Errorf("icmp: type %d code %d iface %q elsewhere %v", icmp.ICMPType, icmp.ICMPCode, icmp.Iface, icmp.Elsewhere)
					}
				} else if !slices.ContainsFunc(path.Missing, func(m evidence.MissingPoint) bool {
					return m.Point == evidence.PointICMP && strings.Contains(m.Why, "ICMPv6")
				}) {
					t.Errorf("missing %+v does not say ICMPv6 errors are not traced", path.Missing)
				}
			})
		}
	}
}

// A UDP server bound to any address: its socket, unconnected, is woken.
func TestUDPDelivered(t *testing.T) {
	pair := testns.NewPair(t, "pv")
	server := testns.Inode(t, pair.Server)
	port := testns.Port()
	dst := netip.AddrPortFrom(serverV4, port)
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: serverV4, Port: port, Proto: evidence.UDP}, Netns: server})
	if got := exchange(t, pair, evidence.UDP, netip.AddrPortFrom(netip.IPv4Unspecified(), port), dst); got != "hello\n" {
		t.Fatalf("server read %q", got)
	}
	path := stop(t, p)
	want(t, path, "the datagram", evidence.PointReceive, server, func(e evidence.PathEvent) bool { return e.Dst == dst })
	wantDataReady(t, path, "the socket bound to any address woken", server, func(e evidence.PathEvent) bool {
		return e.Src.Port() == port && e.Src.Addr().IsUnspecified() && e.Dst.Port() == 0
	})
	// The read is not traced: udp_recvmsg copies a linear datagram with copy_linear_skb,
	// which skb_copy_datagram_iovec does not see (it does see TCP's reads).
	if got := events(path, evidence.PointCopied, server, nil); len(got) != 0 {
		t.Logf("skb_copy_datagram_iovec saw the UDP read on this kernel: %+v", got)
	}
	if got := events(path, evidence.PointICMP, server, nil); len(got) != 0 {
		t.Errorf("icmp %+v for a delivered datagram", got)
	}
}

// Other flows are seen and left out: another port, another protocol, another address.
func TestFilter(t *testing.T) {
	for _, probeRead := range []bool{false, true} {
		t.Run(fmt.Sprintf("probe-read=%v", probeRead), func(t *testing.T) { testFilter(t, probeRead) })
	}
}

func testFilter(t *testing.T, probeRead bool) {
	pair := testns.NewPair(t, "pf")
	server := testns.Inode(t, pair.Server)
	port, other := testns.Port(), testns.Port()
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: serverV4, Port: port, Proto: evidence.TCP}, Netns: server, probeRead: probeRead})
	connectRefused(t, pair.Client, netip.AddrPortFrom(serverV4, other))
	udpRefused(t, pair.Client, netip.AddrPortFrom(serverV4, port))
	connectRefused(t, pair.Client, netip.AddrPortFrom(serverV6, port))
	connectRefused(t, pair.Server, netip.AddrPortFrom(clientV4, port))
	path := stop(t, p)
	if len(path.Events) != 0 || len(path.Counts) != 0 || p.Events() != 0 {
		t.Errorf("events %+v counts %+v: other flows leaked through the filter", path.Events, path.Counts)
	}
	points := []bpf.PathPoint{bpf.PathPointPOINT_RECEIVE, bpf.PathPointPOINT_ROUTE, bpf.PathPointPOINT_ICMP}
	if resetsWithoutSocket() {
		// The resets answering closed ports; before 6.10 the tracepoint does not see them.
		points = append(points, bpf.PathPointPOINT_RESET)
	}
	for _, id := range points {
		if c := p.sums[id]; c.Seen == 0 || c.Matched != 0 {
			t.Errorf("%s: seen %d matched %d, want seen > matched = 0", pointByID[id].tracepoint(), c.Seen, c.Matched)
		}
	}
}

// A connection to an address with no route: the lookup fails, in the namespace of the
// process that made it. Nothing is sent.
func TestNoRoute(t *testing.T) {
	pair := testns.NewPair(t, "pn")
	server := testns.Inode(t, pair.Server)
	for _, addr := range []string{"203.0.113.9", "2001:db8:ffff::9"} {
		t.Run(addr, func(t *testing.T) {
			dst := netip.AddrPortFrom(netip.MustParseAddr(addr), testns.Port())
			p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.TCP}, Netns: server})
			var err error
			testns.Do(t, pair.Server, func() {
				var c net.Conn
				if c, err = net.DialTimeout("tcp", dst.String(), time.Second); err == nil {
					c.Close()
				}
			})
			if !errors.Is(err, syscall.ENETUNREACH) {
				t.Fatalf("connect to %v: %v, want network unreachable", dst, err)
			}
			path := stop(t, p)
			rt := want(t, path, "the failed lookup", evidence.PointRoute, server, func(e evidence.PathEvent) bool {
				return e.Dst == dst && e.Err != 0
			})
			if rt.Elsewhere || rt.Oif != "" || rt.Gateway != "" {
				t.Errorf("route: elsewhere %v oif %q gateway %q", rt.Elsewhere, rt.Oif, rt.Gateway)
			}
			if got := events(path, evidence.PointReceive, server, nil); len(got) != 0 {
				t.Errorf("received %+v: nothing was sent", got)
			}
		})
	}
}

// One tracepoint failing costs that point only; all failing fails Start, releasing
// everything, with the sentinel of the cause.
func TestAttachFailures(t *testing.T) {
	testns.RequirePrivileges(t)
	flow := evidence.Flow{Addr: serverV4, Port: testns.Port(), Proto: evidence.TCP}
	// A tracepoint every kernel we test on has, refused: its point alone is missing.
	noCopied := func(l *loader, pt point) (*attachment, error) {
		if pt.event == "skb_copy_datagram_iovec" {
			return nil, fmt.Errorf("load tp_btf/skb_copy_datagram_iovec: attach target btf_trace_skb_copy_datagram_iovec: %w", errors.New("not found"))
		}
		return attachBTF(l, pt)
	}
	p := startProbe(t, Config{Flow: flow}, noCopied)
	path := stop(t, p)
	if len(path.Attached) != wantPoints(true)-1 || slices.Contains(path.Attached, "tp_btf/skb_copy_datagram_iovec") {
		t.Errorf("attached %q", path.Attached)
	}
	refusedWhy := "skb:skb_copy_datagram_iovec: load tp_btf/skb_copy_datagram_iovec: attach target btf_trace_skb_copy_datagram_iovec: not found"
	missing := slices.IndexFunc(path.Missing, func(m evidence.MissingPoint) bool {
		return m.Point == evidence.PointCopied && m.Why == refusedWhy
	})
	// The kernel's own absence (sk_data_ready before 6.3) is missing too, and nothing else.
	wantMissing := 1
	if !testns.HasTracepoint("sk_data_ready") {
		wantMissing++
	}
	if missing < 0 || len(path.Missing) != wantMissing {
		t.Errorf("missing %+v", path.Missing)
	}

	checkReleased(t)
	refused := func(l *loader, pt point) (*attachment, error) {
		// The real loader runs first, so the failure comes after maps and programs exist.
		a, err := attachBTF(l, pt)
		if err != nil {
			return nil, err
		}
		a.Close()
		return nil, kerr.BPF("attach tp_btf/"+pt.event, syscall.EPERM)
	}
	q, err := start(context.Background(), Config{Flow: flow}, []attacher{refused})
	if q != nil || !errors.Is(err, kerr.ErrPrivilege) {
		t.Fatalf("start = %v, %v; want kerr.ErrPrivilege", q, err)
	}
	if !strings.HasPrefix(err.Error(), "path probe: no tracepoint attached: attach tp_btf/netif_receive_skb: operation not permitted (") {
		t.Errorf("message %q", err)
	}
	testns.CheckStartEdges(t, Start, Config{Flow: flow})
}

// Users run diagnose under `ip netns exec`, where /sys is a fresh sysfs without tracefs.
// The test binary runs itself there: tp_btf needs no tracefs, the classic tracepoints
// mount it privately, and the mount must not show in the process's namespace.
func TestUnderIPNetnsExec(t *testing.T) {
	pair := testns.NewPair(t, "px")
	server := testns.Inode(t, pair.Server)
	for _, mode := range []string{"auto", "classic"} {
		t.Run(mode, func(t *testing.T) {
			dst := netip.AddrPortFrom(serverV4, testns.Port())
			var res childResult
			testns.RunChild(t, pair.Server, testns.ChildArgs{Mode: mode, Client: pair.Client, Port: dst.Port()}, &res)
			res.Check(t)
			path := res.Path
			prefix := map[string]string{"auto": "tp_btf/", "classic": "tracepoint/"}[mode]
			if n := wantPoints(true); len(path.Attached) != n || !strings.HasPrefix(path.Attached[0], prefix) {
				t.Errorf("attached %q, want %d %s*", path.Attached, n, prefix)
			}
			syn := func(e evidence.PathEvent) bool { return e.Dst == dst && e.Flags == "S" && !e.Elsewhere }
			rx := want(t, path, "the SYN", evidence.PointReceive, server, syn)
			rt := want(t, path, "its route", evidence.PointRoute, server, func(e evidence.PathEvent) bool { return e.Dst == dst && !e.Elsewhere })
			if resetsWithoutSocket() {
				want(t, path, "the reset", evidence.PointReset, server, syn)
			}
			// Inside the diagnosed namespace, interface indexes have names.
			if rx.Iface != testns.Iface || rt.Iif != testns.Iface || rt.Oif != testns.Iface {
				t.Errorf("receive iface %q, route iif %q oif %q; want %s", rx.Iface, rt.Iif, rt.Oif, testns.Iface)
			}
		})
	}
}

type childResult struct {
	testns.ChildResult
	Path *evidence.Path
}

// TestChild is TestUnderIPNetnsExec's other half, run by it inside the server namespace.
func TestChild(t *testing.T) {
	args := testns.Child(t)
	switch args.Mode {
	case testns.Unprivileged:
		flow := evidence.Flow{Addr: serverV4, Port: 9, Proto: evidence.TCP}
		p, err := Start(context.Background(), Config{Flow: flow})
		p.Close()
		testns.LogStartError(t, err)
		return
	}
	var res childResult
	defer testns.WriteChildResult(t, &res)
	if tracefs.Mounted() {
		res.Error = "tracefs is mounted under ip netns exec: the test proves nothing"
		return
	}
	dst := netip.AddrPortFrom(serverV4, args.Port)
	attachers := []attacher{attachBTF, attachClassic}
	if args.Mode == "classic" {
		attachers = []attacher{attachClassic}
	}
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.TCP}, Netns: netns.Own()}, attachers...)
	res.TracefsVisible = tracefs.Mounted()
	connectRefused(t, args.Client, dst)
	res.Path = p.Stop()
}

// A burst is drained whole at Stop, counted whole, and kept up to MaxEvents.
func TestBurst(t *testing.T) {
	pair := testns.NewPair(t, "pb")
	server := testns.Inode(t, pair.Server)
	dst := netip.AddrPortFrom(serverV4, testns.Port())
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.UDP}, Netns: server})
	const n = MaxEvents + 100
	testns.SendDatagrams(t, pair.Client, dst, n)
	// No waiting: veth delivers within the sending call, so every event is in the ring
	// buffer now, and Stop must read them all.
	path := p.Stop()
	if got := count(path, evidence.PointReceive, server); got != n {
		t.Errorf("%d datagrams received, counted %d", n, got)
	}
	// Each datagram's input lookup, and the lookup icmp_route_lookup makes for the flow
	// reversed (xfrm_decode_session_reverse) before ICMP's rate limits.
	if got := count(path, evidence.PointRoute, server); got < n {
		t.Errorf("%d datagrams routed, counted %d", n, got)
	}
	t.Logf("icmp_send events for %d datagrams to a closed port: %d; notes %q", n, count(path, evidence.PointICMP, server), path.Notes)
	total := 0
	for _, c := range path.Counts {
		total += c.Events
	}
	if len(path.Events) != MaxEvents || p.Events() != total || path.Lost != 0 {
		t.Errorf("kept %d, read %d, counted %d, lost %d", len(path.Events), p.Events(), total, path.Lost)
	}
	if !slices.ContainsFunc(path.Notes, func(s string) bool {
		return strings.HasPrefix(s, fmt.Sprintf("kept the first %d of %d events", MaxEvents, total))
	}) {
		t.Errorf("notes %q do not say events were left out", path.Notes)
	}
}

// Without privileges Start fails with kerr.ErrPrivilege and the fix, on the real kernel.
func TestUnprivileged(t *testing.T) {
	testns.RunUnprivileged(t)
}

// TestShed: a hot point whose rate of other flows' events passes the shed rate is detached
// during the capture, the others stay, and the evidence says which and why.
func TestShed(t *testing.T) {
	pair := testns.NewPair(t, "psh")
	server := testns.Inode(t, pair.Server)
	port, other := testns.Port(), testns.Port()
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: serverV4, Port: port, Proto: evidence.UDP}, Netns: server, shedRate: 10})
	for i := 0; i < 6; i++ {
		testns.SendDatagrams(t, pair.Client, netip.AddrPortFrom(serverV4, other), 50)
		time.Sleep(250 * time.Millisecond)
	}
	path := stop(t, p)
	notes := strings.Join(path.Notes, "\n")
	if !strings.Contains(notes, "net:netif_receive_skb detached") || !strings.Contains(notes, "events/s of other traffic") {
		t.Errorf("the receive point was not shed, or the evidence does not say so: %q", notes)
	}
	if strings.Contains(notes, "sk_data_ready detached") {
		t.Errorf("a point off the packet path was shed: %q", notes)
	}
}
