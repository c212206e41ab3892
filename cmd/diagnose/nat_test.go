package main

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

// A port of the host published to a container (DNAT to a namespace behind a veth) where
// nothing listens: the kernel drops the packet in the container's namespace, and the
// verdict says so, with the translation, instead of "delivered" for the reset that came
// back.
func TestE2EDNATToContainer(t *testing.T) {
	t.Parallel()
	dnatToContainer(t, "dnc", "dnat_to_container_", func(t *testing.T, s *scenario, v6 bool, to string) {
		s.publish(t, v6, to)
	})
}

// The same DNAT written with iptables-legacy: conntrack translates the connection the
// same way, whichever firewall asked for it, and the verdict follows it into the
// container.
func TestE2EDNATToContainerLegacy(t *testing.T) {
	t.Parallel()
	dnatToContainer(t, "dnl", "", func(t *testing.T, s *scenario, v6 bool, to string) {
		tool := "iptables-legacy"
		if v6 {
			tool = "ip6tables-legacy"
		}
		s.pair.InServer(t, testns.Tool(t, tool), "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", fmt.Sprint(s.port), "-j", "DNAT", "--to-destination", to)
	})
}

// dnatToContainer runs, for each family, a flow that publish DNATs to port 80 of a
// container namespace where nothing listens, and checks the verdict; record, when not
// empty, names its recorded reports (the family appended).
func dnatToContainer(t *testing.T, tag, record string, publish func(t *testing.T, s *scenario, v6 bool, to string)) {
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, tag, v6, "tcp")
		ctr := s.pair.AddContainer(t, tag)
		to := testns.ContainerV4 + ":80"
		if v6 {
			to = "[" + testns.ContainerV6 + "]:80"
		}
		publish(t, s, v6, to)
		name := ""
		if record != "" {
			name = record + family(v6)
		}
		rep := s.diagnose(t, name, s.fromClient(connect))
		expectDNATNoListener(t, rep, to, "network namespace "+ctr, ctr)
	})
}

// expectDNATNoListener checks the verdict on a flow DNATed to to, where nothing listens in
// the namespace named where (summary) and named (the fix): dropped there with NO_SOCKET,
// the translation said, the fix about port 80 there, the DNAT in the evidence.
func expectDNATNoListener(t *testing.T, rep *report.Report, to, where, named string) {
	t.Helper()
	expectTranslatedNoListener(t, rep, "DNAT", to, where, named)
}

// expectTranslatedNoListener is expectDNATNoListener for a translation of kind kind (DNAT,
// or DNAT+SNAT where a masquerade changed the source too).
func expectTranslatedNoListener(t *testing.T, rep *report.Report, kind, to, where, named string) {
	t.Helper()
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	v := rep.Verdict
	for _, want := range []string{"sent by " + kind + " to " + to, where} {
		if !strings.Contains(v.Summary, want) {
			t.Errorf("summary %q does not say %q", v.Summary, want)
		}
	}
	if !strings.Contains(v.Fix, "port 80") || !strings.Contains(v.Fix, named) {
		t.Errorf("fix %q is not about port 80 in %s", v.Fix, named)
	}
	k := rep.Stages.KernelDrop
	if k == nil || len(k.Translations) != 1 || k.Translations[0].Kind != kind {
		t.Fatalf("not one %s in the kernel drop evidence: %+v", kind, k)
	}
}

// A flow for a container behind this host, with a listener there: this host routes the
// packets on, and a socket in the container takes them. The verdict says delivered there,
// with the route that took them, not "forwarded" out of a host they never left, nor
// "delivered" here for the answers that pass through.
func TestE2EForwardedToContainer(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "fwd", v6, "tcp")
		ctr := s.pair.AddContainer(t, "fwd")
		addr, net, via := testns.ContainerV4, "203.0.113.0/24", testns.ServerV4
		if v6 {
			addr, net, via = testns.ContainerV6, "2001:db8:1::/64", testns.ServerV6
		}
		s.pair.InClient(t, "ip", "route", "add", net, "via", via)
		defer s.listenOn(t, ctr, addr)()
		flow := fmt.Sprintf("%s:%d", addr, s.port)
		if v6 {
			flow = fmt.Sprintf("[%s]:%d", addr, s.port)
		}
		repro := []string{"ip", "netns", "exec", s.pair.Client, "timeout", "3", "bash", "-c",
			fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && echo hello >&3; exec 3>&-; true", addr, s.port)}
		rep := s.diagnoseIn(t, s.pair.Server, flow, "forwarded_to_container_"+family(v6), repro)
		expect(t, rep, verdict.Delivered, verdict.Socket, "")
		for _, want := range []string{"delivered in network namespace " + ctr, "routed there via " + testns.HostSideIface} {
			if !strings.Contains(rep.Verdict.Summary, want) {
				t.Errorf("summary %q does not say %q", rep.Verdict.Summary, want)
			}
		}
		// The capture followed the flow's own address there before the first packet
		// (tcx only: the packet socket stays in the namespace diagnosed).
		if rep.Stages.Arrival.Method == evidence.CaptureTCX {
			in := 0
			for _, c := range rep.Stages.Arrival.Counts {
				if c.Netns == testns.Inode(t, ctr) && c.Iface == testns.ContainerIface && c.Direction == evidence.In {
					in = c.Packets
				}
			}
			if in == 0 || in != rep.Stages.Arrival.Toward {
				t.Errorf("%d packets captured on their way into the container, %d arrived here for it: want all of them", in, rep.Stages.Arrival.Toward)
			}
		}
	})
}

