package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

// A rule that rejects: the client sees "connection refused" as from a closed port, and the
// verdict says the firewall answered, not that nothing listens.
func TestE2EFirewallReject(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "rej", v6, "tcp")
		// IPv4 with a TCP reset, IPv6 with nft's default, an ICMPv6 port unreachable: the
		// client reports both as "connection refused".
		stmt, with := "reject with tcp reset", evidence.RejectTCPReset
		if v6 {
			stmt, with = "reject", evidence.RejectICMP
		}
		s.nft(t, s.pair.Server, `table inet guard {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport PORT `+stmt+`
	}
}`)
		rep := s.diagnose(t, "input_reject_rule_"+family(v6), s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
		v := rep.Verdict
		if r := v.Rule; r == nil || r.Reject != with || r.Number != 1 {
			t.Fatalf("rule %+v, want the first rule of its chain, rejecting with %q", r, with)
		}
		if !strings.Contains(v.Summary, "was rejected by the firewall in input") || !strings.Contains(v.Summary, stmt) {
			t.Errorf("summary does not say the rule rejected it: %s", v.Summary)
		}
		if !strings.Contains(v.Explanation, "as a closed port would") {
			t.Errorf("explanation does not tell the reject from a closed port: %s", v.Explanation)
		}
	})
}

// A packet conntrack finds invalid (SYN and FIN at once, which no connection sends),
// dropped by `ct state invalid drop`: the verdict names the rule and says why conntrack
// found it invalid.
func TestE2EConntrackInvalid(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "inv", v6, "tcp")
		s.nft(t, s.pair.Server, `table inet guard {
	chain input {
		type filter hook input priority 0; policy accept;
		ct state invalid drop
	}
}`)
		mac := s.serverMAC(t)
		synFin := &layers.TCP{SrcPort: 40002, DstPort: layers.TCPPort(s.port), SYN: true, FIN: true, Seq: 1, Window: 64240}
		rep := s.diagnoseSending(t, "conntrack_invalid_"+family(v6), func() { s.sendSegments(t, mac, synFin, nil) })
		expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
		v := rep.Verdict
		if r := v.Rule; r == nil || r.Rule != "ct state invalid drop" {
			t.Fatalf("rule %+v, want ct state invalid drop", r)
		}
		for _, want := range []string{"TCP flags FS, a combination no TCP connection uses", fmt.Sprintf("conntrack counted %d invalid packet(s)", 3)} {
			if !strings.Contains(v.Explanation, want) {
				t.Errorf("explanation does not say %q: %s", want, v.Explanation)
			}
		}
	})
}

