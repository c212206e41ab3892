// Package arrival answers the first question of a diagnosis: did the flow's packets reach an
// interface of this host at all, in which direction, and how many?
//
// It captures the flow in the current network namespace in one of two ways (Config.Method):
//
//   - tcx (tcx.go, bpf/capture.c; Linux 6.6+): a BPF program on the ingress and egress of
//     each interface (ingress only on loopback) selects the flow's packets in the kernel and
//     copies them to a ring buffer. Interfaces made during the capture are attached as they
//     appear. It is the default: it costs a flood through the namespace about half of what
//     a packet tap does.
//   - the packet socket: one AF_PACKET socket, cooked (SOCK_DGRAM), bound to every
//     protocol (ETH_P_ALL) on every interface or on one, with a classic BPF filter (Filter)
//     attached in the kernel so only the flow's packets are queued to its ring. It needs
//     nothing but CAP_NET_RAW, and takes over where tcx cannot run.
//
// Both select the same packets and hand them over from the network header on, with the
// interface index and the packet type (PACKET_OUTGOING is "out"). Packets are decoded into
// evidence.Packet, counted per interface and direction, and optionally written to a pcap
// file with LINUX_SLL2 link headers.
package arrival

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	pmbpf "github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

var (
	// ErrBadInterface is wrapped when a named interface does not exist or is down.
	ErrBadInterface = errors.New("bad interface")
)

// Config says what to capture and where to write it.
type Config struct {
	Flow evidence.Flow
	// Netns is the namespace captured in; nil: the current one.
	Netns *netns.Handle
	// FlowMaps, when not nil, are the flow's BPF maps shared with the other stages: what
	// one stage's programs learn from a translation, this one's see at their next packet.
	// The stage closes only its own clone. nil: maps of its own.
	FlowMaps *pmbpf.Flow
	// Ifaces are the interfaces to capture on; empty (or just "any") means every interface
	// of the network namespace, including those created during the capture.
	Ifaces []string
	// PcapPath is the pcap file to create; "" writes none. An existing file is an error
	// unless Overwrite.
	PcapPath  string
	Overwrite bool
	// OnPacket, if set, is called for every packet of the flow, from the reader goroutine.
	// It must return quickly and must not call Stop or Close.
	OnPacket func(evidence.Packet)
	// Method is how packets are captured: MethodAuto (tcx programs where the kernel has
	// tcx, else the packet socket), MethodTCX or MethodSocket.
	Method string
	// ringSize overrides the size of the tcx capture's ring buffer: tests fill it.
	ringSize uint32
}

// Capture is a running capture. Its socket belongs to the network namespace Start ran in.
type Capture struct {
	cfg    Config
	ifaces []string // as captured on; nil for all

	// growMu serialises Grow. ends is the flow the capture takes: the endpoints that apply
	// in its namespace (netns); indexes are the interfaces the filter tests.
	growMu  sync.Mutex
	ends    evidence.Endpoints
	netns   uint64
	indexes []int

	// Either the tcx programs or the packet socket and its ring.
	tcx        *tcxSource
	method     string   // as the evidence names it
	methodNote string   // why the packet socket, when tcx was asked for but not taken
	file       *os.File // the packet socket, non-blocking, in the runtime's poller
	ring       *ring    // its receive ring; the reader's until done is closed
	pcap       *pcapFile
	done       chan struct{} // closed when the reader returns
	// stopCtx unregisters the context watcher.
	stopCtx func() bool

	packets atomic.Int64

	// picked holds the interfaces to capture on when the filter cannot test them all
	// (inFilter); nil when the filter does.
	picked map[int]bool

	// Owned by the reader until done is closed.
	names map[int]string // ifindex -> name
	// hopIndexes are the indexes (tagged, tcxSource.hopOf) of the interfaces of the other
	// namespaces packets were captured in, and those namespaces.
	hopIndexes map[int]uint64
	got        []evidence.Packet
	counts     map[countKey]*evidence.IfaceCount
	in, out    int
	toward     int // of in, addressed to an endpoint
	errs       []string

	// follow follows the flow into the namespaces next to this one (tcx only).
	follow netns.Follower

	stopOnce sync.Once
	result   *evidence.Arrival
	closeErr error
}

