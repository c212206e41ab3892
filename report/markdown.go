package report

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// shownPackets is how many packets (and other repeated lines) the Markdown lists; the
// JSON has up to evidence.MaxPackets.
const shownPackets = 10

// WriteMarkdown renders the report for a ticket, for a reader who was not there: the
// verdict in one sentence and where and when it ran, what to do, the stage map (a table
// and a Mermaid chart), the evidence, and how it ran.
func (r *Report) WriteMarkdown(w io.Writer) error {
	b := bufio.NewWriter(w)
	md := &mdWriter{w: b}
	r.header(md)
	r.todo(md)
	r.stageMap(md)
	md.p("## Evidence")
	md.p("")
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

// text escapes what Markdown would take for markup in a sentence the verdict wrote, outside
// its `code` spans: a "<source>" placeholder would vanish as an HTML tag, a "*" would start
// emphasis, and so would "__dev_queue_xmit" when a later word ends in an underscore.
// Everything else is left alone, so that the raw text stays readable in a ticket.
func text(s string) string {
	var b strings.Builder
	inCode := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '`' {
			inCode = !inCode
			b.WriteByte(c)
			continue
		}
		if inCode {
			b.WriteByte(c)
			continue
		}
		switch c {
		case '\\', '*', '<', '>':
			b.WriteByte('\\')
		case '_':
			if emphasisUnderscore(s, i) {
				b.WriteByte('\\')
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// emphasisUnderscore tells whether the underscore at i may open or close emphasis: its run
// touches a word's edge, and another run that touches the other kind of edge exists.
func emphasisUnderscore(s string, i int) bool {
	opens, closes := underscoreEdges(s, i)
	if !opens && !closes {
		return false
	}
	for j := 0; j < len(s); j++ {
		if s[j] != '_' || j == i {
			continue
		}
		o, c := underscoreEdges(s, j)
		if opens && c && j > i || closes && o && j < i {
			return true
		}
	}
	return false
}

// underscoreEdges: the run of underscores around i starts a word (opens) or ends one (closes).
func underscoreEdges(s string, i int) (opens, closes bool) {
	j, k := i, i
	for j > 0 && s[j-1] == '_' {
		j--
	}
	for k < len(s) && s[k] == '_' {
		k++
	}
	before := j > 0 && isAlnum(s[j-1])
	after := k < len(s) && isAlnum(s[k])
	return !before && after, before && !after
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// htmlCode is code inside raw HTML (a <summary>), where Markdown is not parsed.
func htmlCode(s string) string { return "<code>" + html.EscapeString(s) + "</code>" }

func dash(s string) string { return nonEmpty(s, "–") }

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000000") }

func duration(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() }

// headline names the outcome in a few words, for the title.
func headline(v Verdict) string {
	switch v.Outcome {
	case "dropped":
		return "dropped in " + v.Stage
	case "delivered":
		return "delivered"
	case "forwarded":
		return "forwarded out of this host"
	case "not_arrived":
		return "did not arrive"
	case "inconclusive":
		return "inconclusive, last seen at " + v.Stage
	}
	return strings.ReplaceAll(v.Outcome, "_", " ")
}

// header: the title, the verdict in one sentence, where and when, and the verdict's fields.
func (r *Report) header(m *mdWriter) {
	v := r.Verdict
	m.p("# %s %s", r.Flow, headline(v))
	m.p("")
	m.p("**%s**", text(v.Summary))
	m.p("")
	host := nonEmpty(r.Host.Hostname, "unknown host")
	ns := fmt.Sprintf("netns %d", r.Host.Netns.Inode)
	if r.Host.Netns.Name != "" {
		ns = fmt.Sprintf("netns %s (%d)", code(r.Host.Netns.Name), r.Host.Netns.Inode)
	}
	m.p("Flow %s (every packet to or from it) · host %s, %s · kernel %s · %s, for %s",
		code(r.Flow.String()), code(host), ns, code(nonEmpty(r.Host.Kernel, "unknown")),
		r.Run.Started.UTC().Format("2006-01-02 15:04:05 MST"), duration(r.Run.DurationMS))
	m.p("")
	reason, at := "–", "–"
	if v.Reason != nil {
		reason = code(*v.Reason)
	}
	if loc := nonEmpty(v.Location, v.Function); loc != "" {
		at = code(loc)
	}
	if v.Netfilter != nil {
		at += fmt.Sprintf(", hook %s %s", v.Netfilter.Family, v.Netfilter.Hook)
	}
	m.p("| Outcome | Stage | Reason | Dropped at |")
	m.p("|---|---|---|---|")
	m.p("| **%s** | %s | %s | %s |", strings.ReplaceAll(string(v.Outcome), "_", " "), v.Stage, cell(reason), cell(at))
	m.p("")
	// The summary names the rule: repeat it only when it does not (a rule not decoded).
	if r := v.Rule; r != nil && r.Type != "policy" && (r.Rule == "" || !strings.Contains(v.Summary, r.Rule)) {
		m.p("Rule: %s.", ruleLine(r))
		m.p("")
	}
}

// ruleLine names a rule or policy with where it is: `tcp dport 80 drop` in table inet
// guard, chain input (handle 2).
func ruleLine(s *evidence.TraceStep) string {
	where := fmt.Sprintf("table %s %s, chain %s", s.Family, s.Table, s.Chain)
	if s.Type == "policy" {
		return fmt.Sprintf("policy %s of %s", s.Verdict, where)
	}
	return fmt.Sprintf("%s in %s (handle %d)", code(nonEmpty(s.Rule, "(rule not decoded)")), where, s.Handle)
}

func (r *Report) todo(m *mdWriter) {
	v := r.Verdict
	m.p("## What to do")
	m.p("")
	m.p("%s", text(capitalize(nonEmpty(v.Fix, "no fix to suggest"))))
	m.p("")
	if v.Explanation != "" {
		m.p("Why: %s.", text(v.Explanation))
		m.p("")
	}
	for _, e := range v.Elsewhere {
		name := fmt.Sprint(e.Netns)
		if e.NetnsName != "" {
			name = fmt.Sprintf("%s (%d)", e.NetnsName, e.Netns)
		}
		m.p("- Also seen elsewhere on this host: %s of the flow in namespace %s, reason %s at %s.", plural(e.Count, "drop", "drops"), name, code(e.Reason), code(e.Function))
	}
	for _, n := range v.Notes {
		m.p("- Note: %s.", text(strings.TrimSuffix(n, ".")))
	}
	if len(v.Elsewhere)+len(v.Notes) > 0 {
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
	m.p("- %s %s; armed in %d ms; capture ended by %s after %s", r.Tool.Name, r.Tool.Version, r.Run.ArmedMS, nonEmpty(r.Run.StoppedBy, "?"), duration(r.Run.DurationMS))
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
	if p := r.Stages.Path; p != nil {
		lost = append(lost, fmt.Sprintf("path events %d", p.Lost))
	}
	m.p("- Lost: %s", strings.Join(lost, ", "))
	for _, in := range r.Run.Installed {
		state := "**left behind**"
		if in.Removed {
			state = "removed"
		}
		m.p("- Installed %s: %s", text(in.What), state)
	}
	for _, n := range r.Run.Notes {
		m.p("- Note: %s", text(n))
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

// counted collapses repeated items, keeping the order of first appearance: "a", "a", "b"
// becomes "a ×2", "b".
func counted(items []string) []string {
	n := map[string]int{}
	var order []string
	for _, it := range items {
		if n[it] == 0 {
			order = append(order, it)
		}
		n[it]++
	}
	for i, it := range order {
		if n[it] > 1 {
			order[i] = fmt.Sprintf("%s ×%d", it, n[it])
		}
	}
	return order
}
