// Package kdrop is the kernel drop stage: it attaches the kfree_skb program of bpf/,
// filtered in the kernel to the flow, and turns what it reports into evidence: drop reasons
// named from the kernel's BTF, call sites and stacks from /proc/kallsyms, namespaces from
// /run/netns or the container that holds them.
//
// kfree_skb is host-wide: a drop of the flow in another namespace (a client container's
// firewall, say) is reported too, attributed to its namespace and marked Elsewhere.
package kdrop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kallsyms"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/ktime"
	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// MaxDrops bounds KernelDrop.Drops so a flood cannot grow memory; Matched counts them all.
const MaxDrops = 1000

// Config says what to watch.
type Config struct {
	Flow evidence.Flow
	// Netns is the inode of the namespace being diagnosed: drops elsewhere are marked so.
	Netns uint64
	// OnGrow, if set, hears each endpoint the programs learned from a translation of the
	// flow's connection, so that the other stages follow it too. It is called from a
	// goroutine of its own, in order, until Stop returns.
	OnGrow func(evidence.Endpoint)
	// FlowMaps, when not nil, are the flow's BPF maps shared with the other stages: what
	// one stage's programs learn from a translation, this one's see at their next packet.
	// The stage closes only its own clone. nil: maps of its own.
	FlowMaps *bpf.Flow

	probeRead bool // tests: the prefilter older kernels run (flow.h's flow_probe_read)
}

// Probe is the attached program and the reader of its events.
type Probe struct {
	cfg   Config
	att   *attachment
	learn *attachment // on net:net_dev_queue; nil when it could not attach
	flow  *bpf.Flow
	rd    *ringbuf.Reader
	clock ktime.Mono
	own   uint64
	notes []string

	done chan struct{} // closed when the reader returns; nil until it starts

	reasonsLoaded chan struct{} // closed when reasons and reasonsErr are set
	reasons       *Reasons
	reasonsErr    error
	matched       atomic.Int64

	// grow carries learned endpoints from the reader to OnGrow; grown is closed when the
	// goroutine calling OnGrow ends.
	grow  chan evidence.Endpoint
	grown chan struct{}

	mu           sync.Mutex // guards the reader's results below
	events       []bpf.KdropEvent
	translations []bpf.KdropTranslation
	unheard      int // learned endpoints OnGrow could not be told of: it was behind
	bad          int
	firstBad     error
	readErr      error

	life    sync.Mutex // serialises Stop and Close
	stopped *evidence.KernelDrop
	closed  bool
}

// Start loads and attaches the kfree_skb program and returns once it is armed: any drop of
// the flow from then on is recorded. tp_btf is tried first (no tracefs needed), the classic
// tracepoint second. Errors match kerr.ErrPrivilege or kerr.ErrUnsupported when that is the cause.
// ctx bounds Start only: the probe runs until Stop or Close.
func Start(ctx context.Context, cfg Config) (*Probe, error) {
	return start(ctx, cfg, []attacher{attachTPBTF, attachClassic})
}

func start(ctx context.Context, cfg Config, attachers []attacher) (_ *Probe, err error) {
	if err := cfg.Flow.Check(); err != nil {
		return nil, fmt.Errorf("kernel drop probe: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Probe{cfg: cfg, own: netns.Own()}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones ignore it.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, kerr.BPF("remove memlock rlimit for BPF maps", err)
	}
	spec, err := specFor(cfg)
	if err != nil {
		return nil, err
	}
	if p.flow, err = bpf.FlowFor(cfg.FlowMaps, spec); err != nil {
		return nil, kerr.BPF("kernel drop probe", err)
	}
	if err := p.Grow(cfg.Flow.Endpoint()); err != nil {
		return nil, err
	}
	var failures []error
	for _, attach := range attachers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		att, err := attach(spec, p.flow.Maps())
		if err != nil {
			failures = append(failures, err)
			continue
		}
		p.att = att
		break
	}
	if p.att == nil {
		return nil, kerr.Join("kernel drop probe on kfree_skb", failures...)
	}
	for _, f := range failures {
		p.notes = append(p.notes, fmt.Sprintf("attached %s after: %v", p.att.name, f))
	}
	if p.learn, err = attachLearn(spec, p.att); err != nil {
		p.notes = append(p.notes, fmt.Sprintf("translations of the flow's connection (DNAT, SNAT) are learned only from its drops, not as its packets leave a namespace: %v", err))
	}

	if p.rd, err = ringbuf.NewReader(p.att.maps.Events); err != nil {
		return nil, kerr.BPFNeeds("open kdrop ring buffer", kerr.NeedsRingbuf, err)
	}
	if p.clock, err = ktime.NewMono(); err != nil {
		return nil, fmt.Errorf("read CLOCK_MONOTONIC: %w", err)
	}
	p.grow, p.grown = make(chan evidence.Endpoint, 64), make(chan struct{})
	go func() {
		defer close(p.grown)
		for e := range p.grow {
			if cfg.OnGrow != nil {
				cfg.OnGrow(e)
			}
		}
	}()
	p.done = make(chan struct{})
	go p.read()
	// Naming reasons reads the kernel's BTF (about 0.2 s): do it while the capture runs,
	// not when the user waits for the report.
	p.reasonsLoaded = make(chan struct{})
	go func() {
		defer close(p.reasonsLoaded)
		p.reasons, p.reasonsErr = LoadReasons()
	}()
	return p, nil
}

