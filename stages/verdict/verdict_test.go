package verdict_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/prose"
)

var (
	flow   = evidence.Flow{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080, Proto: evidence.TCP}
	client = netip.MustParseAddrPort("198.51.100.1:40000")
	server = netip.MustParseAddrPort("198.51.100.2:8080")
)

func drop(reason, fn string, stack ...string) evidence.Drop {
	return evidence.Drop{Reason: reason, Function: fn, Location: fn + "+0x10", Netns: 1, Iface: "eth0",
		Src: client, Dst: server, Stack: stack}
}

func ev(in, out int, drops []evidence.Drop, traces ...evidence.Trace) *evidence.Evidence {
	return &evidence.Evidence{
		Flow:     flow,
		Netns:    evidence.Netns{Inode: 1},
		Arrival:  &evidence.Arrival{In: in, Out: out},
		Firewall: &evidence.Firewall{Installed: true, Removed: true, Traces: traces},
		Kernel:   &evidence.KernelDrop{Drops: drops, ReasonsFromBTF: true},
	}
}

// socketTook adds the path's evidence that a socket took the flow's packets.
func socketTook(e *evidence.Evidence) *evidence.Evidence {
	e.Path = &evidence.Path{Attached: []string{evidence.PointSockState},
		Counts: []evidence.PointCount{{Point: evidence.PointSockState, Netns: 1, Events: 3}}}
	return e
}

