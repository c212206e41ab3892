package kdrop

import "time"

// The kernel plumbing other BPF stages share with this one (stages/path): error
// classification, namespace names, interface names, clocks and tracefs. Thin wrappers, so
// that the rest of the package keeps its unexported names.

// Classify wraps err with what failed and, for a privilege or missing-feature cause, the
// fix and ErrPrivilege or ErrUnsupported.
func Classify(what string, err error) error { return classify(what, err) }

// ClassifyBTF is Classify for loading the kernel's BTF.
func ClassifyBTF(err error) error { return classifyNeeds("load kernel BTF", needsBTF, err) }

// JoinErrors combines the errors of alternatives that all failed into one message that
// matches every sentinel any of them matches.
func JoinErrors(what string, errs ...error) error { return joinErrors(what, errs...) }

// NetnsNames maps namespace inodes to their names under /run/netns.
func NetnsNames() map[uint64]string { return netnsNames() }

// OwnNetns is the inode of this process's network namespace, 0 when unreadable.
func OwnNetns() uint64 { return ownNetns() }

// IfaceName names an interface of this process's namespace, "" when there is none.
func IfaceName(ifindex int) string { return ifaceName(ifindex) }

// MonoClock converts bpf_ktime_get_ns readings (CLOCK_MONOTONIC) to wall time.
type MonoClock struct{ c monoClock }

// NewMonoClock samples the offset between CLOCK_MONOTONIC and wall time.
func NewMonoClock() (MonoClock, error) {
	c, err := newMonoClock()
	return MonoClock{c}, err
}

// WallTime is the wall time of a CLOCK_MONOTONIC reading in nanoseconds.
func (c MonoClock) WallTime(ktimeNs uint64) time.Time { return c.c.wallTime(ktimeNs) }

// TracefsMounted says whether cilium/ebpf will find tracefs to attach classic
// tracepoints. Ask before cilium/ebpf's first look: the library remembers its answer.
func TracefsMounted() bool { return tracefsMounted() }

// WithPrivateTracefs runs fn where tracefs is mounted, in a mount namespace of a thread of
// its own that dies with it: for attaching classic tracepoints under `ip netns exec`.
func WithPrivateTracefs(fn func() error) error { return withPrivateTracefs(fn) }
