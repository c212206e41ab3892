package nft

import (
	"slices"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/xtables"
)

// A table iptables-nft made is iptables' to change: its rules are named as iptables-save
// prints them, and fixed with iptables. Which tables: those of iptables' names whose every
// base chain is one of iptables' built-in chains and whose every rule iptables-nft reads
// back; anything else in them (a rule nft added) makes iptables refuse the whole table
// ("incompatible, use 'nft' tool"), so its rules stay in nft's words. The same holds for
// the bridge tables ebtables-nft makes and the arp table arptables-nft makes, named as
// ebtables-save and arptables-save print them.

// iptablesNames are the tables iptables makes, with the built-in chains each may have.
var iptablesNames = map[string][]string{
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"nat":      {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":      {"PREROUTING", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// iptablesView is a table's rules as iptables-save lines, by handle; nil when the table
// is not one iptables can read.
type iptablesView map[uint64]iptablesRule

// iptablesRule is one rule's line, and what of it is shown by name only.
type iptablesRule struct {
	text    string
	partial []string
}

// iptablesTable reads table tk whole and says it in iptables' words, when it is iptables'.
func (rr *RuleReader) iptablesTable(tk tableKey) iptablesView {
	if v, done := rr.iptables[tk]; done {
		return v
	}
	rr.iptables[tk] = nil
	var builtins []string
	switch tk.family {
	case unix.NFPROTO_IPV4, unix.NFPROTO_IPV6:
		builtins = iptablesNames[tk.table]
	case unix.NFPROTO_BRIDGE, unix.NFPROTO_ARP:
		builtins, _ = xtables.ToolBuiltins(tk.family, tk.table)
	}
	if builtins == nil {
		return nil
	}
	if rr.chains == nil {
		chains, err := Chains(rr.c)
		if err != nil {
			return nil
		}
		rr.chains = chains
	}
	for k, ch := range rr.chains {
		if k.Family == tk.family && k.Table == tk.table && ch.Base && !slices.Contains(builtins, k.Chain) {
			return nil
		}
	}
	rules, err := dumpRules(rr.c, tk.family, tk.table, "")
	if err != nil {
		return nil
	}
	v := iptablesView{}
	// iptables' rules in one chain, in the order read, for ResolveSets to ask each
	// ipset's name once for the table.
	all := &xtables.Table{Family: tk.family, Name: tk.table, Chains: []xtables.Chain{{}}}
	for _, ru := range rules {
		exprs := make([]expr.Any, len(ru.Exprs))
		for i, e := range ru.Exprs {
			if e.Expr == nil {
				return nil
			}
			exprs[i] = e.Expr
		}
		if tk.family == unix.NFPROTO_BRIDGE || tk.family == unix.NFPROTO_ARP {
			// Their rules are decoded whole or refused: nothing is shown by name only.
			text, err := xtables.ToolRuleFromNft(tk.family, tk.table, ru.Chain, exprs, ru.UserData)
			if err != nil {
				return nil
			}
			v[ru.Handle] = iptablesRule{text: text}
			continue
		}
		r, err := xtables.RuleFromNft(tk.family, exprs)
		if err != nil {
			return nil
		}
		all.Chains[0].Rules = append(all.Chains[0].Rules, r)
	}
	if len(all.Chains[0].Rules) > 0 {
		if rr.IpsetSocket >= 0 {
			// Unresolved, a set match says so in its notes.
			_ = xtables.ResolveSets(all, rr.IpsetSocket)
		}
		for i, ru := range rules {
			text, partial := all.Chains[0].Rules[i].Save(ru.Chain, tk.family)
			v[ru.Handle] = iptablesRule{text, partial}
		}
	}
	rr.iptables[tk] = v
	return v
}

// IptablesTable says whether a table is one of the iptables family's (iptables-nft,
// ebtables-nft, arptables-nft): then its chains' policies are changed with that tool too.
func (rr *RuleReader) IptablesTable(family uint8, table string) bool {
	return rr.iptablesTable(tableKey{family, table}) != nil
}

// IptablesTool is the command of the iptables family that writes a family's tables:
// iptables, ip6tables, ebtables (bridge) or arptables (arp).
func IptablesTool(family uint8) string {
	switch family {
	case unix.NFPROTO_IPV6:
		return "ip6tables"
	case unix.NFPROTO_BRIDGE:
		return "ebtables"
	case unix.NFPROTO_ARP:
		return "arptables"
	}
	return "iptables"
}
