// Package kerr classifies the kernel's refusals for every stage: one privilege error and
// one missing-feature error, each with the fix in its message, so that cmd maps them to
// exit status 3 without knowing which stage failed.
package kerr

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

var (
	// ErrPrivilege is wrapped by errors the process's privileges cause.
	ErrPrivilege = errors.New("insufficient privilege")
	// ErrUnsupported is wrapped by errors a missing kernel feature causes.
	ErrUnsupported = errors.New("not supported by this kernel")
)

// kindError is an error that also matches a sentinel, keeping the message unchanged.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// Capabilities, as the kernel numbers them.
const (
	CapNetAdmin = 12
	CapNetRaw   = 13
	CapSysAdmin = 21
	CapPerfmon  = 38
	CapBPF      = 39
)

var capNames = map[int]string{CapNetAdmin: "CAP_NET_ADMIN", CapNetRaw: "CAP_NET_RAW", CapSysAdmin: "CAP_SYS_ADMIN", CapPerfmon: "CAP_PERFMON", CapBPF: "CAP_BPF"}

// bpfCaps are what loading and attaching tracing programs needs (CAP_SYS_ADMIN stands for
// both on kernels before 5.8).
var bpfCaps = []int{CapBPF, CapPerfmon}

// IsPermission tells whether err is the kernel refusing for want of privilege.
func IsPermission(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, os.ErrPermission)
}

// Denied wraps err, a refusal of what, with ErrPrivilege and the fix: the capabilities it
// needs, or, when the process has them, the policy that refuses it anyway.
func Denied(what string, err error, caps ...int) error {
	return &kindError{ErrPrivilege, fmt.Errorf("%s: %w (%s)", what, err, privilegeHint(caps))}
}

// Unsupported wraps err, the kernel lacking what the step needs, with ErrUnsupported;
// needs says what the kernel must have, "" when err says it already.
func Unsupported(what, needs string, err error) error {
	if needs != "" {
		return &kindError{ErrUnsupported, fmt.Errorf("%s: %w (the kernel needs %s)", what, err, needs)}
	}
	return &kindError{ErrUnsupported, fmt.Errorf("%s: %w", what, err)}
}

// BPF wraps the error of a BPF step with what it failed to do and, when it is a privilege
// or feature problem, with the fix and the matching sentinel. A missing feature is named by
// err itself (cilium/ebpf says which kfunc, map type or attach type).
func BPF(what string, err error) error { return BPFNeeds(what, "", err) }

// BPFNeeds is BPF for a step whose missing feature the caller can name better than err
// does: needs is what the kernel must have, said only when the kernel reports the feature
// missing.
func BPFNeeds(what, needs string, err error) error {
	switch {
	case IsPermission(err):
		return Denied(what, err, bpfCaps...)
	case errors.Is(err, unix.ENOSYS):
		return Unsupported(what, "the bpf() system call, CONFIG_BPF_SYSCALL", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return Unsupported(what, needs, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// What the kernel needs for the BPF steps BPFNeeds names.
const (
	NeedsBTF     = "BTF, CONFIG_DEBUG_INFO_BTF"
	NeedsBPFTP   = "BPF programs on tracepoints, CONFIG_BPF_EVENTS"
	NeedsBTFTP   = "BTF tracepoint programs (tp_btf, Linux 5.5+), CONFIG_BPF_EVENTS and CONFIG_DEBUG_INFO_BTF"
	NeedsRingbuf = "BPF ring buffers (Linux 5.8+)"
)

// BTF wraps the error of loading the kernel's BTF.
func BTF(err error) error { return BPFNeeds("load kernel BTF", NeedsBTF, err) }

// privilegeHint tells a missing capability from a policy that refuses even a process that
// has them (lockdown, an LSM, seccomp): the fixes differ.
func privilegeHint(caps []int) string {
	names := make([]string, len(caps))
	for i, c := range caps {
		names[i] = capNames[c]
	}
	need := strings.Join(names, " and ")
	eff, ok := effectiveCaps()
	has := func(c int) bool { return eff&(1<<c) != 0 }
	all := ok && len(caps) > 0
	for _, c := range caps {
		all = all && has(c)
	}
	if all || ok && has(CapSysAdmin) && slices.Equal(caps, bpfCaps) {
		return fmt.Sprintf("refused although the process has %s: a security policy (kernel lockdown, an LSM, seccomp) forbids it", need)
	}
	return fmt.Sprintf("need %s: run as root", need)
}

func effectiveCaps() (uint64, bool) {
	f, err := os.Open("/proc/thread-self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return caps, err == nil
		}
	}
	return 0, false
}

// Join combines the errors of alternatives that all failed into one message; it matches
// every sentinel any of them matches.
func Join(what string, errs ...error) error {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return &joinedError{msg: what + ": " + strings.Join(msgs, "; "), errs: errs}
}

type joinedError struct {
	msg  string
	errs []error
}

func (e *joinedError) Error() string   { return e.msg }
func (e *joinedError) Unwrap() []error { return e.errs }
