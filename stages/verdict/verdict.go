// Package verdict judges the evidence of one run: where the flow's packets died, why, and
// what to do. It is a pure function of the evidence: no kernel, no clock, no files.
package verdict

import (
	"fmt"
	"sort"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// Outcome is what happened to the flow.
type Outcome string

const (
	Dropped      Outcome = "dropped"
	Delivered    Outcome = "delivered"
	NotArrived   Outcome = "not_arrived"
	Inconclusive Outcome = "inconclusive"
)

// Verdict is the judgement of one run. It is not the report's JSON: report.VerdictOf
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
	Summary  string
	// Explanation says in plain words what the reason means.
	Explanation string
	Fix         string
	// Rule is the nftables rule or chain policy that dropped the packet, when one did.
	Rule *evidence.TraceStep
	// Drops counts the flow's drops in this namespace that the verdict stands on.
	Drops int
	// Netfilter names the hook that dropped, for netfilter drops: the bridge family is
	// told apart from the IP families.
	Netfilter *Hook
	// Elsewhere summarizes drops of the flow in other namespaces of the host.
	Elsewhere []ElsewhereDrop
	// Map is the stage map: how far the flow got, stage by stage, and what shows it.
	Map []StageStatus
	// Fates lists what became of each captured packet (the first ones).
	Fates []Fate
	Notes []string
}

// Hook is a netfilter hook: family ip, ip6 or bridge, and the hook's name.
type Hook struct {
	Family string
	Hook   string
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
	v.Elsewhere = groupElsewhere(elsewhere)
	arrivedIn, sentOut := 0, 0
	if ev.Arrival != nil {
		arrivedIn, sentOut = ev.Arrival.In, ev.Arrival.Out
	}
	fwDrop := firewallDrop(ev.Firewall)
	local, noise := withoutNoise(local, sentOut)
	if noise > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d drop(s) that are not the flow's fault were ignored: copies a capture socket could not take, or teardown drops of an answered flow (socket queues purged, no reason given)", noise))
	}

	v.Fates = fates(ev, local, fwDrop)
	noRoute := noRouteOut(ev)
	switch {
	case len(local) > 0:
		judgeDrop(&v, ev, local, fwDrop)
		if mixed := mixedFates(v.Fates); mixed != "" {
			v.Summary += " Not every packet: " + mixed + "."
		}
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
		v.Notes = append(v.Notes, "no kernel drop event was recorded for this drop; the verdict rests on the nftables trace")
		explain(&v, ev, nil)
	case noRoute != nil:
		judgeNoRoute(&v, ev, noRoute)
	case ev.Arrival == nil || ev.Arrival.Error != "" && arrivedIn == 0:
		v.Outcome, v.Stage = Inconclusive, Arrival
		v.Summary = fmt.Sprintf("Inconclusive: the capture did not run, so diagnose cannot tell whether %s reached this host.", ev.Flow)
		v.Fix = "fix the capture error shown in the report and run diagnose again"
	case arrivedIn == 0:
		judgeNotArrived(&v, ev, sentOut)
	default:
		judgeDelivered(&v, ev, arrivedIn, sentOut)
	}
	v.Map = stageMap(&v, ev)
	if ev.Kernel != nil && ev.Kernel.Lost > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d kernel drop event(s) of the flow were lost (ring buffer full): the verdict may miss drops", ev.Kernel.Lost))
	}
	if ev.Firewall != nil && ev.Firewall.Lost > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d nftables trace message(s) were lost (netlink buffer full)", ev.Firewall.Lost))
	}
	if ev.Kernel == nil || ev.Kernel.Error != "" {
		v.Notes = append(v.Notes, "the kernel drop stage did not run: drops outside the firewall cannot be seen")
	}
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

