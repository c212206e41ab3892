package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/AlecAivazis/survey/v2"
	"github.com/kballard/go-shellquote"

	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// The wizard's questions, in the order it asks them. Tests wait for these texts.
const (
	askFlow      = "Which flow? ADDR:PORT"
	askIface     = "Capture on which interface?"
	askReproduce = "How will you reproduce the problem?"
	askCommand   = "Command that reproduces it:"
	askSave      = "Save the report to"
	askOverwrite = "Overwrite"

	allIfaces = "all interfaces"
	runIt     = "run a command (diagnose starts it once every stage is armed)"
	stdoutArg = "-"
)

// wizard asks on the terminal for what the command line left out: the flow, the
// interface, consent to the trace table, how to reproduce and where to save the report.
// A flag given on the command line is never asked again. It fills in o and prints the
// command that repeats the run without questions.
func wizard(o *options, t *tty, ifaces func() ([]net.Interface, error), now time.Time) error {
	fmt.Fprintln(t.out, "diagnose: a few questions (Ctrl-C to quit; nothing is installed before the last answer)")
	if !o.given["flow"] {
		if err := o.askFlow(t); err != nil {
			return err
		}
	}
	if !o.given["iface"] {
		if err := o.askIface(t, ifaces); err != nil {
			return err
		}
	}
	if err := consent(o, t); err != nil {
		return err
	}
	if len(o.command) == 0 {
		if err := o.askReproduce(t); err != nil {
			return err
		}
	}
	if !o.given["o"] {
		if err := o.askOutput(t, now); err != nil {
			return err
		}
	}
	fmt.Fprintf(t.out, "diagnose: to run this again without questions: %s\n", report.ShellJoin(append([]string{"diagnose"}, o.commandLine()...)))
	return nil
}

func (o *options) askFlow(t *tty) error {
	spec := ""
	prompt := &survey.Input{
		Message: fmt.Sprintf("%s (%s; IPv6 in brackets)", askFlow, o.proto),
		Help:    "every packet to or from ADDR:PORT is captured, traced through nftables and its drops recorded, e.g. 10.0.0.1:80 or [2001:db8::1]:53; --proto udp for UDP",
	}
	valid := func(ans any) error {
		_, err := evidence.ParseFlow(strings.TrimSpace(fmt.Sprint(ans)), o.proto)
		return err
	}
	if err := t.ask(prompt, &spec, survey.WithValidator(valid)); err != nil {
		return err
	}
	o.flowSpec = strings.TrimSpace(spec)
	var err error
	o.flow, err = evidence.ParseFlow(o.flowSpec, o.proto)
	return err
}

// askIface offers every interface of this namespace with its addresses.
func (o *options) askIface(t *tty, list func() ([]net.Interface, error)) error {
	ifaces, err := list()
	if err != nil || len(ifaces) == 0 {
		fmt.Fprintf(t.out, "diagnose: cannot list the interfaces (%v): capturing on all of them\n", err)
		return nil
	}
	labels := []string{allIfaces}
	for _, ifi := range ifaces {
		labels = append(labels, ifaceLabel(ifi))
	}
	choice := 0
	prompt := &survey.Select{
		Message: askIface,
		Options: labels,
		Default: allIfaces,
		Help:    "the capture sees the flow only on the interfaces chosen; the nftables trace and the kernel drops see the whole namespace",
	}
	if err := t.ask(prompt, &choice, survey.WithPageSize(min(len(labels), 12))); err != nil {
		return err
	}
	if choice > 0 {
		o.ifaces = []string{ifaces[choice-1].Name}
	}
	return nil
}

// ifaceLabel is "veth0  198.51.100.2/24, 2001:db8::2/64", with "(down)" when it is down.
func ifaceLabel(ifi net.Interface) string {
	var addrs []string
	if as, err := ifi.Addrs(); err == nil {
		for _, a := range as {
			addrs = append(addrs, a.String())
		}
	}
	label := ifi.Name
	if len(addrs) > 0 {
		label += "  " + strings.Join(addrs, ", ")
	} else {
		label += "  (no address)"
	}
	if ifi.Flags&net.FlagUp == 0 {
		label += "  (down)"
	}
	return label
}

func (o *options) askReproduce(t *tty) error {
	wait := fmt.Sprintf("wait while I reproduce it elsewhere (up to %s; Ctrl-C to stop sooner)", o.timeout)
	choice := 0
	prompt := &survey.Select{
		Message: askReproduce,
		Options: []string{runIt, wait},
		Default: runIt,
	}
	if err := t.ask(prompt, &choice); err != nil {
		return err
	}
	if choice != 0 {
		return nil
	}
	line := ""
	valid := func(ans any) error {
		_, err := splitCommand(fmt.Sprint(ans))
		return err
	}
	input := &survey.Input{
		Message: askCommand,
		Help:    "a command line as a shell would split it, e.g. curl -sS http://10.0.0.1/; its output shows here, and capture ends a second after it exits",
	}
	if err := t.ask(input, &line, survey.WithValidator(valid)); err != nil {
		return err
	}
	var err error
	o.command, err = splitCommand(line)
	return err
}

// splitCommand splits a command line the way a shell would (quotes, backslashes; no
// variables or globs) and checks that the program exists.
func splitCommand(line string) ([]string, error) {
	args, err := shellquote.Split(line)
	if err != nil {
		return nil, fmt.Errorf("cannot split %q: %w", line, err)
	}
	if err := checkCommand(args); err != nil {
		return nil, err
	}
	return args, nil
}

// defaultReport is ./diagnose-<flow>-<time>.md, a name no earlier run has taken.
func defaultReport(f evidence.Flow, now time.Time) string {
	flow := strings.NewReplacer("[", "", "]", "", ":", "-", "/", "-").Replace(f.String())
	return "./diagnose-" + flow + "-" + now.Format("20060102-150405") + ".md"
}

// askOutput asks where to save the report, until the answer is a file it may write:
// "-" is stdout, and an existing file is overwritten only when the user says so.
func (o *options) askOutput(t *tty, now time.Time) error {
	valid := func(ans any) error {
		path := strings.TrimSpace(fmt.Sprint(ans))
		if path == stdoutArg {
			return nil
		}
		check := &options{output: path, force: true, redact: o.redact}
		if err := check.checkOutput(); err != nil {
			var e *exitError
			if errors.As(err, &e) {
				return e.err
			}
			return err
		}
		return nil
	}
	for {
		path := ""
		prompt := &survey.Input{
			Message: askSave + " (" + stdoutArg + " for stdout)",
			Default: defaultReport(o.flow, now),
			Help:    "a .json name writes JSON, any other Markdown; the capture goes next to it with .pcap",
		}
		if err := t.ask(prompt, &path, survey.WithValidator(valid)); err != nil {
			return err
		}
		path = strings.TrimSpace(path)
		if path == stdoutArg {
			o.output, o.force = "", false
			return o.checkOutput()
		}
		o.output, o.force = path, false
		if old := o.existing(); len(old) > 0 {
			overwrite := false
			confirm := &survey.Confirm{Message: fmt.Sprintf("%s %s? It exists.", askOverwrite, strings.Join(old, " and "))}
			if err := t.ask(confirm, &overwrite); err != nil {
				return err
			}
			if !overwrite {
				continue
			}
			o.force = true
		}
		if !o.given["format"] {
			if err := o.resolveFormat(false); err != nil {
				return err
			}
		}
		return o.checkOutput()
	}
}
