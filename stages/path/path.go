// Package path is the path stage: how far the flow's packets got, from tracepoints along
// the kernel's path. It attaches the programs of bpf/path.c, each filtered in the kernel to
// the flow, one per tracepoint: the packet reached the stack (net:netif_receive_skb), was
// routed (fib:fib_table_lookup, fib6:fib6_table_lookup), moved a socket's TCP state
// (sock:inet_sock_set_state), woke its socket (sock:sk_data_ready), was read by the
// application (skb:skb_copy_datagram_iovec), or was answered with a reset
// (tcp:tcp_send_reset) or an ICMP error (icmp:icmp_send).
//
// Each tracepoint is attached on its own: one this kernel lacks is reported Missing, with
// why, and the others still run. Like kfree_skb, the tracepoints are host-wide: events of
// the flow in other namespaces are reported too, attributed to theirs and marked
// Elsewhere.
package path

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/ktime"
	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// MaxEvents bounds Path.Events so a busy flow cannot grow memory; Counts counts them all.
const MaxEvents = 512

// Config says what to watch.
type Config struct {
	Flow evidence.Flow
	// Netns is the inode of the namespace being diagnosed: events elsewhere are marked so.
	Netns uint64
	// FlowMaps, when not nil, are the flow's BPF maps shared with the other stages: what
	// one stage's programs learn from a translation, this one's see at their next packet.
	// The stage closes only its own clone. nil: maps of its own.
	FlowMaps *bpf.Flow

	probeRead bool   // tests: the prefilter older kernels run (flow.h's flow_probe_read)
	shedRate  uint64 // tests: a lower rate than shedRate
}

// Probe is the attached programs and the reader of their events.
type Probe struct {
	cfg     Config
	own     uint64
	maps    *ebpf.Collection // events, totals, rx_current, the flow's and .rodata, shared by the programs
	flow    *bpf.Flow
	points  []*attachment
	missing []evidence.MissingPoint
	notes   []string
	rd      *ringbuf.Reader
	clock   ktime.Mono

	done chan struct{} // closed when the reader returns; nil until it starts
	read atomic.Int64

	started  time.Time
	stopShed chan struct{} // ends shedLoop; nil until it starts

	mu  sync.Mutex // guards the reader's results below
	agg aggregate

	sums map[bpf.PathPoint]bpf.PathCounters // the programs' counters, read by Stop

	life    sync.Mutex // serialises Stop and Close
	stopped *evidence.Path
	closed  bool
}

// Start loads and attaches a program on each tracepoint of the path that applies to the
// flow, and returns once they are armed. For each, tp_btf is tried first (no tracefs
// needed), the classic tracepoint second; a tracepoint neither attaches to is Missing in
// the evidence. Start fails only when none attaches; its errors match kerr.ErrPrivilege or
// kerr.ErrUnsupported when that is the cause. ctx bounds Start only.
func Start(ctx context.Context, cfg Config) (*Probe, error) {
	return start(ctx, cfg, []attacher{attachBTF, attachClassic})
}

