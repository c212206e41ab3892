package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

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
