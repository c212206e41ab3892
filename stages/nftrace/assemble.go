package nftrace

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/nft"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Bounds on what a trace keeps, so that a flood cannot grow memory without limit.
const (
	maxInvocations = 8192
	maxEventsPer   = 512
)

// invocation is one base-chain invocation: the events of one packet from the moment
// nft_do_chain entered a base chain (the event carrying the packet) to the next one.
type invocation struct {
	events []traceEvent
}

// collector keeps the events of the flow as they arrive.
type collector struct {
	own string

	mu     sync.Mutex
	ends   evidence.Endpoints // the flow's in the traced namespace
	invs   []*invocation
	cur    map[uint32]*invocation
	ownIDs map[uint32]bool
	err    error

	traced  atomic.Uint64
	lost    atomic.Uint64
	omitted atomic.Uint64
	bad     atomic.Uint64
}

func (c *collector) init(flow evidence.Endpoint, own string) {
	c.ends, c.own = evidence.Endpoints{flow}, own
	c.cur = map[uint32]*invocation{}
	c.ownIDs = map[uint32]bool{}
}

func isOwn(ev *traceEvent, own string) bool {
	return ev.Family == unix.NFPROTO_INET && ev.Table == own
}

// add files an event. Invocations are kept when the packet passed the trace table (its
// id was seen there: the id is per packet) or its headers belong to the flow; other
// packets traced in the namespace (a user's own nftrace rules) are not this flow's.
func (c *collector) add(ev traceEvent) {
	own := isOwn(&ev, c.own)
	ev.LL = nil
	c.mu.Lock()
	defer c.mu.Unlock()
	if own {
		c.ownIDs[ev.ID] = true
		if ev.Type == unix.NFT_TRACETYPE_RULE && ev.Handle != 0 {
			c.traced.Add(1)
		}
	}
	inv := c.cur[ev.ID]
	if ev.HasPacket || inv == nil {
		if !own && !c.ownIDs[ev.ID] && !matchFlow(c.ends, ev) {
			delete(c.cur, ev.ID)
			return
		}
		if len(c.invs) >= maxInvocations {
			c.omitted.Add(1)
			delete(c.cur, ev.ID)
			return
		}
		inv = &invocation{}
		c.invs = append(c.invs, inv)
		c.cur[ev.ID] = inv
	}
	if len(inv.events) >= maxEventsPer {
		c.omitted.Add(1)
		return
	}
	inv.events = append(inv.events, ev)
}

func (c *collector) take() []*invocation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.invs
}

func (c *collector) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

func (c *collector) getErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// grow adds an endpoint whose packets are the flow's too.
func (c *collector) grow(e evidence.Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ends = append(c.ends, e)
}

// matchFlow reports whether a traced packet's headers belong to the flow: either end is
// one of its endpoints. When the transport protocol is unknown (IPv6 extension headers)
// the addresses decide. c.mu held.
func matchFlow(ends evidence.Endpoints, ev traceEvent) bool {
	src, dst, proto, ok := packetAddrs(ev.Network, ev.Transport)
	if !ok {
		return false
	}
	if proto != 0 {
		_, ok := ends.Match(proto, src, dst, 0)
		return ok
	}
	for _, e := range ends {
		if src.Addr() == e.Addr || dst.Addr() == e.Addr {
			return true
		}
	}
	return false
}

// ruleKey names a rule.
type ruleKey struct {
	nft.ChainKey
	Handle uint64
}

// resolved is what Stop learnt from the ruleset: chains (for hooks) and rendered rules.
type resolved struct {
	chains map[nft.ChainKey]nft.Chain
	rules  map[ruleKey]nft.Rule
	// chainErr says why a chain's rules could not be read.
	chainErr map[nft.ChainKey]error
	// iptables holds the tables, Chain "", that the iptables family's tools made: a policy
	// there is theirs to change.
	iptables map[nft.ChainKey]bool
}

