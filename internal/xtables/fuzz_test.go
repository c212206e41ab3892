package xtables

import (
	"cmp"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzExtSave feeds every extension Save decodes with info of any length and content: a
// struct the kernel returns short or odd is shown by name, never a panic.
func FuzzExtSave(f *testing.F) {
	f.Add(uint16(0), []byte{})
	f.Add(uint16(3), make([]byte, 300))
	var keys []extKey
	for k := range savers {
		keys = append(keys, k)
	}
	// The same pick names the same extension from run to run.
	slices.SortFunc(keys, func(a, b extKey) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.rev, b.rev), boolCompare(a.target, b.target))
	})
	f.Fuzz(func(t *testing.T, pick uint16, data []byte) {
		k := keys[int(pick)%len(keys)]
		e := Ext{Name: k.name, Rev: k.rev, Data: data}
		if offs := setInfoOffsets(e, k.target); offs != nil {
			e.Sets = make([]string, len(offs))
		}
		r := Rule{Matches: []Ext{e}}
		if k.target {
			r = Rule{Target: e}
		}
		for _, fam := range []uint8{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6} {
			r.Save("c", fam)
		}
	})
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
