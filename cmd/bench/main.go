// Command bench measures diagnose against the tools it replaces, on this machine, in one
// go: how long each takes to arm, how much an unrelated flood of kernel drops slows down
// while each traces, and diagnose's own CPU and memory under that flood. It prints the
// machine and a Markdown table.
//
// It needs root, ip (iproute2), bpftrace and perf (linux-perf); it makes two pairs of network
// namespaces, each joined by a veth pair (198.51.100.0/24, 203.0.113.0/24), and removes them,
// and every process it starts, when it ends, fails or is interrupted.
//
// With -baseline REF it also builds diagnose as it was at REF (a tag or commit; git archive
// into its temporary directory, removed at the end) and measures it beside the current one,
// each of its windows next to the current one's, and says how the flood ratios compare.
//
//	go run ./cmd/bench [-diagnose ./diagnose] [-baseline REF] [-runs 5] [-repeats 12] [-window 1s]
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/packetmortem/packetmortem/report"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		os.Exit(runHelper(os.Args[2:], os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	diagnose string
	baseline string // a git ref; empty: none
	runs     int
	repeats  int
	window   time.Duration
	warmup   time.Duration
	settle   time.Duration
	senders  int
	raw      bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.diagnose, "diagnose", "", "the diagnose binary to measure (default: build ./cmd/diagnose)")
	fs.StringVar(&c.baseline, "baseline", "", "also build diagnose at git `REF` (a tag or commit) and measure it beside the current one")
	fs.IntVar(&c.runs, "runs", 5, "time-to-armed runs per tool (the median is shown)")
	fs.IntVar(&c.repeats, "repeats", 12, "flood windows per tracer (the median is shown)")
	fs.DurationVar(&c.window, "window", time.Second, "length of one flood measurement")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "flood time before the first window")
	fs.DurationVar(&c.settle, "settle", time.Second, "pause after a tracer arms and after it ends, before the next window")
	fs.IntVar(&c.senders, "senders", runtime.NumCPU(), "flood senders, one thread each")
	fs.BoolVar(&c.raw, "raw", true, "flood from packet sockets (cheaper per drop than UDP sockets)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// A ref that starts with "-" would reach git as an option.
	if fs.NArg() > 0 || c.runs < 1 || c.repeats < 1 || c.window < 100*time.Millisecond || c.senders < 1 ||
		strings.HasPrefix(c.baseline, "-") {
		return nil, fmt.Errorf("bad arguments %q", args)
	}
	return c, nil
}

// Ports of the bench: the flood's closed port, and the closed ports of the flows diagnose
// watches meanwhile (nothing is sent to those).
const (
	floodPort = 9
	armPort   = 7001
	quietPort = 7002
)

// The one-liners diagnose is compared with: every kfree_skb on the host, printed.
const (
	bpftraceProbe = `tracepoint:skb:kfree_skb { printf("%p %d\n", args->location, args->reason); }`
	bpftraceArmed = `BEGIN { printf("pmbench-begin %lld\n", nsecs); exit(); } ` + bpftraceProbe
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := checkHost(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "pmbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cfg.diagnose == "" {
		cfg.diagnose = filepath.Join(tmp, "diagnose")
		fmt.Fprintln(stderr, "bench: building diagnose")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", cfg.diagnose, "github.com/packetmortem/packetmortem/cmd/diagnose")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build diagnose: %w\n%s", err, out)
		}
	} else if cfg.diagnose, err = filepath.Abs(cfg.diagnose); err != nil {
		return err
	}
	b := &bench{cfg: cfg, tmp: tmp, log: stderr}
	if cfg.baseline == "" {
		fmt.Fprintln(stderr, noBaseline)
	} else if err := b.buildBaseline(ctx); err != nil {
		return err
	}
	unmount, err := ensureTracefs()
	if err != nil {
		return err
	}
	defer unmount()

	l, err := newLab("", clientV4, serverV4)
	if err != nil {
		return err
	}
	defer l.Close()
	other, err := newLab("o", otherClientV4, otherServerV4)
	if err != nil {
		return err
	}
	defer other.Close()
	nat, err := newNATLab("n")
	if err != nil {
		return err
	}
	defer nat.Close()
	b.lab, b.other, b.nat = l, other, nat
	start := time.Now()
	res := &results{Machine: machine(), Versions: versions(cfg.diagnose, b.base), Baseline: b.base}
	if err := b.timeToArmed(ctx, res); err != nil {
		return err
	}
	if err := b.measureOverhead(ctx, res); err != nil {
		return err
	}
	res.Took = time.Since(start)
	res.print(stdout, cfg)
	return nil
}

