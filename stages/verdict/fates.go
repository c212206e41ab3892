package verdict

import (
	"net/netip"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Fate is what became of one captured packet of the flow.
type Fate struct {
	Time      time.Time
	Iface     string
	Direction evidence.Direction
	Src       string
	Dst       string
	Flags     string
	// Fate: dropped, not_dropped (arrived and no drop seen), sent (left this host), followed
	// (captured in another namespace the flow went on to).
	Fate   string
	Stage  Stage
	Reason string
	At     string // the dropping call site
}

// PacketFate is the verdict on one packet of the capture: what its Fate says, and what
// the evidence shows beside it, for the comment on it in the pcapng.
type PacketFate struct {
	Packet evidence.Packet
	Seen   Seen
	// Stage is where it died: for SeenDropped and SeenFirewallDrop.
	Stage Stage
	// Drop is the kernel drop event that is the packet's, for SeenDropped.
	Drop *evidence.Drop
	// Traces are the packet's walk through the firewall, hook by hook; nil when no trace
	// is its.
	Traces []evidence.Trace
	// Lost counts the flow's drop events lost, for SeenLost; Kept the ones kept, for
	// SeenNotKept.
	Lost uint64
	Kept int
}

// Seen is what the evidence shows of one packet: finer than Fate.Fate, which says
// not_dropped for all but sent and dropped.
type Seen string

const (
	SeenSent         Seen = "sent"          // it left this host
	SeenDropped      Seen = "dropped"       // a kernel drop event is the packet's
	SeenFirewallDrop Seen = "firewall_drop" // its trace dropped it, no kernel drop event recorded
	SeenNoKernel     Seen = "no_kernel"     // the kernel drop stage did not run: fate unknown
	SeenNotKept      Seen = "not_kept"      // after the last drop event kept: fate unknown
	SeenLost         Seen = "lost"          // no drop recorded, but drop events were lost
	SeenDelivered    Seen = "delivered"     // no drop, and the flow was delivered
	SeenNotDropped   Seen = "not_dropped"
	// SeenFollowed: captured in another namespace the flow went on to; the same packet's
	// capture in this one carries its fate.
	SeenFollowed Seen = "followed"
)

// fate is the packet's Fate, as Verdict.Fates lists it.
func (p PacketFate) fate() Fate {
	f := Fate{Time: p.Packet.Time, Iface: p.Packet.Iface, Direction: p.Packet.Direction,
		Src: p.Packet.Src.String(), Dst: p.Packet.Dst.String(), Flags: p.Packet.Flags, Fate: "not_dropped"}
	switch p.Seen {
	case SeenSent:
		f.Fate = "sent"
	case SeenFollowed:
		f.Fate = "followed"
	case SeenDropped:
		f.Fate, f.Stage, f.Reason, f.At = "dropped", p.Stage, p.Drop.Reason, p.Drop.Location
	}
	return f
}

// PacketFates returns the verdict on each packet of the capture. v is Judge(ev): for the
// packets the evidence keeps, the fate is the one in v.Fates, by the same join.
//
// Call the returned function once for every packet of the capture, in capture order (the
// pcap's): it joins each packet with the evidence as it goes, so it covers every packet,
// not only the first ones the evidence keeps. A drop is a packet's when the tuple and
// flags match and it comes within dropWindow after the capture, the earliest unused one
// first. Firewall traces carry no time, so each packet takes the next trace of its tuple
// that entered the firewall on its side (prerouting for arrivals, output for what this
// host sent) on its interface.
func PacketFates(ev *evidence.Evidence, v Verdict) func(evidence.Packet) PacketFate {
	local, elsewhere := splitDrops(ev)
	local, _ = countedDrops(ev, local)
	downstream, _ := splitDownstream(ev, elsewhere)
	downstream, _ = countedDrops(ev, downstream)
	return newJoin(ev, local, downstream, v.Outcome == Delivered).fate
}

// fates joins the packets the evidence keeps with the drops of this namespace, and with
// those of the namespaces a translation sent them on to.
func fates(ev *evidence.Evidence, local, downstream []evidence.Drop) []Fate {
	if ev.Arrival == nil {
		return nil
	}
	j := newJoin(ev, local, downstream, false)
	var out []Fate
	for _, p := range ev.Arrival.Packets {
		out = append(out, j.fate(p).fate())
	}
	return out
}

// join walks the capture's packets in order, giving each the drop and the trace that are
// its.
type join struct {
	delivered bool
	local     []evidence.Drop // this namespace's drops that count, as the verdict sees them
	used      []bool
	// downstream are the drops of the flow's translated packets in the namespaces they
	// went on to; ev is for the translations and those namespaces' firewall traces.
	downstream []evidence.Drop
	usedDown   []bool
	ev         *evidence.Evidence
	fw         *fwDropped // the flow's first firewall drop, as the verdict sees it
	groups     []*traceGroup
	// next is, per tuple and side, the first group not yet taken: groups before it are taken.
	next map[groupKey]int

	kernelRan bool
	lost      uint64
	// keptUntil is the time of the last drop kept when the kernel stage kept only the first
	// drops of the flow; zero when it kept them all.
	keptUntil time.Time
	kept      int
}

// dropWindow is how long after its capture a packet's drop may come: drops happen in the
// same softirq as the receive, so far less, but a queued socket purge may come later.
const dropWindow = 2 * time.Second

func newJoin(ev *evidence.Evidence, local, downstream []evidence.Drop, delivered bool) *join {
	j := &join{delivered: delivered, local: local, used: make([]bool, len(local)), fw: firewallDrop(ev.Firewall), next: map[groupKey]int{},
		downstream: downstream, usedDown: make([]bool, len(downstream)), ev: ev}
	if k := ev.Kernel; k != nil && k.Error == "" {
		j.kernelRan = true
		j.lost = k.Lost
		if n := len(k.Drops); k.Matched > uint64(n) && n > 0 {
			j.keptUntil = k.Drops[n-1].Time
			j.kept = n
		}
	}
	if ev.Firewall != nil {
		j.groups = traceGroups(ev.Firewall.Traces)
	}
	return j
}

func (j *join) fate(p evidence.Packet) PacketFate {
	f := PacketFate{Packet: p}
	if p.Netns != 0 {
		// Not this namespace's: no drop, trace or count of it here is this packet's.
		f.Seen = SeenFollowed
		return f
	}
	g := j.takeGroup(p)
	if g != nil {
		f.Traces = g.traces
	}
	if p.Direction == evidence.Out {
		f.Seen = SeenSent
		return f
	}
	fw := j.fw
	if t := g.dropped(); t != nil {
		fw = &fwDropped{family: t.Family, hook: t.Hook, step: *t.DroppedBy}
	}
	d := j.takeDrop(p)
	var there *evidence.Drop
	if d == nil && g.dropped() == nil {
		there = j.takeDownstream(p)
	}
	switch {
	case d != nil:
		f.Seen, f.Drop, f.Stage = SeenDropped, d, stageOf(d.Reason, *d, fw)
	case there != nil:
		f.Seen, f.Drop, f.Stage = SeenDropped, there, stageOf(there.Reason, *there, firewallDrop(j.ev.Firewall.Other(there.Netns)))
	case g.dropped() != nil:
		f.Seen, f.Stage = SeenFirewallDrop, Input
		if s, ok := fw.stage(); ok {
			f.Stage = s
		}
	case !j.kernelRan:
		f.Seen = SeenNoKernel
	case !j.keptUntil.IsZero() && p.Time.After(j.keptUntil):
		f.Seen, f.Kept = SeenNotKept, j.kept
	case j.lost > 0:
		f.Seen, f.Lost = SeenLost, j.lost
	case j.delivered:
		f.Seen = SeenDelivered
	default:
		f.Seen = SeenNotDropped
	}
	return f
}

// joins says whether drop d may be captured packet p's.
func joins(d evidence.Drop, p evidence.Packet) bool {
	if d.Src != p.Src || d.Dst != p.Dst || (d.Flags != "" && p.Flags != "" && d.Flags != p.Flags) {
		return false
	}
	dt := d.Time.Sub(p.Time)
	return dt >= -time.Millisecond && dt <= dropWindow
}

// takeDrop finds the earliest unused drop that joins p, and uses it.
func (j *join) takeDrop(p evidence.Packet) *evidence.Drop {
	for i := range j.local {
		if !j.used[i] && joins(j.local[i], p) {
			j.used[i] = true
			return &j.local[i]
		}
	}
	return nil
}

// Toward says whether a packet to dst is on its way to the flow's service: to the flow's
// own end, or to an end a translation of its connection sent it to.
func Toward(ev *evidence.Evidence, dst netip.AddrPort) bool {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if dst.Addr() == ev.Flow.Addr.Unmap() && dst.Port() == ev.Flow.Port {
		return true
	}
	if ev.Kernel != nil {
		for _, t := range ev.Kernel.Translations {
			if t.Kind != "SNAT" && dst == t.To() {
				return true
			}
		}
	}
	return false
}

// takeDownstream finds the earliest unused drop, in a namespace the flow went on to, of
// arriving packet p once translated, and uses it.
func (j *join) takeDownstream(p evidence.Packet) *evidence.Drop {
	if p.Direction != evidence.In || j.ev.Kernel == nil {
		return nil
	}
	for _, t := range j.ev.Kernel.Translations {
		if t.Orig.Src != p.Src || t.Orig.Dst != p.Dst {
			continue
		}
		// As it goes on: the reply direction's ends, reversed.
		q := p
		q.Src, q.Dst = t.Reply.Dst, t.Reply.Src
		for i := range j.downstream {
			if !j.usedDown[i] && joins(j.downstream[i], q) {
				j.usedDown[i] = true
				return &j.downstream[i]
			}
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

// dropped is the trace of the hook that dropped the group's packet; nil when none did,
// or when there is no group.
func (g *traceGroup) dropped() *evidence.Trace {
	if g == nil {
		return nil
	}
	for i, t := range g.traces {
		if t.Verdict == "drop" && t.DroppedBy != nil {
			return &g.traces[i]
		}
	}
	return nil
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
func (j *join) takeGroup(p evidence.Packet) *traceGroup {
	k := groupKey{p.Src, p.Dst, p.Direction == evidence.Out}
	i := j.next[k]
	for ; i < len(j.groups); i++ {
		if g := j.groups[i]; !g.taken && g.key() == k {
			break
		}
	}
	j.next[k] = i
	for ; i < len(j.groups); i++ {
		g := j.groups[i]
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
