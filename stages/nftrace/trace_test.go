package nftrace

import (
	"bufio"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/nft"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// fixture is a recorded trace (testdata/*.hex, made by the end-to-end tests with
// -record).
type fixture struct {
	own    string
	flow   evidence.Flow
	events []traceEvent
	raw    [][]byte // the messages' payloads, as decodeTrace reads them
}

func loadFixture(t testing.TB, name string) fixture {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fx fixture
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "# own: "):
			fx.own = strings.TrimPrefix(line, "# own: ")
		case strings.HasPrefix(line, "# flow: "):
			spec, proto, _ := strings.Cut(strings.TrimPrefix(line, "# flow: "), "/")
			fx.flow, err = evidence.ParseFlow(spec, evidence.Proto(proto))
			if err != nil {
				t.Fatal(err)
			}
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			b, err := hex.DecodeString(line)
			if err != nil {
				t.Fatal(err)
			}
			var m netlink.Message
			if err := m.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if m.Header.Type != traceMsgType {
				t.Fatalf("message type %#x is not a trace", m.Header.Type)
			}
			ev, err := decodeTrace(m.Data)
			if err != nil {
				t.Fatalf("decode %s: %v", line, err)
			}
			fx.events = append(fx.events, ev)
			fx.raw = append(fx.raw, m.Data)
		}
	}
	if fx.own == "" || !fx.flow.Addr.IsValid() || len(fx.events) == 0 {
		t.Fatalf("fixture %s incomplete", name)
	}
	return fx
}

func TestDecodeTraceFixture(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t, "drop_v4")
	ev := fx.events[0]
	// The first event: our prerouting rule marked the SYN; it carries the packet.
	if ev.Family != unix.NFPROTO_INET || ev.Table != fx.own || ev.Chain != chainPrerouting ||
		ev.Type != unix.NFT_TRACETYPE_RULE || ev.Handle == 0 || !ev.HasVerdict || ev.Verdict != nft.Continue ||
		ev.NFProto != unix.NFPROTO_IPV4 || !ev.HasPacket || ev.Iif == 0 || ev.IifType != 1 || len(ev.LL) != 14 {
		t.Errorf("first event = %+v", ev)
	}
	src, dst, proto, ok := packetAddrs(ev.Network, ev.Transport)
	if !ok || proto != unix.IPPROTO_TCP || dst != netip.AddrPortFrom(fx.flow.Addr, fx.flow.Port) || src.Addr() != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("packet %v -> %v proto %d ok %v", src, dst, proto, ok)
	}
	// Then the end of our chain (a rule event without handle) and its policy.
	if e := fx.events[1]; e.Handle != 0 || e.Verdict != nft.Continue || e.HasPacket {
		t.Errorf("second event = %+v", e)
	}
	if e := fx.events[2]; e.Type != unix.NFT_TRACETYPE_POLICY || !e.HasPolicy || e.Policy != nft.Accept {
		t.Errorf("third event = %+v", e)
	}
	// Then the user's input chain: the same id, the packet again, the drop.
	if e := fx.events[3]; e.ID != ev.ID || e.Table != "filter" || e.Chain != "input" || !e.HasPacket || e.Verdict != nft.Drop {
		t.Errorf("fourth event = %+v", e)
	}

	fx6 := loadFixture(t, "drop_v6")
	src, dst, proto, ok = packetAddrs(fx6.events[0].Network, fx6.events[0].Transport)
	if !ok || proto != unix.IPPROTO_TCP || dst != netip.AddrPortFrom(fx6.flow.Addr, fx6.flow.Port) || !src.Addr().Is6() {
		t.Errorf("v6 packet %v -> %v proto %d", src, dst, proto)
	}
	if fx6.events[0].NFProto != unix.NFPROTO_IPV6 {
		t.Errorf("v6 nfproto %d", fx6.events[0].NFProto)
	}

	if _, err := decodeTrace([]byte{1, 0}); err == nil {
		t.Errorf("short message decoded")
	}
	if _, err := decodeTrace([]byte{1, 0, 0, 0, 8, 0, 4, 0, 0, 0, 0, 3}); err == nil {
		t.Errorf("message without id, table and chain decoded")
	}
}

