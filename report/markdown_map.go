package report

import (
	"fmt"
	"regexp"
	"strings"
)

// statusWords are the stage map's statuses as the reader reads them.
var statusWords = map[string]string{
	"passed":      "passed",
	"reached":     "reached",
	"died":        "**died here**",
	"not_reached": "not reached",
	"unknown":     "unknown",
}

// stageMap shows how far the flow got, stage by stage, as the verdict marked it: a table
// for every reader and a Mermaid chart of the same path for those whose tracker draws it.
func (r *Report) stageMap(m *mdWriter) {
	if len(r.Verdict.Map) == 0 {
		return
	}
	m.p("## Stage map")
	m.p("")
	m.p("| Stage | Status | What happened |")
	m.p("|---|---|---|")
	for _, s := range r.Verdict.Map {
		status := nonEmpty(statusWords[s.Status], strings.ReplaceAll(s.Status, "_", " "))
		what := strings.Join(counted(splitEvidence(s.Evidence)), "; ")
		if s.Status == "died" && r.Verdict.Reason != nil {
			what = strings.TrimPrefix(what+"; ", "; ") + "dropped: " + code(*r.Verdict.Reason) + prefixed(" at ", codeOrEmpty(nonEmpty(r.Verdict.Location, r.Verdict.Function)))
		}
		m.p("| %s | %s | %s |", s.Stage, status, cell(dash(what)))
	}
	m.p("")
	m.p("```mermaid")
	for _, line := range mermaid(r.Verdict) {
		m.p("%s", line)
	}
	m.p("```")
	m.p("")
	r.journey(m)
}

// journey lists the namespaces the packets went through, with what happened between
// them, when they left the one diagnosed or were translated in it.
func (r *Report) journey(m *mdWriter) {
	if len(r.Verdict.Journey) == 0 {
		return
	}
	m.p("## Journey")
	m.p("")
	for i, h := range r.Verdict.Journey {
		ns := hopName(h)
		if i == 0 {
			ns += ", the one diagnosed"
		}
		var stages []string
		for _, s := range h.Stages {
			stages = append(stages, s.Stage)
		}
		end := "passed " + strings.Join(stages, " → ")
		if h.Died {
			end = strings.TrimSuffix(end, " → "+stages[len(stages)-1])
			if len(stages) == 1 {
				end = ""
			}
			end = strings.TrimPrefix(end+", then ", ", then ") + "**died** in " + stages[len(stages)-1]
			if r.Verdict.Reason != nil {
				end += " (" + code(*r.Verdict.Reason) + ")"
			}
		}
		m.p("%d. %s: %s%s", i+1, text(ns), hopCounts(h), end)
		if t := h.Translation; t != nil {
			line := fmt.Sprintf("   - %s %s → %s", t.Kind, t.From, t.To)
			if t.Rule != "" {
				line += " by " + code(t.Rule)
			}
			m.p("%s", line)
		}
		if h.Out != "" {
			m.p("   - left by %s", code(h.Out))
		}
	}
	m.p("")
}

// hopCounts says how many of the flow's packets reached a hop and how many died there:
// "2 packets reached it, 2 died (100%); ".
func hopCounts(h JourneyHop) string {
	if h.Reached == 0 {
		return ""
	}
	out := plural(h.Reached, "packet", "packets") + " reached it"
	if h.Dropped > 0 {
		out += fmt.Sprintf(", %d died (%.0f%%)", h.Dropped, 100*float64(min(h.Dropped, h.Reached))/float64(h.Reached))
	}
	return out + "; "
}

func codeOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return code(s)
}

func splitEvidence(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "; ")
}

// mermaidClasses style the chart's nodes by status; GitHub and GitLab draw them.
var mermaidClasses = map[string]string{
	"passed":     "fill:#e6f4ea,stroke:#1e8e3e,color:#0d3d1a",
	"reached":    "fill:#e6f4ea,stroke:#1e8e3e,stroke-width:3px,color:#0d3d1a",
	"died":       "fill:#fce8e6,stroke:#d93025,stroke-width:3px,color:#5f0f0a",
	"notreached": "fill:#f1f3f4,stroke:#9aa0a6,stroke-dasharray:4 3,color:#5f6368",
	"unknown":    "fill:#fef7e0,stroke:#f9ab00,stroke-dasharray:4 3,color:#5f4b00",
}

// mermaidID is the node id of a stage: letters, digits and underscores only, never a
// Mermaid keyword ("end").
var mermaidID = regexp.MustCompile(`[^A-Za-z0-9_]`)

func nodeID(s string) string { return "s_" + mermaidID.ReplaceAllString(s, "_") }

// mermaidEscapes keep a label's text from ending its quotes (Mermaid has no escape for a
// double quote but #quot;), from being read as HTML, as an entity (#name;) or, led by a
// backtick, as Markdown. Everything else, colons, brackets, pipes and arrows included,
// is only text between the quotes.
var mermaidEscapes = strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "#", "#35;", "`", "#96;")

