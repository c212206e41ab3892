package arrival

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
	ebpfasm "github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	pmbpf "github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/ktime"
	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// The capture's two ways to see packets (Config.Method). MethodAuto takes tcx where the
// kernel and the interfaces allow it and the packet socket otherwise.
const (
	MethodAuto   = ""
	MethodTCX    = "tcx"
	MethodSocket = "socket"
)

// Names of the methods in the evidence.
const (
	methodTCXName    = evidence.CaptureTCX
	methodSocketName = evidence.CaptureSocket
)

// tcxSource is the capture on tcx: bpf/capture.c attached to both directions of each
// interface captured on, whatever its link type (on loopback to ingress only: a packet over
// lo is counted once, as it is received, as the packet socket's filter does).
type tcxSource struct {
	objs     *pmbpf.CaptureObjects
	flow     *pmbpf.Flow
	families uint8 // the programs' families constant: what they were loaded for
	links    []tcxLink
	rd       *ringbuf.Reader
	clock    ktime.Mono
	w        *watcher // when capturing every interface

	mu       sync.Mutex     // the watcher attaches while the reader names interfaces
	types    map[int]uint16 // ifindex -> ARPHRD type
	names    map[int]string
	attached map[int]bool
	stopped  bool
	skipped  []string // interfaces made during the capture that it could not read
	// hops are the other namespaces the flow was followed into, by their number: their
	// interfaces are in types and names under index number<<hopShift | ifindex.
	hops []*tcxHop
}

// tcxHop is the capture in a namespace the flow went on to: programs of its own, which
// tag its records with its number, on the interfaces it had when it was followed.
type tcxHop struct {
	netns uint64
	tag   uint32
	objs  *pmbpf.CaptureObjects
	links []tcxLink
}

// hopShift puts a followed namespace's number above the interface index in the records
// (capture.c's ifindex_tag): interface 2 of the first namespace followed is 1<<24 | 2,
// which no interface of this one is.
const hopShift = 24

// maxHops bounds the namespaces followed: the tag has 7 bits (the index is an int).
const maxHops = 127

// tcxLink is one attachment of the capture, and which of its programs it runs.
type tcxLink struct {
	link.Link
	egress bool
}

// familyBit is the bit of e's family in capture.c's families.
func familyBit(e evidence.Endpoint) uint8 {
	if e.Addr.Unmap().Is4() {
		return 1
	}
	return 2
}

// startTCX loads and attaches the capture to the interfaces with these indexes (all of the
// namespace when none), and opens its reader.
func startTCX(flow evidence.Endpoint, indexes []int, names map[int]string, ringSize uint32, shared *pmbpf.Flow) (_ *tcxSource, err error) {
	t := &tcxSource{names: maps.Clone(names), attached: map[int]bool{}}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	// Asked first: loading the capture needs kfuncs (6.2+) that a kernel without tcx may
	// lack too, and that failure would hide the reason that matters.
	if err := haveTCX(); err != nil {
		return nil, err
	}
	all := len(indexes) == 0
	if all {
		// Listening before the interfaces are listed: one made in between is seen twice,
		// never missed.
		if t.w, err = watch(t.late); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.types, err = linkTypes(); err != nil {
		return nil, err
	}
	if all {
		for i := range t.types {
			indexes = append(indexes, i)
		}
	}
	if t.clock, err = ktime.NewMono(); err != nil {
		return nil, err
	}
	t.families = familyBit(flow)
	if t.flow, err = newCaptureFlow(shared); err != nil {
		return nil, err
	}
	if t.objs, err = loadCapture(ringSize, t.families, 0, t.flow, nil); err != nil {
		return nil, err
	}
	if err := t.grow(flow); err != nil {
		return nil, err
	}
	if t.rd, err = ringbuf.NewReader(t.objs.Packets); err != nil {
		return nil, kerr.BPF("open the capture's ring buffer", err)
	}
	for _, i := range indexes {
		// An interface removed since the listing has nothing left to capture.
		if err := t.attach(i); err != nil && !errors.Is(err, unix.ENODEV) {
			return nil, err
		}
	}
	return t, nil
}

// noTCX says what is missing when the kernel refuses tcx.
const noTCX = "the kernel has no tcx (Linux 6.6+)"

// haveTCX tells whether the kernel has tcx links, by attaching a program that does nothing
// to an interface index that cannot exist: a kernel with tcx looks the interface up (ENODEV),
// one without refuses the attach type first.
func haveTCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: ebpfasm.Instructions{ebpfasm.Mov.Imm(ebpfasm.R0, -1), ebpfasm.Return()}, // TCX_NEXT
	})
	if err != nil {
		return kerr.BPF("load a BPF program of type sched_cls", err)
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Interface: math.MaxInt32, Program: prog, Attach: ebpf.AttachTCXIngress})
	switch {
	case err == nil:
		l.Close()
		return errors.New("probe tcx: the kernel attached to an interface index that cannot exist")
	case errors.Is(err, unix.ENODEV):
		return nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return kerr.BPF(noTCX, err)
	}
	return kerr.BPF("probe tcx", err)
}

