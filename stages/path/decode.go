package path

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/ktime"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/kdrop"
)

// eventSize is the size of struct event as the generated Go type lays it out; a test
// checks it against the object's BTF.
var eventSize = binary.Size(bpf.PathEvent{})

// decodeEvent reads one ring buffer record, written in the host's byte order.
func decodeEvent(raw []byte) (bpf.PathEvent, error) {
	var ev bpf.PathEvent
	if len(raw) < eventSize {
		return ev, fmt.Errorf("short path event: %d bytes, want %d", len(raw), eventSize)
	}
	if err := binary.Read(bytes.NewReader(raw[:eventSize]), binary.NativeEndian, &ev); err != nil {
		return ev, err
	}
	if _, ok := pointByID[ev.Point]; !ok {
		return ev, fmt.Errorf("path event from unknown point %d", ev.Point)
	}
	return ev, nil
}

type countKey struct {
	point string
	netns uint32
}

type ifaceKey struct {
	netns   uint32
	ifindex int32
}

// aggregate is what the reader makes of the events: the first MaxEvents kept raw, all of
// them counted.
type aggregate struct {
	events  []bpf.PathEvent
	read    int
	counts  map[countKey]int
	ifnames map[ifaceKey]string              // interface names the events carried, per namespace
	resets  map[uint32]int                   // tcp_send_reset events by reason
	failed  map[bpf.PathPoint]map[int32]bool // route lookup errors, by point
	tasks   int                              // route lookups attributed to the current task's namespace
	unknown int                              // events with no namespace
	bad     int
	// firstBad is the first record that could not be decoded, readErr what ended reading.
	firstBad error
	readErr  error
}

func newAggregate() aggregate {
	return aggregate{counts: map[countKey]int{}, ifnames: map[ifaceKey]string{}, resets: map[uint32]int{},
		failed: map[bpf.PathPoint]map[int32]bool{}}
}

func (a *aggregate) add(ev bpf.PathEvent, err error) {
	if err != nil {
		if a.bad == 0 {
			a.firstBad = err
		}
		a.bad++
		return
	}
	a.read++
	if len(a.events) < MaxEvents {
		a.events = append(a.events, ev)
	}
	a.counts[countKey{pointByID[ev.Point].name, ev.Netns}]++
	if name := cString(ev.Ifname); name != "" && ev.Ifindex != 0 && ev.Netns != 0 {
		a.ifnames[ifaceKey{ev.Netns, int32(ev.Ifindex)}] = name
	}
	switch ev.Point {
	case bpf.PathPointPOINT_RESET:
		a.resets[ev.RstReason]++
	case bpf.PathPointPOINT_ROUTE, bpf.PathPointPOINT_ROUTE6:
		if ev.Err != 0 {
			if a.failed[ev.Point] == nil {
				a.failed[ev.Point] = map[int32]bool{}
			}
			a.failed[ev.Point][ev.Err] = true
		}
	}
	if ev.NetnsFrom == bpf.PathNetnsSourceNETNS_TASK {
		a.tasks++
	}
	if ev.Netns == 0 {
		a.unknown++
	}
}

// pathOrder sorts points the way a packet meets them.
var pathOrder = []string{evidence.PointReceive, evidence.PointRoute, evidence.PointSockState,
	evidence.PointDataReady, evidence.PointCopied, evidence.PointReset, evidence.PointICMP}

// describe fills the evidence: events, counts, losses and what the reader noticed.
func (a *aggregate) describe(path *evidence.Path, n *namer, totals map[bpf.PathPoint]bpf.PathCounters) {
	path.Events = make([]evidence.PathEvent, 0, len(a.events))
	for i := range a.events {
		path.Events = append(path.Events, n.event(&a.events[i]))
	}

	for k, c := range a.counts {
		pc := evidence.PointCount{
			Point: k.point, Netns: uint64(k.netns), Elsewhere: uint64(k.netns) != n.target, Events: c,
		}
		if pc.Elsewhere && n.netnsName != nil {
			pc.NetnsName = n.netnsName(pc.Netns)
		}
		path.Counts = append(path.Counts, pc)
	}
	slices.SortFunc(path.Counts, func(x, y evidence.PointCount) int {
		return cmp.Or(
			cmp.Compare(slices.Index(pathOrder, x.Point), slices.Index(pathOrder, y.Point)),
			cmpBool(x.Elsewhere, y.Elsewhere),
			cmp.Compare(x.Netns, y.Netns))
	})

	var perPoint []string
	for _, id := range slices.Sorted(maps.Keys(totals)) {
		t := totals[id]
		path.Lost += t.Lost
		perPoint = append(perPoint, fmt.Sprintf("%s %d/%d", pointByID[id].tracepoint(), t.Matched, t.Seen))
	}
	if len(perPoint) > 0 {
		path.Notes = append(path.Notes, "events of the flow/all events per tracepoint: "+strings.Join(perPoint, ", "))
	}
	if path.Lost > 0 {
		path.Notes = append(path.Notes, fmt.Sprintf("%d events of the flow were lost: the ring buffer was full", path.Lost))
	}
	if a.read > len(a.events) {
		path.Notes = append(path.Notes, fmt.Sprintf("kept the first %d of %d events of the flow; counts cover all", len(a.events), a.read))
	}
	// A table without a route for the destination is no failure yet: the lookup goes on
	// in the next table (local, main, default with no fib rules of one's own).
	if a.failed[bpf.PathPointPOINT_ROUTE][-eagain] {
		path.Notes = append(path.Notes, "fib_table_lookup error -11 (EAGAIN) means no route in that table: the lookup goes on in the next one, and fails with ENETUNREACH when no table has a route")
	}
	if a.failed[bpf.PathPointPOINT_ROUTE6][-ehostunreach] {
		path.Notes = append(path.Notes, "fib6_table_lookup error -113 (EHOSTUNREACH) is also how IPv6 reports a table without a route (its null entry): the lookup goes on in the next table; only the last lookup's error is the result")
	}
	if a.tasks > 0 {
		path.Notes = append(path.Notes, fmt.Sprintf("%d route lookups had neither a device nor a received packet to tell their namespace: attributed to the namespace of the task that made them, which is right for a lookup a process makes, not for one made in softirq", a.tasks))
	}
	if a.unknown > 0 {
		path.Notes = append(path.Notes, fmt.Sprintf("%d events had no device, socket or task to tell their namespace: marked elsewhere", a.unknown))
	}
	if n.resets != nil && len(a.resets) > 0 {
		var rs []string
		for _, code := range slices.Sorted(maps.Keys(a.resets)) {
			rs = append(rs, fmt.Sprintf("%s %d", n.resets.name(code), a.resets[code]))
		}
		path.Notes = append(path.Notes, "resets sent, by reason: "+strings.Join(rs, ", "))
	}
	if a.bad > 0 {
		path.Notes = append(path.Notes, fmt.Sprintf("%d path events could not be decoded: %v", a.bad, a.firstBad))
	}
	if a.readErr != nil {
		path.Error = fmt.Sprintf("read path events: %v", a.readErr)
	}
}

