package nftrace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/xtables"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Stage is the firewall stage of a diagnosis: a Tracer under package stage's lifecycle.
// A namespace without an nftables base chain has nothing to trace and gets no table; a
// kernel without nftables tracing lets the run go on without the stage.
//
// The flow is followed into the other namespaces of this host it goes on to: when one of
// its endpoints (the flow's own address, or one a translation taught) is an address of
// another namespace, that namespace gets a trace table of its own, installed and removed
// the same way, and its evidence goes into the Firewall's Elsewhere.
type Stage struct {
	cfg    Config
	tracer *Tracer
	// skipped is the evidence when there is no tracer: why.
	skipped *evidence.Firewall
	fw      *evidence.Firewall

	// ctx is the run's: a trace started elsewhere during the run ends with it.
	ctx    context.Context
	follow netns.Follower
	mu     sync.Mutex
	ends   evidence.Endpoints // the flow as it stands, for a trace started elsewhere
	others []*elsewhere
	notes  []string // what following the flow elsewhere ran into

	// legacy is iptables-legacy's tables as the stage armed, legacyErr why they could
	// not be read; hasChains says the namespace has nftables chains besides.
	legacy    []*xtables.Table
	legacyErr error
	hasChains bool
}

// elsewhere is the trace of another namespace the flow went on to.
type elsewhere struct {
	netns    uint64
	followed evidence.Endpoint
	since    time.Time
	tracer   *Tracer            // nil: not traced there; fw says why
	fw       *evidence.Firewall // the evidence, once stopped (or why there is no tracer)
	// handle is kept to read its iptables-legacy tables again at Stop; legacy holds them
	// as the flow was followed there.
	handle    *netns.Handle
	legacy    []*xtables.Table
	legacyErr error
	hasChains bool
}

var _ stage.Stage = (*Stage)(nil)

// NewStage makes the stage; Arm installs the trace table.
func NewStage(cfg Config) *Stage { return &Stage{cfg: cfg} }

func (s *Stage) Name() string { return "firewall" }

func (s *Stage) Arm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.ctx, s.ends, s.follow.From = ctx, evidence.Endpoints{s.cfg.Flow.Endpoint()}, s.cfg.Netns
	s.legacy, s.legacyErr = readLegacy(s.cfg.Netns)
	has, err := HasChains(s.cfg)
	s.hasChains = err != nil || has
	if err == nil && !has {
		s.skipped = &evidence.Firewall{Skipped: "this network namespace has no nftables chain, so nftables cannot drop the flow here"}
		s.followInto(s.cfg.Flow.Endpoint(), true)
		return nil
	}
	t, err := Start(ctx, s.cfg)
	switch {
	case err == nil:
		s.tracer = t
		s.followInto(s.cfg.Flow.Endpoint(), true)
		return nil
	case !errors.Is(err, kerr.ErrUnsupported), ctx.Err() != nil:
		return err
	}
	s.skipped = &evidence.Firewall{Error: err.Error()}
	return stage.Skip(err)
}

// Grow traces the endpoint's packets here and in every namespace followed, and follows
// the flow into the namespace that has the endpoint's address.
func (s *Stage) Grow(e evidence.Endpoint) error {
	var err error
	if s.tracer != nil {
		err = s.tracer.Grow(e)
	}
	s.mu.Lock()
	s.ends = append(s.ends, e)
	for _, o := range s.others {
		if o.tracer != nil {
			if gerr := o.tracer.Grow(e); gerr != nil {
				s.notes = append(s.notes, fmt.Sprintf("tracing %s in namespace %d: %v", e, o.netns, gerr))
			}
		}
	}
	s.mu.Unlock()
	s.followInto(e, false)
	return err
}