func judgeDrop(v *Verdict, ev *evidence.Evidence, local []evidence.Drop, fw *fwDropped) {
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
	}
	for _, o := range others {
		v.Notes = append(v.Notes, fmt.Sprintf("also dropped: %d packet(s) with reason %s at %s", len(o.drops), o.reason, o.function))
	}
	explain(v, ev, &first)
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

// explain fills summary, explanation and fix of a drop verdict.
func explain(v *Verdict, ev *evidence.Evidence, d *evidence.Drop) {
	f := factsOf(ev, d)
	reason := v.Reason
	e, known := reasons.Lookup(reason)
	if as, ok := reasons.StandsFor(v.Function); ok && reason == "NOT_SPECIFIED" {
		// The kernel gives no reason here, but the function tells what failed.
		e, known = reasons.Lookup(as)
		v.Notes = append(v.Notes, fmt.Sprintf("the kernel gives no reason for this drop; %s is where it frees packets for %s, so that is explained", v.Function, as))
	} else if fe, ok := reasons.OfFunction(v.Function); ok && reason == "NOT_SPECIFIED" {
		e, known = fe, true
		v.Notes = append(v.Notes, fmt.Sprintf("the kernel gives no reason for this drop; it is explained from %s, the function that dropped it", v.Function))
	}
	where := ""
	if d != nil && d.Iface != "" {
		where = " on " + d.Iface
	}
	switch {
	case v.Rule != nil:
		r := v.Rule
		what := fmt.Sprintf("rule `%s`", ruleText(r))
		if r.Type == "policy" {
			what = "the chain's drop policy"
		}
		v.Summary = fmt.Sprintf("%s was dropped by the firewall in %s: %s in table %s %s, chain %s%s.",
			ev.Flow, v.Stage, what, r.Family, r.Table, r.Chain, handleText(r))
		v.Explanation = "a netfilter rule or chain policy dropped the packet"
		if r.Type == "policy" {
			v.Fix = fmt.Sprintf("add a rule accepting the flow to chain %s of table %s %s, or change its policy: `nft add rule %s %s %s %s dport %d accept`",
				r.Chain, r.Family, r.Table, r.Family, r.Table, r.Chain, f.Proto, f.Port)
		} else {
			v.Fix = fmt.Sprintf("remove or narrow the rule: `nft delete rule %s %s %s handle %d` (or insert an accept before it)", r.Family, r.Table, r.Chain, r.Handle)
		}
	case v.Stage == Routing && forwardingOff(ev, f):
		sysctl := forwardSysctl(f)
		v.Summary = fmt.Sprintf("%s was dropped%s in routing by %s (%s): %s is not an address of this host and forwarding is off (%s=0).", ev.Flow, where, v.Function, reason, f.Addr, sysctl)
		v.Explanation = "packets for another host are routed on only when forwarding is on; with it off the kernel drops them at the route lookup"
		v.Fix = fmt.Sprintf("if this host should route them: `sysctl -w %s=1`; otherwise fix the sender's route or the address it uses (%s is not configured here)", sysctl, f.Addr)
	case known:
		v.Summary = fmt.Sprintf("%s was dropped%s in %s by %s: %s (%s).", ev.Flow, where, v.Stage, v.Function, e.Why, reason)
		v.Explanation = e.Why
		v.Fix = e.FixFor(f)
	default:
		v.Summary = fmt.Sprintf("%s was dropped%s in %s by %s with reason %s.", ev.Flow, where, v.Stage, v.Function, reason)
		v.Explanation = fmt.Sprintf("the kernel gives reason %s; this build has no explanation for it (its reasons were checked against the kernels %s), so the stage comes from the dropping function and its stack", reason, strings.Join(reasons.Kernels(), " and "))
		v.Fix = fmt.Sprintf("read the stack below and the kernel source of %s", v.Function)
		v.Notes = append(v.Notes, fmt.Sprintf("reason %s is not in diagnose's table: stage inferred from the stack", reason))
	}
}

func ruleText(s *evidence.TraceStep) string {
	if s.Rule != "" {
		return s.Rule
	}
	return fmt.Sprintf("handle %d", s.Handle)
}

