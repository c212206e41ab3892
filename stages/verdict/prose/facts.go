package prose

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// factsOf gathers what a fix may quote: the names of the flow and of the dropped packet,
// the host's settings as read, and what the verdict found in them.
func factsOf(ev *evidence.Evidence, v verdict.Verdict) reasons.Facts {
	f := reasons.Facts{
		Flow:  ev.Flow.String(),
		Addr:  ev.Flow.Addr.String(),
		Port:  ev.Flow.Port,
		Proto: string(ev.Flow.Proto),
		Iface: cmp.Or(v.Iface, "<iface>"),
		Src:   "<source>",
		Dst:   "<destination>",
		V6:    ev.Flow.Family() == 6,

		Situations: v.Host.Situations,
		Listener:   v.Host.Listener,
		Listening:  v.Host.Listening,
	}
	if d := v.Drop; d != nil {
		if d.Src.IsValid() {
			f.Src = d.Src.Addr().String()
		}
		if d.Dst.IsValid() {
			f.Dst = d.Dst.Addr().String()
		}
	}
	// A translated packet died as what it was translated to: the fix is about that end.
	target := ev.Flow
	if t := v.Translation; t != nil && t.Kind != "SNAT" {
		target = evidence.Flow{Addr: t.To().Addr(), Port: t.To().Port(), Proto: t.Proto}
		f.Addr, f.Port, f.Flow = target.Addr.String(), target.Port, target.String()
	}
	if h := ev.Host; h != nil {
		f.RPFilter = h.Sysctls["net.ipv4.conf."+f.Iface+".rp_filter"]
		f.RPFilterAll = h.Sysctls["net.ipv4.conf.all.rp_filter"]
		f.IPForward = h.Sysctls[reasons.Fill("{forwarding}", f)]
		f.Listeners = listenersText(h, target)
		var progs []string
		for _, p := range h.Programs {
			if p.Iface == f.Iface {
				progs = append(progs, fmt.Sprintf("%s %s (id %d)", p.Hook, cmp.Or(p.Name, "unnamed"), p.ID))
			}
		}
		f.Programs = strings.Join(progs, ", ")
	}
	return f
}

// listenersText lists the sockets on the flow's port: "none", or "tcp 127.0.0.1:8080 LISTEN".
func listenersText(h *evidence.HostState, flow evidence.Flow) string {
	var ls []string
	for _, l := range h.Listeners {
		if l.Proto == string(flow.Proto) && l.Local.Port() == flow.Port {
			t := fmt.Sprintf("%s %s %s", l.Proto, l.Local, l.State)
			if l.BoundIface != "" {
				t += " bound to " + l.BoundIface
			}
			if l.V6Only {
				t += " (IPv6 only)"
			}
			ls = append(ls, t)
		}
	}
	if len(ls) == 0 {
		return "none"
	}
	return strings.Join(ls, ", ")
}
