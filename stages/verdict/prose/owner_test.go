package prose

import (
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// A rule's fix is said in its owner's words: the manager of its chain, iptables (or
// ip6tables) for a table of iptables' name, firewall-cmd for firewalld's table; a native
// nftables rule is nft's.
func TestOwnedFix(t *testing.T) {
	t.Parallel()
	f := reasons.Facts{Port: 8443, Proto: "tcp"}
	rule := func(family, table, chain string) *evidence.TraceStep {
		return &evidence.TraceStep{Type: "rule", Family: family, Table: table, Chain: chain, Handle: 7}
	}
	for _, c := range []struct {
		r     *evidence.TraceStep
		enter string
		want  []string // "" : not owned
	}{
		{rule("ip", "filter", "DOCKER"), "", []string{"belongs to Docker", "DOCKER-USER"}},
		{rule("ip", "filter", "DOCKER-ISOLATION-STAGE-2"), "", []string{"belongs to Docker"}},
		{rule("ip", "filter", "DOCKER-USER"), "", []string{"`iptables -t filter -L DOCKER-USER -n --line-numbers`", "`iptables -t filter -D DOCKER-USER NUMBER`", "`nft delete rule ip filter DOCKER-USER handle 7`"}},
		{rule("ip", "nat", "KUBE-SERVICES"), "", []string{"belongs to kube-proxy", "Service"}},
		{rule("ip", "filter", "cali-fw-cali1234"), "", []string{"belongs to Calico", "NetworkPolicy"}},
		{rule("ip6", "filter", "ufw6-user-input"), "", []string{"`ip6tables -t filter -D ufw6-user-input NUMBER`"}},
		{rule("ip", "filter", "ufw-user-input"), "", []string{"belongs to ufw", "`ufw allow 8443/tcp`"}},
		{rule("ip6", "filter", "FORWARD"), "ip netns exec web ", []string{"`ip netns exec web ip6tables -t filter -D FORWARD NUMBER`"}},
		{&evidence.TraceStep{Type: "policy", Family: "ip", Table: "filter", Chain: "INPUT"}, "", []string{"`iptables -t filter -I INPUT -p tcp --dport 8443 -j ACCEPT`", "`iptables -t filter -P INPUT ACCEPT`", "`nft add rule ip filter INPUT tcp dport 8443 accept`"}},
		{rule("inet", "firewalld", "filter_IN_public_allow"), "", []string{"`firewall-cmd --add-port=8443/tcp`"}},
		{&evidence.TraceStep{Type: "rule", Family: "ip", Table: "filter", Chain: "INPUT", Number: 3, Syntax: "iptables", Rule: "-A INPUT -p tcp -m tcp --dport 8443 -j DROP"}, "",
			[]string{"`iptables -t filter -D INPUT 3`", "`iptables -t filter -D INPUT -p tcp -m tcp --dport 8443 -j DROP`", "iptables-nft's: where `iptables -V` says legacy, run `iptables-nft`"}},
		{&evidence.TraceStep{Type: "rule", Family: "ip6", Table: "filter", Chain: "INPUT", Number: 1, Syntax: "ip6tables", Backend: "legacy", Rule: "-A INPUT -j DROP"}, "ip netns exec web ",
			[]string{"`ip netns exec web ip6tables -t filter -D INPUT 1`", "iptables-legacy's: where `ip6tables -V` says nf_tables, run `ip6tables-legacy`"}},
		{&evidence.TraceStep{Type: "policy", Family: "ip", Table: "filter", Chain: "INPUT", Syntax: "iptables", Backend: "legacy"}, "",
			[]string{"`iptables -t filter -I INPUT -p tcp --dport 8443 -j ACCEPT`", "`iptables -t filter -P INPUT ACCEPT`", "(the chain is iptables-legacy's"}},
		// The policy of a table the trace found iptables-nft made: iptables' words only.
		{&evidence.TraceStep{Type: "policy", Family: "ip6", Table: "filter", Chain: "INPUT", Syntax: "ip6tables"}, "",
			[]string{"`ip6tables -t filter -I INPUT -p tcp --dport 8443 -j ACCEPT`", "`ip6tables -t filter -P INPUT ACCEPT`", "(the chain is iptables-nft's: where `ip6tables -V` says legacy, run `ip6tables-nft`"}},
		{&evidence.TraceStep{Type: "rule", Family: "ip", Table: "filter", Chain: "INPUT", Number: 2, Syntax: "iptables", Rule: "-A INPUT -m foo -j DROP", Partial: []string{"extension foo (revision 0) is shown by name only: its options were not decoded"}}, "",
			[]string{"`iptables -t filter -D INPUT 2` (the rule"}},
		{&evidence.TraceStep{Type: "rule", Family: "bridge", Table: "filter", Chain: "FORWARD", Number: 2, Syntax: "ebtables", Rule: "-A FORWARD -p IPv4 --ip-proto tcp --ip-dport 8443 -j DROP"}, "",
			[]string{"`ebtables -t filter -D FORWARD 2`", "`ebtables -t filter -D FORWARD -p IPv4 --ip-proto tcp --ip-dport 8443 -j DROP`", "ebtables-nft's: where `ebtables -V` says legacy, run `ebtables-nft`"}},
		{&evidence.TraceStep{Type: "policy", Family: "arp", Table: "filter", Chain: "INPUT", Syntax: "arptables"}, "",
			[]string{"`arptables -t filter -P INPUT ACCEPT`"}},
		{rule("inet", "filter", "input"), "", nil},
		{rule("ip", "guard", "INPUT"), "", nil},
	} {
		fix, ok := ownedFix(c.r, f, c.enter)
		if ok != (c.want != nil) {
			t.Errorf("%s %s %s: owned %v (%q), want %v", c.r.Family, c.r.Table, c.r.Chain, ok, fix, c.want != nil)
			continue
		}
		if len(c.r.Partial) > 0 && strings.Contains(fix, "by its text") {
			t.Errorf("a partial text is offered to delete the rule by: %s", fix)
		}
		for _, w := range c.want {
			if !strings.Contains(fix, w) {
				t.Errorf("%s %s %s: fix %q lacks %q", c.r.Family, c.r.Table, c.r.Chain, fix, w)
			}
		}
	}
}