// mermaidText quotes the parts of a label, one line each.
func mermaidText(parts ...string) string {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = mermaidEscapes.Replace(p)
	}
	return `"` + strings.Join(quoted, "<br/>") + `"`
}

// mermaidLabel is the quoted label of a node or subgraph.
func mermaidLabel(parts ...string) string { return "[" + mermaidText(parts...) + "]" }

// mermaid draws the stage map as a left-to-right flowchart: one node per stage, styled by
// its status, the dying stage marked with the reason, dotted arrows into the stages not
// reached. It is short, because a tracker that does not draw Mermaid shows it as text.
// When the packets went through more than one namespace it draws the journey instead.
func mermaid(v Verdict) []string {
	c := &chart{lines: []string{"flowchart LR"}, used: map[string]bool{}}
	if len(v.Journey) > 1 {
		c.journey(v)
		return c.done()
	}
	var chain []string
	for i, s := range v.Map {
		id := nodeID(s.Stage)
		c.node("  ", id, s, v.Reason)
		if i > 0 {
			chain = append(chain, " "+arrow(s)+" ")
		}
		chain = append(chain, id)
	}
	if len(v.Map) > 1 {
		c.add("  " + strings.Join(chain, ""))
	}
	return c.done()
}

// journey draws each hop as a subgraph named as the Journey section names it, its stages
// chained inside, and the edges between hops labelled with how the packets left the hop
// before: the translation made there and the device. A translation in the last hop has no
// edge to label; the Journey section still lists it.
func (c *chart) journey(v Verdict) {
	first := make([]string, len(v.Journey)) // each hop's first node, or the subgraph
	last := make([]string, len(v.Journey))
	for i, h := range v.Journey {
		sub := fmt.Sprintf("ns%d", i)
		first[i], last[i] = sub, sub
		c.add("  subgraph " + sub + mermaidLabel(hopName(h)))
		var chain []string
		for j, s := range h.Stages {
			// Per hop: the same stage (prerouting, socket) can be passed in two namespaces.
			id := sub + "_" + mermaidID.ReplaceAllString(s.Stage, "_")
			c.node("    ", id, s, v.Reason)
			if j == 0 {
				first[i] = id
			} else {
				chain = append(chain, " "+arrow(s)+" ")
			}
			chain = append(chain, id)
			last[i] = id
		}
		if len(h.Stages) > 1 {
			c.add("    " + strings.Join(chain, ""))
		}
		c.add("  end")
	}
	for i := 1; i < len(v.Journey); i++ {
		from, to := v.Journey[i-1], v.Journey[i]
		var label []string
		if t := from.Translation; t != nil {
			label = append(label, t.Kind+" "+t.From+" → "+t.To)
		}
		if from.Out != "" {
			label = append(label, "via "+from.Out)
		}
		a := "-->"
		if len(to.Stages) > 0 {
			a = arrow(to.Stages[0])
		}
		if len(label) > 0 {
			a += "|" + mermaidText(label...) + "|"
		}
		c.add("  " + last[i-1] + " " + a + " " + first[i])
	}
}

// hopName names a hop's namespace as the Journey section does: its owner as the host
// told it ("the host", "container web (docker, id 1965e06dc668)", an ip netns name) and
// its inode, which is what tells two namespaces apart.
func hopName(h JourneyHop) string {
	return nonEmpty(h.NetnsName, "namespace") + fmt.Sprintf(" (%d)", h.Netns)
}

// arrow leads into a stage: dotted when the flow is not known to have got there.
func arrow(s StageStatus) string {
	if s.Status == "not_reached" || s.Status == "unknown" {
		return "-.->"
	}
	return "-->"
}

// chart collects a Mermaid chart's lines and the classes its nodes use, so that only
// those get a classDef.
type chart struct {
	lines   []string
	classes []string
	used    map[string]bool
}

func (c *chart) add(line string) { c.lines = append(c.lines, line) }

// node draws stage s, styled by its status; the dying stage says the reason.
func (c *chart) node(indent, id string, s StageStatus, reason *string) {
	words := strings.ReplaceAll(s.Status, "_", " ")
	if s.Status == "died" {
		words = "✖ died here"
		if reason != nil {
			words += ": " + *reason
		}
	}
	class := strings.ReplaceAll(s.Status, "_", "")
	c.add(indent + id + mermaidLabel(s.Stage, words) + ":::" + class)
	if !c.used[class] {
		c.used[class] = true
		c.classes = append(c.classes, class)
	}
}

func (c *chart) done() []string {
	for _, class := range c.classes {
		if style, ok := mermaidClasses[class]; ok {
			c.add(fmt.Sprintf("  classDef %s %s", class, style))
		}
	}
	return c.lines
}
