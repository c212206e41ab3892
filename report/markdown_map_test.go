package report

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A packet DNATed into a container and dropped there: the chart draws the host's
// namespace and the container's as subgraphs, the DNAT on the edge between them, and the
// drop in the container's.
func TestMermaidJourney(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"dnat_to_container_v4", "dnat_to_container_v6"} {
		r := readRecorded(t, name)
		j := r.Verdict.Journey
		if len(j) != 2 || j[0].Translation == nil || j[0].Out == "" {
			t.Fatalf("%s: journey %+v: want two hops, a translation and a device between them", name, j)
		}
		tr := j[0].Translation
		want := []string{
			fmt.Sprintf(`  subgraph ns0["%s (%d)"]`, j[0].NetnsName, j[0].Netns),
			`    ns0_prerouting["prerouting<br/>passed"]:::passed`,
			fmt.Sprintf(`  subgraph ns1["%s (%d)"]`, j[1].NetnsName, j[1].Netns),
			`    ns1_ingress["ingress<br/>passed"]:::passed`,
			`    ns1_socket["socket<br/>✖ died here: NO_SOCKET"]:::died`,
			fmt.Sprintf(`  ns0_egress -->|"DNAT %s → %s<br/>via %s"| ns1_ingress`, tr.From, tr.To, j[0].Out),
		}
		chart := mermaid(r.Verdict)
		for _, p := range mermaidProblems(r, strings.Join(chart, "\n")) {
			t.Errorf("%s: %s", name, p)
		}
		for _, w := range want {
			if !slices.Contains(chart, w) {
				t.Errorf("%s: the chart has no line\n%s\n%s", name, w, strings.Join(chart, "\n"))
			}
		}
		if n := strings.Count(strings.Join(chart, "\n"), "\n  end\n"); n != 2 {
			t.Errorf("%s: the chart closes %d subgraphs, want 2", name, n)
		}
	}
}

// A journey of one hop, a translation in the namespace diagnosed, draws the chart a report
// without a journey draws: the stage map, no subgraph.
func TestMermaidOneHop(t *testing.T) {
	t.Parallel()
	r := readRecorded(t, "dnat_to_container_v4")
	none, one := r.Verdict, r.Verdict
	none.Journey, one.Journey = nil, one.Journey[:1]
	if got, want := mermaid(one), mermaid(none); !slices.Equal(got, want) {
		t.Errorf("a one-hop journey draws\n%s\nwant the stage map's chart\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range mermaid(one) {
		if strings.Contains(l, "subgraph") {
			t.Errorf("a one-hop journey draws a subgraph: %q", l)
		}
	}
}

// Names and addresses that look like Mermaid syntax (quotes, brackets, arrows, pipes, a
// keyword, an entity, a backtick) stay text in the labels.
func TestMermaidEscapes(t *testing.T) {
	t.Parallel()
	reason := "NO_SOCKET"
	passed := func(stage string) StageStatus { return StageStatus{Stage: stage, Status: "passed"} }
	r := &Report{Verdict: Verdict{Reason: &reason, Journey: []JourneyHop{
		{Netns: 1, NetnsName: `container "web" (docker, id 1965e06dc668)`, Stages: []StageStatus{passed("arrival"), passed("prerouting")},
			Translation: &HopTranslation{Kind: "DNAT", From: "[2001:db8::1]:8080", To: "[2001:db8:1::2]:80"}, Out: "br-`x`|<y>"},
		{Netns: 2, NetnsName: "end --> [x] #quot; #", Stages: []StageStatus{passed("prerouting"), passed("postrouting")},
			Translation: &HopTranslation{Kind: "SNAT", From: "[2001:db8::1]:8080", To: "[2001:db8:2::1]:4000"}},
		{Netns: 3, NetnsName: "the host", Stages: []StageStatus{{Stage: "socket", Status: "died"}}, Died: true},
	}}}
	chart := strings.Join(mermaid(r.Verdict), "\n")
	for _, p := range mermaidProblems(r, chart) {
		t.Errorf("%s\n%s", p, chart)
	}
}

// The chart checker is strict: it rejects a chart Mermaid would misread or one that does
// not draw the report.
func TestMermaidProblems(t *testing.T) {
	t.Parallel()
	r := readRecorded(t, "dnat_to_container_v4")
	good := strings.Join(mermaid(r.Verdict), "\n")
	if p := mermaidProblems(r, good); p != nil {
		t.Fatalf("the chart of the recorded report has problems: %q", p)
	}
	j := r.Verdict.Journey
	label := fmt.Sprintf("DNAT %s → %s<br/>via %s", j[0].Translation.From, j[0].Translation.To, j[0].Out)
	title := fmt.Sprintf("%s (%d)", j[1].NetnsName, j[1].Netns)
	for name, edit := range map[string][2]string{
		"unquoted edge label":     {`|"` + label + `"|`, `|` + label + `|`},
		"unlabelled translation":  {`|"` + label + `"| `, ""},
		"wrong translation":       {`203.0.113.2:80<br/>`, `203.0.113.2:81<br/>`},
		"no end":                  {"  end\n  subgraph ns1", "  subgraph ns1"},
		"nested subgraph":         {"  end\n  subgraph ns1", "    end\n  subgraph ns1"},
		"unquoted subgraph title": {`ns1["` + title + `"]`, `ns1[` + title + `]`},
		"wrong subgraph title":    {`ns1["` + title + `"]`, `ns1["` + j[1].NetnsName + `"]`},
		"node out of its hop":     {`    ns1_socket[`, `  ns1_socket[`},
		"end as an id":            {"ns1_socket", "end"},
		"raw quote in a label":    {`["socket<br/>`, `["socket"<br/>`},
		"raw HTML in a label":     {`["socket<br/>`, `["<b>socket</b><br/>`},
		"an unknown entity":       {`["socket<br/>`, `["socket#amp;<br/>`},
		"drop not marked":         {`NO_SOCKET"]:::died`, `NO_SOCKET"]:::passed`},
		"path out of order":       {"ns0_routing --> ns0_forward", "ns0_forward --> ns0_routing"},
	} {
		if !strings.Contains(good, edit[0]) {
			t.Fatalf("%s: the chart has no %q to change:\n%s", name, edit[0], good)
		}
		bad := strings.Replace(good, edit[0], edit[1], 1)
		if mermaidProblems(r, bad) == nil {
			t.Errorf("the checker accepts a chart with %s:\n%s", name, bad)
		}
	}
}