// followInto traces the flow, from now on, in the namespace next to this one that has
// e's address, if any does: before it returns when now (the flow's own address, at arm).
func (s *Stage) followInto(e evidence.Endpoint, now bool) {
	follow := s.follow.Follow
	if now {
		follow = s.follow.FollowNow
	}
	follow(e.Addr, e.String(), func(h *netns.Handle) error {
		s.mu.Lock()
		for _, o := range s.others {
			if o.netns == h.Inode {
				s.mu.Unlock()
				return nil
			}
		}
		s.mu.Unlock()
		o := &elsewhere{netns: h.Inode, followed: e}
		cfg := Config{Flow: s.cfg.Flow, Netns: h}
		if o.handle, o.legacyErr = h.Clone(); o.legacyErr == nil {
			o.legacy, o.legacyErr = readLegacy(o.handle)
		}
		has, err := HasChains(cfg)
		o.hasChains = err != nil || has
		if err == nil && !has {
			o.fw = &evidence.Firewall{Skipped: "this network namespace has no nftables chain, so nftables cannot drop the flow there"}
		} else if o.tracer, err = Start(s.ctx, cfg); err != nil {
			o.fw = &evidence.Firewall{Error: err.Error()}
		}
		o.since = time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		// The endpoints the flow grew by while the trace started.
		for _, g := range s.ends[1:] {
			if o.tracer != nil {
				if err := o.tracer.Grow(g); err != nil {
					s.notes = append(s.notes, fmt.Sprintf("tracing %s in namespace %d: %v", g, o.netns, err))
				}
			}
		}
		s.others = append(s.others, o)
		return nil
	})
}

func (s *Stage) Progress() (string, func() int) {
	if s.tracer == nil {
		return "", nil
	}
	return "traced", s.tracer.Traced
}

func (s *Stage) Stop(_ context.Context, ev *evidence.Evidence) {
	followErrs := s.follow.Wait()
	if s.tracer == nil {
		ev.Firewall = s.skipped
	} else {
		s.fw = s.tracer.Stop()
		ev.Firewall = s.fw
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Firewall == nil {
		return
	}
	s.stopLegacy(ev.Firewall)
	var owners *netns.Owners
	for _, o := range s.others {
		if o.tracer != nil {
			o.fw = o.tracer.Stop()
		}
		if owners == nil {
			owners = netns.NewOwners()
		}
		fw := *o.fw
		fw.Netns, fw.NetnsName, fw.Followed, fw.Since = o.netns, owners.Describe(o.netns), o.followed.String(), o.since
		if o.handle != nil {
			fw.Legacy = legacyStopped(o.handle, o.legacy, o.legacyErr, s.ends, o.hasChains)
		}
		ev.Firewall.Elsewhere = append(ev.Firewall.Elsewhere, fw)
	}
	s.notes = append(s.notes, followErrs...)
	if len(s.notes) > 0 {
		if ev.Firewall.Error != "" {
			ev.Firewall.Error += "; "
		}
		ev.Firewall.Error += strings.Join(s.notes, "; ")
	}
}

func (s *Stage) Close() error {
	// A trace starting elsewhere is among the others once Wait returns, and none starts after.
	s.follow.Wait()
	errs := []error{s.tracer.Close()}
	for _, o := range s.others {
		errs = append(errs, o.tracer.Close())
		if o.handle != nil {
			errs = append(errs, o.handle.Close())
		}
	}
	return errors.Join(errs...)
}

// Installed: a table is gone when Stop saw it go (the owner socket closed, and a listing
// of the namespace's tables no longer has it).
func (s *Stage) Installed(stage.Left) []evidence.Installed {
	var out []evidence.Installed
	if s.tracer != nil {
		table, removed := "inet "+s.tracer.table, false
		if s.fw != nil {
			table, removed = s.fw.Table, s.fw.Removed
		}
		out = append(out, installed(table, "", removed))
	}
	for _, o := range s.others {
		if o.tracer == nil {
			continue
		}
		removed := o.tracer.removed
		if o.fw != nil {
			removed = o.fw.Removed
		}
		out = append(out, installed("inet "+o.tracer.table, fmt.Sprintf(" in network namespace %d", o.netns), removed))
	}
	return out
}

func installed(table, where string, removed bool) evidence.Installed {
	return evidence.Installed{What: "nftables trace table (owned by diagnose's netlink socket: the kernel removes it even if diagnose is killed) " + table + where, Removed: removed}
}
