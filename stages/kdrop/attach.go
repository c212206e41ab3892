package kdrop

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/tracefs"
)

// How the program is attached, as evidence.KernelDrop.Attach reports it.
const (
	attachBTF        = "tp_btf/kfree_skb"
	attachTracepoint = "tracepoint/skb/kfree_skb"
)

// attachment is the loaded program and maps, with the program attached.
type attachment struct {
	name string
	coll *ebpf.Collection // what is not assigned below: the .rodata map
	maps bpf.KdropMaps
	prog *ebpf.Program
	link link.Link // nil until attached
}

func (a *attachment) Close() error {
	var err error
	if a.link != nil {
		err = a.link.Close()
	}
	a.prog.Close()
	a.maps.Close()
	a.coll.Close()
	return err
}

// An attacher loads and attaches one way; flow maps are the flow's (bpf.Flow.Maps).
type attacher func(spec *ebpf.CollectionSpec, flow map[string]*ebpf.Map) (*attachment, error)

// specFor loads the program spec with the test option set.
func specFor(cfg Config) (*ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadKdrop()
	if err != nil {
		return nil, fmt.Errorf("load kdrop BPF object: %w", err)
	}
	if err := spec.Variables["flow_probe_read"].Set(cfg.probeRead); err != nil {
		return nil, fmt.Errorf("kdrop BPF object: %w", err)
	}
	// Translations are learned in the namespace diagnosed only (nat.h's nat_netns).
	if err := spec.Variables["nat_netns"].Set(uint32(cfg.Netns)); err != nil {
		return nil, fmt.Errorf("kdrop BPF object: %w", err)
	}
	return spec, nil
}

// load loads the maps and the one program wanted. Loading only that program matters: a
// kernel that refuses tp_btf programs must not fail the tracepoint fallback.
func load(spec *ebpf.CollectionSpec, flow map[string]*ebpf.Map, name, prog string) (*attachment, error) {
	cs := spec.Copy()
	for p := range cs.Programs {
		if p != prog {
			delete(cs.Programs, p)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{MapReplacements: flow, Cache: bpfrt.KernelBTF()})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			// The message ends with the verifier's last words; bpftool has the whole log.
			return nil, fmt.Errorf("verifier rejected %s: %w", prog, err)
		}
		return nil, err
	}
	a := &attachment{name: name, coll: coll, prog: coll.DetachProgram(prog)}
	if err := coll.Assign(&a.maps); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func attachTPBTF(spec *ebpf.CollectionSpec, flow map[string]*ebpf.Map) (*attachment, error) {
	return loadRawTP(spec, flow, attachBTF, bpf.KdropProgKfreeSkbBtf)
}

func attachClassic(spec *ebpf.CollectionSpec, flow map[string]*ebpf.Map) (*attachment, error) {
	return loadTracepoint(spec, flow, attachTracepoint, bpf.KdropProgKfreeSkbTp, "skb", "kfree_skb")
}

// loadRawTP loads program prog with maps and attaches it as a tp_btf program; name says
// how, as the evidence reports it.
func loadRawTP(spec *ebpf.CollectionSpec, maps map[string]*ebpf.Map, name, prog string) (*attachment, error) {
	a, err := load(spec, maps, name, prog)
	if err != nil {
		return nil, kerr.BPFNeeds("load "+name, kerr.NeedsBTFTP, err)
	}
	if a.link, err = link.AttachTracing(link.TracingOptions{Program: a.prog, AttachType: ebpf.AttachTraceRawTp}); err != nil {
		a.Close()
		return nil, kerr.BPFNeeds("attach "+name, kerr.NeedsBTFTP, err)
	}
	return a, nil
}

// loadTracepoint loads program prog with maps and attaches it to the classic tracepoint
// group:event.
func loadTracepoint(spec *ebpf.CollectionSpec, maps map[string]*ebpf.Map, name, prog, group, event string) (*attachment, error) {
	a, err := load(spec, maps, name, prog)
	if err != nil {
		return nil, kerr.BPFNeeds("load "+name, kerr.NeedsBPFTP, err)
	}
	if err := a.attachTracepoint(group, event); err != nil {
		a.Close()
		return nil, kerr.BPFNeeds("attach "+name, kerr.NeedsBPFTP, err)
	}
	return a, nil
}

// attachTracepoint attaches the program to the classic tracepoint group:name.
func (a *attachment) attachTracepoint(group, name string) error {
	attach := func() error {
		var err error
		a.link, err = link.Tracepoint(group, name, a.prog, nil)
		return err
	}
	if tracefs.Mounted() {
		return attach()
	}
	// Under `ip netns exec` /sys is a fresh sysfs without tracefs, and the event id
	// attaching needs lives there.
	return tracefs.WithPrivate(attach)
}

// How the program that learns translations is attached.
const (
	learnBTF        = "tp_btf/net_dev_queue"
	learnTracepoint = "tracepoint/net/net_dev_queue"
)

// attachLearn attaches the program that learns the flow's translations on
// net:net_dev_queue, with the kfree_skb program's maps (its events ring, the flow's,
// nat.h's scratch and what it told), the way that one is attached: a kernel that took one
// takes the other.
func attachLearn(spec *ebpf.CollectionSpec, drops *attachment) (*attachment, error) {
	m := drops.maps
	shared := map[string]*ebpf.Map{
		bpf.KdropMapEvents: m.Events, bpf.KdropMapFlowClasses: m.FlowClasses, bpf.KdropMapFlowEnds: m.FlowEnds,
		bpf.KdropMapNatScratch: m.NatScratch, bpf.KdropMapNatTold: m.NatTold, bpf.KdropMapTotals: m.Totals,
	}
	if drops.name == attachBTF {
		return loadRawTP(spec, shared, learnBTF, bpf.KdropProgXmitBtf)
	}
	return loadTracepoint(spec, shared, learnTracepoint, bpf.KdropProgXmitTp, "net", "net_dev_queue")
}
