package prose

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

// Comments returns what to say of each captured packet of the flow, for the pcapng the
// report comes with: where it was captured, its way through the firewall, and its fate.
//
//	arrived on veth0; firewall: ip prerouting accept, ip input drop by inet guard input handle 2 `tcp dport 8080 drop`; dropped in input: NETFILTER_DROP at nft_do_chain+0x3e8
//	sent on veth0; firewall: ip output accept
//
// Call the returned function once for every packet of the capture, in capture order, as
// verdict.PacketFates says: the comments tell the verdict's story of each packet, they do
// not judge again. v is verdict.Judge(ev).
func Comments(ev *evidence.Evidence, v verdict.Verdict) func(evidence.Packet) string {
	fate := verdict.PacketFates(ev, v)
	return func(p evidence.Packet) string { return Comment(fate(p)) }
}

// Comment says one packet's fate.
func Comment(f verdict.PacketFate) string {
	p := f.Packet
	where := cmp.Or(p.Iface, "an unknown interface")
	if p.NetnsName != "" {
		where += " of " + p.NetnsName
	}
	var parts []string
	if p.Direction == evidence.Out {
		parts = append(parts, "sent on "+where)
	} else {
		parts = append(parts, "arrived on "+where)
	}
	if f.Traces != nil {
		parts = append(parts, "firewall: "+tracesText(f.Traces))
	}
	switch f.Seen {
	case verdict.SeenSent:
	case verdict.SeenFollowed:
		parts = append(parts, "in the namespace the flow went on to")
	case verdict.SeenDropped:
		parts = append(parts, fmt.Sprintf("dropped in %s: %s at %s", f.Stage, f.Drop.Reason, cmp.Or(f.Drop.Location, f.Drop.Function)))
	case verdict.SeenFirewallDrop:
		parts = append(parts, fmt.Sprintf("dropped in %s by the firewall (no kernel drop event recorded)", f.Stage))
	case verdict.SeenNoKernel:
		parts = append(parts, "fate unknown: the kernel drop stage did not run")
	case verdict.SeenNotKept:
		parts = append(parts, fmt.Sprintf("fate unknown: only the first %d drop events of the flow were kept", f.Kept))
	case verdict.SeenLost:
		parts = append(parts, fmt.Sprintf("no drop recorded (%d drop event(s) of the flow were lost)", f.Lost))
	case verdict.SeenDelivered:
		parts = append(parts, "delivered")
	default:
		parts = append(parts, "not dropped")
	}
	return strings.Join(parts, "; ")
}

// tracesText is each hook's verdict, and the rule or policy that dropped:
// "ip prerouting accept, ip input drop by inet guard input handle 2 `tcp dport 8080 drop`".
func tracesText(traces []evidence.Trace) string {
	var hooks []string
	for _, t := range traces {
		s := t.Family + " " + t.Hook + " " + cmp.Or(t.Verdict, "(no verdict)")
		if by := t.DroppedBy; by != nil && t.Verdict == "drop" {
			s += fmt.Sprintf(" by %s %s %s", by.Family, by.Table, by.Chain)
			switch {
			case by.Type == "policy":
				s += " policy"
			case by.Rule != "":
				s += fmt.Sprintf(" handle %d `%s`", by.Handle, by.Rule)
			default:
				s += fmt.Sprintf(" handle %d", by.Handle)
			}
		}
		hooks = append(hooks, s)
	}
	return strings.Join(hooks, ", ")
}
