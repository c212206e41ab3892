package nft

// RuleReader reads and renders the rules of chains, reading each table's sets once.
// Errs lists what it could not read (sets), a rule rendering then falls back to Undecoded.
type RuleReader struct {
	c        Executor
	links    map[uint32]string
	sets     map[tableKey]map[string]*setInfo
	setsErr  map[tableKey]error
	errs     []error
	chains   map[ChainKey]Chain
	iptables map[tableKey]iptablesView
	// IpsetSocket is a socket (AF_INET) of the rules' namespace on which iptables' set
	// matches' ipset names are asked for; -1: they are not, and such a rule says so.
	IpsetSocket int
}

type tableKey struct {
	family uint8
	table  string
}

// NewRuleReader reads rules on c, naming interface indexes from links.
func NewRuleReader(c Executor, links map[uint32]string) *RuleReader {
	return &RuleReader{c: c, links: links, sets: map[tableKey]map[string]*setInfo{}, setsErr: map[tableKey]error{}, iptables: map[tableKey]iptablesView{}, IpsetSocket: -1}
}

// Rule is one rule of a chain as the trace names it.
type Rule struct {
	// Text is the rule in nft syntax, as `nft -a list ruleset` prints it, or Undecoded's.
	Text string
	// Iptables is the rule as iptables-save (ip6tables-save) prints it, when its table is
	// iptables-nft's (every rule and base chain there is one iptables reads back).
	Iptables string
	// Partial says what of Iptables is shown by name only (xtables.Rule.Save's notes).
	Partial []string
	// Position is the rule's place in its chain, from 1: iptables numbers rules so.
	Position int
	// Reject is RejectTCPReset or RejectICMP when the rule rejects the packet.
	Reject string
}

// ChainRules returns the rules of a chain, by handle.
func (rr *RuleReader) ChainRules(ck ChainKey) (map[uint64]Rule, error) {
	rules, err := dumpRules(rr.c, ck.Family, ck.Table, ck.Chain)
	if err != nil {
		return nil, err
	}
	out := map[uint64]Rule{}
	tk := tableKey{ck.Family, ck.Table}
	ifName := func(i uint32) (string, bool) { n, ok := rr.links[i]; return n, ok }
	for i, ru := range rules {
		env := Env{Family: ck.Family, IfName: ifName}
		if hasLookup(ru.Exprs) {
			if _, done := rr.sets[tk]; !done && rr.setsErr[tk] == nil {
				s, err := dumpSets(rr.c, ck.Family, ck.Table)
				if err != nil {
					rr.setsErr[tk] = err
					rr.errs = append(rr.errs, err)
				} else {
					rr.sets[tk] = s
				}
			}
			env.Sets = rr.sets[tk]
			fetchAnonymous(rr.c, ck.Family, ck.Table, env.Sets, ru.Exprs)
		}
		text, err := Render(env, ru.Exprs, ru.Comment)
		if err != nil {
			text = Undecoded(ru.Handle, err)
		}
		ipt := rr.iptablesTable(tk)[ru.Handle]
		out[ru.Handle] = Rule{Text: text, Iptables: ipt.text, Partial: ipt.partial, Position: i + 1, Reject: rejectOf(ck.Family, ru.Exprs)}
	}
	return out, nil
}

func hasLookup(exprs []ruleExpr) bool {
	for _, e := range exprs {
		if e.Name == "lookup" || e.Name == "dynset" || e.Name == "objref" {
			return true
		}
	}
	return false
}

// fetchAnonymous reads the elements of the anonymous sets a rule looks up (named sets are
// printed by name, as nft does).
func fetchAnonymous(c Executor, family uint8, table string, sets map[string]*setInfo, exprs []ruleExpr) {
	for _, e := range exprs {
		l, ok := lookupOf(e)
		if !ok {
			continue
		}
		s := sets[l]
		if s == nil || !s.anonymous() || s.Elems != nil || s.ElemsErr != nil {
			continue
		}
		s.Elems, s.ElemsErr = dumpElems(c, family, table, s.Name)
		if s.ElemsErr == nil && s.Elems == nil {
			s.Elems = []setElem{}
		}
	}
}

// Errs are the errors met reading the tables' sets so far.
func (rr *RuleReader) Errs() []error { return rr.errs }
