// Package verdict judges the evidence of one run: where the flow's packets died and why,
// packet by packet too, and what the host's state says about the fix. Package prose puts
// the judgement in words, package reasons knows what each drop reason means. It is a pure
// function of the evidence: no kernel, no clock, no files.
package verdict

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// Outcome is what happened to the flow.
type Outcome string

const (
	Dropped   Outcome = "dropped"
	Delivered Outcome = "delivered"
	// Forwarded: the flow's packets were routed on, out of this host, and none was
	// dropped here; what became of them after is the next hop's to tell.
	Forwarded    Outcome = "forwarded"
	NotArrived   Outcome = "not_arrived"
	Inconclusive Outcome = "inconclusive"
)

// Outcomes are the outcomes, in the order the report's schema lists them.
var Outcomes = []Outcome{Dropped, Delivered, Forwarded, NotArrived, Inconclusive}

// Verdict is the judgement of one run: the outcome and where, and what the sentences
// about it (package prose) are told from. It is not the report's JSON: report.VerdictOf
// gives that form, so these types may change without changing the contract.
type Verdict struct {
	Outcome Outcome
	Stage   Stage
	// Reason is the drop reason without its prefix; "" unless dropped.
	Reason string
	// Function is the dropping function, e.g. tcp_v4_rcv.
	Function string
	// Location is the dropping call site with its offset.
	Location string
	// Rule is the nftables rule or chain policy that dropped the packet, when one did; or
	// the iptables-legacy one its counters name (Backend "legacy").
	Rule *evidence.TraceStep
	// LegacySuspects are the iptables-legacy rules that could each have dropped it, when
	// their counters name more than one.
	LegacySuspects []evidence.TraceStep
	// Drops counts the flow's drops in this namespace that the verdict stands on.
	Drops int
	// Part is set when only some of the packets that arrived were dropped: intermittent
	// loss, which the sentences give as a proportion.
	Part *Part
	// Netfilter names the hook that dropped, for netfilter drops: the bridge family is
	// told apart from the IP families.
	Netfilter *Hook
	// Elsewhere summarizes drops of the flow in other namespaces of the host.
	Elsewhere []ElsewhereDrop
	// Hop is the namespace where the named drop happened when it is not this one: the
	// flow's connection was translated here and its packet went on into another namespace
	// of this host (a container's, a pod's) and died there. nil: this namespace.
	Hop *Hop
	// Translation is the translation the dropped packet came through; nil when none did.
	Translation *evidence.Translation
	// Map is the stage map: how far the flow got, stage by stage, and what shows it.
	Map []StageStatus
	// Journey is the map by namespace of this host, in the order the packets went.
	Journey []JourneyHop
	// Fates lists what became of each captured packet (the first ones).
	Fates []Fate

	// Cause is what lies behind the outcome when the reason alone does not tell it.
	Cause Cause
	// Drop is the kernel drop event the verdict names, the first of its site; nil when
	// none does (the trace alone, a failed route lookup, no drop).
	Drop *evidence.Drop
	// Others are the flow's other drop sites in this namespace.
	Others []Site
	// Explained is the knowledge base's entry for a drop, and how it was chosen.
	Explained Explained
	// Iface is the interface the verdict speaks of: the dropped packet's, else the first
	// the flow arrived on; "" when unknown.
	Iface string
	// Host is what the host's state says where a fix depends on it.
	Host Host
	// Ignored counts the drops left out as not the flow's fault: copies a capture socket
	// could not take, teardown drops of an answered flow.
	Ignored int
	// RouteErr is the failed route lookup's error (a negative errno), for NoRouteOut.
	RouteErr int
	// Route is the route lookup that sent a forwarded flow on; nil when only the trace's
	// forward hook shows it.
	Route *evidence.PathEvent
}

// Cause is what lies behind an outcome beyond the drop's reason.
type Cause string

