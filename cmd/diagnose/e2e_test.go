package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/arrival"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

var (
	record   = flag.Bool("record", false, "save each end-to-end report under testdata/reports as recorded evidence")
	prebuilt = flag.String("diagnose", "", "test this diagnose binary instead of building one (make vm-test builds it outside the slow VM)")
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	// Only the end-to-end tests run the binary, and the unit tier runs none of them.
	if testing.Short() {
		os.Exit(testns.Main(m))
	}
	code := func() int {
		dir, err := os.MkdirTemp("", "diagnose-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		// Readable by all: one test runs the binary as nobody.
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binary = filepath.Join(dir, "diagnose")
		if err := buildDiagnose(binary); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return testns.Main(m)
	}()
	os.Exit(code)
}

// buildDiagnose puts the binary under test at path: a fresh static build, or a copy of
// -diagnose's.
func buildDiagnose(path string) error {
	if *prebuilt != "" {
		b, err := os.ReadFile(*prebuilt)
		if err != nil {
			return err
		}
		return os.WriteFile(path, b, 0o755)
	}
	build := exec.Command("go", "build", "-o", path, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build diagnose: %v\n%s", err, out)
	}
	return nil
}

// scenario is one end-to-end run: diagnose in the server namespace, the reproduction sent
// from the client namespace.
type scenario struct {
	pair  *testns.Pair
	port  uint16
	v6    bool
	proto string
	// capture is --capture's value; "" leaves the default, which must take tcx where the
	// kernel has it (checkMethod).
	capture string
}

func newScenario(t *testing.T, tag string, v6 bool, proto string) *scenario {
	t.Helper()
	return &scenario{pair: testns.NewPair(t, tag), port: testns.Port(), v6: v6, proto: proto}
}

func (s *scenario) serverAddr() string {
	if s.v6 {
		return testns.ServerV6
	}
	return testns.ServerV4
}

func (s *scenario) flowArg() string {
	if s.v6 {
		return fmt.Sprintf("[%s]:%d", testns.ServerV6, s.port)
	}
	return fmt.Sprintf("%s:%d", testns.ServerV4, s.port)
}

// fromClient is a reproduction command run in the client namespace with bash's /dev/tcp
// and /dev/udp, so the tests need nothing beyond bash and iproute2.
func (s *scenario) fromClient(script string) []string {
	script = strings.NewReplacer("ADDR", s.serverAddr(), "PORT", fmt.Sprint(s.port), "PROTO", s.proto).Replace(script)
	return []string{"ip", "netns", "exec", s.pair.Client, "timeout", "3", "bash", "-c", script}
}

// connect opens a connection (or sends a datagram) and writes a line.
const connect = `exec 3<>/dev/PROTO/ADDR/PORT && echo hello >&3; exec 3>&-; true`

// diagnose runs the binary in the server namespace and returns its JSON report.
func (s *scenario) diagnose(t *testing.T, name string, repro []string) *report.Report {
	t.Helper()
	return s.diagnoseIn(t, s.pair.Server, s.flowArg(), name, repro)
}

// diagnoseFrom runs the binary in this test's namespace with --netns spec for the flow and
// returns its JSON report.
func (s *scenario) diagnoseFrom(t *testing.T, spec string, repro []string) *report.Report {
	t.Helper()
	args := []string{"--netns", spec, "--flow", s.flowArg(), "--proto", s.proto, "--yes", "--format", "json", "--timeout", "20s", "--"}
	cmd := exec.Command(binary, append(args, repro...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("diagnose --netns %s: %v\nstderr:\n%s", spec, err, stderr.String())
	}
	t.Logf("diagnose stderr:\n%s", stderr.String())
	rep, err := report.Read(bytes.NewReader(stdout.Bytes()))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, stdout.String())
	}
	checkNothingLeft(t, s.pair.Server)
	return rep
}

