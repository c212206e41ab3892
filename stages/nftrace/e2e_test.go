package nftrace

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// End-to-end tests: they run as root in namespaces made by testns, skip locally without
// root and fail under CI=true. Traffic only goes between the test's own namespaces.

var saveFixtures = flag.Bool("record", false, "save the raw trace messages of each end-to-end run to testdata/<test>.hex, the fixtures of the unit tests")

func TestMain(m *testing.M) {
	code := testns.Main(m)
	// No test may leave a trace table of this process in the test's own namespace.
	if os.Geteuid() == 0 && !testing.Short() {
		if out, err := exec.Command("nft", "list", "tables").Output(); err == nil &&
			strings.Contains(string(out), defaultTableName()) {
			fmt.Fprintf(os.Stderr, "tests left table %s behind\n", defaultTableName())
			code = 1
		}
	}
	os.Exit(code)
}

// childCommand runs this test binary's TestChild, to arm a tracer for flow in namespace
// ns (mode "arm") or to report how Start fails (mode "privcheck").
func childCommand(mode, ns, flow string) []string {
	return []string{os.Args[0], "-test.run=^TestChild$", "--", mode, ns, flow}
}

// TestChild, run by childCommand, arms a tracer in the namespace through a handle, says
// "armed" and waits to be killed; in mode privcheck it reports how Start failed instead.
func TestChild(t *testing.T) {
	if flag.NArg() != 3 {
		t.Skip("the child of TestKill9LeavesNoTable and TestStartWithoutCapNetAdmin")
	}
	mode, ns, flow := flag.Arg(0), flag.Arg(1), flag.Arg(2)
	f, err := evidence.ParseFlow(flow, evidence.TCP)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netns.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tr, err := Start(context.Background(), Config{Flow: f, Netns: h})
	if mode == "privcheck" {
		fmt.Printf("privilege=%v error=%v\n", errors.Is(err, kerr.ErrPrivilege), err)
		if tr != nil {
			tr.Close()
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("armed", tr.table)
	time.Sleep(time.Minute)
	tr.Close()
}

// recorder collects raw trace messages while a test runs, for -record.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func record(t *testing.T) *recorder {
	if !*saveFixtures {
		return nil
	}
	return &recorder{}
}

// onRaw keeps a raw trace message; a nil recorder keeps nothing (Config.onRaw).
func (r *recorder) onRaw() func(netlink.Message) {
	if r == nil {
		return nil
	}
	return func(m netlink.Message) {
		b, err := m.MarshalBinary()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, hex.EncodeToString(b))
		r.mu.Unlock()
	}
}