const (
	// ByReason: the outcome and the drop's reason, or without one its function, tell it.
	ByReason Cause = ""
	// ByRule: an nftables rule or chain policy, named by the trace (Verdict.Rule).
	ByRule Cause = "rule"
	// ForwardingOff: the flow's address is not this host's and forwarding is off.
	ForwardingOff Cause = "forwarding_off"
	// NoRouteOut: the route lookup failed before a packet existed (Verdict.RouteErr).
	NoRouteOut Cause = "no_route_out"
	// NoCapture: the capture did not run, so nothing can be told.
	NoCapture Cause = "no_capture"
	// Vanished: the packets arrived and no drop was recorded, yet no socket got them.
	Vanished Cause = "vanished"
	// RoutedOut: the packets were routed out of this host (Verdict.Route).
	RoutedOut Cause = "routed_out"
	// NoPath: the packets arrived and no drop was recorded, but the path stage did not run,
	// so whether a socket took them is unknown.
	NoPath Cause = "no_path"
)

// Site is a group of the flow's drops with the same reason at the same function.
type Site struct {
	Reason, Function string
	Count            int
}

// Explained is the knowledge base's entry that explains a drop.
type Explained struct {
	Entry reasons.Entry
	// Known is false when the knowledge base has no entry: a newer kernel's reason.
	Known bool
	// As is the reason a drop without one stands for at its function (NEIGH_FAILED at
	// neigh_invalidate); "" otherwise.
	As string
	// ByFunction: the drop has no reason, and the entry is its function's.
	ByFunction bool
}

// Hook is a netfilter hook: family ip, ip6 or bridge, and the hook's name.
type Hook struct {
	Family string
	Hook   string
}

// Part is how many of the flow's packets that arrived were dropped, when not all were.
type Part struct {
	Dropped, Arrived int
	// AtLeast: the report keeps only the first drops, so Dropped is a lower bound.
	AtLeast bool
	// RestDelivered: a socket took packets of the flow, so the others were delivered;
	// otherwise they were only not dropped.
	RestDelivered bool
}

// Hop is another network namespace of this host.
type Hop struct {
	Netns     uint64
	NetnsName string
}

// ElsewhereDrop is a group of the flow's drops seen in another namespace of the host.
type ElsewhereDrop struct {
	Netns     uint64
	NetnsName string
	Reason    string
	Function  string
	Count     int
}

// Judge turns the evidence into a verdict.
func Judge(ev *evidence.Evidence) Verdict {
	var v Verdict
	local, elsewhere := splitDrops(ev)
	downstream, elsewhere := splitDownstream(ev, elsewhere)
	v.Elsewhere = groupElsewhere(elsewhere)
	arrivedIn := 0
	if ev.Arrival != nil {
		arrivedIn = ev.Arrival.In
	}
	fwDrop := firewallDrop(ev.Firewall)
	local, v.Ignored = countedDrops(ev, local)
	downstream, ignored := countedDrops(ev, downstream)
	v.Ignored += ignored
	v.Fates = fates(ev, local, downstream)
	noRoute := noRouteOut(ev)
	switch {
	case len(local) > 0:
		judgeDrop(&v, ev, local, fwDrop, ev.Firewall)
	case len(downstream) > 0:
		// Its firewall is that namespace's: the trace here says nothing of it, the one
		// that followed the flow there does.
		main, _ := mainSite(downstream)
		there := ev.Firewall.Other(main.drops[0].Netns)
		judgeDrop(&v, ev, downstream, firewallDrop(there), there)
		v.Hop = &Hop{Netns: v.Drop.Netns, NetnsName: v.Drop.NetnsName}
	case fwDrop != nil:
		// The firewall dropped it but kfree_skb did not report it (lost events, or the
		// kernel stage could not run): the trace alone is enough to name the rule.
		v.Outcome, v.Reason, v.Function = Dropped, "NETFILTER_DROP", "nft_do_chain"
		v.Stage = Input
		if s, ok := fwDrop.stage(); ok {
			v.Stage = s
		}
		v.Rule = &fwDrop.step
		v.Drops = 1
		v.Netfilter = &Hook{Family: fwDrop.family, Hook: fwDrop.hook}
		explain(&v, ev)
	case noRoute != nil:
		v.Outcome, v.Stage, v.Reason, v.Cause = Dropped, Output, "IP_OUTNOROUTES", NoRouteOut
		v.RouteErr = noRoute.Err
	case ev.Arrival == nil || ev.Arrival.Error != "" && arrivedIn == 0:
		v.Outcome, v.Stage, v.Cause = Inconclusive, Arrival, NoCapture
	case arrivedIn == 0:
		v.Outcome, v.Stage = NotArrived, Arrival
	case vanished(ev):
		judgeVanished(&v, ev)
	default:
		judgeArrived(&v, ev)
	}
	if v.Drop != nil {
		v.Translation = translationOf(ev, v.Drop)
	}
	v.Part = partOf(&v, ev)
	v.Iface = ifaceOf(ev, v.Drop)
	if v.Hop == nil {
		// This namespace's settings and sockets: they say nothing of another's. The
		// sockets that count are those of the end a translation sent the packet to.
		target := ev.Flow
		if t := v.Translation; t != nil && t.Kind != "SNAT" {
			target = evidence.Flow{Addr: t.To().Addr(), Port: t.To().Port(), Proto: t.Proto}
		}
		v.Host = findHost(ev, v.Iface, target)
	}
	v.Map = stageMap(&v, ev)
	v.Journey = journey(&v, ev)
	return v
}