// A rule that drops 2% of a flow's datagrams at random: the verdict names the rule and
// says how many of how many, and that the rest were delivered.
func TestE2EIntermittentLoss(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "rnd", false, "udp")
	s.nft(t, s.pair.Server, `table inet pmt_chaos {
	chain input { type filter hook input priority filter; policy accept; udp dport PORT numgen random mod 100 < 2 counter drop; }
}`)
	defer s.listenUDP(t)()
	// Not recorded: every datagram is traced, which makes a report of megabytes;
	// TestJudgePartialLoss judges the same case from crafted evidence. The reproduction's
	// timeout may end the loop early on a slow machine (the 6.1 VM emulates its CPU): the
	// proportion is of what arrived. With 1000 datagrams, none dropped at 2% is a
	// one-in-a-billion run.
	rep := s.diagnose(t, "", s.fromClient(`exec 3<>/dev/udp/ADDR/PORT && for i in $(seq 1000); do echo x >&3; done; sleep 0.2`))
	a := rep.Stages.Arrival
	if a == nil || a.In < 200 {
		t.Fatalf("arrival %+v: too few datagrams arrived for a 2%% loss to show", a)
	}
	expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
	// "Delivered" needs a socket seen taking the datagrams. Where the kernel has no
	// sock:sk_data_ready (before 6.3) none was seen in this test (6.1 in CI), and the rest
	// is only "not dropped".
	rest := "were not dropped."
	if testns.HasTracepoint("sk_data_ready") {
		rest = "were delivered."
	}
	if want := fmt.Sprintf("of the %d packets of %s that arrived (", a.In, rep.Flow); !strings.Contains(rep.Verdict.Summary, want) ||
		!strings.Contains(rep.Verdict.Summary, rest) {
		t.Errorf("summary %q does not say what part was dropped and that the rest %s", rep.Verdict.Summary, rest)
	}
}

