package kerr

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

func TestBPF(t *testing.T) {
	t.Parallel()
	err := BPF("attach tp_btf/kfree_skb", fmt.Errorf("create tracing link: %w", unix.EPERM))
	if !errors.Is(err, ErrPrivilege) || !errors.Is(err, unix.EPERM) {
		t.Errorf("%v: not ErrPrivilege and EPERM", err)
	}
	if !strings.HasPrefix(err.Error(), "attach tp_btf/kfree_skb: create tracing link: operation not permitted (") ||
		!strings.Contains(err.Error(), "CAP_BPF") {
		t.Errorf("message %q", err)
	}
	err = BPF("load tp_btf/kfree_skb", fmt.Errorf("x: %w", ebpf.ErrNotSupported))
	if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrPrivilege) {
		t.Errorf("%v: not ErrUnsupported", err)
	}
	// A missing feature is named by the error or by the caller, never guessed: a missing
	// kfunc on a kernel that has BPF and BTF must not blame its configuration.
	kfunc := fmt.Errorf(`kfunc "bpf_cast_to_kern_ctx": %w`, ebpf.ErrNotSupported)
	if err := BPF("load the capture", kfunc); !errors.Is(err, ErrUnsupported) || err.Error() != `load the capture: kfunc "bpf_cast_to_kern_ctx": not supported` {
		t.Errorf("missing kfunc: %v", err)
	}
	if err := BPFNeeds("load kernel BTF", NeedsBTF, ebpf.ErrNotSupported); !errors.Is(err, ErrUnsupported) || !strings.HasSuffix(err.Error(), "(the kernel needs BTF, CONFIG_DEBUG_INFO_BTF)") {
		t.Errorf("missing BTF: %v", err)
	}
	if err := BPF("create map", unix.ENOSYS); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "CONFIG_BPF_SYSCALL") {
		t.Errorf("no bpf(): %v", err)
	}
	if err := BPF("x", errors.New("boom")); errors.Is(err, ErrUnsupported) || errors.Is(err, ErrPrivilege) {
		t.Errorf("%v classified", err)
	}
	joined := Join("kfree_skb", BPF("a", unix.EPERM), BPF("b", unix.ENOSYS))
	if !errors.Is(joined, ErrPrivilege) || !errors.Is(joined, ErrUnsupported) || !strings.Contains(joined.Error(), "; b: ") {
		t.Errorf("joined %v", joined)
	}
}

// Denied names the capabilities a step needs; the packet socket's and nftables' are not
// BPF's.
func TestDenied(t *testing.T) {
	t.Parallel()
	err := Denied("open packet socket", unix.EPERM, CapNetRaw)
	if !errors.Is(err, ErrPrivilege) || !errors.Is(err, unix.EPERM) {
		t.Errorf("%v: not ErrPrivilege and EPERM", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "open packet socket: operation not permitted (") || !strings.Contains(msg, "CAP_NET_RAW") || strings.Contains(msg, "CAP_BPF") {
		t.Errorf("message %q", msg)
	}
	if got := privilegeHint([]int{CapNetAdmin}); got != "need CAP_NET_ADMIN: run as root" && !strings.Contains(got, "refused although the process has CAP_NET_ADMIN") {
		t.Errorf("hint %q", got)
	}
	if err := Unsupported("add trace chain", "meta nftrace", unix.ENOENT); !errors.Is(err, ErrUnsupported) || err.Error() != "add trace chain: no such file or directory (the kernel needs meta nftrace)" {
		t.Errorf("unsupported: %v", err)
	}
}
