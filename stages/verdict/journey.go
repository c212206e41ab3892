package verdict

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// JourneyHop is one namespace of this host the flow's packets went through, in order:
// the stages they passed there, how they left it (translated, by which rule, through
// which device), and whether they died there.
type JourneyHop struct {
	Netns     uint64
	NetnsName string
	Stages    []StageStatus
	// Translation is what the connection was translated to in this namespace, by Rule
	// when the nftables trace saw it; nil when nothing was.
	Translation *evidence.Translation
	Rule        *evidence.TraceStep
	// Out is the device the packets left by for the next hop; "" when unknown or last.
	Out  string
	Died bool
	// Reached counts the flow's packets seen arriving in this namespace (captured here,
	// netif_receive_skb there); Dropped those of them that died here. 0: none seen.
	Reached, Dropped int
}

// journey splits the stage map by namespace: here, then the namespace the packet went on
// to and died in, when it did.
func journey(v *Verdict, ev *evidence.Evidence) []JourneyHop {
	here := JourneyHop{Netns: ev.Netns.Inode, NetnsName: ev.Netns.Name, Stages: v.Map, Translation: v.Translation}
	if here.Translation == nil && ev.Kernel != nil && len(ev.Kernel.Translations) > 0 {
		here.Translation = &ev.Kernel.Translations[0]
	}
	if here.Translation != nil {
		here.Rule = natRule(ev.Firewall, here.Translation.Kind)
	}
	if a := ev.Arrival; a != nil {
		here.Reached = cmp.Or(a.Toward, a.In)
	}
	switch {
	case v.Hop != nil && len(v.Map) > 0:
		here.Stages = v.Map[:len(v.Map)-1]
		here.Out = outDevice(ev, here.Translation)
		if here.Out == "" && v.Route != nil {
			here.Out = v.Route.Oif
		}
		there := JourneyHop{Netns: v.Hop.Netns, NetnsName: v.Hop.NetnsName, Stages: hopStages(v, ev), Died: v.Outcome == Dropped,
			Reached: pathCount(ev, v.Hop.Netns, evidence.PointReceive)}
		if there.Died {
			there.Dropped = v.Drops
		}
		return []JourneyHop{here, there}
	case v.Outcome == Forwarded && v.Route != nil:
		here.Out = v.Route.Oif
	case v.Outcome == Dropped:
		here.Died = true
		here.Dropped = v.Drops
	}
	return []JourneyHop{here}
}

// hopStages marks the stages of the namespace the flow went on to, from what was seen
// there: its packets received (the path points), its route lookups, the trace of its
// firewall when the flow was followed there, and where it died or was delivered.
func hopStages(v *Verdict, ev *evidence.Evidence) []StageStatus {
	ns := v.Hop.Netns
	s := seen{}
	if a := ev.Arrival; a != nil {
		for _, c := range a.Counts {
			if c.Netns == ns && c.Direction == evidence.In {
				s.add(Ingress, "%d captured in on %s", c.Packets, c.Iface)
			}
		}
	}
	if n := pathCount(ev, ns, evidence.PointReceive); n > 0 {
		s.add(Ingress, "netif_receive_skb: %d", n)
	}
	if p := ev.Path; p != nil {
		for _, e := range p.Events {
			if e.Netns == ns && e.Point == evidence.PointRoute && e.Iif != "" {
				s.addRoute(Routing, e)
			}
		}
	}
	s.addTraces(ev.Firewall.Other(ns))
	path := receivePath[1:]
	if indexOf(path, v.Stage) < 0 {
		path = forwardPath[1:]
	}
	if i := indexOf(path, v.Stage); i >= 0 && v.Outcome != Delivered {
		path = path[:i+1]
	}
	out := mark(path, s, v)
	if last := &out[len(out)-1]; last.Status == "died" || last.Status == "reached" {
		where := ""
		if t := v.Translation; t != nil {
			where = fmt.Sprintf("after %s to %s", t.Kind, t.To())
		}
		last.Evidence = strings.TrimPrefix(strings.Join([]string{last.Evidence, where}, "; "), "; ")
	}
	return out
}

// pathCount is how many events of the flow point saw in namespace ns.
func pathCount(ev *evidence.Evidence, ns uint64, point string) int {
	n := 0
	if p := ev.Path; p != nil {
		for _, c := range p.Counts {
			if c.Netns == ns && c.Point == point {
				n += c.Events
			}
		}
	}
	return n
}

// natRule is the rule the trace saw translate the flow: a dnat, redirect or masquerade
// statement in the hook that does that kind of translation.
func natRule(fw *evidence.Firewall, kind string) *evidence.TraceStep {
	if fw == nil {
		return nil
	}
	// A rule whose expressions are not all rendered yet still names its nat expression.
	hook, words := "prerouting", []string{"dnat ", "redirect", "nat)", "nat,", "redir", `xt target "DNAT"`, `xt target "REDIRECT"`}
	if kind == "SNAT" {
		hook, words = "postrouting", []string{"snat ", "masquerade", "nat)", "nat,", "masq", `xt target "SNAT"`, `xt target "MASQUERADE"`}
	}
	for _, t := range fw.Traces {
		if t.Hook != hook {
			continue
		}
		for i, s := range t.Steps {
			for _, w := range words {
				if strings.Contains(s.Rule, w) {
					return &t.Steps[i]
				}
			}
			// Evidence recorded before xt targets were named by extension says only
			// "target": the rule that accepted in the nat hook did it.
			if s.Verdict == "accept" && s.Type == "rule" && (strings.Contains(s.Rule, "target)") || strings.Contains(s.Rule, "target,")) {
				return &t.Steps[i]
			}
		}
	}
	return nil
}

// outDevice is the device a translated packet left by: where the kernel drop stage saw it
// leaving, else the route lookup of its new destination, else the device the capture saw
// it leave by.
func outDevice(ev *evidence.Evidence, t *evidence.Translation) string {
	if t != nil && t.Out != "" {
		return t.Out
	}
	if ev.Path != nil && t != nil {
		for _, e := range ev.Path.Events {
			if e.Point == evidence.PointRoute && !e.Elsewhere && e.Err == 0 && e.Dst.Addr() == t.To().Addr() && e.Oif != "" {
				return e.Oif
			}
		}
	}
	if ev.Arrival != nil && t != nil {
		// Translated, a packet on its way out is of the reply tuple's connection; the
		// answers leave toward the client with the original addresses back.
		for _, p := range ev.Arrival.Packets {
			if p.Direction == evidence.Out && p.Netns == 0 && t.Carries(p.Src, p.Dst) {
				return p.Iface
			}
		}
	}
	return ""
}
