package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/arrival"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/hoststate"
	"github.com/packetmortem/packetmortem/stages/kdrop"
	"github.com/packetmortem/packetmortem/stages/nftrace"
	"github.com/packetmortem/packetmortem/stages/path"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

// grace is how long capture goes on after the reproduction exits: answers and drops of
// its last packets are still in flight when it returns.
const grace = time.Second

// diagnose arms every stage, runs the reproduction, stops, judges and writes the report.
func diagnose(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	ev := &evidence.Evidence{Flow: o.flow, Netns: currentNetns()}
	rep := &report.Report{
		SchemaVersion: report.SchemaVersion,
		Tool:          report.Tool{Name: "diagnose", Version: version},
		Flow:          o.flow,
		Host:          hostInfo(ev.Netns),
		Run:           report.Run{Args: append([]string{"diagnose"}, args...), Reproduction: o.command, Started: started},
	}

	// Armed in the order that fails fastest on a host that cannot run diagnose; released in
	// reverse by the defers, whatever happens after.
	probe, err := kdrop.Start(ctx, kdrop.Config{Flow: o.flow, Netns: ev.Netns.Inode})
	if err != nil {
		return stageError("kernel drop stage", err)
	}
	defer probe.Close()

	// The path tracepoints are an extra: without them the verdict still stands, with less
	// detail on how far the flow got.
	pathProbe, err := path.Start(ctx, path.Config{Flow: o.flow, Netns: ev.Netns.Inode})
	var pathErr error
	if err != nil {
		if errors.Is(err, kerr.ErrPrivilege) {
			return stageError("path stage", err)
		}
		pathErr = err
		fmt.Fprintf(stderr, "diagnose: path tracepoints unavailable, going on without them: %v\n", err)
	} else {
		defer pathProbe.Close()
	}

	host, err := hoststate.Start(ctx, hoststate.Config{Flow: o.flow})
	if err != nil {
		return fmt.Errorf("host state: %w", err)
	}

	var tracer *nftrace.Tracer
	var fwSkipped *evidence.Firewall
	nfcfg := nftrace.Config{Flow: o.flow, NetnsFd: -1}
	if has, err := nftrace.HasChains(nfcfg); err == nil && !has {
		fwSkipped = &evidence.Firewall{Skipped: "this network namespace has no nftables chain, so nftables cannot drop the flow here"}
	} else if tracer, err = nftrace.Start(ctx, nfcfg); err != nil {
		if !errors.Is(err, kerr.ErrUnsupported) {
			return stageError("firewall stage", err)
		}
		fwSkipped = &evidence.Firewall{Error: err.Error()}
		fmt.Fprintf(stderr, "diagnose: firewall stage unavailable, going on without it: %v\n", err)
	} else {
		defer tracer.Close()
	}

	matched := atomic.Int64{}
	countReached := make(chan struct{})
	var once sync.Once
	capture, err := arrival.Start(ctx, arrival.Config{
		Flow: o.flow, Ifaces: o.ifaces, PcapPath: o.pcap, Overwrite: o.force, Method: o.capture,
		OnPacket: func(evidence.Packet) {
			if n := matched.Add(1); o.count > 0 && n >= int64(o.count) {
				once.Do(func() { close(countReached) })
			}
		},
	})
	if err != nil {
		return stageError("arrival stage", err)
	}
	defer capture.Close()
	rep.Run.ArmedMS = time.Since(started).Milliseconds()
	// A test hook: the leave-the-host-as-found tests prove that a panic after arming still
	// releases every kernel object.
	if os.Getenv("PACKETMORTEM_TEST_PANIC") == "armed" {
		panic("test panic after arming")
	}

	table := "nftables trace table"
	if tracer != nil {
		table = "nftables trace table (owned by diagnose's netlink socket: the kernel removes it even if diagnose is killed)"
	}
	through := "nftables and kfree_skb"
	if tracer == nil {
		through = "kfree_skb (no nftables chain to trace)"
	}
	fmt.Fprintf(stderr, "diagnose: armed in %d ms: capturing %s on %s, tracing it through %s\n",
		rep.Run.ArmedMS, o.flow, ifaceList(o.ifaces), through)

	counts := []counter{
		{"packets seen", capture.Packets},
		{"traced", nil},
		{"dropped", probe.Events},
		{"path events", nil},
	}
	if tracer != nil {
		counts[1].read = tracer.Traced
	}
	if pathProbe != nil {
		counts[3].read = pathProbe.Events
	}
	prog := startProgress(stderr, stderrIsTerminal(stderr), o.timeout, counts)
	rep.Run.StoppedBy, rep.Run.ReproductionExit = capturePhase(ctx, o, countReached, prog.Writer())
	prog.Stop()

	ev.Arrival = capture.Stop()
	if tracer != nil {
		ev.Firewall = tracer.Stop()
		rep.Run.Installed = append(rep.Run.Installed, report.Installed{What: table + " " + ev.Firewall.Table, Removed: ev.Firewall.Removed})
	} else {
		ev.Firewall = fwSkipped
	}
	ev.Kernel = probe.Stop()
	if pathProbe != nil {
		ev.Path = pathProbe.Stop()
	} else {
		ev.Path = &evidence.Path{Error: pathErr.Error()}
	}
	// Released now rather than by the defers at exit, and checked: the report says what was
	// removed because it was measured, not assumed. The capture goes first: on tcx its
	// programs are among the BPF objects counted.
	names := capture.Interfaces()
	capErr := capture.Close()
	if capErr != nil {
		rep.Run.Notes = append(rep.Run.Notes, fmt.Sprintf("closing the capture: %v", capErr))
	}
	if ev.Arrival.MethodNote != "" {
		rep.Run.Notes = append(rep.Run.Notes, ev.Arrival.MethodNote)
	}
	bpfErr := errors.Join(probe.Close(), pathProbe.Close())
	bpfLeft := openBPFObjects()
	bpfRemoved := bpfErr == nil && bpfLeft == 0
	if !bpfRemoved {
		rep.Run.Notes = append(rep.Run.Notes, fmt.Sprintf("releasing the BPF programs: %d still open, %v (they go when diagnose exits)", bpfLeft, bpfErr))
	}
	rep.Run.Installed = append(rep.Run.Installed,
		report.Installed{What: "BPF program on skb:kfree_skb (" + ev.Kernel.Attach + ")", Removed: bpfRemoved})
	if pathProbe != nil {
		rep.Run.Installed = append(rep.Run.Installed,
			report.Installed{What: fmt.Sprintf("BPF programs on %d path tracepoints", len(ev.Path.Attached)), Removed: bpfRemoved})
	}
	what := "AF_PACKET capture socket"
	if ev.Arrival.Method == evidence.CaptureTCX {
		what = "BPF capture programs on tcx"
		if bpfLeft > 0 {
			capErr = errors.Join(capErr, fmt.Errorf("%d BPF objects still open", bpfLeft))
		}
	}
	rep.Run.Installed = append(rep.Run.Installed, report.Installed{What: what, Removed: capErr == nil})
	peers, ifaces := peersOf(ev)
	ev.Host = host.Stop(ctx, peers, ifaces)

	rep.Verdict = verdict.Judge(ev)
	if ev.Arrival.PcapPath != "" {
		// The fates are known only now: the pcapng is the capture again, annotated.
		if err := arrival.WritePcapng(ev.Arrival.PcapPath, o.pcapngPath(), o.force, names, verdict.Comments(ev)); err != nil {
			rep.Run.Notes = append(rep.Run.Notes, fmt.Sprintf("the annotated capture was not written: %v", err))
		} else {
			rep.Run.Pcapng = o.pcapngPath()
		}
	}
	rep.Stages = report.Stages{Arrival: ev.Arrival, Firewall: ev.Firewall, KernelDrop: ev.Kernel, Path: ev.Path, Host: ev.Host}
	rep.Run.DurationMS = time.Since(started).Milliseconds()
	if o.redact {
		rep = report.Redact(rep)
	}
	if err := writeReport(o, rep, stdout); err != nil {
		return err
	}
	where := "stdout"
	if o.output != "" {
		where = o.output
	}
	fmt.Fprintf(stderr, "diagnose: %s; report: %s\n", oneLine(rep.Verdict), where)
	return nil
}

