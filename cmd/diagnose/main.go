// Command diagnose finds where, and why, the Linux kernel dropped a flow's packets, and
// writes a verdict report. See diagnose --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintf(os.Stderr, "diagnose: %v\n", err)
	}
	os.Exit(exitCode(err))
}

// run is the whole program; it returns errors that carry their exit status.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) (err error) {
	// A panic unwinds through the stages' deferred Closes first, so the kernel objects are
	// released; what reaches the user is one line, not a goroutine dump.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v (please report it with the command line)", p)
		}
	}()
	o, err := parseOptions(args, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintf(stdout, "diagnose %s\n", version)
		return nil
	}
	t := terminalOf(stdin, stderr)
	if !o.given["flow"] {
		// --yes and a missing terminal never reach survey.
		if o.yes || t == nil {
			return missingFlow(o.yes)
		}
		// Root first: questions answered for a run that cannot start are wasted.
		if err := needRoot(); err != nil {
			return err
		}
		if err := wizard(o, t, net.Interfaces, time.Now()); err != nil {
			return err
		}
		// Ctrl-C between two questions reaches the signal handler, not survey.
		if ctx.Err() != nil {
			return usageErrorf("interrupted: nothing was installed")
		}
		args = o.commandLine()
	} else if err := consent(o, t); err != nil {
		return err
	}
	if err := needRoot(); err != nil {
		return err
	}
	return diagnose(ctx, o, args, stdout, stderr)
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return hostError(errors.New("need root: diagnose loads BPF programs (CAP_BPF, CAP_PERFMON), installs an nftables table (CAP_NET_ADMIN) and captures packets (CAP_NET_RAW); run it with sudo"))
	}
	return nil
}