// TestJudge: crafted evidence gets its outcome, stage and reason, and the words package
// prose writes from the verdict name what matters.
func TestJudge(t *testing.T) {
	t.Parallel()
	policyDrop := evidence.TraceStep{Type: "policy", Family: "ip", Table: "filter", Chain: "INPUT", Verdict: "drop"}
	ruleDrop := evidence.TraceStep{Type: "rule", Family: "inet", Table: "guard", Chain: "fwd", Handle: 7, Rule: "tcp dport 8080 drop", Verdict: "drop"}
	bridgeDrop := evidence.TraceStep{Type: "rule", Family: "bridge", Table: "bguard", Chain: "input", Handle: 3, Rule: "tcp dport 8080 drop", Verdict: "drop"}
	elsewhere := drop("NETFILTER_DROP", "nft_do_chain")
	elsewhere.Netns, elsewhere.NetnsName, elsewhere.Elsewhere = 99, "client", true

	cases := []struct {
		name    string
		ev      *evidence.Evidence
		outcome verdict.Outcome
		stage   verdict.Stage
		reason  string
		summary string // a part the summary must contain
		fix     string // a part the fix must contain
	}{
		{"no socket", ev(1, 1, []evidence.Drop{drop("NO_SOCKET", "tcp_v4_rcv")}),
			verdict.Dropped, verdict.Socket, "NO_SOCKET", "nothing listens", "port 8080"},
		{"rp_filter names the interface", ev(1, 0, []evidence.Drop{drop("IP_RPFILTER", "ip_rcv_finish_core")}),
			verdict.Dropped, verdict.Routing, "IP_RPFILTER", "reverse-path", "net.ipv4.conf.eth0.rp_filter=2"},
		{"netfilter drop staged by the trace's hook", ev(1, 0, []evidence.Drop{drop("NETFILTER_DROP", "nft_do_chain", "nft_do_chain+0x1", "nf_hook_slow+0x2", "ip_local_deliver+0x3")},
			evidence.Trace{Family: "inet", Hook: "forward", Verdict: "drop", DroppedBy: &ruleDrop}),
			verdict.Dropped, verdict.Forward, "NETFILTER_DROP", "`tcp dport 8080 drop`", "nft delete rule inet guard fwd handle 7"},
		{"netfilter drop staged by the stack without a trace", ev(1, 0, []evidence.Drop{drop("NETFILTER_DROP", "nft_do_chain", "nft_do_chain+0x1", "nft_do_chain_ipv4+0x1", "nf_hook_slow+0x2", "ip_rcv+0x3")}),
			verdict.Dropped, verdict.Prerouting, "NETFILTER_DROP", "dropped", "nft -a list ruleset"},
		{"bridge family drop is ingress", ev(1, 0, []evidence.Drop{drop("NETFILTER_DROP", "nft_do_chain")},
			evidence.Trace{Family: "bridge", Hook: "input", Verdict: "drop", DroppedBy: &bridgeDrop}),
			verdict.Dropped, verdict.Ingress, "NETFILTER_DROP", "table bridge bguard", "nft delete rule bridge bguard input handle 3"},
		{"policy drop from the trace alone", ev(1, 0, nil, evidence.Trace{Family: "ip", Hook: "input", Verdict: "drop", DroppedBy: &policyDrop}),
			verdict.Dropped, verdict.Input, "NETFILTER_DROP", "drop policy", "nft add rule ip filter INPUT tcp dport 8080 accept"},
		{"unknown reason staged by the stack", ev(1, 0, []evidence.Drop{drop("BRAND_NEW_REASON", "mystery_fn", "mystery_fn+0x1", "ip_forward+0x20")}),
			verdict.Dropped, verdict.Forward, "BRAND_NEW_REASON", "BRAND_NEW_REASON", "mystery_fn"},
		{"no reason at neigh_invalidate is a neighbour failure", ev(0, 2, []evidence.Drop{drop("NOT_SPECIFIED", "neigh_invalidate")}),
			verdict.Dropped, verdict.Egress, "NOT_SPECIFIED", "neighbour resolution", "ip neigh show dev eth0"},
		{"teardown noise on an answered flow", socketTook(ev(5, 4, []evidence.Drop{drop("NOT_SPECIFIED", "tcp_v4_rcv")})),
			verdict.Delivered, verdict.Socket, "", "delivered", "nothing to fix"},
		{"queue purge at close on an answered flow", socketTook(ev(4, 3, []evidence.Drop{drop("QUEUE_PURGE", "sk_stream_kill_queues")})),
			verdict.Delivered, verdict.Socket, "", "delivered", "nothing to fix"},
		{"queue purge on an unanswered flow is a drop", ev(1, 0, []evidence.Drop{drop("QUEUE_PURGE", "sk_stream_kill_queues")}),
			verdict.Dropped, verdict.Socket, "QUEUE_PURGE", "destroyed", "closed the connection"},
		{"nothing arrived", ev(0, 0, nil),
			verdict.NotArrived, verdict.Arrival, "", "upstream", "check the sender"},
		{"dropped in another namespace never arrived here", ev(0, 0, []evidence.Drop{elsewhere}),
			verdict.NotArrived, verdict.Arrival, "", "namespace client (99)", "ip netns exec client diagnose --flow 198.51.100.2:8080"},
		{"no capture, no drop", &evidence.Evidence{Flow: flow, Arrival: &evidence.Arrival{Error: "socket: permission denied"}},
			verdict.Inconclusive, verdict.Arrival, "", "Inconclusive", "capture error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := verdict.Judge(c.ev)
			text := prose.Write(c.ev, v)
			if v.Outcome != c.outcome || v.Stage != c.stage || v.Reason != c.reason {
				t.Fatalf("got %s/%s/%q, want %s/%s/%q (%s)", v.Outcome, v.Stage, v.Reason, c.outcome, c.stage, c.reason, text.Summary)
			}
			if !strings.Contains(text.Summary, c.summary) {
				t.Errorf("summary %q lacks %q", text.Summary, c.summary)
			}
			if !strings.Contains(text.Fix, c.fix) {
				t.Errorf("fix %q lacks %q", text.Fix, c.fix)
			}
			if (v.Outcome == verdict.Dropped) != (v.Reason != "") {
				t.Errorf("reason %v with outcome %s: reason is set exactly when dropped", v.Reason, v.Outcome)
			}
		})
	}
}

// The tcx capture's count of every packet it looked at tells a quiet interface from a
// flow that goes elsewhere; the packet socket has no such count, and nothing is said.
func TestJudgeNotArrivedLiveCapture(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		method string
		seen   uint64
		note   string
	}{
		{"tcx", 0, "no packet of any flow passed this network namespace's interfaces"},
		{"tcx", 1234, "the capture was live: 1234 packet(s) of other flows passed this network namespace's interfaces"},
		{"AF_PACKET socket", 0, ""},
	} {
		e := ev(0, 0, nil)
		e.Arrival.Method, e.Arrival.Seen = c.method, c.seen
		v := verdict.Judge(e)
		notes := strings.Join(prose.Write(e, v).Notes, "\n")
		if v.Outcome != verdict.NotArrived || c.note != "" && !strings.Contains(notes, c.note) || c.note == "" && strings.Contains(notes, "passed") {
			t.Errorf("%s, seen %d: %s, notes %q; want not arrived, noting %q", c.method, c.seen, v.Outcome, notes, c.note)
		}
	}
}

