package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeTerminal is a pseudo-terminal for unit tests of the prompts, made with ioctls on
// /dev/ptmx (no dependency): the program gets the pts end as its terminal, the test reads
// what it prints and types on the other end, like a person at a terminal of rows x cols.
// It answers survey's cursor position queries (ESC[6n) the way a terminal does.
type fakeTerminal struct {
	t      *testing.T
	master *os.File
	pts    *os.File
	rows   int
	cols   int

	mu       sync.Mutex
	out      bytes.Buffer // everything the program printed
	answered int          // offset in out up to which position queries were answered
	changed  time.Time    // when out last grew
	closed   chan struct{}
}

func newFakeTerminal(t *testing.T) *fakeTerminal {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var n uint32
	var ioErr error
	// SyscallConn, not Fd: Fd would put the master in blocking mode.
	rc, _ := master.SyscallConn()
	_ = rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		}
	})
	if ioErr != nil {
		master.Close()
		t.Fatalf("unlock the pseudo-terminal: %v", ioErr)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	ft := &fakeTerminal{t: t, master: master, pts: pts, rows: 50, cols: 200, changed: time.Now(), closed: make(chan struct{})}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(ft.rows), Col: uint16(ft.cols)}); err != nil {
		t.Fatal(err)
	}
	go ft.read()
	t.Cleanup(func() {
		pts.Close()
		master.Close()
		<-ft.closed
	})
	return ft
}

func (ft *fakeTerminal) read() {
	defer close(ft.closed)
	buf := make([]byte, 4096)
	for {
		n, err := ft.master.Read(buf)
		if n > 0 {
			ft.mu.Lock()
			ft.out.Write(buf[:n])
			ft.changed = time.Now()
			ft.answerQueries()
			ft.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// answerQueries answers each new ESC[6n with a cursor position: the bottom right corner
// right after survey moved there to measure the terminal, else the start of a line.
func (ft *fakeTerminal) answerQueries() {
	for {
		rest := ft.out.Bytes()[ft.answered:]
		i := bytes.Index(rest, []byte("\x1b[6n"))
		if i < 0 {
			return
		}
		reply := "\x1b[10;1R"
		if bytes.Contains(rest[:i], []byte("\x1b[999;999")) {
			reply = fmt.Sprintf("\x1b[%d;%dR", ft.rows, ft.cols)
		}
		_, _ = ft.master.Write([]byte(reply))
		ft.answered += i + 4
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]|\r`)

// text is what the program printed so far, without escape sequences.
func (ft *fakeTerminal) text() string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ansi.ReplaceAllString(ft.out.String(), "")
}

// waitFor waits until want was printed after offset from (a value text returned before),
// and the program has been quiet for a moment: it is then waiting for keys.
func (ft *fakeTerminal) waitFor(from int, want string) int {
	ft.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := ft.text()
		if i := strings.Index(s[min(from, len(s)):], want); i >= 0 {
			ft.mu.Lock()
			quiet := time.Since(ft.changed) > 100*time.Millisecond
			ft.mu.Unlock()
			if quiet {
				return from + i + len(want)
			}
		}
		if time.Now().After(deadline) {
			ft.t.Fatalf("%q did not appear within 10s; the terminal shows:\n%s", want, s[min(from, len(s)):])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typ types keys: "\r" is Enter, "\x1b[B" the down arrow.
func (ft *fakeTerminal) typ(keys string) {
	ft.t.Helper()
	if _, err := ft.master.Write([]byte(keys)); err != nil {
		ft.t.Fatal(err)
	}
}

const (
	keyEnter = "\r"
	keyDown  = "\x1b[B"
)