func splitDrops(ev *evidence.Evidence) (local, elsewhere []evidence.Drop) {
	if ev.Kernel == nil {
		return nil, nil
	}
	for _, d := range ev.Kernel.Drops {
		if d.Elsewhere {
			elsewhere = append(elsewhere, d)
		} else {
			local = append(local, d)
		}
	}
	return local, elsewhere
}

// partOf tells intermittent loss: a drop on the way in of some, not all, of the packets
// that arrived. Only there do the capture's count and the drops count the same packets: a
// packet dropped on its way out was never captured.
func partOf(v *Verdict, ev *evidence.Evidence) *Part {
	a := ev.Arrival
	if v.Outcome != Dropped || v.Drop == nil || a == nil || a.SocketDrops > 0 {
		return nil
	}
	if v.Hop == nil && indexOf(receivePath, v.Stage) < 0 && v.Stage != Forward {
		return nil
	}
	// The packets on their way to the service: once the capture follows a translation, the
	// answers that come back in from the namespace behind this host are captured too.
	// Evidence recorded before the capture counted them has In alone.
	arrived := a.In
	if a.Toward > 0 {
		arrived = a.Toward
	}
	p := &Part{Dropped: v.Drops, Arrived: arrived, RestDelivered: socketTook(ev)}
	if ev.Kernel != nil && ev.Kernel.Matched > uint64(len(ev.Kernel.Drops)) {
		p.AtLeast = true
	}
	if p.Dropped >= p.Arrived {
		return nil
	}
	return p
}

// splitDownstream picks, from the drops in other namespaces, those of packets that went
// on from here after a translation: an end of theirs is one the flow's connection was
// translated to. The others (a client's namespace, before the packets came) stay
// elsewhere.
func splitDownstream(ev *evidence.Evidence, elsewhere []evidence.Drop) (downstream, rest []evidence.Drop) {
	for _, d := range elsewhere {
		if t := translationOf(ev, &d); t != nil && uint64(d.Netns) != t.Netns {
			downstream = append(downstream, d)
		} else {
			rest = append(rest, d)
		}
	}
	return downstream, rest
}

// translationOf is the translation a dropped packet came through: it is a packet of the
// flow's translated connection.
func translationOf(ev *evidence.Evidence, d *evidence.Drop) *evidence.Translation {
	if ev.Kernel == nil {
		return nil
	}
	for i := range ev.Kernel.Translations {
		if t := &ev.Kernel.Translations[i]; len(t.Learned) > 0 && t.Carries(d.Src, d.Dst) {
			return t
		}
	}
	return nil
}

// countedDrops are the drops of this namespace the verdict counts, and how many it
// ignored as not the flow's fault.
func countedDrops(ev *evidence.Evidence, local []evidence.Drop) ([]evidence.Drop, int) {
	sentOut := 0
	if ev.Arrival != nil {
		sentOut = ev.Arrival.Out
	}
	return withoutNoise(local, sentOut)
}

