package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/packetmortem/packetmortem/bpf"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/arrival"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/hoststate"
	"github.com/packetmortem/packetmortem/stages/kdrop"
	"github.com/packetmortem/packetmortem/stages/nftrace"
	"github.com/packetmortem/packetmortem/stages/path"
	"github.com/packetmortem/packetmortem/stages/stage"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/prose"
)

// grace is how long capture goes on after the reproduction exits: answers and drops of
// its last packets are still in flight when it returns.
const grace = time.Second

// diagnose runs the workflow: arm every stage, run the reproduction (or wait for the user
// to reproduce the problem), stop, judge the evidence and write the report.
func diagnose(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) error {
	started := time.Now()
	target, name, err := openTarget(o)
	if err != nil {
		return err
	}
	defer target.Close()
	ev := &evidence.Evidence{Flow: o.flow, Netns: targetNetns(target)}
	if name != "" {
		ev.Netns.Name = name
	}
	rep := &report.Report{
		SchemaVersion: report.SchemaVersion,
		Tool:          report.Tool{Name: "diagnose", Version: version},
		Flow:          o.flow,
		Host:          hostInfo(ev.Netns),
		Run:           report.Run{Args: append([]string{"diagnose"}, args...), Reproduction: o.command, Started: started},
	}

	// One set of the flow's BPF maps for every stage's programs: a translation the kernel
	// drop stage's program learns, the capture and the path points follow at the very next
	// packet, as it leaves toward the namespace it enters next and in that namespace. Where
	// the maps cannot be made, each stage makes its own and says why it cannot.
	flowMaps, err := bpf.NewSharedFlow()
	if err == nil {
		defer flowMaps.Close()
	}
	capture, countReached := captureStage(o, target, flowMaps)
	var stages *stage.Pipeline
	// The kernel drop stage learns where the flow's connection is translated to; every
	// stage follows it there.
	grow := func(e evidence.Endpoint) { stages.Grow(e) }
	stages = stage.New(o.flow, func(warning string) { fmt.Fprintf(stderr, "diagnose: %s\n", warning) },
		// Read first and stopped last: its route lookups must not cross the tracepoints.
		hoststate.NewStage(hoststate.Config{Flow: o.flow, Netns: target}),
		// Then in the order that fails fastest on a host that cannot run diagnose.
		kdrop.NewStage(kdrop.Config{Flow: o.flow, Netns: ev.Netns.Inode, OnGrow: grow, FlowMaps: flowMaps}),
		path.NewStage(path.Config{Flow: o.flow, Netns: ev.Netns.Inode, FlowMaps: flowMaps}),
		nftrace.NewStage(nftrace.Config{Flow: o.flow, Netns: target}),
		capture,
	)
	// Whatever happens, a panic included, every stage is closed.
	defer stages.Close()
	if err := stages.Arm(ctx); err != nil {
		return stageError(err)
	}
	rep.Run.ArmedMS = time.Since(started).Milliseconds()
	in := ""
	if target != nil {
		in = " in network namespace " + cmp.Or(ev.Netns.Name, target.Path)
	}
	fmt.Fprintf(stderr, "diagnose: armed in %d ms: capturing %s on %s%s\n", rep.Run.ArmedMS, o.flow, ifaceList(o.ifaces), in)

	prog := startProgress(stderr, stderrIsTerminal(stderr), o.timeout, stages.Progress())
	rep.Run.StoppedBy, rep.Run.ReproductionExit = capturePhase(ctx, o, countReached, prog.Writer())
	prog.Stop()

	stages.Stop(ctx, ev)
	rep.Run.Installed, rep.Run.Notes = stages.Installed()
	if ev.Arrival.MethodNote != "" {
		rep.Run.Notes = append(rep.Run.Notes, ev.Arrival.MethodNote)
	}

	v := verdict.Judge(ev)
	rep.Verdict = report.VerdictOf(v, prose.Write(ev, v))
	if ev.Arrival.PcapPath != "" {
		// The fates are known only now: the pcapng is the capture again, annotated.
		names, netnsOf := capture.Interfaces()
		if err := arrival.WritePcapng(ev.Arrival.PcapPath, o.pcapngPath(), o.force, names, netnsOf, prose.Comments(ev, v)); err != nil {
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

// captureStage is the arrival stage for the options, and the channel closed once --count
// packets have been captured.
func captureStage(o *options, target *netns.Handle, flowMaps *bpf.Flow) (*arrival.Stage, <-chan struct{}) {
	var matched atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	return arrival.NewStage(arrival.Config{
		Flow: o.flow, Netns: target, Ifaces: o.ifaces, PcapPath: o.pcap, Overwrite: o.force, Method: o.capture, FlowMaps: flowMaps,
		OnPacket: func(evidence.Packet) {
			if n := matched.Add(1); o.count > 0 && n >= int64(o.count) {
				once.Do(func() { close(reached) })
			}
		},
	}), reached
}

// stageError maps a stage's failure to its exit status: a host that cannot run diagnose is
// not an internal error.
func stageError(err error) error {
	switch {
	case errors.Is(err, kerr.ErrPrivilege), errors.Is(err, kerr.ErrUnsupported):
		return hostError(err)
	case errors.Is(err, arrival.ErrBadInterface):
		return &exitError{code: exitUsage, err: fmt.Errorf("--iface: %w", err)}
	}
	return err
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

func oneLine(v report.Verdict) string {
	s := fmt.Sprintf("%s in %s", v.Outcome, v.Stage)
	if v.Reason != nil {
		s += fmt.Sprintf(" (%s at %s)", *v.Reason, v.Function)
	}
	return s
}