type countKey struct {
	iface string
	dir   evidence.Direction
	netns uint64
}

// Start opens the capture and returns once the filtered socket is bound: from then on, every
// packet of the flow is queued for the reader. Cancelling ctx ends the reading as Stop does;
// Stop still returns the evidence. The capture is of cfg.Netns: what it opens is opened
// there, and stays there.
func Start(ctx context.Context, cfg Config) (c *Capture, err error) {
	err = cfg.Netns.Do(func() error {
		c, err = startHere(ctx, cfg)
		return err
	})
	return c, err
}

// startHere is Start in the calling thread's namespace.
func startHere(ctx context.Context, cfg Config) (_ *Capture, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ifs, err := links.List()
	if err != nil {
		return nil, err
	}
	c := &Capture{
		cfg:    cfg,
		ends:   evidence.Endpoints{cfg.Flow.Endpoint()},
		netns:  netns.Own(),
		done:   make(chan struct{}),
		names:  make(map[int]string, len(ifs)),
		counts: map[countKey]*evidence.IfaceCount{},
		follow: netns.Follower{From: cfg.Netns},
	}
	for _, i := range ifs {
		c.names[i.Index] = i.Name
	}
	indexes, err := c.pick(cfg.Ifaces, ifs)
	if err != nil {
		return nil, err
	}
	c.indexes = indexes
	prog, err := filterOn(c.ends, indexes)
	if err != nil {
		return nil, err
	}

	defer func() {
		if err != nil {
			c.release()
		}
	}()
	if cfg.PcapPath != "" {
		if c.pcap, err = createPcap(cfg.PcapPath, cfg.Overwrite); err != nil {
			return nil, err
		}
	}
	switch cfg.Method {
	case MethodAuto, MethodTCX:
		t, err := startTCX(c.ends[0], indexes, c.names, cfg.ringSize, cfg.FlowMaps)
		if err == nil {
			c.tcx, c.method = t, methodTCXName
			go c.readTCX()
			c.stopCtx = context.AfterFunc(ctx, c.wake)
			// A flow whose address is a namespace's next to this one (a container's,
			// routed to) is captured there too, as a translated one is once learned;
			// before Start returns, so that the reproduction's first packets are.
			c.followInto(c.ends[0], true)
			return c, nil
		}
		if cfg.Method == MethodTCX {
			return nil, err
		}
		c.methodNote = fmt.Sprintf("captured with a packet socket, not tcx: %v", err)
	case MethodSocket:
	default:
		return nil, fmt.Errorf("no capture method %q (tcx or socket)", cfg.Method)
	}
	c.method = methodSocketName
	if !inFilter(indexes) {
		c.picked = make(map[int]bool, len(indexes))
		for _, i := range indexes {
			c.picked[i] = true
		}
	}
	// Protocol 0: the socket receives nothing until bind, so no unfiltered packet is queued
	// before the filter is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if kerr.IsPermission(err) {
			return nil, kerr.Denied("open packet socket", err, kerr.CapNetRaw)
		}
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	c.file = os.NewFile(uintptr(fd), "packet socket")

	if err := attachFilter(fd, prog); err != nil {
		return nil, err
	}
	if c.ring, err = newRing(fd); err != nil {
		return nil, err
	}

	bindIndex := 0
	if len(indexes) == 1 {
		bindIndex = indexes[0]
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: bindIndex}); err != nil {
		if kerr.IsPermission(err) {
			return nil, kerr.Denied("bind packet socket", err, kerr.CapNetRaw)
		}
		return nil, fmt.Errorf("bind packet socket: %w", err)
	}
	raw, err := c.file.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	go c.read(raw)
	c.stopCtx = context.AfterFunc(ctx, c.wake)
	return c, nil
}

// attachFilter attaches prog to the packet socket fd, in place of the one it has, in one
// step: no packet meets the socket without a filter.
func attachFilter(fd int, prog []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		return fmt.Errorf("attach capture filter (%d instructions): %w", len(filter), err)
	}
	return nil
}