// newCaptureFlow is a clone of the shared flow's maps, or maps of the capture's own,
// empty, when shared is nil.
func newCaptureFlow(shared *pmbpf.Flow) (*pmbpf.Flow, error) {
	spec, err := pmbpf.LoadCapture()
	if err != nil {
		return nil, fmt.Errorf("load the capture's BPF object: %w", err)
	}
	flow, err := pmbpf.FlowFor(shared, spec)
	if err != nil {
		return nil, kerr.BPF("the capture's flow", err)
	}
	return flow, nil
}

// loadCapture loads bpf/capture.c for the families (capture.c's constant) and the records'
// interface tag, with the flow's maps and a ring buffer of ringSize bytes (0: the object's
// 2 MiB), or with the ring and counters of other programs (reuse, when not nil).
func loadCapture(ringSize uint32, families uint8, tag uint32, flow *pmbpf.Flow, reuse *pmbpf.CaptureObjects) (*pmbpf.CaptureObjects, error) {
	spec, err := pmbpf.LoadCapture()
	if err != nil {
		return nil, fmt.Errorf("load the capture's BPF object: %w", err)
	}
	replace := flow.Maps()
	if reuse != nil {
		ringSize = reuse.Packets.MaxEntries()
		replace[pmbpf.CaptureMapPackets], replace[pmbpf.CaptureMapTotals] = reuse.Packets, reuse.Totals
	}
	if ringSize > 0 {
		spec.Maps[pmbpf.CaptureMapPackets].MaxEntries = ringSize
	}
	for name, v := range map[string]any{pmbpf.CaptureVarSnapNet: uint32(kernelSnap), pmbpf.CaptureVarFamilies: families, pmbpf.CaptureVarIfindexTag: tag} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("capture program: %w", err)
		}
	}
	o := &pmbpf.CaptureObjects{}
	if err := spec.LoadAndAssign(o, &ebpf.CollectionOptions{MapReplacements: replace, Cache: bpfrt.KernelBTF()}); err != nil {
		return nil, kerr.BPF("load the capture's BPF programs", err)
	}
	return o, nil
}

// grow adds an endpoint to the flow the programs capture. An endpoint of a family the
// programs were not loaded for needs programs that have it: they are loaded and swapped
// into every link, with the same ring and counters, so no packet of either family is
// missed in between.
func (t *tcxSource) grow(e evidence.Endpoint) error {
	if t.flow == nil {
		return errors.New("the capture has ended")
	}
	if err := t.flow.Add(e.ID, e.Addr, e.Port, e.Proto.Number(), uint32(e.Netns)); err != nil {
		return kerr.BPF("the capture's flow", err)
	}
	if t.families&familyBit(e) != 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.objs == nil {
		return errors.New("the capture has ended")
	}
	families := t.families | familyBit(e)
	if err := swap(t.objs, t.links, families, 0, t.flow, e); err != nil {
		return err
	}
	for _, h := range t.hops {
		if err := swap(h.objs, h.links, families, h.tag, t.flow, e); err != nil {
			return err
		}
	}
	t.families = families
	return nil
}

