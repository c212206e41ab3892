package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/AlecAivazis/survey/v2"
	"github.com/AlecAivazis/survey/v2/terminal"
	"golang.org/x/term"
)

// tty is the terminal the wizard asks on: prompts go to out, keys come from in. survey
// misbehaves without a terminal (it reads a pipe as keys or blocks on it), so it is reached
// only through a tty, and terminalOf returns none unless both ends are terminals.
type tty struct {
	in, out *os.File
}

// terminalOf returns the terminal to ask on, or nil when stdin or stderr is not one.
func terminalOf(stdin *os.File, stderr io.Writer) *tty {
	out, ok := stderr.(*os.File)
	if stdin == nil || !ok || !isTerminal(stdin) || !isTerminal(out) {
		return nil
	}
	return &tty{in: stdin, out: out}
}

func isTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// ask asks one question on the terminal; Ctrl-C or Ctrl-D end the run before anything
// is installed.
func (t *tty) ask(p survey.Prompt, answer any, opts ...survey.AskOpt) error {
	opts = append(opts, survey.WithStdio(t.in, t.out, t.out))
	err := survey.AskOne(p, answer, opts...)
	if errors.Is(err, terminal.InterruptErr) || errors.Is(err, io.EOF) {
		return usageErrorf("interrupted: nothing was installed")
	}
	if err != nil {
		return fmt.Errorf("ask on the terminal: %w", err)
	}
	return nil
}

// consent asks before the firewall stage changes the ruleset, unless --yes gave it.
func consent(o *options, t *tty) error {
	if o.yes {
		return nil
	}
	if t == nil {
		return usageErrorf("the firewall stage adds a temporary nftables table that marks the flow for tracing; pass --yes to allow it (there is no terminal to ask on)")
	}
	ok := false
	prompt := &survey.Confirm{
		Message: "Add a temporary nftables table that marks this flow for tracing? It changes no packet's fate, and the kernel removes it when diagnose exits, even if killed.",
		Default: true,
	}
	if err := t.ask(prompt, &ok); err != nil {
		return err
	}
	if !ok {
		return usageErrorf("no consent to the temporary nftables table: nothing was installed (pass --yes to skip the question)")
	}
	o.yes = true
	return nil
}
