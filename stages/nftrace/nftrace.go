// Package nftrace is the firewall stage: it asks nf_tables to trace the flow's packets
// and records which rules and policies they met, hook by hook.
//
// Start installs a temporary table "inet packetmortem_<pid>" owned by diagnose's netlink
// socket (NFT_TABLE_F_OWNER: the kernel deletes it when the socket closes, even after
// kill -9) with two base chains at priority -310, on prerouting and output, whose rules
// match the flow and set "meta nftrace set 1". They carry no verdict: the fate of no packet
// changes. A second socket, subscribed to NFNLGRP_NFTRACE before the rules exist,
// receives the trace events; Stop groups them per packet and hook, renders every rule met
// in nft syntax from the user's ruleset, removes the table and returns the evidence.
//
// Limits: a chain that runs before priority -310 on a hook where the packet is not yet
// marked (netdev ingress, or a chain at priority < -310 on prerouting/output) is not
// seen; the trace table itself is only in the namespace traced.
package nftrace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/nft"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Config says what to trace and where.
type Config struct {
	Flow evidence.Flow
	// Netns is the namespace traced; nil: the current one.
	Netns *netns.Handle

	// For tests: a smaller trace socket buffer (0: readBuffer), a step run once the table
	// exists whose error fails Start there, a listener to every raw trace message.
	readBuffer int
	afterTable func() error
	onRaw      func(netlink.Message)
}

// readBuffer is the trace socket's receive buffer: a burst of a few thousand events.
const readBuffer = 8 << 20

// drainTime is how long Stop keeps reading events already queued on the trace socket.
const drainTime = 150 * time.Millisecond

// Tracer is an armed trace: the table is installed and events are being collected.
type Tracer struct {
	flow  evidence.Flow
	netns uint64 // the traced namespace's inode
	table string
	onRaw func(netlink.Message)
	// ipsetSock is a socket of the traced namespace for ipset names; -1: none.
	ipsetSock int

	nft *nftables.Conn
	// owner is the lasting netlink socket of nft: the owner of the table. mu serializes
	// its use (google/nftables sends and receives on it in separate calls).
	mu    sync.Mutex
	owner *netlink.Conn
	// route is a route socket of the traced namespace, for interface names.
	route *netlink.Conn
	// trace receives the trace events.
	trace *netlink.Conn
	// readerDone is closed when the reader ends; nil until it starts.
	readerDone chan struct{}
	stopping   atomic.Bool

	col collector
	// chains0 and links0 are the chains and interfaces at Start, for chains or links that
	// are gone by Stop.
	chains0 map[nft.ChainKey]nft.Chain
	links0  map[uint32]string

	installed bool
	removed   bool
	closed    atomic.Bool
	result    *evidence.Firewall
	closeOnce sync.Once
	closeErr  error
}

// Start subscribes to trace events, installs the trace table and returns once packets of
// the flow are being traced. On error everything made so far is released.
func Start(ctx context.Context, cfg Config) (*Tracer, error) {
	if err := cfg.Flow.Check(); err != nil {
		return nil, fmt.Errorf("nftrace: %w", err)
	}
	t := &Tracer{flow: cfg.Flow, netns: netns.Own(), table: defaultTableName(), onRaw: cfg.onRaw, ipsetSock: -1}
	armed := false
	defer func() {
		if !armed {
			t.Close()
		}
	}()
	var err error

	nsfd := 0 // 0: the calling thread's namespace
	if cfg.Netns != nil {
		// Dup so that fd 0 cannot be mistaken for "current namespace".
		fd, err := unix.FcntlInt(uintptr(cfg.Netns.Fd()), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("nftrace: namespace %s: %w", cfg.Netns, err)
		}
		defer unix.Close(fd)
		nsfd = fd
		t.netns = netns.OfFd(fd)
	}
	// A socket of the namespace to ask the names of the ipsets iptables' set matches refer
	// to (by index only in the rule): best effort, a rule without them says so.
	openIpset := func() error {
		t.ipsetSock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}
	if cfg.Netns != nil {
		err = cfg.Netns.Do(openIpset)
	} else {
		err = openIpset()
	}
	if err != nil {
		t.ipsetSock = -1
	}
	t.col.init(cfg.Flow.Endpoint(), t.table)
	nlcfg := &netlink.Config{NetNS: nsfd}

	// 1. Subscribe before any packet can be marked, so no event is missed.
	t.trace, err = netlink.Dial(unix.NETLINK_NETFILTER, nlcfg)
	if err != nil {
		return nil, classify("open nfnetlink socket", err)
	}
	size := readBuffer
	if cfg.readBuffer > 0 {
		size = cfg.readBuffer
	}
	if err := t.trace.SetReadBuffer(size); err != nil {
		return nil, classify("size trace socket buffer", err)
	}
	if err := t.trace.JoinGroup(unix.NFNLGRP_NFTRACE); err != nil {
		return nil, classify("subscribe to nftables trace events", err)
	}
	t.readerDone = make(chan struct{})
	go t.read()

	// Interface names, best effort: a trace still works without them.
	if t.route, err = netlink.Dial(unix.NETLINK_ROUTE, nlcfg); err == nil {
		t.links0, _ = dumpLinks(t.route)
	} else {
		t.route = nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nftrace: %w", err)
	}

	// 2. The owner table, then chains and rules, all on the same lasting socket: only
	// the owner may change an owned table.
	opts := []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(func(c *netlink.Conn) error {
			t.owner = c
			return nil
		}),
	}
	if nsfd != 0 {
		opts = append(opts, nftables.WithNetNSFd(nsfd))
	}
	t.nft, err = nftables.New(opts...)
	if err != nil {
		return nil, classify("open nftables socket", err)
	}
	if err := t.createTable(); err != nil {
		return nil, err
	}
	t.installed = true
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nftrace: %w", err)
	}
	if cfg.afterTable != nil {
		if err := cfg.afterTable(); err != nil {
			return nil, err
		}
	}
	if err := t.addChainsAndRules(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.chains0, err = nft.Chains(t.owner)
	t.mu.Unlock()
	if err != nil {
		return nil, classify("read chains", err)
	}
	armed = true
	return t, nil
}

