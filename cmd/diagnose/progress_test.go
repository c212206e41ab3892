package main

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/stages/stage"
)

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fast is how often the tests show progress.
const fast = 10 * time.Millisecond

// TestProgressPlain: without a terminal a line only when a count changed, no escapes,
// and one final line.
func TestProgressPlain(t *testing.T) {
	t.Parallel()
	// Both counts change inside a tick, before it reads the second: changed from outside,
	// a tick could read one count before the change and the other after it.
	var advance atomic.Bool
	var packets, drops atomic.Int64
	readPackets := func() int {
		if advance.CompareAndSwap(true, false) {
			packets.Store(3)
			drops.Store(1)
		}
		return int(packets.Load())
	}
	var out syncBuffer
	p := startProgressEvery(&out, false, 30*time.Second, []stage.Counter{
		{Label: "packets seen", Read: readPackets},
		{Label: "traced", Read: nil},
		{Label: "dropped", Read: func() int { return int(drops.Load()) }},
	}, fast)
	if p.Writer() != &out {
		t.Error("without a terminal the reproduction's output must go to stderr itself")
	}
	time.Sleep(100 * time.Millisecond)
	if s := out.String(); s != "" {
		t.Errorf("printed while nothing changed: %q", s)
	}
	advance.Store(true)
	time.Sleep(100 * time.Millisecond)
	p.Stop()
	p.Stop()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "diagnose: 0s of 30s: 3 packets seen, 1 dropped") ||
		!strings.HasPrefix(lines[1], "diagnose: captured for ") || !strings.HasSuffix(lines[1], ": 3 packets seen, 1 dropped") {
		t.Errorf("want one line for the change and one at the end, got:\n%s", out.String())
	}
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Errorf("escape sequences in a log: %q", out.String())
	}
}

// TestProgressTerminal: one line redrawn in place, cleared before the reproduction's
// output, left on screen with the final counts.
func TestProgressTerminal(t *testing.T) {
	t.Parallel()
	var packets atomic.Int64
	var out syncBuffer
	p := startProgressEvery(&out, true, 20*time.Second, []stage.Counter{{Label: "packets seen", Read: func() int { return int(packets.Load()) }}}, fast)
	time.Sleep(50 * time.Millisecond)
	w := p.Writer()
	if _, err := w.Write([]byte("curl: (7) connection refused\n")); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("no newline"))
	packets.Store(2)
	time.Sleep(50 * time.Millisecond)
	p.Stop()
	s := out.String()
	if !strings.Contains(s, clearLine+"curl: (7) connection refused\n") {
		t.Errorf("the progress line was not cleared before the command's output:\n%q", s)
	}
	if !strings.Contains(s, "no newline\n"+clearLine) {
		t.Errorf("progress drawn on the same line as the command's output:\n%q", s)
	}
	if !strings.Contains(s, clearLine+"diagnose: capturing ") {
		t.Errorf("no progress line redrawn in place:\n%q", s)
	}
	last := s[strings.LastIndex(s, clearLine):]
	if !strings.HasPrefix(last, clearLine+"diagnose: captured ") || !strings.HasSuffix(last, "of 20s: 2 packets seen\n") {
		t.Errorf("final line %q", last)
	}
}
