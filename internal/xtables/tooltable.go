package xtables

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The tables ebtables-nft and arptables-nft write, read whole as their save commands
// print them.

// toolBase is a built-in chain of an ebtables or arptables table: its name, hook and the
// priority the tool gives its base chain.
type toolBase struct {
	name string
	hook nftables.ChainHook
	prio int32
}

// toolBuiltins are the built-in chains of the tables each tool writes, by family and
// table, in the order its save command prints them.
var toolBuiltins = map[uint8]map[string][]toolBase{
	unix.NFPROTO_BRIDGE: {
		"filter": {{"INPUT", *nftables.ChainHookInput, -200}, {"FORWARD", *nftables.ChainHookForward, -200}, {"OUTPUT", *nftables.ChainHookOutput, -200}},
		"nat":    {{"PREROUTING", *nftables.ChainHookPrerouting, -300}, {"OUTPUT", *nftables.ChainHookOutput, 100}, {"POSTROUTING", *nftables.ChainHookPostrouting, 300}},
	},
	// The arp family has no forward hook: arptables-nft makes its FORWARD chain a
	// regular one, and arptables-nft-save prints it among the user-defined chains.
	unix.NFPROTO_ARP: {
		"filter": {{"INPUT", nftables.ChainHook(0), 0}, {"OUTPUT", nftables.ChainHook(1), 0}},
	},
}

// ToolBuiltins are the built-in chains ebtables-nft (family unix.NFPROTO_BRIDGE) or
// arptables-nft (NFPROTO_ARP) gives a table of that name; ok is false for a table the
// tool does not write. A table is the tool's when its every base chain is one of these
// and its every rule converts (RuleFromNftBridge, RuleFromNftArp).
func ToolBuiltins(family uint8, table string) (chains []string, ok bool) {
	bases, ok := toolBuiltins[family][table]
	for _, b := range bases {
		chains = append(chains, b.name)
	}
	return chains, ok
}

// ToolChain is a chain of an ebtables or arptables table: its policy is a built-in
// chain's ACCEPT or DROP; for a user-defined chain, ebtables' RETURN, ACCEPT or DROP, and
// arptables' "-".
type ToolChain[R any] struct {
	Name, Policy string
	Rules        []R
}

// ToolTable is an ebtables or arptables table, its chains in the order the tool's save
// command prints them.
type ToolTable[R any] struct {
	Name   string
	Chains []ToolChain[R]
}

// BridgeTable is a table ebtables-nft wrote; ArpTable one arptables-nft wrote.
type (
	BridgeTable = ToolTable[BridgeRule]
	ArpTable    = ToolTable[ArpRule]
)

// BridgeFromNft reads an ebtables-nft table (family bridge, filter or nat) as
// ebtables-nft-save does; chains and rules are the table's, as google/nftables lists
// them (those of other tables are ignored).
func BridgeFromNft(t *nftables.Table, chains []*nftables.Chain, rules []*nftables.Rule) (*BridgeTable, error) {
	return toolFromNft(t, unix.NFPROTO_BRIDGE, "RETURN", chains, rules, func(r *nftables.Rule) (BridgeRule, string, error) {
		br, err := RuleFromNftBridge(r.Exprs, r.UserData)
		if br.Policy {
			return br, br.Verdict, err
		}
		return br, "", err
	})
}

// ArpFromNft reads an arptables-nft table (family arp, filter) as arptables-nft-save
// does.
func ArpFromNft(t *nftables.Table, chains []*nftables.Chain, rules []*nftables.Rule) (*ArpTable, error) {
	return toolFromNft(t, unix.NFPROTO_ARP, "-", chains, rules, func(r *nftables.Rule) (ArpRule, string, error) {
		if len(r.UserData) > 0 {
			return ArpRule{}, "", fmt.Errorf("rule userdata %x: %w", r.UserData, ErrNotIptables)
		}
		ar, err := RuleFromNftArp(r.Exprs)
		return ar, "", err
	})
}

