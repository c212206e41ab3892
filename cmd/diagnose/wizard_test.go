package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// fakeIfaces stands for net.Interfaces: the wizard's tests never ask the machine.
func fakeIfaces() ([]net.Interface, error) {
	return []net.Interface{{Index: 1 << 30, Name: "lo", Flags: net.FlagUp}, {Index: 1<<30 + 1, Name: "veth0"}}, nil
}

// wizardRun runs the wizard on a fake terminal for the command line args while answer
// types into it, and returns the options it filled in and what the terminal showed.
func wizardRun(t *testing.T, args []string, answer func(ft *fakeTerminal)) (*options, string) {
	t.Helper()
	o, err := parseOptions(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ft := newFakeTerminal(t)
	tt := terminalOf(ft.pts, ft.pts)
	if tt == nil {
		t.Fatal("the fake terminal is not a terminal")
	}
	now := time.Date(2026, 11, 21, 23, 52, 34, 0, time.UTC)
	done := make(chan error, 1)
	go func() { done <- wizard(o, tt, fakeIfaces, now) }()
	answer(ft)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wizard: %v\nterminal:\n%s", err, ft.text())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the wizard did not finish; terminal:\n%s", ft.text())
	}
	return o, ft.text()
}

// TestWizard answers every question as a person would, with a mistake or two on the way.
func TestWizard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	if err := os.WriteFile(old, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "r.json")
	o, screen := wizardRun(t, []string{"--timeout", "20s"}, func(ft *fakeTerminal) {
		at := ft.waitFor(0, askFlow)
		ft.typ("example.com:80" + keyEnter)
		at = ft.waitFor(at, "host names are not resolved")
		ft.typ("198.51.100.2:8080" + keyEnter)
		at = ft.waitFor(at, askIface)
		ft.typ(keyDown + keyEnter) // lo, after "all interfaces"
		at = ft.waitFor(at, "nftables")
		ft.typ("y" + keyEnter)
		at = ft.waitFor(at, askReproduce)
		ft.typ(keyEnter) // run a command
		at = ft.waitFor(at, askCommand)
		ft.typ("/nonexistent/repro" + keyEnter)
		at = ft.waitFor(at, "not found")
		ft.typ(`sh -c 'echo "hi there"; exit 3'` + keyEnter)
		at = ft.waitFor(at, askSave)
		ft.typ(filepath.Join(dir, "nodir", "r.md") + keyEnter)
		at = ft.waitFor(at, "does not exist")
		ft.typ(old + keyEnter)
		at = ft.waitFor(at, askOverwrite)
		ft.typ("n" + keyEnter)
		at = ft.waitFor(at, askSave)
		ft.typ(out + keyEnter)
		ft.waitFor(at, "without questions")
	})
	want, _ := evidence.ParseFlow("198.51.100.2:8080", evidence.TCP)
	if o.flow != want || !slices.Equal(o.ifaces, []string{"lo"}) || !o.yes {
		t.Errorf("flow %s, ifaces %q, yes %v; want %s, [lo], true", o.flow, o.ifaces, o.yes, want)
	}
	if !slices.Equal(o.command, []string{"sh", "-c", `echo "hi there"; exit 3`}) {
		t.Errorf("command %q", o.command)
	}
	if o.output != out || o.force || o.format != "json" || o.pcap != filepath.Join(dir, "r.pcap") {
		t.Errorf("output %q force %v format %q pcap %q; want %s, no force, json", o.output, o.force, o.format, o.pcap, out)
	}
	again := `diagnose --timeout 20s --flow 198.51.100.2:8080 --iface lo -o ` + out + ` --yes -- sh -c 'echo "hi there"; exit 3'`
	if !strings.Contains(screen, again) {
		t.Errorf("the wizard does not show the command that repeats the run, %s\nterminal:\n%s", again, screen)
	}
	if b, _ := os.ReadFile(old); string(b) != "keep me" {
		t.Errorf("an existing report was touched: %q", b)
	}
}