// stageError maps a stage's failure to its exit status: a host that cannot run diagnose is
// not an internal error.
func stageError(stage string, err error) error {
	for _, e := range []error{kerr.ErrPrivilege, kerr.ErrUnsupported} {
		if errors.Is(err, e) {
			return hostError(fmt.Errorf("%s: %w", stage, err))
		}
	}
	if errors.Is(err, arrival.ErrBadInterface) {
		return &exitError{code: exitUsage, err: fmt.Errorf("--iface: %w", err)}
	}
	return fmt.Errorf("%s: %w", stage, err)
}

// peersOf returns the far ends of the flow seen in the capture and the interfaces it used,
// for the host state's route lookups.
func peersOf(ev *evidence.Evidence) ([]netip.Addr, []string) {
	var peers []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if a = a.Unmap(); a.IsValid() && a != ev.Flow.Addr && !seen[a] {
			seen[a] = true
			peers = append(peers, a)
		}
	}
	var ifaces []string
	if a := ev.Arrival; a != nil {
		for _, p := range a.Packets {
			add(p.Src.Addr())
			add(p.Dst.Addr())
		}
		for _, c := range a.Counts {
			if !slices.Contains(ifaces, c.Iface) {
				ifaces = append(ifaces, c.Iface)
			}
		}
	}
	return peers, ifaces
}

