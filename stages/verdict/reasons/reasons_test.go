package reasons

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/kdrop"
)

// noMeaning are the reasons that say nothing of the place: their stage comes from the stack.
var noMeaning = []string{"NOT_DROPPED_YET", "CONSUMED", "NOT_SPECIFIED"}

// hostFacts are facts as the verdict makes them, with the host state unread or read: read,
// it has a strict rp_filter, forwarding off and a listener on the loopback only.
func hostFacts(v6, filled bool) Facts {
	f := Facts{Flow: "198.51.100.2:8080/tcp", Addr: "198.51.100.2", Port: 8080, Proto: "tcp",
		Iface: "<iface>", Src: "<source>"}
	if v6 {
		f.Flow, f.Addr, f.V6 = "[2001:db8::2]:8080/tcp", "2001:db8::2", true
	}
	if filled {
		f.Iface, f.Src = "veth0", "198.51.100.1"
		f.RPFilter, f.RPFilterAll, f.IPForward = "1", "1", "0"
		f.Listeners = "tcp 127.0.0.1:8080 LISTEN"
		f.Programs = "tcx ingress drop_all (id 42)"
		f.Situations = []Situation{ForwardingOff, RPFilterRead, ListensElsewhere}
		f.Listening = []string{"127.0.0.1:8080"}
	}
	return f
}

// exclusive groups the situations of which a host is in one at most.
var exclusive = [][]Situation{
	{ForwardingOff, ForwardingOn},
	{RPFilterLoose, RPFilterRead, RPFilterHalfRead},
	{NothingListens, ListenerTakes, ListensElsewhere, ListenersUnknown},
}

// with returns f in situation s instead of the one of its group, changed by change.
func with(f Facts, s Situation, change func(*Facts)) Facts {
	var group []Situation
	for _, g := range exclusive {
		if slices.Contains(g, s) {
			group = g
		}
	}
	f.Situations = slices.DeleteFunc(slices.Clone(f.Situations), func(x Situation) bool { return slices.Contains(group, x) })
	f.Situations = append(f.Situations, s)
	if change != nil {
		change(&f)
	}
	return f
}

var factSets = map[string]Facts{
	"zero":        {},
	"unread":      hostFacts(false, false),
	"unread v6":   hostFacts(true, false),
	"read":        hostFacts(false, true),
	"read v6":     hostFacts(true, true),
	"no listener": with(hostFacts(false, true), NothingListens, func(f *Facts) { f.Listeners = "none" }),
	"udp":         func() Facts { f := hostFacts(false, true); f.Proto = "udp"; return f }(),
}

// placeholder finds a {name} that Fill left: a name it does not know.
var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// checkEntry fails on a missing or malformed why, a reason without a stage that names a
// place, and a fix that does not fill cleanly for every kind of facts.
func checkEntry(t *testing.T, name string, e Entry) {
	t.Helper()
	if e.Stage == "" && !slices.Contains(noMeaning, name) {
		t.Errorf("%s: empty stage, but the reason names a place", name)
	}
	why := e.Why
	switch {
	case why == "":
		t.Errorf("%s: no why", name)
	case !startsLowerCase(why):
		t.Errorf("%s: why %q starts upper-case", name, why)
	case strings.HasSuffix(why, "."):
		t.Errorf("%s: why %q ends with a period", name, why)
	}
	if e.Fix == "" {
		t.Errorf("%s: no fix", name)
		return
	}
	templates := map[string]string{"": e.Fix}
	for s, fix := range e.FixIf {
		templates[" if "+string(s)] = fix
	}
	for when, template := range templates {
		for set, f := range factSets {
			fix := Fill(template, f)
			switch {
			case strings.TrimSpace(fix) == "":
				t.Errorf("%s%s with %s facts: empty fix", name, when, set)
			case placeholder.MatchString(fix):
				t.Errorf("%s%s with %s facts: unknown placeholder %s in %q", name, when, set, placeholder.FindString(fix), fix)
			case strings.Count(fix, "`")%2 != 0:
				t.Errorf("%s%s with %s facts: unbalanced backticks in %q", name, when, set, fix)
			}
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
const recordedKernels = "../../../testdata/kernels"

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
		e, ok := Lookup(name)
		if !ok {
			t.Errorf("reason %s of %s has no explanation", name, kernel)
			continue
		}
		explained++
		checkEntry(t, name, e)
	}
	t.Logf("%d of the %d reasons of %s explained", explained, len(all), kernel)
}

// TestTableWellFormed checks every entry, also those of other kernels, subsystems and
// functions.
func TestTableWellFormed(t *testing.T) {
	t.Parallel()
	for name := range core {
		if name != strings.ToUpper(name) || strings.HasPrefix(name, "SKB_DROP_REASON_") {
			t.Errorf("%s: table keys are upper-case names without the prefix", name)
		}
	}
	n := 0
	for name, e := range Entries() {
		checkEntry(t, name, e)
		n++
	}
	if want := len(core) + len(subsystems) + len(ofFunction); n != want {
		t.Errorf("Entries yields %d entries, the tables hold %d", n, want)
	}
	for name := range stageVaries {
		if _, ok := core[name]; !ok {
			t.Errorf("stageVaries names %s, which the table lacks", name)
		}
	}
	for fn, reason := range standsFor {
		if _, ok := core[reason]; !ok {
			t.Errorf("standsFor says %s stands for %s, which the table lacks", fn, reason)
		}
	}
}

// TestReasonsOfOtherKernels keeps the names this kernel lacks: older and newer kernels'.
func TestReasonsOfOtherKernels(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"SKB_BAD_GSO", "TC_ERROR", "VXLAN_INVALID_SMAC", "VXLAN_NO_REMOTE"} {
		if _, ok := Lookup(name); !ok {
			t.Errorf("%s is not explained", name)
		}
	}
}

func TestLookupNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"no_socket", " NO_SOCKET ", "SKB_DROP_REASON_NO_SOCKET"} {
		if e, ok := Lookup(name); !ok || e.Stage != "socket" {
			t.Errorf("Lookup(%q) = %v, %v; want the NO_SOCKET entry", name, e.Stage, ok)
		}
	}
	if e, ok := Lookup("SKB_CONSUMED"); !ok || e.Why != core["CONSUMED"].Why {
		t.Errorf("Lookup(SKB_CONSUMED) does not find CONSUMED")
	}
	if e, ok := Lookup("SKB_CSUM"); !ok || e.Why != core["SKB_CSUM"].Why {
		t.Errorf("Lookup(SKB_CSUM) does not find SKB_CSUM itself")
	}
}

func TestUnknownReasons(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"SOME_FUTURE_REASON", "", "7:1", "42", "SKB_DROP_REASON_SOME_FUTURE_REASON", "SUBSYS_MASK", "MAX"} {
		if e, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, true; want false", name, e)
		}
	}
}

func TestSubsystemReasons(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"OVS_DROP_LAST_ACTION": "ingress", "OVS_DROP_METER": "ingress", "OPENVSWITCH:9": "ingress",
		"MAC80211_UNUSABLE:5": "ingress", "MAC80211_MONITOR:2": "ingress", "RX_DROP_U_MIC_FAIL": "ingress",
		"QDISC_DROP_OVERLIMIT": "egress", "QDISC:4": "egress",
	} {
		e, ok := Lookup(name)
		if !ok || e.Stage != want {
			t.Errorf("Lookup(%s) = %s, %v; want %s", name, e.Stage, ok, want)
		}
	}
	// The core QDISC_DROP is not the qdisc subsystem's prefix.
	if e, _ := Lookup("QDISC_DROP"); e.Why != core["QDISC_DROP"].Why {
		t.Errorf("QDISC_DROP took the subsystem's explanation: %q", e.Why)
	}
}

