package xtables

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Which rule dropped a flow. x_tables records no trace of a packet, only counters: the
// rules whose packet counters grew while the flow was dropped (Grown) are the suspects,
// and the flow's own facts (the hook where it died, its addresses, protocol, ports and
// interfaces) rule out those that could not have dropped it (Candidates).

// RuleRef is one rule of a table, or a built-in chain's policy, and how much its
// counters grew.
type RuleRef struct {
	Family uint8
	Table  string
	Chain  string
	// Num is the rule's number in its chain from 1, as iptables -D CHAIN NUM takes it;
	// 0 stands for the chain's policy.
	Num int
	// Rule is the rule as the later read holds it; nil for a policy.
	Rule *Rule
	// Packets and Bytes are how much the counters grew.
	Packets, Bytes uint64
}

// Policy tells whether the reference is to a chain's policy rather than a rule.
func (r RuleRef) Policy() bool { return r.Num == 0 }

// Grown lists the rules and policies of after whose packet counter grew since before, a
// read of the same table; before nil stands for a table that did not exist (every counter
// grew from 0). A rule is found in before by its content (not by its counters), so a rule
// inserted or deleted between the reads shifts no counter onto another: a rule new in
// after grew by all it counts. Counters that went down were zeroed (iptables -Z): what
// they count now was counted since.
func Grown(before, after *Table) []RuleRef {
	var out []RuleRef
	olders := map[string]*Chain{}
	if before != nil {
		for i := range before.Chains {
			olders[before.Chains[i].Name] = &before.Chains[i]
		}
	}
	for ci := range after.Chains {
		c := &after.Chains[ci]
		old := olders[c.Name]
		ref := RuleRef{Family: after.Family, Table: after.Name, Chain: c.Name}
		if c.Policy != "" {
			var p, b uint64
			if old != nil {
				p, b = old.Packets, old.Bytes
			}
			if ref.Packets, ref.Bytes = grew(p, c.Packets), grew(b, c.Bytes); ref.Packets > 0 {
				out = append(out, ref)
			}
		}
		// The k-th of identical rules is paired with the k-th in before.
		olds := map[string][]*Rule{}
		if old != nil {
			for j := range old.Rules {
				k := ruleKey(&old.Rules[j])
				olds[k] = append(olds[k], &old.Rules[j])
			}
		}
		for ri := range c.Rules {
			r := &c.Rules[ri]
			var p, b uint64
			k := ruleKey(r)
			if o := olds[k]; len(o) > 0 {
				p, b = o[0].Packets, o[0].Bytes
				olds[k] = o[1:]
			}
			ref := ref
			ref.Num, ref.Rule = ri+1, r
			if ref.Packets, ref.Bytes = grew(p, r.Packets), grew(b, r.Bytes); ref.Packets > 0 {
				out = append(out, ref)
			}
		}
	}
	return out
}

// GrownAll is Grown for every table of after, each paired with the table of the same
// family and name in before.
func GrownAll(before, after []*Table) []RuleRef {
	var out []RuleRef
	for _, t := range after {
		var old *Table
		for _, o := range before {
			if o.Family == t.Family && o.Name == t.Name {
				old = o
			}
		}
		out = append(out, Grown(old, t)...)
	}
	return out
}

func grew(before, after uint64) uint64 {
	if after < before {
		return after
	}
	return after - before
}

// ruleKey is the rule without its counters, so that equal rules have equal keys.
func ruleKey(r *Rule) string {
	var k strings.Builder
	fmt.Fprintf(&k, "%v|%v|%q|%q|%d|%v|%d|%q|%v|", r.Src, r.Dst, r.InIface, r.OutIface, r.Proto, r.Frag, r.Inv, r.Verdict, r.Goto)
	for _, e := range append(slices.Clone(r.Matches), r.Target) {
		fmt.Fprintf(&k, "%q/%d/%x|", e.Name, e.Rev, e.Data)
	}
	return k.String()
}

// Packet is what is known of a dropped packet. A zero field is unknown and rules out
// nothing.
type Packet struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	// InIface and OutIface are the interfaces the packet came in by and was to leave by,
	// as far as the hook knows them (input: in only; output, postrouting: out only).
	InIface, OutIface string
}

// hookChains names the built-in chain of each hook as the verdict names the hook.
var hookChains = map[string]string{
	"prerouting": "PREROUTING", "input": "INPUT", "forward": "FORWARD", "output": "OUTPUT", "postrouting": "POSTROUTING",
}

