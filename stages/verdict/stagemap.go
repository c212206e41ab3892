package verdict

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// StageStatus is one stage of the map: how far the flow got, and what shows it.
type StageStatus struct {
	Stage Stage
	// Status: passed, reached (the last stage seen, no drop), died, not_reached, unknown.
	Status   string
	Evidence string
}

// The paths a packet can take through the map.
var (
	receivePath = []Stage{Arrival, Ingress, IPRcv, Prerouting, Routing, Input, Socket}
	forwardPath = []Stage{Arrival, Ingress, IPRcv, Prerouting, Routing, Forward, Postrouting, Egress}
	mcastPath   = []Stage{Arrival, Ingress, IPRcv, Prerouting, Routing, MulticastRPF, Input, Socket}
	sendPath    = []Stage{Socket, Output, Postrouting, Egress}
)

// seen collects, per stage, what shows the flow reached it.
type seen map[Stage][]string

func (s seen) add(st Stage, format string, a ...any) {
	s[st] = append(s[st], fmt.Sprintf(format, a...))
}

// addRoute adds what a route lookup of the flow shows, to stage st.
func (s seen) addRoute(st Stage, e evidence.PathEvent) {
	if e.Err != 0 {
		s.add(st, "route lookup failed (error %d)", e.Err)
	} else {
		s.add(st, "route lookup: table %d%s", e.Table, prefixed(" via ", e.Oif))
	}
}

// addTraces adds what a namespace's firewall trace shows, hook by hook, and says whether
// the flow went through its forward hook.
func (s seen) addTraces(fw *evidence.Firewall) (forwarding bool) {
	if fw == nil {
		return false
	}
	hooks := map[string]map[string]int{}
	for _, t := range fw.Traces {
		if hooks[t.Hook] == nil {
			hooks[t.Hook] = map[string]int{}
		}
		hooks[t.Hook][cmp.Or(t.Verdict, "no verdict")]++
		forwarding = forwarding || t.Hook == "forward"
	}
	for hook, verdicts := range hooks {
		if st, ok := hookStage(hook); ok {
			s.add(st, "nftables %s: %s", hook, verdictCounts(verdicts))
		}
	}
	return forwarding
}

// stageMap marks each stage of the flow's path from every piece of evidence.
func stageMap(v *Verdict, ev *evidence.Evidence) []StageStatus {
	s := seen{}
	if a := ev.Arrival; a != nil {
		for _, c := range a.Counts {
			if c.Netns != 0 {
				continue // the namespace's the flow went on to: its hop's
			}
			if c.Direction == evidence.In {
				s.add(Arrival, "%d captured in on %s", c.Packets, c.Iface)
			} else {
				s.add(Egress, "%d captured out on %s", c.Packets, c.Iface)
			}
		}
	}
	forwarding := s.addTraces(ev.Firewall)
	if p := ev.Path; p != nil {
		for _, c := range p.Counts {
			if c.Elsewhere {
				continue
			}
			switch c.Point {
			case evidence.PointReceive:
				s.add(Ingress, "netif_receive_skb: %d", c.Events)
			case evidence.PointSockState, evidence.PointDataReady, evidence.PointCopied:
				s.add(Socket, "%s: %d", c.Point, c.Events)
			case evidence.PointReset:
				s.add(Socket, "answered with %d TCP reset(s)", c.Events)
			case evidence.PointICMP:
				s.add(Socket, "answered with %d ICMP error(s)", c.Events)
			}
		}
		for _, e := range p.Events {
			if e.Elsewhere || e.Point != evidence.PointRoute {
				continue
			}
			st := Output
			if e.Iif != "" {
				st = Routing
			}
			s.addRoute(st, e)
		}
	}
	if v.Hop != nil {
		return hopMap(v, s)
	}
	if ev.Arrival != nil && ev.Arrival.Out > 0 && ev.Arrival.In > 0 {
		s.add(Socket, "this host answered with %d packet(s)", ev.Arrival.Out)
	}
	path := pathFor(v, ev, forwarding)
	return mark(path, s, v)
}

// hopMap is the map of a packet that went through this namespace into another of the
// host and died there: forwarded here, every stage passed, then the stage where it died,
// in that namespace.
func hopMap(v *Verdict, s seen) []StageStatus {
	var out []StageStatus
	for _, st := range forwardPath {
		e := strings.Join(s[st], "; ")
		if e == "" {
			e = "implied: it went on into another namespace"
		}
		out = append(out, StageStatus{Stage: st, Status: "passed", Evidence: e})
	}
	where := fmt.Sprintf("in network namespace %d", v.Hop.Netns)
	if v.Hop.NetnsName != "" {
		where = fmt.Sprintf("in network namespace %s (%d)", v.Hop.NetnsName, v.Hop.Netns)
	}
	if t := v.Translation; t != nil {
		where += fmt.Sprintf(", after %s to %s", t.Kind, t.To())
	}
	if v.Outcome == Delivered {
		return append(out, StageStatus{Stage: v.Stage, Status: "reached", Evidence: where + "; a socket there took it"})
	}
	return append(out, StageStatus{Stage: v.Stage, Status: "died", Evidence: where})
}

func pathFor(v *Verdict, ev *evidence.Evidence, forwarding bool) []Stage {
	switch {
	case v.Stage == MulticastRPF:
		return mcastPath
	case v.Stage == Forward || forwarding || v.Outcome == Forwarded:
		return forwardPath
	case indexOf(sendPath, v.Stage) > 0 && v.Outcome == Dropped:
		return sendPath
	case ev.Arrival != nil && ev.Arrival.In == 0 && ev.Arrival.Out > 0 && v.Outcome != NotArrived:
		return sendPath
	}
	return receivePath
}

// mark gives each stage its status: stages before the furthest one reached passed, the
// dying stage died, later ones were not reached.
func mark(path []Stage, s seen, v *Verdict) []StageStatus {
	end := -1
	for i, st := range path {
		if len(s[st]) > 0 {
			end = i
		}
	}
	died := -1
	if v.Outcome == Dropped {
		died = indexOf(path, v.Stage)
		end = died
	}
	if v.Outcome == Delivered || v.Outcome == Forwarded {
		end = len(path) - 1
	}
	if v.Outcome == NotArrived {
		end = -1
	}
	out := make([]StageStatus, len(path))
	for i, st := range path {
		out[i] = StageStatus{Stage: st, Evidence: strings.Join(s[st], "; ")}
		switch {
		case i == died:
			out[i].Status = "died"
		case i < end:
			out[i].Status = "passed"
		case i == end && (v.Outcome == Delivered || v.Outcome == Forwarded):
			out[i].Status = "reached"
		case i == end:
			out[i].Status = "reached"
		case v.Outcome == Inconclusive:
			out[i].Status = "unknown"
		default:
			out[i].Status = "not_reached"
		}
		if out[i].Evidence == "" && out[i].Status == "passed" {
			out[i].Evidence = "implied: a later stage was reached"
		}
	}
	return out
}

func verdictCounts(m map[string]int) string {
	var parts []string
	for _, k := range []string{"accept", "drop", "queue", "stolen", "no verdict"} {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(parts, ", ")
}

func indexOf(p []Stage, s Stage) int {
	for i, x := range p {
		if x == s {
			return i
		}
	}
	return -1
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
