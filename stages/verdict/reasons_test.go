package verdict

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/kdrop"
)

// noMeaning are the reasons that say nothing of the place: their stage comes from the stack.
var noMeaning = []string{"NOT_DROPPED_YET", "CONSUMED", "NOT_SPECIFIED"}

// hostFacts are facts as factsOf makes them, with the host state unread or read.
func hostFacts(v6, filled bool) facts {
	f := facts{flow: "198.51.100.2:8080/tcp", addr: "198.51.100.2", port: 8080, proto: "tcp",
		iface: "<iface>", src: "<source>"}
	if v6 {
		f.flow, f.addr, f.v6 = "[2001:db8::2]:8080/tcp", "2001:db8::2", true
	}
	if filled {
		f.iface, f.src = "veth0", "198.51.100.1"
		f.rpFilterIface, f.rpFilterAll, f.ipForward = "1", "1", "0"
		f.listeners = "tcp 127.0.0.1:8080 LISTEN"
		f.programs = "tcx ingress drop_all (id 42)"
	}
	return f
}

var factSets = map[string]facts{
	"zero":        {},
	"unread":      hostFacts(false, false),
	"unread v6":   hostFacts(true, false),
	"read":        hostFacts(false, true),
	"read v6":     hostFacts(true, true),
	"no listener": func() facts { f := hostFacts(false, true); f.listeners = "none"; return f }(),
	"udp":         func() facts { f := hostFacts(false, true); f.proto = "udp"; return f }(),
}

// checkExplanation fails on a missing or malformed why, a stage outside the path, and a
// fix that does not render cleanly for every kind of facts.
func checkExplanation(t *testing.T, name string, e explanation) {
	t.Helper()
	if e.stage == "" && !slices.Contains(noMeaning, name) {
		t.Errorf("%s: empty stage, but the reason names a place", name)
	}
	if e.stage != "" && !slices.Contains(Path, e.stage) {
		t.Errorf("%s: stage %q is not on the path", name, e.stage)
	}
	why := e.why
	switch {
	case why == "":
		t.Errorf("%s: no why", name)
	case !startsLowerCase(why):
		t.Errorf("%s: why %q starts upper-case", name, why)
	case strings.HasSuffix(why, "."):
		t.Errorf("%s: why %q ends with a period", name, why)
	}
	if e.fix == nil {
		t.Errorf("%s: no fix", name)
		return
	}
	for set, f := range factSets {
		fix := e.fix(f)
		switch {
		case strings.TrimSpace(fix) == "":
			t.Errorf("%s with %s facts: empty fix", name, set)
		case strings.Contains(fix, "%!"):
			t.Errorf("%s with %s facts: formatting error in %q", name, set, fix)
		case strings.Count(fix, "`")%2 != 0:
			t.Errorf("%s with %s facts: unbalanced backticks in %q", name, set, fix)
		}
	}
}

// startsLowerCase tells whether s starts lower-case, allowing acronyms (TCP, IPv6) and the
// proper name Open vSwitch.
func startsLowerCase(s string) bool {
	word, _, _ := strings.Cut(s, " ")
	r := []rune(word)
	if !unicode.IsUpper(r[0]) {
		return true
	}
	return word == "Open" || slices.ContainsFunc(r[1:], unicode.IsUpper)
}

// TestKernelReasonsExplained walks the running kernel's whole enum skb_drop_reason.
func TestKernelReasonsExplained(t *testing.T) {
	t.Parallel()
	testns.KernelSpec(t)
	r, err := kdrop.LoadReasons()
	if err != nil {
		testns.Missing(t, "read the running kernel's drop reasons: %v", err)
	}
	checkAllExplained(t, "the running kernel", r.All())
}

// recordedKernels holds the drop-reason enums of the kernels we know (see
// stages/kdrop/record_test.go), so that a reason missing for any of them fails on every
// machine, not only on one that runs that kernel.
const recordedKernels = "../../testdata/kernels"