// swap loads the programs again for families and puts them into links in the place of
// objs' (whose programs they become), with the same ring and counters.
func swap(objs *pmbpf.CaptureObjects, links []tcxLink, families uint8, tag uint32, flow *pmbpf.Flow, e evidence.Endpoint) error {
	o, err := loadCapture(0, families, tag, flow, objs)
	if err != nil {
		return err
	}
	for _, l := range links {
		prog := o.CaptureIngress
		if l.egress {
			prog = o.CaptureEgress
		}
		if err := l.Update(prog); err != nil {
			o.Close()
			return kerr.BPF(fmt.Sprintf("capture %s's packets too", e), err)
		}
	}
	old := objs.CapturePrograms
	objs.CapturePrograms = o.CapturePrograms
	return errors.Join(old.Close(), o.CaptureMaps.Close())
}

// follow captures in namespace h too: on its interfaces as they are now (its loopback
// aside), with programs that tag its records. A namespace followed already is skipped.
func (t *tcxSource) follow(h *netns.Handle) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.objs == nil {
		return errors.New("the capture has ended")
	}
	for _, hop := range t.hops {
		if hop.netns == h.Inode {
			return nil
		}
	}
	if len(t.hops) == maxHops {
		return fmt.Errorf("already %d namespaces followed", maxHops)
	}
	hop := &tcxHop{netns: h.Inode, tag: uint32(len(t.hops)+1) << hopShift}
	var err error
	if hop.objs, err = loadCapture(0, t.families, hop.tag, t.flow, t.objs); err != nil {
		return err
	}
	// Appended first: stop and close release what an attach that fails half-way made.
	t.hops = append(t.hops, hop)
	// Interface indexes are the namespace's: they are listed and attached to from there.
	return h.Do(func() error {
		ifs, err := links.List()
		if err != nil {
			return err
		}
		for _, l := range ifs {
			if l.Type == unix.ARPHRD_LOOPBACK {
				continue
			}
			index := int(hop.tag) | l.Index
			t.types[index], t.names[index] = l.Type, l.Name
			ls, err := attachTo(l.Index, hop.objs, false, l.Name)
			hop.links = append(hop.links, ls...)
			if err != nil && !errors.Is(err, unix.ENODEV) {
				return err
			}
		}
		return nil
	})
}

// hopOf is the namespace of an interface index of the records: 0 for the one diagnosed.
func (t *tcxSource) hopOf(index int) uint64 {
	n := index >> hopShift
	t.mu.Lock()
	defer t.mu.Unlock()
	if n == 0 || n > len(t.hops) {
		return 0
	}
	return t.hops[n-1].netns
}

// late attaches the capture to an interface made while it runs (or one it already has,
// which it skips).
func (t *tcxSource) late(index int, typ uint16, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.attached[index] || t.objs == nil {
		return
	}
	t.types[index] = typ
	if name != "" {
		t.names[index] = name
	}
	if err := t.attach(index); err != nil && !errors.Is(err, unix.ENODEV) {
		t.skipped = append(t.skipped, fmt.Sprintf("%s (%v)", t.name(index), err))
	}
}

// name names an interface; t.mu held.
func (t *tcxSource) name(index int) string {
	if n, ok := t.names[index]; ok {
		return n
	}
	return fmt.Sprintf("if%d", index)
}

// ifname is name for the reader, and whether the name is known.
func (t *tcxSource) ifname(index int) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.names[index]
	return t.name(index), ok
}

