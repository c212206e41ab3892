package verdict

import (
	"net/netip"
	"testing"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Without a route lookup of the translated destination, the device a translated packet
// left by is the one the capture saw it leave by: a packet of the translated connection,
// not the answer leaving toward the client with the original addresses, nor another
// client's connection to the same backend.
func TestOutDeviceFromCapture(t *testing.T) {
	ap := netip.MustParseAddrPort
	tr := &evidence.Translation{
		Proto: evidence.TCP, Kind: "DNAT",
		Orig:  evidence.Tuple{Src: ap("198.51.100.1:40000"), Dst: ap("198.51.100.2:8080")},
		Reply: evidence.Tuple{Src: ap("203.0.113.2:80"), Dst: ap("198.51.100.1:40000")},
	}
	ev := &evidence.Evidence{Arrival: &evidence.Arrival{Packets: []evidence.Packet{
		{Iface: "veth0", Direction: evidence.In, Src: ap("198.51.100.1:40000"), Dst: ap("198.51.100.2:8080")},
		{Iface: "vethother", Direction: evidence.Out, Src: ap("198.51.100.1:40001"), Dst: ap("203.0.113.2:80")},
		{Iface: "veth0", Direction: evidence.Out, Src: ap("198.51.100.2:8080"), Dst: ap("198.51.100.1:40000")},
		{Iface: "vethab", Direction: evidence.Out, Src: ap("198.51.100.1:40000"), Dst: ap("203.0.113.2:80")},
	}}}
	if got := outDevice(ev, tr); got != "vethab" {
		t.Errorf("outDevice = %q, want vethab", got)
	}
	ev.Arrival.Packets = ev.Arrival.Packets[:3]
	if got := outDevice(ev, tr); got != "" {
		t.Errorf("outDevice without the translated packet = %q, want none", got)
	}
}

// A drop in another namespace is the flow's downstream only when it is of the translated
// connection: a drop of another client's connection to the same backend address (another
// container of that address, in another namespace) stays elsewhere.
func TestDownstreamIsTheConnection(t *testing.T) {
	ap := netip.MustParseAddrPort
	ev := &evidence.Evidence{Kernel: &evidence.KernelDrop{Translations: []evidence.Translation{{
		Proto: evidence.TCP, Kind: "DNAT", Netns: 1,
		Orig:    evidence.Tuple{Src: ap("198.51.100.1:40000"), Dst: ap("198.51.100.2:8080")},
		Reply:   evidence.Tuple{Src: ap("203.0.113.2:80"), Dst: ap("198.51.100.1:40000")},
		Learned: []netip.AddrPort{ap("203.0.113.2:80")},
	}}}}
	ours := evidence.Drop{Netns: 2, Src: ap("198.51.100.1:40000"), Dst: ap("203.0.113.2:80")}
	theirs := evidence.Drop{Netns: 3, Src: ap("198.51.100.1:40001"), Dst: ap("203.0.113.2:80")}
	down, rest := splitDownstream(ev, []evidence.Drop{theirs, ours})
	if len(down) != 1 || down[0].Netns != ours.Netns || len(rest) != 1 || rest[0].Netns != theirs.Netns {
		t.Errorf("downstream %+v, elsewhere %+v; want ours downstream and theirs elsewhere", down, rest)
	}
}

// The nat rule is found by what its rendering names: the statement nft prints, an
// undecoded nat expression, or an undecoded xtables target of iptables-nft (named by
// extension, or, in evidence recorded before, only as "target" in a rule that accepted).
func TestNatRuleNamesXtTargets(t *testing.T) {
	for _, c := range []struct {
		kind, hook, rule, verdict string
		found                     bool
	}{
		{"DNAT", "prerouting", `iifname != "docker0" tcp dport 8080 counter packets 0 bytes 0 dnat to 203.0.113.2:80`, "accept", true},
		{"DNAT", "prerouting", `handle 9 # (expressions not decoded: meta, cmp, payload, cmp, counter, xt target "DNAT")`, "accept", true},
		{"DNAT", "prerouting", `handle 9 # (expressions not decoded: meta, cmp, payload, cmp, counter, target)`, "accept", true},
		{"SNAT", "postrouting", `handle 7 # (expressions not decoded: meta, cmp, payload, cmp, counter, xt target "MASQUERADE")`, "accept", true},
		{"SNAT", "postrouting", `oifname != "docker0" ip saddr 203.0.113.0/24 counter packets 0 bytes 0 masquerade`, "accept", true},
		{"DNAT", "prerouting", `handle 9 # (expressions not decoded: meta, cmp, counter, xt target "LOG")`, "continue", false},
		{"SNAT", "postrouting", `handle 9 # (expressions not decoded: counter, xt target "DNAT")`, "continue", false},
	} {
		fw := &evidence.Firewall{Traces: []evidence.Trace{{Hook: c.hook, Steps: []evidence.TraceStep{
			{Type: "rule", Family: "ip", Table: "nat", Chain: "DOCKER", Handle: 9, Rule: c.rule, Verdict: c.verdict},
		}}}}
		if got := natRule(fw, c.kind); (got != nil) != c.found {
			t.Errorf("%s in %s: natRule(%q) = %v, want found %v", c.kind, c.hook, c.rule, got, c.found)
		}
	}
}