// teardownReasons are what a healthy connection's end frees: the queues of a socket being
// destroyed, segments after close. On a flow this host answered they are not the fault.
var teardownReasons = map[string]bool{"QUEUE_PURGE": true, "TCP_CLOSE": true, "SOCKET_CLOSE": true}

// withoutNoise removes drops that a healthy TCP flow makes at teardown: no specific reason
// in the TCP path, or a teardown reason, on a flow this host answered. They would turn
// every healthy connection into "dropped".
func withoutNoise(drops []evidence.Drop, answered int) (kept []evidence.Drop, noise int) {
	for _, d := range drops {
		// A packet socket (a capture: diagnose's own, tcpdump) could not take its copy;
		// the packet itself went on.
		if d.Reason == "PACKET_SOCK_ERROR" {
			noise++
			continue
		}
		tcpPath := strings.HasPrefix(d.Function, "tcp_") || strings.HasPrefix(d.Function, "inet_") || strings.HasPrefix(d.Function, "sk_")
		if answered > 0 && (teardownReasons[d.Reason] || d.Reason == "NOT_SPECIFIED" && tcpPath) {
			noise++
			continue
		}
		kept = append(kept, d)
	}
	return kept, noise
}

type fwDropped struct {
	family, hook string
	step         evidence.TraceStep
}

// stage is the stage of the hook that dropped: a bridge-family hook is part of ingress,
// whatever its name, since bridged packets never reach IP's hooks first.
func (f *fwDropped) stage() (Stage, bool) {
	if f.family == "bridge" {
		return Ingress, true
	}
	return hookStage(f.hook)
}

func firewallDrop(fw *evidence.Firewall) *fwDropped {
	if fw == nil {
		return nil
	}
	for _, t := range fw.Traces {
		if t.Verdict == "drop" && t.DroppedBy != nil {
			return &fwDropped{family: t.Family, hook: t.Hook, step: *t.DroppedBy}
		}
	}
	return nil
}

// site is a group of drops with the same reason at the same function.
type site struct {
	reason, function string
	drops            []evidence.Drop
}

// mainSite picks the drop site the verdict names: the most frequent, then the earliest.
func mainSite(drops []evidence.Drop) (site, []site) {
	bySite := map[[2]string]*site{}
	var order []*site
	for _, d := range drops {
		k := [2]string{d.Reason, d.Function}
		s := bySite[k]
		if s == nil {
			s = &site{reason: d.Reason, function: d.Function}
			bySite[k] = s
			order = append(order, s)
		}
		s.drops = append(s.drops, d)
	}
	sites := make([]site, len(order))
	for i, s := range order {
		sites[i] = *s
	}
	sort.SliceStable(sites, func(i, j int) bool { return len(sites[i].drops) > len(sites[j].drops) })
	return sites[0], sites[1:]
}

// judgeDrop names the drop of drops; fw is what the trace of their namespace says, and
// firewall that namespace's firewall evidence (its iptables-legacy tables).
func judgeDrop(v *Verdict, ev *evidence.Evidence, local []evidence.Drop, fw *fwDropped, firewall *evidence.Firewall) {
	main, others := mainSite(local)
	first := main.drops[0]
	reason := main.reason
	v.Outcome, v.Reason, v.Function, v.Location = Dropped, reason, baseFunction(main.function), first.Location
	v.Drops = len(local)
	v.Stage = stageOf(reason, first, fw)
	if reason == "NETFILTER_DROP" {
		if fw != nil {
			v.Rule = &fw.step
			v.Netfilter = &Hook{Family: fw.family, Hook: fw.hook}
		} else if h, ok := netfilterHook(first.Stack, ev.Flow); ok {
			v.Netfilter = &h
		}
		if v.Rule == nil {
			v.Rule, v.LegacySuspects = legacyRule(firewall, v.Stage, ev.Flow)
		}
	}
	v.Drop = &first
	for _, o := range others {
		v.Others = append(v.Others, Site{Reason: o.reason, Function: o.function, Count: len(o.drops)})
	}
	explain(v, ev)
}

