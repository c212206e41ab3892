package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
)

// Flow is the flow as the programs read it (flow.h): the endpoints in flow_ends and their
// ports' bitmaps in flow_classes. A stage makes one for its collection before loading it,
// passes Maps as the collection's map replacements, and adds an endpoint whenever the flow
// grows: the programs see it at their next packet, without a reload.
//
// The stages share one set of maps (Clone): what one program learns (nat.h) every other
// program sees at its next packet, the capture and the path points included, without the
// round trip through user space that let a translated packet into its next namespace
// before they knew it.
type Flow struct {
	*summary
	ends    *ebpf.Map
	classes *ebpf.Map
}

// summary is flow_classes as user space last wrote it, shared by the clones of a Flow: a
// bit one clone adds another one's read-modify-write must not lose.
type summary struct {
	mu sync.Mutex
	flowClasses
}

// flowKey and flowEnd are flow.h's struct flow_key and struct flow_end; flowClasses is its
// struct flow_classes. TestFlowLayout holds them to the objects' BTF.
type flowKey struct {
	Addr   [16]byte
	Port   [2]byte // network byte order
	Proto  uint8
	Family uint8
}

type flowEnd struct {
	ID    uint32
	Netns uint32
}

type flowClasses struct {
	Any   uint32
	Pad   uint32
	Ports [4][flowPortBits / 64]uint64
}

// flowPortBits is flow.h's FLOW_PORT_BITS.
const flowPortBits = 4096

// portBit is flow.h's port_bit: the bit of a port's two header bytes loaded as a
// little-endian number, as the programs load them (bpfel only).
func portBit(port uint16) uint32 {
	n := uint32(port>>8 | port<<8)
	return (n * 40503 & 0xffff) >> 4
}

// Map names of flow.h, in every object that includes it.
const (
	flowEndsMap    = "flow_ends"
	flowClassesMap = "flow_classes"
)

// NewFlow makes the flow's maps from spec (any object that includes flow.h), empty.
func NewFlow(spec *ebpf.CollectionSpec) (*Flow, error) {
	es, cs := spec.Maps[flowEndsMap], spec.Maps[flowClassesMap]
	if es == nil || cs == nil {
		return nil, errors.New("the BPF object has no flow maps (flow.h)")
	}
	ends, err := ebpf.NewMap(es)
	if err != nil {
		return nil, fmt.Errorf("create map %s: %w", flowEndsMap, err)
	}
	classes, err := ebpf.NewMap(cs)
	if err != nil {
		ends.Close()
		return nil, fmt.Errorf("create map %s: %w", flowClassesMap, err)
	}
	return &Flow{summary: &summary{}, ends: ends, classes: classes}, nil
}

// NewSharedFlow makes the flow's maps for the stages to share through Clone, empty.
func NewSharedFlow() (*Flow, error) {
	spec, err := LoadKdrop()
	if err != nil {
		return nil, fmt.Errorf("load the kernel drop BPF object for the flow's maps: %w", err)
	}
	return NewFlow(spec)
}

// FlowFor is a clone of shared, for a stage given the shared maps, or else maps of the
// stage's own for spec's programs (any object that includes flow.h), empty.
func FlowFor(shared *Flow, spec *ebpf.CollectionSpec) (*Flow, error) {
	if shared != nil {
		return shared.Clone()
	}
	return NewFlow(spec)
}

// Clone is another handle on the same maps, which its holder closes.
func (f *Flow) Clone() (*Flow, error) {
	ends, err := f.ends.Clone()
	if err != nil {
		return nil, fmt.Errorf("share map %s: %w", flowEndsMap, err)
	}
	classes, err := f.classes.Clone()
	if err != nil {
		ends.Close()
		return nil, fmt.Errorf("share map %s: %w", flowClassesMap, err)
	}
	return &Flow{summary: f.summary, ends: ends, classes: classes}, nil
}

// Maps are the replacements for a collection's flow maps, so its programs read these.
func (f *Flow) Maps() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{flowEndsMap: f.ends, flowClassesMap: f.classes}
}

// Add makes addr:port/proto an endpoint of the flow, with its id (from 1) and the inode of
// the namespace where it applies (0: any). The endpoint goes in before its port's bit, so
// that a program that sees the bit finds the endpoint.
func (f *Flow) Add(id uint32, addr netip.Addr, port uint16, proto uint8, netns uint32) error {
	if id == 0 {
		return errors.New("flow endpoint id 0: ids start at 1")
	}
	addr = addr.Unmap()
	family, class := uint8(4), 0
	if addr.Is6() {
		family, class = 6, 2
	}
	switch proto {
	case 6:
	case 17:
		class++
	default:
		return fmt.Errorf("flow endpoint protocol %d is not TCP or UDP", proto)
	}
	key := flowKey{Addr: addr.As16(), Port: [2]byte{byte(port >> 8), byte(port)}, Proto: proto, Family: family}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ends.Update(key, flowEnd{ID: id, Netns: netns}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("add %s to map %s: %w", netip.AddrPortFrom(addr, port), flowEndsMap, err)
	}
	b := portBit(port)
	// The programs set bits too, for the endpoints they learn (nat.h): theirs are kept.
	var now flowClasses
	if err := f.classes.Lookup(uint32(0), &now); err != nil {
		return fmt.Errorf("add %s to map %s: %w", netip.AddrPortFrom(addr, port), flowClassesMap, err)
	}
	for c := range now.Ports {
		for i, w := range now.Ports[c] {
			f.Ports[c][i] |= w
		}
	}
	f.Any |= now.Any
	f.Ports[class][b>>6] |= 1 << (b & 63)
	f.Any |= 1 << class
	if err := f.classes.Update(uint32(0), &f.flowClasses, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("add %s to map %s: %w", netip.AddrPortFrom(addr, port), flowClassesMap, err)
	}
	return nil
}

// Close releases the maps; the programs that use them keep their own references.
func (f *Flow) Close() error {
	return errors.Join(f.ends.Close(), f.classes.Close())
}
