package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/prose"
)

var update = flag.Bool("update", false, "rewrite the golden Markdown reports from the recorded JSON ones")

// recorded are the JSON reports of real end-to-end runs (cmd/diagnose -record): real
// evidence from a real kernel, with the verdict each must get.
var recorded = map[string]struct {
	outcome verdict.Outcome
	stage   verdict.Stage
	reason  string
}{
	"tcp_no_listener_v4":         {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"tcp_no_listener_v6":         {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"udp_closed_port_v4":         {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"udp_closed_port_v6":         {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"input_drop_rule_v4":         {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"input_drop_rule_v6":         {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"input_reject_rule_v4":       {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"input_reject_rule_v6":       {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"conntrack_invalid_v4":       {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"conntrack_invalid_v6":       {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_set_v4":        {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_set_v6":        {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_set_v4":     {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_set_v6":     {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_both_backends":     {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_drop_v4":       {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_policy_v4":     {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_policy_v6":     {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_policy_v4":  {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_policy_v6":  {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_drop_v6":       {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_reject_v4":     {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_reject_v6":     {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_invalid_v4":    {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_invalid_v6":    {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_manager_v4":    {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_nft_manager_v6":    {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_drop_v4":    {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_drop_v6":    {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_reject_v4":  {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_reject_v6":  {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_invalid_v4": {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_invalid_v6": {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_manager_v4": {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"iptables_legacy_manager_v6": {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"strict_rp_filter":           {verdict.Dropped, verdict.Routing, "IP_RPFILTER"},
	"sender_egress_firewall":     {verdict.NotArrived, verdict.Arrival, ""},
	"healthy_listener_v4":        {verdict.Delivered, verdict.Socket, ""},
	"healthy_listener_v6":        {verdict.Delivered, verdict.Socket, ""},

	"prerouting_drop_rule_v4":               {verdict.Dropped, verdict.Prerouting, "NETFILTER_DROP"},
	"prerouting_drop_rule_v6":               {verdict.Dropped, verdict.Prerouting, "NETFILTER_DROP"},
	"sender_egress_firewall_from_sender_v4": {verdict.Dropped, verdict.Output, "NETFILTER_DROP"},
	"sender_egress_firewall_from_sender_v6": {verdict.Dropped, verdict.Output, "NETFILTER_DROP"},
	"no_route_on_output_v4":                 {verdict.Dropped, verdict.Output, "IP_OUTNOROUTES"},
	"no_route_on_output_v6":                 {verdict.Dropped, verdict.Output, "IP_OUTNOROUTES"},
	"tc_ingress_drop_v4":                    {verdict.Dropped, verdict.Ingress, "TC_INGRESS"},
	"tc_ingress_drop_v6":                    {verdict.Dropped, verdict.Ingress, "TC_INGRESS"},
	"malformed_ip_checksum":                 {verdict.Dropped, verdict.IPRcv, "IP_CSUM"},
	"malformed_tcp_checksum_v4":             {verdict.Dropped, verdict.Socket, "TCP_CSUM"},
	"malformed_tcp_checksum_v6":             {verdict.Dropped, verdict.Socket, "TCP_CSUM"},
	"flood":                                 {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"forward_drop_rule":                     {verdict.Dropped, verdict.Forward, "NETFILTER_DROP"},
	"forwarding_off":                        {verdict.Dropped, verdict.Routing, "IP_INADDRERRORS"},
	"postrouting_drop_rule_v4":              {verdict.Dropped, verdict.Postrouting, "NETFILTER_DROP"},
	"postrouting_drop_rule_v6":              {verdict.Dropped, verdict.Postrouting, "NETFILTER_DROP"},
	"neighbour_failure_v4":                  {verdict.Dropped, verdict.Egress, "NEIGH_FAILED"},
	"neighbour_failure_v6":                  {verdict.Dropped, verdict.Egress, "NOT_SPECIFIED"},
	"qdisc_drop_v4":                         {verdict.Dropped, verdict.Egress, "QDISC_DROP"},
	"qdisc_drop_v6":                         {verdict.Dropped, verdict.Egress, "QDISC_DROP"},
	"bridge_family_drop":                    {verdict.Dropped, verdict.Ingress, "NETFILTER_DROP"},
	"fates_differ":                          {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"no_chains":                             {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"multicast_rpf":                         {verdict.Dropped, verdict.MulticastRPF, "NOT_SPECIFIED"},
	"dnat_to_container_v4":                  {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"dnat_to_container_v6":                  {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"forwarded_to_container_v4":             {verdict.Delivered, verdict.Socket, ""},
	"forwarded_to_container_v6":             {verdict.Delivered, verdict.Socket, ""},
	"container_firewall_drop":               {verdict.Dropped, verdict.Input, "NETFILTER_DROP"},
	"docker_published_no_listener_v4":       {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
	"docker_published_no_listener_v6":       {verdict.Dropped, verdict.Socket, "NO_SOCKET"},
}

// A real Docker daemon's published port with nothing listening (recorded): the journey
// names Docker's DNAT rule by its table and chain (iptables-nft writes it as an xt target),
// and the fix quotes the mapping.
func TestJudgeRecordedDocker(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"docker_published_no_listener_v4", "docker_published_no_listener_v6"} {
		r := readRecorded(t, name)
		v := judge(r.Evidence())
		j := v.Journey
		if len(j) != 2 || j[0].Translation == nil || !strings.Contains(j[0].Translation.Rule, "nat chain DOCKER:") || j[0].Out != "docker0" {
			t.Errorf("%s: journey %+v: want Docker's DNAT in chain DOCKER, then out by docker0", name, j)
		}
		if !strings.Contains(j[1].NetnsName, "(docker, id ") || !strings.Contains(v.Fix, "; the port is published as "+fmt.Sprint(r.Flow.Port)+"->80") {
			t.Errorf("%s: container %q, fix %q", name, j[1].NetnsName, v.Fix)
		}
	}
}

// A packet DNATed into another namespace of the host and dropped there: the verdict names
// the translation and that namespace, and its fix is about the end it was sent to, not
// about this namespace's sockets.
func TestJudgeRecordedTranslated(t *testing.T) {
	t.Parallel()
	for name, to := range map[string]string{"dnat_to_container_v4": "203.0.113.2:80", "dnat_to_container_v6": "[2001:db8:1::2]:80"} {
		r := readRecorded(t, name)
		v := judge(r.Evidence())
		ctr := r.Stages.KernelDrop.Drops[0].NetnsName
		if ctr == "" || !strings.Contains(v.Summary, "sent by DNAT to "+to) || !strings.Contains(v.Summary, "network namespace "+ctr) {
			t.Errorf("%s: summary %q does not name the DNAT to %s and namespace %q", name, v.Summary, to, ctr)
		}
		if !strings.Contains(v.Fix, "port 80") || strings.Contains(v.Fix, fmt.Sprint(r.Flow.Port)) {
			t.Errorf("%s: fix %q is not about port 80 alone", name, v.Fix)
		}
		j := v.Journey
		if len(j) != 2 || j[0].Translation == nil || j[0].Translation.To != to || !strings.Contains(j[0].Translation.Rule, "table ip") ||
			j[0].Died || !j[1].Died || j[1].NetnsName != ctr || j[1].Reached == 0 || j[1].Dropped == 0 ||
			j[1].Stages[0].Stage != "ingress" || j[1].Stages[len(j[1].Stages)-1] != (StageStatus{"socket", "died", "after DNAT to " + to}) {
			t.Errorf("%s: journey %+v; want here (DNAT to %s by its rule), then %s where it died in socket", name, j, to, ctr)
		}
	}
}

// A firewall drop in the container's namespace, after the host's DNAT: the rule is that
// namespace's, named from the trace that followed the flow there, and the journey shows
// the container's hooks as its trace saw them.
func TestJudgeRecordedContainerFirewall(t *testing.T) {
	t.Parallel()
	r := readRecorded(t, "container_firewall_drop")
	v := judge(r.Evidence())
	if v.Rule == nil || v.Rule.Table != "pmt_guard" || !strings.Contains(v.Summary, "the firewall of network namespace") {
		t.Fatalf("rule %+v, summary %q: want the container's rule in table pmt_guard", v.Rule, v.Summary)
	}
	j := v.Journey
	if len(j) != 2 || !j[1].Died {
		t.Fatalf("journey %+v: want two hops, dying in the second", j)
	}
	last := j[1].Stages[len(j[1].Stages)-1]
	input := false
	for _, s := range j[1].Stages {
		input = input || s.Stage == "input" && strings.Contains(s.Evidence, "nftables input")
	}
	if last.Stage != "input" || last.Status != "died" || !input {
		t.Errorf("the container's hop %+v does not die in input as its trace saw it", j[1].Stages)
	}
	// Each SYN that arrived died in the container, once translated: its fate says so. Its
	// capture in the container is the same packet's, where it went on.
	followed := 0
	for i, f := range v.Fates {
		if r.Stages.Arrival.Packets[i].Netns != 0 {
			if f.Fate == "followed" {
				followed++
			}
			continue
		}
		if f.Direction == evidence.In && (f.Fate != "dropped" || f.Stage != "input" || f.Reason != "NETFILTER_DROP") {
			t.Errorf("arriving packet %s → %s: fate %s in %s (%s), want dropped in input", f.Src, f.Dst, f.Fate, f.Stage, f.Reason)
		}
	}
	// The evidence is the source of truth: every hop's trace is in the JSON and the
	// Markdown shows it.
	if followed == 0 {
		t.Errorf("no packet captured in the container: %+v", r.Stages.Arrival.Packets)
	}
	r.Verdict = v
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	_, there, _ := strings.Cut(md.String(), "### Firewall of network namespace")
	if !strings.Contains(there, "tcp dport 80 drop") || !strings.Contains(md.String(), "reached it, ") {
		t.Errorf("the Markdown does not show the container's trace and the hops' counts:\n%s", md.String())
	}
}

func readRecorded(t *testing.T, name string) *Report {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "reports", name+".json"))
	if err != nil {
		t.Fatalf("recorded report %s: %v (record it with: go test ./cmd/diagnose -record, as root)", name, err)
	}
	defer f.Close()
	r, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestJudgeRecorded judges the recorded evidence again: the verdict logic must keep
// getting the real cases right without root.
func TestJudgeRecorded(t *testing.T) {
	t.Parallel()
	for _, name := range goldens(t) {
		if _, ok := recorded[name]; !ok {
			t.Errorf("recorded report %s has no expected verdict in the recorded table", name)
		}
	}
	for name, want := range recorded {
		t.Run(name, func(t *testing.T) {
			r := readRecorded(t, name)
			v := judge(r.Evidence())
			if v.Outcome != string(want.outcome) || v.Stage != string(want.stage) || reasonOf(v) != want.reason {
				t.Fatalf("%s/%s/%q, want %s/%s/%q: %s", v.Outcome, v.Stage, reasonOf(v), want.outcome, want.stage, want.reason, v.Summary)
			}
		})
	}
}

// judge judges the evidence again, as diagnose does.
func judge(ev *evidence.Evidence) Verdict {
	v := verdict.Judge(ev)
	return VerdictOf(v, prose.Write(ev, v))
}

func reasonOf(v Verdict) string {
	if v.Reason == nil {
		return ""
	}
	return *v.Reason
}

// goldens lists the recorded reports in testdata/reports: every one is rendered, checked
// against the schema and redacted, and must have its expected verdict above.
func goldens(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "reports", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded reports in testdata/reports: %v", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	return names
}

// TestMarkdownGolden renders each recorded report and compares with its golden Markdown.
// Serial: with -update it writes the goldens the parallel tests read.
func TestMarkdownGolden(t *testing.T) {
	for _, name := range goldens(t) {
		t.Run(name, func(t *testing.T) {
			r := readRecorded(t, name)
			var buf bytes.Buffer
			if err := r.WriteMarkdown(&buf); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("..", "testdata", "reports", name+".md")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (create it with: go test ./report -args -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("Markdown of %s differs from %s (go test ./report -args -update if intended)\n%s", name, golden, buf.String())
			}
			first := strings.SplitN(buf.String(), "\n", 6)
			if !strings.HasPrefix(first[0], "# ") || first[2] != "**"+text(r.Verdict.Summary)+"**" || !strings.HasPrefix(first[4], "Flow `"+r.Flow.String()+"`") {
				t.Errorf("the report does not open with the verdict, then the flow:\n%s", strings.Join(first, "\n"))
			}
		})
	}
}

// TestJSONRoundTrip: what WriteJSON writes, Read reads back the same.
func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	r := readRecorded(t, "input_drop_rule_v4")
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip changed the report:\n%s\n%s", a, b)
	}
	var raw map[string]any
	_ = json.Unmarshal(a, &raw)
	v := raw["verdict"].(map[string]any)
	for _, k := range []string{"outcome", "stage", "reason", "function", "summary"} {
		if _, ok := v[k]; !ok {
			t.Errorf("verdict.%s missing from the JSON", k)
		}
	}
}

func TestShellJoin(t *testing.T) {
	t.Parallel()
	got := ShellJoin([]string{"bash", "-c", "echo 'hi' > /dev/tcp/198.51.100.2/80", "--flow", "[2001:db8::1]:80", ""})
	want := `bash -c 'echo '\''hi'\'' > /dev/tcp/198.51.100.2/80' --flow [2001:db8::1]:80 ''`
	if got != want {
		t.Errorf("ShellJoin = %s\nwant       %s", got, want)
	}
}

// Packets the capture lost are said, with why, next to what it captured.
func TestMarkdownCaptureLoss(t *testing.T) {
	t.Parallel()
	r := readRecorded(t, "input_drop_rule_v4")
	r.Stages.Arrival.SocketDrops = 3
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "The capture lost 3 packets of the flow: its buffer was full"; !strings.Contains(buf.String(), want) {
		t.Errorf("the Markdown does not say %q:\n%s", want, buf.String())
	}
}

// The capture line names the method and, on tcx, how much traffic it looked at.
func TestMarkdownCaptureMethod(t *testing.T) {
	t.Parallel()
	r := readRecorded(t, "input_drop_rule_v4")
	r.Stages.Arrival.Method, r.Stages.Arrival.Seen = evidence.CaptureTCX, 500
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "Captured on every interface (tcx), where 500 packets of all flows passed: 3 packets in"; !strings.Contains(buf.String(), want) {
		t.Errorf("the Markdown does not say %q:\n%s", want, buf.String())
	}
}

// A rejecting rule is told apart from a closed port, and an invalid-state drop says why
// conntrack found the packet invalid and does not advise removing the rule.
func TestJudgeRecordedRejectAndInvalid(t *testing.T) {
	t.Parallel()
	for name, want := range map[string][]string{
		"input_reject_rule_v4": {"was rejected by the firewall in input", "a TCP reset", "as a closed port would"},
		"input_reject_rule_v6": {"was rejected by the firewall in input", "an ICMP error", "as a closed port would"},
		"conntrack_invalid_v4": {"TCP flags FS, a combination no TCP connection uses", "conntrack counted 3 invalid packet(s)", "nothing to change in the firewall"},
		"conntrack_invalid_v6": {"TCP flags FS, a combination no TCP connection uses", "nothing to change in the firewall"},
	} {
		v := judge(readRecorded(t, name).Evidence())
		text := v.Summary + "\n" + v.Explanation + "\n" + v.Fix
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s does not say %q:\n%s", name, w, text)
			}
		}
	}
}

// A rule of iptables, on either backend, is named as iptables-save prints it, by its
// number in the chain, with its syntax; iptables-legacy's is found by its counters.
func TestJudgeRecordedIptables(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"nft", "legacy"} {
		for _, c := range []string{"drop", "reject", "invalid", "set", "manager"} {
			for _, fam := range []string{"v4", "v6"} {
				name := "iptables_" + backend + "_" + c + "_" + fam
				v := judge(readRecorded(t, name).Evidence())
				r := v.Rule
				tool := map[string]string{"v4": "iptables", "v6": "ip6tables"}[fam]
				if r == nil || r.Syntax != tool || !strings.HasPrefix(r.Rule, "-A ") || r.Number != 1 || (r.Backend == "legacy") != (backend == "legacy") {
					t.Errorf("%s: rule %+v, want %s's first rule of its chain, backend %s", name, r, tool, backend)
					continue
				}
				if !strings.Contains(v.Summary, "`"+r.Rule+"`") {
					t.Errorf("%s: summary does not quote the rule: %s", name, v.Summary)
				}
				if c == "drop" && !strings.Contains(v.Fix, "`"+tool+" -t filter -D INPUT 1`") {
					t.Errorf("%s: fix is not by the rule's number: %s", name, v.Fix)
				}
			}
		}
		// A chain's policy has no text, but it is iptables' to change.
		for _, fam := range []string{"v4", "v6"} {
			name := "iptables_" + backend + "_policy_" + fam
			v := judge(readRecorded(t, name).Evidence())
			tool := map[string]string{"v4": "iptables", "v6": "ip6tables"}[fam]
			if r := v.Rule; r == nil || r.Type != "policy" || r.Syntax != tool || r.Chain != "INPUT" || (r.Backend == "legacy") != (backend == "legacy") {
				t.Errorf("%s: rule %+v, want %s's policy of INPUT, backend %s", name, r, tool, backend)
			}
			if !strings.Contains(v.Fix, "`"+tool+" -t filter -P INPUT ACCEPT`") || strings.Contains(v.Fix, "nft ") {
				t.Errorf("%s: fix is not %s's alone: %s", name, tool, v.Fix)
			}
			why := map[string]string{"nft": "reached the end of the chain, whose policy is drop", "legacy": "the policy of chain INPUT is named by its counters"}[backend]
			if !strings.Contains(v.Explanation, why) {
				t.Errorf("%s: explanation does not say %q: %s", name, why, v.Explanation)
			}
		}
	}
}

// Where the host logs conntrack's reasons, the verdict quotes conntrack; where it was asked
// to but nothing came (another namespace than the host's), it says why.
func TestJudgeInvalidFromConntrackLog(t *testing.T) {
	t.Parallel()
	ev := readRecorded(t, "conntrack_invalid_v4").Evidence()
	ev.Host.ConntrackLog = []string{"nf_ct_tcp: SEQ is over the upper bound (over the window of the receiver) IN=veth0 OUT= SRC=198.51.100.1 DST=198.51.100.2 PROTO=TCP SPT=40002 DPT=8080 ACK "}
	v := judge(ev)
	if want := "Conntrack logged why: `nf_ct_tcp: SEQ is over the upper bound (over the window of the receiver)`"; !strings.Contains(v.Explanation, want) {
		t.Errorf("explanation does not quote conntrack: %s", v.Explanation)
	}
	ev = readRecorded(t, "conntrack_invalid_v4").Evidence()
	ev.Host.Sysctls["net.netfilter.nf_conntrack_log_invalid"] = "255"
	if d := judge(ev).Explanation; !strings.Contains(d, "TCP flags FS") {
		t.Errorf("the packet's flags are no longer the reason: %s", d)
	}
	ev.Kernel.Drops = nil // no drop to read the flags from
	if d := judge(ev).Explanation; !strings.Contains(d, "nf_conntrack_log_invalid is 255, yet nothing reached the kernel log") {
		t.Errorf("explanation does not say why the log is silent: %s", d)
	}
}

// A drop in the container's namespace that its trace did not name is never the host's
// iptables-legacy rule, even one that matches the flow at the same hook: the host's
// counters say nothing of the container's firewall. The container's own legacy rule is
// named, with the namespace.
func TestJudgeLegacyRuleOfItsNamespace(t *testing.T) {
	t.Parallel()
	untraced := func() *evidence.Evidence {
		ev := readRecorded(t, "container_firewall_drop").Evidence()
		for i := range ev.Firewall.Elsewhere {
			for j := range ev.Firewall.Elsewhere[i].Traces {
				tr := &ev.Firewall.Elsewhere[i].Traces[j]
				tr.Verdict, tr.DroppedBy, tr.Steps = "accept", nil, nil
			}
		}
		return ev
	}
	step := evidence.TraceStep{Type: "rule", Family: "ip", Table: "filter", Chain: "INPUT", Number: 1, Syntax: "iptables", Backend: "legacy",
		Rule: "-A INPUT -p tcp -m tcp --dport 80 -j DROP", Verdict: "drop"}
	legacy := &evidence.Legacy{Tables: []string{"ip filter"}, Rules: 1,
		Grown: []evidence.LegacyRule{{Step: step, Hooks: []string{"input"}, Packets: 2, MatchesFlow: true}}}

	ev := untraced()
	ev.Firewall.Legacy = legacy
	v := judge(ev)
	if v.Rule != nil && v.Rule.Backend == "legacy" {
		t.Errorf("the host's legacy rule is named for the container's drop: %s", v.Summary)
	}

	ev = untraced()
	ev.Firewall.Elsewhere[0].Legacy = legacy
	v = judge(ev)
	if v.Rule == nil || v.Rule.Backend != "legacy" || !strings.Contains(v.Summary, "the firewall (iptables-legacy) of network namespace") || !strings.Contains(v.Fix, "ip netns exec") {
		t.Errorf("the container's legacy rule is not named there:\n%s\n%s", v.Summary, v.Fix)
	}
}
