package arrival

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	pmbpf "github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// The flow is matched in four places: the capture's classic filter (and its Go twin), its
// tcx program, and flow.h, which the kernel drop and path stages run on their tracepoints.
// Every crafted packet gets the same decision from flow.h as from the capture, both ways
// flow.h reads headers: a packet the capture keeps and whose drop kdrop cannot see, or the
// reverse, would tell two stories of one packet. TestFilterFrames and TestTCXFilterFrames
// hold the capture's two to the same cases.
func TestFlowHAgreesWithCapture(t *testing.T) {
	testns.RequirePrivileges(t)
	if !testns.HasKfunc("bpf_cast_to_kern_ctx") {
		t.Skipf("kernel %s has no kfunc bpf_cast_to_kern_ctx (Linux 6.2+): flow.h's test program cannot reach the sk_buff here", testns.Release())
	}
	const (
		notFlow = 0 // the prefilter refuses it
		parseNo = 1 // the full parse refuses it
		isFlow  = 2
		missed  = 3 // the full parse takes it, the prefilter refused it
	)
	for _, c := range frameCases() {
		if c.meta.pkttype == unix.PACKET_OUTGOING && c.meta.hatype == arphrdLoopback {
			continue // the capture refuses lo's outgoing copy by design; flow.h sees one packet
		}
		for _, probeRead := range []bool{false, true} {
			prog := loadFlowcheck(t, c.flow, probeRead)
			proto := c.meta.proto
			if proto == 0 && len(c.data) > 0 {
				proto = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[c.data[0]>>4]
			}
			frame := make([]byte, 14, 14+len(c.data))
			frame[0], frame[6] = 0x02, 0x02
			binary.BigEndian.PutUint16(frame[12:], proto)
			frame = append(frame, c.data...)
			ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
			if errors.Is(err, unix.EINVAL) && len(c.data) < 40 {
				if c.want {
					t.Errorf("%s: the test run refuses a %d-byte packet the capture accepts", c.name, len(c.data))
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: test run: %v", c.name, err)
			}
			switch {
			case ret == missed:
				t.Errorf("%s (probe read %v): the prefilter refuses a packet the full parse takes", c.name, probeRead)
			case (ret == isFlow) != c.want:
				t.Errorf("%s (probe read %v): flow.h says %d, the capture %v", c.name, probeRead, ret, c.want)
			}
		}
	}
}

// loadFlowcheck loads bpf/flowcheck.c for the flow; the test closes it.
func loadFlowcheck(t *testing.T, f evidence.Flow, probeRead bool) *ebpf.Program {
	t.Helper()
	spec, err := pmbpf.LoadFlowcheck()
	if err != nil {
		t.Fatal(err)
	}
	vars := pmbpf.FlowVars{
		Addr: spec.Variables["flow_addr"], Port: spec.Variables["flow_port"],
		Proto: spec.Variables["flow_proto"], Family: spec.Variables["flow_family"],
		ProbeRead: spec.Variables["flow_probe_read"], ForceProbeRead: probeRead,
	}
	if err := vars.Set(f.Addr, f.Port, f.Proto.Number()); err != nil {
		t.Fatal(err)
	}
	var o pmbpf.FlowcheckObjects
	if err := spec.LoadAndAssign(&o, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o.Check
}
