package xtables

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// tcpMatch is -m tcp --dport lo:hi (struct xt_tcp, XT_ALIGNed).
func tcpMatch(lo, hi uint16, inv uint8) Ext {
	d := make([]byte, 16)
	binary.NativeEndian.PutUint16(d[2:], 0xffff)
	binary.NativeEndian.PutUint16(d[4:], lo)
	binary.NativeEndian.PutUint16(d[6:], hi)
	d[11] = inv
	return Ext{Name: "tcp", Data: d}
}

// multiportRange is -m multiport --dports lo:hi,port (struct xt_multiport_v1).
func multiportRange(lo, hi, port uint16) Ext {
	d := make([]byte, 48)
	d[0], d[1] = 1, 3
	for i, p := range []uint16{lo, hi, port} {
		binary.NativeEndian.PutUint16(d[2+2*i:], p)
	}
	d[32] = 1
	return Ext{Name: "multiport", Rev: 1, Data: d}
}

// dropTable is a filter table: INPUT (policy DROP) accepts ssh, sends the test network
// to CHECK and drops the rest of it; CHECK drops web ports and sends UDP on to HOT,
// whose only rule drops nothing by its counters (as when a match drops the packet itself).
func dropTable(counts map[string][]uint64) *Table {
	net := netip.MustParsePrefix("198.51.100.0/24")
	t := &Table{Family: unix.NFPROTO_IPV4, Name: "filter", Chains: []Chain{
		{Name: "INPUT", Policy: "DROP", Rules: []Rule{
			{Proto: unix.IPPROTO_TCP, Matches: []Ext{tcpMatch(22, 22, 0)}, Verdict: "ACCEPT"},
			{Src: net, Verdict: "CHECK"},
			{Src: net, Inv: InvSrc, Verdict: "DROP"},
		}},
		{Name: "OUTPUT", Policy: "ACCEPT"},
		{Name: "CHECK", Rules: []Rule{
			{Proto: unix.IPPROTO_TCP, Matches: []Ext{multiportRange(80, 90, 443)}, Verdict: "DROP"},
			{Proto: unix.IPPROTO_UDP, InIface: "veth+", Verdict: "HOT", Goto: true},
		}},
		{Name: "HOT", Rules: []Rule{{Matches: []Ext{{Name: "hashlimit", Data: make([]byte, 8)}}, Target: Ext{Name: "REJECT", Data: make([]byte, 8)}}}},
	}}
	for i := range t.Chains {
		c := &t.Chains[i]
		if n := counts[c.Name]; len(n) > 0 {
			c.Packets = n[0]
			for j := range c.Rules {
				c.Rules[j].Packets = n[j+1]
			}
		}
	}
	return t
}