func TestJudgeNotesLoss(t *testing.T) {
	t.Parallel()
	e := ev(1, 1, nil)
	e.Kernel.Lost = 3
	e.Firewall.Lost = 2
	notes := strings.Join(prose.Write(e, verdict.Judge(e)).Notes, "\n")
	if !strings.Contains(notes, "3 kernel drop event(s)") || !strings.Contains(notes, "2 nftables trace message(s)") {
		t.Errorf("losses not noted: %q", notes)
	}
}

func TestJudgeMostFrequentSite(t *testing.T) {
	t.Parallel()
	e := ev(3, 0, []evidence.Drop{
		drop("TCP_OLD_DATA", "tcp_validate_incoming"),
		drop("SOCKET_RCVBUFF", "tcp_data_queue"),
		drop("SOCKET_RCVBUFF", "tcp_data_queue"),
	})
	v := verdict.Judge(e)
	if v.Reason != "SOCKET_RCVBUFF" || v.Drops != 3 {
		t.Fatalf("got %s with %d drops, want SOCKET_RCVBUFF with 3", v.Reason, v.Drops)
	}
	if want := (verdict.Site{Reason: "TCP_OLD_DATA", Function: "tcp_validate_incoming", Count: 1}); len(v.Others) != 1 || v.Others[0] != want {
		t.Errorf("other sites %+v, want %+v", v.Others, want)
	}
	if notes := prose.Write(e, v).Notes; len(notes) == 0 || !strings.Contains(notes[0], "TCP_OLD_DATA") {
		t.Errorf("the other site is not noted: %v", notes)
	}
}

func TestJudgeFatesDiffer(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	pkt := func(ms int, flags string) evidence.Packet {
		return evidence.Packet{Time: t0.Add(time.Duration(ms) * time.Millisecond), Iface: "eth0", Direction: evidence.In, Src: client, Dst: server, Flags: flags}
	}
	data := drop("NETFILTER_DROP", "nft_do_chain", "nft_do_chain+0x1", "nf_hook_slow+0x2", "ip_local_deliver+0x3")
	data.Flags, data.Time = "P.", t0.Add(20*time.Millisecond+50*time.Microsecond)
	e := ev(3, 1, []evidence.Drop{data})
	e.Arrival.Packets = []evidence.Packet{pkt(0, "S"), pkt(10, "."), pkt(20, "P."),
		{Time: t0.Add(time.Millisecond), Direction: evidence.Out, Src: server, Dst: client, Flags: "S."}}
	v := verdict.Judge(e)
	if v.Outcome != verdict.Dropped || v.Stage != verdict.Input {
		t.Fatalf("got %s/%s, want dropped/input", v.Outcome, v.Stage)
	}
	if summary, want := prose.Write(e, v).Summary, "fates differ: 1 ACK(s) and 1 SYN(s) got through, 1 data segment(s) dropped"; !strings.Contains(summary, want) {
		t.Errorf("summary %q lacks %q", summary, want)
	}
	got := []string{}
	for _, f := range v.Fates {
		got = append(got, f.Flags+":"+f.Fate)
	}
	if strings.Join(got, " ") != "S:not_dropped .:not_dropped P.:dropped S.:sent" {
		t.Errorf("fates %v", got)
	}
}

