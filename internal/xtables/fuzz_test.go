package xtables

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
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

// FuzzToolSave feeds ebtables' and arptables' extensions with info of any length and
// content, and their readers with comparisons of any field, length and data: an odd one
// is refused, never a panic.
func FuzzToolSave(f *testing.F) {
	f.Add(uint16(0), uint8(12), uint8(2), uint8(0), []byte{8, 0})
	f.Add(uint16(5), uint8(6), uint8(1), uint8(1), make([]byte, 80))
	var names []string
	for n := range ebSavers {
		names = append(names, n)
	}
	for n := range ebTargets {
		names = append(names, "target "+n)
	}
	names = append(names, "arp mangle", "arp CLASSIFY")
	slices.Sort(names)
	f.Fuzz(func(t *testing.T, pick uint16, offset, length, op uint8, data []byte) {
		name := names[int(pick)%len(names)]
		e := Ext{Name: name, Data: data}
		switch {
		case strings.HasPrefix(name, "arp "):
			e.Name = name[4:]
			ArpRule{Target: e}.Save("c")
		case strings.HasPrefix(name, "target "):
			e.Name = name[7:]
			BridgeRule{Target: e}.Save("c")
		default:
			BridgeRule{Exts: []Ext{e}, Verdict: "ACCEPT"}.Save("c")
		}
		for _, base := range []expr.PayloadBase{expr.PayloadBaseLLHeader, expr.PayloadBaseNetworkHeader} {
			exprs := []expr.Any{
				&expr.Payload{Base: base, Offset: uint32(offset), Len: uint32(length)},
				&expr.Cmp{Op: expr.CmpOp(op % 6), Data: data},
				&expr.Verdict{Kind: expr.VerdictAccept},
			}
			RuleFromNftBridge(exprs, nil)
			RuleFromNftArp(exprs)
			masked := append(exprs[:1:1], &expr.Bitwise{Len: uint32(length), Mask: data, Xor: make([]byte, len(data))})
			masked = append(masked, exprs[1:]...)
			RuleFromNftBridge(masked, nil)
			RuleFromNftArp(masked)
		}
	})
}