func handleText(s *evidence.TraceStep) string {
	if s.Type == "policy" || s.Handle == 0 {
		return ""
	}
	return fmt.Sprintf(" (handle %d)", s.Handle)
}

func judgeNotArrived(v *Verdict, ev *evidence.Evidence, sentOut int) {
	v.Outcome, v.Stage = NotArrived, Arrival
	on := "any interface"
	if ev.Arrival != nil && len(ev.Arrival.Ifaces) > 0 {
		on = strings.Join(ev.Arrival.Ifaces, ", ")
	}
	if sentOut > 0 {
		v.Summary = fmt.Sprintf("No packet of %s arrived on %s of this host, though it sent %d: the answers are lost before they reach this host.", ev.Flow, on, sentOut)
	} else {
		v.Summary = fmt.Sprintf("No packet of %s arrived on %s of this host: the fault is upstream, not on this host.", ev.Flow, on)
	}
	v.Explanation = "the capture point sees packets before the kernel can drop them; nothing of the flow reached it"
	v.Fix = "stop debugging this host: check the sender, its firewall, and the network path (routers, security groups) up to this host"
	if a := ev.Arrival; a != nil && a.Method == evidence.CaptureTCX {
		// The tcx capture counts every packet it looks at: whether the interfaces carried
		// anything at all tells a quiet interface from a flow that goes elsewhere.
		where := on
		if len(a.Ifaces) == 0 {
			where = "this network namespace's interfaces"
		}
		if a.Seen == 0 {
			v.Notes = append(v.Notes, fmt.Sprintf("no packet of any flow passed %s during the capture: check that the flow is meant to come in here (the interface, the address, the network namespace diagnose ran in)", where))
		} else if other := a.Seen - min(a.Seen, uint64(a.In+a.Out)); other > 0 {
			v.Notes = append(v.Notes, fmt.Sprintf("the capture was live: %d packet(s) of other flows passed %s meanwhile", other, where))
		}
	}
	if len(v.Elsewhere) > 0 {
		e := v.Elsewhere[0]
		name := fmt.Sprintf("namespace %d", e.Netns)
		if e.NetnsName != "" {
			name = fmt.Sprintf("namespace %s (%d)", e.NetnsName, e.Netns)
		}
		v.Summary = fmt.Sprintf("No packet of %s arrived in this namespace: it was dropped before, in %s on this host, with reason %s at %s.", ev.Flow, name, e.Reason, e.Function)
		v.Fix = fmt.Sprintf("run diagnose in %s to see why it drops the flow (e.g. `ip netns exec %s diagnose --flow %s`)", name, nonEmpty(e.NetnsName, "<netns>"), netipFlow(ev))
	}
}

