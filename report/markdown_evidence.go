package report

import (
	"fmt"
	"html"
	"net/netip"
	"sort"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// arrival lists the captured packets with what became of each (the verdict's fates).
func (r *Report) arrival(m *mdWriter) {
	a := r.Stages.Arrival
	m.p("### Packets (capture)")
	m.p("")
	if a == nil {
		m.p("The capture did not run.")
		m.p("")
		return
	}
	if a.Error != "" {
		m.p("Capture error: %s", text(a.Error))
		m.p("")
	}
	on := "every interface"
	if len(a.Ifaces) > 0 {
		on = strings.Join(a.Ifaces, ", ")
	}
	if a.Method != "" {
		on += " (" + a.Method + ")"
	}
	if a.Seen > 0 {
		on += fmt.Sprintf(", where %s of all flows passed", plural(int(a.Seen), "packet", "packets"))
	}
	m.p("Captured on %s: %s in%s, %d out%s.%s", on, plural(a.In, "packet", "packets"), perIface(a.Counts, evidence.In), a.Out, perIface(a.Counts, evidence.Out), followedCounts(a.Counts))
	if a.SocketDrops > 0 {
		m.p("The capture lost %s of the flow: its buffer was full while diagnose fell behind reading it.", plural(int(a.SocketDrops), "packet", "packets"))
	}
	m.p("")
	if len(a.Packets) > 0 {
		fates := r.fatesOf(a.Packets)
		m.p("| Time | Seen | Packet | Flags | Length | Fate |")
		m.p("|---|---|---|---|---|---|")
		for i, p := range a.Packets {
			if i == shownPackets {
				break
			}
			iface := p.Iface
			if p.Netns != 0 {
				iface += " of " + nonEmpty(p.NetnsName, fmt.Sprint(p.Netns))
			}
			m.p("| %s | %s %s | %s → %s | %s | %d | %s |", clock(p.Time), p.Direction, cell(iface), p.Src, p.Dst, dash(p.Flags), p.Length, fates[i])
		}
		m.p("")
		if n := len(a.Packets) - shownPackets; n > 0 {
			m.p("%d more in the JSON report and the capture file.", n)
			m.p("")
		}
	}
	if a.PcapPath != "" {
		line := "Capture file: " + code(a.PcapPath)
		if r.Run.Pcapng != "" {
			line += ", and with each packet's fate as its comment: " + code(r.Run.Pcapng)
		}
		m.p("%s", line)
		m.p("")
	}
}

// perIface says where packets of one direction were seen: " (veth0: 3, 180 bytes)".
func perIface(counts []evidence.IfaceCount, dir evidence.Direction) string {
	var parts []string
	for _, c := range counts {
		if c.Direction == dir && c.Netns == 0 {
			parts = append(parts, fmt.Sprintf("%s: %d, %d bytes", c.Iface, c.Packets, c.Bytes))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// followedCounts says what the capture saw in the namespaces the flow was followed into:
// " Followed into pmt-ctr (4026532504): 2 in on eth0."
func followedCounts(counts []evidence.IfaceCount) string {
	var order []uint64
	parts, names := map[uint64][]string{}, map[uint64]string{}
	for _, c := range counts {
		if c.Netns == 0 {
			continue
		}
		if _, ok := parts[c.Netns]; !ok {
			order = append(order, c.Netns)
		}
		parts[c.Netns] = append(parts[c.Netns], fmt.Sprintf("%d %s on %s", c.Packets, c.Direction, c.Iface))
		names[c.Netns] = c.NetnsName
	}
	var out string
	for _, ns := range order {
		out += fmt.Sprintf(" Followed into %s (%d): %s.", nonEmpty(names[ns], "namespace"), ns, strings.Join(parts[ns], ", "))
	}
	return out
}

// fatesOf pairs each captured packet with its fate in the verdict: the verdict lists the
// fates of the same packets in the same order.
func (r *Report) fatesOf(ps []evidence.Packet) []string {
	out := make([]string, len(ps))
	fs := r.Verdict.Fates
	for i, p := range ps {
		out[i] = "–"
		if i >= len(fs) || !fs[i].Time.Equal(p.Time) || fs[i].Src != p.Src.String() {
			continue
		}
		f := fs[i]
		switch f.Fate {
		case "dropped":
			out[i] = fmt.Sprintf("**dropped** in %s: %s", f.Stage, code(f.Reason))
			if len(r.sites()) > 1 {
				out[i] += " at " + code(f.At)
			}
		case "not_dropped":
			out[i] = "no drop seen"
		case "followed":
			out[i] = "arrived there"
		default:
			out[i] = strings.ReplaceAll(f.Fate, "_", " ")
		}
	}
	return out
}

// sites are the distinct places the flow's packets were dropped at in this namespace.
func (r *Report) sites() map[string]bool {
	out := map[string]bool{}
	for _, f := range r.Verdict.Fates {
		if f.Fate == "dropped" {
			out[f.At] = true
		}
	}
	return out
}

// journey is one packet's walk through the netfilter hooks: the traces with its trace id,
// one per hook, in order.
type journey []evidence.Trace

// journeys groups the traces by packet: a trace joins the latest journey with its id that
// has not passed its hook yet; the kernel reuses ids (a retransmission), so a hook seen
// twice starts a new packet.
func journeys(traces []evidence.Trace) []journey {
	var out []journey
	open := map[uint32]int{}
	for _, t := range traces {
		if i, ok := open[t.ID]; ok && !passed(out[i], t) {
			out[i] = append(out[i], t)
			continue
		}
		open[t.ID] = len(out)
		out = append(out, journey{t})
	}
	return out
}

func passed(j journey, t evidence.Trace) bool {
	for _, x := range j {
		if x.Family == t.Family && x.Hook == t.Hook {
			return true
		}
	}
	return false
}

// key is a journey without its trace ids: packets with equal keys met exactly the same
// rules with the same verdicts.
func (j journey) key() string {
	var b strings.Builder
	for _, t := range j {
		fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%s|%s|", t.Family, t.Hook, t.Iif, t.Oif, t.Src, t.Dst, t.Verdict)
		for _, s := range t.Steps {
			fmt.Fprintf(&b, "%s/%s/%s/%s/%d/%s/%s;", s.Type, s.Family, s.Table, s.Chain, s.Handle, s.Rule, s.Verdict)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// firewall shows each distinct walk through netfilter once, with how many packets took
// it: "3 packets: ip prerouting accept → ip input drop", and the rules each hook met.
// The namespaces the flow was followed into get a section each.
func (r *Report) firewall(m *mdWriter) {
	fw := r.Stages.Firewall
	if fw == nil {
		m.p("### Firewall (nftables trace)")
		m.p("")
		m.p("The firewall trace did not run.")
		m.p("")
		return
	}
	firewallOf(m, "### Firewall (nftables trace)", fw)
	for i := range fw.Elsewhere {
		e := &fw.Elsewhere[i]
		name := e.NetnsName
		if name == "" {
			name = fmt.Sprint(e.Netns)
		}
		firewallOf(m, fmt.Sprintf("### Firewall of network namespace %s (%d), where the flow went on", text(name), e.Netns), e)
	}
}

func firewallOf(m *mdWriter, title string, fw *evidence.Firewall) {
	m.p("%s", title)
	m.p("")
	if fw.Followed != "" {
		how := fmt.Sprintf("Traced from %s on, once the flow was known to go there", clock(fw.Since))
		if fw.Skipped != "" || fw.Error != "" {
			how = fmt.Sprintf("Followed at %s, once the flow was known to go there", clock(fw.Since))
		}
		m.p("%s (%s is an address of that namespace): its packets there before were not traced.", how, code(fw.Followed))
		m.p("")
	}
	if fw.Skipped != "" {
		m.p("Not traced: %s.", text(fw.Skipped))
		m.p("")
		return
	}
	if fw.Error != "" {
		m.p("Trace error: %s", text(fw.Error))
		m.p("")
	}
	if len(fw.Traces) == 0 {
		m.p("No packet of the flow went through netfilter.")
		m.p("")
		return
	}
	type group struct {
		j     journey
		count int
	}
	var groups []*group
	idx := map[string]*group{}
	js := journeys(fw.Traces)
	for _, j := range js {
		k := j.key()
		if g := idx[k]; g != nil {
			g.count++
			continue
		}
		idx[k] = &group{j: j, count: 1}
		groups = append(groups, idx[k])
	}
	m.p("%s traced; packets that took the same path through the same rules are counted once. Rules are as `nft -a list ruleset` prints them; a hook with none listed met no rule outside diagnose's own table.", plural(len(js), "packet", "packets"))
	m.p("")
	for i, g := range groups {
		if i == shownPackets {
			m.p("")
			m.p("%d more paths in the JSON report.", len(groups)-shownPackets)
			break
		}
		first := g.j[0]
		var hops []string
		for _, t := range g.j {
			v := nonEmpty(t.Verdict, "no verdict")
			if v == "drop" {
				v = "**drop**"
			}
			hops = append(hops, fmt.Sprintf("%s %s%s %s", t.Family, nonEmpty(t.Hook, "?"), devices(t), v))
		}
		m.p("%d. %s %s: %s", i+1, plural(g.count, "packet", "packets"), tuple(first.Src, first.Dst), strings.Join(hops, " → "))
		for _, t := range g.j {
			where := fmt.Sprintf("%s %s", t.Family, nonEmpty(t.Hook, "?"))
			if t.Src != first.Src || t.Dst != first.Dst {
				where += " (now " + tuple(t.Src, t.Dst) + ")"
			}
			if len(t.Steps) == 0 && where != fmt.Sprintf("%s %s", t.Family, nonEmpty(t.Hook, "?")) {
				m.p("   - %s: no rule; %s", where, nonEmpty(t.Verdict, "no verdict"))
			}
			for _, s := range t.Steps {
				m.p("   - %s: %s", where, stepLine(s))
			}
		}
	}
	m.p("")
	if fw.Omitted > 0 {
		m.p("%s of the flow not kept: the trace reached its size limit.", plural(int(fw.Omitted), "trace event", "trace events"))
		m.p("")
	}
}

func tuple(src, dst netip.AddrPort) string {
	if !src.IsValid() && !dst.IsValid() {
		return "(addresses not decoded)"
	}
	return fmt.Sprintf("%s → %s", src, dst)
}

func devices(t evidence.Trace) string {
	var d []string
	if t.Iif != "" {
		d = append(d, "in "+t.Iif)
	}
	if t.Oif != "" {
		d = append(d, "out "+t.Oif)
	}
	if len(d) == 0 {
		return ""
	}
	return " (" + strings.Join(d, ", ") + ")"
}

// stepLine is one trace step in nft's words: the chain, the rule with its handle, and the
// verdict it gave.
func stepLine(s evidence.TraceStep) string {
	chain := fmt.Sprintf("table %s %s chain %s", s.Family, s.Table, s.Chain)
	switch s.Type {
	case "policy":
		return fmt.Sprintf("%s policy %s", chain, s.Verdict)
	case "return":
		if s.Handle == 0 {
			return fmt.Sprintf("%s: end of chain, return", chain)
		}
	}
	rule := nonEmpty(s.Rule, "(rule not decoded)") + fmt.Sprintf(" # handle %d", s.Handle)
	return fmt.Sprintf("%s: %s → %s", chain, code(rule), nonEmpty(s.Verdict, "no verdict"))
}

// kernel groups the flow's drops by reason and place, and shows one stack per drop site.
func (r *Report) kernel(m *mdWriter) {
	k := r.Stages.KernelDrop
	m.p("### Kernel drops (skb:kfree_skb)")
	m.p("")
	if k == nil {
		m.p("The kernel drop stage did not run.")
		m.p("")
		return
	}
	if k.Error != "" {
		m.p("Error: %s", text(k.Error))
		m.p("")
	}
	m.p("%d kfree_skb events seen host-wide, %d of the flow, %d lost.", k.Seen, k.Matched, k.Lost)
	m.p("")
	type group struct {
		d     evidence.Drop
		count int
	}
	var groups []*group
	idx := map[string]*group{}
	for _, d := range k.Drops {
		key := fmt.Sprintf("%s|%s|%d|%s", d.Reason, d.Location, d.Netns, d.Iface)
		if g := idx[key]; g != nil {
			g.count++
			continue
		}
		g := &group{d: d, count: 1}
		idx[key] = g
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		m.p("No drop of the flow.")
		m.p("")
	} else {
		m.p("| Count | Reason | Location | Namespace | Interface |")
		m.p("|---|---|---|---|---|")
		for _, g := range groups {
			ns := "this one"
			if g.d.Elsewhere {
				ns = nonEmpty(g.d.NetnsName, "other") + fmt.Sprintf(" (%d)", g.d.Netns)
			}
			m.p("| %d | %s | %s | %s | %s |", g.count, code(g.d.Reason), code(g.d.Location), cell(ns), cell(dash(g.d.Iface)))
		}
		m.p("")
		shown := map[string]bool{}
		for _, g := range groups {
			site := g.d.Location + "\n" + strings.Join(g.d.Stack, "\n")
			if len(g.d.Stack) == 0 || shown[site] {
				continue
			}
			shown[site] = true
			ns := ""
			if g.d.Elsewhere {
				ns = " in namespace " + html.EscapeString(nonEmpty(g.d.NetnsName, fmt.Sprint(g.d.Netns)))
			}
			m.p("<details><summary>Stack of %s at %s%s (%s, innermost first)</summary>", htmlCode(g.d.Reason), htmlCode(g.d.Location), ns, plural(len(g.d.Stack), "frame", "frames"))
			m.p("")
			m.p("```")
			for _, f := range g.d.Stack {
				m.p("%s", f)
			}
			m.p("```")
			m.p("")
			m.p("</details>")
			m.p("")
		}
	}
	for _, n := range k.Notes {
		m.p("- Note: %s", text(n))
	}
	if len(k.Notes) > 0 {
		m.p("")
	}
}

// path shows where along the kernel path the flow's packets were seen.
func (r *Report) path(m *mdWriter) {
	p := r.Stages.Path
	if p == nil {
		return
	}
	m.p("### Path (tracepoints)")
	m.p("")
	if p.Error != "" {
		m.p("Error: %s", text(p.Error))
		m.p("")
	}
	if len(p.Counts) == 0 {
		m.p("No tracepoint saw the flow.")
	} else {
		m.p("| Point | Namespace | Events |")
		m.p("|---|---|---|")
		for _, c := range p.Counts {
			ns := "this one"
			if c.Elsewhere {
				ns = r.netnsName(c.Netns)
			}
			m.p("| %s | %s | %d |", code(c.Point), cell(ns), c.Events)
		}
	}
	m.p("")
	var routes []string
	for _, e := range p.Events {
		if e.Point != evidence.PointRoute || e.Elsewhere {
			continue
		}
		res := fmt.Sprintf("table %d%s%s", e.Table, prefixed(" dev ", e.Oif), prefixed(" via ", e.Gateway))
		if e.Err != 0 {
			res = fmt.Sprintf("table %d: error %d", e.Table, e.Err)
		}
		routes = append(routes, fmt.Sprintf("route lookup %s → %s%s: %s", e.Src, e.Dst, prefixed(" iif ", e.Iif), res))
	}
	routes = counted(routes)
	for i, line := range routes {
		if i == shownPackets {
			m.p("- %d more distinct route lookups in the JSON report", len(routes)-shownPackets)
			break
		}
		m.p("- %s", line)
	}
	for _, miss := range p.Missing {
		m.p("- Not available on this kernel: %s (%s)", code(miss.Point), text(miss.Why))
	}
	for _, n := range p.Notes {
		m.p("- Note: %s", text(n))
	}
	if len(routes)+len(p.Missing)+len(p.Notes) > 0 {
		m.p("")
	}
}

// netnsName names another namespace by its inode, with its name when a drop there told it.
func (r *Report) netnsName(inode uint64) string {
	if k := r.Stages.KernelDrop; k != nil {
		for _, d := range k.Drops {
			if d.Netns == inode && d.NetnsName != "" {
				return fmt.Sprintf("%s (%d)", d.NetnsName, inode)
			}
		}
	}
	for _, e := range r.Verdict.Elsewhere {
		if e.Netns == inode && e.NetnsName != "" {
			return fmt.Sprintf("%s (%d)", e.NetnsName, inode)
		}
	}
	return fmt.Sprint(inode)
}

// hostState shows the settings and counters that bear on the verdict.
func (r *Report) hostState(m *mdWriter) {
	h := r.Stages.Host
	if h == nil {
		return
	}
	m.p("### Host state")
	m.p("")
	if shown := r.relevantSysctls(); len(shown) > 0 {
		m.p("- Settings: %s (all %d read are in the JSON report)", strings.Join(shown, ", "), len(h.Sysctls))
	}
	for _, rt := range h.Routes {
		res := rt.Type + prefixed(" dev ", rt.Oif) + prefixed(" via ", rt.Gateway)
		if rt.Table != 0 {
			res += fmt.Sprintf(" table %d", rt.Table)
		}
		if rt.Err != "" {
			res = "error: " + text(rt.Err)
		}
		m.p("- Route %s: %s", code("ip route get "+rt.Query), res)
	}
	if len(h.Listeners) == 0 {
		m.p("- Sockets on port %d/%s: none", r.Flow.Port, r.Flow.Proto)
	}
	for _, l := range h.Listeners {
		extra := prefixed(" bound to ", l.BoundIface)
		if l.V6Only {
			extra += " (IPv6 only)"
		}
		m.p("- Socket %s %s %s%s", l.Proto, l.Local, l.State, extra)
	}
	for _, p := range h.Programs {
		m.p("- BPF program on %s %s: %s (id %d)", p.Iface, p.Hook, nonEmpty(p.Name, "unnamed"), p.ID)
	}
	var parts []string
	for _, c := range h.Counters {
		if troubleCounter(c.Name) {
			parts = append(parts, fmt.Sprintf("%s +%d", c.Name, c.Delta))
		}
	}
	if len(parts) > 0 {
		m.p("- Drop and error counters that moved: %s", strings.Join(parts, ", "))
	}
	if n := len(h.Counters) - len(parts); n > 0 {
		m.p("- %d other counter(s) moved (in the JSON report)", n)
	}
	for _, i := range h.Interfaces {
		m.p("- Interface %s: rx dropped +%d, tx dropped +%d, rx errors +%d, tx errors +%d", i.Iface, i.RxDropped, i.TxDropped, i.RxErrors, i.TxErrors)
	}
	if h.SoftnetDropped > 0 {
		m.p("- softnet backlog drops: +%d", h.SoftnetDropped)
	}
	if h.Conntrack != nil {
		m.p("- conntrack: %d of %d entries", h.Conntrack.Count, h.Conntrack.Max)
	}
	for _, e := range h.Errors {
		m.p("- Could not read: %s", text(e))
	}
	m.p("")
}

// relevantSysctls are the settings a reader of the verdict needs: the ones the verdict
// names, and the reverse-path and forwarding settings of the interfaces the flow used.
func (r *Report) relevantSysctls() []string {
	h := r.Stages.Host
	v := r.Verdict
	text := v.Summary + " " + v.Fix + " " + v.Explanation
	ifaces := map[string]bool{"all": true}
	if a := r.Stages.Arrival; a != nil {
		for _, c := range a.Counts {
			if c.Netns == 0 {
				ifaces[c.Iface] = true
			}
		}
	}
	var names []string
	for k := range h.Sysctls {
		parts := strings.Split(k, ".")
		last := parts[len(parts)-1]
		onIface := len(parts) == 5 && parts[2] == "conf" && ifaces[parts[3]]
		switch {
		case strings.Contains(text, k):
		case k == "net.ipv4.ip_forward" || k == "net.ipv6.conf.all.forwarding":
		case onIface && (last == "rp_filter" && parts[1] == "ipv4" || last == "disable_ipv6" && r.Flow.Family() == 6):
		default:
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		names[i] = code(k + "=" + h.Sysctls[k])
	}
	return names
}

// troubleCounter tells the counters that count drops and errors from those that count
// traffic: the Markdown shows the first kind, the JSON both.
func troubleCounter(name string) bool {
	for _, w := range []string{"Drop", "Err", "NoPorts", "NoRoutes", "Fail", "Discard", "Overflow", "Filter", "Csum", "Truncated", "Invalid", "Prune", "Reset", "Unknown", "Timeout"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}