// toolFromNft reads a table of family: the built-in chains in hook order (those the tool
// has not made yet as ACCEPT), then the user-defined ones by name, with userPolicy
// unless a rule sets it (convert returns the policy a rule sets instead of a rule).
func toolFromNft[R any](t *nftables.Table, family uint8, userPolicy string, chains []*nftables.Chain, rules []*nftables.Rule,
	convert func(*nftables.Rule) (R, string, error)) (*ToolTable[R], error) {
	bases, ok := toolBuiltins[family][t.Name]
	if uint8(t.Family) != family || !ok {
		return nil, fmt.Errorf("table %s of family %d: %w", t.Name, t.Family, ErrNotIptables)
	}
	mine := func(tb *nftables.Table) bool { return tb == nil || tb.Name == t.Name && tb.Family == t.Family }
	out := &ToolTable[R]{Name: t.Name}
	index := map[string]int{}
	for _, b := range bases {
		index[b.name] = len(out.Chains)
		out.Chains = append(out.Chains, ToolChain[R]{Name: b.name, Policy: "ACCEPT"})
	}
	var user []string
	for _, c := range chains {
		if !mine(c.Table) {
			continue
		}
		i, builtin := index[c.Name]
		switch {
		case c.Hooknum != nil && (!builtin || !bases[i].is(c)):
			return nil, fmt.Errorf("table %s chain %s: %w (not a built-in chain of the table)", t.Name, c.Name, ErrNotIptables)
		case c.Hooknum == nil && builtin:
			return nil, fmt.Errorf("table %s chain %s: %w (a regular chain of a built-in chain's name)", t.Name, c.Name, ErrNotIptables)
		case builtin:
			if c.Policy != nil && *c.Policy == nftables.ChainPolicyDrop {
				out.Chains[i].Policy = "DROP"
			}
		default:
			user = append(user, c.Name)
		}
	}
	slices.Sort(user)
	for _, name := range user {
		index[name] = len(out.Chains)
		out.Chains = append(out.Chains, ToolChain[R]{Name: name, Policy: userPolicy})
	}
	for _, r := range rules {
		if !mine(r.Table) {
			continue
		}
		i, err := ruleChain(t, r, index)
		if err != nil {
			return nil, err
		}
		rule, policy, err := convert(r)
		if err != nil {
			return nil, fmt.Errorf("table %s chain %s rule %d: %w", t.Name, r.Chain.Name, r.Handle, err)
		}
		if policy == "" {
			out.Chains[i].Rules = append(out.Chains[i].Rules, rule)
			continue
		}
		if i < len(bases) {
			return nil, fmt.Errorf("table %s chain %s rule %d: %w (a policy rule in a built-in chain)", t.Name, r.Chain.Name, r.Handle, ErrNotIptables)
		}
		out.Chains[i].Policy = policy
	}
	return out, nil
}

// is says whether a base chain is this built-in chain as the tool makes it.
func (b toolBase) is(c *nftables.Chain) bool {
	return *c.Hooknum == b.hook && c.Type == nftables.ChainTypeFilter && c.Priority != nil && int32(*c.Priority) == b.prio
}

// toolRule is a rule the tools' save commands print.
type toolRule interface {
	Save(chain string) (string, error)
	Counters() (packets, bytes uint64)
}

// Save renders the table as the tool's save command (1.8.9) prints it, without its
// comment lines: "*name", a ":CHAIN POLICY" line per chain, the rules (with -c, each with
// its "[packets:bytes]" first). Neither tool prints COMMIT.
func (t *ToolTable[R]) Save(counters bool) (string, error) {
	var b strings.Builder
	b.WriteString("*" + t.Name + "\n")
	for _, c := range t.Chains {
		fmt.Fprintf(&b, ":%s %s\n", c.Name, c.Policy)
	}
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			tr, ok := any(r).(toolRule)
			if !ok {
				return "", fmt.Errorf("rule type %T: %w", r, ErrNotIptables)
			}
			text, err := tr.Save(c.Name)
			if err != nil {
				return "", fmt.Errorf("chain %s: %w", c.Name, err)
			}
			if counters {
				p, by := tr.Counters()
				fmt.Fprintf(&b, "[%d:%d] ", p, by)
			}
			b.WriteString(text + "\n")
		}
	}
	return b.String(), nil
}

// ToolRuleFromNft converts one rule of an ebtables-nft or arptables-nft table (family
// unix.NFPROTO_BRIDGE or NFPROTO_ARP) and renders it in chain: the tool's save line, or
// for an ebtables user-defined chain's policy rule the "-P CHAIN POLICY" that set it.
func ToolRuleFromNft(family uint8, table, chain string, exprs []expr.Any, userdata []byte) (string, error) {
	builtins, ok := ToolBuiltins(family, table)
	if !ok {
		return "", fmt.Errorf("table %s of family %d: %w", table, family, ErrNotIptables)
	}
	if family == unix.NFPROTO_ARP {
		if len(userdata) > 0 {
			return "", fmt.Errorf("rule userdata %x: %w", userdata, ErrNotIptables)
		}
		r, err := RuleFromNftArp(exprs)
		if err != nil {
			return "", err
		}
		return r.Save(chain)
	}
	r, err := RuleFromNftBridge(exprs, userdata)
	if err != nil {
		return "", err
	}
	if r.Policy && slices.Contains(builtins, chain) {
		return "", fmt.Errorf("a policy rule in built-in chain %s: %w", chain, ErrNotIptables)
	}
	return r.Save(chain)
}