// Candidates keeps, of grown (from Grown or GrownAll on tables, the later read), the rules
// and policies that could have dropped p at hook (prerouting, input, forward, output or
// postrouting), with reason NETFILTER_DROP:
//   - the rule's table is of p's family, and its chain is reachable from the table's
//     built-in chain for the hook through jumps and gotos of rules that could match p;
//   - its header (-s -d -p -i -o, negations included) and its tcp, udp and multiport
//     ports could match p (other matches are not judged: they may);
//   - it drops: its target is DROP or REJECT, or it is the hook's chain's DROP policy; or
//     it jumps or goes to a chain that can drop p, and no candidate lies in the chains
//     it leads to (a drop inside is better named there; without one, the deepest jump is
//     where the trail ends: a match's hotdrop, a dropping target this does not know).
//
// A target that drops only on failure (NAT) and QUEUE/NFQUEUE (a drop there has another
// reason) are not candidates.
func Candidates(tables []*Table, grown []RuleRef, hook string, p Packet) []RuleRef {
	builtin, ok := hookChains[hook]
	if !ok {
		return nil
	}
	var out []RuleRef
	for _, t := range tables {
		if fam := p.family(); fam != 0 && fam != t.Family {
			continue
		}
		j := judge{p: p, chains: map[string]*Chain{}, drops: map[string]int{}}
		for i := range t.Chains {
			j.chains[t.Chains[i].Name] = &t.Chains[i]
		}
		if c := j.chains[builtin]; c == nil || c.Policy == "" {
			continue
		}
		reach := j.reachable(builtin)
		mine := func(ref RuleRef) bool {
			return ref.Family == t.Family && ref.Table == t.Name && reach[ref.Chain]
		}
		terminal := func(ref RuleRef) bool {
			if ref.Policy() {
				return ref.Chain == builtin && j.chains[builtin].Policy == "DROP"
			}
			return dropsItself(ref.Rule) && j.couldMatch(ref.Rule)
		}
		// A jump is a candidate of its own only where the trail ends: no candidate, a
		// dropping rule or a deeper jump, in a chain it leads to.
		jumps := map[int]bool{}
		holds := map[string]bool{}
		for i, ref := range grown {
			if !mine(ref) {
				continue
			}
			if terminal(ref) {
				holds[ref.Chain] = true
				continue
			}
			if r := ref.Rule; !ref.Policy() && r.Target.Name == "" && j.chains[r.Verdict] != nil && j.couldMatch(r) && j.canDrop(r.Verdict) {
				jumps[i] = true
				holds[ref.Chain] = true
			}
		}
		for i, ref := range grown {
			if !mine(ref) || !terminal(ref) && !jumps[i] {
				continue
			}
			deeper := false
			if jumps[i] {
				for c := range j.reachable(ref.Rule.Verdict) {
					deeper = deeper || holds[c]
				}
			}
			if !deeper {
				out = append(out, ref)
			}
		}
	}
	return out
}

func (p Packet) family() uint8 {
	for _, a := range []netip.Addr{p.Src, p.Dst} {
		if a.Is4() || a.Is4In6() {
			return unix.NFPROTO_IPV4
		}
		if a.IsValid() {
			return unix.NFPROTO_IPV6
		}
	}
	return 0
}

// dropsItself: the rule's own target drops every packet it takes.
func dropsItself(r *Rule) bool {
	return r.Target.Name == "" && r.Verdict == "DROP" || r.Target.Name == "REJECT"
}

// judge answers, for one table and packet, which chains the packet can reach and which
// can drop it.
type judge struct {
	p      Packet
	chains map[string]*Chain
	// drops memoizes canDrop: 1 yes, 2 no, 3 being decided (a loop, which the kernel
	// refuses anyway, adds nothing).
	drops map[string]int
}

// reachable is from and every chain a packet like p can jump or go to from it.
func (j *judge) reachable(from string) map[string]bool {
	reach := map[string]bool{from: true}
	queue := []string{from}
	for len(queue) > 0 {
		c := j.chains[queue[0]]
		queue = queue[1:]
		if c == nil {
			continue
		}
		for i := range c.Rules {
			r := &c.Rules[i]
			if r.Target.Name == "" && j.chains[r.Verdict] != nil && !reach[r.Verdict] && j.couldMatch(r) {
				reach[r.Verdict] = true
				queue = append(queue, r.Verdict)
			}
		}
	}
	return reach
}

// canDrop tells whether a rule of the chain, or of one it jumps to, can drop p.
func (j *judge) canDrop(name string) bool {
	switch j.drops[name] {
	case 1:
		return true
	case 2, 3:
		return false
	}
	j.drops[name] = 3
	c := j.chains[name]
	yes := false
	for i := 0; c != nil && i < len(c.Rules) && !yes; i++ {
		r := &c.Rules[i]
		if !j.couldMatch(r) {
			continue
		}
		yes = dropsItself(r) || r.Target.Name == "" && j.chains[r.Verdict] != nil && j.canDrop(r.Verdict)
	}
	j.drops[name] = 2
	if yes {
		j.drops[name] = 1
	}
	return yes
}

