package kdrop

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

var (
	// ErrPrivilege is wrapped by errors the process's privileges cause: cmd exits 3 on it.
	ErrPrivilege = errors.New("insufficient privilege")
	// ErrUnsupported is wrapped by errors a missing kernel feature causes (no BPF, no BTF,
	// no kfree_skb tracepoint): cmd exits 3 on it too, with a different advice.
	ErrUnsupported = errors.New("not supported by this kernel")
)

// kindError is an error that also matches a sentinel, keeping the message unchanged.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// classify wraps err with what it failed to do and, when it is a privilege or feature
// problem, with the fix and the matching sentinel. A missing feature is named by err
// itself (cilium/ebpf says which kfunc, map type or attach type).
func classify(what string, err error) error { return classifyNeeds(what, "", err) }

// classifyNeeds is classify for a step whose missing feature the caller can name better
// than err does: needs is what the kernel must have (its config options), said only when
// the kernel reports the feature missing.
func classifyNeeds(what, needs string, err error) error {
	switch {
	case isPermission(err):
		return &kindError{ErrPrivilege, fmt.Errorf("%s: %w (%s)", what, err, privilegeHint())}
	case errors.Is(err, unix.ENOSYS):
		return &kindError{ErrUnsupported, fmt.Errorf("%s: %w (the kernel has no bpf() system call: it needs CONFIG_BPF_SYSCALL)", what, err)}
	case errors.Is(err, ebpf.ErrNotSupported) && needs != "":
		return &kindError{ErrUnsupported, fmt.Errorf("%s: %w (the kernel needs %s)", what, err, needs)}
	case errors.Is(err, ebpf.ErrNotSupported):
		return &kindError{ErrUnsupported, fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// What the kernel needs for the steps that classifyNeeds names.
const (
	needsBTF     = "BTF, CONFIG_DEBUG_INFO_BTF"
	needsBPFTP   = "BPF programs on tracepoints, CONFIG_BPF_EVENTS"
	needsBTFTP   = "BTF tracepoint programs (tp_btf, Linux 5.5+), CONFIG_BPF_EVENTS and CONFIG_DEBUG_INFO_BTF"
	needsRingbuf = "BPF ring buffers (Linux 5.8+)"
)

func isPermission(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, os.ErrPermission)
}

// privilegeHint tells a missing capability from a policy that refuses even a process that
// has them (lockdown, an LSM, seccomp): the fixes differ.
func privilegeHint() string {
	const (
		capSysAdmin = 21
		capPerfmon  = 38
		capBPF      = 39
	)
	eff, ok := effectiveCaps()
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if ok && (has(capSysAdmin) || (has(capBPF) && has(capPerfmon))) {
		return "refused although the process has CAP_BPF and CAP_PERFMON: a security policy (kernel lockdown, an LSM, seccomp) forbids it"
	}
	return "need CAP_BPF and CAP_PERFMON: run as root"
}

func effectiveCaps() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
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

// joinErrors combines the errors of alternatives that all failed into one message; it
// matches every sentinel any of them matches (both mean exit 3 to cmd).
func joinErrors(what string, errs ...error) error {
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
