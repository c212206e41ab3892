package prose

import (
	"fmt"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// iptablesTables are the tables iptables makes (in nftables, under iptables-nft), by family
// and the tool that writes them. A rule there is the user's iptables rule, or a manager's
// that speaks iptables: its fix is said with that tool, not nft, whose listing of the
// table warns "managed by iptables-nft, do not touch".
var iptablesTables = map[string]string{
	"ip filter": "iptables", "ip nat": "iptables", "ip mangle": "iptables", "ip raw": "iptables", "ip security": "iptables",
	"ip6 filter": "ip6tables", "ip6 nat": "ip6tables", "ip6 mangle": "ip6tables", "ip6 raw": "ip6tables", "ip6 security": "ip6tables",
}

// manager is who owns a chain, and how its owner changes what it drops.
type manager struct {
	name string
	how  string
}

// managers are the chains that tools write and rewrite, by prefix: a rule there is changed
// through the tool, or it comes back (or the tool breaks).
var managers = []struct {
	prefix string
	m      manager
}{
	{"DOCKER-USER", manager{}}, // left by Docker to its users: their own rules
	{"DOCKER", manager{"Docker", "Docker rewrites it from its containers and networks: change the container's published ports or networks, or accept the flow in chain DOCKER-USER (which Docker leaves to you), instead of editing this rule"}},
	{"KUBE-", manager{"kube-proxy", "kube-proxy rewrites it from the Kubernetes Services and their endpoints: fix the Service (selector, ports) or its pods' readiness, instead of editing this rule"}},
	{"cali-", manager{"Calico", "Calico rewrites it from its network policies: change the NetworkPolicy or Calico policy that denies the flow (`kubectl get networkpolicy -A`, `calicoctl get networkpolicy`), instead of editing this rule"}},
	{"ufw-", manager{"ufw", "ufw rewrites it from its rules: `ufw status numbered`, then `ufw delete N` or `ufw allow %d/%s`"}},
	{"f2b-", manager{"fail2ban", "fail2ban added it for a banned address: `fail2ban-client status` and `fail2ban-client set JAIL unbanip ADDRESS`"}},
}

// ownedFix says how to change a rule (or policy) that dropped the flow in the words of
// whoever owns it: the manager of its chain, or iptables for a table iptables made; ok is
// false for a native nftables rule, which nft's own commands fix.
func ownedFix(r *evidence.TraceStep, f reasons.Facts, enter string) (fix string, ok bool) {
	if r.Family == "inet" && r.Table == "firewalld" {
		return fmt.Sprintf("firewalld owns table inet firewalld and rewrites it: `%sfirewall-cmd --add-port=%d/%s` (and again with --permanent), or the service or zone that should accept the flow, instead of editing it with nft", enter, f.Port, f.Proto), true
	}
	if r.Syntax == "ebtables" || r.Syntax == "arptables" {
		// Tables ebtables-nft or arptables-nft made: no manager writes them here.
		return iptablesFix(r, f, r.Syntax, enter), true
	}
	tool, iptables := iptablesTables[r.Family+" "+r.Table]
	if !iptables {
		return "", false
	}
	for _, o := range managers {
		if !strings.HasPrefix(r.Chain, o.prefix) {
			continue
		}
		if o.m.name == "" {
			break
		}
		how := o.m.how
		if strings.Contains(how, "%d") {
			how = fmt.Sprintf(how, f.Port, f.Proto)
		}
		return fmt.Sprintf("chain %s of table %s %s belongs to %s, which %s", r.Chain, r.Family, r.Table, o.m.name, strings.TrimPrefix(how, o.m.name+" ")), true
	}
	if r.Syntax == tool {
		return iptablesFix(r, f, tool, enter), true
	}
	// A table of iptables' name may still be nft's own (nft warns "managed by iptables-nft"
	// only when it holds an xt statement): both ways are said.
	nft := fmt.Sprintf("`%snft delete rule %s %s %s handle %d`", enter, r.Family, r.Table, r.Chain, r.Handle)
	if r.Type == "policy" {
		nft = fmt.Sprintf("`%snft add rule %s %s %s %s dport %d accept`", enter, r.Family, r.Table, r.Chain, f.Proto, f.Port)
		return fmt.Sprintf("accept the flow before the policy of chain %s: where %s made table %s %s, `%s%s -t %s -I %s -p %s --dport %d -j ACCEPT` (or change the policy: `%s%s -t %s -P %s ACCEPT`); where nft did, %s",
			r.Chain, tool, r.Family, r.Table, enter, tool, r.Table, r.Chain, f.Proto, f.Port, enter, tool, r.Table, r.Chain, nft), true
	}
	return fmt.Sprintf("remove or narrow the rule (or insert an accept before it): where %s made table %s %s (`nft list table %s %s` warns that it is managed by iptables-nft), find its number with `%s%s -t %s -L %s -n --line-numbers`, then `%s%s -t %s -D %s NUMBER`; where nft did, %s",
		tool, r.Family, r.Table, r.Family, r.Table, enter, tool, r.Table, r.Chain, enter, tool, r.Table, r.Chain, nft), true
}

// iptablesFix is the fix of a rule known to be iptables' (read back as iptables-nft writes
// rules, or from iptables-legacy): by its number and by its text, with the backend that
// holds it, since `iptables` runs one or the other by the host's choice.
func iptablesFix(r *evidence.TraceStep, f reasons.Facts, tool, enter string) string {
	backend, other := tool+"-nft", "legacy"
	if r.Backend == "legacy" {
		backend, other = tool+"-legacy", "nf_tables"
	}
	what := "rule"
	if r.Type == "policy" {
		what = "chain"
	}
	which := fmt.Sprintf(" (the %s is %s's: where `%s -V` says %s, run `%s` instead)", what, strings.Replace(backend, "ip6tables", "iptables", 1), tool, other, backend)
	switch {
	case r.Type == "policy" && (tool == "ebtables" || tool == "arptables"):
		return fmt.Sprintf("change the policy of chain %s, or add a rule accepting the flow before it: `%s%s -t %s -P %s ACCEPT`%s", r.Chain, enter, tool, r.Table, r.Chain, which)
	case r.Type == "policy":
		return fmt.Sprintf("accept the flow before the policy of chain %s: `%s%s -t %s -I %s -p %s --dport %d -j ACCEPT`, or change the policy: `%s%s -t %s -P %s ACCEPT`%s",
			r.Chain, enter, tool, r.Table, r.Chain, f.Proto, f.Port, enter, tool, r.Table, r.Chain, which)
	}
	fix := fmt.Sprintf("remove or narrow the rule (or insert an accept before it): `%s%s -t %s -D %s %d`", enter, tool, r.Table, r.Chain, r.Number)
	// A text with an extension shown by name only would not match the rule.
	if spec, ok := strings.CutPrefix(r.Rule, "-A "+r.Chain+" "); ok && len(r.Partial) == 0 {
		fix += fmt.Sprintf(", or by its text, which does not depend on the rules before it: `%s%s -t %s -D %s %s`", enter, tool, r.Table, r.Chain, spec)
	}
	return fix + which
}