func (r *recorder) save(t *testing.T, name, own string, flow evidence.Flow, comment string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "# Raw NFT_MSG_TRACE netlink messages (header included), one per line, recorded by\n")
	fmt.Fprintf(&b, "# go test -run %s -record on Linux %s.\n", t.Name(), kernelRelease())
	fmt.Fprintf(&b, "# %s\n", comment)
	fmt.Fprintf(&b, "# own: %s\n# flow: %s\n", own, flow)
	for _, m := range r.msgs {
		b.WriteString(m + "\n")
	}
	path := filepath.Join("testdata", name+".hex")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d messages to %s", len(r.msgs), path)
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// startIn arms a tracer inside namespace ns; cfg's test options are kept.
func startIn(t *testing.T, ns string, flow evidence.Flow, cfg ...Config) *Tracer {
	t.Helper()
	var tr *Tracer
	var err error
	c := Config{}
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Flow = flow
	testns.Do(t, ns, func() {
		tr, err = Start(context.Background(), c)
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func nftIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return testns.Run(t, append([]string{"ip", "netns", "exec", ns, "nft"}, args...)...)
}

func loadRuleset(t *testing.T, ns, ruleset string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(path, []byte(ruleset), 0o644); err != nil {
		t.Fatal(err)
	}
	nftIn(t, ns, "-f", path)
}

var ourTableRE = regexp.MustCompile(`(?ms)^table inet ` + tablePrefix + `\d+ \{.*?^\}\n?`)

// userRuleset is `nft list ruleset` without diagnose's tables.
func userRuleset(t *testing.T, ns string) string {
	return ourTableRE.ReplaceAllString(nftIn(t, ns, "list", "ruleset"), "")
}

func assertNoTraceTable(t *testing.T, ns string) {
	t.Helper()
	if out := nftIn(t, ns, "list", "tables"); strings.Contains(out, tablePrefix) {
		t.Errorf("a trace table is left in %s:\n%s", ns, out)
	}
}

// ruleHandle finds the handle of the rule printed as text in `nft -a list chain`.
func ruleHandle(t *testing.T, ns, family, table, chain, text string) uint64 {
	t.Helper()
	out := nftIn(t, ns, "-a", "list", "chain", family, table, chain)
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if rule, h, ok := strings.Cut(line, " # handle "); ok && rule == text {
			n, err := strconv.ParseUint(h, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("rule %q not found in:\n%s", text, out)
	return 0
}

// sendSYN makes the client try to connect; with the SYN dropped it fails, which is fine.
func sendSYN(p *testns.Pair, addr string, port uint16) {
	_ = exec.Command("ip", "netns", "exec", p.Client, "timeout", "3", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr, port)).Run()
}

func findTrace(traces []evidence.Trace, hook string, pred func(evidence.Trace) bool) *evidence.Trace {
	for i := range traces {
		if traces[i].Hook == hook && (pred == nil || pred(traces[i])) {
			return &traces[i]
		}
	}
	return nil
}

func dumpTraces(t *testing.T, fw *evidence.Firewall) {
	t.Helper()
	for _, tr := range fw.Traces {
		t.Logf("trace %08x %s %s %s->%s verdict=%q", tr.ID, tr.Family, tr.Hook, tr.Src, tr.Dst, tr.Verdict)
		for _, s := range tr.Steps {
			t.Logf("    %s %s %s %s handle %d %q -> %s", s.Type, s.Family, s.Table, s.Chain, s.Handle, s.Rule, s.Verdict)
		}
	}
}

func TestDropInInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, server, rule string
		v6, policy         bool
	}{
		{name: "drop_v4", server: testns.ServerV4, rule: "tcp dport %d drop"},
		{name: "drop_v6", server: testns.ServerV6, rule: "ip6 daddr " + testns.ServerV6 + " tcp dport %d drop", v6: true},
		{name: "policy_drop_v4", server: testns.ServerV4, rule: "tcp dport != %d accept", policy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testns.NewPair(t, "nf")
			port := testns.Port()
			rule := fmt.Sprintf(tc.rule, port)
			policy := "accept"
			if tc.policy {
				policy = "drop"
			}
			loadRuleset(t, p.Server, fmt.Sprintf("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy %s;\n\t\t%s\n\t}\n}\n", policy, rule))
			handle := ruleHandle(t, p.Server, "inet", "filter", "input", rule)
			before := userRuleset(t, p.Server)

			flow := evidence.Flow{Addr: netip.MustParseAddr(tc.server), Port: port, Proto: evidence.TCP}
			rec := record(t)
			tr := startIn(t, p.Server, flow, Config{onRaw: rec.onRaw()})
			if got := userRuleset(t, p.Server); got != before {
				t.Errorf("Start changed the user ruleset:\n%s\nwant:\n%s", got, before)
			}
			sendSYN(p, tc.server, port)
			if tr.Traced() == 0 {
				t.Errorf("Traced() = 0 after a SYN")
			}
			fw := tr.Stop()
			rec.save(t, tc.name, tr.table, flow, "A SYN to a port the input chain drops ("+rule+", policy "+policy+").")
			dumpTraces(t, fw)
			assertNoTraceTable(t, p.Server)
			if !fw.Installed || !fw.Removed || fw.Error != "" || fw.Lost != 0 {
				t.Errorf("firewall = installed %v removed %v error %q lost %d", fw.Installed, fw.Removed, fw.Error, fw.Lost)
			}
			if fw.Table != "inet "+tr.table {
				t.Errorf("Table = %q", fw.Table)
			}
			fam := "ip"
			if tc.v6 {
				fam = "ip6"
			}
			toServer := func(x evidence.Trace) bool {
				return x.Dst == netip.AddrPortFrom(flow.Addr, port) && x.Family == fam
			}
			pre := findTrace(fw.Traces, "prerouting", toServer)
			if pre == nil {
				t.Fatalf("no prerouting trace of the SYN")
			}
			if pre.Verdict != "accept" || len(pre.Steps) != 0 || pre.Iif != testns.Iface || pre.DroppedBy != nil {
				t.Errorf("prerouting trace = %+v; want accept, no steps, iif %s", *pre, testns.Iface)
			}
			in := findTrace(fw.Traces, "input", toServer)
			if in == nil {
				t.Fatalf("no input trace of the SYN")
			}
			if in.Verdict != "drop" || in.DroppedBy == nil {
				t.Fatalf("input trace = %+v; want dropped", *in)
			}
			want := evidence.TraceStep{Type: "rule", Family: "inet", Table: "filter", Chain: "input", Handle: handle, Rule: rule, Syntax: "nft", Number: 1, Verdict: "drop"}
			if tc.policy {
				want = evidence.TraceStep{Type: "policy", Family: "inet", Table: "filter", Chain: "input", Verdict: "drop"}
			}
			if !reflect.DeepEqual(*in.DroppedBy, want) {
				t.Errorf("DroppedBy = %+v\nwant       %+v", *in.DroppedBy, want)
			}
			if in.ID != pre.ID {
				t.Logf("note: the trace id changed between prerouting (%08x) and input (%08x)", pre.ID, in.ID)
			}
			if after := userRuleset(t, p.Server); after != before {
				t.Errorf("the user ruleset changed:\n%s\nwant:\n%s", after, before)
			}
		})
	}
}

