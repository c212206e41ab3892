package nftrace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/netns"
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
	ctx context.Context
	// following counts the lookups and trace starts in other namespaces under way.
	following sync.WaitGroup
	mu        sync.Mutex
	ends      evidence.Endpoints // the flow as it stands, for a trace started elsewhere
	looked    map[netip.Addr]bool
	others    []*elsewhere
	notes     []string // what following the flow elsewhere ran into
	closed    bool
}

// elsewhere is the trace of another namespace the flow went on to.
type elsewhere struct {
	netns    uint64
	followed evidence.Endpoint
	since    time.Time
	tracer   *Tracer            // nil: not traced there; fw says why
	fw       *evidence.Firewall // the evidence, once stopped (or why there is no tracer)
}

var _ stage.Stage = (*Stage)(nil)

// NewStage makes the stage; Arm installs the trace table.
func NewStage(cfg Config) *Stage { return &Stage{cfg: cfg} }

func (s *Stage) Name() string { return "firewall" }

func (s *Stage) Arm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.ctx, s.ends, s.looked = ctx, evidence.Endpoints{s.cfg.Flow.Endpoint()}, map[netip.Addr]bool{}
	if has, err := HasChains(s.cfg); err == nil && !has {
		s.skipped = &evidence.Firewall{Skipped: "this network namespace has no nftables chain, so nftables cannot drop the flow here"}
		s.follow(s.cfg.Flow.Endpoint())
		return nil
	}
	t, err := Start(ctx, s.cfg)
	switch {
	case err == nil:
		s.tracer = t
		s.follow(s.cfg.Flow.Endpoint())
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
	s.follow(e)
	return err
}

// follow looks, in the background, for the namespace of this host that has e's address,
// and traces the flow there. Each address is looked for once.
func (s *Stage) follow(e evidence.Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.looked[e.Addr] {
		return
	}
	s.looked[e.Addr] = true
	s.following.Add(1)
	go func() {
		defer s.following.Done()
		if err := s.traceIn(e); err != nil {
			s.mu.Lock()
			s.notes = append(s.notes, fmt.Sprintf("following %s into the namespace that has its address: %v", e, err))
			s.mu.Unlock()
		}
	}()
}

// traceIn starts a trace of the flow in the namespace that has e's address, if one of
// this host next to the diagnosed one does.
func (s *Stage) traceIn(e evidence.Endpoint) error {
	h, err := netns.Holding(e.Addr, s.cfg.Netns)
	if err != nil || h == nil {
		return err
	}
	defer h.Close()
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
	if has, err := HasChains(cfg); err == nil && !has {
		o.fw = &evidence.Firewall{Skipped: "this network namespace has no nftables chain, so nftables cannot drop the flow there"}
	} else if o.tracer, err = Start(s.ctx, cfg); err != nil {
		o.fw = &evidence.Firewall{Error: err.Error()}
	}
	o.since = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		// The run ended while the trace started: it has nothing to see.
		return o.tracer.Close()
	}
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
}

func (s *Stage) Progress() (string, func() int) {
	if s.tracer == nil {
		return "", nil
	}
	return "traced", s.tracer.Traced
}

func (s *Stage) Stop(_ context.Context, ev *evidence.Evidence) {
	s.following.Wait()
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
		ev.Firewall.Elsewhere = append(ev.Firewall.Elsewhere, fw)
	}
	if len(s.notes) > 0 {
		if ev.Firewall.Error != "" {
			ev.Firewall.Error += "; "
		}
		ev.Firewall.Error += strings.Join(s.notes, "; ")
	}
}

func (s *Stage) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// A trace starting elsewhere sees closed and removes its own table.
	s.following.Wait()
	errs := []error{s.tracer.Close()}
	for _, o := range s.others {
		errs = append(errs, o.tracer.Close())
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
