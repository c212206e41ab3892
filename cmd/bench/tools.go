package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a tracer (or diagnose) started by the bench: its stderr, and stdout unless it goes
// elsewhere, are read line by line so the bench can wait for a line and keep the text.
type proc struct {
	cmd      *exec.Cmd
	launched time.Duration // CLOCK_MONOTONIC just before the fork
	name     string

	mu    sync.Mutex
	lines []string
	wake  chan struct{} // closed and replaced on each new line
	eof   chan struct{} // closed when the output is read to its end

	waited chan struct{}
	err    error
}

// maxKeptLines bounds what a proc keeps of its output: a tracer printing every event to
// the bench's pipe would otherwise grow it without end.
const maxKeptLines = 2000

// startProc starts argv in namespace ns (empty: the bench's own) in a process group of its
// own, so that stop reaches the workload it runs too. stdout, when not nil, takes the
// standard output instead of the line reader.
func startProc(name, ns string, argv []string, stdout io.Writer) (*proc, error) {
	p := &proc{name: name, wake: make(chan struct{}), eof: make(chan struct{}), waited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = pw
	p.cmd.Stdout = pw
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	// A child forked by a thread that entered ns is born in ns: no `ip netns exec` in the
	// way of what is timed.
	err = inNetns(ns, func() error {
		p.launched = monotonic()
		return p.cmd.Start()
	})
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go p.read(pr)
	go func() {
		p.err = p.cmd.Wait()
		close(p.waited)
	}()
	return p, nil
}

func (p *proc) read(r io.ReadCloser) {
	defer close(p.eof)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		if len(p.lines) < maxKeptLines {
			p.lines = append(p.lines, sc.Text())
		}
		close(p.wake)
		p.wake = make(chan struct{})
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// waitLine waits for a line that starts with prefix (after any "name: " of the tool) and
// returns it with the time it was read; it fails when the process ends first or at
// timeout.
func (p *proc) waitLine(prefix string, timeout time.Duration) (string, time.Duration, error) {
	deadline := time.After(timeout)
	seen := 0
	for {
		p.mu.Lock()
		lines, wake := p.lines, p.wake
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if i := strings.Index(lines[seen], prefix); i >= 0 {
				return lines[seen][i:], monotonic(), nil
			}
		}
		select {
		case <-wake:
		case <-p.eof:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if seen < n {
				continue
			}
			<-p.waited
			return "", 0, fmt.Errorf("%s ended (%v) before it printed %q:\n%s", p.name, p.err, strings.TrimSpace(prefix), p.output())
		case <-deadline:
			return "", 0, fmt.Errorf("%s did not print %q within %s:\n%s", p.name, strings.TrimSpace(prefix), timeout, p.output())
		}
	}
}

// stamp waits for the helper's stamp and returns how long after the launch it ran.
func (p *proc) stamp(timeout time.Duration) (time.Duration, error) {
	line, _, err := p.waitLine(stampPrefix, timeout)
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, stampPrefix)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: bad stamp %q", p.name, line)
	}
	return time.Duration(ns) - p.launched, nil
}

// output is the text read so far, for error messages.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// stop sends SIGINT to the process group (the tool and its workload), as Ctrl-C would,
// and waits; after grace it kills the group. It returns the exit error, nil for status 0.
func (p *proc) stop(grace time.Duration) error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	return p.wait(grace)
}

// wait waits for the process to end on its own; after timeout it kills the group.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.waited:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.waited
		<-p.eof
		return fmt.Errorf("%s did not end within %s: killed", p.name, timeout)
	}
	<-p.eof
	return p.err
}

// kill ends the group at once: for cleanup after a failure.
func (p *proc) kill() {
	select {
	case <-p.waited:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.waited
	}
}

// usage is the CPU time and peak RSS of the ended process, from wait4: its whole life,
// its waited-for children included (the workload, a helper that sleeps).
func (p *proc) usage() (cpu time.Duration, maxRSS uint64, err error) {
	st := p.cmd.ProcessState
	if st == nil {
		return 0, 0, errors.New("process has not ended")
	}
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, errors.New("no rusage")
	}
	return st.UserTime() + st.SystemTime(), uint64(ru.Maxrss) << 10, nil
}