// --netns diagnoses another namespace without `ip netns exec`: by name, and by the PID of
// a process in it, as on a Kubernetes node.
func TestE2ENetnsFlag(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "nsf", false, "tcp")
	sleeper := exec.Command("ip", "netns", "exec", s.pair.Server, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	for _, spec := range []string{s.pair.Server, fmt.Sprintf("pid:%d", sleeper.Process.Pid)} {
		rep := s.diagnoseFrom(t, spec, s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
		if rep.Host.Netns.Inode != testns.Inode(t, s.pair.Server) || rep.Verdict.Drops == 0 {
			t.Errorf("--netns %s: diagnosed namespace %+v, %d drops; want the server's", spec, rep.Host.Netns, rep.Verdict.Drops)
		}
	}
	// A namespace that does not exist is a usage error, before anything is installed.
	for _, args := range [][]string{{"--netns", "pmt-none-xyz"}, {"--container", "pmt-none-xyz"}} {
		out, err := exec.Command(binary, append(args, "--flow", s.flowArg(), "--yes")...).CombinedOutput()
		if exitStatus(err) != 2 || !strings.Contains(string(out), args[0]) {
			t.Errorf("%s of nothing: exit %d, %s", args[0], exitStatus(err), out)
		}
	}
}

// A container's namespace that no `ip netns` name holds is named by who holds it: here a
// process, as a container runtime's would be by its container.
func TestE2EDNATToUnnamedNamespace(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "dnu", false, "tcp")
	ctr := s.pair.AddContainer(t, "dnu")
	holder := exec.Command("ip", "netns", "exec", ctr, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	inode := testns.Inode(t, ctr)
	// Wait for sleep to be in it, then drop the name: the namespace lives on in sleep.
	deadline := time.Now().Add(2 * time.Second)
	for testns.InodeOfPID(holder.Process.Pid) != inode && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	testns.Run(t, "ip", "netns", "delete", ctr)
	s.publish(t, false, testns.ContainerV4+":80")
	rep := s.diagnose(t, "", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	if want := fmt.Sprintf("the network namespace of pid %d (sleep)", holder.Process.Pid); !strings.Contains(rep.Verdict.Summary, want) {
		t.Errorf("summary %q does not say %q", rep.Verdict.Summary, want)
	}
}

// A firewall drop inside the container's own namespace, after the host's DNAT: the verdict
// names the drop there, and its rule, from the trace that followed the flow into that
// namespace (the host's trace cannot see its rules), removed afterwards like the host's.
func TestE2EContainerFirewallDrop(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "dcf", false, "tcp")
	ctr := s.pair.AddContainer(t, "dcf")
	s.publish(t, false, testns.ContainerV4+":80")
	s.nft(t, ctr, `table inet pmt_guard {
	chain input { type filter hook input priority filter; policy accept; tcp dport 80 drop; }
}`)
	// The first SYN taught the translation, and went on before the trace there began: the
	// client's retransmission a second later is traced there.
	rep := s.diagnose(t, "container_firewall_drop", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
	v := rep.Verdict
	for _, want := range []string{"network namespace " + ctr, "tcp dport 80 drop", "table inet pmt_guard"} {
		if !strings.Contains(v.Summary, want) {
			t.Errorf("summary %q does not say %q", v.Summary, want)
		}
	}
	if want := "ip netns exec " + ctr + " nft delete rule inet pmt_guard input handle"; !strings.Contains(v.Fix, want) {
		t.Errorf("fix %q does not say %q", v.Fix, want)
	}
	there := rep.Stages.Firewall.Other(testns.Inode(t, ctr))
	if there == nil || !there.Installed || !there.Removed || there.NetnsName != ctr {
		t.Fatalf("no trace of the container's namespace, or not removed: %+v", rep.Stages.Firewall)
	}
	tables := 0
	for _, in := range rep.Run.Installed {
		if strings.Contains(in.What, "nftables trace table") {
			tables++
		}
	}
	if tables != 2 {
		t.Errorf("%d trace tables reported installed, want the host's and the container's: %+v", tables, rep.Run.Installed)
	}
	if out := testns.Run(t, "ip", "netns", "exec", ctr, "nft", "list", "tables"); strings.Contains(out, "packetmortem") {
		t.Errorf("a trace table is left in the container's namespace:\n%s", out)
	}
	// The capture followed the flow there too (tcx only: the packet socket stays in the
	// namespace diagnosed), on the container's own interface.
	if rep.Stages.Arrival.Method == evidence.CaptureTCX {
		there := 0
		for _, p := range rep.Stages.Arrival.Packets {
			if p.Netns == testns.Inode(t, ctr) && p.Iface == testns.ContainerIface && p.Direction == evidence.In {
				there++
			}
		}
		if there == 0 {
			t.Errorf("no packet captured on its way into the container: %+v", rep.Stages.Arrival.Packets)
		}
	}
}

// The same drop in the container's namespace written with iptables-legacy, which no trace
// sees: the rule is named from the container's own tables, read as the flow was followed
// there and at the end, never from the host's.
func TestE2EContainerLegacyFirewallDrop(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "dcl", false, "tcp")
	ctr := s.pair.AddContainer(t, "dcl")
	s.publish(t, false, testns.ContainerV4+":80")
	testns.Run(t, "ip", "netns", "exec", ctr, testns.Tool(t, "iptables-legacy"), "-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP")
	rep := s.diagnose(t, "", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
	v := rep.Verdict
	if r := v.Rule; r == nil || r.Backend != "legacy" || r.Rule != "-A INPUT -p tcp -m tcp --dport 80 -j DROP" {
		t.Fatalf("rule %+v, want the container's iptables-legacy rule", r)
	}
	for _, want := range []string{"the firewall (iptables-legacy) of network namespace " + ctr} {
		if !strings.Contains(v.Summary, want) {
			t.Errorf("summary %q does not say %q", v.Summary, want)
		}
	}
	if want := "`ip netns exec " + ctr + " iptables -t filter -D INPUT 1`"; !strings.Contains(v.Fix, want) {
		t.Errorf("fix %q does not say %q", v.Fix, want)
	}
}

// A container's outbound connection, masqueraded by the host and dropped on its way out
// after the translation: the flow is the remote service, and the drop is the host's, with
// the SNAT reported.
func TestE2EMasqueradedOutboundDrop(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "msq", false, "tcp")
	ctr := s.pair.AddContainer(t, "msq")
	s.nft(t, s.pair.Server, `table ip pmt_masq {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth0" masquerade; }
	chain late { type filter hook postrouting priority 300; policy accept; ip daddr `+testns.ClientV4+` tcp dport PORT drop; }
}`)
	flow := fmt.Sprintf("%s:%d", testns.ClientV4, s.port)
	repro := []string{"ip", "netns", "exec", ctr, "timeout", "3", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && echo hello >&3; exec 3>&-; true", testns.ClientV4, s.port)}
	rep := s.diagnoseIn(t, s.pair.Server, flow, "", repro)
	expect(t, rep, verdict.Dropped, verdict.Postrouting, "NETFILTER_DROP")
	k := rep.Stages.KernelDrop
	if k == nil || len(k.Translations) == 0 || k.Translations[0].Kind != "SNAT" {
		t.Errorf("no SNAT among the translations: %+v", k)
	}
}

// TestE2EFloodThroughDNAT: a flood of other datagrams DNATed into the same container as the
// flow, each one translated, forwarded and dropped there, changes nothing: the flow's verdict
// is right, no drop and no translation of the flood reaches user space, though the learning
// program reads every flood packet's conntrack entry. Serial, as TestE2EFlood.
func TestE2EFloodThroughDNAT(t *testing.T) {
	s := newScenario(t, "fdn", false, "tcp")
	ctr := s.pair.AddContainer(t, "fdn")
	floodPort := s.port + 1
	s.nft(t, s.pair.Server, fmt.Sprintf(`table ip pmt_publish {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport PORT dnat to %[1]s:80
		udp dport %[2]d dnat to %[1]s:9
	}
}`, testns.ContainerV4, floodPort))
	// Sockets of the client's namespace, opened there (a goroutine would open them in the
	// test's own): each is a connection of its own, a conntrack entry and a DNAT of its own,
	// as a flood of clients makes. Unconnected, so that the ICMP port unreachables coming
	// back do not fail the next send.
	var socks []net.PacketConn
	testns.Do(t, s.pair.Client, func() {
		for range 200 {
			c, err := net.ListenPacket("udp4", testns.ClientV4+":0")
			if err != nil {
				t.Errorf("flood socket: %v", err)
				return
			}
			socks = append(socks, c)
		}
	})
	t.Cleanup(func() {
		for _, c := range socks {
			c.Close()
		}
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	to := &net.UDPAddr{IP: net.ParseIP(testns.ServerV4), Port: int(floodPort)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := socks[i%len(socks)].WriteTo([]byte("flood"), to); err == nil {
				sent.Add(1)
			}
		}
	}()
	rep := s.diagnose(t, "", s.fromClient(connect))
	close(stop)
	wg.Wait()
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	if want := "network namespace " + ctr; !strings.Contains(rep.Verdict.Summary, want) {
		t.Errorf("summary %q does not say %q", rep.Verdict.Summary, want)
	}
	k := rep.Stages.KernelDrop
	if k.Seen < 1000 || k.Matched > 20 {
		t.Errorf("kfree_skb saw %d events and matched %d during a flood of %d datagrams: want the flood seen and filtered out", k.Seen, k.Matched, sent.Load())
	}
	for _, d := range k.Drops {
		if d.Dst.Port() == floodPort || d.Src.Port() == floodPort || d.Dst.Port() == 9 {
			t.Errorf("a drop of the flood reached the report: %+v", d)
		}
	}
	for _, tr := range k.Translations {
		if tr.Orig.Dst.Port() != s.port && tr.Orig.Src.Port() != s.port {
			t.Errorf("a translation of the flood reached the report: %+v", tr)
		}
	}
}

// A DNAT to another port of this same namespace, where nothing listens: the packet dies in
// this namespace's socket lookup, and the fix is about the port it was sent to, not the
// one the client asked for.
func TestE2EDNATToClosedLocalPort(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "dnl", v6, "tcp")
		to := s.port + 1
		table, dest := "ip", fmt.Sprintf("%s:%d", testns.ServerV4, to)
		if v6 {
			table, dest = "ip6", fmt.Sprintf("[%s]:%d", testns.ServerV6, to)
		}
		s.nft(t, s.pair.Server, fmt.Sprintf(`table %s pmt_local {
	chain pre { type nat hook prerouting priority dstnat; policy accept; tcp dport PORT dnat to %s; }
}`, table, dest))
		rep := s.diagnose(t, "", s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
		v := rep.Verdict
		if want := "sent by DNAT to " + dest; !strings.Contains(v.Summary, want) {
			t.Errorf("summary %q does not say %q", v.Summary, want)
		}
		if !strings.Contains(v.Fix, fmt.Sprintf("port %d", to)) || strings.Contains(v.Fix, fmt.Sprintf("port %d", s.port)) {
			t.Errorf("fix %q is not about port %d alone", v.Fix, to)
		}
		if len(rep.Verdict.Journey) > 1 || rep.Stages.KernelDrop.Drops[0].Elsewhere {
			t.Errorf("the drop is not this namespace's: journey %+v", rep.Verdict.Journey)
		}
	})
}

// A container on a bridge of this host, as Docker makes it, behind a DNAT of the host's
// port and a masquerade of what enters the bridge: the connection is translated at both
// ends, and the packet dies in the container, where nothing listens.
func TestE2EBridgedContainerDNATMasquerade(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "brc", v6, "tcp")
		ctr := s.pair.AddContainer(t, "brc")
		// The host's end of the container's veth becomes a port of br0, which takes its
		// addresses.
		for _, c := range [][]string{
			{"ip", "addr", "flush", "dev", testns.HostSideIface},
			{"ip", "link", "add", "br0", "type", "bridge"},
			{"ip", "link", "set", testns.HostSideIface, "master", "br0"},
			{"ip", "addr", "add", testns.HostSideV4 + "/24", "dev", "br0"},
			{"ip", "-6", "addr", "add", testns.HostSideV6 + "/64", "dev", "br0", "nodad"},
			{"ip", "link", "set", "br0", "up"},
		} {
			testns.Run(t, append([]string{"ip", "netns", "exec", s.pair.Server}, c...)...)
		}
		table, to := "ip", testns.ContainerV4+":80"
		if v6 {
			table, to = "ip6", "["+testns.ContainerV6+"]:80"
		}
		s.nft(t, s.pair.Server, fmt.Sprintf(`table %s pmt_publish {
	chain pre { type nat hook prerouting priority dstnat; policy accept; tcp dport PORT dnat to %s; }
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "br0" masquerade; }
}`, table, to))
		rep := s.diagnose(t, "", s.fromClient(connect))
		expectTranslatedNoListener(t, rep, "DNAT+SNAT", to, "network namespace "+ctr, ctr)
		if j := rep.Verdict.Journey; len(j) != 2 || j[0].Out != "br0" || j[1].Reached == 0 {
			t.Errorf("journey %+v: want the host, left by br0, then the container, reached", j)
		}
	})
}

