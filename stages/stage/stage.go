// Package stage is the lifecycle every stage of a diagnosis follows, and the pipeline that
// runs them: armed in order, stopped and closed in reverse, each saying what it installed in
// the kernel and whether it is gone, measured after every stage has closed.
//
// A stage watches the kernel for one run: Arm installs what it needs and returns once it
// observes; Stop ends the observation and files its evidence; Close releases what it
// installed, whatever happened before (it is idempotent, and safe after a failed Arm);
// Installed reports it. stagetest checks that every stage keeps these promises.
package stage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Stage is one step of the diagnosis that watches the kernel.
type Stage interface {
	// Name names the stage in errors and notes: "kernel drop", "firewall".
	Name() string
	// Arm installs what the stage needs and returns once it observes. An error that wraps
	// ErrSkipped means the run goes on without the stage (its evidence says why); any other
	// error ends the run.
	Arm(ctx context.Context) error
	// Grow adds an endpoint to the flow the stage watches, while it is armed: its matchers
	// take the endpoint's packets from then on. The stage's configured flow is endpoint 1.
	// A stage that cannot follow it returns an error that says so; the run goes on.
	Grow(e evidence.Endpoint) error
	// Progress is the stage's live count for the progress line; count is nil when it has
	// none.
	Progress() (label string, count func() int)
	// Stop ends the observation and files the stage's evidence into ev. Stages stop in
	// reverse order of arming, so a stage sees the evidence of those armed after it.
	Stop(ctx context.Context, ev *evidence.Evidence)
	// Close releases what the stage installed. Idempotent; safe at any point.
	Close() error
	// Installed says what the stage put into the kernel and whether it is gone, given what
	// is left once every stage has closed.
	Installed(left Left) []evidence.Installed
}

// Left is what the process still holds once every stage has closed: the measured proof
// that the kernel objects are gone.
type Left struct {
	// BPF counts the BPF programs and links still open.
	BPF int
}

// ErrSkipped is wrapped by an Arm error after which the run goes on without the stage.
var ErrSkipped = errors.New("going on without it")

// Skip marks err as one the run survives; its message is err's.
func Skip(err error) error { return skipped{err} }

type skipped struct{ err error }

func (s skipped) Error() string   { return s.err.Error() }
func (s skipped) Unwrap() []error { return []error{s.err, ErrSkipped} }

// Counter is one stage's live count, for the progress line.
type Counter struct {
	Label string
	Read  func() int // nil: nothing to count yet
}

// Pipeline runs stages through the lifecycle.
type Pipeline struct {
	stages []Stage
	// ends is the flow as it stands: the configured flow, then each endpoint Grow added.
	mu   sync.Mutex
	ends evidence.Endpoints
	live []Stage // the stages armed, without those the run goes on without
	// stopping: the stages are being stopped, and an endpoint learned now is only kept.
	stopping bool
	armed    int // how many stages Arm has reached, in order
	// warn hears what the run goes on without.
	warn func(string)
	// closeErrs are Close's errors, by stage; closed says Close has run.
	closeErrs map[string]error
	closed    bool
}

// New makes a pipeline of stages, armed in this order, which watch flow. warn hears each
// stage the run goes on without, and each endpoint a stage could not follow.
func New(flow evidence.Flow, warn func(string), stages ...Stage) *Pipeline {
	return &Pipeline{stages: stages, warn: warn, ends: evidence.Endpoints{flow.Endpoint()}}
}

// Grow adds the endpoint at addr:port/proto in namespace netns (0: any) to the flow of
// every armed stage, and returns it with its id; one already there is returned as it is.
// A stage that cannot follow it is named to warn, and the others go on. Called between
// Arm and Stop, from any goroutine.
func (p *Pipeline) Grow(e evidence.Endpoint) evidence.Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.Addr = e.Addr.Unmap()
	for _, have := range p.ends {
		if have.Addr == e.Addr && have.Port == e.Port && have.Proto == e.Proto && have.Netns == e.Netns {
			return have
		}
	}
	e.ID = uint32(len(p.ends) + 1)
	p.ends = append(p.ends, e)
	if p.stopping {
		return e
	}
	for _, s := range p.live {
		if err := s.Grow(e); err != nil {
			p.warn(fmt.Sprintf("the %s stage does not follow %s: %v", s.Name(), e, err))
		}
	}
	return e
}

// Endpoints is the flow as it stands.
func (p *Pipeline) Endpoints() evidence.Endpoints {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ends)
}

// Arm arms the stages in order. When one fails, the stages armed before it and the failed
// one (it may hold what it made half-way) are closed, in reverse, and its error is
// returned, prefixed with its name. A stage counts as armed from the moment its Arm
// starts, so that Close, deferred by the caller, also reaches one whose Arm panics.
func (p *Pipeline) Arm(ctx context.Context) error {
	for _, s := range p.stages {
		p.armed++
		err := s.Arm(ctx)
		if err == nil {
			p.catchUp(s)
			continue
		}
		if errors.Is(err, ErrSkipped) && ctx.Err() == nil {
			p.warn(fmt.Sprintf("%s stage unavailable, going on without it: %v", s.Name(), err))
			continue
		}
		p.Close()
		return fmt.Errorf("%s stage: %w", s.Name(), err)
	}
	return nil
}

// catchUp gives a stage just armed the endpoints the flow grew by before, and lets it
// hear of those to come.
func (p *Pipeline) catchUp(s Stage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live = append(p.live, s)
	for _, e := range p.ends[1:] {
		if err := s.Grow(e); err != nil {
			p.warn(fmt.Sprintf("the %s stage does not follow %s: %v", s.Name(), e, err))
		}
	}
}

// Progress lists the live counts of the stages, last armed first: the capture's, then the
// others' along the kernel's path.
func (p *Pipeline) Progress() []Counter {
	var out []Counter
	for i := len(p.stages) - 1; i >= 0; i-- {
		if label, read := p.stages[i].Progress(); label != "" {
			out = append(out, Counter{Label: label, Read: read})
		}
	}
	return out
}

// Stop stops the armed stages in reverse order, each filing its evidence into ev.
func (p *Pipeline) Stop(ctx context.Context, ev *evidence.Evidence) {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	for i := p.armed - 1; i >= 0; i-- {
		p.stages[i].Stop(ctx, ev)
	}
}

// Close closes every stage armed or attempted, in reverse order. Idempotent.
func (p *Pipeline) Close() {
	if p.closed {
		return
	}
	p.closed = true
	p.closeErrs = map[string]error{}
	for i := p.armed - 1; i >= 0; i-- {
		s := p.stages[i]
		p.closeErrs[s.Name()] = s.Close()
	}
}

// Installed closes the stages if they are not yet, measures what is left, and returns what
// each installed and whether it is gone, with a note for each stage whose Close failed.
func (p *Pipeline) Installed() (installed []evidence.Installed, notes []string) {
	p.Close()
	open := bpfrt.OpenObjects()
	left := Left{BPF: open[bpfrt.Prog] + open[bpfrt.Link]}
	for _, s := range p.stages[:p.armed] {
		installed = append(installed, s.Installed(left)...)
		if err := p.closeErrs[s.Name()]; err != nil {
			notes = append(notes, fmt.Sprintf("closing the %s stage: %v", s.Name(), err))
		}
	}
	if left.BPF > 0 {
		notes = append(notes, fmt.Sprintf("%d BPF programs and links still open after every stage closed (they go when diagnose exits)", left.BPF))
	}
	return installed, notes
}