func TestHealthyFlow(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "nf")
	port := testns.Port()
	rule := fmt.Sprintf("tcp dport %d counter accept", port)
	loadRuleset(t, p.Server, fmt.Sprintf("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\t%s\n\t}\n}\n", rule))
	handle := ruleHandle(t, p.Server, "inet", "filter", "input", strings.Replace(rule, "counter", "counter packets 0 bytes 0", 1))

	// A server in the server namespace: the socket keeps its namespace.
	var ln net.Listener
	testns.Do(t, p.Server, func() {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(testns.ServerV4, strconv.Itoa(int(port))))
		if err != nil {
			t.Error(err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()

	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: port, Proto: evidence.TCP}
	rec := record(t)
	tr := startIn(t, p.Server, flow, Config{onRaw: rec.onRaw()})
	testns.Do(t, p.Client, func() {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(testns.ServerV4, strconv.Itoa(int(port))), 3*time.Second)
		if err != nil {
			t.Errorf("connect: %v", err)
			return
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); line != "hello\n" {
			t.Errorf("read %q, %v", line, err)
		}
		c.Close()
	})
	time.Sleep(200 * time.Millisecond) // let the FIN exchange finish
	fw := tr.Stop()
	rec.save(t, "healthy_v4", tr.table, flow, "A TCP connection accepted by the input chain ("+rule+"): SYN, ACKs, data, FINs.")
	dumpTraces(t, fw)
	assertNoTraceTable(t, p.Server)
	if fw.Error != "" || !fw.Removed {
		t.Errorf("error %q removed %v", fw.Error, fw.Removed)
	}
	for _, x := range fw.Traces {
		if x.DroppedBy != nil || x.Verdict == "drop" {
			t.Errorf("healthy flow has a drop: %+v", x)
		}
	}
	in := findTrace(fw.Traces, "input", nil)
	if in == nil || in.Verdict != "accept" || len(in.Steps) != 1 {
		t.Fatalf("input trace = %+v; want one accepting step", in)
	}
	st := in.Steps[0]
	if st.Handle != handle || st.Verdict != "accept" || !regexp.MustCompile(fmt.Sprintf(`^tcp dport %d counter packets \d+ bytes \d+ accept$`, port)).MatchString(st.Rule) {
		t.Errorf("input step = %+v", st)
	}
	// The server's replies pass the output chain. (No trace on postrouting: nf_tables
	// reports only hooks with a base chain, and this ruleset has none there.)
	out := findTrace(fw.Traces, "output", func(x evidence.Trace) bool { return x.Src == netip.AddrPortFrom(flow.Addr, port) })
	if out == nil || out.Verdict != "accept" || out.Oif != testns.Iface || len(out.Steps) != 0 {
		t.Errorf("output trace of a reply = %+v; want accept through %s, no steps", out, testns.Iface)
	}
	if post := findTrace(fw.Traces, "postrouting", nil); post != nil {
		t.Errorf("unexpected postrouting trace: %+v", post)
	}
}

