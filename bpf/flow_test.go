package bpf

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
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
