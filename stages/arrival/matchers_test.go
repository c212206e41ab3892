package arrival

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"slices"
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
	for _, c := range frameCases() {
		if c.meta.pkttype == unix.PACKET_OUTGOING && c.meta.hatype == arphrdLoopback {
			continue // the capture refuses lo's outgoing copy by design; flow.h sees one packet
		}
		for _, probeRead := range []bool{false, true} {
			prog := loadFlowcheck(t, evidence.Endpoints{c.flow.Endpoint()}, probeRead)
			flow, missed, run := flowhDecides(t, prog, c)
			switch {
			case !run:
				if c.want {
					t.Errorf("%s: the test run refuses a %d-byte packet the capture accepts", c.name, len(c.data))
				}
			case missed:
				t.Errorf("%s (probe read %v): the prefilter refuses a packet the full parse takes", c.name, probeRead)
			case flow != c.want:
				t.Errorf("%s (probe read %v): flow.h says %v, the capture %v", c.name, probeRead, flow, c.want)
			}
		}
	}
}

// loadFlowcheck loads bpf/flowcheck.c for the endpoints; the test closes it.
func loadFlowcheck(t *testing.T, ends evidence.Endpoints, probeRead bool) *ebpf.Program {
	t.Helper()
	spec, err := pmbpf.LoadFlowcheck()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["flow_probe_read"].Set(probeRead); err != nil {
		t.Fatal(err)
	}
	flow := newFlowMaps(t, spec, ends)
	var o pmbpf.FlowcheckObjects
	if err := spec.LoadAndAssign(&o, &ebpf.CollectionOptions{MapReplacements: flow.Maps()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o.Check
}

// newFlowMaps makes flow.h's maps for spec and fills them with the endpoints.
func newFlowMaps(t *testing.T, spec *ebpf.CollectionSpec, ends evidence.Endpoints) *pmbpf.Flow {
	t.Helper()
	flow, err := pmbpf.NewFlow(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flow.Close() })
	for i, e := range ends {
		if err := flow.Add(uint32(i+1), e.Addr, e.Port, e.Proto.Number(), uint32(e.Netns)); err != nil {
			t.Fatal(err)
		}
	}
	return flow
}

// flowhDecides runs flowcheck on a crafted packet: whether flow.h takes it for the flow's,
// both ways it reads headers, and whether the prefilter refused a packet the full parse
// takes. run is false when the test run refuses a packet that short.
func flowhDecides(t *testing.T, prog *ebpf.Program, c frameCase) (flow, missed, run bool) {
	t.Helper()
	const (
		isFlow       = 2
		prefilterBug = 3 // the full parse takes it, the prefilter refused it
	)
	ret, err := prog.Run(&ebpf.RunOptions{Data: etherFrame(c)})
	if errors.Is(err, unix.EINVAL) && len(c.data) < 40 {
		return false, false, false
	}
	if err != nil {
		t.Fatalf("%s: test run: %v", c.name, err)
	}
	return ret == isFlow, ret == prefilterBug, true
}

// etherFrame is a case's packet behind an Ethernet header whose type is the packet's
// skb->protocol, as BPF_PROG_TEST_RUN takes it.
func etherFrame(c frameCase) []byte {
	proto := c.meta.proto
	if proto == 0 && len(c.data) > 0 {
		proto = map[byte]uint16{4: ethPIPv4, 6: ethPIPv6}[c.data[0]>>4]
	}
	frame := make([]byte, 14, 14+len(c.data))
	frame[0], frame[6] = 0x02, 0x02 // unicast, locally administered
	binary.BigEndian.PutUint16(frame[12:], proto)
	return append(frame, c.data...)
}

// A flow of several endpoints, as it grows during a run (a translated address, the other
// family, the other protocol), is one decision too: every matcher made from the set takes
// a packet exactly when one of the endpoints alone would, the Go twin being the reference
// for each endpoint alone (TestFilterFrames holds it to the cases).
func TestMatchersAgreeOnEndpointSets(t *testing.T) {
	// The classic filter and the Go twin run anywhere; the BPF programs need root and a
	// kernel that lets the test programs reach the sk_buff.
	kernel := os.Geteuid() == 0 && !testing.Short()
	if kernel && !testns.HasKfunc("bpf_cast_to_kern_ctx") {
		t.Logf("kernel %s has no kfunc bpf_cast_to_kern_ctx (Linux 6.2+): the classic filter and the Go twin only", testns.Release())
		kernel = false
	}
	if !kernel && testns.CI() {
		testns.RequirePrivileges(t)
	}
	other4 := evidence.Endpoint{Addr: netip.MustParseAddr("203.0.113.9"), Port: 53, Proto: evidence.UDP, Netns: 4026532000}
	other6 := evidence.Endpoint{Addr: netip.MustParseAddr("2001:db8::9"), Port: flowPort, Proto: evidence.TCP}
	for name, ends := range map[string]evidence.Endpoints{
		"mixed":    {tcp4.Endpoint(), udp6.Endpoint(), other4, other6},
		"all four": {tcp4.Endpoint(), udp4.Endpoint(), tcp6.Endpoint(), udp6.Endpoint()},
		"v6 only":  {other6, tcp6.Endpoint()},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := Filter(ends)
			if err != nil {
				t.Fatal(err)
			}
			var tcx *tcxSource
			var flowh [2]*ebpf.Program
			if kernel {
				tcx = loadTCX(t, ends)
				flowh = [2]*ebpf.Program{loadFlowcheck(t, ends, false), loadFlowcheck(t, ends, true)}
			}
			accepted := 0
			for _, c := range frameCases() {
				want := slices.ContainsFunc(ends, func(e evidence.Endpoint) bool {
					return twinAccepts(evidence.Endpoints{e}, c.data, c.meta)
				})
				if want {
					accepted++
				}
				if slices.Contains(ends, c.flow.Endpoint()) && c.want && !want {
					t.Errorf("%s: no endpoint alone takes it, though %s is one", c.name, c.flow)
				}
				if got := runFilter(t, raw, c.data, c.meta); got != want {
					t.Errorf("%s: the classic filter says %v, the endpoints alone %v", c.name, got, want)
				}
				if got := twinAccepts(ends, c.data, c.meta); got != want {
					t.Errorf("%s: the Go twin says %v, the endpoints alone %v", c.name, got, want)
				}
				if !kernel {
					continue
				}
				if c.meta != outOnLo {
					if got, run := tcxDecides(t, tcx, c); run && got != want {
						t.Errorf("%s: the tcx capture says %v, the endpoints alone %v", c.name, got, want)
					}
				} else {
					continue // flow.h sees lo's packet once, as the capture keeps it
				}
				for i, prog := range flowh {
					flow, missed, run := flowhDecides(t, prog, c)
					switch {
					case !run:
					case missed:
						t.Errorf("%s (probe read %v): the prefilter refuses a packet the full parse takes", c.name, i == 1)
					case flow != want:
						t.Errorf("%s (probe read %v): flow.h says %v, the endpoints alone %v", c.name, i == 1, flow, want)
					}
				}
			}
			if accepted == 0 {
				t.Error("no case is the flow's: the test tells nothing")
			}
			t.Logf("%d endpoints, %d of %d cases taken, %d filter instructions", len(ends), accepted, len(frameCases()), len(raw))
		})
	}
}