// Rules written with iptables, on either backend and in either family: a DROP, a REJECT, a
// conntrack INVALID drop and a drop in a chain a manager (kube-proxy) owns. Each verdict
// names the rule as iptables-save prints it, says the syntax, and gives the fix in
// iptables' words: by the rule's number, or through its manager.
func TestE2EIptables(t *testing.T) {
	t.Parallel()
	type rules struct {
		name   string
		ipset  bool       // an ipset pmt-blk of the client's address made first
		chains []string   // user chains made first
		add    [][]string // iptables arguments, PORT the flow's port
		chain  string     // the chain of the rule that drops
		want   string     // the dropping rule as iptables-save prints it, "" for the policy
		fix    string     // in the fix; TOOL is iptables or ip6tables
	}
	cases := []rules{
		{name: "drop", add: [][]string{{"-A", "INPUT", "-p", "tcp", "--dport", "PORT", "-m", "comment", "--comment", "legacy admin", "-j", "DROP"}},
			chain: "INPUT", want: `-A INPUT -p tcp -m tcp --dport PORT -m comment --comment "legacy admin" -j DROP`, fix: "`TOOL -t filter -D INPUT 1`"},
		{name: "reject", add: [][]string{{"-A", "INPUT", "-p", "tcp", "--dport", "PORT", "-j", "REJECT", "--reject-with", "tcp-reset"}},
			chain: "INPUT", want: "-A INPUT -p tcp -m tcp --dport PORT -j REJECT --reject-with tcp-reset", fix: "`TOOL -t filter -D INPUT 1`"},
		{name: "invalid", add: [][]string{{"-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"}},
			chain: "INPUT", want: "-A INPUT -m conntrack --ctstate INVALID -j DROP", fix: "nothing to change in the firewall"},
		{name: "set", ipset: true, add: [][]string{{"-A", "INPUT", "-p", "tcp", "-m", "set", "--match-set", "pmt-blk", "src", "-j", "DROP"}},
			chain: "INPUT", want: "-A INPUT -p tcp -m set --match-set pmt-blk src -j DROP", fix: "`TOOL -t filter -D INPUT -p tcp -m set --match-set pmt-blk src -j DROP`"},
		{name: "manager", chains: []string{"KUBE-FIREWALL"}, add: [][]string{{"-A", "INPUT", "-j", "KUBE-FIREWALL"}, {"-A", "KUBE-FIREWALL", "-p", "tcp", "--dport", "PORT", "-j", "DROP"}},
			chain: "KUBE-FIREWALL", want: "-A KUBE-FIREWALL -p tcp -m tcp --dport PORT -j DROP", fix: "belongs to kube-proxy"},
		// Neighbour discovery is ICMPv6: the accept keeps the path up.
		{name: "policy", add: [][]string{{"-A", "INPUT", "!", "-p", "tcp", "-j", "ACCEPT"}, {"-P", "INPUT", "DROP"}},
			chain: "INPUT", fix: "`TOOL -t filter -P INPUT ACCEPT`"},
	}
	for _, backend := range []string{"nft", "legacy"} {
		for _, c := range cases {
			t.Run(backend+"_"+c.name, func(t *testing.T) {
				t.Parallel()
				bothFamilies(t, func(t *testing.T, v6 bool) {
					s := newScenario(t, "ipt", v6, "tcp")
					tool := "iptables"
					if v6 {
						tool = "ip6tables"
					}
					bin := testns.Tool(t, tool+"-"+backend)
					port := fmt.Sprint(s.port)
					if c.ipset {
						client, family := testns.ClientV4, "inet"
						if v6 {
							client, family = testns.ClientV6, "inet6"
						}
						s.pair.InServer(t, testns.Tool(t, "ipset"), "create", "pmt-blk", "hash:ip", "family", family)
						s.pair.InServer(t, testns.Tool(t, "ipset"), "add", "pmt-blk", client)
					}
					for _, ch := range c.chains {
						s.pair.InServer(t, bin, "-N", ch)
					}
					for _, args := range c.add {
						args = slices.Clone(args)
						for i := range args {
							args[i] = strings.ReplaceAll(args[i], "PORT", port)
						}
						s.pair.InServer(t, append([]string{bin}, args...)...)
					}
					name := fmt.Sprintf("iptables_%s_%s_%s", backend, c.name, family(v6))
					var rep *report.Report
					if c.name == "invalid" {
						mac := s.serverMAC(t)
						synFin := &layers.TCP{SrcPort: 40002, DstPort: layers.TCPPort(s.port), SYN: true, FIN: true, Seq: 1, Window: 64240}
						rep = s.diagnoseSending(t, name, func() { s.sendSegments(t, mac, synFin, nil) })
					} else {
						rep = s.diagnose(t, name, s.fromClient(connect))
					}
					expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
					v := rep.Verdict
					want := strings.ReplaceAll(c.want, "PORT", port)
					r := v.Rule
					if r == nil || r.Rule != want || r.Syntax != tool || r.Chain != c.chain || r.Table != "filter" {
						t.Fatalf("rule %+v, want %s's %q in table filter chain %s", r, tool, want, c.chain)
					}
					if backend == "legacy" && r.Backend != "legacy" {
						t.Errorf("rule %+v is not said to be iptables-legacy's", r)
					}
					if !strings.Contains(v.Summary, want) {
						t.Errorf("summary does not quote the rule: %s", v.Summary)
					}
					if (want == "") != (r.Type == "policy") || want == "" && !strings.Contains(v.Summary, "policy") {
						t.Errorf("the %s is not said to be the policy: %s", r.Type, v.Summary)
					}
					if want == "" && strings.Contains(v.Fix, "nft ") {
						t.Errorf("the fix of %s's policy speaks nft: %s", tool, v.Fix)
					}
					if fix := strings.ReplaceAll(c.fix, "TOOL", tool); !strings.Contains(v.Fix, fix) {
						t.Errorf("fix does not say %q: %s", fix, v.Fix)
					}
					if c.name == "reject" && !strings.Contains(v.Summary, "rejected by the firewall") {
						t.Errorf("summary does not say the firewall rejected it: %s", v.Summary)
					}
				})
			})
		}
	}
}

// A namespace with rules in both backends: iptables-legacy drops the flow while an
// iptables-nft rule counts it; the legacy rule is named and the report says the host has
// two firewalls, each blind to the other's tools.
func TestE2EBothBackends(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "bb", false, "tcp")
	port := fmt.Sprint(s.port)
	s.pair.InServer(t, testns.Tool(t, "iptables-nft"), "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "ACCEPT")
	s.pair.InServer(t, testns.Tool(t, "iptables-legacy"), "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "DROP")
	rep := s.diagnose(t, "iptables_both_backends", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
	if r := rep.Verdict.Rule; r == nil || r.Backend != "legacy" || r.Rule != "-A INPUT -p tcp -m tcp --dport "+port+" -j DROP" {
		t.Fatalf("rule %+v, want iptables-legacy's drop", r)
	}
	if notes := strings.Join(rep.Verdict.Notes, "\n"); !strings.Contains(notes, "both iptables-legacy (1 rule(s)") {
		t.Errorf("the two firewalls are not noted: %s", notes)
	}
}
