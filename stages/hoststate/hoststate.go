// Package hoststate is the host state stage: the namespace's own configuration and counters
// that bear on a verdict. It reads sysctls from /proc/sys, nstat-style counters from
// /proc/thread-self/net, and everything else with netlink: route lookups (RTM_GETROUTE, as
// `ip route get`), the sockets on the flow's port (sock_diag), XDP, tc and tcx programs
// (RTM_GETLINK, RTM_GETTFILTER, BPF_PROG_QUERY) and interface counters (IFLA_STATS64). It
// never runs a program.
//
// Everything is read in the network namespace of the calling thread: Start and Stop open
// their sockets and files on it and start no goroutine, so a caller that entered another
// namespace on a locked thread reads that one. Host state never fails a run: what cannot be
// read is one line in HostState.Errors and the rest is still read.
package hoststate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Bounds that keep Stop fast on a busy host.
const (
	// MaxPeers bounds the peers looked up: each costs two or three route lookups.
	MaxPeers = 16
	// MaxSysctlIfaces bounds the interfaces whose conf sysctls are read when no interface
	// is given (a node with thousands of veths).
	MaxSysctlIfaces = 256
	// timeout bounds the use of each netlink socket, so a wedged one cannot hang the report.
	timeout = 2 * time.Second
)

// Config says what the host state is about.
type Config struct {
	Flow evidence.Flow
	// Netns is the namespace whose state is read; nil: the current one.
	Netns *netns.Handle
}

// Snapshot holds the counters read at Start, for Stop to compare with.
type Snapshot struct {
	cfg   Config
	paths paths
	netns uint64

	mu   sync.Mutex
	ends evidence.Endpoints // whose listeners Stop lists

	counters  map[string]uint64
	softnet   uint64
	softnetOK bool
	// links holds interface counters by index; nil when the dump failed.
	stats map[int]links.Stats // by interface index, at Start
	errs  []string
	// kmsg follows the kernel log for conntrack's reasons; nil when it cannot be read.
	kmsg *kmsgTail

	stopped *evidence.HostState
}

// paths are the roots of the /proc files read, so tests can point them at fixtures.
type paths struct {
	net string // /proc/thread-self/net: snmp, netstat, snmp6, softnet_stat
	sys string // /proc/sys
}

func procPaths() paths {
	p := paths{net: "/proc/thread-self/net", sys: "/proc/sys"}
	// /proc/thread-self is 3.17+; before it, /proc/self/net is the process's namespace.
	if _, err := os.Stat("/proc/thread-self"); err != nil {
		p.net = "/proc/self/net"
	}
	return p
}

// Start reads the counters Stop compares against: SNMP and netstat counters, softnet
// drops, interface counters. It is cheap (a few files and one netlink dump). Its error is
// for a bad Config or a cancelled ctx only: what cannot be read is reported by Stop.
func Start(ctx context.Context, cfg Config) (s *Snapshot, err error) {
	err = cfg.Netns.Do(func() error {
		s, err = start(ctx, cfg, procPaths())
		return err
	})
	return s, err
}

