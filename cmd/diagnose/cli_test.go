package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIUsageErrors is the transcript of bad command lines: each gets one line that says
// what to do, and exit status 2, before anything touches the kernel.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.md")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "--flow is required"},
		{[]string{"--flow", "10.0.0.1"}, "no port"},
		{[]string{"--flow", "10.0.0.1:0"}, "port must be 1-65535"},
		{[]string{"--flow", "10.0.0.1:65536"}, "port must be 1-65535"},
		{[]string{"--flow", "example.com:80"}, "host names are not resolved"},
		{[]string{"--flow", "[fe80::1%eth0]:80"}, "zones are not supported"},
		{[]string{"--flow", "10.0.0.1:80", "--proto", "sctp"}, "use tcp or udp"},
		{[]string{"--flow", "10.0.0.1:80", "--count", "0"}, "--count must be at least 1"},
		{[]string{"--flow", "10.0.0.1:80", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"--flow", "10.0.0.1:80", "--format", "xml"}, "use markdown or json"},
		{[]string{"--flow", "10.0.0.1:80", "--capture", "pcap"}, `--capture "pcap": want tcx, socket or auto`},
		{[]string{"--flow", "10.0.0.1:80", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--flow", "10.0.0.1:80", "stray"}, `unexpected argument "stray": put the reproduction command after --`},
		{[]string{"--flow", "10.0.0.1:80", "-o", existing}, "exists: pass --force to overwrite it"},
		{[]string{"--flow", "10.0.0.1:80", "-o", filepath.Join(dir, "nodir", "r.md")}, "does not exist"},
		{[]string{"--flow", "10.0.0.1:80", "-o", dir}, "is a directory"},
		{[]string{"--flow", "10.0.0.1:80", "--yes", "--", "/nonexistent/repro"}, "reproduction command \"/nonexistent/repro\" not found"},
		{[]string{"--flow", "10.0.0.1:80"}, "pass --yes to allow it (there is no terminal to ask on)"},
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), c.args, devnull, &stdout, &stderr)
		if code := exitCode(err); code != exitUsage {
			t.Errorf("diagnose %s: exit %d (%v), want %d", strings.Join(c.args, " "), code, err, exitUsage)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("diagnose %s: %q, want one line with %q", strings.Join(c.args, " "), err, c.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("diagnose %s wrote to stdout: %q", strings.Join(c.args, " "), stdout.String())
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("an existing report was overwritten: %q", b)
	}
}

func TestCLIHelpAndVersion(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: diagnose --flow ADDR:PORT", "Examples:", "-timeout", "Exit status",
		"a wizard asks for the flow", "--redact", "--yes, or\nwithout a terminal, it asks nothing"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, stderr.String())
		}
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"--version"}, nil, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "diagnose ") {
		t.Errorf("--version: %q, %v", stdout.String(), err)
	}
}

func TestOutputPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for out, pcap := range map[string]string{
		"report.md":   "report.pcap",
		"report.json": "report.pcap",
		"report":      "report.pcap",
		"a.b/r.txt":   "a.b/r.pcap",
	} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(out)), 0o755); err != nil {
			t.Fatal(err)
		}
		o := &options{output: filepath.Join(dir, out)}
		if err := o.checkOutput(); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if want := filepath.Join(dir, pcap); o.pcap != want {
			t.Errorf("-o %s: capture %s, want %s", out, o.pcap, want)
		}
	}
	o := &options{output: filepath.Join(dir, "r.json")}
	if err := o.resolveFormat(false); err != nil || o.format != "json" {
		t.Errorf("-o r.json: format %q, %v; want json", o.format, err)
	}
}

// TestRedactFlag: --redact writes no capture file, whose packets hold the addresses the
// report hides.
func TestRedactFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--flow", "10.0.0.1:80", "--yes", "--redact", "-o", filepath.Join(dir, "r.md")}
	o, err := parseOptions(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !o.redact || o.pcap != "" {
		t.Errorf("--redact: redact %v, capture file %q; want no capture file", o.redact, o.pcap)
	}
}