func (t *Tracer) tableSpec() *nftables.Table {
	return &nftables.Table{Name: t.table, Family: nftables.TableFamilyINet}
}

func (t *Tracer) createTable() error {
	msgs, err := newOwnerTableBatch(t.table)
	if err != nil {
		return fmt.Errorf("nftrace: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	what := "create table inet " + t.table
	if _, err := t.owner.SendMessages(msgs); err != nil {
		return classify(what, err)
	}
	if _, err := t.owner.Receive(); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("nftrace: %s: %w (a table of that name exists and is not this diagnose's: delete it with `nft delete table inet %s`)", what, err, t.table)
		}
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return kerr.Unsupported("nftrace: "+what, "owner tables, Linux 5.12+", err)
		}
		return classify(what, err)
	}
	return nil
}

func (t *Tracer) addChainsAndRules() error {
	table := t.tableSpec()
	t.mu.Lock()
	defer t.mu.Unlock()
	chains := traceChains(table)
	for _, c := range chains {
		t.nft.AddChain(c)
		for _, exprs := range flowRules(t.flow.Endpoint()) {
			t.nft.AddRule(&nftables.Rule{Table: table, Chain: c, Exprs: exprs})
		}
	}
	if err := t.nft.Flush(); err != nil {
		what := "add trace chains and rules to inet " + t.table
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return kerr.Unsupported("nftrace: "+what, "nf_tables with meta nftrace", err)
		}
		return classify(what, err)
	}
	return nil
}

// Grow traces an endpoint's packets too, from the next one on: its rules join the trace
// chains. An endpoint of another namespace is not this trace's.
func (t *Tracer) Grow(e evidence.Endpoint) error {
	if e.Netns != 0 && t.netns != 0 && e.Netns != t.netns {
		return nil
	}
	t.col.grow(e)
	table := t.tableSpec()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return errors.New("nftrace: the trace has ended")
	}
	for _, c := range traceChains(table) {
		for _, exprs := range flowRules(e) {
			t.nft.AddRule(&nftables.Rule{Table: table, Chain: c, Exprs: exprs})
		}
	}
	if err := t.nft.Flush(); err != nil {
		return classify("add trace rules for "+e.String()+" to inet "+t.table, err)
	}
	return nil
}

// classify wraps err with what failed and, for known causes, the sentinel saying what to do.
func classify(what string, err error) error {
	switch {
	case kerr.IsPermission(err):
		return kerr.Denied("nftrace: "+what, err, kerr.CapNetAdmin)
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EOPNOTSUPP):
		return kerr.Unsupported("nftrace: "+what, "nf_tables and nfnetlink", err)
	}
	return fmt.Errorf("nftrace: %s: %w", what, err)
}

