package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

func TestMain(m *testing.M) {
	// diagnose runs this test binary as its reproduction: then it is a helper, never the tests.
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		os.Exit(runHelper(os.Args[2:], os.Stderr))
	}
	code := testns.Main(m)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// The load the test holds diagnose to, and what diagnose may use under it.
const (
	minFloodRate = 200_000  // unrelated drops per second
	maxRSS       = 64 << 20 // bytes
	flowDrops    = 50       // datagrams of the diagnosed flow, each dropped once
	flowEvery    = 40 * time.Millisecond
)

// TestFloodKeepsEveryDrop: while an unrelated flood of at least 200,000 drops a second
// runs between the test's namespaces, diagnose, watching another flow, reports every drop
// of that flow (compared with what was sent), lets no event of the flood reach user space,
// loses nothing, and stays under 64 MiB.
func TestFloodKeepsEveryDrop(t *testing.T) {
	pair := testns.NewPair(t, "bfl")
	bin := buildDiagnose(t)
	flowPort := testns.Port()
	floodPort := flowPort + 1
	flow := netip.AddrPortFrom(netip.MustParseAddr(testns.ServerV4), flowPort)

	counter, err := openNoPorts(pair.Server)
	if err != nil {
		t.Fatal(err)
	}
	defer counter.Close()
	mac, err := macOf(pair.Server, testns.Iface)
	if err != nil {
		t.Fatal(err)
	}
	// The flood: raw UDP datagrams from the client to a closed port of the server, from one
	// thread per CPU; each is a NO_SOCKET drop in the server, as the flow's are.
	f, err := startFlood(floodSpec{
		From:    pair.Client,
		Src:     netip.AddrPortFrom(netip.MustParseAddr(testns.ClientV4), floodPort),
		Dst:     netip.AddrPortFrom(flow.Addr(), floodPort),
		Senders: runtime.NumCPU(),
		Raw:     true,
		Iface:   testns.Iface,
		DstMAC:  mac,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = f.Stop()
		}
	}()

	// The machine's rate with no tracer, to tell a slow machine from a slow diagnose.
	time.Sleep(300 * time.Millisecond)
	baseline, err := rate(counter, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	before, err := tracingPrograms()
	if err != nil {
		t.Fatal(err)
	}

	send, err := helperCommand("send", pair.Client, flow.String(), fmt.Sprint(flowDrops), flowEvery.String())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	argv := append([]string{"ip", "netns", "exec", pair.Server, bin, "--flow", flow.String(), "--proto", "udp",
		"--yes", "--format", "json", "-o", out, "--timeout", "60s", "--"}, send...)
	p, err := startProc("diagnose", "", argv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()

	// Peak memory: VmHWM, sampled until the process ends (read once samplerDone is closed);
	// wait4's maxrss covers the last moments.
	var hwm uint64
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.waited:
				return
			case <-tick.C:
				if m, err := readMemory(p.cmd.Process.Pid); err == nil {
					hwm = max(hwm, m.HWM)
				}
			}
		}
	}()

	// The flood's rate while diagnose is armed and the flow's drops happen: from "armed" to
	// the helper's last datagram.
	if _, _, err := p.waitLine("armed", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	n0, err := counter.Read()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	armed, err := tracingPrograms()
	if err != nil {
		t.Fatal(err)
	}
	mine := without(armed, before)
	if _, _, err := p.waitLine("pmbench-sent ", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	n1, err := counter.Read()
	if err != nil {
		t.Fatal(err)
	}
	window := time.Since(t0)
	// Someone else's tracer (another test binary's diagnose) slows the flood down too.
	var foreign []string
	if end, err := tracingPrograms(); err == nil {
		for _, name := range without(end, mine) {
			foreign = append(foreign, name)
		}
	}
	floodDrops := n1 - n0 - min(n1-n0, flowDrops) // NoPorts counts the flow's drops too
	underLoad := float64(floodDrops) / window.Seconds()
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatalf("diagnose: %v\n%s", err, p.output())
	}
	stopped = true
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	<-samplerDone
	_, maxrss, err := p.usage()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flood: %.0f drops/s with no tracer, %.0f drops/s (%d in %s) while diagnose was armed; diagnose peak RSS: VmHWM %s, wait4 %s",
		baseline, underLoad, floodDrops, window.Round(time.Millisecond), mib(hwm), mib(maxrss))

	rep, err := readReport(out)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, p.output())
	}
	k := rep.Stages.KernelDrop
	if k == nil {
		t.Fatalf("the report has no kernel_drop stage\nstderr:\n%s", p.output())
	}
	t.Logf("kernel_drop: seen %d, matched %d, lost %d, %d drops listed; arrival: %d in, %d socket drops; firewall: %d traces, %d lost",
		k.Seen, k.Matched, k.Lost, len(k.Drops), rep.Stages.Arrival.In, rep.Stages.Arrival.SocketDrops,
		len(rep.Stages.Firewall.Traces), rep.Stages.Firewall.Lost)

	// The load: without it the rest proves nothing.
	if underLoad < minFloodRate {
		t.Errorf("the flood made only %.0f drops/s while diagnose was armed (%.0f/s before it started); the test needs %d/s: "+
			"%s", underLoad, baseline, minFloodRate, loadVerdict(baseline, underLoad, foreign))
	}

	// Every drop of the flow, and only the flow's. The helper's exit status 0 says it sent
	// every datagram; each one sent to the closed port is dropped once.
	if rep.Run.ReproductionExit == nil || *rep.Run.ReproductionExit != 0 {
		t.Fatalf("the reproduction did not send its %d datagrams (exit %v):\n%s", flowDrops, rep.Run.ReproductionExit, p.output())
	}
	if k.Matched != flowDrops {
		t.Errorf("kernel_drop.matched = %d, want %d: every drop of the flow (lost %d in the ring buffer, shown in the report: %v)",
			k.Matched, flowDrops, k.Lost, k.Lost > 0)
	}
	if uint64(len(k.Drops))+k.Lost != k.Matched {
		t.Errorf("the report lists %d drops and %d lost of %d matched: events went missing without being counted", len(k.Drops), k.Lost, k.Matched)
	}
	if k.Lost != 0 {
		t.Errorf("kernel_drop.lost = %d: the ring buffer could not take the flow's drops (the report shows it: %q)", k.Lost, k.Notes)
	}
	for _, d := range k.Drops {
		if d.Dst != netip.AddrPortFrom(flow.Addr(), flowPort) || d.Reason != "NO_SOCKET" || d.Elsewhere {
			t.Errorf("a drop that is not one of the flow's datagrams in the server: %+v", d)
			break
		}
	}
	// The flood went through the program and stayed in the kernel: seen counts every
	// kfree_skb on the host while it was attached, matched only the flow's.
	if k.Seen < floodDrops {
		t.Errorf("kernel_drop.seen = %d while the flood made %d drops in the window alone: the program did not see the flood", k.Seen, floodDrops)
	}

	// Loss anywhere else is shown, and there is none. The capture's filter runs in the
	// kernel, so the flood never even reaches its socket.
	if a := rep.Stages.Arrival; a == nil || a.In != flowDrops || a.SocketDrops != 0 || a.Error != "" {
		t.Errorf("arrival = %+v, want %d packets in and no socket drops", a, flowDrops)
	}
	if fw := rep.Stages.Firewall; fw == nil || fw.Lost != 0 || fw.Error != "" {
		t.Errorf("firewall lost %d trace events (error %q): want none", fw.Lost, fw.Error)
	}
	if ps := rep.Stages.Path; ps != nil && ps.Lost != 0 {
		t.Errorf("path lost %d events: want none", ps.Lost)
	}
	checkPathOnlyFlow(t, rep, flowPort)

	if v := rep.Verdict; v.Outcome != string(verdict.Dropped) || v.Stage != string(verdict.Socket) || v.Reason == nil || *v.Reason != "NO_SOCKET" {
		t.Errorf("verdict %s/%s/%v, want dropped/socket/NO_SOCKET", v.Outcome, v.Stage, v.Reason)
	}

	if peak := max(hwm, maxrss); peak >= maxRSS {
		t.Errorf("diagnose's peak RSS is %s (VmHWM sampled %s, wait4 maxrss %s), want under %s", mib(peak), mib(hwm), mib(maxrss), mib(maxRSS))
	}
}