// Grow adds an endpoint to the flow the program matches: its drops are recorded from the
// next packet on.
func (p *Probe) Grow(e evidence.Endpoint) error {
	return p.flow.Add(e.ID, e.Addr, e.Port, e.Proto.Number(), uint32(e.Netns))
}

// read takes events off the ring buffer until Stop flushes it or Close closes it. It
// blocks in epoll between events: no polling.
func (p *Probe) read() {
	defer close(p.done)
	defer close(p.grow)
	err := bpfrt.ReadRing(p.rd, func(raw []byte) {
		if len(raw) == translationSize {
			p.learned(raw)
			return
		}
		ev, err := decodeEvent(raw)
		p.mu.Lock()
		if err != nil {
			if p.bad == 0 {
				p.firstBad = err
			}
			p.bad++
		} else if len(p.events) < MaxDrops {
			p.events = append(p.events, ev)
		}
		p.mu.Unlock()
		if err == nil {
			p.matched.Add(1)
		}
	})
	if err != nil {
		p.mu.Lock()
		p.readErr = err
		p.mu.Unlock()
	}
}

// learned keeps a translation the programs learned and passes its endpoints on, without
// waiting: the reader must keep up with the ring.
func (p *Probe) learned(raw []byte) {
	t, err := decodeTranslation(raw)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.bad == 0 {
			p.firstBad = err
		}
		p.bad++
		return
	}
	if len(p.translations) < maxTranslations {
		p.translations = append(p.translations, t)
	}
	_, ends := translation(&t)
	for _, e := range ends {
		select {
		case p.grow <- e:
		default:
			p.unheard++
		}
	}
}

// Events is how many drops of the flow have been read so far, for progress output.
func (p *Probe) Events() int {
	return int(p.matched.Load())
}

// Stop detaches the program, reads what is still in the ring buffer and returns the
// evidence. Calling it again returns the same evidence.
func (p *Probe) Stop() *evidence.KernelDrop {
	p.life.Lock()
	defer p.life.Unlock()
	if p.stopped != nil {
		return p.stopped
	}
	kd := &evidence.KernelDrop{Notes: append([]string(nil), p.notes...)}
	p.stopped = kd
	if p.att == nil || p.closed {
		kd.Error = "kernel drop probe was closed before it was stopped"
		return kd
	}
	kd.Attach = p.att.name

	// Detach before draining, so that the drain ends: nothing is added behind it.
	for _, a := range []*attachment{p.att, p.learn} {
		if a == nil {
			continue
		}
		if err := a.link.Close(); err != nil {
			kd.Notes = append(kd.Notes, fmt.Sprintf("detach %s: %v", a.name, err))
		}
	}
	if err := p.rd.Flush(); err != nil {
		kd.Notes = append(kd.Notes, fmt.Sprintf("drain ring buffer: %v; events still in it are lost", err))
		p.rd.Close()
	}
	<-p.done
	<-p.grown
	p.rd.Close()

	p.count(kd)
	p.describe(kd)
	return kd
}

