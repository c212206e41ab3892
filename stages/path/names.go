package path

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
)

// tcpStates are the kernel's TCP states (include/net/tcp_states.h) without their TCP_
// prefix. They are ABI: /proc/net/tcp prints them and BPF's uapi mirrors them
// (BPF_TCP_*), so unlike drop reasons they do not change between kernels. In BTF they
// are an anonymous enum, not found by name; a test checks this table against it.
var tcpStates = [...]string{
	1:  "ESTABLISHED",
	2:  "SYN_SENT",
	3:  "SYN_RECV",
	4:  "FIN_WAIT1",
	5:  "FIN_WAIT2",
	6:  "TIME_WAIT",
	7:  "CLOSE",
	8:  "CLOSE_WAIT",
	9:  "LAST_ACK",
	10: "LISTEN",
	11: "CLOSING",
	12: "NEW_SYN_RECV",
	13: "BOUND_INACTIVE",
}

// TCPState names a TCP state number: ESTABLISHED, SYN_RECV, ...; STATE_n when unknown.
func TCPState(s uint8) string {
	if int(s) < len(tcpStates) && tcpStates[s] != "" {
		return tcpStates[s]
	}
	return fmt.Sprintf("STATE_%d", s)
}

// resetReasons names enum sk_rst_reason values (6.10+), from the running kernel's BTF:
// the numbers may differ between kernels, like drop reasons.
type resetReasons struct {
	names map[uint32]string
}

func (r *resetReasons) name(code uint32) string {
	if name, ok := r.names[code]; ok {
		return name
	}
	return fmt.Sprintf("REASON_%d", code)
}

func loadResetReasons() (*resetReasons, error) {
	spec, err := bpfrt.KernelTypes()
	if err != nil {
		return nil, kerr.BTF(err)
	}
	return resetReasonsFromBTF(spec)
}

func resetReasonsFromBTF(spec *btf.Spec) (*resetReasons, error) {
	var e *btf.Enum
	if err := spec.TypeByName("sk_rst_reason", &e); err != nil {
		if errors.Is(err, btf.ErrNotFound) {
			return nil, fmt.Errorf("kernel BTF has no enum sk_rst_reason (added in Linux 6.10): %w", kerr.ErrUnsupported)
		}
		return nil, fmt.Errorf("look up enum sk_rst_reason in kernel BTF: %w", err)
	}
	r := &resetReasons{names: map[uint32]string{}}
	for _, v := range e.Values {
		name, ok := strings.CutPrefix(v.Name, "SK_RST_REASON_")
		if !ok || name == "MAX" || v.Value > 0xffffffff {
			continue
		}
		if _, dup := r.names[uint32(v.Value)]; !dup {
			r.names[uint32(v.Value)] = name
		}
	}
	return r, nil
}