// Grow adds an endpoint to the flow the capture takes: to the tcx programs' map, or to the
// packet socket's filter, rebuilt and swapped in. An endpoint of another namespace is not
// this capture's to take: the capture sees its own namespace only.
func (c *Capture) Grow(e evidence.Endpoint) error {
	if e.Netns != 0 && c.netns != 0 && e.Netns != c.netns {
		return nil
	}
	c.growMu.Lock()
	defer c.growMu.Unlock()
	if c.tcx != nil {
		c.followInto(e, false)
		return c.tcx.grow(e)
	}
	ends := append(slices.Clone(c.ends), e)
	prog, err := filterOn(ends, c.indexes)
	if err != nil {
		return err
	}
	raw, err := c.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	var attachErr error
	if err := raw.Control(func(fd uintptr) { attachErr = attachFilter(int(fd), prog) }); err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	if attachErr != nil {
		return attachErr
	}
	c.ends = ends
	return nil
}

// followInto captures, from now on, in the namespace next to this one that has e's
// address, if any does: the flow's packets on their way in after a translation or a
// route sent them there. Not when the capture is of the interfaces the user named.
func (c *Capture) followInto(e evidence.Endpoint, now bool) {
	if c.indexes != nil {
		return // the interfaces named are all the capture is asked for
	}
	follow := c.follow.Follow
	if now {
		follow = c.follow.FollowNow
	}
	follow(e.Addr, e.String(), c.tcx.follow)
}

// pick resolves the interface names to indexes; nil means every interface.
func (c *Capture) pick(names []string, ifs []links.Link) ([]int, error) {
	byName := func(name string) int {
		return slices.IndexFunc(ifs, func(i links.Link) bool { return i.Name == name })
	}
	if len(names) == 0 || (len(names) == 1 && names[0] == "any" && byName("any") < 0) {
		return nil, nil
	}
	var up []string
	for _, i := range ifs {
		if i.Flags&unix.IFF_UP != 0 {
			up = append(up, i.Name)
		}
	}
	var indexes []int
	for _, name := range names {
		if slices.Contains(c.ifaces, name) {
			continue
		}
		i := byName(name)
		switch {
		case i < 0:
			return nil, fmt.Errorf("%w %q: not in this network namespace (up: %s)", ErrBadInterface, name, list(up))
		case ifs[i].Flags&unix.IFF_UP == 0:
			return nil, fmt.Errorf("%w %q: it is down; bring it up (ip link set %s up) or choose one that is up: %s",
				ErrBadInterface, name, name, list(up))
		}
		c.ifaces = append(c.ifaces, name)
		indexes = append(indexes, ifs[i].Index)
	}
	return indexes, nil
}

// list prints interface names for an error message, at most 20 of them.
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 20 {
		return strings.Join(names[:20], ", ") + fmt.Sprintf(" and %d more", len(names)-20)
	}
	return strings.Join(names, ", ")
}

// wake ends the reader's wait: a read deadline in the past makes the poller return at once,
// even if the reader has not started waiting yet; a flushed perf reader returns what it
// holds, then ErrFlushed.
func (c *Capture) wake() {
	if c.tcx != nil {
		_ = c.tcx.rd.Flush()
		return
	}
	_ = c.file.SetReadDeadline(time.Unix(1, 0))
}

// readTCX is read for the tcx capture.
func (c *Capture) readTCX() {
	defer close(c.done)
	if err := c.tcx.read(func(f frame) { c.handle(f, -1) }); err != nil {
		c.errs = append(c.errs, err.Error())
	}
}

