package arrival

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
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
			o, err := loadCapture(c.flow, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			src := &tcxSource{objs: o}
			proto := c.meta.proto
			if proto == 0 && len(c.data) > 0 {
				proto = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[c.data[0]>>4]
			}
			frame := make([]byte, 14, 14+len(c.data))
			frame[0], frame[6] = 0x02, 0x02 // unicast, locally administered
			binary.BigEndian.PutUint16(frame[12:], proto)
			frame = append(frame, c.data...)
			before, err := src.counters()
			if err != nil {
				t.Fatal(err)
			}
			ret, err := o.CaptureIngress.Run(&ebpf.RunOptions{Data: frame})
			if errors.Is(err, unix.EINVAL) && len(c.data) < 40 {
				// The test run refuses packets shorter than their IP header; those
				// received on a veth, TestKernelAgreesWithVM sends to the capture,
				// tcx's included. Only a case the capture must refuse may end here.
				if c.want {
					t.Errorf("the test run refuses a %d-byte packet the capture must accept", len(c.data))
				}
				return
			}
			if err != nil {
				t.Fatalf("test run: %v", err)
			}
			after, err := src.counters()
			if err != nil {
				t.Fatal(err)
			}
			if int32(ret) != -1 {
				t.Errorf("returned %d, want TCX_NEXT (-1): a capture must not change a packet's fate", int32(ret))
			}
			if got := after.Matched > before.Matched; got != c.want || after.Seen != before.Seen+1 {
				t.Errorf("%s: accept = %v (seen %d -> %d), want %v", c.flow, got, before.Seen, after.Seen, c.want)
			}
		})
	}
}
