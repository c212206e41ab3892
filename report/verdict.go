package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/prose"
)

// Verdict is the report's headline: where the flow's packets died, why, and what to do.
// Its JSON names are a contract (schema.json): VerdictOf fills it from package verdict's
// result and package prose's words for it, so their Go types may change without
// changing it.
type Verdict struct {
	// Outcome: dropped, delivered, not_arrived, inconclusive.
	Outcome string `json:"outcome"`
	// Stage is where the flow died, or got to: one of schema.json's stages.
	Stage string `json:"stage"`
	// Reason is the drop reason without its prefix; nil unless dropped.
	Reason *string `json:"reason"`
	// Function is the dropping function, e.g. tcp_v4_rcv.
	Function string `json:"function,omitempty"`
	// Location is the dropping call site with its offset.
	Location string `json:"location,omitempty"`
	Summary  string `json:"summary"`
	// Explanation says in plain words what the reason means.
	Explanation string `json:"explanation,omitempty"`
	Fix         string `json:"fix,omitempty"`
	// Rule is the nftables rule or chain policy that dropped the packet, when one did.
	Rule *evidence.TraceStep `json:"rule,omitempty"`
	// Drops counts the flow's drops in this namespace that the verdict stands on.
	Drops int `json:"drops"`
	// Netfilter names the hook that dropped, for netfilter drops: the bridge family is
	// told apart from the IP families.
	Netfilter *Hook `json:"netfilter,omitempty"`
	// Elsewhere summarizes drops of the flow in other namespaces of the host.
	Elsewhere []ElsewhereDrop `json:"elsewhere,omitempty"`
	// Map is the stage map: how far the flow got, stage by stage, and what shows it.
	Map []StageStatus `json:"map"`
	// Journey is the map by namespace of this host, in the order the packets went: one hop
	// when they stayed in the namespace diagnosed.
	Journey []JourneyHop `json:"journey,omitempty"`
	// Fates lists what became of each captured packet (the first ones).
	Fates []Fate   `json:"fates,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Hook is a netfilter hook: family ip, ip6 or bridge, and the hook's name.
type Hook struct {
	Family string `json:"family"`
	Hook   string `json:"hook"`
}

// ElsewhereDrop is a group of the flow's drops seen in another namespace of the host.
type ElsewhereDrop struct {
	Netns     uint64 `json:"netns"`
	NetnsName string `json:"netns_name,omitempty"`
	Reason    string `json:"reason"`
	Function  string `json:"function"`
	Count     int    `json:"count"`
}

// StageStatus is one stage of the map: how far the flow got, and what shows it.
type StageStatus struct {
	Stage string `json:"stage"`
	// Status: passed, reached (the last stage seen, no drop), died, not_reached, unknown.
	Status   string `json:"status"`
	Evidence string `json:"evidence,omitempty"`
}

// JourneyHop is one namespace the flow's packets went through.
type JourneyHop struct {
	Netns     uint64        `json:"netns"`
	NetnsName string        `json:"netns_name,omitempty"`
	Stages    []StageStatus `json:"stages"`
	// Translation is what the connection was translated to here, by Rule when traced.
	Translation *HopTranslation `json:"translation,omitempty"`
	// Out is the device the packets left by for the next hop.
	Out  string `json:"out,omitempty"`
	Died bool   `json:"died,omitempty"`
	// Reached counts the flow's packets seen arriving here, Dropped those that died here.
	Reached int `json:"reached,omitempty"`
	Dropped int `json:"dropped,omitempty"`
}

// HopTranslation is a translation in words: "198.51.100.2:8080 -> 203.0.113.2:80".
type HopTranslation struct {
	Kind string `json:"kind"`
	From string `json:"from"`
	To   string `json:"to"`
	// Rule is the rule that did it, as `table FAMILY NAME chain CHAIN: RULE`.
	Rule string `json:"rule,omitempty"`
}

// Fate is what became of one captured packet of the flow.
type Fate struct {
	Time      time.Time          `json:"time"`
	Iface     string             `json:"iface"`
	Direction evidence.Direction `json:"direction"`
	Src       string             `json:"src"`
	Dst       string             `json:"dst"`
	Flags     string             `json:"flags,omitempty"`
	// Fate: dropped, not_dropped (arrived and no drop seen), sent (left this host).
	Fate   string `json:"fate"`
	Stage  string `json:"stage,omitempty"`
	Reason string `json:"reason,omitempty"`
	At     string `json:"at,omitempty"` // the dropping call site
}

// VerdictOf is the report's form of verdict v, said in words t.
func VerdictOf(v verdict.Verdict, t prose.Text) Verdict {
	r := Verdict{
		Outcome:     string(v.Outcome),
		Stage:       string(v.Stage),
		Function:    v.Function,
		Location:    v.Location,
		Summary:     t.Summary,
		Explanation: t.Explanation,
		Fix:         t.Fix,
		Rule:        v.Rule,
		Drops:       v.Drops,
		Elsewhere: convert(v.Elsewhere, func(e verdict.ElsewhereDrop) ElsewhereDrop {
			return ElsewhereDrop{Netns: e.Netns, NetnsName: e.NetnsName, Reason: e.Reason, Function: e.Function, Count: e.Count}
		}),
		Map: convert(v.Map, func(s verdict.StageStatus) StageStatus {
			return StageStatus{Stage: string(s.Stage), Status: s.Status, Evidence: s.Evidence}
		}),
		Fates: convert(v.Fates, func(f verdict.Fate) Fate {
			return Fate{Time: f.Time, Iface: f.Iface, Direction: f.Direction, Src: f.Src, Dst: f.Dst, Flags: f.Flags,
				Fate: f.Fate, Stage: string(f.Stage), Reason: f.Reason, At: f.At}
		}),
		Notes: t.Notes,
	}
	if len(v.Journey) > 1 || len(v.Journey) == 1 && v.Journey[0].Translation != nil {
		r.Journey = convert(v.Journey, journeyHop)
	}
	if v.Reason != "" {
		reason := v.Reason
		r.Reason = &reason
	}
	if h := v.Netfilter; h != nil {
		r.Netfilter = &Hook{Family: h.Family, Hook: h.Hook}
	}
	return r
}

func journeyHop(h verdict.JourneyHop) JourneyHop {
	j := JourneyHop{Netns: h.Netns, NetnsName: h.NetnsName, Out: h.Out, Died: h.Died, Reached: h.Reached, Dropped: h.Dropped,
		Stages: convert(h.Stages, func(s verdict.StageStatus) StageStatus {
			return StageStatus{Stage: string(s.Stage), Status: s.Status, Evidence: s.Evidence}
		})}
	if t := h.Translation; t != nil {
		j.Translation = &HopTranslation{Kind: t.Kind, From: t.From().String(), To: t.To().String()}
		if r := h.Rule; r != nil {
			j.Translation.Rule = "table " + r.Family + " " + r.Table + " chain " + r.Chain + ": " + r.Rule
			if !strings.HasPrefix(r.Rule, "handle ") && r.Handle != 0 {
				j.Translation.Rule += fmt.Sprintf(" # handle %d", r.Handle)
			}
		}
	}
	return j
}

// convert converts each element; nil stays nil, so that the JSON says null where it did.
func convert[A, B any](as []A, f func(A) B) []B {
	if as == nil {
		return nil
	}
	bs := make([]B, len(as))
	for i, a := range as {
		bs[i] = f(a)
	}
	return bs
}
