package verdict

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Fate is what became of one captured packet of the flow.
type Fate struct {
	Time      time.Time
	Iface     string
	Direction evidence.Direction
	Src       string
	Dst       string
	Flags     string
	// Fate: dropped, not_dropped (arrived and no drop seen), sent (left this host).
	Fate   string
	Stage  Stage
	Reason string
	At     string // the dropping call site
}

// dropWindow is how long after its capture a packet's drop may come: drops happen in the
// same softirq as the receive, so far less, but a queued socket purge may come later.
const dropWindow = 2 * time.Second

// fates joins the captured packets with the drops of this namespace: a drop is a packet's
// when the tuple and flags match and it comes after the capture, the earliest first.
func fates(ev *evidence.Evidence, local []evidence.Drop, fw *fwDropped) []Fate {
	if ev.Arrival == nil {
		return nil
	}
	used := make([]bool, len(local))
	var out []Fate
	for _, p := range ev.Arrival.Packets {
		f := Fate{Time: p.Time, Iface: p.Iface, Direction: p.Direction, Src: p.Src.String(), Dst: p.Dst.String(), Flags: p.Flags}
		if p.Direction == evidence.Out {
			f.Fate = "sent"
			out = append(out, f)
			continue
		}
		f.Fate = "not_dropped"
		for i, d := range local {
			if used[i] || !joins(d, p) {
				continue
			}
			used[i] = true
			f.Fate, f.Reason, f.At = "dropped", d.Reason, d.Location
			f.Stage = stageOf(d.Reason, d, fw)
			break
		}
		out = append(out, f)
	}
	return out
}

// mixedFates says, when some arriving packets died and others did not, which did which:
// "the SYN got through but the data was dropped" is the whole story of many tickets.
func mixedFates(fs []Fate) string {
	passed, dropped := map[string]int{}, map[string]int{}
	for _, f := range fs {
		switch f.Fate {
		case "dropped":
			dropped[flagWord(f.Flags)]++
		case "not_dropped":
			passed[flagWord(f.Flags)]++
		}
	}
	if len(passed) == 0 || len(dropped) == 0 {
		return ""
	}
	return fmt.Sprintf("fates differ: %s got through, %s dropped", countWords(passed), countWords(dropped))
}

func countWords(m map[string]int) string {
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, " and ")
}

// flagWord names a TCP packet by its flags as people say it.
func flagWord(flags string) string {
	switch {
	case flags == "":
		return "datagram(s)"
	case flags == "S":
		return "SYN(s)"
	case flags == "S.":
		return "SYN-ACK(s)"
	case strings.Contains(flags, "R"):
		return "reset(s)"
	case strings.Contains(flags, "F"):
		return "FIN(s)"
	case strings.Contains(flags, "P"):
		return "data segment(s)"
	case flags == ".":
		return "ACK(s)"
	}
	return "packet(s) with flags " + flags
}
