package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// options is the parsed command line.
type options struct {
	flow     evidence.Flow
	ifaces   []string
	timeout  time.Duration
	count    int // 0: no limit
	format   string
	output   string
	pcap     string
	force    bool
	yes      bool
	command  []string
	version  bool
	flowSpec string
}

const usageText = `Usage: diagnose --flow ADDR:PORT [--proto tcp|udp] [--iface NAME] [--timeout DUR] [--count N]
                [--format markdown|json] [-o FILE] [--force] [--yes] [-- COMMAND [ARG...]]

diagnose finds where, and why, the kernel drops a flow's packets: it captures the flow,
traces it through nftables and records every kernel drop of it, then writes a verdict
report (Markdown for a ticket, JSON for machines).

Examples:
  # diagnose TCP port 80 of 198.51.100.2 while curl reproduces the problem
  diagnose --flow 198.51.100.2:80 --yes -- curl -sS http://198.51.100.2/
  # wait up to a minute while you reproduce it from elsewhere; save the report
  diagnose --flow [2001:db8::2]:53 --proto udp --timeout 60s -o dns.md
  # machine-readable, inside a container's network namespace
  ip netns exec web diagnose --flow 203.0.113.7:443 --yes --format json -- ./repro.sh

Options:
`

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.flowSpec, "flow", "", "the flow: every packet to or from `ADDR:PORT` (IPv6 in brackets)")
	proto := fs.String("proto", "tcp", "transport `PROTO`: tcp or udp")
	iface := fs.String("iface", "", "capture only on these interfaces, comma-separated `NAMES` (default: every interface)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "stop capturing after `DUR`")
	fs.IntVar(&o.count, "count", 0, "stop after `N` matching packets (default: no limit)")
	fs.StringVar(&o.format, "format", "", "report `FORMAT`: markdown or json (default: from -o's extension, else markdown)")
	fs.StringVar(&o.output, "o", "", "write the report to `FILE` (default: stdout) and the capture to FILE's name with .pcap")
	fs.BoolVar(&o.force, "force", false, "overwrite the report and capture files if they exist")
	fs.BoolVar(&o.yes, "yes", false, "consent to the temporary nftables trace table without asking")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	help := fs.Bool("help", false, "show this help")
	fs.BoolVar(help, "h", false, "show this help")

	if err := fs.Parse(args); err != nil {
		return nil, usageErrorf("%v (see diagnose --help)", err)
	}
	if *help {
		printUsage(stderr, fs)
		return nil, errHelp
	}
	if o.version {
		return o, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if rest := fs.Args(); len(rest) > 0 {
		// flag stops at "--" and drops it; anything else left over is a stray argument.
		if len(args) < len(rest)+1 || args[len(args)-len(rest)-1] != "--" {
			return nil, usageErrorf("unexpected argument %q: put the reproduction command after --", rest[0])
		}
		o.command = rest
	}
	if o.flowSpec == "" {
		return nil, usageErrorf("--flow is required: the flow to diagnose as ADDR:PORT, e.g. --flow 10.0.0.1:80")
	}
	p, err := evidence.ParseProto(*proto)
	if err != nil {
		return nil, usageErrorf("--proto: %v", err)
	}
	if o.flow, err = evidence.ParseFlow(o.flowSpec, p); err != nil {
		return nil, usageErrorf("--flow: %v", err)
	}
	if *iface != "" {
		for _, name := range strings.Split(*iface, ",") {
			if name = strings.TrimSpace(name); name != "" {
				o.ifaces = append(o.ifaces, name)
			}
		}
		if len(o.ifaces) == 0 {
			return nil, usageErrorf("--iface %q names no interface", *iface)
		}
	}
	if o.timeout <= 0 {
		return nil, usageErrorf("--timeout must be positive, e.g. --timeout 30s")
	}
	if set["count"] && o.count < 1 {
		return nil, usageErrorf("--count must be at least 1 (leave it out for no limit)")
	}
	if err := o.resolveFormat(set["format"]); err != nil {
		return nil, err
	}
	if err := o.checkOutput(); err != nil {
		return nil, err
	}
	if len(o.command) > 0 {
		if _, err := exec.LookPath(o.command[0]); err != nil {
			return nil, usageErrorf("reproduction command %q not found: give a program on PATH or a path to it", o.command[0])
		}
	}
	return o, nil
}

var errHelp = errors.New("help shown")

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageText)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "h" {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		left := dash + f.Name
		if name != "" {
			left += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  %-20s %s\n", left, usage)
	})
	fmt.Fprint(w, `
Exit status: 0 a report was written (whatever the verdict), 2 bad usage,
3 this host cannot run it (not root, no BPF, no BTF), 1 anything else.
`)
}

func (o *options) resolveFormat(given bool) error {
	if !given {
		o.format = "markdown"
		if strings.EqualFold(filepath.Ext(o.output), ".json") {
			o.format = "json"
		}
		return nil
	}
	switch strings.ToLower(o.format) {
	case "markdown", "md":
		o.format = "markdown"
	case "json":
		o.format = "json"
	default:
		return usageErrorf("--format %q: use markdown or json", o.format)
	}
	return nil
}

// checkOutput refuses, before anything is armed, to overwrite files or write where it
// cannot: a run should not end with a report that has nowhere to go.
func (o *options) checkOutput() error {
	if o.output == "" {
		return nil
	}
	o.pcap = strings.TrimSuffix(o.output, filepath.Ext(o.output)) + ".pcap"
	if o.pcap == o.output {
		o.pcap = o.output + ".pcap"
	}
	for _, path := range []string{o.output, o.pcap} {
		st, err := os.Stat(path)
		switch {
		case err == nil && st.IsDir():
			return usageErrorf("-o %s: %s is a directory: name a file", o.output, path)
		case err == nil && !o.force:
			return usageErrorf("-o %s: %s exists: pass --force to overwrite it, or choose another name", o.output, path)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return usageErrorf("-o %s: %v", o.output, err)
		}
	}
	dir := filepath.Dir(o.output)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usageErrorf("-o %s: directory %s does not exist", o.output, dir)
	}
	return nil
}