// TestPacketFatesFirewallOnly: a packet that its trace shows dropped, with no kernel drop
// event, is told apart from one not dropped, at the stage the verdict gives such a drop
// (a bridge-family hook is ingress), while its Fate stays not_dropped: Fates count kernel
// drop events only.
func TestPacketFatesFirewallOnly(t *testing.T) {
	step := evidence.TraceStep{Type: "rule", Family: "bridge", Table: "bguard", Chain: "fwd", Handle: 3, Verdict: "drop"}
	e := ev(1, 0, nil, evidence.Trace{ID: 1, Family: "bridge", Hook: "forward", Iif: "eth0", Src: client, Dst: server, Verdict: "drop", DroppedBy: &step})
	p := evidence.Packet{Time: time.Unix(1_800_000_000, 0), Iface: "eth0", Direction: evidence.In, Src: client, Dst: server, Flags: "S"}
	e.Arrival.Packets = []evidence.Packet{p}
	v := verdict.Judge(e)
	if v.Outcome != verdict.Dropped || v.Stage != verdict.Ingress || v.Drop != nil || v.Cause != verdict.ByRule {
		t.Fatalf("verdict %s/%s, drop %v, cause %q; want dropped in ingress by the rule, no drop event", v.Outcome, v.Stage, v.Drop, v.Cause)
	}
	f := verdict.PacketFates(e, v)(p)
	if f.Seen != verdict.SeenFirewallDrop || f.Stage != verdict.Ingress || len(f.Traces) != 1 {
		t.Errorf("packet fate %+v, want a firewall drop in ingress with its trace", f)
	}
	if len(v.Fates) != 1 || v.Fates[0].Fate != "not_dropped" {
		t.Errorf("fates %+v, want one not_dropped", v.Fates)
	}
}

// Packets that arrived and were not dropped are delivered only when a socket took them;
// routed out of the host they are forwarded, with the route; with no word from the path
// stage nobody can tell, and the host's answers prove nothing (a reset answers too).
func TestJudgeArrivedNotDropped(t *testing.T) {
	t.Parallel()
	forward := ev(3, 2, nil)
	forward.Path = &evidence.Path{Attached: []string{evidence.PointSockState, evidence.PointRoute},
		Events: []evidence.PathEvent{
			{Point: evidence.PointRoute, Netns: 1, Iif: "eth0", Oif: "eth1", Gateway: "203.0.113.254", Table: 254},
		}}
	local := ev(3, 2, nil)
	local.Path = &evidence.Path{Attached: []string{evidence.PointSockState, evidence.PointRoute},
		Events: []evidence.PathEvent{{Point: evidence.PointRoute, Netns: 1, Iif: "eth0", Oif: "eth0", Table: 255}}}
	noPath := ev(3, 2, nil)
	for _, c := range []struct {
		name    string
		ev      *evidence.Evidence
		outcome verdict.Outcome
		cause   verdict.Cause
		words   string
	}{
		{"a socket took them", socketTook(ev(3, 2, nil)), verdict.Delivered, verdict.ByReason, "was delivered"},
		{"routed out", forward, verdict.Forwarded, verdict.RoutedOut, "routed out via eth1 toward 203.0.113.254 (route table 254)"},
		{"answered, no socket took them", local, verdict.Inconclusive, verdict.Vanished, "no socket received them"},
		{"no path stage", noPath, verdict.Inconclusive, verdict.NoPath, "cannot tell whether a socket took them"},
	} {
		v := verdict.Judge(c.ev)
		summary := prose.Write(c.ev, v).Summary
		if v.Outcome != c.outcome || v.Cause != c.cause || !strings.Contains(summary, c.words) {
			t.Errorf("%s: %s (cause %q): %s; want %s (cause %q) saying %q", c.name, v.Outcome, v.Cause, summary, c.outcome, c.cause, c.words)
		}
	}
}