// rule returns a rule as read, or an honest note for its text when it is not known.
func (r resolved) rule(k ruleKey) nft.Rule {
	if s, ok := r.rules[k]; ok {
		return s
	}
	if err := r.chainErr[k.ChainKey]; err != nil {
		return nft.Rule{Text: fmt.Sprintf("handle %d # (rule not read: %v)", k.Handle, err)}
	}
	return nft.Rule{Text: fmt.Sprintf("handle %d # (rule no longer in the ruleset)", k.Handle)}
}

// resolve reads, once per chain, the chains and the rules the traces met, and renders
// them. Errors are returned alongside whatever could be read.
func resolve(c nft.Executor, ipsetSock int, invs []*invocation, own string, chains0 map[nft.ChainKey]nft.Chain, links map[uint32]string) (resolved, []error) {
	res := resolved{chains: map[nft.ChainKey]nft.Chain{}, rules: map[ruleKey]nft.Rule{}, chainErr: map[nft.ChainKey]error{}, iptables: map[nft.ChainKey]bool{}}
	var errs []error
	for k, v := range chains0 {
		res.chains[k] = v
	}
	if chains, err := nft.Chains(c); err != nil {
		errs = append(errs, err)
	} else {
		for k, v := range chains {
			res.chains[k] = v
		}
	}

	// The chains whose rules the traces met, in a stable order.
	need := map[nft.ChainKey]bool{}
	var order []nft.ChainKey
	policies := map[nft.ChainKey]bool{}
	for _, inv := range invs {
		for i := range inv.events {
			ev := &inv.events[i]
			if ev.Type == unix.NFT_TRACETYPE_POLICY && !isOwn(ev, own) {
				policies[nft.ChainKey{Family: ev.Family, Table: ev.Table}] = true
			}
			if isOwn(ev, own) || ev.Handle == 0 {
				continue
			}
			k := nft.ChainKey{Family: ev.Family, Table: ev.Table, Chain: ev.Chain}
			if !need[k] {
				need[k] = true
				order = append(order, k)
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.Family != b.Family {
			return a.Family < b.Family
		}
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		return a.Chain < b.Chain
	})

	rr := nft.NewRuleReader(c, links)
	rr.IpsetSocket = ipsetSock
	for _, ck := range order {
		rules, err := rr.ChainRules(ck)
		if err != nil {
			res.chainErr[ck] = err
			errs = append(errs, err)
			continue
		}
		for h, r := range rules {
			res.rules[ruleKey{ck, h}] = r
		}
	}
	for tk := range policies {
		res.iptables[tk] = rr.IptablesTable(tk.Family, tk.Table)
	}
	return res, append(errs, rr.Errs()...)
}

// assemble turns the kept invocations into traces: one per packet and hook, the base
// chains of one hook merged in priority order, diagnose's own table left out of the steps.
func assemble(invs []*invocation, own string, res resolved, links map[uint32]string) []evidence.Trace {
	traces := []evidence.Trace{}
	type open struct {
		idx    int
		hook   string
		family string
		prio   int32
		ended  bool
	}
	opens := map[uint32]*open{}
	for _, inv := range invs {
		if len(inv.events) == 0 {
			continue
		}
		ev0 := &inv.events[0]
		hook, prio := "", int32(0)
		if ci, ok := res.chains[nft.ChainKey{Family: ev0.Family, Table: ev0.Table, Chain: ev0.Chain}]; ok && ci.Base {
			hook, prio = nft.HookName(ev0.Family, ci.Hook), ci.Priority
		}
		fam := hookFamily(ev0)
		o := opens[ev0.ID]
		// The next base chain on the same hook for the same packet runs at a higher
		// priority; anything else is another hook, or another packet with the same id.
		if o == nil || o.ended || hook == "" || o.hook != hook || o.family != fam || prio <= o.prio {
			traces = append(traces, evidence.Trace{ID: ev0.ID, Family: fam, Hook: hook, Steps: []evidence.TraceStep{}})
			o = &open{idx: len(traces) - 1, hook: hook, family: fam, prio: prio}
			opens[ev0.ID] = o
		}
		o.prio = prio
		tr := &traces[o.idx]
		for i := range inv.events {
			ev := &inv.events[i]
			if ev.HasPacket {
				fillPacket(tr, ev, links)
			}
			step, keep, final := makeStep(ev, own, res)
			ownEv := isOwn(ev, own)
			if keep && !ownEv {
				tr.Steps = append(tr.Steps, step)
			}
			if final == "" {
				continue
			}
			tr.Verdict = final
			switch final {
			case "drop":
				o.ended = true
				if !ownEv {
					s := step
					tr.DroppedBy = &s
				}
			case "queue", "stolen":
				o.ended = true
			}
		}
	}
	return traces
}

// hookFamily is the family of the hook the packet passed: ip or ip6 for ip, ip6 and inet
// tables alike (NFTA_TRACE_NFPROTO), bridge, netdev or arp otherwise.
func hookFamily(ev *traceEvent) string {
	if ev.NFProto != 0 {
		return nft.FamilyName(uint8(ev.NFProto))
	}
	return nft.FamilyName(ev.Family)
}

func fillPacket(tr *evidence.Trace, ev *traceEvent, links map[uint32]string) {
	if tr.Iif == "" && ev.Iif != 0 {
		tr.Iif = ifaceName(links, ev.Iif)
	}
	if tr.Oif == "" && ev.Oif != 0 {
		tr.Oif = ifaceName(links, ev.Oif)
	}
	if !tr.Src.IsValid() {
		if src, dst, _, ok := packetAddrs(ev.Network, ev.Transport); ok {
			tr.Src, tr.Dst = src, dst
		}
	}
}

// makeStep turns an event into a step, and returns the verdict it gives the packet on
// this hook when it is final (accept, drop, queue, stolen). keep is false for events that
// are not steps: the end of a base chain, which the policy event follows.
//
// Measured on Linux 6.18: every event but the policy one has type RULE; the end of a
// chain is a RULE event without handle and with verdict continue; an explicit "return"
// rule is a RULE event with verdict return.
func makeStep(ev *traceEvent, own string, res resolved) (st evidence.TraceStep, keep bool, final string) {
	st = evidence.TraceStep{
		Family: nft.FamilyName(ev.Family),
		Table:  ev.Table,
		Chain:  ev.Chain,
		Handle: ev.Handle,
	}
	switch ev.Type {
	case unix.NFT_TRACETYPE_POLICY:
		st.Type = "policy"
		st.Verdict = policyName(ev.Policy)
		final = st.Verdict
		// A policy has no text, but its Syntax still says whose tool changes it.
		if res.iptables[nft.ChainKey{Family: ev.Family, Table: ev.Table}] {
			st.Syntax = nft.IptablesTool(ev.Family)
		}
	case unix.NFT_TRACETYPE_RULE, unix.NFT_TRACETYPE_RETURN:
		st.Type = "rule"
		if ev.HasVerdict {
			st.Verdict = nft.VerdictString(ev.Verdict, ev.VerdictChain)
			if nft.Terminal(ev.Verdict) {
				final = st.Verdict
			}
		}
		if ev.Handle == 0 && final == "" {
			// The end of a chain. In a base chain the policy event follows; in a
			// regular chain the packet returns to the chain that jumped here.
			ci, ok := res.chains[nft.ChainKey{Family: ev.Family, Table: ev.Table, Chain: ev.Chain}]
			if ok && ci.Base {
				return st, false, ""
			}
			st.Type, st.Verdict = "return", "return"
		} else if ev.Type == unix.NFT_TRACETYPE_RETURN {
			st.Type = "return"
		}
	default:
		st.Type = fmt.Sprintf("type %d", ev.Type)
	}
	if ev.Handle != 0 && !isOwn(ev, own) {
		r := res.rule(ruleKey{nft.ChainKey{Family: ev.Family, Table: ev.Table, Chain: ev.Chain}, ev.Handle})
		st.Rule, st.Syntax, st.Number, st.Reject = r.Text, "nft", r.Position, r.Reject
		if r.Iptables != "" {
			st.Rule, st.Syntax, st.Nft, st.Partial = r.Iptables, nft.IptablesTool(ev.Family), r.Text, r.Partial
		}
	}
	return st, true, final
}

func policyName(p uint32) string {
	switch p {
	case nft.Accept:
		return "accept"
	case nft.Drop:
		return "drop"
	}
	return nft.VerdictString(int32(p), "")
}
