package kdrop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/internal/tracefs"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// End-to-end tests: real drops between two namespaces the test makes. They need root and
// skip without it, except under CI=true, where they fail instead.

// startProbe starts a probe that the test closes, checking it releases every object.
// readPaths are the prefilter's two ways of reading headers: bpf_rdonly_cast where the
// kernel has it, bpf_probe_read_kernel before 6.2. Tests of what passes the filter run both.
var readPaths = []struct {
	name      string
	probeRead bool
}{{"cast", false}, {"probe-read", true}}

// The two read paths are two programs on a kernel with bpf_rdonly_cast: were it not
// resolved, the "cast" runs would test the probe read twice. The verifier drops the branch
// the load-time constant rules out, so the loaded programs differ in length. On a kernel
// without it (before 6.2) the program takes the probe read whatever it is asked: one program.
func TestReadPathsDiffer(t *testing.T) {
	testns.RequirePrivileges(t)
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}
	lengths := map[bool]int{}
	for _, rp := range readPaths {
		p := startProbe(t, Config{Flow: flow, probeRead: rp.probeRead}, attachTPBTF)
		info, err := p.att.prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		insns, err := info.Instructions()
		if err != nil {
			t.Fatalf("%s: read the loaded program: %v", rp.name, err)
		}
		lengths[rp.probeRead] = len(insns)
		t.Logf("%s: %d instructions", rp.name, len(insns))
		p.Close()
	}
	switch cast := testns.HasKfunc("bpf_rdonly_cast"); {
	case cast && lengths[false] == lengths[true]:
		t.Errorf("the cast and probe-read programs are both %d instructions long: the cast path is not taken", lengths[false])
	case !cast && lengths[false] != lengths[true]:
		t.Errorf("kernel %s has no bpf_rdonly_cast, yet the programs differ (%d and %d instructions): the probe read is not always taken", testns.Release(), lengths[false], lengths[true])
	}
}

func startProbe(t *testing.T, cfg Config, attachers ...attacher) *Probe {
	t.Helper()
	checkReleased(t)
	if len(attachers) == 0 {
		attachers = []attacher{attachTPBTF, attachClassic}
	}
	p, err := start(context.Background(), cfg, attachers)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	testns.CloseOnCleanup(t, p)
	return p
}

// send sends one packet from namespace ns to dst and waits until the receiver has dealt
// with it: TCP's RST or UDP's ICMP port unreachable refuses the connection. With
// wantRefused false it only waits for the timeout.
func send(t *testing.T, ns string, proto evidence.Proto, dst netip.AddrPort, wantRefused bool) {
	t.Helper()
	var err error
	testns.Do(t, ns, func() {
		d := net.Dialer{Timeout: 2 * time.Second}
		if !wantRefused {
			d.Timeout = 300 * time.Millisecond
		}
		var c net.Conn
		c, err = d.Dial(string(proto), dst.String())
		if err != nil {
			return
		}
		defer c.Close()
		if _, err = c.Write([]byte("packetmortem test")); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 16))
	})
	if wantRefused && !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%s to %v from %s: %v, want connection refused", proto, dst, ns, err)
	}
}

// flowDrops returns the drops to dst.
func flowDrops(kd *evidence.KernelDrop, dst netip.AddrPort) []evidence.Drop {
	var out []evidence.Drop
	for _, d := range kd.Drops {
		if d.Dst == dst {
			out = append(out, d)
		}
	}
	return out
}

func hasFrame(stack []string, fn string) bool {
	return slices.ContainsFunc(stack, func(f string) bool { return strings.HasPrefix(f, fn+"+0x") })
}

func logEvidence(t *testing.T, p *Probe, kd *evidence.KernelDrop) {
	t.Helper()
	b, _ := json.MarshalIndent(kd, "", "  ")
	t.Logf("evidence: %s", b)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.events {
		t.Logf("raw: netns %d from %d ifindex %d", ev.Netns, ev.NetnsFrom, ev.Ifindex)
	}
}