// TestFixQuotesHostState: the fix that depends on the host's state picks the words of the
// situation the verdict found, and quotes the values read.
func TestFixQuotesHostState(t *testing.T) {
	t.Parallel()
	read := hostFacts(false, true)
	cases := []struct {
		name, reason string
		f            Facts
		want         []string
	}{
		{"rp_filter values", "IP_RPFILTER", read,
			[]string{"`sysctl -w net.ipv4.conf.veth0.rp_filter=2` (now 1; `all` is 1: the kernel uses the higher of the two)", "198.51.100.1"}},
		{"rp_filter unread", "IP_RPFILTER", hostFacts(false, false),
			[]string{"`sysctl -w net.ipv4.conf.<iface>.rp_filter=2`", "the higher"}},
		{"rp_filter already loose", "IP_RPFILTER", with(read, RPFilterLoose, func(f *Facts) { f.RPFilterAll = "2" }),
			[]string{"already loose", "(veth0 is 1, `all` is 2:", "no route back at all", "rp_filter=0"}},
		{"rp_filter half read", "IP_RPFILTER", with(read, RPFilterHalfRead, func(f *Facts) { f.RPFilterAll = "" }),
			[]string{"(veth0 is 1, `all` is unread: the kernel uses the higher of the two)"}},
		{"nothing listens", "NO_SOCKET", factSets["no listener"],
			[]string{"nothing listens on tcp port 8080", "start the service", "`ss -ltnp 'sport = :8080'`"}},
		{"listens on loopback only", "NO_SOCKET", read,
			[]string{"listens on 127.0.0.1:8080 only: bind it to 198.51.100.2 or 0.0.0.0"}},
		{"listens on v6 loopback only", "NO_SOCKET", with(hostFacts(true, true), ListensElsewhere, func(f *Facts) {
			f.Listeners, f.Listening = "tcp [::1]:8080 LISTEN", []string{"[::1]:8080"}
		}), []string{"listens on [::1]:8080 only: bind it to 2001:db8::2 or ::"}},
		{"listens everywhere", "NO_SOCKET", with(read, ListenerTakes, func(f *Facts) {
			f.Listeners, f.Listener, f.Listening = "tcp 0.0.0.0:8080 LISTEN", "0.0.0.0:8080", nil
		}), []string{"a socket listens on 0.0.0.0:8080", "no connection", "`ss -lnpe 'sport = :8080'`"}},
		{"listeners without an address", "NO_SOCKET", with(read, ListenersUnknown, func(f *Facts) { f.Listeners = " tcp ? LISTEN " }),
			[]string{"sockets on port 8080: tcp ? LISTEN; none accepts 198.51.100.2: bind the service to 198.51.100.2 or 0.0.0.0"}},
		{"listeners unread", "NO_SOCKET", hostFacts(false, false), []string{"port 8080", "198.51.100.2"}},
		{"udp listeners", "NO_SOCKET", with(factSets["udp"], NothingListens, func(f *Facts) { f.Listeners = "none" }),
			[]string{"nothing listens on udp port 8080", "`ss -lunp 'sport = :8080'`"}},
		{"forwarding off", "IP_INADDRERRORS", read, []string{"net.ipv4.ip_forward is 0", "`sysctl -w net.ipv4.ip_forward=1`"}},
		{"forwarding off v6", "IP_INADDRERRORS", hostFacts(true, true), []string{"`sysctl -w net.ipv6.conf.all.forwarding=1`"}},
		{"forwarding on", "IP_INADDRERRORS", with(read, ForwardingOn, func(f *Facts) { f.IPForward = " 1" }),
			[]string{"forwarding is on (net.ipv4.ip_forward is 1), so the route to 198.51.100.2 says unreachable"}},
		{"forwarding unread", "IP_INADDRERRORS", hostFacts(false, false), []string{"if this host should route it, enable forwarding (`sysctl -w net.ipv4.ip_forward=1`)"}},
		{"programs quoted", "TC_INGRESS", read, []string{"`tc filter show dev veth0 ingress`", "tcx ingress drop_all (id 42)"}},
		{"protocol memory", "PROTO_MEM", factSets["udp"], []string{"`ss -umn`", "`net.ipv4.udp_mem`"}},
		{"family sysctl", "UNICAST_IN_L2_MULTICAST", hostFacts(true, true), []string{"net.ipv6.conf.veth0.drop_unicast_in_l2_multicast=0"}},
		{"family sysctl of fragments", "FRAG_REASM_TIMEOUT", hostFacts(true, true), []string{"`net.ipv6.ip6frag_time` sets the wait"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := Lookup(c.reason)
			if !ok {
				t.Fatalf("%s not in the table", c.reason)
			}
			fix := e.FixFor(c.f)
			for _, w := range c.want {
				if !strings.Contains(fix, w) {
					t.Errorf("fix %q lacks %q", fix, w)
				}
			}
		})
	}
}

// tableDigest is the digest of the table at Version: a change of the table without a new
// Version fails TestVersionFollowsTable.
const tableDigest = "43de4d63ba615251511d49739a250d6460d8b7bdb6670dd52d8ded5cd168971f"

// TestVersionFollowsTable: whoever changes an entry bumps Version, so that a verdict's
// knowledge can be named.
func TestVersionFollowsTable(t *testing.T) {
	t.Parallel()
	h := sha256.New()
	for name, e := range Entries() {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", name, e.Stage, e.Why, e.Fix)
		for _, s := range slices.Sorted(maps.Keys(e.FixIf)) {
			fmt.Fprintf(h, "%s\x00%s\x00", s, e.FixIf[s])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(stageVaries)) {
		fmt.Fprintf(h, "varies %s\x00", name)
	}
	for _, fn := range slices.Sorted(maps.Keys(standsFor)) {
		fmt.Fprintf(h, "%s stands for %s\x00", fn, standsFor[fn])
	}
	fmt.Fprintf(h, "checked against %q", checkedKernels)
	if got := hex.EncodeToString(h.Sum(nil)); got != tableDigest {
		t.Errorf("the table is not what version %d was: bump Version and set tableDigest to %q", Version, got)
	}
}