// fixtureResolved is what Stop would have read of the fixtures' ruleset.
func fixtureResolved(fx fixture, userChainPolicy uint32, rules map[uint64]string) resolved {
	res := resolved{chains: map[nft.ChainKey]nft.Chain{}, rules: map[ruleKey]nft.Rule{}, chainErr: map[nft.ChainKey]error{}}
	add := func(fam uint8, table, chain string, hook uint32, prio int32, policy uint32) {
		k := nft.ChainKey{Family: fam, Table: table, Chain: chain}
		res.chains[k] = nft.Chain{ChainKey: k, Base: true, Hook: hook, Priority: prio, Policy: policy}
	}
	add(unix.NFPROTO_INET, fx.own, chainPrerouting, unix.NF_INET_PRE_ROUTING, tracePriority, nft.Accept)
	add(unix.NFPROTO_INET, fx.own, chainOutput, unix.NF_INET_LOCAL_OUT, tracePriority, nft.Accept)
	add(unix.NFPROTO_INET, "filter", "input", unix.NF_INET_LOCAL_IN, 0, userChainPolicy)
	for h, s := range rules {
		res.rules[ruleKey{nft.ChainKey{Family: unix.NFPROTO_INET, Table: "filter", Chain: "input"}, h}] = nft.Rule{Text: s}
	}
	return res
}

func collect(fx fixture, flow evidence.Flow) *collector {
	c := &collector{}
	c.init(flow.Endpoint(), fx.own)
	for _, ev := range fx.events {
		c.add(ev)
	}
	return c
}

func TestAssembleDrop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		family string
		policy uint32
		want   evidence.TraceStep
	}{
		{"drop_v4", "ip", nft.Accept, evidence.TraceStep{Type: "rule", Family: "inet", Table: "filter", Chain: "input", Handle: 2, Rule: "RULE", Syntax: "nft", Verdict: "drop"}},
		{"drop_v6", "ip6", nft.Accept, evidence.TraceStep{Type: "rule", Family: "inet", Table: "filter", Chain: "input", Handle: 2, Rule: "RULE", Syntax: "nft", Verdict: "drop"}},
		{"policy_drop_v4", "ip", nft.Drop, evidence.TraceStep{Type: "policy", Family: "inet", Table: "filter", Chain: "input", Verdict: "drop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := loadFixture(t, tc.name)
			c := collect(fx, fx.flow)
			if c.traced.Load() == 0 {
				t.Errorf("no packet counted as traced")
			}
			traces := assemble(c.take(), fx.own, fixtureResolved(fx, tc.policy, map[uint64]string{2: "RULE"}), map[uint32]string{2: "veth0"})
			// The SYN and its retransmissions: each a prerouting and an input trace.
			if len(traces) < 2 || len(traces)%2 != 0 {
				t.Fatalf("%d traces", len(traces))
			}
			for i := 0; i < len(traces); i += 2 {
				pre, in := traces[i], traces[i+1]
				if pre.Hook != "prerouting" || pre.Verdict != "accept" || len(pre.Steps) != 0 || pre.DroppedBy != nil || pre.Family != tc.family || pre.Iif != "veth0" {
					t.Errorf("trace %d = %+v", i, pre)
				}
				if pre.Dst != netip.AddrPortFrom(fx.flow.Addr, fx.flow.Port) {
					t.Errorf("trace %d dst %v", i, pre.Dst)
				}
				if in.Hook != "input" || in.Verdict != "drop" || in.ID != pre.ID || in.DroppedBy == nil || in.Family != tc.family {
					t.Fatalf("trace %d = %+v", i+1, in)
				}
				if !reflect.DeepEqual(*in.DroppedBy, tc.want) {
					t.Errorf("DroppedBy = %+v\nwant %+v", *in.DroppedBy, tc.want)
				}
				if !reflect.DeepEqual(in.Steps[len(in.Steps)-1], tc.want) {
					t.Errorf("last step = %+v", in.Steps[len(in.Steps)-1])
				}
			}
		})
	}
}