// read runs until Stop or ctx: it waits in the runtime's poller (epoll, no busy loop) for the
// ring to hold a packet (the kernel wakes the socket for each one), reads everything there,
// and, once woken to stop, reads what is still there before returning.
func (c *Capture) read(raw interface {
	Read(func(uintptr) bool) error
	Control(func(uintptr)) error
}) {
	defer close(c.done)
	err := raw.Read(func(fd uintptr) bool {
		c.drain(int(fd))
		return false // wait for the next packet
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = raw.Control(func(fd uintptr) {
			c.drain(int(fd))
		})
	}
	if err != nil {
		c.errs = append(c.errs, fmt.Sprintf("read packet socket: %v", err))
	}
}

// drain records every packet in the ring.
func (c *Capture) drain(fd int) {
	for {
		f, ok := c.ring.take()
		if !ok {
			return
		}
		if c.picked == nil || c.picked[f.link.ifindex] {
			c.handle(f, fd)
		}
		c.ring.release(f)
	}
}

// handle records one packet the filter accepted.
func (c *Capture) handle(f frame, fd int) {
	h, _ := decode(f.data, f.link.ethertype)
	p := evidence.Packet{
		Time:      f.time,
		Iface:     c.ifname(f.link.ifindex, fd),
		Direction: direction(f.link.pkttype),
		Src:       h.src,
		Dst:       h.dst,
		Flags:     h.flags,
		Length:    f.origLen,
		PktType:   pktTypeName(f.link.pkttype),
	}
	if c.tcx != nil {
		if p.Netns = c.tcx.hopOf(f.link.ifindex); p.Netns != 0 {
			if c.hopIndexes == nil {
				c.hopIndexes = map[int]uint64{}
			}
			c.hopIndexes[f.link.ifindex] = p.Netns
		}
	}
	k := countKey{p.Iface, p.Direction, p.Netns}
	n := c.counts[k]
	if n == nil {
		n = &evidence.IfaceCount{Iface: p.Iface, Direction: p.Direction, Netns: p.Netns}
		c.counts[k] = n
	}
	n.Packets++
	n.Bytes += f.origLen
	switch {
	case p.Netns != 0:
		// Another namespace's: the flow's packets there, not this one's arrivals.
	case p.Direction == evidence.Out:
		c.out++
	default:
		c.in++
		c.growMu.Lock()
		if _, ok := c.ends.Match(h.proto, netip.AddrPort{}, p.Dst, 0); ok {
			c.toward++
		}
		c.growMu.Unlock()
	}
	if len(c.got) < evidence.MaxPackets {
		c.got = append(c.got, p)
	}
	if c.pcap != nil {
		c.pcap.write(f.time, f.link, f.data, f.origLen)
	}
	if p.Netns != 0 {
		return
	}
	c.packets.Add(1)
	if c.cfg.OnPacket != nil {
		c.cfg.OnPacket(p)
	}
}

// ifname names an interface. Interfaces created after Start are looked up with SIOCGIFNAME
// on the packet socket itself (fd), which answers for the socket's network namespace
// whatever namespace the reader's thread is in; the tcx capture (fd -1) asks its watcher,
// which learns an interface's name before it attaches to it.
func (c *Capture) ifname(index, fd int) string {
	if name, ok := c.names[index]; ok {
		return name
	}
	if c.tcx != nil {
		name, ok := c.tcx.ifname(index)
		if ok {
			c.names[index] = name // for Interfaces, which names the pcapng's interfaces
		}
		return name
	}
	name := fmt.Sprintf("if%d", index)
	if ifr, err := unix.NewIfreq(""); err == nil {
		ifr.SetUint32(uint32(index))
		if unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr) == nil {
			name = ifr.Name()
		}
	}
	c.names[index] = name
	return name
}

func direction(pkttype uint8) evidence.Direction {
	if pkttype == unix.PACKET_OUTGOING {
		return evidence.Out
	}
	return evidence.In
}

