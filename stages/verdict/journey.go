package verdict

import (
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
	switch {
	case v.Hop != nil && len(v.Map) > 0:
		here.Stages = v.Map[:len(v.Map)-1]
		here.Out = outDevice(ev, here.Translation)
		there := JourneyHop{Netns: v.Hop.Netns, NetnsName: v.Hop.NetnsName, Stages: v.Map[len(v.Map)-1:], Died: v.Outcome == Dropped}
		return []JourneyHop{here, there}
	case v.Outcome == Forwarded && v.Route != nil:
		here.Out = v.Route.Oif
	case v.Outcome == Dropped:
		here.Died = true
	}
	return []JourneyHop{here}
}

// natRule is the rule the trace saw translate the flow: a dnat, redirect or masquerade
// statement in the hook that does that kind of translation.
func natRule(fw *evidence.Firewall, kind string) *evidence.TraceStep {
	if fw == nil {
		return nil
	}
	// A rule whose expressions are not all rendered yet still names its nat expression.
	hook, words := "prerouting", []string{"dnat ", "redirect", "nat)", "nat,", "redir"}
	if kind == "SNAT" {
		hook, words = "postrouting", []string{"snat ", "masquerade", "nat)", "nat,", "masq"}
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
		}
	}
	return nil
}

// outDevice is the device a translated packet left by: the route lookup of its new
// destination, else the device the capture saw it leave by.
func outDevice(ev *evidence.Evidence, t *evidence.Translation) string {
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
			if p.Direction == evidence.Out && t.Carries(p.Src, p.Dst) {
				return p.Iface
			}
		}
	}
	return ""
}
