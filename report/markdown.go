package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
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

// stageMap marks each stage of the receive path, or of the send path for drops there.
func (r *Report) stageMap(m *mdWriter) {
	v := r.Verdict
	m.p("## Stage map")
	m.p("")
	m.p("| Stage | Status |")
	m.p("|---|---|")
	path, ok := pathTo(v.Stage)
	for _, s := range path {
		status := "not reached"
		switch {
		case v.Outcome == verdict.Inconclusive:
			status = "unknown"
		case s == v.Stage && v.Outcome == verdict.Dropped:
			status = "**died here**"
		case s == v.Stage && v.Outcome == verdict.NotArrived:
			status = "**not reached**: nothing arrived"
		case s == v.Stage && v.Outcome == verdict.Delivered:
			status = "reached: delivered"
		case ok && indexOf(path, s) < indexOf(path, v.Stage):
			status = "passed"
		}
		m.p("| %s | %s |", s, status)
	}
	m.p("")
}

// receivePath is the path of a packet to a local socket; forwarded packets leave it at
// routing for forward, locally sent ones start at output.
var (
	receivePath = []verdict.Stage{verdict.Arrival, verdict.Ingress, verdict.IPRcv, verdict.Prerouting, verdict.Routing, verdict.Input, verdict.Socket}
	forwardPath = []verdict.Stage{verdict.Arrival, verdict.Ingress, verdict.IPRcv, verdict.Prerouting, verdict.Routing, verdict.Forward, verdict.Postrouting, verdict.Egress}
	mcastPath   = []verdict.Stage{verdict.Arrival, verdict.Ingress, verdict.IPRcv, verdict.Prerouting, verdict.Routing, verdict.MulticastRPF, verdict.Input, verdict.Socket}
	sendPath    = []verdict.Stage{verdict.Socket, verdict.Output, verdict.Postrouting, verdict.Egress}
)

func pathTo(s verdict.Stage) ([]verdict.Stage, bool) {
	for _, p := range [][]verdict.Stage{receivePath, forwardPath, mcastPath, sendPath} {
		if indexOf(p, s) >= 0 {
			return p, true
		}
	}
	return receivePath, false
}

func indexOf(p []verdict.Stage, s verdict.Stage) int {
	for i, x := range p {
		if x == s {
			return i
		}
	}
	return -1
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