func TestCandidates(t *testing.T) {
	before := dropTable(nil)
	client, server := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	for _, c := range []struct {
		what   string
		counts map[string][]uint64
		hook   string
		p      Packet
		grown  string
		want   string
	}{
		{"the policy drops what no rule takes", map[string][]uint64{"INPUT": {3, 2, 0, 0}}, "input",
			Packet{Src: client, Dst: server, Proto: unix.IPPROTO_TCP, DstPort: 23},
			"filter INPUT 0, filter INPUT 1", "filter INPUT 0"},
		{"a range of a multiport match", map[string][]uint64{"INPUT": {0, 2, 4, 0}, "CHECK": {0, 4, 0}}, "input",
			Packet{Src: client, Dst: server, Proto: unix.IPPROTO_TCP, DstPort: 85},
			"filter INPUT 1, filter INPUT 2, filter CHECK 1", "filter CHECK 1"},
		{"outside the range", map[string][]uint64{"INPUT": {0, 2, 4, 0}, "CHECK": {0, 4, 0}}, "input",
			Packet{Src: client, Dst: server, Proto: unix.IPPROTO_TCP, DstPort: 100},
			"filter INPUT 1, filter INPUT 2, filter CHECK 1", ""},
		{"the trail ends at the deepest jump", map[string][]uint64{"INPUT": {0, 0, 4, 0}, "CHECK": {0, 0, 4}, "HOT": {0, 0}}, "input",
			Packet{Src: client, Dst: server, Proto: unix.IPPROTO_UDP, DstPort: 53, InIface: "veth0"},
			"filter INPUT 2, filter CHECK 2", "filter CHECK 2"},
		{"an interface the wildcard does not take", map[string][]uint64{"INPUT": {0, 0, 4, 0}, "CHECK": {0, 0, 4}}, "input",
			Packet{Src: client, Dst: server, Proto: unix.IPPROTO_UDP, DstPort: 53, InIface: "eth0"},
			"filter INPUT 2, filter CHECK 2", ""},
		{"a negated source", map[string][]uint64{"INPUT": {0, 0, 0, 1}}, "input",
			Packet{Src: netip.MustParseAddr("203.0.113.9"), Proto: unix.IPPROTO_UDP},
			"filter INPUT 3", "filter INPUT 3"},
		{"the negated source is the flow's own", map[string][]uint64{"INPUT": {0, 0, 0, 1}}, "input",
			Packet{Src: client, Proto: unix.IPPROTO_UDP},
			"filter INPUT 3", ""},
		{"another hook", map[string][]uint64{"INPUT": {3, 0, 0, 1}}, "output",
			Packet{Src: netip.MustParseAddr("203.0.113.9")},
			"filter INPUT 0, filter INPUT 3", ""},
		{"another family", map[string][]uint64{"INPUT": {3, 0, 0, 1}}, "input",
			Packet{Src: netip.MustParseAddr("2001:db8::9")},
			"filter INPUT 0, filter INPUT 3", ""},
	} {
		after := dropTable(c.counts)
		grown := Grown(before, after)
		if got := legacyRefs(grown); got != c.grown {
			t.Errorf("%s: grown %q, want %q", c.what, got, c.grown)
		}
		if got := legacyRefs(Candidates([]*Table{after}, grown, c.hook, c.p)); got != c.want {
			t.Errorf("%s: candidates %q, want %q", c.what, got, c.want)
		}
	}
}

// TestGrownPairsByContent: a rule inserted between the reads shifts the numbers, not the
// counters; a zeroed counter counts from zero; a new table's counters all grew.
func TestGrownPairsByContent(t *testing.T) {
	before := dropTable(map[string][]uint64{"INPUT": {10, 5, 7, 0}, "CHECK": {0, 3, 9}})
	after := dropTable(map[string][]uint64{"INPUT": {10, 5, 7, 0}, "CHECK": {0, 1, 9}})
	input := &after.Chains[0]
	input.Rules = append([]Rule{{Proto: unix.IPPROTO_ICMP, Verdict: "ACCEPT", Packets: 2}}, input.Rules...)
	if got := legacyRefs(Grown(before, after)); got != "filter INPUT 1, filter CHECK 1" {
		t.Errorf("grown %q", got)
	}
	for _, g := range Grown(before, after) {
		if g.Packets != map[string]uint64{"INPUT": 2, "CHECK": 1}[g.Chain] {
			t.Errorf("%s %d grew by %d", g.Chain, g.Num, g.Packets)
		}
	}
	if got := legacyRefs(Grown(nil, before)); got != "filter INPUT 0, filter INPUT 1, filter INPUT 2, filter CHECK 1, filter CHECK 2" {
		t.Errorf("grown from nothing %q", got)
	}
	if got := legacyRefs(GrownAll([]*Table{before}, []*Table{after})); got != "filter INPUT 1, filter CHECK 1" {
		t.Errorf("GrownAll %q", got)
	}
}

// A netmask that is not a prefix is compared as x_tables compares it.
func TestAddrMatchMask(t *testing.T) {
	t.Parallel()
	rule := netip.MustParsePrefix("198.51.0.7/32")
	mask := netip.MustParseAddr("255.255.0.255")
	for _, c := range []struct {
		a         string
		inv, want bool
	}{
		{"198.51.100.7", false, true},
		{"198.51.3.7", false, true},
		{"198.51.100.8", false, false},
		{"198.52.100.7", false, false},
		{"198.51.100.8", true, true},
		{"2001:db8::7", false, true},
	} {
		if got := addrMatch(rule, mask, netip.MustParseAddr(c.a), c.inv); got != c.want {
			t.Errorf("%s (inverted %v) under %s/%s: %v, want %v", c.a, c.inv, rule, mask, got, c.want)
		}
	}
}