// A packet to a port nothing listens on is dropped with NO_SOCKET by the protocol's
// receive function, in the server's namespace.
func TestNoSocket(t *testing.T) {
	pair := testns.NewPair(t, "kd")
	server := testns.Inode(t, pair.Server)
	for _, tc := range []struct {
		name     string
		proto    evidence.Proto
		server   string
		client   string
		function []string // where this kernel or another drops it
	}{
		{"tcp4", evidence.TCP, testns.ServerV4, testns.ClientV4, []string{"tcp_v4_rcv"}},
		{"udp4", evidence.UDP, testns.ServerV4, testns.ClientV4, []string{"__udp4_lib_rcv", "udp_rcv"}},
		{"tcp6", evidence.TCP, testns.ServerV6, testns.ClientV6, []string{"tcp_v6_rcv"}},
		{"udp6", evidence.UDP, testns.ServerV6, testns.ClientV6, []string{"__udp6_lib_rcv", "udpv6_rcv"}},
	} {
		for _, rp := range readPaths {
			t.Run(tc.name+"/"+rp.name, func(t *testing.T) {
				dst := netip.AddrPortFrom(netip.MustParseAddr(tc.server), testns.Port())
				flow := evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: tc.proto}
				p := startProbe(t, Config{Flow: flow, Netns: server, probeRead: rp.probeRead})
				links := bpfrt.OpenObjects()[bpfrt.Link]
				begin := time.Now()
				send(t, pair.Client, tc.proto, dst, true)
				testns.WaitEvents(t, p, 1)
				kd := p.Stop()
				logEvidence(t, p, kd)
				want := links - 1
				if p.learn != nil {
					want-- // the program learning translations
				}
				if got := bpfrt.OpenObjects()[bpfrt.Link]; got != want {
					t.Errorf("after Stop %d bpf links open, want %d: Stop must detach", got, want)
				}
				if again := p.Stop(); again != kd {
					t.Error("second Stop returned different evidence")
				}

				if kd.Attach != attachBTF || kd.Error != "" || !kd.ReasonsFromBTF {
					t.Errorf("attach %q error %q reasons from BTF %v", kd.Attach, kd.Error, kd.ReasonsFromBTF)
				}
				if kd.Matched < 1 || kd.Lost != 0 || kd.Seen < kd.Matched || int(kd.Matched) != len(kd.Drops) {
					t.Errorf("seen %d matched %d lost %d drops %d", kd.Seen, kd.Matched, kd.Lost, len(kd.Drops))
				}
				drops := flowDrops(kd, dst)
				i := slices.IndexFunc(drops, func(d evidence.Drop) bool { return d.Reason == "NO_SOCKET" })
				if i < 0 {
					t.Fatalf("no NO_SOCKET drop to %v", dst)
				}
				d := drops[i]
				if !slices.Contains(tc.function, d.Function) || !strings.HasPrefix(d.Location, d.Function+"+0x") {
					t.Errorf("function %q location %q, want one of %q", d.Function, d.Location, tc.function)
				}
				if !hasFrame(d.Stack, d.Function) || !strings.HasPrefix(d.Stack[0], d.Function+"+0x") {
					t.Errorf("stack %q: want %s first, no tracing frame before it", d.Stack, d.Function)
				}
				if d.Netns != server || d.NetnsName != pair.Server || d.Elsewhere {
					t.Errorf("netns %d %q elsewhere %v, want the server's %d", d.Netns, d.NetnsName, d.Elsewhere, server)
				}
				// The test runs outside the server's namespace: its ifindex is not ours to name.
				if d.Ifindex == 0 || d.Iface != "" {
					t.Errorf("ifindex %d iface %q", d.Ifindex, d.Iface)
				}
				if d.Src.Addr() != netip.MustParseAddr(tc.client) || d.Src.Port() == 0 {
					t.Errorf("src %v, want %s:ephemeral", d.Src, tc.client)
				}
				wantFlags := ""
				if tc.proto == evidence.TCP {
					wantFlags = "S"
				}
				if d.Flags != wantFlags {
					t.Errorf("flags %q, want %q", d.Flags, wantFlags)
				}
				if d.Time.Before(begin.Add(-time.Second)) || d.Time.After(time.Now().Add(time.Second)) {
					t.Errorf("time %v not around %v", d.Time, begin)
				}
			})
		}
	}
}

