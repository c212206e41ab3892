package path

import (
	"fmt"
	"time"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
)

// Shedding: diagnose runs on hosts that may already be in trouble. The receive and route
// tracepoints fire for every packet of every flow (the route one up to five times), so
// under a flood of other traffic they cost the host more than they tell about the flow.
// While the capture runs, a point whose rate of other flows' events passes shedRate is
// detached, and the report says so.

// shedRate is the rate of other flows' events per second above which a hot point is
// detached (Config.shedRate lowers it for tests).
const shedRate = 200_000

// shedEvery is how often the rates are read.
const shedEvery = 500 * time.Millisecond

// sheddable are the points on every packet's path; the others fire per socket or per
// answer and cost little.
var sheddable = map[bpf.PathPoint]bool{
	bpf.PathPointPOINT_RECEIVE: true,
	bpf.PathPointPOINT_ROUTE:   true,
	bpf.PathPointPOINT_ROUTE6:  true,
}

// shedLoop watches the hot points until stop is closed.
func (p *Probe) shedLoop(stop <-chan struct{}) {
	limit := uint64(shedRate)
	if p.cfg.shedRate > 0 {
		limit = p.cfg.shedRate
	}
	tick := time.NewTicker(shedEvery)
	defer tick.Stop()
	last := map[bpf.PathPoint]uint64{}
	lastAt := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			elapsed := now.Sub(lastAt).Seconds()
			lastAt = now
			p.life.Lock()
			if p.closed || p.stopped != nil {
				p.life.Unlock()
				return
			}
			for _, a := range p.points {
				if !sheddable[a.point.id] || a.shed != "" {
					continue
				}
				other, ok := p.otherEvents(a.point.id)
				if !ok {
					continue
				}
				rate := uint64(float64(other-last[a.point.id]) / elapsed)
				last[a.point.id] = other
				if rate > limit {
					a.shed = fmt.Sprintf("detached %.1fs into the capture: %d events/s of other traffic passed it, more than the %d/s diagnose lets itself cost a busy host", time.Since(p.started).Seconds(), rate, limit)
					_ = a.link.Close()
				}
			}
			p.life.Unlock()
		}
	}
}

// otherEvents is how many events of other flows the point's program has seen so far.
func (p *Probe) otherEvents(id bpf.PathPoint) (uint64, bool) {
	c, err := bpfrt.SumPerCPU[bpf.PathCounters](p.maps.Maps[bpf.PathMapTotals], uint32(id))
	if err != nil {
		return 0, false
	}
	return c.Seen - c.Matched, true
}