// checkHost says what is missing before anything is made.
func checkHost() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (BPF, namespaces, perf -a): run it with sudo")
	}
	var missing []string
	for cmd, pkg := range map[string]string{"ip": "iproute2", "nft": "nftables", "bpftrace": "bpftrace", "perf": "linux-perf"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", cmd, pkg))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("missing %s: install with `apt-get install bpftrace linux-perf iproute2 nftables`", strings.Join(missing, ", "))
	}
	return nil
}

// ensureTracefs mounts tracefs where perf looks for it, when it is not there, and returns
// what undoes that.
func ensureTracefs() (func(), error) {
	const dir = "/sys/kernel/tracing"
	if _, err := os.Stat(dir + "/events"); err == nil {
		return func() {}, nil
	}
	if err := syscall.Mount("nodev", dir, "tracefs", 0, ""); err != nil {
		return nil, fmt.Errorf("perf needs tracefs: mount -t tracefs nodev %s: %w", dir, err)
	}
	return func() { _ = syscall.Unmount(dir, 0) }, nil
}

// buildBaseline builds the baseline, and finds which of its rows' flags it lacks.
func (b *bench) buildBaseline(ctx context.Context) error {
	fmt.Fprintf(b.log, "bench: building diagnose at %s (the baseline)\n", b.cfg.baseline)
	bl, err := buildBaseline(ctx, b.cfg.baseline, b.tmp)
	if err != nil {
		return err
	}
	b.base = bl
	bl.lacks = map[string][]string{}
	for _, tr := range []string{baselineTCX, baselineSocket} {
		missing, err := undefinedFlags(ctx, b.diagnoseArgv(tr, quietPort, "report.json", nil))
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		if len(missing) > 0 {
			bl.lacks[tr] = missing
			fmt.Fprintf(b.log, "bench: diagnose (%s) has no %s: its %s row is not measured\n", bl.name(), strings.Join(missing, ", "), captureOf[twinOf(tr)])
		}
	}
	return nil
}

// versions names what is measured: diagnose's version line, its baseline's, bpftrace's and perf's.
func versions(diagnose string, base *baseline) []string {
	var v []string
	argvs := [][]string{{diagnose, "--version"}, {"bpftrace", "--version"}, {"perf", "version"}}
	if base != nil {
		argvs = slices.Insert(argvs, 1, []string{base.bin, "--version"})
	}
	for _, argv := range argvs {
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		line := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		if err != nil || line == "" {
			line = argv[0] + " (version unknown)"
		}
		if base != nil && argv[0] == base.bin {
			line += " (baseline)"
		}
		v = append(v, line)
	}
	return v
}

type bench struct {
	cfg *config
	lab *lab // diagnose's namespace is lab.server
	// other is a second pair, whose flood passes none of diagnose's namespace.
	other *lab
	// nat is a third, whose server DNATs its flood into a container namespace.
	nat  *lab
	tmp  string
	log  io.Writer
	base *baseline // nil: no baseline
}

// results is what the table shows.
type results struct {
	Machine  string
	Versions []string
	// Armed: per tool, each run's time from launch until it traces.
	Armed map[string][]time.Duration
	// ArmedReport: per diagnose tracer, what it says itself (the report's armed_ms).
	ArmedReport map[string][]time.Duration
	// Here is the flood through diagnose's namespace; Elsewhere the flood between the
	// other pair, diagnose and the flood then sharing only the host; NAT the flood DNATed
	// through diagnose's namespace into a container behind it.
	Here, Elsewhere, NAT overhead
	// Diag is each window of Here, per tracer measured in full (diagnose and its baseline).
	Diag map[string][]measured
	// Programs is, per tracer measured in full, its programs over a window with BPF
	// statistics on; NATPrograms diagnose's under the flood through NAT.
	Programs    map[string]programs
	NATPrograms programs
	Baseline    *baseline // nil: none
	Took        time.Duration
}

// programs is what a tracer's BPF programs ran while the flood made drops drops.
type programs struct {
	runs  []progRun
	drops uint64
}

