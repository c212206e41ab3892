package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

var htmlDir = flag.String("html", "", "also write each golden report rendered as an HTML page into this directory, to look at")

// renderGFM renders Markdown the way GitHub and GitLab do, near enough: GFM tables,
// strikethrough, autolinks, and raw HTML (<details>) passed through.
func renderGFM(md []byte) ([]byte, error) {
	var out bytes.Buffer
	gm := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(gmhtml.WithUnsafe()))
	if err := gm.Convert(md, &out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// pageHTML wraps rendered Markdown in a page styled like a ticket tracker's comment.
func pageHTML(title string, body []byte) []byte {
	return []byte(`<!doctype html>
<html><head><meta charset="utf-8"><title>` + html.EscapeString(title) + `</title>
<style>
body { font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328; max-width: 1012px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 1.8em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
h2 { font-size: 1.4em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; margin-top: 1.5em; }
h3 { font-size: 1.15em; margin-top: 1.3em; }
code { font: 12px "DejaVu Sans Mono", monospace; background: #eff1f3; padding: .15em .3em; border-radius: 4px; }
pre { background: #f6f8fa; padding: 12px; border-radius: 6px; overflow: auto; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; display: block; overflow: auto; }
th, td { border: 1px solid #d1d9e0; padding: 4px 10px; text-align: left; vertical-align: top; }
tr:nth-child(2n) { background: #f6f8fa; }
details { margin: 8px 0; }
summary { cursor: pointer; }
</style></head><body>
` + string(body) + `</body></html>
`)
}

// TestMarkdownRenders renders every golden Markdown report as GitHub would and checks
// what a reader sees: the verdict sentence first, tables with their columns and every row
// whole, the Mermaid chart as a mermaid code block, headings in order.
func TestMarkdownRenders(t *testing.T) {
	t.Parallel()
	for _, name := range goldens(t) {
		t.Run(name, func(t *testing.T) {
			r := readRecorded(t, name)
			md, err := os.ReadFile(filepath.Join("..", "testdata", "reports", name+".md"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := renderGFM(md)
			if err != nil {
				t.Fatal(err)
			}
			if *htmlDir != "" {
				if err := os.WriteFile(filepath.Join(*htmlDir, name+".html"), pageHTML(name, out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			doc, err := html.Parse(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			checkRendered(t, r, doc)
		})
	}
}

func checkRendered(t *testing.T, r *Report, doc *html.Node) {
	t.Helper()
	// The verdict sentence is the first paragraph, right after the title.
	h1 := find(doc, atom.H1)
	p := find(doc, atom.P)
	if len(h1) == 0 || len(p) == 0 {
		t.Fatal("no title or no paragraph")
	}
	if got, want := textOf(p[0]), strings.ReplaceAll(r.Verdict.Summary, "`", ""); got != want {
		t.Errorf("first paragraph:\n%s\nwant the verdict:\n%s", got, want)
	}
	if !strings.Contains(textOf(h1[0]), r.Flow.String()) {
		t.Errorf("title %q does not name the flow", textOf(h1[0]))
	}
	if !strings.HasPrefix(textOf(p[1]), "Flow "+r.Flow.String()) || !strings.Contains(textOf(p[1]), r.Host.Kernel) {
		t.Errorf("second paragraph %q does not give the flow, host, kernel and time", textOf(p[1]))
	}
	var h2 []string
	for _, h := range find(doc, atom.H2) {
		h2 = append(h2, textOf(h))
	}
	sections := "What to do|Stage map|Evidence|How it ran"
	if len(r.Verdict.Journey) > 0 {
		sections = "What to do|Stage map|Journey|Evidence|How it ran"
	}
	if got, want := strings.Join(h2, "|"), sections; got != want {
		t.Errorf("sections %s, want %s", got, want)
	}

	// Tables: the expected columns, and every row as wide as its header (an unescaped |
	// in a cell would split it).
	tables := map[string][][]string{}
	for _, tb := range find(doc, atom.Table) {
		var head []string
		for _, th := range find(tb, atom.Th) {
			head = append(head, textOf(th))
		}
		var rows [][]string
		for _, tr := range find(tb, atom.Tr)[1:] {
			var row []string
			for _, td := range find(tr, atom.Td) {
				row = append(row, textOf(td))
			}
			if len(row) != len(head) {
				t.Errorf("table %v: row %v has %d cells", head, row, len(row))
			}
			rows = append(rows, row)
		}
		tables[strings.Join(head, "|")] = rows
	}
	want := []string{"Outcome|Stage|Reason|Dropped at", "Stage|Status|What happened"}
	if a := r.Stages.Arrival; a != nil && len(a.Packets) > 0 {
		want = append(want, "Time|Seen|Packet|Flags|Length|Fate")
	}
	if k := r.Stages.KernelDrop; k != nil && len(k.Drops) > 0 {
		want = append(want, "Count|Reason|Location|Namespace|Interface")
	}
	for _, w := range want {
		if _, ok := tables[w]; !ok {
			t.Errorf("no table with columns %s", w)
		}
	}
	if rows := tables["Outcome|Stage|Reason|Dropped at"]; len(rows) == 1 {
		if rows[0][0] != strings.ReplaceAll(r.Verdict.Outcome, "_", " ") || rows[0][1] != r.Verdict.Stage {
			t.Errorf("verdict table %v does not match the verdict %s/%s", rows[0], r.Verdict.Outcome, r.Verdict.Stage)
		}
	}
	stages := tables["Stage|Status|What happened"]
	if len(stages) != len(r.Verdict.Map) {
		t.Errorf("stage map has %d rows, want %d", len(stages), len(r.Verdict.Map))
	}
	for i, row := range stages {
		if i < len(r.Verdict.Map) && row[0] != r.Verdict.Map[i].Stage {
			t.Errorf("stage map row %d is %s, want %s", i, row[0], r.Verdict.Map[i].Stage)
		}
		if r.Verdict.Map[i].Status == "died" && row[1] != "died here" {
			t.Errorf("dying stage %s shows %q", row[0], row[1])
		}
	}

	// The Mermaid chart stays a code block with language mermaid, one node per stage.
	var chart string
	for _, c := range find(doc, atom.Code) {
		if attr(c, "class") == "language-mermaid" {
			chart = textOf(c)
		}
	}
	if chart == "" {
		t.Fatal("no mermaid code block")
	}
	checkMermaid(t, r, chart)

	// Stacks fold away in <details>, each with a code block.
	stacks := 0
	if k := r.Stages.KernelDrop; k != nil {
		for _, d := range k.Drops {
			if len(d.Stack) > 0 {
				stacks++
			}
		}
	}
	details := find(doc, atom.Details)
	if (stacks > 0) != (len(details) > 0) {
		t.Errorf("%d drops with a stack but %d <details> blocks", stacks, len(details))
	}
	for _, d := range details {
		if len(find(d, atom.Summary)) != 1 || len(find(d, atom.Pre)) != 1 {
			t.Errorf("a <details> block without its summary and stack")
		}
	}
	// Nothing meant as markup shows as raw text.
	body := textOf(doc)
	for _, raw := range []string{"**", "<details", "<code>", "| --- |"} {
		if strings.Contains(strings.ReplaceAll(body, chart, ""), raw) {
			t.Errorf("the rendered text shows raw markup %q", raw)
		}
	}
}

// The chart's accepted line shapes. Nodes and chains are indented two spaces, or four
// inside a subgraph; subgraphs do not nest; every label is one quoted string, so that no
// text in it (an address's colons and brackets, an arrow) is read as syntax.
var (
	mermaidNode     = regexp.MustCompile(`^(  |    )([A-Za-z][A-Za-z0-9_]*)\["([^"]*)"\]:::([a-z]+)$`)
	mermaidChain    = regexp.MustCompile(`^(  |    )[A-Za-z][A-Za-z0-9_]*(?: (?:-->|-\.->) [A-Za-z][A-Za-z0-9_]*)*$`)
	mermaidEdge     = regexp.MustCompile(`^  ([A-Za-z][A-Za-z0-9_]*) (?:-->|-\.->)\|"([^"]*)"\| ([A-Za-z][A-Za-z0-9_]*)$`)
	mermaidSubgraph = regexp.MustCompile(`^  subgraph ([A-Za-z][A-Za-z0-9_]*)\["([^"]*)"\]$`)
	mermaidClass    = regexp.MustCompile(`^  classDef ([a-z]+) [^"]+$`)
	mermaidWord     = regexp.MustCompile(`[A-Za-z][A-Za-z0-9_]*`)
	mermaidQuoted   = regexp.MustCompile(`"[^"]*"`)
)

// mermaidEntities are the escapes a label may use; any other #name; would be decoded
// into something the report did not say.
var mermaidEntities = strings.NewReplacer("#quot;", `"`, "#lt;", "<", "#gt;", ">", "#35;", "#", "#96;", "`")

// unmermaid reads a label's text back, its lines unescaped, and says whether the label
// held anything unescaped that Mermaid would take for HTML, an entity or Markdown.
func unmermaid(label string) (parts []string, ok bool) {
	parts = strings.Split(label, "<br/>")
	ok = true
	for i, p := range parts {
		for _, e := range []string{"#quot;", "#lt;", "#gt;", "#35;", "#96;"} {
			p = strings.ReplaceAll(p, e, "")
		}
		ok = ok && !strings.ContainsAny(p, "<>#`")
		parts[i] = mermaidEntities.Replace(parts[i])
	}
	return parts, ok
}

// checkMermaid checks that the chart is one Mermaid can parse and that it draws the
// report.
func checkMermaid(t *testing.T, r *Report, chart string) {
	t.Helper()
	for _, p := range mermaidProblems(r, chart) {
		t.Error(p)
	}
}

// mermaidProblems says what is wrong with the chart: a line of a shape not accepted, or
// not drawing the report: the stage map's stages in order, or, when the packets went
// through more than one namespace, each hop's stages in a subgraph named as the Journey
// section names it, with an edge to the next hop labelled with the translation and the
// device.
func mermaidProblems(r *Report, chart string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	lines := strings.Split(strings.TrimRight(chart, "\n"), "\n")
	if lines[0] != "flowchart LR" {
		bad("chart starts with %q", lines[0])
	}
	type node struct {
		class, sub string
		label      []string
	}
	type edge struct {
		from, to string
		label    []string
	}
	nodes, defined := map[string]node{}, map[string]bool{}
	var drawn []string // node ids in the order drawn
	var edges []edge
	var subs, titles []string
	sub := "" // the subgraph the line is in
	label := func(l, s string) []string {
		parts, ok := unmermaid(s)
		if !ok {
			bad("chart line %q has an unescaped label", l)
		}
		return parts
	}
	for _, l := range lines[1:] {
		inside := strings.HasPrefix(l, "    ")
		if inside != (sub != "") && !mermaidSubgraph.MatchString(l) && l != "  end" {
			bad("chart line %q is indented for the wrong place (in subgraph %q)", l, sub)
		}
		for _, id := range mermaidWord.FindAllString(mermaidQuoted.ReplaceAllString(l, ""), -1) {
			if id == "end" && l != "  end" {
				bad("chart line %q uses the keyword end as an id", l)
			}
		}
		switch {
		case mermaidSubgraph.MatchString(l):
			m := mermaidSubgraph.FindStringSubmatch(l)
			if sub != "" {
				bad("subgraph %s inside %s", m[1], sub)
			}
			sub = m[1]
			subs, titles = append(subs, sub), append(titles, strings.Join(label(l, m[2]), "\n"))
		case l == "  end":
			if sub == "" {
				bad("end outside a subgraph")
			}
			sub = ""
		case mermaidNode.MatchString(l):
			m := mermaidNode.FindStringSubmatch(l)
			if _, ok := nodes[m[2]]; ok {
				bad("node %s drawn twice", m[2])
			}
			nodes[m[2]] = node{class: m[4], sub: sub, label: label(l, m[3])}
			drawn = append(drawn, m[2])
		case mermaidChain.MatchString(l):
			ids := strings.Fields(l)
			for i := 2; i < len(ids); i += 2 {
				edges = append(edges, edge{from: ids[i-2], to: ids[i]})
			}
		case mermaidEdge.MatchString(l):
			m := mermaidEdge.FindStringSubmatch(l)
			edges = append(edges, edge{from: m[1], to: m[3], label: label(l, m[2])})
		case mermaidClass.MatchString(l):
			defined[mermaidClass.FindStringSubmatch(l)[1]] = true
		default:
			bad("unexpected chart line %q", l)
		}
	}
	if sub != "" {
		bad("subgraph %s has no end", sub)
	}

	// What the chart must draw: the stage map, or the journey hop by hop.
	type want struct {
		s   StageStatus
		hop int
	}
	var stages []want
	var hops []JourneyHop
	if len(r.Verdict.Journey) > 1 {
		hops = r.Verdict.Journey
		for i, h := range hops {
			for _, s := range h.Stages {
				stages = append(stages, want{s, i})
			}
		}
	} else {
		for _, s := range r.Verdict.Map {
			stages = append(stages, want{s, -1})
		}
	}
	if len(drawn) != len(stages) {
		bad("chart has %d nodes for %d stages", len(drawn), len(stages))
		return problems
	}
	if len(subs) != len(hops) {
		bad("chart has %d subgraphs for a journey of %d hops", len(subs), len(hops))
	}
	for i, h := range hops {
		if i < len(titles) && titles[i] != hopName(h) {
			bad("subgraph %d is titled %q, want %q", i, titles[i], hopName(h))
		}
	}
	for i, w := range stages {
		id := drawn[i]
		n := nodes[id]
		if n.label[0] != w.s.Stage {
			bad("node %d is %s (%q), want stage %s", i, id, n.label, w.s.Stage)
		}
		if want := strings.ReplaceAll(w.s.Status, "_", ""); n.class != want || !defined[n.class] {
			bad("stage %s has class %q (defined %v), want %q", w.s.Stage, n.class, defined[n.class], want)
		}
		if w.s.Status == "died" && (len(n.label) < 2 || !strings.HasPrefix(n.label[1], "✖ died here")) {
			bad("the dying stage %s is labelled %q", w.s.Stage, n.label)
		}
		if w.hop >= 0 && (w.hop >= len(subs) || n.sub != subs[w.hop]) {
			bad("stage %s of hop %d is drawn in subgraph %q", w.s.Stage, w.hop, n.sub)
		}
	}
	// The edges are the path, whatever order they are written in, and only the edges
	// between hops are labelled: with how the packets left the hop before.
	byEnds := map[[2]string]edge{}
	for _, e := range edges {
		byEnds[[2]string{e.from, e.to}] = e
	}
	if len(edges) != len(drawn)-1 || len(byEnds) != len(edges) {
		bad("chart has %d edges for a path of %d nodes", len(edges), len(drawn))
	}
	for i := 1; i < len(drawn); i++ {
		e, ok := byEnds[[2]string{drawn[i-1], drawn[i]}]
		if !ok {
			bad("no edge from %s to %s, the path %v", drawn[i-1], drawn[i], drawn)
			continue
		}
		var label []string
		if from, to := stages[i-1].hop, stages[i].hop; from != to {
			h := hops[from]
			if tr := h.Translation; tr != nil {
				label = append(label, tr.Kind+" "+tr.From+" → "+tr.To)
			}
			if h.Out != "" {
				label = append(label, "via "+h.Out)
			}
		}
		if !slices.Equal(e.label, label) {
			bad("edge %s to %s is labelled %q, want %q", e.from, e.to, e.label, label)
		}
	}
	return problems
}

func find(n *html.Node, a atom.Atom) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.DataAtom == a {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// TestTextEscapes: a verdict sentence renders as the same words, never as markup.
func TestTextEscapes(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"dropped by __dev_queue_xmit: the queue is full",
		"by __udp4_lib_rcv and __dev_queue_xmit_ and more_",
		"set net.ipv4.conf.<iface>.rp_filter to 2 for <source>",
		"a * b * c, NO_SOCKET, [2001:db8::1]:80, `tcp dport 80 drop` and `a_*_b`",
		`a \ backslash`,
	} {
		out, err := renderGFM([]byte(text(s)))
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := html.Parse(bytes.NewReader(out))
		if got, want := textOf(doc), strings.ReplaceAll(s, "`", "")+"\n"; got != want {
			t.Errorf("%s\nrenders as %q\nwant       %q", text(s), got, want)
		}
		if len(find(doc, atom.Em))+len(find(doc, atom.Strong)) > 0 {
			t.Errorf("%s renders with emphasis: %s", s, out)
		}
	}
}