// Packets of other flows are seen and left out: another port, another protocol, the
// flow's port on another address.
func TestFilter(t *testing.T) {
	pair := testns.NewPair(t, "kf")
	server := testns.Inode(t, pair.Server)
	for _, rp := range readPaths {
		t.Run(rp.name, func(t *testing.T) {
			port := testns.Port()
			other := testns.Port()
			serverAddr := netip.MustParseAddr(testns.ServerV4)
			p := startProbe(t, Config{Flow: evidence.Flow{Addr: serverAddr, Port: port, Proto: evidence.TCP}, Netns: server, probeRead: rp.probeRead})

			send(t, pair.Client, evidence.TCP, netip.AddrPortFrom(serverAddr, other), true)
			send(t, pair.Client, evidence.UDP, netip.AddrPortFrom(serverAddr, port), true)
			send(t, pair.Server, evidence.TCP, netip.AddrPortFrom(netip.MustParseAddr(testns.ClientV4), port), true)
			send(t, pair.Client, evidence.TCP, netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV6), port), true)
			kd := p.Stop()
			logEvidence(t, p, kd)
			if kd.Matched != 0 || len(kd.Drops) != 0 {
				t.Errorf("matched %d, drops %+v: other flows leaked through the filter", kd.Matched, kd.Drops)
			}
			if kd.Seen < 4 {
				t.Errorf("seen %d, want at least the 4 drops sent", kd.Seen)
			}
		})
	}
}

// A drop of the flow in another namespace (the client's own firewall) is reported, and
// attributed to that namespace.
func TestElsewhere(t *testing.T) {
	pair := testns.NewPair(t, "ke")
	server := testns.Inode(t, pair.Server)
	client := testns.Inode(t, pair.Client)
	dst := netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV4), testns.Port())
	pair.InClient(t, "nft", "add table inet pmt_test; add chain inet pmt_test out { type filter hook output priority 0; }; "+
		"add rule inet pmt_test out tcp dport "+strconv.Itoa(int(dst.Port()))+" drop")
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.TCP}, Netns: server})
	send(t, pair.Client, evidence.TCP, dst, false)
	kd := p.Stop()
	logEvidence(t, p, kd)
	drops := flowDrops(kd, dst)
	if len(drops) == 0 {
		t.Fatal("no drop of the flow")
	}
	d := drops[0]
	if d.Reason != "NETFILTER_DROP" {
		t.Errorf("reason %q, want NETFILTER_DROP", d.Reason)
	}
	if d.Netns != client || d.NetnsName != pair.Client || !d.Elsewhere {
		t.Errorf("netns %d %q elsewhere %v, want the client's %d, elsewhere", d.Netns, d.NetnsName, d.Elsewhere, client)
	}
}

// The classic tracepoint, for kernels that refuse tp_btf, gives the same evidence.
func TestClassicTracepoint(t *testing.T) {
	pair := testns.NewPair(t, "kt")
	server := testns.Inode(t, pair.Server)
	dst := netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV4), testns.Port())
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.TCP}, Netns: server}, attachClassic)
	send(t, pair.Client, evidence.TCP, dst, true)
	kd := p.Stop()
	logEvidence(t, p, kd)
	checkTCPNoSocket(t, kd, dst, server, attachTracepoint)
}

func checkTCPNoSocket(t *testing.T, kd *evidence.KernelDrop, dst netip.AddrPort, netns uint64, attach string) {
	t.Helper()
	if kd.Attach != attach || kd.Error != "" {
		t.Errorf("attach %q error %q, want %s", kd.Attach, kd.Error, attach)
	}
	drops := flowDrops(kd, dst)
	if len(drops) == 0 {
		t.Fatalf("no drop to %v", dst)
	}
	d := drops[0]
	if d.Reason != "NO_SOCKET" || d.Function != "tcp_v4_rcv" || !hasFrame(d.Stack, "tcp_v4_rcv") || !strings.HasPrefix(d.Stack[0], "tcp_v4_rcv+") {
		t.Errorf("reason %q function %q stack %q", d.Reason, d.Function, d.Stack)
	}
	if d.Netns != netns || d.Elsewhere || d.Flags != "S" {
		t.Errorf("netns %d elsewhere %v flags %q", d.Netns, d.Elsewhere, d.Flags)
	}
}

// Users run diagnose under `ip netns exec`, where /sys is a fresh sysfs without tracefs.
// The test binary runs itself there: tp_btf needs no tracefs, the classic tracepoint
// mounts it privately, and the mount must not show in the process's namespace.
func TestUnderIPNetnsExec(t *testing.T) {
	pair := testns.NewPair(t, "kx")
	server := testns.Inode(t, pair.Server)
	for _, mode := range []string{"auto", "classic"} {
		t.Run(mode, func(t *testing.T) {
			dst := netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV4), testns.Port())
			var res childResult
			testns.RunChild(t, pair.Server, testns.ChildArgs{Mode: mode, Client: pair.Client, Port: dst.Port()}, &res)
			res.Check(t)
			want := attachBTF
			if mode == "classic" {
				want = attachTracepoint
			}
			checkTCPNoSocket(t, res.Evidence, dst, server, want)
			// Inside the diagnosed namespace, interfaces have names.
			if d := flowDrops(res.Evidence, dst); len(d) > 0 && d[0].Iface != testns.Iface {
				t.Errorf("iface %q, want %s", d[0].Iface, testns.Iface)
			}
		})
	}
}

