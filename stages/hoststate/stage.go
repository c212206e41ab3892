package hoststate

import (
	"context"
	"net/netip"
	"slices"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Stage is the host state of a diagnosis: a Snapshot under package stage's lifecycle. It
// installs nothing; it reads the counters when armed and the rest when stopped, once the
// capture's evidence says which peers and interfaces the flow used. Armed first, it stops
// last: after the tracing stages, whose tracepoints its own route lookups would cross.
type Stage struct {
	cfg  Config
	snap *Snapshot
}

var _ stage.Stage = (*Stage)(nil)

// NewStage makes the stage; Arm reads the counters.
func NewStage(cfg Config) *Stage { return &Stage{cfg: cfg} }

func (s *Stage) Name() string { return "host state" }

func (s *Stage) Arm(ctx context.Context) (err error) {
	s.snap, err = Start(ctx, s.cfg)
	return err
}

func (s *Stage) Grow(e evidence.Endpoint) error { return s.snap.Grow(e) }

func (s *Stage) Progress() (string, func() int) { return "", nil }

func (s *Stage) Stop(ctx context.Context, ev *evidence.Evidence) {
	peers, ifaces := peersOf(ev)
	ev.Host = s.snap.Stop(ctx, peers, ifaces)
}

func (s *Stage) Close() error { return nil }

func (s *Stage) Installed(stage.Left) []evidence.Installed { return nil }

// peersOf returns the far ends of the flow seen in the capture and the interfaces it used,
// for the route lookups.
func peersOf(ev *evidence.Evidence) ([]netip.Addr, []string) {
	var peers []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if a = a.Unmap(); a.IsValid() && a != ev.Flow.Addr && !seen[a] {
			seen[a] = true
			peers = append(peers, a)
		}
	}
	var ifaces []string
	if a := ev.Arrival; a != nil {
		for _, p := range a.Packets {
			add(p.Src.Addr())
			add(p.Dst.Addr())
		}
		for _, c := range a.Counts {
			if !slices.Contains(ifaces, c.Iface) {
				ifaces = append(ifaces, c.Iface)
			}
		}
	}
	return peers, ifaces
}