// diagnoseIn runs the binary in namespace ns for flow and returns its JSON report; -record
// keeps it under name, unless name is "".
func (s *scenario) diagnoseIn(t *testing.T, ns, flow, name string, repro []string) *report.Report {
	t.Helper()
	args := []string{"netns", "exec", ns, binary, "--flow", flow, "--proto", s.proto,
		"--yes", "--format", "json", "--timeout", "20s"}
	if s.capture != "" {
		args = append(args, "--capture", s.capture)
	}
	args = append(args, "--")
	cmd := exec.Command("ip", append(args, repro...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("diagnose: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("diagnose stderr:\n%s", stderr.String())
	rep, err := report.Read(bytes.NewReader(stdout.Bytes()))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, stdout.String())
	}
	if *record && name != "" {
		path := filepath.Join("..", "..", "testdata", "reports", name+".json")
		if err := os.WriteFile(path, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkNothingLeft(t, ns)
	checkMethod(t, rep, s.capture)
	return rep
}

// checkMethod fails unless the capture took the method the kernel allows: on a kernel with
// tcx the default must take it, and --capture socket must not; on a kernel without (6.1)
// the default must fall back to the packet socket and say that tcx is missing, not blame
// something else.
func checkMethod(t *testing.T, rep *report.Report, capture string) {
	t.Helper()
	a := rep.Stages.Arrival
	if a == nil {
		t.Fatal("no arrival evidence")
	}
	want, note := evidence.CaptureTCX, ""
	if capture == arrival.MethodSocket {
		want = evidence.CaptureSocket
	} else if !testns.HasTCX() {
		want, note = evidence.CaptureSocket, "the kernel has no tcx (Linux 6.6+)"
	}
	if a.Method != want || !strings.Contains(a.MethodNote, note) || (note == "" && a.MethodNote != "") {
		t.Errorf("capture method %q, note %q; want %q and a note saying %q", a.Method, a.MethodNote, want, note)
	}
	if strings.Contains(a.MethodNote, "CONFIG_") {
		t.Errorf("the note blames the kernel's configuration for a missing feature: %s", a.MethodNote)
	}
}

func runQuiet(args ...string) error { return exec.Command(args[0], args[1:]...).Run() }

// checkNothingLeft fails when diagnose left its table in the namespace.
func checkNothingLeft(t *testing.T, ns string) {
	t.Helper()
	out := testns.Run(t, "ip", "netns", "exec", ns, testns.Tool(t, "nft"), "list", "tables")
	if strings.Contains(out, "packetmortem") {
		t.Errorf("diagnose left its table behind:\n%s", out)
	}
}

func (s *scenario) nft(t *testing.T, ns, ruleset string) {
	t.Helper()
	ruleset = strings.NewReplacer("ADDR", s.serverAddr(), "PORT", fmt.Sprint(s.port)).Replace(ruleset)
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s\n%s", err, out, ruleset)
	}
}

func expect(t *testing.T, rep *report.Report, outcome verdict.Outcome, stage verdict.Stage, reason string) {
	t.Helper()
	v := rep.Verdict
	got := ""
	if v.Reason != nil {
		got = *v.Reason
	}
	if v.Outcome != string(outcome) || v.Stage != string(stage) || got != reason {
		js, _ := json.MarshalIndent(rep, "", "  ")
		t.Fatalf("verdict %s/%s/%q, want %s/%s/%q\nsummary: %s\nreport:\n%s", v.Outcome, v.Stage, got, outcome, stage, reason, v.Summary, js)
	}
	if v.Summary == "" || v.Fix == "" {
		t.Errorf("verdict has no summary or fix: %+v", v)
	}
	for _, in := range rep.Run.Installed {
		if !in.Removed {
			t.Errorf("diagnose reports %s left behind", in.What)
		}
	}
	t.Logf("verdict: %s", v.Summary)
}

func bothFamilies(t *testing.T, fn func(t *testing.T, v6 bool)) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each family has its own namespaces and port
			fn(t, v6)
		})
	}
}

func TestE2ETCPNoListener(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "tnl", v6, "tcp")
		rep := s.diagnose(t, "tcp_no_listener_"+family(v6), s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
		if want := map[bool]string{false: "tcp_v4_rcv", true: "tcp_v6_rcv"}[v6]; rep.Verdict.Function != want {
			t.Errorf("function %q, want %q", rep.Verdict.Function, want)
		}
	})
}

