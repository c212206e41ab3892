package arrival

import (
	"context"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Stage is the arrival stage of a diagnosis: a Capture under package stage's lifecycle.
// Armed last, it stops first: the capture ends before the stages that explain its packets.
type Stage struct {
	cfg      Config
	capture  *Capture
	names    map[int]string
	netnsOf  map[int]uint64
	closeErr error
}

var _ stage.Stage = (*Stage)(nil)

// NewStage makes the stage; Arm starts the capture.
func NewStage(cfg Config) *Stage { return &Stage{cfg: cfg} }

func (s *Stage) Name() string { return "arrival" }

func (s *Stage) Arm(ctx context.Context) (err error) {
	s.capture, err = Start(ctx, s.cfg)
	return err
}

func (s *Stage) Grow(e evidence.Endpoint) error { return s.capture.Grow(e) }

func (s *Stage) Progress() (string, func() int) { return "packets seen", s.capture.Packets }

func (s *Stage) Stop(_ context.Context, ev *evidence.Evidence) {
	ev.Arrival = s.capture.Stop()
	s.names, s.netnsOf = s.capture.Interfaces()
}

func (s *Stage) Close() error {
	if s.capture == nil {
		return nil
	}
	err := s.capture.Close()
	if s.closeErr == nil {
		s.closeErr = err
	}
	return err
}

// Interfaces names the interfaces the capture saw, for the pcapng, with the namespace of
// those of another namespace: read at Stop, so that they outlive the capture.
func (s *Stage) Interfaces() (map[int]string, map[int]uint64) { return s.names, s.netnsOf }

// Installed: the packet socket is gone when its Close succeeded; the tcx programs when, in
// addition, no BPF object is left.
func (s *Stage) Installed(left stage.Left) []evidence.Installed {
	if s.capture == nil {
		return nil
	}
	if s.capture.method == methodTCXName {
		return []evidence.Installed{{What: "BPF capture programs on tcx", Removed: s.closeErr == nil && left.BPF == 0}}
	}
	return []evidence.Installed{{What: "AF_PACKET capture socket", Removed: s.closeErr == nil}}
}
