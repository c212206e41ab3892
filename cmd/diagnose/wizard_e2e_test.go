package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

// tmuxScreen is a terminal a person would use: a detached tmux session on a private
// server, read with capture-pane and typed into with send-keys.
type tmuxScreen struct {
	t      *testing.T
	socket string
}

// newTmux runs command (a shell command line) in a 200x50 tmux window.
func newTmux(t *testing.T, command string) *tmuxScreen {
	t.Helper()
	testns.Tool(t, "tmux")
	// Not in t.TempDir: a socket path must be short.
	dir, err := os.MkdirTemp("", "pmt-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	s := &tmuxScreen{t: t, socket: filepath.Join(dir, "s")}
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-S", s.socket, "kill-server").Run()
		os.RemoveAll(dir)
	})
	s.tmux("-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", command)
	return s
}

func (s *tmuxScreen) tmux(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", s.socket}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the window shows, wrapped lines joined, with its scrollback.
func (s *tmuxScreen) screen() string {
	s.t.Helper()
	return s.tmux("capture-pane", "-p", "-J", "-S", "-200")
}

// waitFor polls the screen until want shows after the first after lines of it (to tell
// a new prompt from an answered one) and the screen has settled; it fails after limit.
func (s *tmuxScreen) waitFor(want string, after int, limit time.Duration) int {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	prev := ""
	for {
		scr := s.screen()
		lines := strings.Split(scr, "\n")
		rest := strings.Join(lines[min(after, len(lines)):], "\n")
		if i := strings.Index(rest, want); i >= 0 && scr == prev {
			return after + strings.Count(rest[:i], "\n") + 1
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%q did not show within %s; the screen:\n%s", want, limit, scr)
		}
		prev = scr
		time.Sleep(100 * time.Millisecond)
	}
}

// typ types text literally, then presses the keys named (Enter, Down).
func (s *tmuxScreen) typ(text string, keys ...string) {
	s.t.Helper()
	if text != "" {
		s.tmux("send-keys", "-l", text)
	}
	if len(keys) > 0 {
		s.tmux(append([]string{"send-keys"}, keys...)...)
	}
}

// TestE2EWizard is diagnose as a person runs it: no flags but a timeout, every answer
// typed into a terminal, a TCP connection to a port with no listener as the reproduction.
func TestE2EWizard(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "wiz", false, "tcp")
	out := filepath.Join(t.TempDir(), "wizard.json")
	cmdline := report.ShellJoin([]string{"ip", "netns", "exec", s.pair.Server, binary, "--timeout", "20s"})
	tm := newTmux(t, cmdline+`; echo "diagnose exited with $?"; sleep 600`)

	at := tm.waitFor(askFlow, 0, 10*time.Second)
	tm.typ(s.flowArg(), "Enter")
	at = tm.waitFor(askIface, at, 10*time.Second)
	tm.typ("", "Enter") // all interfaces
	at = tm.waitFor("nftables", at, 10*time.Second)
	tm.typ("y", "Enter")
	at = tm.waitFor(askReproduce, at, 10*time.Second)
	tm.typ("", "Enter") // run a command
	at = tm.waitFor(askCommand, at, 10*time.Second)
	tm.typ(report.ShellJoin(s.fromClient(connect)), "Enter")
	at = tm.waitFor(askSave, at, 10*time.Second)
	tm.typ(out, "Enter")
	tm.waitFor("diagnose exited with", at, 40*time.Second)

	screen := tm.screen()
	t.Logf("the terminal:\n%s", strings.TrimRight(screen, "\n"))
	if !strings.Contains(screen, "diagnose exited with 0") {
		t.Fatalf("diagnose failed:\n%s", screen)
	}
	if !strings.Contains(screen, "diagnose: captured ") || !strings.Contains(screen, "packets seen") || !strings.Contains(screen, "dropped") {
		t.Errorf("no progress on the screen")
	}
	if want := "; report: " + out; !strings.Contains(screen, want) {
		t.Errorf("the final line does not name the report: want %q", want)
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
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	// The report's command line repeats the run without questions.
	again := []string{"diagnose", "--timeout", "20s", "--flow", s.flowArg(), "-o", out, "--yes", "--"}
	if got := strings.Join(rep.Run.Args, " "); !strings.HasPrefix(got, strings.Join(again, " ")) {
		t.Errorf("report's command line %q, want it to start with %q", got, again)
	}
	if fmt.Sprint(rep.Run.Reproduction) != fmt.Sprint(s.fromClient(connect)) {
		t.Errorf("reproduction %q, want %q", rep.Run.Reproduction, s.fromClient(connect))
	}
	checkNothingLeft(t, s.pair.Server)
}

// TestE2ERedact: --redact writes a report without the flow's addresses, and no capture.
func TestE2ERedact(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "red", false, "tcp")
	out := filepath.Join(t.TempDir(), "r.json")
	args := []string{"netns", "exec", s.pair.Server, binary, "--flow", s.flowArg(), "--yes", "--redact",
		"--timeout", "20s", "-o", out, "--"}
	if b, err := exec.Command("ip", append(args, s.fromClient(connect)...)...).CombinedOutput(); err != nil {
		t.Fatalf("diagnose: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testns.ServerV4, testns.ClientV4, s.pair.Server, s.pair.Client} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the redacted report holds %s", secret)
		}
	}
	rep, err := report.Read(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, rep, verdict.Dropped, verdict.Socket, "NO_SOCKET")
	if _, err := os.Stat(strings.TrimSuffix(out, ".json") + ".pcap"); err == nil {
		t.Error("--redact wrote a capture file")
	}
	checkNothingLeft(t, s.pair.Server)
}
