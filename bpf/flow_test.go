package bpf

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/packetmortem/packetmortem/internal/testns"
)

// Every object that includes flow.h has its two maps, and the Go structs that fill them
// have the C layout, member by member.
func TestFlowLayout(t *testing.T) {
	t.Parallel()
	for name, load := range map[string]func() (*ebpf.CollectionSpec, error){
		"kdrop": LoadKdrop, "path": LoadPath, "capture": LoadCapture, "flowcheck": LoadFlowcheck,
	} {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		ends, classes := spec.Maps[flowEndsMap], spec.Maps[flowClassesMap]
		if ends == nil || classes == nil {
			t.Fatalf("%s: no flow maps", name)
		}
		if ends.Type != ebpf.Hash || classes.Type != ebpf.Array || classes.MaxEntries != 1 {
			t.Errorf("%s: flow maps are %v and %v (%d entries)", name, ends.Type, classes.Type, classes.MaxEntries)
		}
		for _, c := range []struct {
			typ btf.Type
			goV any
		}{{ends.Key, flowKey{}}, {ends.Value, flowEnd{}}, {classes.Value, flowClasses{}}} {
			st, ok := btf.UnderlyingType(c.typ).(*btf.Struct)
			if !ok {
				t.Fatalf("%s: flow map type %v is not a struct", name, c.typ)
			}
			goT := reflect.TypeOf(c.goV)
			if int(st.Size) != binary.Size(c.goV) || len(st.Members) != goT.NumField() {
				t.Errorf("%s: struct %s: %d bytes and %d members in C, %d and %d in Go",
					name, st.Name, st.Size, len(st.Members), binary.Size(c.goV), goT.NumField())
				continue
			}
			for i, m := range st.Members {
				if off := goT.Field(i).Offset; uint32(m.Offset.Bytes()) != uint32(off) {
					t.Errorf("%s: %s.%s at %d in C, %s at %d in Go", name, st.Name, m.Name, m.Offset.Bytes(), goT.Field(i).Name, off)
				}
			}
		}
	}
}

// nat.h reads a conntrack tuple whole into struct ct_tuple: the running kernel's
// struct nf_conntrack_tuple must lay its members out where ct_tuple has them.
func TestConntrackLayout(t *testing.T) {
	t.Parallel()
	kernel := testns.KernelSpec(t)
	var tuple *btf.Struct
	if err := kernel.TypeByName("nf_conntrack_tuple", &tuple); err != nil {
		t.Skipf("kernel %s has no conntrack in its BTF (a module not loaded, or none): nothing to hold nat.h to", testns.Release())
	}
	goT := reflect.TypeOf(KdropCtTuple{})
	if int(tuple.Size) != binary.Size(KdropCtTuple{}) {
		t.Fatalf("struct nf_conntrack_tuple is %d bytes, struct ct_tuple %d", tuple.Size, binary.Size(KdropCtTuple{}))
	}
	// Each leaf of the kernel's tuple, by path, at the offset of ct_tuple's field.
	want := map[string]string{"src.u3": "Saddr", "src.u": "Sport", "src.l3num": "L3num", "dst.u3": "Daddr", "dst.u": "Dport", "dst.protonum": "Proto", "dst.dir": "Dir"}
	for _, side := range tuple.Members {
		s, ok := btf.UnderlyingType(side.Type).(*btf.Struct)
		if !ok {
			t.Fatalf("nf_conntrack_tuple.%s is not a struct", side.Name)
		}
		for _, m := range s.Members {
			field, ok := want[side.Name+"."+m.Name]
			if !ok {
				continue
			}
			delete(want, side.Name+"."+m.Name)
			f, _ := goT.FieldByName(field)
			if off := side.Offset.Bytes() + m.Offset.Bytes(); off != uint32(f.Offset) {
				t.Errorf("nf_conntrack_tuple.%s.%s at %d, ct_tuple.%s at %d", side.Name, m.Name, off, field, f.Offset)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("the kernel's tuple lacks %v", want)
	}
}

// The port bitmaps are a filter: a port that shares its bit with an endpoint's goes on to
// the endpoints' lookup, which refuses it. flow.h's programs and the capture both.
func TestPortBitCollision(t *testing.T) {
	testns.RequirePrivileges(t)
	if !testns.HasKfunc("bpf_cast_to_kern_ctx") {
		t.Skipf("kernel %s has no kfunc bpf_cast_to_kern_ctx (Linux 6.2+)", testns.Release())
	}
	const port = 8080
	other := uint16(0)
	for q := uint16(1); q != 0; q++ {
		if q != port && portBit(q) == portBit(port) {
			other = q
			break
		}
	}
	if other == 0 {
		t.Fatalf("no port shares port %d's bit %d", port, portBit(port))
	}
	addr := netip.MustParseAddr("198.51.100.2")
	frame := func(dport uint16) []byte {
		f := make([]byte, 14+20+8)
		f[0], f[6] = 2, 2
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[14:]
		ip[0], ip[8], ip[9] = 0x45, 64, 17
		binary.BigEndian.PutUint16(ip[2:], 28)
		copy(ip[12:], []byte{198, 51, 100, 1})
		copy(ip[16:], addr.AsSlice())
		binary.BigEndian.PutUint16(ip[20:], 40000)
		binary.BigEndian.PutUint16(ip[22:], dport)
		binary.BigEndian.PutUint16(ip[24:], 8)
		return f
	}
	load := func(spec *ebpf.CollectionSpec) *ebpf.Collection {
		flow, err := NewFlow(spec)
		if err != nil {
			t.Fatal(err)
		}
		defer flow.Close()
		if err := flow.Add(1, addr, port, 17, 0); err != nil {
			t.Fatal(err)
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: flow.Maps()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { coll.Close() })
		return coll
	}

	spec, err := LoadFlowcheck()
	if err != nil {
		t.Fatal(err)
	}
	check := load(spec).Programs["check"]
	// flowcheck.c's answers: 2 the flow's; 0 or 1 refused, by the prefilter or the parse.
	for dport, flow := range map[uint16]bool{port: true, other: false} {
		got, err := check.Run(&ebpf.RunOptions{Data: frame(dport)})
		if err != nil || (got == 2) != flow || got > 2 {
			t.Errorf("flow.h on a datagram to port %d: %d, %v; want the flow's: %v", dport, got, err, flow)
		}
	}

	if spec, err = LoadCapture(); err != nil {
		t.Fatal(err)
	}
	capture := load(spec)
	for dport, want := range map[uint16]uint64{port: 1, other: 0} {
		var before, after []CaptureCaptureCounters
		totals := capture.Maps[CaptureMapTotals]
		if err := totals.Lookup(uint32(0), &before); err != nil {
			t.Fatal(err)
		}
		if _, err := capture.Programs[CaptureProgCaptureIngress].Run(&ebpf.RunOptions{Data: frame(dport)}); err != nil {
			t.Fatal(err)
		}
		if err := totals.Lookup(uint32(0), &after); err != nil {
			t.Fatal(err)
		}
		var matched uint64
		for i := range after {
			matched += after[i].Matched - before[i].Matched
		}
		if matched != want {
			t.Errorf("capture on a datagram to port %d: matched %d, want %d", dport, matched, want)
		}
	}
}
