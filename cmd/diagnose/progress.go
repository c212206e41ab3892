package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/packetmortem/packetmortem/stages/stage"
)

// progress shows what the stages have seen so far on stderr while the capture runs: on a
// terminal one line redrawn in place, at most ten times a second; elsewhere (a CI log) a
// plain line every few seconds, and only when a count changed. It never writes to stdout,
// where the report may go, and Stop ends it before the report is written.
type progress struct {
	out     io.Writer
	tty     bool
	timeout time.Duration
	every   time.Duration
	start   time.Time
	counts  []stage.Counter

	mu      sync.Mutex
	drawn   bool   // a progress line is on the terminal, to be cleared before other output
	partial bool   // other output ended mid-line
	last    string // the counts last printed as a plain line
	stopped bool

	stop chan struct{}
	done chan struct{}
}

// How often progress is shown: redrawn on a terminal, printed when changed elsewhere.
const (
	redrawEvery = 100 * time.Millisecond
	plainEvery  = 5 * time.Second
)

const clearLine = "\r\x1b[K"

// stderrIsTerminal is whether progress may redraw in place.
func stderrIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f) && os.Getenv("TERM") != "dumb"
}

func startProgress(out io.Writer, tty bool, timeout time.Duration, counts []stage.Counter) *progress {
	every := plainEvery
	if tty {
		every = redrawEvery
	}
	return startProgressEvery(out, tty, timeout, counts, every)
}

// startProgressEvery is startProgress showing progress every so often.
func startProgressEvery(out io.Writer, tty bool, timeout time.Duration, counts []stage.Counter, every time.Duration) *progress {
	p := &progress{
		out: out, tty: tty, timeout: timeout, every: every, start: time.Now(), counts: counts,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	p.last = p.summary()
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			p.mu.Lock()
			if p.tty {
				p.draw(false)
			} else if s := p.summary(); s != p.last {
				p.last = s
				fmt.Fprintf(p.out, "diagnose: %s of %s: %s\n", p.elapsed(time.Second), p.timeout, s)
			}
			p.mu.Unlock()
		}
	}
}

// summary is the counts: "3 packets seen, 6 traced, 3 dropped, 14 path events".
func (p *progress) summary() string {
	parts := make([]string, 0, len(p.counts))
	for _, c := range p.counts {
		if c.Read != nil {
			parts = append(parts, fmt.Sprintf("%d %s", c.Read(), c.Label))
		}
	}
	return strings.Join(parts, ", ")
}

func (p *progress) elapsed(unit time.Duration) time.Duration {
	return time.Since(p.start).Round(unit)
}

// draw redraws the terminal line; final leaves it on screen with a newline.
func (p *progress) draw(final bool) {
	if p.partial {
		fmt.Fprintln(p.out)
		p.partial = false
	}
	verb := "capturing"
	if final {
		verb = "captured"
	}
	fmt.Fprintf(p.out, "%sdiagnose: %s %s of %s: %s", clearLine, verb, p.elapsed(100*time.Millisecond), p.timeout, p.summary())
	p.drawn = !final
	if final {
		fmt.Fprintln(p.out)
	}
}

// Write passes the reproduction's output through, clearing the progress line first so the
// two never share a line. Only a terminal needs it; elsewhere Writer is stderr itself.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.out, clearLine)
		p.drawn = false
	}
	n, err := p.out.Write(b)
	if len(b) > 0 {
		p.partial = b[len(b)-1] != '\n'
	}
	return n, err
}

// Writer is where output during the capture goes.
func (p *progress) Writer() io.Writer {
	if p.tty {
		return p
	}
	return p.out
}

// Stop ends the progress and leaves one line with the final counts. Calling it again
// does nothing.
func (p *progress) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.draw(true)
		return
	}
	fmt.Fprintf(p.out, "diagnose: captured for %s: %s\n", p.elapsed(100*time.Millisecond), p.summary())
}