// attach puts the capture on interface index: on ingress first of all tcx programs, so that
// it sees what arrives before any program of the host's can drop it, as the packet taps
// do; on egress last, after them, nearest to where the packet socket sees it leave.
func (t *tcxSource) attach(index int) error {
	t.attached[index] = true
	ls, err := attachTo(index, t.objs, t.types[index] == unix.ARPHRD_LOOPBACK, t.name(index))
	t.links = append(t.links, ls...)
	return err
}

// attachTo attaches objs' programs to interface index of the calling thread's namespace,
// on ingress only for a loopback, and returns the links made, those before an error too.
func attachTo(index int, objs *pmbpf.CaptureObjects, loopback bool, name string) ([]tcxLink, error) {
	dirs := []struct {
		prog   *ebpf.Program
		at     ebpf.AttachType
		anchor link.Anchor
	}{
		{objs.CaptureIngress, ebpf.AttachTCXIngress, link.Head()},
		{objs.CaptureEgress, ebpf.AttachTCXEgress, link.Tail()},
	}
	if loopback {
		dirs = dirs[:1]
	}
	var out []tcxLink
	for _, d := range dirs {
		l, err := link.AttachTCX(link.TCXOptions{Interface: index, Program: d.prog, Attach: d.at, Anchor: d.anchor})
		if err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return out, kerr.BPF(noTCX, err)
			}
			return out, kerr.BPF(fmt.Sprintf("attach the capture to %s", name), err)
		}
		out = append(out, tcxLink{l, d.at == ebpf.AttachTCXEgress})
	}
	return out, nil
}

// read delivers the flow's packets to handle until the reader is flushed or closed.
func (t *tcxSource) read(handle func(frame)) error {
	err := bpfrt.ReadRing(t.rd, func(raw []byte) {
		if f, ok := t.frame(raw); ok {
			handle(f)
		}
	})
	if err != nil {
		return fmt.Errorf("read the capture's ring buffer: %w", err)
	}
	return nil
}

// frame turns a record (capture_meta, then the packet from its link header) into what the
// packet socket's ring would have handed over.
func (t *tcxSource) frame(raw []byte) (frame, bool) {
	var m pmbpf.CaptureCaptureMeta
	size := int(unsafe.Sizeof(m))
	if len(raw) < size {
		return frame{}, false
	}
	m = *(*pmbpf.CaptureCaptureMeta)(unsafe.Pointer(&raw[0]))
	pkt := raw[size:]
	if int(m.Caplen) < len(pkt) {
		pkt = pkt[:m.Caplen] // the record has room for the longest packet
	}
	ll := int(m.LinkLen)
	if len(pkt) < ll || int(m.Len) < ll {
		return frame{}, false
	}
	t.mu.Lock()
	hatype := t.types[int(m.Ifindex)]
	t.mu.Unlock()
	l := linkInfo{
		ethertype: m.Protocol,
		ifindex:   int(m.Ifindex),
		hatype:    hatype,
		pkttype:   m.PktType,
	}
	if (hatype == unix.ARPHRD_ETHER || hatype == unix.ARPHRD_LOOPBACK) && ll >= 14 {
		// What the cooked socket reports as the packet's address: the Ethernet source.
		l.halen = 6
		copy(l.addr[:], pkt[6:12])
	}
	return frame{
		time:    t.clock.Wall(m.KtimeNs),
		origLen: int(m.Len) - ll,
		link:    l,
		data:    pkt[ll:],
	}, true
}

