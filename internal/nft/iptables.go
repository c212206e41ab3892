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
// ("incompatible, use 'nft' tool"), so its rules stay in nft's words.

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
	builtins, ok := iptablesNames[tk.table]
	if !ok || tk.family != unix.NFPROTO_IPV4 && tk.family != unix.NFPROTO_IPV6 {
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
	// One chain holding every rule, in the order read: ResolveSets asks each ipset's name
	// once for the table.
	all := &xtables.Table{Family: tk.family, Name: tk.table, Chains: []xtables.Chain{{}}}
	for _, ru := range rules {
		exprs := make([]expr.Any, len(ru.Exprs))
		for i, e := range ru.Exprs {
			if e.Expr == nil {
				return nil
			}
			exprs[i] = e.Expr
		}
		r, err := xtables.RuleFromNft(tk.family, exprs)
		if err != nil {
			return nil
		}
		all.Chains[0].Rules = append(all.Chains[0].Rules, r)
	}
	if rr.IpsetSocket >= 0 {
		// Unresolved, a set match says so in its notes.
		_ = xtables.ResolveSets(all, rr.IpsetSocket)
	}
	v := iptablesView{}
	for i, ru := range rules {
		text, partial := all.Chains[0].Rules[i].Save(ru.Chain, tk.family)
		v[ru.Handle] = iptablesRule{text, partial}
	}
	rr.iptables[tk] = v
	return v
}

// IptablesTool is the iptables command of a family: iptables or ip6tables.
func IptablesTool(family uint8) string {
	if family == unix.NFPROTO_IPV6 {
		return "ip6tables"
	}
	return "iptables"
}