type childResult struct {
	testns.ChildResult
	Evidence *evidence.KernelDrop
}

// TestChild is TestUnderIPNetnsExec's other half, run by it inside the server namespace.
func TestChild(t *testing.T) {
	args := testns.Child(t)
	switch args.Mode {
	case testns.Unprivileged:
		flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: 9, Proto: evidence.TCP}
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
	dst := netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV4), args.Port)
	attachers := []attacher{attachTPBTF, attachClassic}
	if args.Mode == "classic" {
		attachers = []attacher{attachClassic}
	}
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.TCP}, Netns: netns.Own()}, attachers...)
	res.TracefsVisible = tracefs.Mounted()
	send(t, args.Client, evidence.TCP, dst, true)
	res.Evidence = p.Stop()
}

// A burst is drained whole at Stop, counted whole, and kept up to MaxDrops.
func TestBurst(t *testing.T) {
	pair := testns.NewPair(t, "kb")
	server := testns.Inode(t, pair.Server)
	dst := netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV4), testns.Port())
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.UDP}, Netns: server})
	const n = MaxDrops + 100
	before := testns.UDPNoPorts(t, pair.Server)
	testns.SendDatagrams(t, pair.Client, dst, n)
	// Veth usually delivers within the sending call; on a loaded machine (the 6.1 VM under
	// emulation) the softirq may run later. Once the server counted every drop, each is in
	// the ring buffer (the counter moves just before the skb is freed: a moment's grace),
	// and Stop must read them all.
	testns.WaitUDPNoPorts(t, pair.Server, before+n)
	time.Sleep(20 * time.Millisecond)
	kd := p.Stop()
	if kd.Matched != n || kd.Lost != 0 || p.Events() != n {
		t.Errorf("matched %d lost %d read %d, want %d", kd.Matched, kd.Lost, p.Events(), n)
	}
	if len(kd.Drops) != MaxDrops {
		t.Errorf("kept %d drops, want MaxDrops %d", len(kd.Drops), MaxDrops)
	}
	if !slices.ContainsFunc(kd.Notes, func(s string) bool { return strings.Contains(s, "kept the first 1000 of 1100") }) {
		t.Errorf("notes %q do not say drops were left out", kd.Notes)
	}
}

// When tp_btf fails the classic tracepoint takes over, and the evidence says why.
func TestFallback(t *testing.T) {
	pair := testns.NewPair(t, "kf")
	server := testns.Inode(t, pair.Server)
	dst := netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV4), testns.Port())
	refused := func(*ebpf.CollectionSpec, map[string]*ebpf.Map) (*attachment, error) {
		return nil, kerr.BPF("attach "+attachBTF, fmt.Errorf("create tracing link: %w", unix.EPERM))
	}
	p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.TCP}, Netns: server}, refused, attachClassic)
	send(t, pair.Client, evidence.TCP, dst, true)
	kd := p.Stop()
	checkTCPNoSocket(t, kd, dst, server, attachTracepoint)
	if !slices.ContainsFunc(kd.Notes, func(s string) bool {
		return strings.HasPrefix(s, "attached tracepoint/skb/kfree_skb after: attach tp_btf/kfree_skb: create tracing link: operation not permitted")
	}) {
		t.Errorf("notes %q do not explain the fallback", kd.Notes)
	}
}