// TestRecordedKernelsExplained walks the whole enum of every recorded kernel; the oldest
// and the newest kernel we test on must be among them.
func TestRecordedKernelsExplained(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(recordedKernels, "*.btf"))
	if err != nil {
		t.Fatal(err)
	}
	var releases []string
	for _, path := range files {
		release := strings.TrimSuffix(filepath.Base(path), ".btf")
		releases = append(releases, release)
		t.Run(release, func(t *testing.T) {
			r, err := kdrop.LoadReasonsFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkAllExplained(t, release, r.All())
		})
	}
	if !slices.Equal(releases, checkedKernels) {
		t.Errorf("recorded kernels %q, the table says it was checked against %q: keep checkedKernels in step", releases, checkedKernels)
	}
	for _, want := range []string{"6.1.", "6.18."} {
		if !slices.ContainsFunc(releases, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("no recorded kernel %sx in %s (have %q)", want, recordedKernels, releases)
		}
	}
}

// checkAllExplained fails on each reason of a kernel's enum that has no explanation, or a
// malformed one.
func checkAllExplained(t *testing.T, kernel string, all []string) {
	t.Helper()
	if len(all) < 60 {
		t.Fatalf("only %d reasons in the enum of %s: %v", len(all), kernel, all)
	}
	explained := 0
	for _, name := range all {
		e, ok := lookup(name)
		if !ok {
			t.Errorf("reason %s of %s has no explanation", name, kernel)
			continue
		}
		explained++
		checkExplanation(t, name, e)
	}
	t.Logf("%d of the %d reasons of %s explained", explained, len(all), kernel)
}

// TestTableWellFormed checks every entry, also those of other kernels and subsystems.
func TestTableWellFormed(t *testing.T) {
	t.Parallel()
	for name, e := range reasons {
		if name != strings.ToUpper(name) || strings.HasPrefix(name, "SKB_DROP_REASON_") {
			t.Errorf("%s: table keys are upper-case names without the prefix", name)
		}
		checkExplanation(t, name, e)
	}
	for _, s := range subsystemReasons {
		checkExplanation(t, s.prefixes[0], s.explanation)
	}
	for name := range stackRefined {
		if _, ok := reasons[name]; !ok {
			t.Errorf("stackRefined names %s, which the table lacks", name)
		}
	}
}

// TestReasonsOfOtherKernels keeps the names this kernel lacks: older and newer kernels'.
func TestReasonsOfOtherKernels(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"SKB_BAD_GSO", "TC_ERROR", "VXLAN_INVALID_SMAC", "VXLAN_NO_REMOTE"} {
		if _, ok := lookup(name); !ok {
			t.Errorf("%s is not explained", name)
		}
	}
}

func TestLookupNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"no_socket", " NO_SOCKET ", "SKB_DROP_REASON_NO_SOCKET"} {
		if e, ok := lookup(name); !ok || e.stage != Socket {
			t.Errorf("lookup(%q) = %v, %v; want the NO_SOCKET entry", name, e.stage, ok)
		}
	}
	if e, ok := lookup("SKB_CONSUMED"); !ok || e.why != reasons["CONSUMED"].why {
		t.Errorf("lookup(SKB_CONSUMED) does not find CONSUMED")
	}
	if e, ok := lookup("SKB_CSUM"); !ok || e.why != reasons["SKB_CSUM"].why {
		t.Errorf("lookup(SKB_CSUM) does not find SKB_CSUM itself")
	}
}

func TestUnknownReasons(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"SOME_FUTURE_REASON", "", "7:1", "42", "SKB_DROP_REASON_SOME_FUTURE_REASON", "SUBSYS_MASK", "MAX"} {
		if e, ok := lookup(name); ok {
			t.Errorf("lookup(%q) = %+v, true; want false", name, e)
		}
	}
}