// overhead is what one flood measured.
type overhead struct {
	// Rates: per tracer, each window's drops per second.
	Rates map[string][]float64
	// Ratios: per tracer, each window's rate over the mean of the no-tracer windows beside it.
	Ratios map[string][]float64
	// Foreign lists the windows during which someone else's tracing programs were loaded.
	Foreign []string
}

// Tracer names, in table order.
const (
	none     = "none"
	diagnose = "diagnose"
	// diagnoseSocket is diagnose capturing with its fallback, the packet socket.
	diagnoseSocket = "diagnose-socket"
	// The floors: what diagnose's two hooks on every packet cost at the least, whatever a
	// tool does in them. tcxFloor is a program that returns at once on the ingress and
	// egress of the namespace's interfaces, as diagnose's capture attaches; tapFloor a packet
	// socket on diagnose's namespace whose filter refuses every packet at its first
	// instruction (the fallback's hook); kfreeFloor an empty program on tp_btf/kfree_skb.
	tcxFloor   = "tcx-floor"
	tapFloor   = "tap-floor"
	kfreeFloor = "kfree-floor"
	// hooksFloor is all of diagnose's hooks on every packet at once, empty: tcx, kfree_skb
	// and net_dev_queue; measured under the plain flood and the flood through NAT.
	hooksFloor = "hooks-floor"
	bpftrace   = "bpftrace"
	perf       = "perf"
)

// tracers are compared under the flood through diagnose's namespace; elsewhereTracers under
// the flood elsewhere, where the others cost what they cost here (they trace the whole host).
var (
	tracers          = []string{diagnose, diagnoseSocket, tcxFloor, tapFloor, kfreeFloor, hooksFloor, bpftrace, perf}
	elsewhereTracers = []string{diagnose}
	natTracers       = []string{diagnose, hooksFloor}
)

// inFull says whether tracer tr is measured in full (its CPU, memory and report, beside the
// flood's rate): diagnose as it runs by default, on tcx, and its baseline.
func inFull(tr string) bool { return tr == diagnose || tr == baselineTCX }

// twinOf is the current diagnose tracer a baseline tracer is the twin of.
func twinOf(tr string) string {
	for cur, twin := range twins {
		if twin == tr {
			return cur
		}
	}
	return tr
}

// diagnoseArgv is the command line of diagnose tracer tr: the current binary or the
// baseline's, with the capture flags of its row.
func (b *bench) diagnoseArgv(tr string, port int, out string, workload []string) []string {
	argv := []string{b.cfg.diagnose}
	if tr == baselineTCX || tr == baselineSocket {
		argv[0] = b.base.bin
	}
	if twinOf(tr) == diagnoseSocket {
		argv = append(argv, "--capture", "socket")
	}
	argv = append(argv, "--flow", fmt.Sprintf("%s:%d", serverV4, port), "--proto", "udp",
		"--yes", "--format", "json", "-o", out, "--force", "--timeout", "5m", "--")
	return append(argv, workload...)
}

