package verdict

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Comments returns what to say of each captured packet of the flow, for the pcapng the
// report comes with: where it was captured, its way through the firewall, and its fate.
//
//	arrived on veth0; firewall: ip prerouting accept, ip input drop by inet guard input handle 2 `tcp dport 8080 drop`; dropped in input: NETFILTER_DROP at nft_do_chain+0x3e8
//	sent on veth0; firewall: ip output accept
//
// Call the returned function once for every packet of the capture, in capture order (the
// pcap's): it joins each packet with the evidence as it goes, so it covers every packet,
// not only the first ones the evidence keeps. Drops join as in the verdict's fates (same
// tuple and flags, within dropWindow after the capture, the earliest unused one first);
// firewall traces carry no time, so each packet takes the next trace of its tuple that
// entered the firewall on its side (prerouting for arrivals, output for what this host
// sent) on its interface. For the packets the evidence keeps, the fate said here is the
// one in Verdict.Fates. v is Judge(ev): the comments tell the verdict's story, they do not
// judge again.
func Comments(ev *evidence.Evidence, v Verdict) func(evidence.Packet) string {
	c := &commenter{delivered: v.Outcome == Delivered, fw: firewallDrop(ev.Firewall), next: map[groupKey]int{}}
	local, _ := splitDrops(ev)
	sentOut := 0
	if ev.Arrival != nil {
		sentOut = ev.Arrival.Out
	}
	c.local, _ = withoutNoise(local, sentOut)
	c.used = make([]bool, len(c.local))
	if k := ev.Kernel; k != nil && k.Error == "" {
		c.kernelRan = true
		c.lost = k.Lost
		if n := len(k.Drops); k.Matched > uint64(n) && n > 0 {
			c.keptUntil = k.Drops[n-1].Time
			c.kept = n
		}
	}
	if ev.Firewall != nil {
		c.groups = traceGroups(ev.Firewall.Traces)
	}
	return c.comment
}

type commenter struct {
	delivered bool
	local     []evidence.Drop // this namespace's drops that count, as the verdict sees them
	used      []bool
	fw        *fwDropped // the flow's first firewall drop, as the verdict sees it
	groups    []*traceGroup
	// next is, per tuple and side, the first group not yet taken: groups before it are taken.
	next map[groupKey]int

	kernelRan bool
	lost      uint64
	// keptUntil is the time of the last drop kept when the kernel stage kept only the first
	// kept drops of the flow; zero when it kept them all.
	keptUntil time.Time
	kept      int
}

func (c *commenter) comment(p evidence.Packet) string {
	where := p.Iface
	if where == "" {
		where = "an unknown interface"
	}
	var parts []string
	if p.Direction == evidence.Out {
		parts = append(parts, "sent on "+where)
	} else {
		parts = append(parts, "arrived on "+where)
	}
	g := c.takeGroup(p)
	if g != nil {
		parts = append(parts, "firewall: "+g.String())
	}
	if p.Direction == evidence.Out {
		return strings.Join(parts, "; ")
	}
	fw := c.fw
	if g != nil && g.dropped() != nil {
		t := g.dropped()
		fw = &fwDropped{family: t.Family, hook: t.Hook, step: *t.DroppedBy}
	}
	switch d := c.takeDrop(p); {
	case d != nil:
		at := d.Location
		if at == "" {
			at = d.Function
		}
		parts = append(parts, fmt.Sprintf("dropped in %s: %s at %s", stageOf(d.Reason, *d, fw), d.Reason, at))
	case g != nil && g.dropped() != nil:
		st := Input
		if s, ok := hookStage(g.dropped().Hook); ok {
			st = s
		}
		parts = append(parts, fmt.Sprintf("dropped in %s by the firewall (no kernel drop event recorded)", st))
	case !c.kernelRan:
		parts = append(parts, "fate unknown: the kernel drop stage did not run")
	case !c.keptUntil.IsZero() && p.Time.After(c.keptUntil):
		parts = append(parts, fmt.Sprintf("fate unknown: only the first %d drop events of the flow were kept", c.kept))
	case c.lost > 0:
		parts = append(parts, fmt.Sprintf("no drop recorded (%d drop event(s) of the flow were lost)", c.lost))
	case c.delivered:
		parts = append(parts, "delivered")
	default:
		parts = append(parts, "not dropped")
	}
	return strings.Join(parts, "; ")
}

