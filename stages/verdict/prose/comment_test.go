package prose_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/prose"
)

// recorded reads the evidence of a recorded report: the report's JSON names for the flow,
// the namespace and the stages (package report is not imported, so this test does not
// depend on the renderer).
func recorded(t *testing.T, name string) *evidence.Evidence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "reports", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Flow evidence.Flow `json:"flow"`
		Host struct {
			Netns evidence.Netns `json:"netns"`
		} `json:"host"`
		Stages struct {
			Arrival    *evidence.Arrival    `json:"arrival"`
			Firewall   *evidence.Firewall   `json:"firewall"`
			KernelDrop *evidence.KernelDrop `json:"kernel_drop"`
			Path       *evidence.Path       `json:"path"`
			Host       *evidence.HostState  `json:"host_state"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &evidence.Evidence{Flow: r.Flow, Netns: r.Host.Netns, Arrival: r.Stages.Arrival, Firewall: r.Stages.Firewall,
		Kernel: r.Stages.KernelDrop, Path: r.Stages.Path, Host: r.Stages.Host}
}

// commentAll comments the packets the evidence kept, in capture order.
func commentAll(ev *evidence.Evidence, packets []evidence.Packet) []string {
	comment := prose.Comments(ev, verdict.Judge(ev))
	var out []string
	for _, p := range packets {
		out = append(out, comment(p))
	}
	return out
}

func TestCommentsRecorded(t *testing.T) {
	t.Parallel()
	const (
		pre          = "arrived on veth0; firewall: ip prerouting accept; "
		pre6         = "arrived on veth0; firewall: ip6 prerouting accept; "
		sent         = "sent on veth0; firewall: ip output accept"
		sent6        = "sent on veth0; firewall: ip6 output accept"
		inputV4      = "arrived on veth0; firewall: ip prerouting accept, ip input drop by inet guard input handle 2 `tcp dport 55527 drop`; dropped in input: NETFILTER_DROP at nft_do_chain+0x3e8"
		tcCSUM       = pre + "dropped in socket: TCP_CSUM at tcp_v4_rcv+0x91"
		tcIngr       = "arrived on veth0; dropped in ingress: TC_INGRESS at __netif_receive_skb_core.constprop.0+0x4a1"
		forward      = "arrived on veth0; firewall: ip prerouting accept, ip forward drop by inet router forward handle 2 `tcp dport 23780 drop`; dropped in forward: NETFILTER_DROP at nft_do_chain+0x3e8"
		prerouteDrop = "arrived on veth0; firewall: ip prerouting drop by inet early pre handle 2 `tcp dport 59064 drop`; dropped in prerouting: NETFILTER_DROP at nft_do_chain+0x3e8"
	)
	cases := map[string][]string{
		"input_drop_rule_v4":        {inputV4, inputV4, inputV4},
		"tcp_no_listener_v4":        {pre + "dropped in socket: NO_SOCKET at tcp_v4_rcv+0x91", sent},
		"udp_closed_port_v6":        {pre6 + "dropped in socket: NO_SOCKET at __udp6_lib_rcv+0xe1"},
		"malformed_tcp_checksum_v4": {tcCSUM, tcCSUM, tcCSUM}, // one trace id for the three: three packets all the same
		"tc_ingress_drop_v4":        {tcIngr, tcIngr, tcIngr},
		"forward_drop_rule":         {forward, forward, forward},
		"prerouting_drop_rule_v4":   {prerouteDrop, prerouteDrop, prerouteDrop},
		"healthy_listener_v4": {pre + "delivered", sent, pre + "delivered", pre + "delivered", sent, sent,
			pre + "delivered", sent},
		"healthy_listener_v6": {pre6 + "delivered", sent6, pre6 + "delivered", pre6 + "delivered", sent6, sent6,
			pre6 + "delivered", pre6 + "delivered", sent6},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			ev := recorded(t, name)
			got := commentAll(ev, ev.Arrival.Packets)
			if !slices.Equal(got, want) {
				t.Errorf("comments:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestCommentsAgreeWithFates: for the packets the evidence keeps, every recorded report's
// comments say the fate the verdict says.
func TestCommentsAgreeWithFates(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "reports", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded reports: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			ev := recorded(t, name)
			v := verdict.Judge(ev)
			got := commentAll(ev, ev.Arrival.Packets)
			if len(v.Fates) != len(got) {
				t.Fatalf("%d fates, %d comments", len(v.Fates), len(got))
			}
			for i, f := range v.Fates {
				var want string
				switch f.Fate {
				case "sent":
					want = "sent on " + f.Iface
				case "dropped":
					want = "; dropped in " + string(f.Stage) + ": " + f.Reason + " at " + f.At
				case "not_dropped":
					want = "; not dropped"
					if v.Outcome == verdict.Delivered {
						want = "; delivered"
					}
				}
				if !strings.Contains(got[i], want) {
					t.Errorf("packet %d: fate %+v, comment %q", i, f, got[i])
				}
			}
		})
	}
}

// TestCommentsEveryPacket: the pcap holds more packets than the evidence keeps; each still
// gets its own drop and trace.
func TestCommentsEveryPacket(t *testing.T) {
	t.Parallel()
	ev := recorded(t, "input_drop_rule_v4")
	p0, d0 := ev.Arrival.Packets[0], ev.Kernel.Drops[0]
	pre, in := ev.Firewall.Traces[0], ev.Firewall.Traces[1]
	const n = 3 * evidence.MaxPackets
	var packets []evidence.Packet
	ev.Kernel.Drops, ev.Firewall.Traces = nil, nil
	for i := range n {
		p := p0
		p.Time = p0.Time.Add(time.Duration(i) * 10 * time.Millisecond)
		packets = append(packets, p)
		d := d0
		d.Time = p.Time.Add(20 * time.Microsecond)
		ev.Kernel.Drops = append(ev.Kernel.Drops, d)
		pre.ID, in.ID = uint32(i%3), uint32(i%3) // ids reused, as skbs are
		ev.Firewall.Traces = append(ev.Firewall.Traces, pre, in)
	}
	ev.Arrival.Packets = packets[:evidence.MaxPackets]
	ev.Arrival.In, ev.Kernel.Matched = n, n
	for i, c := range commentAll(ev, packets) {
		if !strings.Contains(c, "ip input drop by inet guard input handle 2") || !strings.HasSuffix(c, "dropped in input: NETFILTER_DROP at nft_do_chain+0x3e8") {
			t.Fatalf("packet %d: %q", i, c)
		}
	}

	// Only the first drops were kept: the later packets' fate is unknown, not "not dropped".
	ev.Kernel.Drops = ev.Kernel.Drops[:10]
	got := commentAll(ev, packets)
	if !strings.HasSuffix(got[9], "nft_do_chain+0x3e8") || !strings.HasSuffix(got[10], "dropped in input by the firewall (no kernel drop event recorded)") {
		t.Errorf("packets 9, 10 with 10 drops kept: %q, %q", got[9], got[10])
	}
	ev.Firewall = nil
	if got := commentAll(ev, packets)[10]; got != "arrived on veth0; fate unknown: only the first 10 drop events of the flow were kept" {
		t.Errorf("packet 10 with 10 drops kept and no trace: %q", got)
	}
}

func TestCommentsMissingStages(t *testing.T) {
	t.Parallel()
	ev := recorded(t, "input_drop_rule_v4")
	p := ev.Arrival.Packets[0]
	ev.Kernel = nil
	if got, want := prose.Comments(ev, verdict.Judge(ev))(p), "arrived on veth0; firewall: ip prerouting accept, ip input drop by inet guard input handle 2 `tcp dport 55527 drop`; dropped in input by the firewall (no kernel drop event recorded)"; got != want {
		t.Errorf("no kernel stage:\n%s\nwant\n%s", got, want)
	}
	ev.Firewall = nil
	if got, want := prose.Comments(ev, verdict.Judge(ev))(p), "arrived on veth0; fate unknown: the kernel drop stage did not run"; got != want {
		t.Errorf("no kernel stage, no firewall:\n%s\nwant\n%s", got, want)
	}

	// A packet of another interface does not take the trace of this one's.
	ev = recorded(t, "input_drop_rule_v4")
	q := p
	q.Iface = "veth9"
	comment := prose.Comments(ev, verdict.Judge(ev))
	if got := comment(q); strings.Contains(got, "firewall") {
		t.Errorf("packet on veth9 took a trace of veth0: %q", got)
	}
	if got := comment(p); !strings.Contains(got, "ip input drop") {
		t.Errorf("packet on veth0 after one on veth9: %q", got)
	}
}

func TestCommentsPolicyAndLoopback(t *testing.T) {
	t.Parallel()
	client, server := netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.1:8080")
	policy := evidence.TraceStep{Type: "policy", Family: "ip", Table: "filter", Chain: "INPUT", Verdict: "drop"}
	tr := func(hook, iif, oif, verdict string, by *evidence.TraceStep) evidence.Trace {
		return evidence.Trace{ID: 7, Family: "ip", Hook: hook, Iif: iif, Oif: oif, Src: client, Dst: server, Verdict: verdict, DroppedBy: by}
	}
	t0 := time.Unix(1_800_000_000, 0)
	ev := &evidence.Evidence{
		Flow:    evidence.Flow{Addr: server.Addr(), Port: 8080, Proto: evidence.TCP},
		Arrival: &evidence.Arrival{In: 1, Out: 1},
		// One skb, one trace id: sent on lo, then received on lo.
		Firewall: &evidence.Firewall{Traces: []evidence.Trace{
			tr("output", "", "lo", "accept", nil), tr("postrouting", "", "lo", "accept", nil),
			tr("prerouting", "lo", "", "accept", nil), tr("input", "lo", "", "drop", &policy),
		}},
		Kernel: &evidence.KernelDrop{Drops: []evidence.Drop{{Time: t0.Add(time.Microsecond), Reason: "NETFILTER_DROP",
			Location: "nft_do_chain+0x3e8", Function: "nft_do_chain", Src: client, Dst: server, Flags: "S"}}},
	}
	out := evidence.Packet{Time: t0, Iface: "lo", Direction: evidence.Out, Src: client, Dst: server, Flags: "S"}
	in := out
	in.Direction = evidence.In
	got := commentAll(ev, []evidence.Packet{out, in})
	want := []string{
		"sent on lo; firewall: ip output accept, ip postrouting accept",
		"arrived on lo; firewall: ip prerouting accept, ip input drop by ip filter INPUT policy; dropped in input: NETFILTER_DROP at nft_do_chain+0x3e8",
	}
	if !slices.Equal(got, want) {
		t.Errorf("loopback:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
