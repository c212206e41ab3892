package bpf

import (
	"encoding/binary"
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