// pktTypeName names an AF_PACKET packet type as linux/if_packet.h does, in lower case.
func pktTypeName(t uint8) string {
	names := [...]string{"host", "broadcast", "multicast", "otherhost", "outgoing", "loopback", "user", "kernel"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type%d", t)
}

// Packets returns how many packets of the flow were captured so far.
func (c *Capture) Packets() int {
	if c == nil {
		return 0
	}
	return int(c.packets.Load())
}

// Stop ends the capture: it reads what the socket still holds, closes it, flushes the pcap
// file and returns the evidence. Later calls return the same evidence.
func (c *Capture) Stop() *evidence.Arrival {
	if c == nil {
		return nil
	}
	c.stopOnce.Do(c.stop)
	return c.result
}

func (c *Capture) stop() {
	c.stopCtx()
	// A capture starting elsewhere finishes before the programs are detached.
	followErrs := c.follow.Wait()
	if c.tcx != nil {
		// Detached first: nothing arrives after the flush.
		if err := c.tcx.stop(); err != nil {
			c.errs = append(c.errs, fmt.Sprintf("detach the capture: %v", err))
		}
	}
	c.wake()
	<-c.done
	c.errs = append(c.errs, followErrs...)

	a := &evidence.Arrival{
		Ifaces:     c.ifaces,
		Method:     c.method,
		MethodNote: c.methodNote,
		Packets:    c.got,
		In:         c.in,
		Toward:     c.toward,
		Out:        c.out,
	}
	if a.Packets == nil {
		a.Packets = []evidence.Packet{}
	}
	if c.tcx != nil {
		if len(c.tcx.skipped) > 0 {
			a.MethodNote = "not captured, made during the capture: " + strings.Join(c.tcx.skipped, ", ")
		}
		// The programs count a packet the ring buffer had no room for.
		if n, err := c.tcx.counters(); err == nil {
			a.SocketDrops = n.Lost
			a.Seen = n.Seen
		} else {
			c.errs = append(c.errs, err.Error())
		}
	} else if raw, err := c.file.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			// PACKET_STATISTICS resets on every read: this is the only one, taken after the
			// last packet was read.
			if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
				a.SocketDrops += uint64(st.Drops)
			} else {
				c.errs = append(c.errs, fmt.Sprintf("read PACKET_STATISTICS: %v", err))
			}
		})
	}
	a.Counts = make([]evidence.IfaceCount, 0, len(c.counts))
	for _, n := range c.counts {
		a.Counts = append(a.Counts, *n)
	}
	slices.SortFunc(a.Counts, func(x, y evidence.IfaceCount) int {
		if x.Netns != y.Netns {
			return cmp.Compare(x.Netns, y.Netns)
		}
		if x.Iface != y.Iface {
			return strings.Compare(x.Iface, y.Iface)
		}
		return strings.Compare(string(x.Direction), string(y.Direction))
	})
	names := nameNamespaces(a)
	// The pcapng's interface blocks: another namespace's eth0 is not this one's.
	for index, ino := range c.hopIndexes {
		c.names[index] += "@" + cmp.Or(names[ino], fmt.Sprint(ino))
	}
	if c.pcap != nil {
		if err := c.pcap.close(); err != nil {
			c.errs = append(c.errs, err.Error())
		}
		a.PcapPath = c.pcap.path
	}
	if c.tcx != nil {
		c.closeErr = c.tcx.close()
	} else {
		// The reader is done with the ring: unmap it before the socket goes.
		if err := c.ring.close(); err != nil {
			c.errs = append(c.errs, fmt.Sprintf("unmap the capture ring: %v", err))
		}
		c.closeErr = c.file.Close()
	}
	a.Error = strings.Join(c.errs, "; ")
	c.result = a
}

// nameNamespaces names the other namespaces the packets were captured in, as the rest of
// the report names them, and returns the names by inode.
func nameNamespaces(a *evidence.Arrival) map[uint64]string {
	var owners *netns.Owners
	names := map[uint64]string{}
	name := func(ino uint64) string {
		if n, ok := names[ino]; ok {
			return n
		}
		if owners == nil {
			owners = netns.NewOwners()
		}
		names[ino] = owners.Describe(ino)
		return names[ino]
	}
	for i := range a.Packets {
		if ino := a.Packets[i].Netns; ino != 0 {
			a.Packets[i].NetnsName = name(ino)
		}
	}
	for i := range a.Counts {
		if ino := a.Counts[i].Netns; ino != 0 {
			a.Counts[i].NetnsName = name(ino)
		}
	}
	return names
}

// Close releases the capture (stopping it if Stop was not called). It is idempotent and
// safe on the nil Capture a failed Start returns.
func (c *Capture) Close() error {
	if c == nil {
		return nil
	}
	c.Stop()
	return c.closeErr
}

// release undoes a Start that failed half-way.
func (c *Capture) release() {
	if c.pcap != nil {
		c.pcap.discard()
	}
	_ = c.tcx.close()
	_ = c.ring.close()
	if c.file != nil {
		c.file.Close()
	}
}

// htons and ntohs convert between host and network byte order (sll_protocol is in network
// order; x/sys/unix passes it through as is).
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func ntohs(v uint16) uint16 { return htons(v) }