// legacyRule is the iptables-legacy rule (or policy) that dropped the flow at stage: the
// one rule that could have and whose counters grew during the run. When several could
// have, none is named (a guess could name the wrong one), and they are the suspects.
func legacyRule(fw *evidence.Firewall, stage Stage, flow evidence.Flow) (*evidence.TraceStep, []evidence.TraceStep) {
	if fw == nil || fw.Legacy == nil {
		return nil, nil
	}
	family := "ip"
	if flow.Addr.Unmap().Is6() {
		family = "ip6"
	}
	var suspects []evidence.TraceStep
	for _, r := range fw.Legacy.Grown {
		if r.MatchesFlow && r.Step.Family == family && slices.Contains(r.Hooks, string(stage)) {
			suspects = append(suspects, r.Step)
		}
	}
	if len(suspects) == 1 {
		return &suspects[0], nil
	}
	return nil, suspects
}

// stageOf names the stage of a drop: from the firewall trace for netfilter drops (it names
// the hook), else from the reason, else from the function and the stack.
func stageOf(reason string, d evidence.Drop, fw *fwDropped) Stage {
	if reason == "NETFILTER_DROP" {
		if fw != nil {
			if s, ok := fw.stage(); ok {
				return s
			}
		}
		if s, ok := netfilterStage(d.Stack); ok {
			return s
		}
	}
	e, known := reasons.Lookup(reason)
	if known && e.Stage != "" && !reasons.StageVaries(reason) {
		return Stage(e.Stage)
	}
	// The reason is used at several places, or says nothing: the dropping function knows.
	if s, ok := stageOfFunction(d.Function); ok {
		return s
	}
	if known && e.Stage != "" {
		return Stage(e.Stage)
	}
	if s, ok := stackStage(d.Stack); ok {
		return s
	}
	return Ingress
}

// explain finds what explains a drop: the rule the trace names, forwarding off, or the
// knowledge base's entry for the reason or, without one, the dropping function.
func explain(v *Verdict, ev *evidence.Evidence) {
	e, known := reasons.Lookup(v.Reason)
	v.Explained = Explained{Entry: e, Known: known}
	if as, ok := reasons.StandsFor(v.Function); ok && v.Reason == "NOT_SPECIFIED" {
		// The kernel gives no reason here, but the function tells what failed.
		e, known = reasons.Lookup(as)
		v.Explained = Explained{Entry: e, Known: known, As: as}
	} else if fe, ok := reasons.OfFunction(v.Function); ok && v.Reason == "NOT_SPECIFIED" {
		v.Explained = Explained{Entry: fe, Known: true, ByFunction: true}
	}
	switch {
	case v.Rule != nil:
		v.Cause = ByRule
	case v.Stage == Routing && forwardingOff(ev):
		v.Cause = ForwardingOff
	}
}

// ifaceOf is the interface a verdict speaks of: the dropped packet's, else the first the
// flow arrived on.
func ifaceOf(ev *evidence.Evidence, d *evidence.Drop) string {
	if d != nil && d.Iface != "" {
		return d.Iface
	}
	if ev.Arrival != nil {
		for _, c := range ev.Arrival.Counts {
			if c.Direction == evidence.In && c.Netns == 0 {
				return c.Iface
			}
		}
	}
	return ""
}

func groupElsewhere(drops []evidence.Drop) []ElsewhereDrop {
	var out []ElsewhereDrop
	idx := map[string]int{}
	for _, d := range drops {
		k := fmt.Sprintf("%d/%s/%s", d.Netns, d.Reason, d.Function)
		if i, ok := idx[k]; ok {
			out[i].Count++
			continue
		}
		idx[k] = len(out)
		out = append(out, ElsewhereDrop{Netns: d.Netns, NetnsName: d.NetnsName, Reason: d.Reason, Function: d.Function, Count: 1})
	}
	return out
}