// count reads the program's counters and says where events went missing.
func (p *Probe) count(kd *evidence.KernelDrop) {
	c, err := bpfrt.SumPerCPU[bpf.KdropCounters](p.att.maps.Totals, 0)
	if err != nil {
		kd.Notes = append(kd.Notes, fmt.Sprintf("read kfree_skb counters: %v; seen, matched and lost are unknown", err))
	}
	kd.Seen, kd.Matched, kd.Lost = c.Seen, c.Matched, c.Lost
	if kd.Lost > 0 {
		kd.Notes = append(kd.Notes, fmt.Sprintf("%d drops of the flow were lost: the ring buffer was full", kd.Lost))
	}
	if st, err := p.att.prog.Stats(); err == nil && st.RecursionMisses > 0 {
		kd.Notes = append(kd.Notes, fmt.Sprintf("the kfree_skb program missed %d runs (kfree_skb fired while it was running on the same CPU): those drops were not inspected", st.RecursionMisses))
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr != nil {
		kd.Error = fmt.Sprintf("read kfree_skb events: %v", p.readErr)
	}
	if p.bad > 0 {
		kd.Notes = append(kd.Notes, fmt.Sprintf("%d kfree_skb events could not be decoded: %v", p.bad, p.firstBad))
	}
	if read := p.matched.Load(); read > MaxDrops {
		kd.Notes = append(kd.Notes, fmt.Sprintf("kept the first %d of %d drops of the flow", MaxDrops, read))
	}
}

// describe names the kept events. Each resolver that fails costs a note, not the
// evidence: a number is still worth reporting.
func (p *Probe) describe(kd *evidence.KernelDrop) {
	name, published := describer()
	n := &namer{
		netns:     name,
		published: published,
		target:    p.cfg.Netns,
		own:       p.own,
		clock:     p.clock,
		ifname:    links.Name,
	}
	var err error
	<-p.reasonsLoaded
	if n.reasons, err = p.reasons, p.reasonsErr; err != nil {
		kd.Notes = append(kd.Notes, fmt.Sprintf("drop reasons are numbers: %v", err))
	} else {
		kd.ReasonsFromBTF = true
	}
	p.mu.Lock()
	events, translations, unheard := p.events, p.translations, p.unheard
	p.mu.Unlock()
	for i := range translations {
		tr, _ := translation(&translations[i])
		tr.NetnsName = n.nsName(tr.Netns)
		if ix := int(translations[i].Ifindex); ix != 0 && tr.Netns == n.own && n.ifname != nil {
			tr.Out = n.ifname(ix)
		}
		kd.Translations = append(kd.Translations, tr)
	}
	if unheard > 0 {
		kd.Notes = append(kd.Notes, fmt.Sprintf("%d endpoints learned from translations were not passed to the other stages in time: they follow the flow without them", unheard))
	}
	if len(events) == 0 {
		kd.Drops = []evidence.Drop{}
		return
	}
	// Read while the program is still loaded: its frames are in kallsyms until Close.
	if n.syms, err = kallsyms.Load(addresses(events)); err != nil {
		kd.Notes = append(kd.Notes, fmt.Sprintf("locations and stacks are raw addresses: %v", err))
	} else if n.syms.Restricted {
		kd.Notes = append(kd.Notes, "locations and stacks are raw addresses: /proc/kallsyms shows every address as 0 (kernel.kptr_restrict; run as root or lower it)")
	}
	unknown := 0
	kd.Drops = make([]evidence.Drop, 0, len(events))
	for i := range events {
		d := n.drop(&events[i])
		if d.Netns == 0 {
			unknown++
		}
		kd.Drops = append(kd.Drops, d)
	}
	if unknown > 0 {
		kd.Notes = append(kd.Notes, fmt.Sprintf("%d drops had neither a device nor a socket to tell their namespace: marked elsewhere", unknown))
	}
}

// describer names namespaces as the report shows them, and reads the ports their
// containers publish, asking the system once for each.
func describer() (name func(uint64) string, published func(uint64) []string) {
	owners, names, ports := netns.NewOwners(), map[uint64]string{}, map[uint64][]string{}
	name = func(inode uint64) string {
		n, ok := names[inode]
		if !ok {
			n = owners.Describe(inode)
			names[inode] = n
		}
		return n
	}
	published = func(inode uint64) []string {
		p, ok := ports[inode]
		if !ok {
			p = owners.Published(inode)
			ports[inode] = p
		}
		return p
	}
	return name, published
}

// Close releases the program, the link and the ring buffer. It may be called at any
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
	var errs []error
	if p.rd != nil {
		// Ends the reader: Read returns ErrClosed.
		errs = append(errs, p.rd.Close())
	}
	if p.done != nil {
		<-p.done
	}
	if p.grown != nil {
		<-p.grown
	}
	for _, a := range []*attachment{p.att, p.learn} {
		if a != nil {
			// Closing a link twice (after Stop) is harmless.
			errs = append(errs, a.Close())
		}
	}
	if p.flow != nil {
		errs = append(errs, p.flow.Close())
	}
	return errors.Join(errs...)
}