func TestE2EUDPClosedPort(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "udp", v6, "udp")
		rep := s.diagnose(t, "udp_closed_port_"+family(v6), s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	})
}

func TestE2EInputDropRule(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "nfd", v6, "tcp")
		s.nft(t, s.pair.Server, `table inet guard {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport PORT drop
	}
}`)
		rep := s.diagnose(t, "input_drop_rule_"+family(v6), s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Input, "NETFILTER_DROP")
		r := rep.Verdict.Rule
		want := fmt.Sprintf("tcp dport %d drop", s.port)
		if r == nil || r.Table != "guard" || r.Chain != "input" || r.Rule != want || r.Handle == 0 {
			t.Fatalf("rule %+v, want table guard chain input rule %q", r, want)
		}
		if !strings.Contains(rep.Verdict.Summary, want) || !strings.Contains(rep.Verdict.Fix, fmt.Sprintf("handle %d", r.Handle)) {
			t.Errorf("summary/fix do not name the rule:\n%s\n%s", rep.Verdict.Summary, rep.Verdict.Fix)
		}
	})
}

func TestE2EStrictRPFilter(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "rpf", false, "tcp")
	// The way back to the client goes out of another interface, so strict reverse-path
	// filtering rejects what arrives on veth0.
	s.pair.InServer(t, "ip", "link", "add", "side0", "type", "veth", "peer", "name", "side1")
	s.pair.InServer(t, "ip", "link", "set", "side0", "up")
	s.pair.InServer(t, "ip", "link", "set", "side1", "up")
	s.pair.InServer(t, "ip", "route", "add", testns.ClientV4+"/32", "dev", "side0")
	s.pair.InServer(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf."+testns.Iface+".rp_filter=1")
	// The server would not answer ARP from a source it cannot route back either: give the
	// client the server's MAC address, so the SYN itself reaches the filter.
	s.staticNeighbor(t)
	rep := s.diagnose(t, "strict_rp_filter", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Routing, "IP_RPFILTER")
	if !strings.Contains(rep.Verdict.Fix, "net.ipv4.conf."+testns.Iface+".rp_filter=2") {
		t.Errorf("fix does not name the interface's sysctl: %s", rep.Verdict.Fix)
	}
}

func TestE2ESenderEgressFirewall(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "egr", false, "tcp")
	s.nft(t, s.pair.Client, `table inet clientguard {
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr ADDR tcp dport PORT drop
	}
}`)
	rep := s.diagnose(t, "sender_egress_firewall", s.fromClient(connect))
	expect(t, rep, verdict.NotArrived, verdict.Arrival, "")
	if rep.Stages.Arrival.In != 0 {
		t.Errorf("arrival counted %d packets in", rep.Stages.Arrival.In)
	}
	// The tcx capture says whether it saw anything at all meanwhile; the packet socket, the
	// fallback without tcx, counts nothing but the flow and says nothing.
	notes := strings.Join(rep.Verdict.Notes, "\n")
	live := strings.Contains(notes, "the capture was live") || strings.Contains(notes, "no packet of any flow passed")
	if tcx := rep.Stages.Arrival.Method == evidence.CaptureTCX; live != tcx {
		t.Errorf("capture on %s; the verdict's notes on other traffic: %q", rep.Stages.Arrival.Method, notes)
	}
	t.Logf("notes: %s", notes)
	// The client's drop is visible host-wide; it must be attributed to the client namespace.
	if len(rep.Verdict.Elsewhere) == 0 || rep.Verdict.Elsewhere[0].NetnsName != s.pair.Client || rep.Verdict.Elsewhere[0].Reason != "NETFILTER_DROP" {
		t.Errorf("the drop in the client namespace is not reported as elsewhere: %+v", rep.Verdict.Elsewhere)
	}
}

func TestE2EHealthyListener(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		healthy(t, newScenario(t, "ok", v6, "tcp"), "healthy_listener_"+family(v6))
	})
}