// Intermittent loss is told as a proportion: a rule that drops 2% at random does not make
// the whole flow "dropped" without a word on the rest.
func TestJudgePartialLoss(t *testing.T) {
	t.Parallel()
	rule := evidence.TraceStep{Type: "rule", Family: "inet", Table: "chaos", Chain: "input", Handle: 4,
		Rule: "udp dport 8080 numgen random mod 100 < 2 drop", Verdict: "drop"}
	drops := make([]evidence.Drop, 109)
	for i := range drops {
		drops[i] = drop("NETFILTER_DROP", "nft_do_chain", "nft_do_chain+0x1", "nf_hook_slow+0x2", "ip_local_deliver+0x3")
	}
	trace := evidence.Trace{Family: "ip", Hook: "input", Verdict: "drop", DroppedBy: &rule, Steps: []evidence.TraceStep{rule}}
	for _, c := range []struct {
		name string
		ev   *evidence.Evidence
		want string
	}{
		{"the rest not dropped", ev(5000, 0, drops, trace),
			"109 of the 5000 packets of 198.51.100.2:8080/tcp that arrived (2.2%) were dropped by the firewall in input: rule `udp dport 8080 numgen random mod 100 < 2 drop` in table inet chaos, chain input (handle 4); the other 4891 were not dropped."},
		{"the rest delivered", socketTook(ev(5000, 0, drops, trace)), "; the other 4891 were delivered."},
		{"every packet", ev(109, 0, drops, trace), "198.51.100.2:8080/tcp was dropped by the firewall in input"},
	} {
		v := verdict.Judge(c.ev)
		if s := prose.Write(c.ev, v).Summary; !strings.Contains(s, c.want) {
			t.Errorf("%s: summary %q, want it to say %q", c.name, s, c.want)
		}
	}
}

// A NETFILTER_DROP the trace did not see is iptables-legacy's rule when its counters name
// exactly one that could have dropped the flow at that hook; with two, neither is named and
// both are noted.
func TestJudgeLegacyRule(t *testing.T) {
	t.Parallel()
	step := func(chain string, n int, rule string) evidence.TraceStep {
		return evidence.TraceStep{Type: "rule", Family: "ip", Table: "filter", Chain: chain, Number: n, Rule: rule, Syntax: "iptables", Backend: "legacy", Verdict: "drop"}
	}
	guard := evidence.LegacyRule{Step: step("GUARD", 2, "-A GUARD -p tcp -m tcp --dport 8080 -j DROP"), Hooks: []string{"input"}, Packets: 3, MatchesFlow: true}
	forward := evidence.LegacyRule{Step: step("FORWARD", 1, "-A FORWARD -j DROP"), Hooks: []string{"forward"}, Packets: 9, MatchesFlow: true}
	v6 := evidence.LegacyRule{Step: step("INPUT", 1, "-A INPUT -j DROP"), Hooks: []string{"input"}, Packets: 1, MatchesFlow: true}
	v6.Step.Family, v6.Step.Syntax = "ip6", "ip6tables"
	nfDrop := drop("NETFILTER_DROP", "nf_hook_slow", "nf_hook_slow", "ip_local_deliver", "ip_rcv")
	judge := func(grown ...evidence.LegacyRule) (verdict.Verdict, prose.Text) {
		e := ev(3, 0, []evidence.Drop{nfDrop, nfDrop, nfDrop})
		e.Firewall.Legacy = &evidence.Legacy{Tables: []string{"ip filter", "ip6 filter"}, Rules: 4, Grown: grown}
		v := verdict.Judge(e)
		return v, prose.Write(e, v)
	}

	v, text := judge(guard, forward, v6)
	if v.Stage != verdict.Input || v.Rule == nil || v.Rule.Chain != "GUARD" || v.Cause != verdict.ByRule {
		t.Fatalf("verdict %s, rule %+v: want input, GUARD's rule", v.Stage, v.Rule)
	}
	if !strings.Contains(text.Summary, "by the firewall (iptables-legacy) in input: rule `-A GUARD -p tcp -m tcp --dport 8080 -j DROP`") ||
		!strings.Contains(text.Fix, "`iptables -t filter -D GUARD 2`") {
		t.Errorf("summary/fix do not name the legacy rule:\n%s\n%s", text.Summary, text.Fix)
	}

	other := guard
	other.Step = step("INPUT", 4, "-A INPUT -p tcp -j DROP")
	v, text = judge(guard, other)
	if v.Rule != nil || len(v.LegacySuspects) != 2 {
		t.Fatalf("rule %+v with suspects %+v: want none named, two suspects", v.Rule, v.LegacySuspects)
	}
	if n := strings.Join(text.Notes, "\n"); !strings.Contains(n, "2 iptables-legacy rules that could each have dropped it") || !strings.Contains(n, "-A INPUT -p tcp -j DROP") {
		t.Errorf("the suspects are not noted: %s", n)
	}
}