// couldMatch tells whether the rule may match p: false only when a part it can judge
// rules p out.
func (j *judge) couldMatch(r *Rule) bool {
	p := j.p
	if !addrMatch(r.Src, r.SrcMask, p.Src, r.Inv&InvSrc != 0) || !addrMatch(r.Dst, r.DstMask, p.Dst, r.Inv&InvDst != 0) {
		return false
	}
	if r.Proto != 0 && p.Proto != 0 && (r.Proto == p.Proto) == (r.Inv&InvProto != 0) {
		return false
	}
	if !ifaceMatch(r.InIface, p.InIface, r.Inv&InvInIface != 0) || !ifaceMatch(r.OutIface, p.OutIface, r.Inv&InvOutIface != 0) {
		return false
	}
	for _, m := range r.Matches {
		if !portsMatch(m, p) {
			return false
		}
	}
	return true
}

// addrMatch compares an address with -s/-d: a prefix, or an address under a mask that is
// not a prefix (mask valid), as x_tables compares them.
func addrMatch(rule netip.Prefix, mask, a netip.Addr, inv bool) bool {
	if !rule.IsValid() || !a.IsValid() {
		return true
	}
	a = a.Unmap()
	if !mask.IsValid() {
		return rule.Contains(a) != inv
	}
	ra, m, b := rule.Addr().AsSlice(), mask.AsSlice(), a.AsSlice()
	if len(b) != len(m) || len(ra) != len(m) {
		return true // another family: not this rule's to judge
	}
	in := true
	for i := range m {
		in = in && ra[i]&m[i] == b[i]&m[i]
	}
	return in != inv
}

// ifaceMatch compares an interface with -i/-o, a trailing + matching any name it begins.
func ifaceMatch(rule, name string, inv bool) bool {
	if rule == "" || name == "" {
		return true
	}
	var in bool
	if prefix, ok := strings.CutSuffix(rule, "+"); ok {
		in = strings.HasPrefix(name, prefix)
	} else {
		in = name == rule
	}
	return in != inv
}

// portsMatch judges the tcp, udp and multiport matches (linux/netfilter/xt_tcpudp.h,
// xt_multiport.h) by p's ports; any other match may match.
func portsMatch(m Ext, p Packet) bool {
	d := m.Data
	switch {
	case (m.Name == "tcp" || m.Name == "udp") && m.Rev == 0:
		// struct xt_tcp: spts[2], dpts[2], option, flg_mask, flg_cmp, invflags;
		// struct xt_udp: spts[2], dpts[2], invflags. Both invert the source port with
		// 0x01 and the destination port with 0x02.
		proto, invAt := uint8(unix.IPPROTO_TCP), 11
		if m.Name == "udp" {
			proto, invAt = unix.IPPROTO_UDP, 8
		}
		if len(d) <= invAt {
			return true
		}
		if p.Proto != 0 && p.Proto != proto && !(proto == unix.IPPROTO_UDP && p.Proto == unix.IPPROTO_UDPLITE) {
			return false
		}
		inv := d[invAt]
		return portIn(xtEndian.Uint16(d[0:]), xtEndian.Uint16(d[2:]), p.SrcPort, inv&0x01 != 0) &&
			portIn(xtEndian.Uint16(d[4:]), xtEndian.Uint16(d[6:]), p.DstPort, inv&0x02 != 0)
	case m.Name == "multiport" && m.Rev <= 1 && len(d) >= 32:
		// struct xt_multiport: flags (0 source, 1 destination, 2 either), count,
		// ports[15]; revision 1 adds pflags[15] (ports[i] starts a range to ports[i+1])
		// and invert.
		flags, count := d[0], min(int(d[1]), 15)
		ports := func(i int) uint16 { return xtEndian.Uint16(d[2+2*i:]) }
		isRange := func(i int) bool { return m.Rev == 1 && len(d) >= 48 && d[32+i] != 0 }
		invert := m.Rev == 1 && len(d) >= 48 && d[47] != 0
		hit := func(port uint16) bool {
			for i := 0; i < count; i++ {
				if isRange(i) && i+1 < count {
					if ports(i) <= port && port <= ports(i+1) {
						return true
					}
					i++
				} else if ports(i) == port {
					return true
				}
			}
			return false
		}
		var known, got bool
		switch flags {
		case 0:
			known, got = p.SrcPort != 0, hit(p.SrcPort)
		case 1:
			known, got = p.DstPort != 0, hit(p.DstPort)
		default:
			known, got = p.SrcPort != 0 && p.DstPort != 0, hit(p.SrcPort) || hit(p.DstPort)
		}
		return !known || got != invert
	}
	return true
}

// portIn: an unknown port (0) may be in any range.
func portIn(lo, hi, port uint16, inv bool) bool {
	return port == 0 || (lo <= port && port <= hi) != inv
}
