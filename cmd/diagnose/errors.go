package main

import (
	"errors"
	"fmt"
)

// Exit statuses: a contract for scripts.
const (
	exitOK       = 0
	exitInternal = 1 // anything else
	exitUsage    = 2 // bad usage: the user can fix the command line
	exitHost     = 3 // the host cannot run it: not root, no BPF, no BTF, ...
)

// exitError carries the exit status of an error up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func hostError(err error) error {
	return &exitError{code: exitHost, err: err}
}

// exitCode maps an error to its exit status; untyped errors are internal.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitInternal
}