// read collects trace events until Stop or Close.
func (t *Tracer) read() {
	defer close(t.readerDone)
	for {
		msgs, err := t.trace.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				// The socket overflowed: at least one event is lost. Counted, never silent.
				t.col.lost.Add(1)
				continue
			}
			if !t.stopping.Load() {
				t.col.setErr(fmt.Errorf("read trace events: %w", err))
			}
			return
		}
		for _, m := range msgs {
			if m.Header.Type != traceMsgType {
				continue
			}
			if t.onRaw != nil {
				t.onRaw(m)
			}
			ev, err := decodeTrace(m.Data)
			if err != nil {
				t.col.bad.Add(1)
				continue
			}
			t.col.add(ev)
		}
	}
}

// Traced returns how many packets of the flow were marked for tracing so far (each
// packet counts once per trace chain it passed). Safe to call concurrently.
func (t *Tracer) Traced() int {
	if t == nil {
		return 0
	}
	return int(t.col.traced.Load())
}

// stopReader lets the reader drain what is queued, then closes the trace socket.
func (t *Tracer) stopReader() {
	if t.trace == nil {
		return
	}
	if t.readerDone == nil {
		if !t.stopping.Swap(true) {
			_ = t.trace.Close()
		}
		return
	}
	if t.stopping.Swap(true) {
		<-t.readerDone
		return
	}
	if err := t.trace.SetReadDeadline(time.Now().Add(drainTime)); err != nil {
		_ = t.trace.Close()
	}
	<-t.readerDone
	_ = t.trace.Close()
}

// Stop stops tracing and returns the evidence: the traces with every rule met rendered
// from the ruleset, and whether the table was removed. Calling it again returns the same.
func (t *Tracer) Stop() *evidence.Firewall {
	if t == nil {
		return &evidence.Firewall{Traces: []evidence.Trace{}, Error: "nftrace: not started"}
	}
	if t.result != nil {
		return t.result
	}
	fw := &evidence.Firewall{Table: "inet " + t.table, Installed: t.installed, Traces: []evidence.Trace{}}
	var errs []error
	t.stopReader()

	invs := t.col.take()
	links := map[uint32]string{}
	for k, v := range t.links0 {
		links[k] = v
	}
	if t.route != nil {
		if l, err := dumpLinks(t.route); err == nil {
			for k, v := range l {
				links[k] = v
			}
		}
	}
	// Read the rules while the owner socket is open, before the table goes.
	var res resolved
	if t.closed.Load() {
		errs = append(errs, errors.New("stopped after Close: the rules met were not read"))
	} else if t.owner != nil {
		t.mu.Lock()
		res, errs = resolve(t.owner, t.ipsetSock, invs, t.table, t.chains0, links)
		t.mu.Unlock()
	}
	if err := t.Close(); err != nil {
		errs = append(errs, err)
	}
	fw.Removed = t.removed
	fw.Traces = assemble(invs, t.table, res, links)
	fw.Lost = t.col.lost.Load()
	if err := t.col.getErr(); err != nil {
		errs = append(errs, err)
	}
	if n := t.col.omitted.Load(); n > 0 {
		fw.Omitted = n
	}
	if n := t.col.bad.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d trace messages could not be decoded", n))
	}
	if len(errs) > 0 {
		fw.Error = errors.Join(errs...).Error()
	}
	t.result = fw
	return fw
}

// Close stops the listener and removes the table. It is idempotent and safe after Stop or
// a failed Start.
func (t *Tracer) Close() error {
	if t == nil {
		return nil
	}
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		var errs []error
		t.stopReader()
		if t.ipsetSock >= 0 {
			unix.Close(t.ipsetSock)
		}
		if t.nft != nil {
			if t.installed {
				t.mu.Lock()
				t.nft.DelTable(t.tableSpec())
				err := t.nft.Flush()
				t.mu.Unlock()
				switch {
				case err == nil, errors.Is(err, unix.ENOENT):
					t.removed = true
				default:
					errs = append(errs, fmt.Errorf("delete table inet %s: %w (closing its owner socket removes it)", t.table, err))
				}
			}
			// Closing the owner socket makes the kernel delete the table if it still exists.
			if err := t.nft.CloseLasting(); err != nil {
				errs = append(errs, fmt.Errorf("close nftables socket: %w", err))
			} else if t.installed {
				t.removed = true
			}
		}
		if t.route != nil {
			_ = t.route.Close()
		}
		if len(errs) > 0 {
			t.closeErr = fmt.Errorf("nftrace: %w", errors.Join(errs...))
		}
	})
	return t.closeErr
}