func TestAssembleHealthy(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t, "healthy_v4")
	c := collect(fx, fx.flow)
	traces := assemble(c.take(), fx.own, fixtureResolved(fx, nft.Accept, map[uint64]string{2: "RULE"}), nil)
	hooks := map[string]int{}
	for _, tr := range traces {
		hooks[tr.Hook]++
		if tr.Verdict != "accept" || tr.DroppedBy != nil {
			t.Errorf("trace %+v", tr)
		}
		if tr.Hook == "output" && (tr.Src != netip.AddrPortFrom(fx.flow.Addr, fx.flow.Port) || tr.Oif == "" || len(tr.Steps) != 0) {
			t.Errorf("output trace %+v", tr)
		}
		if tr.Hook == "input" && (len(tr.Steps) != 1 || tr.Steps[0].Rule != "RULE" || tr.Steps[0].Verdict != "accept") {
			t.Errorf("input trace %+v", tr)
		}
	}
	if hooks["prerouting"] == 0 || hooks["prerouting"] != hooks["input"] || hooks["output"] == 0 {
		t.Errorf("traces per hook %v", hooks)
	}
	// Without the interface names the index is still said.
	for _, tr := range traces {
		if tr.Iif != "" && !strings.HasPrefix(tr.Iif, "ifindex ") {
			t.Errorf("iif %q", tr.Iif)
		}
	}
}

// TestCollectorFilters checks that packets of other flows, traced by someone else's
// nftrace rule, are not kept, and that the limits count what they leave out.
func TestCollectorFilters(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t, "drop_v4")
	other := fx.flow
	other.Port++
	c := &collector{}
	c.init(other.Endpoint(), "packetmortem_0") // not the recording's table: nothing is "ours"
	for _, ev := range fx.events {
		c.add(ev)
	}
	if n := len(c.take()); n != 0 {
		t.Errorf("kept %d invocations of another flow", n)
	}
	// Same flow, another table name: kept by the headers.
	c = &collector{}
	c.init(fx.flow.Endpoint(), "packetmortem_0")
	for _, ev := range fx.events {
		c.add(ev)
	}
	if n := len(c.take()); n == 0 {
		t.Errorf("flow's packets not kept by their headers")
	}
	// A flood: beyond the limit, events are counted, not kept.
	c = &collector{}
	c.init(fx.flow.Endpoint(), fx.own)
	for i := 0; i < maxInvocations+10; i++ {
		ev := fx.events[0]
		ev.ID = uint32(i)
		c.add(ev)
	}
	if len(c.take()) != maxInvocations || c.omitted.Load() != 10 {
		t.Errorf("kept %d, omitted %d", len(c.take()), c.omitted.Load())
	}
}

// TestAssembleSplitsReusedIDs: the trace id is a hash of the skb, so a later packet can
// reuse it; a second pass through the same hook is another packet.
func TestAssembleSplitsReusedIDs(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t, "drop_v4")
	var evs []traceEvent
	for _, ev := range fx.events {
		if ev.ID == fx.events[0].ID {
			evs = append(evs, ev)
		}
	}
	c := &collector{}
	c.init(fx.flow.Endpoint(), fx.own)
	for _, ev := range append(append([]traceEvent{}, evs...), evs...) {
		c.add(ev)
	}
	traces := assemble(c.take(), fx.own, fixtureResolved(fx, nft.Accept, nil), nil)
	if len(traces) != 4 {
		t.Fatalf("%d traces, want 4", len(traces))
	}
	if got := traces[1].DroppedBy.Rule; got != "handle 2 # (rule no longer in the ruleset)" {
		t.Errorf("unknown rule rendered %q", got)
	}
}

// decodeTrace reads what the kernel sends about other programs' packets: it must never
// panic. Seeds are the recorded traces.
func FuzzDecodeTrace(f *testing.F) {
	for _, name := range []string{"drop_v4", "drop_v6", "healthy_v4", "policy_drop_v4"} {
		for _, b := range loadFixture(f, name).raw {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		t.Parallel()
		if ev, err := decodeTrace(b); err == nil {
			_, _, _, _ = packetAddrs(ev.Network, ev.Transport)
		}
	})
}

// The reader's words for what a rejecting rule answers are the evidence's, passed through
// as they are.
func TestRejectWords(t *testing.T) {
	if nft.RejectTCPReset != evidence.RejectTCPReset || nft.RejectICMP != evidence.RejectICMP {
		t.Errorf("nft says %q/%q, evidence %q/%q", nft.RejectTCPReset, nft.RejectICMP, evidence.RejectTCPReset, evidence.RejectICMP)
	}
}