func TestKill9LeavesNoTable(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "nf")
	flow := fmt.Sprintf("%s:%d", testns.ServerV4, testns.Port())
	argv := childCommand("arm", p.Server, flow)
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "armed ") {
		t.Fatalf("child said %q, %v", line, err)
	}
	table := strings.TrimSpace(strings.TrimPrefix(line, "armed "))
	if out := nftIn(t, p.Server, "list", "tables"); !strings.Contains(out, "table inet "+table) {
		t.Fatalf("table %s not installed:\n%s", table, out)
	}
	if !strings.Contains(nftIn(t, p.Server, "list", "table", "inet", table), "flags owner") {
		t.Errorf("table %s has no owner flag", table)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for {
		out := nftIn(t, p.Server, "list", "tables")
		if !strings.Contains(out, tablePrefix) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("table still there 3s after kill -9:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartWithoutCapNetAdmin(t *testing.T) {
	t.Parallel()
	testns.SkipShort(t, "nftables over netlink")
	if os.Geteuid() != 0 {
		_, err := Start(context.Background(), Config{Flow: evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: 80, Proto: evidence.TCP}})
		if !errors.Is(err, kerr.ErrPrivilege) {
			t.Fatalf("Start as non-root: %v; want kerr.ErrPrivilege", err)
		}
		return
	}
	p := testns.NewPair(t, "nf")
	// Keep CAP_SYS_ADMIN (to enter the namespace), drop CAP_NET_ADMIN.
	cmd := exec.Command(testns.Tool(t, "setpriv"), append([]string{"--inh-caps=-net_admin", "--bounding-set=-net_admin"},
		childCommand("privcheck", p.Server, testns.ServerV4+":80")...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "privilege=true") {
		t.Errorf("Start without CAP_NET_ADMIN: %s", out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	assertNoTraceTable(t, p.Server)
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "nf")
	tr := startIn(t, p.Server, evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.TCP})
	if out := nftIn(t, p.Server, "list", "tables"); !strings.Contains(out, tr.table) {
		t.Fatalf("table not installed:\n%s", out)
	}
	for i := 0; i < 2; i++ {
		if err := tr.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	assertNoTraceTable(t, p.Server)
	fw := tr.Stop()
	if !fw.Removed || fw.Error == "" {
		t.Errorf("Stop after Close = removed %v error %q; want removed and an error saying rules were not read", fw.Removed, fw.Error)
	}
	var nilTracer *Tracer
	if err := nilTracer.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	if _, err := Start(context.Background(), Config{Flow: evidence.Flow{}}); err == nil {
		t.Errorf("Start with an empty flow succeeded")
	}
}

// TestStartReleasesOnFailure: a Start that fails after creating the table removes it, and
// a table of the same name that diagnose does not own is never adopted.
func TestStartReleasesOnFailure(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "nf")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.TCP}
	afterTable := func() error {
		if out := nftIn(t, p.Server, "list", "tables"); !strings.Contains(out, defaultTableName()) {
			t.Errorf("table not there before the failure:\n%s", out)
		}
		return errors.New("injected failure")
	}
	var err error
	var tr *Tracer
	testns.Do(t, p.Server, func() {
		tr, err = Start(context.Background(), Config{Flow: flow, afterTable: afterTable})
	})
	if err == nil || tr != nil {
		t.Fatalf("Start = %v, %v; want the injected failure", tr, err)
	}
	assertNoTraceTable(t, p.Server)

	// Someone else's table with our name: refused, left alone.
	nftIn(t, p.Server, "add", "table", "inet", defaultTableName())
	testns.Do(t, p.Server, func() {
		tr, err = Start(context.Background(), Config{Flow: flow})
	})
	if !errors.Is(err, unix.EEXIST) || tr != nil {
		t.Fatalf("Start over an existing table = %v; want EEXIST", err)
	}
	t.Logf("%v", err)
	if out := nftIn(t, p.Server, "list", "tables"); !strings.Contains(out, "table inet "+defaultTableName()) {
		t.Errorf("the existing table was removed:\n%s", out)
	}
	nftIn(t, p.Server, "delete", "table", "inet", defaultTableName())
}

// TestLostEventsAreCounted overflows the trace socket (tiny buffer, reader held) and
// checks that the loss is reported, never silent.
func TestLostEventsAreCounted(t *testing.T) {
	t.Parallel()
	p := testns.NewPair(t, "nf")
	port := testns.Port()
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: port, Proto: evidence.UDP}
	tr := startIn(t, p.Server, flow, Config{readBuffer: 4096})

	tr.col.mu.Lock() // the reader blocks on its next event; the socket fills up
	testns.Do(t, p.Client, func() {
		c, err := net.Dial("udp", net.JoinHostPort(testns.ServerV4, strconv.Itoa(int(port))))
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i := 0; i < 300; i++ {
			c.Write([]byte("x"))
		}
	})
	time.Sleep(100 * time.Millisecond)
	tr.col.mu.Unlock()
	fw := tr.Stop()
	t.Logf("lost %d, traces %d, traced %d", fw.Lost, len(fw.Traces), tr.Traced())
	if fw.Lost == 0 {
		t.Errorf("no loss reported after overflowing the trace socket")
	}
	if len(fw.Traces) == 0 || len(fw.Traces) >= 300 {
		t.Errorf("%d traces kept", len(fw.Traces))
	}
	assertNoTraceTable(t, p.Server)
}
