package arrival

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// The tcx programs take the same decisions as the packet socket's filter on every crafted
// packet, reading the common ones in place and the others (IP options, IPv6 extension
// headers) with bpf_skb_load_bytes_relative. The kernel runs them (BPF_PROG_TEST_RUN) on an
// Ethernet frame whose type is the packet's skb->protocol.
func TestTCXFilterFrames(t *testing.T) {
	testns.RequirePrivileges(t)
	if !testns.HasKfunc("bpf_cast_to_kern_ctx") {
		t.Skipf("kernel %s has no kfunc bpf_cast_to_kern_ctx (Linux 6.2+): the tcx capture cannot load here, and diagnose captures with the packet socket (TestCaptureWithoutTCX)", testns.Release())
	}
	for _, c := range frameCases() {
		if c.meta == outOnLo {
			continue // tcx is not attached to lo's egress
		}
		t.Run(c.name, func(t *testing.T) {
			src := loadTCX(t, evidence.Endpoints{c.flow.Endpoint()})
			got, run := tcxDecides(t, src, c)
			if !run {
				// The test run refuses packets shorter than their IP header; those
				// received on a veth, TestKernelAgreesWithVM sends to the capture,
				// tcx's included. Only a case the capture must refuse may end here.
				if c.want {
					t.Errorf("the test run refuses a %d-byte packet the capture must accept", len(c.data))
				}
				return
			}
			if got != c.want {
				t.Errorf("%s: accept = %v, want %v", c.flow, got, c.want)
			}
		})
	}
}

// loadTCX loads the capture's programs for the endpoints; the test closes them.
func loadTCX(t *testing.T, ends evidence.Endpoints) *tcxSource {
	t.Helper()
	flow, err := newCaptureFlow(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Loaded for the first endpoint's family only: an endpoint of the other one swaps the
	// programs, as in a run.
	src := &tcxSource{flow: flow, families: familyBit(ends[0])}
	if src.objs, err = loadCapture(0, src.families, 0, flow, nil); err != nil {
		flow.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { src.close() })
	for i, e := range ends {
		e.ID = uint32(i + 1)
		if err := src.grow(e); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// tcxDecides runs the capture's ingress program on a crafted packet: whether it captured
// it. run is false when the test run refuses a packet that short.
func tcxDecides(t *testing.T, src *tcxSource, c frameCase) (captured, run bool) {
	t.Helper()
	before, err := src.counters()
	if err != nil {
		t.Fatal(err)
	}
	ret, err := src.objs.CaptureIngress.Run(&ebpf.RunOptions{Data: etherFrame(c)})
	if errors.Is(err, unix.EINVAL) && len(c.data) < 40 {
		return false, false
	}
	if err != nil {
		t.Fatalf("%s: test run: %v", c.name, err)
	}
	after, err := src.counters()
	if err != nil {
		t.Fatal(err)
	}
	if int32(ret) != -1 {
		t.Errorf("%s: returned %d, want TCX_NEXT (-1): a capture must not change a packet's fate", c.name, int32(ret))
	}
	if after.Seen != before.Seen+1 {
		t.Errorf("%s: seen %d -> %d, want one more", c.name, before.Seen, after.Seen)
	}
	return after.Matched > before.Matched, true
}
