package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// The tests in this file need no privilege.

const snmp = `Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 1834
Icmp: InMsgs InErrors
Icmp: 3 0
Udp: InDatagrams NoPorts InErrors RcvbufErrors
Udp: 10 123456789 0 0
UdpLite: InDatagrams NoPorts InErrors
UdpLite: 0 7 0
`

func TestSNMPCounter(t *testing.T) {
	t.Parallel()
	if n, err := snmpCounter([]byte(snmp), "Udp", "NoPorts"); err != nil || n != 123456789 {
		t.Errorf("Udp NoPorts = %d, %v; want 123456789", n, err)
	}
	// UdpLite's NoPorts is not Udp's.
	if n, err := snmpCounter([]byte(snmp), "UdpLite", "NoPorts"); err != nil || n != 7 {
		t.Errorf("UdpLite NoPorts = %d, %v; want 7", n, err)
	}
	for _, c := range []struct{ text, group, name string }{
		{snmp, "Tcp", "InSegs"},
		{snmp, "Udp", "Nothing"},
		{"Udp: InDatagrams NoPorts\nUdp: 1\n", "Udp", "NoPorts"},
		{"Udp: InDatagrams NoPorts\n", "Udp", "NoPorts"},
	} {
		if n, err := snmpCounter([]byte(c.text), c.group, c.name); err == nil {
			t.Errorf("%s %s in %q = %d, want an error", c.group, c.name, c.text, n)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// The command name may hold spaces and parentheses: fields count from the last ')'.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 9 0 123 456 789\n"
	if d, err := parseStatCPU([]byte(line)); err != nil || d != 2*time.Second {
		t.Errorf("cpu = %s, %v; want 2s (150+50 ticks)", d, err)
	}
	for _, bad := range []string{"4242 no parens", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	status := "Name:\tdiagnose\nVmPeak:\t 1300000 kB\nVmHWM:\t   65536 kB\nVmRSS:\t   40960 kB\nThreads:\t7\n"
	m, err := parseStatus([]byte(status))
	if err != nil || m.HWM != 64<<20 || m.RSS != 40<<20 {
		t.Errorf("status = %+v, %v; want HWM 64 MiB, RSS 40 MiB", m, err)
	}
	// A kernel thread, or a zombie, has no memory lines.
	if _, err := parseStatus([]byte("Name:\tkthreadd\nState:\tS\n")); err == nil {
		t.Error("no VmRSS: no error")
	}
	if _, err := parseStatus([]byte("VmHWM:\t12 MB\nVmRSS:\t1 kB\n")); err == nil {
		t.Error("a unit other than kB: no error")
	}
}

func TestUDPPacket(t *testing.T) {
	t.Parallel()
	src := netip.MustParseAddrPort("198.51.100.1:40000")
	dst := netip.MustParseAddrPort("198.51.100.2:9")
	p := udpPacket(src, dst, "hello")
	if len(p) != 20+8+5 {
		t.Fatalf("length %d", len(p))
	}
	// A correct IPv4 header sums to 0xffff in one's complement, its checksum included.
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	if sum != 0xffff {
		t.Errorf("IPv4 header checksum is wrong: sum %#x", sum)
	}
	if p[0] != 0x45 || p[9] != 17 || binary.BigEndian.Uint16(p[2:]) != uint16(len(p)) {
		t.Errorf("IPv4 header % x", p[:20])
	}
	if !bytes.Equal(p[12:16], []byte{198, 51, 100, 1}) || !bytes.Equal(p[16:20], []byte{198, 51, 100, 2}) {
		t.Errorf("addresses % x", p[12:20])
	}
	if binary.BigEndian.Uint16(p[20:]) != 40000 || binary.BigEndian.Uint16(p[22:]) != 9 ||
		binary.BigEndian.Uint16(p[24:]) != 13 || binary.BigEndian.Uint16(p[26:]) != 0 {
		t.Errorf("UDP header % x: want ports 40000 -> 9, length 13, no checksum", p[20:28])
	}
	if string(p[28:]) != "hello" {
		t.Errorf("payload %q", p[28:])
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	xs := []time.Duration{5, 1, 4, 2, 3}
	if m := median(xs); m != 3 || xs[0] != 5 {
		t.Errorf("median = %v, input %v (must not be sorted in place)", m, xs)
	}
}

func TestHelperStamp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	before := monotonic()
	if code := runHelper([]string{"stamp"}, &out); code != 0 {
		t.Fatalf("stamp: exit %d: %s", code, out.String())
	}
	line := strings.TrimSpace(out.String())
	ns, err := strconv.ParseInt(strings.TrimPrefix(line, stampPrefix), 10, 64)
	if !strings.HasPrefix(line, stampPrefix) || err != nil {
		t.Fatalf("stamp wrote %q", line)
	}
	if d := time.Duration(ns); d < before || d > monotonic() {
		t.Errorf("stamp %s is not between %s and now", d, before)
	}
}

func TestHelperBadArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"stamp", "soon"}, {"send", "ns", "198.51.100.2:9", "x", "1s"}, {"send", "ns", "[2001:db8::2]:9", "1", "1s"}, {"dance"}} {
		if code := runHelper(args, io.Discard); code != 2 {
			t.Errorf("helper %q: exit %d, want 2", args, code)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-runs", "3", "-window", "2s", "-diagnose", "./diagnose"}, io.Discard)
	if err != nil || c.runs != 3 || c.window != 2*time.Second || c.repeats != 12 || c.settle != time.Second || c.diagnose != "./diagnose" || !c.raw || c.baseline != "" {
		t.Errorf("config %+v, %v", c, err)
	}
	// make bench passes BASELINE as it is, empty when there is no tag.
	for _, args := range [][]string{{"-baseline", "v0.3.0"}, {"-baseline", ""}, {"-baseline=539e901"}} {
		c, err := parseFlags(args, io.Discard)
		if want := strings.TrimPrefix(args[len(args)-1], "-baseline="); err != nil || c.baseline != want {
			t.Errorf("%q: baseline %q, %v; want %q", args, c.baseline, err, want)
		}
	}
	for _, bad := range [][]string{{"-runs", "0"}, {"-window", "1ms"}, {"extra"}, {"-nope"}, {"-baseline", "--output=x"}, {"-baseline"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDelta(t *testing.T) {
	t.Parallel()
	before := map[ebpf.ProgramID]progRun{1: {"a", 10, 100}, 2: {"b", 0, 0}}
	after := map[ebpf.ProgramID]progRun{1: {"a", 30, 300}, 2: {"b", 5, 1000}, 3: {"a", 1, 10}}
	got := delta(before, after)
	if len(got) != 2 || got[0] != (progRun{"b", 5, 1000}) || got[1] != (progRun{"a", 21, 210}) {
		t.Errorf("delta = %+v; want b then a (costliest first), a's two programs added up", got)
	}
}

func TestPrint(t *testing.T) {
	t.Parallel()
	r := &results{
		Machine:  "Some CPU, 2 cores, 24 GiB, Linux 6.18 x86_64",
		Versions: []string{"diagnose v1", "bpftrace v0.17.0", "perf version 6.1"},
		Armed: map[string][]time.Duration{
			diagnose: {30 * time.Millisecond, 28 * time.Millisecond, 35 * time.Millisecond},
			bpftrace: {2 * time.Second, time.Second, 3 * time.Second},
			perf:     {200 * time.Millisecond},
		},
		ArmedReport: map[string][]time.Duration{diagnose: {25 * time.Millisecond}},
		Here: overhead{
			Rates:   map[string][]float64{none: {400e3, 410e3, 390e3}, diagnose: {380e3, 390e3}, tapFloor: {390e3}, bpftrace: {200e3}, perf: {300e3}},
			Ratios:  map[string][]float64{diagnose: {0.95, 0.96}, tapFloor: {0.97}, bpftrace: {0.5}, perf: {0.75}},
			Foreign: []string{"no-tracer window 2: kfree_skb_btf"},
		},
		Elsewhere: overhead{
			Rates:  map[string][]float64{none: {500e3, 520e3}, diagnose: {490e3}},
			Ratios: map[string][]float64{diagnose: {0.98}},
		},
		Diag: map[string][]measured{diagnose: {{cpu: 50 * time.Millisecond, cpuRun: 300 * time.Millisecond, hwm: 40 << 20, maxRSS: 60 << 20, seen: 2_000_000, method: "tcx"}}},
		Programs: map[string]programs{
			diagnose: {[]progRun{{"route_btf", 5_000_000, time.Second}, {"copied_btf", 3, 300}}, 1_000_000},
		},
		Took: 100 * time.Second,
	}
	var out bytes.Buffer
	r.print(&out, &config{runs: 3, repeats: 3, window: 5 * time.Second, warmup: time.Second, settle: time.Second, senders: 2})
	for _, want := range []string{
		"Machine: Some CPU, 2 cores",
		"| `diagnose --flow ADDR:PORT --yes -- CMD` (until CMD starts) | 30 ms | 28 ms-35 ms |",
		"(until BEGIN fires) | 2000 ms | 1000 ms-3000 ms |",
		"median 25 ms",
		"| none | 400k | 1.000 | windows from 390k to 410k |",
		"| floor: a packet socket on diagnose's namespace whose filter refuses every packet (any AF_PACKET capture's least cost) | 390k | 0.970 (-3.0%) | 0.970 |",
		"| none | 520k | 1.000 | windows from 500k to 520k |",
		"| diagnose, diagnosing another flow (capture on tcx) | 490k | 0.980 (-2.0%) | 0.980 |",
		"| diagnose, diagnosing another flow (capture on tcx) | 390k | 0.960 (-4.0%) | 0.950, 0.960 |",
		"| `perf record -e skb:kfree_skb -a` | 300k | 0.750 (-25.0%) | 0.750 |",
		"| CPU during a 5s window (utime+stime, /proc/PID/stat) | 50 ms (1.0% of one core) |",
		"| peak RSS over the whole run, report included (wait4 maxrss) | 60.0 MiB |",
		"| kfree_skb events: seen in the kernel, passed to user space | 2000k, 0 |",
		"| route_btf | 5.00 | 200 | 1000 |",
		"| others (copied_btf) | | | 0 |",
		"Caution: someone else's tracing programs were loaded during 1 windows",
		"The bench took 1m40s.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, unwanted := range []string{"baseline", "Caution: diagnose"} {
		if strings.Contains(out.String(), unwanted) {
			t.Errorf("table with no baseline says %q:\n%s", unwanted, out.String())
		}
	}
}

// TestPrintBaseline: each baseline row follows its current twin, named after the ref and
// its hash; a row whose flags the old binary lacks says so; one line per capture method
// gives the current flood ratio over the baseline's.
func TestPrintBaseline(t *testing.T) {
	r := &results{
		Machine:     "Some CPU, 2 cores, 24 GiB, Linux 6.18 x86_64",
		Versions:    []string{"diagnose v2", "diagnose v1 (baseline)", "bpftrace v0.17.0", "perf version 6.1"},
		Armed:       map[string][]time.Duration{diagnose: {30 * time.Millisecond}, baselineTCX: {40 * time.Millisecond, 44 * time.Millisecond}},
		ArmedReport: map[string][]time.Duration{diagnose: {25 * time.Millisecond}, baselineTCX: {33 * time.Millisecond}},
		Here: overhead{
			Rates: map[string][]float64{none: {400e3, 410e3}, diagnose: {380e3, 390e3}, baselineTCX: {390e3, 400e3}, diagnoseSocket: {370e3}},
			Ratios: map[string][]float64{
				diagnose: {0.95, 0.96}, baselineTCX: {0.98, 0.97},
				diagnoseSocket: {0.93},
			},
		},
		Elsewhere: overhead{
			Rates:  map[string][]float64{none: {500e3}, diagnose: {490e3}, baselineTCX: {480e3}},
			Ratios: map[string][]float64{diagnose: {0.98}, baselineTCX: {0.96}},
		},
		NAT: overhead{
			Rates:  map[string][]float64{none: {300e3}, diagnose: {280e3}, baselineTCX: {285e3}},
			Ratios: map[string][]float64{diagnose: {0.94}, baselineTCX: {0.95}},
		},
		Diag: map[string][]measured{
			diagnose:    {{cpu: 50 * time.Millisecond, hwm: 40 << 20, seen: 2_000_000, method: "tcx"}},
			baselineTCX: {{cpu: 70 * time.Millisecond, hwm: 30 << 20, seen: 1_000_000, method: "AF_PACKET socket"}, {method: "tcx"}},
		},
		Programs: map[string]programs{
			diagnose:    {[]progRun{{"capture_ingress", 1_000_000, 70 * time.Millisecond}}, 1_000_000},
			baselineTCX: {[]progRun{{"capture_ingress", 1_000_000, 90 * time.Millisecond}}, 1_000_000},
		},
		Baseline: &baseline{ref: "v1", commit: "539e901aaaa", short: "539e901", lacks: map[string][]string{baselineSocket: {"--capture"}}},
		Took:     time.Minute,
	}
	var out bytes.Buffer
	r.print(&out, &config{runs: 1, repeats: 2, window: time.Second, settle: time.Second, senders: 2})
	text := out.String()
	for _, want := range []string{
		"Tools: diagnose v2; diagnose v1 (baseline); bpftrace",
		"| `diagnose --flow ADDR:PORT --yes -- CMD` (until CMD starts) | 30 ms | 30 ms-30 ms |\n" +
			"| diagnose (v1 539e901), the same command (until CMD starts) | 44 ms | 40 ms-44 ms |\n",
		"median 25 ms; diagnose (v1 539e901)'s: median 33 ms.",
		"| diagnose, diagnosing another flow (capture on tcx) | 390k | 0.960 (-4.0%) | 0.950, 0.960 |\n" +
			"| diagnose (v1 539e901), diagnosing another flow (capture on tcx) | 400k | 0.980 (-2.0%) | 0.980, 0.970 |\n" +
			"| diagnose --capture socket (the fallback: an AF_PACKET capture) | 370k | 0.930 (-7.0%) | 0.930 |\n" +
			"| diagnose (v1 539e901) --capture socket (the fallback: an AF_PACKET capture) | not measured: it has no --capture | | |\n",
		"\nflood ratio: 0.980 of baseline (tcx)\n",
		"\nflood ratio: no baseline (socket): diagnose (v1 539e901) has no --capture\n",
		"\nflood ratio: 1.021 of baseline (tcx, flood elsewhere)\n",
		"\nflood ratio: 0.989 of baseline (tcx, flood through NAT)\n",
		"\nNAT: diagnose's ratio 0.940 through NAT, 0.960 without (the first table): -2.0 points, more than one point lower.\n",
		"| | diagnose | diagnose (v1 539e901) |\n|---|---|---|\n",
		"| CPU during a 1s window (utime+stime, /proc/PID/stat) | 50 ms (5.0% of one core) | 70 ms (7.0% of one core) |",
		"| peak RSS until the end of the window (VmHWM) | 40.0 MiB | 30.0 MiB |",
		"Where diagnose's kernel time goes",
		"Where diagnose (v1 539e901)'s kernel time goes",
		"| capture_ingress | 1.00 | 90 | 90 |",
		"Caution: diagnose (v1 539e901) captured with AF_PACKET socket, not tcx, in 1 of its 2 windows",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	// The elsewhere and NAT floods measure no socket capture: no line for them there.
	if strings.Count(text, "flood ratio:") != 4 {
		t.Errorf("want 4 flood ratio lines:\n%s", text)
	}
}

func TestBaselineName(t *testing.T) {
	for _, c := range []struct{ ref, want string }{
		{"v0.3.0", "v0.3.0 539e901"},
		{"539e901", "539e901"},
		{"539E901AA", "539e901"},
		{"HEAD~2", "HEAD~2 539e901"},
	} {
		bl := &baseline{ref: c.ref, commit: "539e901aa0", short: "539e901"}
		if got := bl.name(); got != c.want {
			t.Errorf("ref %s: name %q, want %q", c.ref, got, c.want)
		}
	}
}

func TestWithTwins(t *testing.T) {
	all := func(string) bool { return true }
	if got := withTwins(tracers, all); !slices.Equal(got, []string{diagnose, baselineTCX, diagnoseSocket, baselineSocket, tcxFloor, tapFloor, kfreeFloor, hooksFloor, bpftrace, perf}) {
		t.Errorf("with twins: %q", got)
	}
	var bl *baseline // none
	if got := withTwins(tracers, bl.measures); !slices.Equal(got, tracers) {
		t.Errorf("no baseline: %q", got)
	}
	bl = &baseline{lacks: map[string][]string{baselineSocket: {"--capture"}}}
	if got := withTwins(tracers, bl.measures); !slices.Equal(got[:3], []string{diagnose, baselineTCX, diagnoseSocket}) || slices.Contains(got, baselineSocket) {
		t.Errorf("a baseline without --capture: %q", got)
	}
}

func TestDiagnoseArgv(t *testing.T) {
	b := &bench{cfg: &config{diagnose: "/new/diagnose"}, base: &baseline{bin: "/tmp/diagnose-539e901"}}
	for tr, want := range map[string]string{
		diagnose:       "/new/diagnose --flow",
		diagnoseSocket: "/new/diagnose --capture socket --flow",
		baselineTCX:    "/tmp/diagnose-539e901 --flow",
		baselineSocket: "/tmp/diagnose-539e901 --capture socket --flow",
	} {
		argv := strings.Join(b.diagnoseArgv(tr, quietPort, "r.json", []string{"cmd"}), " ")
		if !strings.HasPrefix(argv, want+" 198.51.100.2:7002 ") || !strings.HasSuffix(argv, " -o r.json --force --timeout 5m -- cmd") {
			t.Errorf("%s: %s", tr, argv)
		}
	}
}

// TestUndefinedFlags runs a stand-in for an old diagnose that has no --capture.
func TestUndefinedFlags(t *testing.T) {
	old := filepath.Join(t.TempDir(), "diagnose")
	script := "#!/bin/sh\nfor a; do case $a in --capture|--bogus) echo \"diagnose: flag provided but not defined: ${a#-}\" >&2; exit 2;; esac; done\necho Usage >&2\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &bench{cfg: &config{}, base: &baseline{bin: old}}
	missing, err := undefinedFlags(context.Background(), b.diagnoseArgv(baselineSocket, quietPort, "r.json", []string{"--bogus"}))
	if err != nil || !slices.Equal(missing, []string{"--capture"}) {
		t.Errorf("socket row: missing %q, %v; want --capture (the workload's arguments are not diagnose's)", missing, err)
	}
	if missing, err := undefinedFlags(context.Background(), b.diagnoseArgv(baselineTCX, quietPort, "r.json", nil)); err != nil || len(missing) > 0 {
		t.Errorf("tcx row: missing %q, %v; want none", missing, err)
	}
	if _, err := undefinedFlags(context.Background(), []string{filepath.Join(t.TempDir(), "absent"), "--yes"}); err == nil {
		t.Error("absent binary: no error")
	}
}

func TestLoadVerdict(t *testing.T) {
	t.Parallel()
	if s := loadVerdict(150e3, 100e3, nil); !strings.Contains(s, "cannot make that many") {
		t.Errorf("slow machine: %s", s)
	}
	if s := loadVerdict(400e3, 100e3, []string{"b", "a", "b"}); !strings.Contains(s, "diagnose cost 75%") || !strings.Contains(s, "a, b)") {
		t.Errorf("slow diagnose: %s", s)
	}
}
