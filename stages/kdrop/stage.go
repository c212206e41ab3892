package kdrop

import (
	"context"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Stage is the kernel drop stage of a diagnosis: Probe under package stage's lifecycle.
type Stage struct {
	cfg      Config
	probe    *Probe
	closeErr error
}

var _ stage.Stage = (*Stage)(nil)

// NewStage makes the stage; Arm starts the probe.
func NewStage(cfg Config) *Stage { return &Stage{cfg: cfg} }

func (s *Stage) Name() string { return "kernel drop" }

func (s *Stage) Arm(ctx context.Context) (err error) {
	s.probe, err = Start(ctx, s.cfg)
	return err
}

func (s *Stage) Grow(e evidence.Endpoint) error { return s.probe.Grow(e) }

func (s *Stage) Progress() (string, func() int) { return "dropped", s.probe.Events }

func (s *Stage) Stop(_ context.Context, ev *evidence.Evidence) { ev.Kernel = s.probe.Stop() }

func (s *Stage) Close() error {
	err := s.probe.Close()
	if s.closeErr == nil {
		s.closeErr = err
	}
	return err
}

// Installed: the program is gone when its Close succeeded and no BPF object is left.
func (s *Stage) Installed(left stage.Left) []evidence.Installed {
	if s.probe == nil || s.probe.att == nil {
		return nil
	}
	gone := s.closeErr == nil && left.BPF == 0
	in := []evidence.Installed{{What: "BPF program on skb:kfree_skb (" + s.probe.att.name + ")", Removed: gone}}
	if s.probe.learn != nil {
		in = append(in, evidence.Installed{What: "BPF program on net:net_dev_queue (" + s.probe.learn.name + "), learning the flow's translations", Removed: gone})
	}
	return in
}
