// Package prose puts a verdict in words: the summary, what the drop reason means, what to
// do, the notes, and the comment on each packet of the capture. It judges nothing: every
// sentence is told from package verdict's result, and the fixes from package reasons'
// templates, filled with the names of the run.
package prose

import (
	"cmp"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// Text is a verdict in words.
type Text struct {
	Summary     string
	Explanation string
	Fix         string
	Notes       []string
}

// Write says verdict v, which Judge gave for ev.
func Write(ev *evidence.Evidence, v verdict.Verdict) Text {
	var t Text
	if v.Ignored > 0 {
		t.note("%d drop(s) that are not the flow's fault were ignored: copies a capture socket could not take, or teardown drops of an answered flow (socket queues purged, no reason given)", v.Ignored)
	}
	switch {
	case v.Cause == verdict.NoRouteOut:
		noRoute(&t, ev, v)
	case v.Outcome == verdict.Dropped:
		for _, o := range v.Others {
			t.note("also dropped: %d packet(s) with reason %s at %s", o.Count, o.Reason, o.Function)
		}
		if v.Drop == nil {
			t.note("no kernel drop event was recorded for this drop; the verdict rests on the nftables trace")
		}
		dropped(&t, ev, v)
		if len(v.LegacySuspects) > 0 {
			var rules []string
			for _, r := range v.LegacySuspects {
				rules = append(rules, fmt.Sprintf("`%s` in table %s %s%s", ruleText(&r), r.Family, r.Table, handleText(&r)))
			}
			t.note("the counters of %d iptables-legacy rules that could each have dropped it grew during the run, so none is named: %s", len(rules), strings.Join(rules, "; "))
		}
		// The fates are of the first packets kept: with more, the proportion says it.
		if mixed := mixedFates(ev, v.Fates); mixed != "" && v.Drop != nil && (v.Part == nil || v.Part.Arrived <= evidence.MaxPackets) {
			t.Summary += " Not every packet: " + mixed + "."
		}
	case v.Cause == verdict.NoCapture:
		t.Summary = fmt.Sprintf("Inconclusive: the capture did not run, so diagnose cannot tell whether %s reached this host.", ev.Flow)
		t.Fix = "fix the capture error shown in the report and run diagnose again"
	case v.Outcome == verdict.NotArrived:
		notArrived(&t, ev, v)
	case v.Cause == verdict.NoPath:
		t.Summary = fmt.Sprintf("Inconclusive: %d packet(s) of %s arrived and no drop was recorded, but the path stage did not run, so diagnose cannot tell whether a socket took them.", ev.Arrival.In, ev.Flow)
		t.Explanation = "a packet that is neither dropped nor taken by a socket leaves no trace but on the path's tracepoints"
		t.Fix = "fix the path stage's error shown in the report and run diagnose again"
	case v.Outcome == verdict.Inconclusive:
		vanished(&t, ev, v)
	case v.Outcome == verdict.Delivered:
		delivered(&t, ev, v)
	case v.Outcome == verdict.Forwarded:
		forwarded(&t, ev, v)
	}
	if fw := ev.Firewall; fw != nil && fw.Legacy != nil {
		if fw.Legacy.AlsoNftables {
			t.note("this namespace has a firewall in both iptables-legacy (%d rule(s), %d chain(s) not accepting by default) and nftables: each one's tools (iptables-legacy-save, nft list ruleset) show only its own rules, and a packet must pass both", fw.Legacy.Rules, fw.Legacy.Policies)
		}
		if fw.Legacy.Error != "" {
			t.note("iptables-legacy's rules could not be read (%s): a drop by one of them is not named", fw.Legacy.Error)
		}
	}
	if ev.Kernel != nil && ev.Kernel.Lost > 0 {
		t.note("%d kernel drop event(s) of the flow were lost (ring buffer full): the verdict may miss drops", ev.Kernel.Lost)
	}
	if ev.Firewall != nil && ev.Firewall.Lost > 0 {
		t.note("%d nftables trace message(s) were lost (netlink buffer full)", ev.Firewall.Lost)
	}
	if ev.Kernel == nil || ev.Kernel.Error != "" {
		t.note("the kernel drop stage did not run: drops outside the firewall cannot be seen")
	}
	return t
}

func (t *Text) note(format string, a ...any) {
	t.Notes = append(t.Notes, fmt.Sprintf(format, a...))
}

// dropped says a drop: by the rule the trace names, by forwarding off, by what the
// knowledge base says of its reason, or that it knows nothing of the reason.
func dropped(t *Text, ev *evidence.Evidence, v verdict.Verdict) {
	f := factsOf(ev, v)
	x := v.Explained
	switch {
	case x.As != "":
		t.note("the kernel gives no reason for this drop; %s is where it frees packets for %s, so that is explained", v.Function, x.As)
	case x.ByFunction:
		t.note("the kernel gives no reason for this drop; it is explained from %s, the function that dropped it", v.Function)
	}
	where := ""
	if v.Drop != nil && v.Drop.Iface != "" {
		where = " on " + v.Drop.Iface
	}
	if v.Hop != nil {
		where = " in " + hopName(v.Hop) + " of this host"
	}
	flow := ev.Flow.String()
	if v.Translation != nil {
		flow = fmt.Sprintf("%s, sent by %s to %s,", flow, v.Translation.Kind, v.Translation.To())
	}
	// Intermittent loss says how much: "109 of the 5000 packets of F that arrived (2.2%)
	// were dropped ...; the other 4891 were delivered".
	dropped, rest := flow+" was dropped", ""
	if p := v.Part; p != nil {
		n := fmt.Sprint(p.Dropped)
		if p.AtLeast {
			n = "at least " + n
		}
		dropped = fmt.Sprintf("%s of the %d packets of %s that arrived (%.1f%%) were dropped", n, p.Arrived, flow, 100*float64(p.Dropped)/float64(p.Arrived))
		rest = fmt.Sprintf("; the other %d were not dropped", p.Arrived-p.Dropped)
		if p.RestDelivered {
			rest = fmt.Sprintf("; the other %d were delivered", p.Arrived-p.Dropped)
		}
		if p.AtLeast {
			rest = ""
		}
	}
	switch {
	case v.Cause == verdict.ByRule:
		r := v.Rule
		what := fmt.Sprintf("rule `%s`", ruleText(r))
		if r.Type == "policy" {
			what = "the chain's drop policy"
		}
		firewall, nft := "the firewall", "nft"
		if v.Hop != nil {
			firewall, nft = "the firewall of "+hopName(v.Hop)+" of this host", enter(v.Hop)+"nft"
		}
		if r.Backend == "legacy" {
			// Found by its counters: nothing traced it.
			firewall = strings.Replace(firewall, "the firewall", "the firewall (iptables-legacy)", 1)
		}
		t.Summary = fmt.Sprintf("%s by %s in %s: %s in table %s %s, chain %s%s%s.",
			dropped, firewall, v.Stage, what, r.Family, r.Table, r.Chain, handleText(r), rest)
		t.Explanation = "a netfilter rule dropped the packet"
		if r.Type == "policy" {
			t.Explanation = fmt.Sprintf("no rule of chain %s, nor of a chain it jumps to, accepted the packet: it reached the end of the chain, whose policy is drop", r.Chain)
		}
		if r.Backend == "legacy" {
			t.Explanation = legacyExplanation(ev, v, r)
		}
		if r.Reject != "" {
			t.Summary = strings.Replace(t.Summary, " dropped by ", " rejected by ", 1)
			t.Explanation = rejectExplanation(r.Reject)
		}
		in := ""
		if v.Hop != nil {
			in = enter(v.Hop)
		}
		for _, p := range r.Partial {
			t.note("the rule's text is partial: %s", p)
		}
		if fix, ok := ownedFix(r, f, in); ok {
			t.Fix = fix
		} else if r.Type == "policy" {
			t.Fix = fmt.Sprintf("add a rule accepting the flow to chain %s of table %s %s, or change its policy: `%s add rule %s %s %s %s dport %d accept`",
				r.Chain, r.Family, r.Table, nft, r.Family, r.Table, r.Chain, f.Proto, f.Port)
		} else {
			t.Fix = fmt.Sprintf("remove or narrow the rule: `%s delete rule %s %s %s handle %d` (or insert an accept before it)", nft, r.Family, r.Table, r.Chain, r.Handle)
		}
		// Dropping invalid packets is sound: the fix is what makes them invalid.
		if matchesInvalid(r.Rule) {
			t.Explanation, t.Fix = invalidExplanation(ev, v)
		}
		if v.Hop != nil && !strings.HasPrefix(in, "ip netns") && strings.Contains(t.Fix, "`"+in) {
			t.Fix += ", with PID a process of " + hopName(v.Hop)
		}
	case v.Cause == verdict.ForwardingOff:
		t.Summary = fmt.Sprintf("%s%s in routing by %s (%s): %s is not an address of this host and forwarding is off (%s=0)%s.", dropped, where, v.Function, v.Reason, f.Addr, reasons.Fill("{forwarding}", f), rest)
		t.Explanation = "packets for another host are routed on only when forwarding is on; with it off the kernel drops them at the route lookup"
		t.Fix = reasons.Fill(forwardingFix, f)
	case x.Known:
		t.Summary = fmt.Sprintf("%s%s in %s by %s: %s (%s)%s.", dropped, where, v.Stage, v.Function, x.Entry.Why, v.Reason, rest)
		t.Explanation = x.Entry.Why
		t.Fix = x.Entry.FixFor(f)
		if v.Hop != nil {
			t.Fix += fmt.Sprintf(" (in %s, where the packet was dropped: `nsenter --net=/proc/PID/ns/net` or `ip netns exec` to look there)", hopName(v.Hop))
			if v.Reason == "NETFILTER_DROP" {
				t.note("%s", untracedThere(ev, v))
			}
		}
		// A fix that turns on whether something listens is about the port in the
		// container; its users know the port by what the host publishes.
		if _, ok := x.Entry.FixIf[reasons.NothingListens]; ok {
			if p := publishedAs(v.Drop, f.Proto); p != "" {
				t.Fix += "; the port is published as " + p
			}
		}
	default:
		t.Summary = fmt.Sprintf("%s%s in %s by %s with reason %s%s.", dropped, where, v.Stage, v.Function, v.Reason, rest)
		t.Explanation = fmt.Sprintf("the kernel gives reason %s; this build has no explanation for it (its reasons were checked against the kernels %s), so the stage comes from the dropping function and its stack", v.Reason, strings.Join(reasons.Kernels(), " and "))
		t.Fix = fmt.Sprintf("read the stack below and the kernel source of %s", v.Function)
		t.note("reason %s is not in diagnose's table: stage inferred from the stack", v.Reason)
	}
}

// matchesInvalid says whether a rule's text matches conntrack's invalid state: nft's
// `ct state invalid`, iptables' `--ctstate INVALID` or `--state INVALID`.
func matchesInvalid(rule string) bool {
	return strings.Contains(rule, "ct state invalid") || strings.Contains(rule, "ct state { invalid") ||
		strings.Contains(rule, "--ctstate INVALID") || strings.Contains(rule, "--state INVALID")
}

// validTCPFlags are the flag sets conntrack's TCP tracker takes (after PSH, ECE and CWR are
// set aside), in TCPFlags' letters: any other set is invalid before any state is looked at.
var validTCPFlags = map[string]bool{"S": true, "SU": true, "S.": true, "S.U": true, "R": true, "R.": true,
	"F.": true, "F.U": true, ".": true, ".U": true}

// invalidExplanation says why conntrack found the packet invalid, as far as the evidence
// tells: a flag set no TCP connection uses is certain from the packet alone; for anything
// else conntrack keeps its reason to itself unless it is told to log it.
func invalidExplanation(ev *evidence.Evidence, v verdict.Verdict) (explanation, fix string) {
	s := "the rule drops packets conntrack classifies as invalid: ones it cannot place in any connection"
	if hs := ev.Host; hs != nil {
		for _, c := range hs.Counters {
			if c.Name == "Conntrack invalid" {
				s += fmt.Sprintf(" (conntrack counted %d invalid packet(s) in this namespace during the run)", c.Delta)
			}
		}
	}
	if hs := ev.Host; hs != nil && len(hs.ConntrackLog) > 0 {
		// Conntrack's own words, up to the packet's fields nf_log appends.
		why, _, _ := strings.Cut(hs.ConntrackLog[0], " IN=")
		return s + fmt.Sprintf(". Conntrack logged why: `%s`", strings.TrimSpace(why)),
			"keep the rule (dropping invalid packets is sound practice) and fix what conntrack logged (the kernel log has every line: `dmesg | grep nf_ct_`)"
	}
	if d := v.Drop; d != nil && ev.Flow.Proto == evidence.TCP && d.Flags != "" {
		kept := strings.Map(func(c rune) rune {
			if strings.ContainsRune("PEW", c) {
				return -1
			}
			return c
		}, d.Flags)
		if !validTCPFlags[kept] {
			return s + fmt.Sprintf(". This one had TCP flags %s, a combination no TCP connection uses (a scanner's probe, or a broken sender or middlebox): conntrack rejects it before looking for a connection", d.Flags),
				fmt.Sprintf("nothing to change in the firewall: dropping invalid packets is sound practice; find what sends them (%s, the dropped packet's source) and fix or block it", d.Src.Addr())
		}
	}
	asked := ""
	if hs := ev.Host; hs != nil {
		if n := hs.Sysctls["net.netfilter.nf_conntrack_log_invalid"]; n != "" && n != "0" {
			// Asked, yet silent: the kernel logs from a namespace other than the host's
			// only when net.netfilter.nf_log_all_netns is 1.
			asked = fmt.Sprintf(" (net.netfilter.nf_conntrack_log_invalid is %s, yet nothing reached the kernel log: from a namespace other than the host's the kernel logs only with net.netfilter.nf_log_all_netns=1, and only where a logger is bound, net.netfilter.nf_log.2 or .10)", n)
		}
	}
	return s + ". Conntrack does not say why unless asked" + asked + ". The usual causes are a segment outside the TCP window (after a NAT or conntrack entry changed or expired), a reply of a connection whose first packet took another path (asymmetric routing), and a bad checksum",
		"keep the rule (dropping invalid packets is sound practice) and find why conntrack finds the flow's packets invalid: `sysctl -w net.netfilter.nf_conntrack_log_invalid=255` makes it log each one's reason (read it with `dmesg`; set the sysctl back to 0 after), then fix that cause (routes that send the two directions different ways, a middlebox rewriting sequence numbers)"
}

// legacyExplanation says how an iptables-legacy rule, which nothing traces, was named.
func legacyExplanation(ev *evidence.Evidence, v verdict.Verdict, r *evidence.TraceStep) string {
	fw := ev.Firewall
	if v.Hop != nil {
		fw = fw.Other(v.Hop.Netns)
	}
	var counted uint64
	var grown []evidence.LegacyRule
	if fw != nil && fw.Legacy != nil {
		grown = fw.Legacy.Grown
	}
	for _, g := range grown {
		if g.Step.Family == r.Family && g.Step.Table == r.Table && g.Step.Chain == r.Chain && g.Step.Number == r.Number && g.Step.Type == r.Type {
			counted = g.Packets
		}
	}
	what := "this one is named by its counters: it is the only rule"
	if r.Type == "policy" {
		what = "the policy of chain " + r.Chain + " is named by its counters: it is the only rule or policy"
	}
	return fmt.Sprintf("iptables-legacy keeps its rules where the nftables trace cannot see them; %s that could have dropped the flow's packets in %s, "+
		"and it counted %d packet(s) during the run (the kernel dropped %d of the flow's there)",
		what, v.Stage, counted, v.Drops)
}

// rejectExplanation says that the firewall, not a closed port, answered: the client's
// error is the same for both ("connection refused" for a reset), and a user who reads it
// looks for a missing listener first.
func rejectExplanation(with string) string {
	answer := "an ICMP error (the client reports \"no route to host\", \"host unreachable\" or \"connection refused\", by its type)"
	if with == evidence.RejectTCPReset {
		answer = "a TCP reset (the client reports \"connection refused\")"
	}
	return "a netfilter rule rejected the packet: it dropped it and answered the sender itself with " + answer +
		", as a closed port would; the packet never reached a socket, so whether anything listens was not asked"
}

// forwarded says a flow that left this host by a route, not for a socket here.
func forwarded(t *Text, ev *evidence.Evidence, v verdict.Verdict) {
	how := "through the forward hook"
	if r := v.Route; r != nil {
		how = "out via " + r.Oif
		if r.Gateway != "" {
			how += " toward " + r.Gateway
		}
		how += fmt.Sprintf(" (route table %d)", r.Table)
	}
	t.Summary = fmt.Sprintf("%s was forwarded: %d packet(s) arrived and were routed %s; none was dropped on this host.", ev.Flow, ev.Arrival.In, how)
	t.Explanation = "the flow's address is not for a socket of this namespace: the kernel routed its packets on, and they left"
	t.Fix = "nothing to fix on this host: follow the flow at its next hop"
	if r := v.Route; r != nil && r.Gateway != "" {
		t.Fix += " (" + r.Gateway + ")"
	}
}

// hopName names another namespace of this host: by its name, or by who holds it (a
// container, a pod, a process: netns.Owners).
func hopName(h *verdict.Hop) string {
	for _, owner := range []string{"container ", "pod ", "pid ", "the host"} {
		if strings.HasPrefix(h.NetnsName, owner) {
			return fmt.Sprintf("the network namespace of %s (inode %d)", h.NetnsName, h.Netns)
		}
	}
	if h.NetnsName != "" {
		return fmt.Sprintf("network namespace %s (inode %d)", h.NetnsName, h.Netns)
	}
	return fmt.Sprintf("network namespace %d", h.Netns)
}

// enter is the command prefix that runs a tool in another namespace: `ip netns exec` for a
// named one, else nsenter into a process's.
func enter(h *verdict.Hop) string {
	if h.NetnsName != "" && !strings.Contains(h.NetnsName, " ") {
		return "ip netns exec " + h.NetnsName + " "
	}
	return "nsenter --net=/proc/PID/ns/net "
}

// untracedThere says why the trace does not name the rule that dropped the flow in
// another namespace: it was not traced there, or only from after the drop.
func untracedThere(ev *evidence.Evidence, v verdict.Verdict) string {
	there := ev.Firewall.Other(v.Hop.Netns)
	switch {
	case there == nil:
		return fmt.Sprintf("the rule is not named: the flow was not traced in %s (none of its addresses is one of that namespace's next to this one)", hopName(v.Hop))
	case there.Skipped != "" || there.Error != "":
		return fmt.Sprintf("the rule is not named: the flow was not traced in %s: %s", hopName(v.Hop), cmp.Or(there.Error, there.Skipped))
	case v.Drop != nil && !there.Since.IsZero() && v.Drop.Time.Before(there.Since):
		return fmt.Sprintf("the rule is not named: the trace of %s began at %s, when a translation led the flow there, after the drop at %s; a packet sent again (a longer reproduction, or a retry) would be traced there", hopName(v.Hop), there.Since.UTC().Format("15:04:05.000000 UTC"), v.Drop.Time.UTC().Format("15:04:05.000000"))
	}
	return fmt.Sprintf("the rule is not named: the trace of %s saw no drop of the flow (a trace message may have been lost, or the rule is an iptables-legacy one)", hopName(v.Hop))
}

// publishedAs lists the mappings of the dropped packet's container that lead to the port
// it was dropped at, as `docker ps` shows them without the protocol (the flow's):
// "8080->80, 127.0.0.1:8081->80"; "" when none does.
func publishedAs(d *evidence.Drop, proto string) string {
	if d == nil {
		return ""
	}
	port := strconv.Itoa(int(d.Dst.Port()))
	var ms []string
	for _, p := range d.Published {
		if host, ok := strings.CutSuffix(p, "->"+port+"/"+proto); ok {
			ms = append(ms, host+"->"+port)
		}
	}
	return strings.Join(ms, ", ")
}

// forwardingFix is what to do about packets for another host while forwarding is off.
const forwardingFix = "if this host should route them: `sysctl -w {forwarding}=1`; otherwise fix the sender's route or the address it uses ({addr} is not configured here)"

func ruleText(s *evidence.TraceStep) string {
	if s.Rule != "" {
		return s.Rule
	}
	return fmt.Sprintf("handle %d", s.Handle)
}

// handleText is how a rule is found again: nft by its handle, the iptables tools by its
// number in the chain.
func handleText(s *evidence.TraceStep) string {
	switch {
	case s.Type == "policy":
		return ""
	case s.Syntax != "" && s.Syntax != "nft":
		if s.Number == 0 {
			return ""
		}
		return fmt.Sprintf(" (rule %d)", s.Number)
	case s.Handle == 0:
		return ""
	}
	return fmt.Sprintf(" (handle %d)", s.Handle)
}

// notArrived says a flow the capture saw nothing of; it ran (ev.Arrival is set).
func notArrived(t *Text, ev *evidence.Evidence, v verdict.Verdict) {
	a := ev.Arrival
	on := "any interface"
	if len(a.Ifaces) > 0 {
		on = strings.Join(a.Ifaces, ", ")
	}
	if a.Out > 0 {
		t.Summary = fmt.Sprintf("No packet of %s arrived on %s of this host, though it sent %d: the answers are lost before they reach this host.", ev.Flow, on, a.Out)
	} else {
		t.Summary = fmt.Sprintf("No packet of %s arrived on %s of this host: the fault is upstream, not on this host.", ev.Flow, on)
	}
	t.Explanation = "the capture point sees packets before the kernel can drop them; nothing of the flow reached it"
	t.Fix = "stop debugging this host: check the sender, its firewall, and the network path (routers, security groups) up to this host"
	if a.Method == evidence.CaptureTCX {
		// The tcx capture counts every packet it looks at: whether the interfaces carried
		// anything at all tells a quiet interface from a flow that goes elsewhere.
		where := on
		if len(a.Ifaces) == 0 {
			where = "this network namespace's interfaces"
		}
		if a.Seen == 0 {
			t.note("no packet of any flow passed %s during the capture: check that the flow is meant to come in here (the interface, the address, the network namespace diagnose ran in)", where)
		} else if other := a.Seen - min(a.Seen, uint64(a.In+a.Out)); other > 0 {
			t.note("the capture was live: %d packet(s) of other flows passed %s meanwhile", other, where)
		}
	}
	if len(v.Elsewhere) > 0 {
		e := v.Elsewhere[0]
		name := fmt.Sprintf("namespace %d", e.Netns)
		if e.NetnsName != "" {
			name = fmt.Sprintf("namespace %s (%d)", e.NetnsName, e.Netns)
		}
		t.Summary = fmt.Sprintf("No packet of %s arrived in this namespace: it was dropped before, in %s on this host, with reason %s at %s.", ev.Flow, name, e.Reason, e.Function)
		t.Fix = fmt.Sprintf("run diagnose in %s to see why it drops the flow (e.g. `ip netns exec %s diagnose --flow %s`)", name, cmp.Or(e.NetnsName, "<netns>"), netipFlow(ev))
	}
}

func netipFlow(ev *evidence.Evidence) string {
	s := ev.Flow.String()
	return s[:strings.LastIndexByte(s, '/')]
}

// delivered says a flow that arrived and was not dropped.
func delivered(t *Text, ev *evidence.Evidence, v verdict.Verdict) {
	in, out := ev.Arrival.In, ev.Arrival.Out
	if v.Hop != nil {
		// The answers from the namespace it went on to come back in here too: count only
		// the packets on their way there.
		in = cmp.Or(ev.Arrival.Toward, in)
	}
	if v.Hop != nil && v.Translation != nil {
		t.Summary = fmt.Sprintf("%s, sent by %s to %s, was delivered in %s of this host: %d packet(s) arrived, none was dropped on the way.",
			ev.Flow, v.Translation.Kind, v.Translation.To(), hopName(v.Hop), in)
		t.Explanation = "the flow passed this host's firewall and translation without a drop, went on into the namespace its translation sends it to, and a socket there took it"
		t.Fix = fmt.Sprintf("nothing to fix on this host's path: if the application still fails, look at the application in %s", hopName(v.Hop))
		return
	}
	if v.Hop != nil {
		via := ""
		if r := v.Route; r != nil {
			via = fmt.Sprintf(", routed there via %s (route table %d)", r.Oif, r.Table)
		}
		t.Summary = fmt.Sprintf("%s was delivered in %s of this host%s: %d packet(s) arrived, none was dropped on the way.", ev.Flow, hopName(v.Hop), via, in)
		t.Explanation = "the flow's address is another namespace's of this host: this host routed its packets there without a drop, and a socket there took them; they never left the host"
		t.Fix = fmt.Sprintf("nothing to fix on this host's path: if the application still fails, look at the application in %s", hopName(v.Hop))
		return
	}
	answered := ""
	if out > 0 {
		answered = fmt.Sprintf(", and this host answered with %d", out)
	}
	t.Summary = fmt.Sprintf("%s was delivered: %d packet(s) arrived, none was dropped%s.", ev.Flow, in, answered)
	t.Explanation = "every packet of the flow that arrived passed the firewall and the kernel without a drop"
	t.Fix = "nothing to fix on this host's path: if the application still fails, look at the application itself"
	if out == 0 && ev.Flow.Proto == evidence.TCP {
		t.note("no TCP answer was seen: the socket may not have replied yet")
	}
	if ev.Kernel != nil {
		for _, tr := range ev.Kernel.Translations {
			t.note("the connection was translated on this host (%s from %s to %s): no drop was seen on its way there either", tr.Kind, tr.From(), tr.To())
		}
	}
}

// vanished says packets that arrived, were not dropped, and reached no socket.
func vanished(t *Text, ev *evidence.Evidence, v verdict.Verdict) {
	in := ev.Arrival.In
	if v.Cause == verdict.ForwardingOff {
		f := factsOf(ev, v)
		t.Summary = fmt.Sprintf("%d packet(s) of %s arrived, but %s is not an address of this host and forwarding is off (%s=0): the kernel does not route them on.", in, ev.Flow, f.Addr, reasons.Fill("{forwarding}", f))
		t.Explanation = "packets for another host are forwarded only when forwarding is on"
		t.Fix = reasons.Fill(forwardingFix, f)
		return
	}
	t.Summary = fmt.Sprintf("%d packet(s) of %s arrived and no drop was recorded, but no socket received them: they were last seen at %s.", in, ev.Flow, v.Stage)
	t.Explanation = "the kernel freed or diverted the packets without a drop event, or a drop event was lost"
	t.Fix = "compare the counters below with the path; run again with a longer --timeout if the application was slow"
}

// noRoute says a flow this host could not send: no route for it.
func noRoute(t *Text, ev *evidence.Evidence, v verdict.Verdict) {
	t.Summary = fmt.Sprintf("%s never left this host: the route lookup for %s failed (%s), so the kernel refused to send it (%s).", ev.Flow, ev.Flow.Addr, routeErrorText(v.RouteErr), v.Reason)
	t.Explanation = "the sending application got an error (ENETUNREACH or EHOSTUNREACH) before any packet was built, so no drop event exists; the route lookup tracepoint shows the failure"
	t.Fix = fmt.Sprintf("add a route to %s (e.g. `ip route add %s via GATEWAY`, or a default route); `ip route get %s` shows the lookup", ev.Flow.Addr, ev.Flow.Addr, ev.Flow.Addr)
	if ev.Host != nil {
		for _, c := range ev.Host.Counters {
			if strings.HasSuffix(c.Name, "OutNoRoutes") && c.Delta > 0 {
				t.note("counter %s rose by %d during the run", c.Name, c.Delta)
			}
		}
	}
}

// routeErrorText says a route lookup error as the fib tracepoints report it (a negative
// errno).
func routeErrorText(err int) string {
	switch syscall.Errno(-err) {
	case syscall.EAGAIN, syscall.ENETUNREACH:
		return "no route matches (network unreachable)"
	case syscall.EHOSTUNREACH:
		return "no route, or an unreachable route, matches (host unreachable)"
	case syscall.EACCES:
		return "a prohibit route matches"
	case syscall.EINVAL:
		return "a blackhole route matches"
	}
	return fmt.Sprintf("error %d", err)
}

// mixedFates says, when some arriving packets died and others did not, which did which:
// "the SYN got through but the data was dropped" is the whole story of many tickets.
// Only the packets on their way to the service count: an answer coming back (the reset
// from the container a DNAT sent the SYN to) is not one that got through.
func mixedFates(ev *evidence.Evidence, fs []verdict.Fate) string {
	passed, dropped := map[string]int{}, map[string]int{}
	for _, f := range fs {
		if dst, err := netip.ParseAddrPort(f.Dst); err == nil && !verdict.Toward(ev, dst) {
			continue
		}
		switch f.Fate {
		case "dropped":
			dropped[flagWord(f.Flags)]++
		case "not_dropped":
			passed[flagWord(f.Flags)]++
		}
	}
	if len(passed) == 0 || len(dropped) == 0 {
		return ""
	}
	return fmt.Sprintf("fates differ: %s got through, %s dropped", countWords(passed), countWords(dropped))
}

func countWords(m map[string]int) string {
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, " and ")
}

// flagWord names a TCP packet by its flags as people say it.
func flagWord(flags string) string {
	switch {
	case flags == "":
		return "datagram(s)"
	case flags == "S":
		return "SYN(s)"
	case flags == "S.":
		return "SYN-ACK(s)"
	case strings.Contains(flags, "R"):
		return "reset(s)"
	case strings.Contains(flags, "F"):
		return "FIN(s)"
	case strings.Contains(flags, "P"):
		return "data segment(s)"
	case flags == ".":
		return "ACK(s)"
	}
	return "packet(s) with flags " + flags
}
