package nftrace

import (
	"context"
	"errors"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Stage is the firewall stage of a diagnosis: a Tracer under package stage's lifecycle.
// A namespace without an nftables base chain has nothing to trace and gets no table; a
// kernel without nftables tracing lets the run go on without the stage.
type Stage struct {
	cfg    Config
	tracer *Tracer
	// skipped is the evidence when there is no tracer: why.
	skipped *evidence.Firewall
	fw      *evidence.Firewall
}

var _ stage.Stage = (*Stage)(nil)

// NewStage makes the stage; Arm installs the trace table.
func NewStage(cfg Config) *Stage { return &Stage{cfg: cfg} }

func (s *Stage) Name() string { return "firewall" }

func (s *Stage) Arm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if has, err := HasChains(s.cfg); err == nil && !has {
		s.skipped = &evidence.Firewall{Skipped: "this network namespace has no nftables chain, so nftables cannot drop the flow here"}
		return nil
	}
	t, err := Start(ctx, s.cfg)
	switch {
	case err == nil:
		s.tracer = t
		return nil
	case !errors.Is(err, kerr.ErrUnsupported), ctx.Err() != nil:
		return err
	}
	s.skipped = &evidence.Firewall{Error: err.Error()}
	return stage.Skip(err)
}

// Grow: without a tracer there is nothing to widen; the evidence says why there is none.
func (s *Stage) Grow(e evidence.Endpoint) error {
	if s.tracer == nil {
		return nil
	}
	return s.tracer.Grow(e)
}

func (s *Stage) Progress() (string, func() int) {
	if s.tracer == nil {
		return "", nil
	}
	return "traced", s.tracer.Traced
}

func (s *Stage) Stop(_ context.Context, ev *evidence.Evidence) {
	if s.tracer == nil {
		ev.Firewall = s.skipped
		return
	}
	s.fw = s.tracer.Stop()
	ev.Firewall = s.fw
}

func (s *Stage) Close() error { return s.tracer.Close() }

// Installed: the table is gone when Stop saw it go (the owner socket closed, and a listing
// of the namespace's tables no longer has it).
func (s *Stage) Installed(stage.Left) []evidence.Installed {
	if s.tracer == nil {
		return nil
	}
	table, removed := "inet "+s.tracer.table, false
	if s.fw != nil {
		table, removed = s.fw.Table, s.fw.Removed
	}
	return []evidence.Installed{{What: "nftables trace table (owned by diagnose's netlink socket: the kernel removes it even if diagnose is killed) " + table, Removed: removed}}
}