// namer turns raw events into evidence.
type namer struct {
	// target is the namespace being diagnosed; own the one this process runs in.
	target, own uint64
	clock       ktime.Mono
	ifname      func(ifindex int) string  // names this namespace's interfaces
	learnt      map[ifaceKey]string       // names the events carried
	resets      *resetReasons             // nil: reasons are not reported
	netnsName   func(inode uint64) string // names namespaces elsewhere; nil: left unnamed
}

func (n *namer) event(ev *bpf.PathEvent) evidence.PathEvent {
	pt := pointByID[ev.Point]
	e := evidence.PathEvent{
		Time:      n.clock.Wall(ev.KtimeNs),
		Point:     pt.name,
		Netns:     uint64(ev.Netns),
		Elsewhere: uint64(ev.Netns) != n.target,
		Src:       netip.AddrPortFrom(eventAddr(ev.Saddr), ev.Sport),
		Dst:       netip.AddrPortFrom(eventAddr(ev.Daddr), ev.Dport),
	}
	if ev.Proto == evidence.TCP.Number() && ev.Match == bpf.PathMatchMATCH_HEADERS {
		e.Flags = kdrop.TCPFlags(ev.TcpFlags)
	}
	// Device names come from the kernel at event time, in whichever namespace; an index
	// alone is named only in ours, where it means something.
	dev := cString(ev.Ifname)
	if dev == "" && ev.Ifindex != 0 {
		dev = n.iface(ev.Netns, int32(ev.Ifindex))
	}
	switch ev.Point {
	case bpf.PathPointPOINT_ROUTE, bpf.PathPointPOINT_ROUTE6:
		e.Table = ev.Table
		e.Err = int(ev.Err)
		e.Oif = dev
		e.Gateway = gateway(ev)
		e.Iif = n.iface(ev.Netns, ev.Iif)
	case bpf.PathPointPOINT_SOCK_STATE:
		e.OldState = TCPState(ev.OldState)
		e.NewState = TCPState(ev.NewState)
	case bpf.PathPointPOINT_COPIED:
		e.Length = int(ev.Len)
	case bpf.PathPointPOINT_ICMP:
		e.ICMPType = int(ev.IcmpType)
		e.ICMPCode = int(ev.IcmpCode)
		e.Iface = dev
	default:
		e.Iface = dev
	}
	return e
}

// iface names an interface index of namespace netns. Index 1 is loopback in every
// namespace, and the input interface of lookups for packets this host sends: not named.
func (n *namer) iface(netns uint32, ifindex int32) string {
	if ifindex <= 1 {
		return ""
	}
	if name, ok := n.learnt[ifaceKey{netns, ifindex}]; ok {
		return name
	}
	if netns != 0 && uint64(netns) == n.own && n.ifname != nil {
		return n.ifname(int(ifindex))
	}
	return ""
}

// gateway is a route lookup's next hop, "" when the destination is on link.
func gateway(ev *bpf.PathEvent) string {
	switch ev.GwFamily {
	case afInet:
		return netip.AddrFrom4([4]byte(ev.Gateway[:4])).String()
	case afInet6:
		return netip.AddrFrom16(ev.Gateway).Unmap().String()
	}
	return ""
}

const (
	afInet  = 2
	afInet6 = 10

	eagain       = 11
	ehostunreach = 113
)

// eventAddr reads a 16-byte address, IPv4 being mapped (::ffff:a.b.c.d).
func eventAddr(b [16]uint8) netip.Addr {
	return netip.AddrFrom16(b).Unmap()
}

func cString(b [16]int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