func TestSubsystemReasons(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]Stage{
		"OVS_DROP_LAST_ACTION": Ingress, "OVS_DROP_METER": Ingress, "OPENVSWITCH:9": Ingress,
		"MAC80211_UNUSABLE:5": Ingress, "MAC80211_MONITOR:2": Ingress, "RX_DROP_U_MIC_FAIL": Ingress,
		"QDISC_DROP_OVERLIMIT": Egress, "QDISC:4": Egress,
	} {
		e, ok := lookup(name)
		if !ok || e.stage != want {
			t.Errorf("lookup(%s) = %s, %v; want %s", name, e.stage, ok, want)
		}
	}
	// The core QDISC_DROP is not the qdisc subsystem's prefix.
	if e, _ := lookup("QDISC_DROP"); e.why != reasons["QDISC_DROP"].why {
		t.Errorf("QDISC_DROP took the subsystem's explanation: %q", e.why)
	}
}

func TestFixQuotesHostState(t *testing.T) {
	t.Parallel()
	read := hostFacts(false, true)
	cases := []struct {
		name, reason string
		f            facts
		want         []string
	}{
		{"rp_filter values", "IP_RPFILTER", read,
			[]string{"`sysctl -w net.ipv4.conf.veth0.rp_filter=2` (now 1; `all` is 1: the kernel uses the higher of the two)", "198.51.100.1"}},
		{"rp_filter unread", "IP_RPFILTER", hostFacts(false, false),
			[]string{"`sysctl -w net.ipv4.conf.<iface>.rp_filter=2`", "the higher"}},
		{"rp_filter already loose", "IP_RPFILTER", func() facts { f := read; f.rpFilterAll = "2"; return f }(),
			[]string{"already loose", "no route back at all", "rp_filter=0"}},
		{"nothing listens", "NO_SOCKET", factSets["no listener"],
			[]string{"nothing listens on tcp port 8080", "start the service", "`ss -ltnp 'sport = :8080'`"}},
		{"listens on loopback only", "NO_SOCKET", read,
			[]string{"listens on 127.0.0.1:8080 only: bind it to 198.51.100.2 or 0.0.0.0"}},
		{"listens on v6 loopback only", "NO_SOCKET", func() facts { f := hostFacts(true, true); f.listeners = "tcp [::1]:8080 LISTEN"; return f }(),
			[]string{"listens on [::1]:8080 only: bind it to 2001:db8::2 or ::"}},
		{"listens everywhere", "NO_SOCKET", func() facts { f := read; f.listeners = "tcp 0.0.0.0:8080 LISTEN"; return f }(),
			[]string{"a socket listens on 0.0.0.0:8080", "no connection"}},
		{"v4 wildcard does not take v6", "NO_SOCKET", func() facts { f := hostFacts(true, true); f.listeners = "tcp 0.0.0.0:8080 LISTEN"; return f }(),
			[]string{"listens on 0.0.0.0:8080 only: bind it to 2001:db8::2 or ::"}},
		{"listeners unread", "NO_SOCKET", hostFacts(false, false), []string{"port 8080", "198.51.100.2"}},
		{"udp listeners", "NO_SOCKET", func() facts { f := factSets["udp"]; f.listeners = "none"; return f }(),
			[]string{"nothing listens on udp port 8080", "`ss -lunp 'sport = :8080'`"}},
		{"forwarding off", "IP_INADDRERRORS", read, []string{"net.ipv4.ip_forward is 0", "`sysctl -w net.ipv4.ip_forward=1`"}},
		{"forwarding off v6", "IP_INADDRERRORS", hostFacts(true, true), []string{"`sysctl -w net.ipv6.conf.all.forwarding=1`"}},
		{"programs quoted", "TC_INGRESS", read, []string{"`tc filter show dev veth0 ingress`", "tcx ingress drop_all (id 42)"}},
		{"protocol memory", "PROTO_MEM", factSets["udp"], []string{"`net.ipv4.udp_mem`"}},
		{"family sysctl", "UNICAST_IN_L2_MULTICAST", hostFacts(true, true), []string{"net.ipv6.conf.veth0.drop_unicast_in_l2_multicast=0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := lookup(c.reason)
			if !ok {
				t.Fatalf("%s not in the table", c.reason)
			}
			fix := e.fix(c.f)
			for _, w := range c.want {
				if !strings.Contains(fix, w) {
					t.Errorf("fix %q lacks %q", fix, w)
				}
			}
		})
	}
}
