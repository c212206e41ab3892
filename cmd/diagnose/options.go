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

	"github.com/packetmortem/packetmortem/stages/arrival"
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
	redact   bool
	flowSpec string
	proto    evidence.Proto
	capture  string // arrival.Method*
	// netnsSpec is --netns: the namespace to diagnose, "" for diagnose's own; container is
	// --container, which names it by its container.
	netnsSpec string
	container string
	// given holds the flags set on the command line: the wizard never asks for them again.
	given map[string]bool
	// flags is the command line before "--": the wizard adds its answers to it, so the
	// report shows a command that repeats the run without questions.
	flags []string
}

const usageText = `Usage: diagnose --flow ADDR:PORT [--proto tcp|udp] [--iface NAME] [--timeout DUR] [--count N]
                [--format markdown|json] [-o FILE] [--force] [--yes] [--redact]
                [--capture tcx|socket|auto] [--netns NS | --container NAME]
                [-- COMMAND [ARG...]]
       diagnose [OPTIONS]     on a terminal: asks for the flow and the rest

diagnose finds where, and why, the kernel drops a flow's packets: it captures the flow,
traces it through nftables and records every kernel drop of it, then writes a verdict
report (Markdown for a ticket, JSON for machines).

Without --flow, on a terminal, a wizard asks for the flow, the interface, consent to the
temporary nftables table, how to reproduce the problem and where to save the report,
skipping what the command line already says; at the end it prints the command that
repeats the run without questions. With --flow it asks only for consent. With --yes, or
without a terminal, it asks nothing and --flow is required.

Examples:
  # let the wizard ask for everything
  diagnose
  # diagnose TCP port 80 of 198.51.100.2 while curl reproduces the problem
  diagnose --flow 198.51.100.2:80 --yes -- curl -sS http://198.51.100.2/
  # wait up to a minute while you reproduce it from elsewhere; save the report
  diagnose --flow [2001:db8::2]:53 --proto udp --timeout 60s -o dns.md
  # machine-readable, inside a container's network namespace (or: ip netns exec web diagnose ...)
  diagnose --netns web --flow 203.0.113.7:443 --yes --format json -- ./repro.sh
  # a Kubernetes pod's namespace, by the PID of one of its processes, or a container's
  diagnose --netns pid:4242 --flow 10.244.1.7:8080 --yes
  diagnose --container web --flow 172.17.0.2:80 --yes

Options:
`

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.flowSpec, "flow", "", "the flow: every packet to or from `ADDR:PORT` (IPv6 in brackets)")
	proto := fs.String("proto", "tcp", "transport `PROTO`: tcp or udp")
	iface := fs.String("iface", "", "capture only on these interfaces, comma-separated `NAMES` (default: every interface)")
	fs.StringVar(&o.netnsSpec, "netns", "", "diagnose network namespace `NS` instead of this one: a name under /run/netns, a path (/proc/PID/ns/net, /var/run/docker/netns/ID) or pid:N (the namespace of process N); the reproduction command still runs here")
	fs.StringVar(&o.container, "container", "", "diagnose the network namespace of container `NAME|ID`: a Docker container by name or id, a Kubernetes pod by namespace/pod or a container's name or id (read from the runtimes' state on disk)")
	fs.StringVar(&o.capture, "capture", "auto", "how to capture: `HOW` is tcx (BPF programs on each interface, Linux 6.6+), socket (an AF_PACKET socket) or auto (tcx where it works)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "stop capturing after `DUR`")
	fs.IntVar(&o.count, "count", 0, "stop after `N` matching packets (default: no limit)")
	fs.StringVar(&o.format, "format", "", "report `FORMAT`: markdown or json (default: from -o's extension, else markdown)")
	fs.StringVar(&o.output, "o", "", "write the report to `FILE` (default: stdout) and the capture to FILE's name with .pcap and .pcapng (each packet with its fate)")
	fs.BoolVar(&o.force, "force", false, "overwrite the report and capture files if they exist")
	fs.BoolVar(&o.yes, "yes", false, "consent to the temporary nftables trace table, and ask nothing")
	fs.BoolVar(&o.redact, "redact", false, "replace addresses and host names in the report by stable pseudonyms (no .pcap is written)")
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
	o.given = set
	o.flags = args

	if rest := fs.Args(); len(rest) > 0 {
		// flag stops at "--" and drops it; anything else left over is a stray argument.
		if len(args) < len(rest)+1 || args[len(args)-len(rest)-1] != "--" {
			return nil, usageErrorf("unexpected argument %q: put the reproduction command after --", rest[0])
		}
		o.command = rest
		o.flags = args[:len(args)-len(rest)-1]
	} else if n := len(args); n > 0 && args[n-1] == "--" {
		o.flags = args[:n-1]
	}
	var err error
	if o.proto, err = evidence.ParseProto(*proto); err != nil {
		return nil, usageErrorf("--proto: %v", err)
	}
	// A missing --flow is for run to decide: the wizard asks for it on a terminal.
	if set["flow"] {
		if o.flow, err = evidence.ParseFlow(o.flowSpec, o.proto); err != nil {
			return nil, usageErrorf("--flow: %v", err)
		}
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
	if o.netnsSpec != "" && o.container != "" {
		return nil, usageErrorf("--netns and --container both name the namespace: give one")
	}
	switch o.capture {
	case "auto":
		o.capture = arrival.MethodAuto
	case arrival.MethodTCX, arrival.MethodSocket:
	default:
		return nil, usageErrorf("--capture %q: want tcx, socket or auto", o.capture)
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
		if err := checkCommand(o.command); err != nil {
			return nil, usageErrorf("%v", err)
		}
	}
	return o, nil
}

// missingFlow is the usage error when --flow is missing and nobody can be asked for it.
func missingFlow(yes bool) error {
	why := "there is no terminal to ask on"
	if yes {
		why = "--yes asks nothing"
	}
	return usageErrorf("--flow is required: the flow to diagnose as ADDR:PORT, e.g. --flow 10.0.0.1:80 (%s)", why)
}

// checkCommand refuses a reproduction command that cannot start.
func checkCommand(command []string) error {
	if len(command) == 0 || command[0] == "" {
		return errors.New("no command given")
	}
	if _, err := exec.LookPath(command[0]); err != nil {
		return fmt.Errorf("reproduction command %q not found: give a program on PATH or a path to it", command[0])
	}
	return nil
}

// commandLine is the command line that repeats this run without questions: the flags
// given, the wizard's answers, then the reproduction command.
func (o *options) commandLine() []string {
	line := append([]string{}, o.flags...)
	if !o.given["flow"] && o.flowSpec != "" {
		line = append(line, "--flow", o.flowSpec)
	}
	if !o.given["iface"] && len(o.ifaces) > 0 {
		line = append(line, "--iface", strings.Join(o.ifaces, ","))
	}
	if !o.given["o"] && o.output != "" {
		line = append(line, "-o", o.output)
		if o.force && !o.given["force"] {
			line = append(line, "--force")
		}
	}
	if !o.given["yes"] && o.yes {
		line = append(line, "--yes")
	}
	if len(o.command) > 0 {
		line = append(append(line, "--"), o.command...)
	}
	return line
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

// pcapPath is where the capture goes next to the report: FILE's name with .pcap. --redact
// writes none: the packets hold the addresses the report hides.
func (o *options) pcapPath() string {
	if o.output == "" || o.redact {
		return ""
	}
	pcap := strings.TrimSuffix(o.output, filepath.Ext(o.output)) + ".pcap"
	if pcap == o.output {
		pcap = o.output + ".pcap"
	}
	return pcap
}

// pcapngPath is where the capture goes again with each packet's fate as its comment.
func (o *options) pcapngPath() string {
	if pcap := o.pcapPath(); pcap != "" {
		return pcap + "ng"
	}
	return ""
}

// existing lists the files -o would overwrite: the report and the captures.
func (o *options) existing() []string {
	var paths []string
	for _, path := range []string{o.output, o.pcapPath(), o.pcapngPath()} {
		if st, err := os.Stat(path); path != "" && err == nil && !st.IsDir() {
			paths = append(paths, path)
		}
	}
	return paths
}

// checkOutput refuses, before anything is armed, to overwrite files or write where it
// cannot: a run should not end with a report that has nowhere to go.
func (o *options) checkOutput() error {
	o.pcap = o.pcapPath()
	if o.output == "" {
		return nil
	}
	for _, path := range []string{o.output, o.pcap, o.pcapngPath()} {
		if path == "" {
			continue
		}
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