// joins says whether drop d may be captured packet p's: the join rule of fates.
func joins(d evidence.Drop, p evidence.Packet) bool {
	if d.Src != p.Src || d.Dst != p.Dst || (d.Flags != "" && p.Flags != "" && d.Flags != p.Flags) {
		return false
	}
	dt := d.Time.Sub(p.Time)
	return dt >= -time.Millisecond && dt <= dropWindow
}

// takeDrop finds the earliest unused drop that joins p, and uses it.
func (c *commenter) takeDrop(p evidence.Packet) *evidence.Drop {
	for i := range c.local {
		if !c.used[i] && joins(c.local[i], p) {
			c.used[i] = true
			return &c.local[i]
		}
	}
	return nil
}

// traceGroup is one packet's walk through the firewall: the traces of its hooks.
type traceGroup struct {
	traces []evidence.Trace
	taken  bool
}

// groupKey is what a packet and the trace group it takes share: tuple and side.
type groupKey struct {
	src, dst netip.AddrPort
	sent     bool
}

// sent: the group began where this host's own packets enter the firewall.
func (g *traceGroup) sent() bool {
	switch g.traces[0].Hook {
	case "output", "postrouting", "egress":
		return true
	}
	return false
}

func (g *traceGroup) key() groupKey {
	return groupKey{g.traces[0].Src, g.traces[0].Dst, g.sent()}
}

// iface is the interface the group's packet entered (arrivals) or left (sent) by.
func (g *traceGroup) iface() string {
	if g.sent() {
		return g.traces[0].Oif
	}
	return g.traces[0].Iif
}

func (g *traceGroup) has(family, hook string) bool {
	for _, t := range g.traces {
		if t.Family == family && t.Hook == hook {
			return true
		}
	}
	return false
}

func (g *traceGroup) dropped() *evidence.Trace {
	for i, t := range g.traces {
		if t.Verdict == "drop" && t.DroppedBy != nil {
			return &g.traces[i]
		}
	}
	return nil
}

// String is each hook's verdict, and the rule or policy that dropped:
// "ip prerouting accept, ip input drop by inet guard input handle 2 `tcp dport 8080 drop`".
func (g *traceGroup) String() string {
	var hooks []string
	for _, t := range g.traces {
		s := t.Family + " " + t.Hook + " "
		if t.Verdict == "" {
			s += "(no verdict)"
		} else {
			s += t.Verdict
		}
		if by := t.DroppedBy; by != nil && t.Verdict == "drop" {
			s += fmt.Sprintf(" by %s %s %s", by.Family, by.Table, by.Chain)
			switch {
			case by.Type == "policy":
				s += " policy"
			case by.Rule != "":
				s += fmt.Sprintf(" handle %d `%s`", by.Handle, by.Rule)
			default:
				s += fmt.Sprintf(" handle %d", by.Handle)
			}
		}
		hooks = append(hooks, s)
	}
	return strings.Join(hooks, ", ")
}

// traceGroups gathers the traces into one group per packet, in the order the packets met
// the firewall. A packet's traces share its trace id, but ids are reused (a retransmission
// may get the same skb, so the same id): a group ends when a hook comes again, or when a
// packet this host sent comes back in (loopback).
func traceGroups(traces []evidence.Trace) []*traceGroup {
	open := map[uint32]*traceGroup{}
	var groups []*traceGroup
	for _, t := range traces {
		g := open[t.ID]
		if g == nil || g.has(t.Family, t.Hook) || g.sent() && (t.Hook == "prerouting" || t.Hook == "ingress") {
			g = &traceGroup{}
			open[t.ID] = g
			groups = append(groups, g)
		}
		g.traces = append(g.traces, t)
	}
	return groups
}

// takeGroup finds the first group not yet taken of p's tuple and side, on p's interface
// when the trace names one, and takes it.
func (c *commenter) takeGroup(p evidence.Packet) *traceGroup {
	k := groupKey{p.Src, p.Dst, p.Direction == evidence.Out}
	i := c.next[k]
	for ; i < len(c.groups); i++ {
		if g := c.groups[i]; !g.taken && g.key() == k {
			break
		}
	}
	c.next[k] = i
	for ; i < len(c.groups); i++ {
		g := c.groups[i]
		if g.taken || g.key() != k {
			continue
		}
		if in := g.iface(); in != "" && p.Iface != "" && in != p.Iface {
			continue
		}
		g.taken = true
		return g
	}
	return nil
}