// stop detaches the programs, so that no packet comes after: what is in the ring by then
// is what the reader reads before it returns (Capture.wake flushes it).
func (t *tcxSource) stop() error {
	t.w.stop()
	if t.w != nil && t.w.err != nil {
		t.skipped = append(t.skipped, fmt.Sprintf("any (watching for new interfaces failed: %v)", t.w.err))
		t.w.err = nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	for _, h := range t.hops {
		for _, l := range h.links {
			errs = append(errs, l.Close())
		}
		h.links = nil
	}
	return errors.Join(errs...)
}

// counters sums the programs' per-CPU counters.
func (t *tcxSource) counters() (pmbpf.CaptureCaptureCounters, error) {
	if t.objs == nil {
		return pmbpf.CaptureCaptureCounters{}, nil
	}
	sum, err := bpfrt.SumPerCPU[pmbpf.CaptureCaptureCounters](t.objs.Totals, 0)
	if err != nil {
		return sum, fmt.Errorf("read the capture's counters: %w", err)
	}
	return sum, nil
}

// close releases every kernel object of the capture. Idempotent.
func (t *tcxSource) close() error {
	if t == nil {
		return nil
	}
	errs := []error{t.stop()}
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
		t.rd = nil
	}
	if t.flow != nil {
		errs = append(errs, t.flow.Close())
		t.flow = nil
	}
	for _, h := range t.hops {
		if h.objs != nil {
			errs = append(errs, h.objs.Close())
			h.objs = nil
		}
	}
	if t.objs != nil {
		errs = append(errs, t.objs.Close())
		t.objs = nil
	}
	return errors.Join(errs...)
}

// linkTypes lists the namespace's interfaces with their ARPHRD types, which net.Interfaces
// does not report.
func linkTypes() (map[int]uint16, error) {
	ifs, err := links.List()
	if err != nil {
		return nil, err
	}
	types := map[int]uint16{}
	for _, l := range ifs {
		types[l.Index] = l.Type
	}
	return types, nil
}

// watcher attaches the capture to the interfaces made while it runs, as the packet socket
// bound to every interface sees them. It listens to the namespace's link notifications from
// a thread of its own in that namespace: the kernel resolves a tcx attachment's interface
// index in the namespace of the thread that asks.
type watcher struct {
	nl, wakeR, wakeW int
	done             chan struct{}
	err              error // why it stopped watching early; read after done
}

// watch starts the watcher in the calling thread's network namespace; its socket listens
// before the caller lists the interfaces, so that none is missed in between. seen attaches
// an interface (index, ARPHRD type, name) unless already attached.
func watch(seen func(index int, typ uint16, name string)) (_ *watcher, err error) {
	w := &watcher{nl: -1, wakeR: -1, wakeW: -1, done: make(chan struct{})}
	defer func() {
		if err != nil {
			w.closeFDs()
		}
	}()
	if w.nl, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("listen to new interfaces: %w", err)
	}
	if err := unix.Bind(w.nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		return nil, fmt.Errorf("listen to new interfaces: %w", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("listen to new interfaces: %w", err)
	}
	w.wakeR, w.wakeW = p[0], p[1]
	ns, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the capture's network namespace: %w", err)
	}
	go w.run(ns, seen)
	return w, nil
}

func (w *watcher) run(ns int, seen func(int, uint16, string)) {
	defer close(w.done)
	// Never unlocked: the thread leaves the runtime with its namespace when this returns.
	runtime.LockOSThread()
	err := unix.Setns(ns, unix.CLONE_NEWNET)
	unix.Close(ns)
	if err != nil {
		w.err = fmt.Errorf("enter the capture's network namespace: %w", err)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		fds := []unix.PollFd{{Fd: int32(w.nl), Events: unix.POLLIN}, {Fd: int32(w.wakeR), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			w.err = err
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, _, err := unix.Recvfrom(w.nl, buf, 0)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				continue // notifications lost: the next one still attaches its interface
			}
			w.err = err
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWLINK {
				continue
			}
			if l, err := links.Decode(m.Data); err == nil {
				seen(l.Index, l.Type, l.Name)
			}
		}
	}
}

// stop ends the watcher and waits for it: no attachment starts after stop returns.
func (w *watcher) stop() {
	if w == nil || w.wakeW < 0 {
		return
	}
	_, _ = unix.Write(w.wakeW, []byte{0})
	<-w.done
	w.closeFDs()
}

func (w *watcher) closeFDs() {
	for _, fd := range []*int{&w.nl, &w.wakeR, &w.wakeW} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}
