package path

import (
	"context"
	"errors"
	"fmt"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Stage is the path stage of a diagnosis: Probe under package stage's lifecycle. The
// path's tracepoints are an extra: without them (the kernel has none of them) the run goes
// on with less detail on how far the flow got, and the evidence says why. Missing
// privileges end the run, as for the other BPF stages.
type Stage struct {
	cfg      Config
	probe    *Probe
	armErr   error
	closeErr error
}

var _ stage.Stage = (*Stage)(nil)

// NewStage makes the stage; Arm starts the probe.
func NewStage(cfg Config) *Stage { return &Stage{cfg: cfg} }

func (s *Stage) Name() string { return "path" }

func (s *Stage) Arm(ctx context.Context) error {
	p, err := Start(ctx, s.cfg)
	switch {
	case err == nil:
		s.probe = p
		return nil
	case errors.Is(err, kerr.ErrPrivilege), ctx.Err() != nil:
		return err
	}
	s.armErr = err
	return stage.Skip(err)
}

func (s *Stage) Grow(e evidence.Endpoint) error {
	if s.probe == nil {
		return s.armErr
	}
	return s.probe.Grow(e)
}

func (s *Stage) Progress() (string, func() int) {
	if s.probe == nil {
		return "", nil
	}
	return "path events", s.probe.Events
}

func (s *Stage) Stop(_ context.Context, ev *evidence.Evidence) {
	if s.probe == nil {
		ev.Path = &evidence.Path{Error: s.armErr.Error()}
		return
	}
	ev.Path = s.probe.Stop()
}

func (s *Stage) Close() error {
	err := s.probe.Close()
	if s.closeErr == nil {
		s.closeErr = err
	}
	return err
}

func (s *Stage) Installed(left stage.Left) []evidence.Installed {
	if s.probe == nil {
		return nil
	}
	return []evidence.Installed{{What: fmt.Sprintf("BPF programs on %d path tracepoints", len(s.probe.points)), Removed: s.closeErr == nil && left.BPF == 0}}
}