func start(ctx context.Context, cfg Config, attachers []attacher) (_ *Probe, err error) {
	if err := cfg.Flow.Check(); err != nil {
		return nil, fmt.Errorf("path probe: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Probe{cfg: cfg, own: netns.Own(), agg: newAggregate()}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones ignore it.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, kerr.BPF("remove memlock rlimit for BPF maps", err)
	}
	l, err := newLoader(cfg)
	if err != nil {
		return nil, err
	}
	p.maps, p.flow = l.maps, l.flow
	if err := p.flow.Add(1, cfg.Flow.Addr, cfg.Flow.Port, cfg.Flow.Proto.Number(), 0); err != nil {
		return nil, kerr.BPF("path probe", err)
	}

	wanted, skipped := pointsFor(cfg.Flow)
	p.missing = append(p.missing, skipped...)
	kernel, _ := bpfrt.KernelTypes()
	var failures []error
	for _, pt := range wanted {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if why := absent(kernel, pt); why != "" {
			p.missing = append(p.missing, evidence.MissingPoint{Point: pt.name, Why: why})
			continue
		}
		if pt == pointReset && resetsNeedSocket(kernel) {
			p.notes = append(p.notes, "tcp:tcp_send_reset fires on this kernel only for resets a socket sends (before Linux 6.10): a reset answering a port nothing listens on is not counted there; the capture shows it")
		}
		a, tried := attachPoint(l, pt, attachers)
		if a == nil {
			p.missing = append(p.missing, evidence.MissingPoint{Point: pt.name, Why: joinWhy(pt, tried)})
			failures = append(failures, tried...)
			continue
		}
		p.points = append(p.points, a)
		for _, f := range tried {
			p.notes = append(p.notes, fmt.Sprintf("attached %s after: %v", a.name, f))
		}
	}
	if len(p.points) == 0 {
		return nil, kerr.Join("path probe: no tracepoint attached", failures...)
	}

	if p.rd, err = ringbuf.NewReader(l.maps.Maps[bpf.PathMapEvents]); err != nil {
		return nil, kerr.BPF("open path ring buffer", err)
	}
	if p.clock, err = ktime.NewMono(); err != nil {
		return nil, fmt.Errorf("read CLOCK_MONOTONIC: %w", err)
	}
	p.done = make(chan struct{})
	go p.readEvents()
	p.started = time.Now()
	p.stopShed = make(chan struct{})
	go p.shedLoop(p.stopShed)
	return p, nil
}

// Grow adds an endpoint to the flow the programs match. An endpoint of another family or
// protocol than the configured flow's may need points that were not attached (IPv6 route
// lookups, TCP socket states): the error names them, and the endpoint's other points
// follow it.
func (p *Probe) Grow(e evidence.Endpoint) error {
	if err := p.flow.Add(e.ID, e.Addr, e.Port, e.Proto.Number(), uint32(e.Netns)); err != nil {
		return err
	}
	wanted, _ := pointsFor(evidence.Flow{Addr: e.Addr, Port: e.Port, Proto: e.Proto})
	var absent []string
	for _, pt := range wanted {
		if !slices.ContainsFunc(p.points, func(a *attachment) bool { return a.point == pt }) &&
			!slices.ContainsFunc(p.missing, func(m evidence.MissingPoint) bool { return m.Point == pt.name }) {
			absent = append(absent, pt.tracepoint())
		}
	}
	if len(absent) > 0 {
		return fmt.Errorf("%s were not attached for %s", strings.Join(absent, ", "), p.cfg.Flow)
	}
	return nil
}

// readEvents takes events off the ring buffer until Stop flushes it or Close closes it,
// blocking in epoll between events.
func (p *Probe) readEvents() {
	defer close(p.done)
	err := bpfrt.ReadRing(p.rd, func(raw []byte) {
		ev, err := decodeEvent(raw)
		p.mu.Lock()
		p.agg.add(ev, err)
		p.mu.Unlock()
		if err == nil {
			p.read.Add(1)
		}
	})
	if err != nil {
		p.mu.Lock()
		p.agg.readErr = err
		p.mu.Unlock()
	}
}

// Events is how many events of the flow have been read so far, for progress output.
func (p *Probe) Events() int {
	return int(p.read.Load())
}

// Stop detaches the programs, reads what is still in the ring buffer and returns the
// evidence. Calling it again returns the same evidence.
func (p *Probe) Stop() *evidence.Path {
	p.life.Lock()
	defer p.life.Unlock()
	if p.stopped != nil {
		return p.stopped
	}
	path := &evidence.Path{
		Attached: []string{},
		Missing:  append([]evidence.MissingPoint(nil), p.missing...),
		Events:   []evidence.PathEvent{},
		Counts:   []evidence.PointCount{},
		Notes:    append([]string(nil), p.notes...),
	}
	slices.SortStableFunc(path.Missing, func(x, y evidence.MissingPoint) int {
		return cmp.Compare(slices.Index(pathOrder, x.Point), slices.Index(pathOrder, y.Point))
	})
	p.stopped = path
	if p.stopShed != nil {
		close(p.stopShed)
		p.stopShed = nil
	}
	if len(p.points) == 0 || p.closed {
		path.Error = "path probe was closed before it was stopped"
		return path
	}
	for _, a := range p.points {
		path.Attached = append(path.Attached, a.name)
		if a.shed != "" {
			path.Notes = append(path.Notes, fmt.Sprintf("%s %s: the flow's later packets there are not shown", a.point.tracepoint(), a.shed))
		}
	}

	// Detach before draining, so that the drain ends: nothing is added behind it.
	for _, a := range p.points {
		if a.shed != "" {
			continue
		}
		if err := a.link.Close(); err != nil {
			path.Notes = append(path.Notes, fmt.Sprintf("detach %s: %v", a.name, err))
		}
	}
	if err := p.rd.Flush(); err != nil {
		path.Notes = append(path.Notes, fmt.Sprintf("drain ring buffer: %v; events still in it are lost", err))
		p.rd.Close()
	}
	<-p.done
	p.rd.Close()

	totals := p.totals(path)
	p.sums = totals
	p.mu.Lock()
	defer p.mu.Unlock()
	n := &namer{
		target: p.cfg.Netns,
		own:    p.own,
		clock:  p.clock,
		ifname: links.Name,
		learnt: p.agg.ifnames,
		// A namespace the flow went on into (a container's) is named by who holds it.
		netnsName: netns.NewOwners().Describe,
	}
	if len(p.agg.resets) > 0 {
		var err error
		if n.resets, err = loadResetReasons(); err != nil {
			path.Notes = append(path.Notes, fmt.Sprintf("reset reasons are numbers: %v", err))
		}
	}
	p.agg.describe(path, n, totals)
	return path
}

// totals reads the programs' counters, per point, summed over CPUs.
func (p *Probe) totals(path *evidence.Path) map[bpf.PathPoint]bpf.PathCounters {
	sums := map[bpf.PathPoint]bpf.PathCounters{}
	m := p.maps.Maps[bpf.PathMapTotals]
	for _, a := range p.points {
		sum, err := bpfrt.SumPerCPU[bpf.PathCounters](m, uint32(a.point.id))
		if err != nil {
			path.Notes = append(path.Notes, fmt.Sprintf("read %s counters: %v; seen, matched and lost are unknown", a.point.tracepoint(), err))
			continue
		}
		sums[a.point.id] = sum
		if st, err := a.prog.Stats(); err == nil && st.RecursionMisses > 0 {
			path.Notes = append(path.Notes, fmt.Sprintf("the %s program missed %d runs (the tracepoint fired while it was running on the same CPU): those were not inspected", a.point.tracepoint(), st.RecursionMisses))
		}
	}
	return sums
}

// Close releases the programs, links, maps and the ring buffer. It may be called at any
// time, more than once, and on a Probe whose Start failed half-way.
func (p *Probe) Close() error {
	if p == nil {
		return nil
	}
	p.life.Lock()
	defer p.life.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.stopShed != nil {
		close(p.stopShed)
		p.stopShed = nil
	}
	var errs []error
	if p.rd != nil {
		// Ends the reader: Read returns ErrClosed.
		errs = append(errs, p.rd.Close())
	}
	if p.done != nil {
		<-p.done
	}
	for _, a := range p.points {
		// Closing a link twice (after Stop) is harmless.
		errs = append(errs, a.Close())
	}
	if p.maps != nil {
		p.maps.Close()
	}
	if p.flow != nil {
		errs = append(errs, p.flow.Close())
	}
	return errors.Join(errs...)
}
