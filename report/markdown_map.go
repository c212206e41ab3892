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
		ns := nonEmpty(h.NetnsName, "namespace") + fmt.Sprintf(" (%d)", h.Netns)
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
		m.p("%d. %s: %s", i+1, text(ns), end)
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

// mermaidLabel quotes a label: Mermaid has no escape for a double quote but #quot;.
func mermaidLabel(parts ...string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;")
	for i, p := range parts {
		parts[i] = r.Replace(p)
	}
	return `["` + strings.Join(parts, "<br/>") + `"]`
}

// mermaid draws the stage map as a left-to-right flowchart: one node per stage, styled by
// its status, the dying stage marked with the reason, dotted arrows into the stages not
// reached. It is short, because a tracker that does not draw Mermaid shows it as text.
func mermaid(v Verdict) []string {
	out := []string{"flowchart LR"}
	var chain []string
	used := map[string]bool{}
	var classes []string
	for i, s := range v.Map {
		id := nodeID(s.Stage)
		words := strings.ReplaceAll(s.Status, "_", " ")
		if s.Status == "died" {
			words = "✖ died here"
			if v.Reason != nil {
				words += ": " + *v.Reason
			}
		}
		class := strings.ReplaceAll(s.Status, "_", "")
		out = append(out, "  "+id+mermaidLabel(s.Stage, words)+":::"+class)
		if !used[class] {
			used[class] = true
			classes = append(classes, class)
		}
		if i > 0 {
			arrow := " --> "
			if s.Status == "not_reached" || s.Status == "unknown" {
				arrow = " -.-> "
			}
			chain = append(chain, arrow)
		}
		chain = append(chain, id)
	}
	if len(v.Map) > 1 {
		out = append(out, "  "+strings.Join(chain, ""))
	}
	for _, c := range classes {
		if style, ok := mermaidClasses[c]; ok {
			out = append(out, fmt.Sprintf("  classDef %s %s", c, style))
		}
	}
	return out
}