func netipFlow(ev *evidence.Evidence) string {
	s := ev.Flow.String()
	return s[:strings.LastIndexByte(s, '/')]
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func judgeDelivered(v *Verdict, ev *evidence.Evidence, in, out int) {
	if vanished(ev, out) {
		judgeVanished(v, ev, in)
		return
	}
	v.Outcome, v.Stage = Delivered, Socket
	answered := ""
	if out > 0 {
		answered = fmt.Sprintf(", and this host answered with %d", out)
	}
	v.Summary = fmt.Sprintf("%s was delivered: %d packet(s) arrived, none was dropped%s.", ev.Flow, in, answered)
	v.Explanation = "every packet of the flow that arrived passed the firewall and the kernel without a drop"
	v.Fix = "nothing to fix on this host's path: if the application still fails, look at the application itself"
	if out == 0 && ev.Flow.Proto == evidence.TCP {
		v.Notes = append(v.Notes, "no TCP answer was seen: the socket may not have replied yet")
	}
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
func vanished(ev *evidence.Evidence, out int) bool {
	p := ev.Path
	if p == nil || p.Error != "" || out > 0 {
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

func judgeVanished(v *Verdict, ev *evidence.Evidence, in int) {
	v.Outcome = Inconclusive
	m := stageMap(v, ev)
	v.Stage = Arrival
	for _, st := range m {
		if st.Evidence != "" && !strings.HasPrefix(st.Evidence, "implied") {
			v.Stage = st.Stage
		}
	}
	v.Summary = fmt.Sprintf("%d packet(s) of %s arrived and no drop was recorded, but no socket received them: they were last seen at %s.", in, ev.Flow, v.Stage)
	v.Explanation = "the kernel freed or diverted the packets without a drop event, or a drop event was lost"
	v.Fix = "compare the counters below with the path; run again with a longer --timeout if the application was slow"
	f := factsOf(ev, nil)
	if forwardingOff(ev, f) {
		sysctl := forwardSysctl(f)
		v.Summary = fmt.Sprintf("%d packet(s) of %s arrived, but %s is not an address of this host and forwarding is off (%s=0): the kernel does not route them on.", in, ev.Flow, f.Addr, sysctl)
		v.Explanation = "packets for another host are forwarded only when forwarding is on"
		v.Fix = fmt.Sprintf("if this host should route them: `sysctl -w %s=1`; otherwise fix the sender's route or the address it uses (%s is not configured here)", sysctl, f.Addr)
		v.Stage = Routing
	}
}

// forwardingOff: the flow's address is not this host's and forwarding is off, which the
// kernel reports as a plain routing error.
func forwardingOff(ev *evidence.Evidence, f reasons.Facts) bool {
	local, known := destinationLocal(ev)
	return known && !local && f.IPForward == "0"
}

func forwardSysctl(f reasons.Facts) string {
	return reasons.Fill("{forwarding}", f)
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

// Route lookup errors as the fib tracepoints report them (negative errnos).
const (
	eagain       = -11 // no match in this table: the next rule or table is tried
	enetunreach  = -101
	ehostunreach = -113
	eacces       = -13
	einval       = -22
)

func routeErrorText(err int) string {
	switch err {
	case eagain, enetunreach:
		return "no route matches (network unreachable)"
	case ehostunreach:
		return "no route, or an unreachable route, matches (host unreachable)"
	case eacces:
		return "a prohibit route matches"
	case einval:
		return "a blackhole route matches"
	}
	return fmt.Sprintf("error %d", err)
}

func judgeNoRoute(v *Verdict, ev *evidence.Evidence, e *evidence.PathEvent) {
	reason := "IP_OUTNOROUTES"
	v.Outcome, v.Stage, v.Reason = Dropped, Output, reason
	v.Drops = 0
	what := routeErrorText(e.Err)
	v.Summary = fmt.Sprintf("%s never left this host: the route lookup for %s failed (%s), so the kernel refused to send it (%s).", ev.Flow, ev.Flow.Addr, what, reason)
	v.Explanation = "the sending application got an error (ENETUNREACH or EHOSTUNREACH) before any packet was built, so no drop event exists; the route lookup tracepoint shows the failure"
	v.Fix = fmt.Sprintf("add a route to %s (e.g. `ip route add %s via GATEWAY`, or a default route); `ip route get %s` shows the lookup", ev.Flow.Addr, ev.Flow.Addr, ev.Flow.Addr)
	if ev.Host != nil {
		for _, c := range ev.Host.Counters {
			if strings.HasSuffix(c.Name, "OutNoRoutes") && c.Delta > 0 {
				v.Notes = append(v.Notes, fmt.Sprintf("counter %s rose by %d during the run", c.Name, c.Delta))
			}
		}
	}
}

// baseFunction removes the compiler's clone suffixes (.constprop.0, .isra.0, .part.0, .cold):
// people search the kernel source for the function's own name.
func baseFunction(fn string) string {
	if i := strings.IndexByte(fn, '.'); i > 0 {
		return fn[:i]
	}
	return fn
}
