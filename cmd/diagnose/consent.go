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

// consent asks before the firewall stage changes the ruleset. survey misbehaves without a
// terminal (it reads a pipe as keys or blocks on it), so it is reached only from one.
func consent(o *options, stdin *os.File, stderr io.Writer) error {
	if o.yes {
		return nil
	}
	if stdin == nil || !term.IsTerminal(int(stdin.Fd())) {
		return usageErrorf("the firewall stage adds a temporary nftables table that marks the flow for tracing; pass --yes to allow it (there is no terminal to ask on)")
	}
	ok := false
	prompt := &survey.Confirm{
		Message: "Add a temporary nftables table that marks this flow for tracing? It changes no packet's fate, and the kernel removes it when diagnose exits, even if killed.",
		Default: true,
	}
	err := survey.AskOne(prompt, &ok, survey.WithStdio(stdin, os.Stderr, os.Stderr))
	if errors.Is(err, terminal.InterruptErr) {
		return usageErrorf("interrupted: nothing was installed")
	}
	if err != nil {
		return fmt.Errorf("ask for consent: %w", err)
	}
	if !ok {
		return usageErrorf("no consent to the temporary nftables table: nothing was installed (pass --yes to skip the question)")
	}
	return nil
}