func ifaceList(ifaces []string) string {
	if len(ifaces) == 0 {
		return "every interface"
	}
	return strings.Join(ifaces, ", ")
}

// capturePhase runs the reproduction, or waits for the user to reproduce, and returns what
// ended the capture and the command's exit status.
func capturePhase(ctx context.Context, o *options, countReached <-chan struct{}, stderr io.Writer) (string, *int) {
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	var done chan struct{}
	var cmd *exec.Cmd
	if len(o.command) > 0 {
		cmd = exec.Command(o.command[0], o.command[1:]...)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		// When its output goes through a pipe (progress on a terminal), a background child
		// holding the pipe open must not keep the capture going after the command exits.
		cmd.WaitDelay = grace
		// Its own process group, so a timeout can end the whole reproduction.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		fmt.Fprintf(stderr, "diagnose: running the reproduction: %s\n", report.ShellJoin(o.command))
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(stderr, "diagnose: the reproduction did not start: %v\n", err)
			cmd = nil
		} else {
			done = make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
		}
	} else {
		fmt.Fprintf(stderr, "diagnose: reproduce the problem now; capturing for up to %s (Ctrl-C to stop sooner)\n", o.timeout)
	}
	stoppedBy := ""
	select {
	case <-ctx.Done():
		stoppedBy = "signal"
	case <-timer.C:
		stoppedBy = "timeout"
	case <-countReached:
		stoppedBy = "count"
	case <-done:
		stoppedBy = "command"
		g := time.NewTimer(grace)
		select {
		case <-g.C:
		case <-ctx.Done():
		case <-countReached:
		case <-timer.C:
		}
		g.Stop()
	}
	if cmd == nil {
		return stoppedBy, nil
	}
	select {
	case <-done:
	default:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return stoppedBy, nil
	}
	code := cmd.ProcessState.ExitCode()
	if code < 0 {
		return stoppedBy, nil
	}
	return stoppedBy, &code
}

func writeReport(o *options, rep *report.Report, stdout io.Writer) error {
	w := stdout
	if o.output != "" {
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if o.force {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		f, err := os.OpenFile(o.output, flags, 0o644)
		if err != nil {
			return fmt.Errorf("write report: %w (choose another -o, or --force to overwrite)", err)
		}
		defer f.Close()
		w = f
	}
	var err error
	if o.format == "json" {
		err = rep.WriteJSON(w)
	} else {
		err = rep.WriteMarkdown(w)
	}
	return err
}

func oneLine(v verdict.Verdict) string {
	s := fmt.Sprintf("%s in %s", v.Outcome, v.Stage)
	if v.Reason != nil {
		s += fmt.Sprintf(" (%s at %s)", *v.Reason, v.Function)
	}
	return s
}