// vanished: the packets arrived, nothing dropped them, yet no socket got them and the host
// never answered. Only the path tracepoints can tell this from a delivery.
func vanished(ev *evidence.Evidence) bool {
	p := ev.Path
	if p == nil || p.Error != "" || ev.Arrival.Out > 0 {
		return false
	}
	for _, c := range p.Counts {
		if c.Elsewhere {
			continue
		}
		switch c.Point {
		case evidence.PointSockState, evidence.PointDataReady, evidence.PointCopied, evidence.PointReset, evidence.PointICMP:
			return false
		}
	}
	attached := strings.Join(p.Attached, " ")
	// Without the socket tracepoints, silence proves nothing.
	return strings.Contains(attached, evidence.PointDataReady) || strings.Contains(attached, evidence.PointSockState)
}

// judgeArrived tells what became of packets that arrived and were not dropped: a socket
// took them (delivered), or they were routed out of this host (forwarded, with the route),
// or, with no evidence of either, nobody can tell: the host answering is no proof, since a
// reset or an ICMP error answers too, and a forwarded flow's answers pass as well.
func judgeArrived(v *Verdict, ev *evidence.Evidence) {
	route := forwardedOut(ev)
	hop, tr := deliveredThere(ev)
	next := deliveredNext(ev)
	switch {
	case socketTook(ev):
		v.Outcome, v.Stage = Delivered, Socket
	case hop != nil:
		// A published port: this host's DNAT sent the flow on into another namespace of
		// the host (a container's), where a socket took it.
		v.Outcome, v.Stage, v.Hop, v.Translation = Delivered, Socket, hop, tr
	case next != nil:
		// Routed, untranslated, into a namespace of this host next to this one (a
		// container's, a pod's), where a socket took it: it never left the host.
		v.Outcome, v.Stage, v.Hop, v.Route = Delivered, Socket, next, route
	case route != nil || forwardTraced(ev):
		v.Outcome, v.Stage, v.Cause, v.Route = Forwarded, Egress, RoutedOut, route
	case ev.Path == nil || ev.Path.Error != "":
		v.Outcome, v.Stage, v.Cause = Inconclusive, Arrival, NoPath
	default:
		judgeVanished(v, ev)
	}
}

// socketTook says whether a socket of this namespace took the flow's packets: its TCP
// state moved, it was woken with data, or data was read from it.
func socketTook(ev *evidence.Evidence) bool {
	if ev.Path == nil {
		return false
	}
	for _, c := range ev.Path.Counts {
		if c.Elsewhere || c.Events == 0 {
			continue
		}
		switch c.Point {
		case evidence.PointSockState, evidence.PointDataReady, evidence.PointCopied:
			return true
		}
	}
	return false
}

// deliveredThere finds the namespace of this host where a socket took the flow after a
// translation here sent it there: that namespace's socket events are of the translated
// connection (a client's socket in yet another namespace has the original tuple).
func deliveredThere(ev *evidence.Evidence) (*Hop, *evidence.Translation) {
	if ev.Path == nil || ev.Kernel == nil {
		return nil, nil
	}
	for i, t := range ev.Kernel.Translations {
		if t.Kind == "SNAT" || t.Netns != 0 && t.Netns != ev.Netns.Inode {
			continue
		}
		for _, e := range ev.Path.Events {
			if !e.Elsewhere || e.Netns == ev.Netns.Inode || !t.Carries(e.Src, e.Dst) {
				continue
			}
			switch e.Point {
			case evidence.PointSockState, evidence.PointDataReady, evidence.PointCopied:
				hop := &Hop{Netns: e.Netns}
				for _, c := range ev.Path.Counts {
					if c.Netns == e.Netns && c.NetnsName != "" {
						hop.NetnsName = c.NetnsName
					}
				}
				return hop, &ev.Kernel.Translations[i]
			}
		}
	}
	return nil, nil
}