// timeToArmed launches each tool cfg.runs times on an idle machine and times it from the
// fork until it traces: diagnose and perf until the workload they start once armed runs,
// bpftrace until its BEGIN probe fires (after every other probe is attached).
func (b *bench) timeToArmed(ctx context.Context, res *results) error {
	res.Armed = map[string][]time.Duration{}
	res.ArmedReport = map[string][]time.Duration{}
	stamp, err := helperCommand("stamp")
	if err != nil {
		return err
	}
	perfData := filepath.Join(b.tmp, "armed.perf.data")
	for i := range b.cfg.runs {
		fmt.Fprintf(b.log, "bench: time to armed, run %d of %d\n", i+1, b.cfg.runs)
		// diagnose, as a user runs it: in the namespace of the flow; then its baseline.
		for _, tr := range withTwins([]string{diagnose}, b.base.measures) {
			out := filepath.Join(b.tmp, "armed.json")
			d, err := armedAfter(tr, b.lab.server, b.diagnoseArgv(tr, armPort, out, stamp), 30*time.Second)
			if err != nil {
				return err
			}
			res.Armed[tr] = append(res.Armed[tr], d)
			if rep, err := readReport(out); err == nil {
				res.ArmedReport[tr] = append(res.ArmedReport[tr], time.Duration(rep.Run.ArmedMS)*time.Millisecond)
			}
		}

		p, err := startProc(bpftrace, "", []string{"bpftrace", "-e", bpftraceArmed}, nil)
		if err != nil {
			return err
		}
		line, _, err := p.waitLine("pmbench-begin ", 60*time.Second)
		if err == nil {
			err = p.wait(30 * time.Second)
		}
		if err != nil {
			p.kill()
			return fmt.Errorf("bpftrace: %w", err)
		}
		ns, err := strconv.ParseInt(strings.TrimPrefix(line, "pmbench-begin "), 10, 64)
		if err != nil {
			return fmt.Errorf("bpftrace: bad BEGIN line %q", line)
		}
		res.Armed[bpftrace] = append(res.Armed[bpftrace], time.Duration(ns)-p.launched)

		d, err := armedAfter(perf, "", append([]string{"perf", "record", "-e", "skb:kfree_skb", "-a", "-o", perfData, "--"}, stamp...), 60*time.Second)
		if err != nil {
			return err
		}
		res.Armed[perf] = append(res.Armed[perf], d)
		os.Remove(perfData)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// armedAfter runs argv, a tool whose workload is the stamp helper, in namespace ns until
// it ends, and returns how long after the launch the workload ran.
func armedAfter(name, ns string, argv []string, timeout time.Duration) (time.Duration, error) {
	p, err := startProc(name, ns, argv, nil)
	if err != nil {
		return 0, err
	}
	d, err := p.stamp(timeout)
	if err == nil {
		err = p.wait(timeout)
	}
	if err != nil {
		p.kill()
		return 0, fmt.Errorf("%s: %w\n%s", name, err, p.output())
	}
	return d, nil
}

// measureOverhead measures what each tracer costs an unrelated flood, three times: with the
// flood through diagnose's namespace (its capture sees every packet of it), with the flood
// between two other namespaces (only the kfree_skb program sees it), and with the flood
// DNATed through diagnose's namespace into a container behind it (every datagram has a
// translated conntrack entry, which diagnose's learning program reads). A last diagnose
// window under the first flood runs with BPF statistics on, to say which of its programs
// the time goes to (statistics cost time themselves, so no rate is taken from it).
func (b *bench) measureOverhead(ctx context.Context, res *results) error {
	full := withTwins([]string{diagnose}, b.base.measures)
	res.Programs = map[string]programs{}
	stats := func(f *flood, counter *noPorts) error {
		for _, tr := range full {
			fmt.Fprintf(b.log, "bench: window with BPF statistics, tracer %s\n", tr)
			w, err := b.traced(ctx, tr, b.lab.server, counter, f, true)
			if err != nil {
				return err
			}
			res.Programs[tr] = programs{w.programs, w.drops}
		}
		return nil
	}
	res.Diag = map[string][]measured{}
	var err error
	if res.Here, err = b.overheadOf(ctx, b.lab, b.lab.server, withTwins(tracers, b.base.measures), res.Diag, stats); err != nil {
		return err
	}
	if res.Elsewhere, err = b.overheadOf(ctx, b.other, b.lab.server, withTwins(elsewhereTracers, b.base.measures), nil, nil); err != nil {
		return err
	}
	natStats := func(f *flood, counter *noPorts) error {
		fmt.Fprintf(b.log, "bench: window with BPF statistics, tracer %s, flood through NAT\n", diagnose)
		w, err := b.traced(ctx, diagnose, b.nat.server, counter, f, true)
		res.NATPrograms = programs{w.programs, w.drops}
		return err
	}
	res.NAT, err = b.overheadOf(ctx, b.nat, b.nat.server, withTwins(natTracers, b.base.measures), nil, natStats)
	return err
}

// overheadOf floods l's server from its client and measures each tracer in turn, diagnose
// and the floors running in namespace diagNS. One flood
// runs from start to end, and windows with no tracer and with a tracer alternate: none,
// diagnose, none, the next tracer, none... Each tracer window is compared with the mean of
// the two no-tracer windows beside it. On a virtual machine the flood's rate drifts by 10%
// and more over seconds, with the neighbours' load: separate floods per tracer measured that
// drift as much as the tracers, while adjacent windows share it. Each tracer arms while the
// flood runs and the flood settles (cfg.settle) before its window: arming's own CPU and
// diagnose's shedding are not what is measured. After a tracer ends, the host settles again
// (its programs are freed after an RCU grace period) before the next no-tracer window.
// diag, when not nil, gets the windows of each tracer measured in full; last, when not nil,
// runs before the flood stops.
func (b *bench) overheadOf(ctx context.Context, l *lab, diagNS string, trs []string, diag map[string][]measured, last func(*flood, *noPorts) error) (o overhead, err error) {
	o.Rates = map[string][]float64{}
	o.Ratios = map[string][]float64{}
	counter, err := openNoPorts(l.dropsIn())
	if err != nil {
		return o, err
	}
	defer counter.Close()
	spec, err := floodSpecOf(l, b.cfg)
	if err != nil {
		return o, err
	}
	fmt.Fprintf(b.log, "bench: flood %s -> %s starts\n", l.client, l.server)
	f, err := startFlood(spec)
	if err != nil {
		return o, err
	}
	defer func() {
		if stopErr := f.Stop(); err == nil {
			err = stopErr
		}
	}()
	if err := sleep(ctx, b.cfg.warmup); err != nil {
		return o, err
	}
	before, err := b.traced(ctx, none, diagNS, counter, f, false)
	if err != nil {
		return o, err
	}
	o.addNone(before)
	for i := range b.cfg.repeats {
		for _, tr := range trs {
			fmt.Fprintf(b.log, "bench: window %d of %d, tracer %s\n", i+1, b.cfg.repeats, tr)
			w, err := b.traced(ctx, tr, diagNS, counter, f, false)
			if err != nil {
				return o, err
			}
			after, err := b.traced(ctx, none, diagNS, counter, f, false)
			if err != nil {
				return o, err
			}
			o.addNone(after)
			o.Rates[tr] = append(o.Rates[tr], w.rate)
			o.Ratios[tr] = append(o.Ratios[tr], w.rate/((before.rate+after.rate)/2))
			if len(w.foreign) > 0 {
				o.Foreign = append(o.Foreign, fmt.Sprintf("%s window %d: %s", tr, i+1, strings.Join(w.foreign, ", ")))
			}
			if inFull(tr) && diag != nil {
				diag[tr] = append(diag[tr], w)
			}
			before = after
		}
	}
	if last != nil {
		err = last(f, counter)
	}
	return o, err
}

// addNone keeps a no-tracer window and the tracing programs that were loaded during it.
func (o *overhead) addNone(m measured) {
	o.Rates[none] = append(o.Rates[none], m.rate)
	if len(m.foreign) > 0 {
		o.Foreign = append(o.Foreign, fmt.Sprintf("no-tracer window %d: %s", len(o.Rates[none]), strings.Join(m.foreign, ", ")))
	}
}

// measured is one flood window.
type measured struct {
	rate  float64 // drops per second
	drops uint64
	// The tracer's, diagnose only: utime+stime over the window and over its whole run
	// (wait4, the workload included: a helper that sleeps), VmHWM at the end of the window,
	// and wait4's maxrss (the whole run, report included).
	cpu, cpuRun time.Duration
	hwm, maxRSS uint64
	seen, match uint64 // diagnose's kfree_skb counters: every drop, the flow's
	method      string // how diagnose says it captured (its report's arrival.method)
	foreign     []string
	programs    []progRun // with statistics on: the tracer's programs over the window
}

// traced measures one window of the running flood f with tracer tr (none: no tracer; diagnose
// and the floors run in namespace diagNS): it
// arms the tracer, lets the host settle, counts the drops over cfg.window, ends the tracer
// and lets the host settle again.
func (b *bench) traced(ctx context.Context, tr, diagNS string, counter *noPorts, f *flood, stats bool) (measured, error) {
	var m measured
	hold, err := helperCommand("stamp", "10m")
	if err != nil {
		return m, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return m, err
	}
	defer devnull.Close()
	perfData := filepath.Join(b.tmp, "flood.perf.data")
	defer os.Remove(perfData)
	out := filepath.Join(b.tmp, "flood.json")

	before, err := tracingPrograms()
	if err != nil {
		return m, err
	}
	var p *proc
	switch tr {
	case diagnose, diagnoseSocket, baselineTCX, baselineSocket:
		p, err = startProc(tr, diagNS, b.diagnoseArgv(tr, quietPort, out, hold), nil)
	case bpftrace:
		// -c starts the workload after BEGIN, once every probe is attached.
		p, err = startProc(tr, "", []string{"bpftrace", "-e", bpftraceProbe, "-c", strings.Join(hold, " ")}, devnull)
	case perf:
		p, err = startProc(tr, "", append([]string{"perf", "record", "-e", "skb:kfree_skb", "-a", "-o", perfData, "--"}, hold...), devnull)
	case tcxFloor, tapFloor, kfreeFloor, hooksFloor:
		var floor []string
		if floor, err = helperCommand("floor", tr, "10m"); err == nil {
			p, err = startProc(tr, diagNS, floor, nil)
		}
	}
	if err != nil {
		return m, err
	}
	if p != nil {
		defer p.kill()
		if _, err := p.stamp(60 * time.Second); err != nil {
			return m, err
		}
		if err := sleep(ctx, b.cfg.settle); err != nil {
			return m, err
		}
	}
	armed, err := tracingPrograms()
	if err != nil {
		return m, err
	}
	mine := without(armed, before)
	var statsOn io.Closer
	if stats {
		if statsOn, err = enableStats(); err != nil {
			return m, err
		}
		defer statsOn.Close()
	}

	n0, err := counter.Read()
	if err != nil {
		return m, err
	}
	t0 := time.Now()
	var cpu0 time.Duration
	if p != nil {
		if cpu0, err = cpuTime(p.cmd.Process.Pid); err != nil {
			return m, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	var stats0 map[ebpf.ProgramID]progRun
	if stats {
		stats0 = progStats(mine)
	}
	if err := sleep(ctx, b.cfg.window); err != nil {
		return m, err
	}
	n1, err := counter.Read()
	if err != nil {
		return m, err
	}
	elapsed := time.Since(t0)
	if err := f.Err(); err != nil {
		return m, err
	}
	m.drops = n1 - n0
	m.rate = float64(m.drops) / elapsed.Seconds()
	if stats {
		m.programs = delta(stats0, progStats(mine))
	}
	if p != nil {
		cpu1, err := cpuTime(p.cmd.Process.Pid)
		if err != nil {
			return m, fmt.Errorf("%s: %w", p.name, err)
		}
		m.cpu = cpu1 - cpu0
		mem, err := readMemory(p.cmd.Process.Pid)
		if err != nil {
			return m, fmt.Errorf("%s: %w", p.name, err)
		}
		m.hwm = mem.HWM
	}
	end, err := tracingPrograms()
	if err != nil {
		return m, err
	}
	for _, name := range without(end, mine) {
		m.foreign = append(m.foreign, name)
	}
	slices.Sort(m.foreign)
	m.foreign = slices.Compact(m.foreign)
	if p == nil {
		return m, nil
	}

	// Ctrl-C, as a user ends a capture: diagnose writes its report, perf its file.
	if err := p.stop(60 * time.Second); err != nil && inFull(tr) {
		return m, fmt.Errorf("%s after Ctrl-C: %w\n%s", tr, err, p.output())
	}
	if err := sleep(ctx, b.cfg.settle); err != nil {
		return m, err
	}
	if !inFull(tr) {
		return m, nil
	}
	if m.cpuRun, m.maxRSS, err = p.usage(); err != nil {
		return m, err
	}
	rep, err := readReport(out)
	if err != nil {
		return m, fmt.Errorf("diagnose's report: %w", err)
	}
	if k := rep.Stages.KernelDrop; k != nil {
		m.seen, m.match = k.Seen, k.Matched
	}
	if a := rep.Stages.Arrival; a != nil {
		m.method = a.Method
	}
	return m, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func readReport(path string) (*report.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return report.Read(f)
}

// median of a non-empty slice (the upper of the middle two for an even length).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// floodSpecOf is a flood from l's client namespace to its server's closed port.
func floodSpecOf(l *lab, cfg *config) (floodSpec, error) {
	mac, err := macOf(l.server, iface)
	if err != nil {
		return floodSpec{}, err
	}
	return floodSpec{
		From:    l.client,
		Src:     netip.AddrPortFrom(netip.MustParseAddr(l.clientIP), floodPort),
		Dst:     netip.AddrPortFrom(netip.MustParseAddr(l.serverIP), floodPort),
		Senders: cfg.senders,
		Raw:     cfg.raw,
		Iface:   iface,
		DstMAC:  mac,
	}, nil
}