func start(ctx context.Context, cfg Config, p paths) (*Snapshot, error) {
	f := cfg.Flow
	if err := f.Check(); err != nil {
		return nil, fmt.Errorf("host state: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg.Flow.Addr = f.Addr.Unmap()
	s := &Snapshot{cfg: cfg, paths: p, netns: netns.Own(), ends: evidence.Endpoints{cfg.Flow.Endpoint()}}
	var errs []error
	// Unreadable (no /dev/kmsg in a container, dmesg_restrict for a non-root user) only
	// leaves conntrack's reasons out: not an error of the stage.
	s.kmsg, _ = openKmsg()
	s.counters, errs = readCounters(p.net)
	s.noteAll("before", errs...)
	var err error
	if s.softnet, err = readSoftnetDropped(p.net); err != nil {
		s.note("before", err)
	} else {
		s.softnetOK = true
	}
	c, err := dialRoute(ctx)
	if err != nil {
		s.note("before", err)
		return s, nil
	}
	defer c.Close()
	ifs, err := links.Dump(c)
	if err != nil {
		s.note("before", err)
		return s, nil
	}
	s.stats = map[int]links.Stats{}
	for _, l := range ifs {
		s.stats[l.Index] = l.Stats
	}
	return s, nil
}

func (s *Snapshot) note(when string, err error) {
	s.errs = append(s.errs, when+": "+err.Error())
}

func (s *Snapshot) noteAll(when string, errs ...error) {
	for _, err := range errs {
		s.note(when, err)
	}
}

func dialRoute(ctx context.Context) (*netlink.Conn, error) {
	return dial(ctx, unix.NETLINK_ROUTE, "rtnetlink")
}

// dial opens a netlink socket in the calling thread's namespace, with extended
// acknowledgements (the kernel's error messages) when the kernel has them.
func dial(ctx context.Context, family int, what string) (*netlink.Conn, error) {
	// A fixed receive buffer: the library otherwise peeks at every message first, which
	// makes a dump of 200 interfaces take 13 ms instead of 2.5. Dump messages are at most
	// 32 KiB; the buffer leaves room for a link with many SR-IOV VFs.
	c, err := netlink.Dial(family, &netlink.Config{MessageBufferSize: 1 << 18})
	if err != nil {
		return nil, fmt.Errorf("open %s socket: %w", what, err)
	}
	_ = c.SetOption(netlink.ExtendedAcknowledge, true)
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, fmt.Errorf("open %s socket: %w", what, err)
	}
	return c, nil
}

// Stop reads the host state: the counters again and their moves, the sysctls, the route
// lookups for the flow and each of peers (the far ends seen in the capture), the sockets on
// the flow's port and the programs on the interfaces. ifaces are the interfaces the flow
// arrived on: their sysctls are read (every interface's when none is given) and each is the
// iif of an input-side route lookup. Calling it again returns the same state.
func (s *Snapshot) Stop(ctx context.Context, peers []netip.Addr, ifaces []string) *evidence.HostState {
	if s.stopped != nil {
		return s.stopped
	}
	hs := &evidence.HostState{
		Sysctls:    map[string]string{},
		Routes:     []evidence.RouteLookup{},
		Listeners:  []evidence.Listener{},
		Programs:   []evidence.AttachedProgram{},
		Counters:   []evidence.Counter{},
		Interfaces: []evidence.InterfaceDrops{},
	}
	s.stopped = hs
	hs.Errors = append(hs.Errors, s.errs...)
	st := &stopper{s: s, hs: hs, ctx: ctx}
	// /proc/thread-self/net, /proc/sys/net and the netlink sockets are the namespace's
	// only when opened from a thread in it.
	if err := s.cfg.Netns.Do(func() error { st.run(peers, ifaces); return nil }); err != nil {
		st.fail(err)
	}
	return hs
}

// stopper carries what the parts of Stop share.
type stopper struct {
	s     *Snapshot
	hs    *evidence.HostState
	ctx   context.Context
	rt    *netlink.Conn
	links []links.Link
	names map[int]string // ifindex -> name
	index map[string]int // name -> ifindex
}

func (st *stopper) fail(err error) {
	if err != nil {
		st.hs.Errors = append(st.hs.Errors, err.Error())
	}
}

func (st *stopper) run(peers []netip.Addr, ifaces []string) {
	ifaces = dedupe(ifaces)
	parts := []struct {
		name string
		fn   func()
	}{
		{"counters", st.counters},
		{"interfaces", st.interfaces},
		{"sysctls", func() { st.sysctls(ifaces) }},
		{"routes", func() { st.routes(peers, ifaces) }},
		{"listeners", st.listeners},
		{"programs", st.programs},
		{"kernel log", st.conntrackLog},
	}
	rt, err := dialRoute(st.ctx)
	st.fail(err)
	if rt != nil {
		st.rt = rt
		defer rt.Close()
	}
	for i, p := range parts {
		if err := st.ctx.Err(); err != nil {
			var left []string
			for _, q := range parts[i:] {
				left = append(left, q.name)
			}
			st.fail(fmt.Errorf("host state stopped early (%w): not read: %v", err, left))
			return
		}
		p.fn()
	}
}

// counters reads the SNMP, netstat and softnet counters again and keeps what moved.
func (st *stopper) counters() {
	s := st.s
	after, errs := readCounters(s.paths.net)
	for _, err := range errs {
		st.fail(errors.New("after: " + err.Error()))
	}
	if s.counters != nil {
		st.hs.Counters = counterDeltas(s.counters, after)
	}
	softnet, err := readSoftnetDropped(s.paths.net)
	if err != nil {
		st.fail(errors.New("after: " + err.Error()))
	} else if s.softnetOK {
		st.hs.SoftnetDropped = softnetDelta(s.softnet, softnet)
	}
}

// interfaces lists the interfaces again: their names for the other parts, their counters'
// moves, their XDP programs.
func (st *stopper) interfaces() {
	st.names, st.index = map[int]string{}, map[string]int{}
	if st.rt == nil {
		return
	}
	ifs, err := links.Dump(st.rt)
	if err != nil {
		st.fail(err)
		return
	}
	st.links = ifs
	for _, l := range ifs {
		st.names[l.Index] = l.Name
		st.index[l.Name] = l.Index
	}
	if st.s.stats != nil {
		st.hs.Interfaces = ifaceDrops(st.s.stats, ifs)
	}
}

// sysctls reads the settings of all, default and ifaces (every interface when none given).
func (st *stopper) sysctls(ifaces []string) {
	devs := ifaces
	if len(devs) == 0 {
		for _, l := range st.links {
			devs = append(devs, l.Name)
		}
		if len(devs) > MaxSysctlIfaces {
			st.fail(fmt.Errorf("sysctls: %d interfaces, read those of the first %d", len(devs), MaxSysctlIfaces))
			devs = devs[:MaxSysctlIfaces]
		}
	}
	var errs []error
	st.hs.Sysctls, errs = readSysctls(st.s.paths.sys, devs)
	for _, err := range errs {
		st.fail(err)
	}
	count, okc := sysctlUint(st.hs.Sysctls, sysctlConntrackCount)
	max, okm := sysctlUint(st.hs.Sysctls, sysctlConntrackMax)
	if okc && okm {
		st.hs.Conntrack = &evidence.Conntrack{Count: count, Max: max}
	}
}

func sysctlUint(sysctls map[string]string, name string) (uint64, bool) {
	v, ok := sysctls[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// Grow makes Stop list the sockets on an endpoint's port too, when it applies in this
// namespace.
func (s *Snapshot) Grow(e evidence.Endpoint) error {
	if e.Netns != 0 && s.netns != 0 && e.Netns != s.netns {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ends = append(s.ends, e)
	return nil
}

// listeners lists the sockets on the ports of the flow's endpoints.
func (st *stopper) listeners() {
	c, err := dial(st.ctx, unix.NETLINK_SOCK_DIAG, "sock_diag")
	if err != nil {
		st.fail(err)
		return
	}
	defer c.Close()
	type port struct {
		proto evidence.Proto
		n     uint16
	}
	seen := map[port]bool{}
	st.s.mu.Lock()
	ends := slices.Clone(st.s.ends)
	st.s.mu.Unlock()
	st.hs.Listeners = []evidence.Listener{}
	for _, e := range ends {
		if seen[port{e.Proto, e.Port}] {
			continue
		}
		seen[port{e.Proto, e.Port}] = true
		ls, errs := sockDiag(c, e.Proto, e.Port, st.names)
		st.hs.Listeners = append(st.hs.Listeners, ls...)
		for _, err := range errs {
			st.fail(err)
		}
	}
}

// programs lists XDP, tc and tcx programs on the namespace's interfaces.
func (st *stopper) programs() {
	var progs []program
	for _, l := range st.links {
		for _, x := range l.XDP {
			progs = append(progs, program{Index: l.Index, Hook: x.Hook, ID: x.ID})
		}
	}
	if st.rt != nil {
		tc, err := tcPrograms(st.rt)
		st.fail(err)
		progs = append(progs, tc...)
	}
	tcx, err := tcxPrograms(st.links)
	if !errors.Is(err, errNoTCX) {
		st.fail(err)
	}
	progs = append(progs, tcx...)
	var errs []error
	st.hs.Programs, errs = namePrograms(progs, st.names)
	for _, err := range errs {
		st.fail(err)
	}
}

func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// conntrackLog keeps the kernel log's lines where conntrack said why a packet of the flow
// was invalid.
func (st *stopper) conntrackLog() {
	k := st.s.kmsg
	if k == nil {
		return
	}
	st.s.kmsg = nil
	msgs, err := k.messages()
	if err != nil {
		st.fail(fmt.Errorf("read the kernel log: %w", err))
	}
	st.hs.ConntrackLog = conntrackLines(msgs, st.s.ends)
}