// A Start that fails releases what it made and says why.
func TestStartFails(t *testing.T) {
	testns.RequirePrivileges(t)
	checkReleased(t)
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.TCP}
	// The real loader runs first, so the failure comes after maps and programs exist.
	loadThenFail := func(spec *ebpf.CollectionSpec, flow map[string]*ebpf.Map) (*attachment, error) {
		a, err := load(spec, flow, attachBTF, bpf.KdropProgKfreeSkbBtf)
		if err != nil {
			return nil, err
		}
		a.Close()
		return nil, kerr.BPF("attach "+attachBTF, unix.EPERM)
	}
	unsupported := func(*ebpf.CollectionSpec, map[string]*ebpf.Map) (*attachment, error) {
		return nil, kerr.BPF("attach "+attachTracepoint, fmt.Errorf("x: %w", ebpf.ErrNotSupported))
	}
	p, err := start(context.Background(), Config{Flow: flow}, []attacher{loadThenFail, unsupported})
	if p != nil || !errors.Is(err, kerr.ErrPrivilege) || !errors.Is(err, kerr.ErrUnsupported) {
		t.Fatalf("start = %v, %v", p, err)
	}
	if !strings.HasPrefix(err.Error(), "kernel drop probe on kfree_skb: attach tp_btf/kfree_skb: operation not permitted (") {
		t.Errorf("message %q", err)
	}
	testns.CheckStartEdges(t, Start, Config{Flow: flow})
}

// Without privileges Start fails with kerr.ErrPrivilege and the fix, on the real kernel.
func TestUnprivileged(t *testing.T) {
	testns.RunUnprivileged(t)
}

// The program finds the ports behind IPv4 options and IPv6 extension headers.
func TestHeaderVariants(t *testing.T) {
	pair := testns.NewPair(t, "kh")
	server := testns.Inode(t, pair.Server)
	for _, tc := range []struct {
		name   string
		server string
		opts   func(fd int) error
	}{
		{"ipv4-options", testns.ServerV4, func(fd int) error {
			// Three NOPs and an end of list: IHL 6.
			return unix.SetsockoptString(fd, unix.IPPROTO_IP, unix.IP_OPTIONS, "\x01\x01\x01\x00")
		}},
		{"ipv6-hop-by-hop-and-destination-options", testns.ServerV6, func(fd int) error {
			// Next header and length (filled in by the kernel), then a 4-byte PadN.
			padN := "\x00\x00\x01\x04\x00\x00\x00\x00"
			if err := unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, padN); err != nil {
				return err
			}
			return unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, padN)
		}},
	} {
		for _, rp := range readPaths {
			t.Run(tc.name+"/"+rp.name, func(t *testing.T) {
				dst := netip.AddrPortFrom(netip.MustParseAddr(tc.server), testns.Port())
				p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.UDP}, Netns: server, probeRead: rp.probeRead})
				testns.Do(t, pair.Client, func() {
					var family int
					var sa unix.Sockaddr
					if dst.Addr().Is4() {
						family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
					} else {
						family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}
					}
					fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
					if err != nil {
						t.Error(err)
						return
					}
					defer unix.Close(fd)
					if err := tc.opts(fd); err != nil {
						t.Errorf("set options: %v", err)
						return
					}
					if err := unix.Sendto(fd, []byte("x"), 0, sa); err != nil {
						t.Errorf("send: %v", err)
					}
				})
				kd := p.Stop()
				logEvidence(t, p, kd)
				drops := flowDrops(kd, dst)
				if len(drops) != 1 || drops[0].Reason != "NO_SOCKET" || drops[0].Src.Port() == 0 {
					t.Errorf("drops to %v: %+v", dst, drops)
				}
			})
		}
	}
}

// The flow grows while the probe runs: an endpoint added by Grow has its drops recorded
// from then on, and one that applies in another namespace than the drop's has not.
func TestGrow(t *testing.T) {
	pair := testns.NewPair(t, "kg")
	server, client := testns.Inode(t, pair.Server), testns.Inode(t, pair.Client)
	for _, addr := range []string{testns.ServerV4, testns.ServerV6} {
		t.Run(addr, func(t *testing.T) {
			at := func() netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(addr), testns.Port()) }
			first, elsewhere, here, anywhere := at(), at(), at(), at()
			p := startProbe(t, Config{Flow: evidence.Flow{Addr: first.Addr(), Port: first.Port(), Proto: evidence.TCP}, Netns: server})
			for i, c := range []struct {
				dst   netip.AddrPort
				netns uint64
			}{{elsewhere, client}, {here, server}, {anywhere, 0}} {
				e := evidence.Endpoint{ID: uint32(i + 2), Addr: c.dst.Addr(), Port: c.dst.Port(), Proto: evidence.TCP, Netns: c.netns}
				if err := p.Grow(e); err != nil {
					t.Fatalf("Grow(%v): %v", e, err)
				}
			}
			for _, dst := range []netip.AddrPort{first, elsewhere, here, anywhere} {
				send(t, pair.Client, evidence.TCP, dst, true)
			}
			kd := p.Stop()
			logEvidence(t, p, kd)
			for dst, want := range map[netip.AddrPort]bool{first: true, elsewhere: false, here: true, anywhere: true} {
				if got := len(flowDrops(kd, dst)) > 0; got != want {
					t.Errorf("drops to %v recorded: %v, want %v", dst, got, want)
				}
			}
		})
	}
}