// A pod on a routed veth (no bridge) behind a service address that no interface has, as
// kube-proxy makes it: the client routes the service address to this host, which DNATs it
// to the pod, where nothing listens.
func TestE2EServiceToRoutedPod(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "svc", v6, "tcp")
		pod := s.pair.AddContainer(t, "svc")
		service, table, to := "203.0.113.200", "ip", testns.ContainerV4+":80"
		if v6 {
			service, table, to = "2001:db8:2::200", "ip6", "["+testns.ContainerV6+"]:80"
		}
		s.pair.InClient(t, "ip", "route", "add", service, "via", s.serverAddr())
		s.nft(t, s.pair.Server, fmt.Sprintf(`table %s pmt_service {
	chain pre { type nat hook prerouting priority dstnat; policy accept; %s daddr %s tcp dport PORT dnat to %s; }
}`, table, table, service, to))
		flow := net.JoinHostPort(service, fmt.Sprint(s.port))
		repro := []string{"ip", "netns", "exec", s.pair.Client, "timeout", "3", "bash", "-c",
			fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && echo hello >&3; exec 3>&-; true", service, s.port)}
		rep := s.diagnoseIn(t, s.pair.Server, flow, "", repro)
		expectDNATNoListener(t, rep, to, "network namespace "+pod, pod)
	})
}

// publish DNATs the flow's port on the server to to (ADDR:PORT), as a published port does.
func (s *scenario) publish(t *testing.T, v6 bool, to string) {
	t.Helper()
	table := "ip"
	if v6 {
		table = "ip6"
	}
	s.nft(t, s.pair.Server, fmt.Sprintf(`table %s pmt_publish {
	chain pre { type nat hook prerouting priority dstnat; policy accept; tcp dport PORT dnat to %s; }
}`, table, to))
}