// healthy diagnoses a flow a listener serves: delivered, seen both ways.
func healthy(t *testing.T, s *scenario, name string) *report.Report {
	t.Helper()
	stop := s.listen(t)
	defer stop()
	rep := s.diagnose(t, name, s.fromClient(connect))
	expect(t, rep, verdict.Delivered, verdict.Socket, "")
	if rep.Stages.Arrival.In == 0 || rep.Stages.Arrival.Out == 0 {
		t.Errorf("capture saw %d in, %d out; want both", rep.Stages.Arrival.In, rep.Stages.Arrival.Out)
	}
	return rep
}

// The packet socket, the fallback where tcx cannot run, captures the same: a healthy flow is
// seen both ways and delivered, and a dropped one arrives and is dropped where it is.
func TestE2ESocketCapture(t *testing.T) {
	t.Parallel()
	bothFamilies(t, func(t *testing.T, v6 bool) {
		s := newScenario(t, "sck", v6, "tcp")
		s.capture = arrival.MethodSocket
		rep := healthy(t, s, "socket_capture_"+family(v6))
		if !slices.ContainsFunc(rep.Run.Installed, func(i evidence.Installed) bool { return i.What == "AF_PACKET capture socket" }) {
			t.Errorf("installed %+v: no AF_PACKET capture socket", rep.Run.Installed)
		}
	})
	s := newScenario(t, "sck", false, "udp")
	s.capture = arrival.MethodSocket
	rep := s.diagnose(t, "socket_capture_closed_port", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	if rep.Stages.Arrival.In == 0 {
		t.Error("the capture saw no datagram arrive")
	}
}

// listen serves the flow's port in the server namespace: it reads what comes and closes.
func (s *scenario) listen(t *testing.T) func() {
	t.Helper()
	return s.listenOn(t, s.pair.Server, s.serverAddr())
}

// listenUDP reads the scenario's UDP port in the server namespace until the test ends.
func (s *scenario) listenUDP(t *testing.T) func() {
	t.Helper()
	var c net.PacketConn
	testns.Do(t, s.pair.Server, func() {
		var err error
		c, err = net.ListenPacket("udp", net.JoinHostPort(s.serverAddr(), fmt.Sprint(s.port)))
		if err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	if c == nil {
		t.FailNow()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return func() { c.Close(); <-done }
}

// listenOn serves the scenario's port on addr in namespace ns.
func (s *scenario) listenOn(t *testing.T, ns, addr string) func() {
	t.Helper()
	var ln net.Listener
	testns.Do(t, ns, func() {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(s.port)))
		if err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn // closed at stop: a line whose segments a test drops never comes
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			_, _ = bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

func TestE2EKill9LeavesNoTable(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "k9", false, "tcp")
	// With no chain at all diagnose installs no table: give it a ruleset to trace.
	s.nft(t, s.pair.Server, "table inet user {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}")
	cmd := exec.Command("ip", "netns", "exec", s.pair.Server, binary, "--flow", s.flowArg(), "--yes", "--timeout", "60s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitArmed(t, stderr)
	tables := testns.Run(t, "ip", "netns", "exec", s.pair.Server, "nft", "list", "tables")
	if !strings.Contains(tables, "packetmortem") {
		t.Fatalf("armed diagnose has no trace table: %q", tables)
	}
	// ip netns exec execs diagnose in place, so the process is diagnose itself.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tables = testns.Run(t, "ip", "netns", "exec", s.pair.Server, "nft", "list", "tables")
		if !strings.Contains(tables, "packetmortem") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("table left behind after kill -9:\n%s", tables)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func family(v6 bool) string {
	if v6 {
		return "v6"
	}
	return "v4"
}

// TestE2EOutputFiles: -o writes the report and the capture next to it, never overwrites
// without --force, and --count ends the capture early. Serial: it bounds the run's time.
func TestE2EOutputFiles(t *testing.T) {
	s := newScenario(t, "out", false, "udp")
	dir := t.TempDir()
	out := filepath.Join(dir, "report.json")
	args := []string{"netns", "exec", s.pair.Server, binary, "--flow", s.flowArg(), "--proto", "udp", "--yes",
		"--count", "2", "--timeout", "20s", "-o", out, "--"}
	// Five datagrams, a second apart: --count 2 must end the capture long before they are sent.
	repro := s.fromClient(`for i in 1 2 3 4 5; do echo x > /dev/udp/ADDR/PORT; sleep 1; done`)
	repro[5] = "10" // the loop needs longer than fromClient's timeout
	start := time.Now()
	if out, err := exec.Command("ip", append(args, repro...)...).CombinedOutput(); err != nil {
		t.Fatalf("diagnose: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("--count 2 did not end the capture early: ran %s", d)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.StoppedBy != "count" || rep.Stages.Arrival.In < 2 {
		t.Errorf("stopped by %q with %d packets in; want count with at least 2", rep.Run.StoppedBy, rep.Stages.Arrival.In)
	}
	pcap := filepath.Join(dir, "report.pcap")
	if rep.Stages.Arrival.PcapPath != pcap {
		t.Errorf("capture file %q, want %q", rep.Stages.Arrival.PcapPath, pcap)
	}
	if st, err := os.Stat(pcap); err != nil || st.Size() <= 24 {
		t.Errorf("capture file: %v (want packets in it)", err)
	}
	// The annotated capture, read back as Wireshark users will: each packet says its fate.
	pcapng := filepath.Join(dir, "report.pcapng")
	if rep.Run.Pcapng != pcapng {
		t.Errorf("annotated capture %q, want %q", rep.Run.Pcapng, pcapng)
	}
	{
		out, err := exec.Command(testns.Tool(t, "tshark"), "-r", pcapng, "-T", "fields", "-e", "frame.comment").Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v\n%s", pcapng, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 2 || !strings.Contains(lines[0], "arrived on "+testns.Iface) || !strings.Contains(lines[0], "NO_SOCKET") {
			t.Errorf("tshark read these comments, want each packet's arrival and NO_SOCKET drop:\n%s", out)
		}
	}
	cmd := exec.Command("ip", append(args, "true")...)
	if err := cmd.Run(); exitStatus(err) != exitUsage {
		t.Errorf("second run over an existing report: %v, want exit %d", err, exitUsage)
	}
	if err := exec.Command("ip", append(append(args[:len(args)-1], "--force", "--"), "true")...).Run(); err != nil {
		t.Errorf("--force over an existing report: %v", err)
	}
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestE2EInterrupt: Ctrl-C ends the capture and still writes the report, and removes the
// table. Serial: it bounds the time to stop.
func TestE2EInterrupt(t *testing.T) {
	s := newScenario(t, "int", false, "tcp")
	cmd := exec.Command("ip", "netns", "exec", s.pair.Server, binary, "--flow", s.flowArg(), "--yes", "--format", "json", "--timeout", "60s")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	waitArmed(t, stderr)
	repro := s.fromClient(connect)
	_ = exec.Command(repro[0], repro[1:]...).Run()
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("diagnose after Ctrl-C: %v, want exit 0", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("diagnose took %s to stop after Ctrl-C", d)
	}
	rep, err := report.Read(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.StoppedBy != "signal" {
		t.Errorf("stopped by %q, want signal", rep.Run.StoppedBy)
	}
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	checkNothingLeft(t, s.pair.Server)
}

// TestE2ENotRoot: without root diagnose says so and exits 3.
func TestE2ENotRoot(t *testing.T) {
	t.Parallel()
	testns.RequirePrivileges(t)
	cmd := exec.Command(binary, "--flow", "127.0.0.1:9", "--yes", "--timeout", "1s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if exitStatus(err) != exitHost || !strings.Contains(string(out), "run it with sudo") {
		t.Errorf("as nobody: %v\n%s\nwant exit %d saying to run as root", err, out, exitHost)
	}
}

func waitArmed(t *testing.T, stderr io.Reader) {
	t.Helper()
	armed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "armed") {
				close(armed)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case <-armed:
	case <-time.After(20 * time.Second):
		t.Fatal("diagnose did not arm within 20s")
	}
}

// TestE2ENoChainsNoTable: a namespace without any nftables chain gets no trace table, and
// the report says why.
func TestE2ENoChainsNoTable(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "nch", false, "tcp")
	rep := s.diagnose(t, "no_chains", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	if fw := rep.Stages.Firewall; fw == nil || fw.Skipped == "" || fw.Installed {
		t.Errorf("firewall %+v: want it skipped, with why", fw)
	}
}
