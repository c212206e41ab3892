package hoststate

import (
	"slices"
	"strings"

	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// ifaceDrops compares interface counters by index; an interface that appeared during the
// run counts from zero. Only interfaces with a counter that went up are returned, by name.
func ifaceDrops(before map[int]links.Stats, after []links.Link) []evidence.InterfaceDrops {
	out := []evidence.InterfaceDrops{}
	up := func(b, a uint64) uint64 {
		if a > b {
			return a - b
		}
		return 0
	}
	for _, l := range after {
		b := before[l.Index]
		a := l.Stats
		d := evidence.InterfaceDrops{
			Iface:       l.Name,
			RxDropped:   up(b.RxDropped, a.RxDropped),
			TxDropped:   up(b.TxDropped, a.TxDropped),
			RxErrors:    up(b.RxErrors, a.RxErrors),
			TxErrors:    up(b.TxErrors, a.TxErrors),
			RxMissed:    up(b.RxMissed, a.RxMissed),
			RxNoHandler: up(b.RxNoHandler, a.RxNoHandler),
		}
		if d.RxDropped+d.TxDropped+d.RxErrors+d.TxErrors+d.RxMissed+d.RxNoHandler > 0 {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(x, y evidence.InterfaceDrops) int { return strings.Compare(x.Iface, y.Iface) })
	return out
}