// loadVerdict says whose fault a flood below the target is.
func loadVerdict(baseline, underLoad float64, foreign []string) string {
	var s string
	if baseline < minFloodRate {
		s = "this machine cannot make that many with no tracer either: the claim is untested here, not disproved"
	} else {
		s = fmt.Sprintf("the machine made enough with no tracer: diagnose cost %.0f%% of the flood's rate", 100*(1-underLoad/baseline))
	}
	if len(foreign) > 0 {
		slices.Sort(foreign)
		s += fmt.Sprintf(" (other tracing programs were loaded meanwhile, another test's perhaps: %s)", strings.Join(slices.Compact(foreign), ", "))
	}
	return s
}

// checkPathOnlyFlow fails when a path event of another flow reached the report.
func checkPathOnlyFlow(t *testing.T, rep *report.Report, port uint16) {
	t.Helper()
	if rep.Stages.Path == nil {
		return
	}
	for _, e := range rep.Stages.Path.Events {
		if e.Src.Port() != port && e.Dst.Port() != port {
			t.Errorf("a path event of another flow reached the report: %+v", e)
			return
		}
	}
}

// rate is the counter's increase per second over d.
func rate(c *noPorts, d time.Duration) (float64, error) {
	n0, err := c.Read()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(d)
	n1, err := c.Read()
	if err != nil {
		return 0, err
	}
	return float64(n1-n0) / time.Since(t0).Seconds(), nil
}

var (
	buildOnce sync.Once
	built     string
	buildErr  error
	buildDir  string
)

// buildDiagnose builds the binary once per test binary, as a user gets it.
func buildDiagnose(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pmbench-test-")
		if buildErr != nil {
			return
		}
		built = filepath.Join(buildDir, "diagnose")
		cmd := exec.Command("go", "build", "-o", built, "github.com/packetmortem/packetmortem/cmd/diagnose")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build diagnose: %w\n%s", err, strings.TrimSpace(string(out)))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}