// deliveredNext finds the namespace the flow was followed into (the one next to this one
// that has its address) where a socket of the flow's own end took it: its local end is the
// flow's, where a client's socket elsewhere has it as its remote end.
func deliveredNext(ev *evidence.Evidence) *Hop {
	if ev.Path == nil || ev.Firewall == nil {
		return nil
	}
	flow := netip.AddrPortFrom(ev.Flow.Addr.Unmap(), ev.Flow.Port)
	for _, fw := range ev.Firewall.Elsewhere {
		for _, e := range ev.Path.Events {
			if e.Netns != fw.Netns || netip.AddrPortFrom(e.Src.Addr().Unmap(), e.Src.Port()) != flow {
				continue
			}
			if e.Point == evidence.PointSockState || e.Point == evidence.PointDataReady {
				return &Hop{Netns: fw.Netns, NetnsName: fw.NetnsName}
			}
		}
	}
	return nil
}

// forwardedOut is the route lookup that sent a received packet of the flow on: an input
// lookup (it has an input interface) answered from a table other than local (255).
func forwardedOut(ev *evidence.Evidence) *evidence.PathEvent {
	if ev.Path == nil {
		return nil
	}
	for i, e := range ev.Path.Events {
		if e.Point == evidence.PointRoute && !e.Elsewhere && e.Iif != "" && e.Err == 0 && e.Table != 0 && e.Table != localTable && e.Oif != "" {
			return &ev.Path.Events[i]
		}
	}
	return nil
}

// localTable is the routing table of the host's own addresses.
const localTable = 255

// forwardTraced says whether the trace saw the flow in a forward hook, accepted.
func forwardTraced(ev *evidence.Evidence) bool {
	if ev.Firewall == nil {
		return false
	}
	for _, t := range ev.Firewall.Traces {
		if t.Hook == "forward" && t.Verdict == "accept" {
			return true
		}
	}
	return false
}

func judgeVanished(v *Verdict, ev *evidence.Evidence) {
	v.Outcome, v.Cause = Inconclusive, Vanished
	m := stageMap(v, ev)
	v.Stage = Arrival
	for _, st := range m {
		if st.Evidence != "" && !strings.HasPrefix(st.Evidence, "implied") {
			v.Stage = st.Stage
		}
	}
	if forwardingOff(ev) {
		v.Cause, v.Stage = ForwardingOff, Routing
	}
}

// forwardingOff: the flow's address is not this host's and forwarding is off, which the
// kernel reports as a plain routing error.
func forwardingOff(ev *evidence.Evidence) bool {
	local, known := destinationLocal(ev)
	if !known || local {
		return false
	}
	s, _ := forwarding(ev.Host.Sysctls[forwardSysctl(ev.Flow)])
	return s == reasons.ForwardingOff
}

// destinationLocal tells from the host's route lookups whether the flow's address is one of
// this host's own.
func destinationLocal(ev *evidence.Evidence) (local, known bool) {
	if ev.Host == nil {
		return false, false
	}
	for _, r := range ev.Host.Routes {
		if r.Dst == ev.Flow.Addr.String() && r.Err == "" && r.Type != "" {
			return r.Type == "local", true
		}
	}
	return false, false
}

// noRouteOut finds route lookups for the flow, on the way out of this namespace, that all
// failed: the kernel refuses such a packet before it exists, so kfree_skb never sees it.
func noRouteOut(ev *evidence.Evidence) *evidence.PathEvent {
	if ev.Path == nil {
		return nil
	}
	var failed *evidence.PathEvent
	for i, e := range ev.Path.Events {
		if e.Elsewhere || e.Point != evidence.PointRoute || (e.Iif != "" && e.Iif != "lo") || e.Dst.Addr() != ev.Flow.Addr {
			continue
		}
		if e.Err == 0 {
			return nil
		}
		if failed == nil || e.Err != eagain {
			failed = &ev.Path.Events[i]
		}
	}
	return failed
}

// eagain is the route lookup error (negative, as the fib tracepoints report errnos) of a
// table without a match: the next rule or table is tried, so other errors say more.
const eagain = -int(syscall.EAGAIN)

// baseFunction removes the compiler's clone suffixes (.constprop.0, .isra.0, .part.0, .cold):
// people search the kernel source for the function's own name.
func baseFunction(fn string) string {
	if i := strings.IndexByte(fn, '.'); i > 0 {
		return fn[:i]
	}
	return fn
}
