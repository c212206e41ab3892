package xtables

import (
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// TestLayoutMatchesKernelBTF checks the reader's hand-written offsets against the running
// kernel's own description of the structs (its BTF), so a wrong offset cannot hide.
func TestLayoutMatchesKernelBTF(t *testing.T) {
	specs := []*btf.Spec{testns.KernelSpec(t)}
	var probe *btf.Struct
	if specs[0].TypeByName("ipt_entry", &probe) != nil {
		// x_tables built as modules (Debian's kernel): their types are in the modules'
		// BTF, there once the modules are loaded, as restoring a table does.
		ns := newLegacyNS(t, "xm")
		for _, f := range legacyFamilies {
			restoreIn(t, ns, f.restore, "*filter\nCOMMIT\n")
		}
		for _, module := range []string{"x_tables", "ip_tables", "ip6_tables"} {
			spec, err := btf.LoadKernelModuleSpec(module)
			if err != nil {
				t.Fatalf("BTF of module %s: %v", module, err)
			}
			specs = append(specs, spec)
		}
	}
	type field struct {
		name string
		off  int
	}
	check := func(typ string, size int, fields ...field) {
		t.Helper()
		var s *btf.Struct
		for _, spec := range specs {
			if spec.TypeByName(typ, &s) == nil {
				break
			}
		}
		if s == nil {
			t.Errorf("struct %s is in no BTF", typ)
			return
		}
		if int(s.Size) != size {
			t.Errorf("sizeof(struct %s) = %d, the reader says %d", typ, s.Size, size)
		}
		for _, f := range fields {
			found := false
			for _, m := range s.Members {
				if m.Name == f.name {
					found = true
					if int(m.Offset.Bytes()) != f.off {
						t.Errorf("%s.%s at %d, the reader says %d", typ, f.name, m.Offset.Bytes(), f.off)
					}
				}
			}
			if !found {
				t.Errorf("struct %s has no member %s", typ, f.name)
			}
		}
	}
	for _, c := range []struct {
		l                 *layout
		entry, ip, header string
		headerSize        int
	}{{&ipv4Layout, "ipt_entry", "ip", "ipt_ip", 84}, {&ipv6Layout, "ip6t_entry", "ipv6", "ip6t_ip6", 136}} {
		l := c.l
		check(c.entry, l.entrySize, field{c.ip, 0}, field{"nfcache", c.headerSize},
			field{"target_offset", l.targetOffset}, field{"next_offset", l.nextOffset}, field{"counters", l.counters}, field{"elems", l.entrySize})
		check(c.header, c.headerSize, field{"src", l.src()}, field{"dst", l.dst()}, field{"smsk", l.smsk()}, field{"dmsk", l.dmsk()},
			field{"iniface", l.inIface()}, field{"outiface", l.outIface()}, field{"iniface_mask", l.inMask()}, field{"outiface_mask", l.outMask()},
			field{"proto", l.proto()}, field{"flags", l.flags}, field{"invflags", l.invflags})
		prefix := map[int]string{4: "ipt", 16: "ip6t"}[l.addrLen]
		check(prefix+"_getinfo", getinfoSize, field{"valid_hooks", infoValidHooks}, field{"hook_entry", infoHookEntry},
			field{"underflow", infoUnderflow}, field{"num_entries", infoNumEntries}, field{"size", infoSize})
		check(prefix+"_get_entries", getEntriesSize, field{"size", getEntriesTotal}, field{"entrytable", getEntriesSize})
	}
	check("xt_entry_match", extHeaderSize, field{"data", extHeaderSize})
	check("xt_entry_target", extHeaderSize, field{"data", extHeaderSize})
	check("xt_standard_target", extHeaderSize+8, field{"verdict", stdVerdictOffset})
	check("xt_error_target", extHeaderSize+errorNameLen+2, field{"errorname", extHeaderSize})
}