// A connection translated on its way (a redirect to another port of the host, a DNAT to a
// container behind it) is the flow's all the same: its drop matches by the conntrack entry
// where the packet still has it (a firewall drop after the redirect: nothing left the host
// before it to teach the programs the new port), or by the endpoint the programs learned as
// the packet left for the container, where the drop is then attributed; the translation is
// reported.
func TestTranslated(t *testing.T) {
	testns.Tool(t, "nft")
	pair := testns.NewPair(t, "kn")
	server := testns.Inode(t, pair.Server)
	ctr := pair.AddContainer(t, "kn")
	container := testns.Inode(t, ctr)
	for _, tc := range []struct {
		name, family, server, to string
		port                     uint16 // where the DNAT sends it; 0: another port of the server
		reason                   string
		netns                    uint64
		byConntrack              bool
	}{
		{"redirect v4", "ip", testns.ServerV4, testns.ServerV4, 0, "NETFILTER_DROP", server, true},
		{"redirect v6", "ip6", testns.ServerV6, testns.ServerV6, 0, "NETFILTER_DROP", server, true},
		{"container v4", "ip", testns.ServerV4, testns.ContainerV4, 80, "NO_SOCKET", container, false},
		{"container v6", "ip6", testns.ServerV6, testns.ContainerV6, 80, "NO_SOCKET", container, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := netip.AddrPortFrom(netip.MustParseAddr(tc.server), testns.Port())
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.to), tc.port)
			if tc.port == 0 {
				to = netip.AddrPortFrom(to.Addr(), testns.Port())
			}
			table := "pmt_nat_" + strconv.Itoa(int(dst.Port()))
			pair.InServer(t, "nft", fmt.Sprintf("add table %s %s { "+
				"chain pre { type nat hook prerouting priority dstnat; policy accept; tcp dport %d dnat to %s; }; "+
				"chain in { type filter hook input priority filter; policy accept; tcp dport %d drop; }; }",
				tc.family, table, dst.Port(), to, to.Port()))
			t.Cleanup(func() {
				_ = exec.Command("ip", "netns", "exec", pair.Server, "nft", "delete", "table", tc.family, table).Run()
			})

			var mu sync.Mutex
			var grown []evidence.Endpoint
			p := startProbe(t, Config{Flow: evidence.Flow{Addr: dst.Addr(), Port: dst.Port(), Proto: evidence.TCP}, Netns: server,
				OnGrow: func(e evidence.Endpoint) { mu.Lock(); grown = append(grown, e); mu.Unlock() }})
			if p.learn == nil {
				t.Fatalf("the program learning translations did not attach: %q", p.notes)
			}
			send(t, pair.Client, evidence.TCP, dst, tc.reason == "NO_SOCKET")
			testns.WaitEvents(t, p, 1)
			kd := p.Stop()
			logEvidence(t, p, kd)

			drops := flowDrops(kd, to)
			if len(drops) == 0 {
				t.Fatalf("no drop to %v, where %v was translated to", to, dst)
			}
			d := drops[0]
			if d.Reason != tc.reason || d.Netns != tc.netns || d.Elsewhere != (tc.netns != server) || d.ByConntrack != tc.byConntrack {
				t.Errorf("drop %s in netns %d (elsewhere %v, by conntrack %v); want %s in %d, by conntrack %v",
					d.Reason, d.Netns, d.Elsewhere, d.ByConntrack, tc.reason, tc.netns, tc.byConntrack)
			}
			if len(kd.Translations) == 0 {
				t.Fatal("no translation reported")
			}
			tr := kd.Translations[0]
			if tr.Kind != "DNAT" || tr.Orig.Dst != dst || tr.Reply.Src != to || !slices.Equal(tr.Learned, []netip.AddrPort{to}) || tr.Netns != server {
				t.Errorf("translation %+v; want DNAT from %v to %v, learned in the server's namespace", tr, dst, to)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(grown) != 1 || grown[0].Addr != to.Addr() || grown[0].Port != to.Port() || grown[0].Proto != evidence.TCP {
				t.Errorf("OnGrow heard %v, want %v", grown, to)
			}
		})
	}
}