// TestWizardDefaults takes every default (all interfaces, consent, the proposed report
// name) but waits instead of running a command; then overwriting, and flags given.
func TestWizardDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	o, screen := wizardRun(t, []string{"--proto", "udp"}, func(ft *fakeTerminal) {
		at := ft.waitFor(0, askFlow)
		ft.typ("[2001:db8::2]:53" + keyEnter)
		for _, q := range []string{askIface, "nftables", askReproduce, askSave} {
			at = ft.waitFor(at, q)
			if q == askReproduce {
				ft.typ(keyDown) // wait while I reproduce it elsewhere
			}
			ft.typ(keyEnter)
		}
		ft.waitFor(at, "without questions")
	})
	name := "./diagnose-2001-db8--2-53-udp-20261121-235234.md"
	if o.flow.String() != "[2001:db8::2]:53/udp" || o.ifaces != nil || !o.yes || o.command != nil || o.output != name || o.format != "markdown" {
		t.Errorf("defaults gave %+v", o)
	}
	for _, want := range []string{"wait while I reproduce it elsewhere (up to 30s", name, "lo  (no address)", "veth0  (no address)  (down)"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, screen)
		}
	}

	// The proposed name now exists: overwrite it when told to; "-" is stdout.
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o, _ = wizardRun(t, []string{"--proto", "udp", "--flow", "[2001:db8::2]:53", "--iface", "veth0", "--yes", "--", "true"}, func(ft *fakeTerminal) {
		at := ft.waitFor(0, askSave)
		ft.typ(keyEnter)
		at = ft.waitFor(at, askOverwrite)
		ft.typ("y" + keyEnter)
		ft.waitFor(at, "without questions")
	})
	if o.output != name || !o.force {
		t.Errorf("overwrite: output %q force %v", o.output, o.force)
	}
	o, screen = wizardRun(t, []string{"--flow", "10.0.0.1:80", "-o", "given.md"}, func(ft *fakeTerminal) {
		at := ft.waitFor(0, askIface)
		ft.typ(keyEnter)
		at = ft.waitFor(at, "nftables")
		ft.typ(keyEnter)
		at = ft.waitFor(at, askReproduce)
		ft.typ(keyDown + keyEnter)
		ft.waitFor(at, "without questions")
	})
	if strings.Contains(screen, askFlow) || strings.Contains(screen, askSave) {
		t.Errorf("the wizard asked for what the command line gave:\n%s", screen)
	}
	if o.output != "given.md" || o.command != nil {
		t.Errorf("output %q command %q", o.output, o.command)
	}
}

// TestWizardStdout: "-" writes the report to stdout; no consent ends the run.
func TestWizardStdout(t *testing.T) {
	t.Parallel()
	o, _ := wizardRun(t, []string{"--flow", "10.0.0.1:80", "--iface", "lo", "--yes", "--", "true"}, func(ft *fakeTerminal) {
		at := ft.waitFor(0, askSave)
		ft.typ("-" + keyEnter)
		ft.waitFor(at, "without questions")
	})
	if o.output != "" || o.pcap != "" {
		t.Errorf("output %q pcap %q, want stdout and no capture file", o.output, o.pcap)
	}

	o, err := parseOptions([]string{"--flow", "10.0.0.1:80"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ft := newFakeTerminal(t)
	done := make(chan error, 1)
	go func() { done <- wizard(o, terminalOf(ft.pts, ft.pts), fakeIfaces, time.Now()) }()
	at := ft.waitFor(0, askIface)
	ft.typ(keyEnter)
	ft.waitFor(at, "nftables")
	ft.typ("n" + keyEnter)
	select {
	case err := <-done:
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "nothing was installed") {
			t.Errorf("no consent: %v, want a usage error saying nothing was installed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wizard did not end on no")
	}
}

// TestNoTerminalNeverAsks: with stdin a pipe (held open, so a prompt reading it would
// block) or with --yes, no question is asked and the usage error says what to pass.
func TestNoTerminalNeverAsks(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ft := newFakeTerminal(t)
	cases := []struct {
		name   string
		args   []string
		stdin  *os.File
		stderr io.Writer
		want   string
	}{
		{"pipe", nil, r, ft.pts, "--flow is required: the flow to diagnose as ADDR:PORT, e.g. --flow 10.0.0.1:80 (there is no terminal to ask on)"},
		{"pipe with options", []string{"--iface", "lo", "--", "true"}, r, ft.pts, "--flow is required"},
		{"pipe with flow", []string{"--flow", "10.0.0.1:80"}, r, ft.pts, "pass --yes to allow it (there is no terminal to ask on)"},
		{"terminal with --yes", []string{"--yes"}, ft.pts, ft.pts, "--flow is required: the flow to diagnose as ADDR:PORT, e.g. --flow 10.0.0.1:80 (--yes asks nothing)"},
		{"stderr not a terminal", nil, ft.pts, &bytes.Buffer{}, "there is no terminal to ask on"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- run(context.Background(), c.args, c.stdin, &stdout, c.stderr) }()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("diagnose waited for an answer")
			}
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want a usage error with %q", err, c.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("wrote to stdout: %q", stdout.String())
			}
		})
	}
	// Nothing was asked on the terminal: a marker printed now is the first thing on it.
	if _, err := ft.pts.WriteString("END\n"); err != nil {
		t.Fatal(err)
	}
	ft.waitFor(0, "END")
	if s := ft.text(); !strings.HasPrefix(s, "END") {
		t.Errorf("the terminal shows more than the marker:\n%s", s)
	}
}
