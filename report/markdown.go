package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// shownPackets is how many packets the Markdown lists; the JSON has up to MaxPackets.
const shownPackets = 10

// WriteMarkdown renders the report for a ticket: the verdict first, then what to do, the
// stage map, the evidence, and how it ran.
func (r *Report) WriteMarkdown(w io.Writer) error {
	b := bufio.NewWriter(w)
	md := &mdWriter{w: b}
	r.header(md)
	r.todo(md)
	r.stageMap(md)
	r.arrival(md)
	r.firewall(md)
	r.kernel(md)
	r.path(md)
	r.hostState(md)
	r.howItRan(md)
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write Markdown report: %w", err)
	}
	return nil
}

type mdWriter struct{ w io.Writer }

func (m *mdWriter) p(format string, a ...any) { fmt.Fprintf(m.w, format+"\n", a...) }

// cell escapes text for a table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// code quotes s as inline code, safe even when s holds backticks.
func code(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

func (r *Report) header(m *mdWriter) {
	v := r.Verdict
	m.p("# %s: %s", r.Flow, strings.ReplaceAll(string(v.Outcome), "_", " "))
	m.p("")
	m.p("**%s**", v.Summary)
	m.p("")
	m.p("| | |")
	m.p("|---|---|")
	m.p("| Outcome | %s |", v.Outcome)
	m.p("| Stage | %s |", v.Stage)
	if v.Reason != nil {
		m.p("| Reason | %s |", code(*v.Reason))
	}
	if v.Function != "" {
		fn := code(v.Function)
		if v.Location != "" && v.Location != v.Function {
			fn += " (" + code(v.Location) + ")"
		}
		m.p("| Dropped by | %s |", fn)
	}
	if v.Netfilter != nil {
		m.p("| Netfilter hook | %s %s |", v.Netfilter.Family, v.Netfilter.Hook)
	}
	if v.Rule != nil {
		m.p("| Rule | %s |", cell(ruleLine(v.Rule)))
	}
	m.p("| Flow | %s (every packet to or from it) |", code(r.Flow.String()))
	ns := fmt.Sprintf("netns %d", r.Host.Netns.Inode)
	if r.Host.Netns.Name != "" {
		ns = fmt.Sprintf("netns %s (%d)", r.Host.Netns.Name, r.Host.Netns.Inode)
	}
	m.p("| Host | %s, %s |", cell(r.Host.Hostname), ns)
	m.p("| Kernel | %s |", cell(r.Host.Kernel))
	m.p("| Time | %s, %s |", r.Run.Started.UTC().Format(time.RFC3339), time.Duration(r.Run.DurationMS)*time.Millisecond)
	m.p("")
}

func ruleLine(s *evidence.TraceStep) string {
	where := fmt.Sprintf("table %s %s, chain %s", s.Family, s.Table, s.Chain)
	if s.Type == "policy" {
		return fmt.Sprintf("policy %s of %s", s.Verdict, where)
	}
	rule := s.Rule
	if rule == "" {
		rule = "(rule not decoded)"
	}
	return fmt.Sprintf("%s (%s, handle %d)", code(rule), where, s.Handle)
}

func (r *Report) todo(m *mdWriter) {
	v := r.Verdict
	m.p("## What to do")
	m.p("")
	m.p("%s", capitalize(v.Fix))
	m.p("")
	if v.Explanation != "" {
		m.p("Why: %s.", v.Explanation)
		m.p("")
	}
	for _, e := range v.Elsewhere {
		name := fmt.Sprint(e.Netns)
		if e.NetnsName != "" {
			name = fmt.Sprintf("%s (%d)", e.NetnsName, e.Netns)
		}
		m.p("- Also seen elsewhere on this host: %d drop(s) of the flow in namespace %s, reason %s at %s.", e.Count, name, code(e.Reason), code(e.Function))
	}
	for _, n := range v.Notes {
		m.p("- Note: %s.", n)
	}
	if len(v.Elsewhere)+len(v.Notes) > 0 {
		m.p("")
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stageMap shows how far the flow got, stage by stage, as the verdict marked it.
func (r *Report) stageMap(m *mdWriter) {
	if len(r.Verdict.Map) == 0 {
		return
	}
	m.p("## Stage map")
	m.p("")
	m.p("| Stage | Status | What shows it |")
	m.p("|---|---|---|")
	for _, s := range r.Verdict.Map {
		status := strings.ReplaceAll(s.Status, "_", " ")
		if s.Status == "died" {
			status = "**died here**"
		}
		m.p("| %s | %s | %s |", s.Stage, status, cell(s.Evidence))
	}
	m.p("")
	r.fates(m)
}

// fates lists what became of each packet when their fates differ or some died.
func (r *Report) fates(m *mdWriter) {
	fs := r.Verdict.Fates
	dropped := 0
	for _, f := range fs {
		if f.Fate == "dropped" {
			dropped++
		}
	}
	if dropped == 0 {
		return
	}
	m.p("Packet by packet:")
	m.p("")
	m.p("| Time | Packet | Flags | Fate |")
	m.p("|---|---|---|---|")
	for i, f := range fs {
		if i == shownPackets {
			m.p("")
			m.p("%d more in the JSON report.", len(fs)-shownPackets)
			break
		}
		fate := strings.ReplaceAll(f.Fate, "_", " ")
		if f.Fate == "dropped" {
			fate = fmt.Sprintf("dropped in %s: %s at %s", f.Stage, code(f.Reason), code(f.At))
		}
		m.p("| %s | %s → %s | %s | %s |", f.Time.UTC().Format("15:04:05.000000"), f.Src, f.Dst, f.Flags, fate)
	}
	m.p("")
}

func (r *Report) arrival(m *mdWriter) {
	a := r.Stages.Arrival
	m.p("## Evidence")
	m.p("")
	m.p("### Arrival (capture)")
	m.p("")
	if a == nil {
		m.p("The capture did not run.")
		m.p("")
		return
	}
	if a.Error != "" {
		m.p("Capture error: %s", a.Error)
		m.p("")
	}
	on := "every interface"
	if len(a.Ifaces) > 0 {
		on = strings.Join(a.Ifaces, ", ")
	}
	m.p("Captured on %s: %d packet(s) in, %d out.", on, a.In, a.Out)
	if a.SocketDrops > 0 {
		m.p("The capture socket lost %d packet(s).", a.SocketDrops)
	}
	m.p("")
	if len(a.Counts) > 0 {
		m.p("| Interface | Direction | Packets | Bytes |")
		m.p("|---|---|---|---|")
		for _, c := range a.Counts {
			m.p("| %s | %s | %d | %d |", cell(c.Iface), c.Direction, c.Packets, c.Bytes)
		}
		m.p("")
	}
	if len(a.Packets) > 0 {
		m.p("| Time | Interface | Dir | Packet | Flags | Length |")
		m.p("|---|---|---|---|---|---|")
		for i, p := range a.Packets {
			if i == shownPackets {
				break
			}
			m.p("| %s | %s | %s | %s → %s | %s | %d |", p.Time.UTC().Format("15:04:05.000000"), cell(p.Iface), p.Direction, p.Src, p.Dst, p.Flags, p.Length)
		}
		if len(a.Packets) > shownPackets {
			m.p("")
			m.p("%d more in the JSON report and the capture file.", len(a.Packets)-shownPackets)
		}
		m.p("")
	}
	if a.PcapPath != "" {
		m.p("Capture file: %s", code(a.PcapPath))
		m.p("")
	}
}

func (r *Report) firewall(m *mdWriter) {
	fw := r.Stages.Firewall
	m.p("### Firewall (nftables trace)")
	m.p("")
	if fw == nil {
		m.p("The firewall trace did not run.")
		m.p("")
		return
	}
	if fw.Error != "" {
		m.p("Trace error: %s", fw.Error)
		m.p("")
	}
	if len(fw.Traces) == 0 {
		m.p("No packet of the flow went through netfilter.")
		m.p("")
		return
	}
	for i, t := range fw.Traces {
		pkt := ""
		if t.Src.IsValid() {
			pkt = fmt.Sprintf(" %s → %s", t.Src, t.Dst)
		}
		dev := ""
		if t.Iif != "" {
			dev += " in " + t.Iif
		}
		if t.Oif != "" {
			dev += " out " + t.Oif
		}
		m.p("%d. **%s %s**%s%s: %s", i+1, t.Family, t.Hook, pkt, dev, nonEmpty(t.Verdict, "no verdict"))
		for _, s := range t.Steps {
			switch s.Type {
			case "policy":
				m.p("   - table %s %s, chain %s: policy %s", s.Family, s.Table, s.Chain, s.Verdict)
			case "return":
				m.p("   - table %s %s, chain %s: end of chain, %s", s.Family, s.Table, s.Chain, s.Verdict)
			default:
				m.p("   - table %s %s, chain %s, handle %d: %s → %s", s.Family, s.Table, s.Chain, s.Handle, code(nonEmpty(s.Rule, "?")), s.Verdict)
			}
		}
	}
	m.p("")
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

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
		m.p("Error: %s", k.Error)
		m.p("")
	}
	m.p("%d kfree_skb event(s) seen host-wide, %d of the flow, %d lost.", k.Seen, k.Matched, k.Lost)
	m.p("")
	type group struct {
		d     evidence.Drop
		count int
	}
	var groups []*group
	idx := map[string]*group{}
	for _, d := range k.Drops {
		key := fmt.Sprintf("%s|%s|%d", d.Reason, d.Location, d.Netns)
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
			m.p("| %d | %s | %s | %s | %s |", g.count, code(g.d.Reason), code(g.d.Location), cell(ns), cell(g.d.Iface))
		}
		m.p("")
		for _, g := range groups {
			if len(g.d.Stack) == 0 {
				continue
			}
			m.p("Stack of %s at %s:", code(g.d.Reason), code(g.d.Location))
			m.p("")
			m.p("```")
			for _, f := range g.d.Stack {
				m.p("%s", f)
			}
			m.p("```")
			m.p("")
		}
	}
	for _, n := range k.Notes {
		m.p("- Note: %s", n)
	}
	if len(k.Notes) > 0 {
		m.p("")
	}
}

func (r *Report) howItRan(m *mdWriter) {
	m.p("## How it ran")
	m.p("")
	m.p("- Command: %s", code(ShellJoin(r.Run.Args)))
	if len(r.Run.Reproduction) > 0 {
		exit := "did not finish"
		if r.Run.ReproductionExit != nil {
			exit = fmt.Sprintf("exit status %d", *r.Run.ReproductionExit)
		}
		m.p("- Reproduction: %s (%s)", code(ShellJoin(r.Run.Reproduction)), exit)
	}
	m.p("- %s %s; armed in %d ms; capture ended by %s after %s", r.Tool.Name, r.Tool.Version, r.Run.ArmedMS, r.Run.StoppedBy, time.Duration(r.Run.DurationMS)*time.Millisecond)
	lost := []string{}
	if a := r.Stages.Arrival; a != nil {
		lost = append(lost, fmt.Sprintf("capture %d", a.SocketDrops))
	}
	if f := r.Stages.Firewall; f != nil {
		lost = append(lost, fmt.Sprintf("nftables trace %d", f.Lost))
	}
	if k := r.Stages.KernelDrop; k != nil {
		lost = append(lost, fmt.Sprintf("kernel drop events %d", k.Lost))
		if k.Attach != "" {
			m.p("- Kernel drops traced with %s", code(k.Attach))
		}
	}
	m.p("- Lost: %s", strings.Join(lost, ", "))
	for _, in := range r.Run.Installed {
		state := "**left behind**"
		if in.Removed {
			state = "removed"
		}
		m.p("- Installed %s: %s", in.What, state)
	}
	for _, n := range r.Run.Notes {
		m.p("- Note: %s", n)
	}
}

// ShellJoin quotes arguments the way a shell needs them, so a command line in the report
// can be pasted back into a terminal.
func ShellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,[]") == "" {
			quoted[i] = a
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

func (r *Report) path(m *mdWriter) {
	p := r.Stages.Path
	if p == nil {
		return
	}
	m.p("### Path (tracepoints)")
	m.p("")
	if p.Error != "" {
		m.p("Error: %s", p.Error)
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
				ns = fmt.Sprint(c.Netns)
			}
			m.p("| %s | %s | %d |", code(c.Point), ns, c.Events)
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
		routes = append(routes, fmt.Sprintf("- route lookup %s → %s%s: %s", e.Src, e.Dst, prefixed(" iif ", e.Iif), res))
	}
	for i, line := range routes {
		if i == shownPackets {
			m.p("- %d more route lookups in the JSON report", len(routes)-shownPackets)
			break
		}
		m.p("%s", line)
	}
	for _, miss := range p.Missing {
		m.p("- Not available on this kernel: %s (%s)", code(miss.Point), miss.Why)
	}
	for _, n := range p.Notes {
		m.p("- Note: %s", n)
	}
	if len(routes)+len(p.Missing)+len(p.Notes) > 0 {
		m.p("")
	}
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
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
			res = "error: " + rt.Err
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
		m.p("- Could not read: %s", e)
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
			ifaces[c.Iface] = true
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
