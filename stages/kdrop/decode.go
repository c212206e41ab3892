package kdrop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/kallsyms"
	"github.com/packetmortem/packetmortem/internal/ktime"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// eventSize is the size of struct event, as the generated Go type lays it out; a test
// checks it against the object's BTF.
var eventSize = binary.Size(bpf.KdropEvent{})

// decodeEvent reads one ring buffer record. The program writes in the host's byte order.
func decodeEvent(raw []byte) (bpf.KdropEvent, error) {
	var ev bpf.KdropEvent
	if len(raw) < eventSize {
		return ev, fmt.Errorf("short kfree_skb event: %d bytes, want %d", len(raw), eventSize)
	}
	err := binary.Read(bytes.NewReader(raw[:eventSize]), binary.NativeEndian, &ev)
	return ev, err
}

// namer turns raw events into evidence, with whatever the kernel let us read: each
// resolver may be nil, and then the raw number is reported.
type namer struct {
	reasons *Reasons
	syms    *kallsyms.Symbols
	netns   func(inode uint64) string // a namespace's name (netns.Owners.Describe), "" when unknown
	// published are the ports a namespace's container publishes (netns.Owners.Published).
	published func(inode uint64) []string
	// target is the namespace being diagnosed; own the one this process runs in.
	target, own uint64
	clock       ktime.Mono
	ifname      func(ifindex int) string
}

func (n *namer) drop(ev *bpf.KdropEvent) evidence.Drop {
	d := evidence.Drop{
		Time:        n.clock.Wall(ev.KtimeNs),
		Reason:      n.reasons.Name(ev.Reason),
		ReasonCode:  ev.Reason,
		Location:    n.syms.Format(ev.Location),
		Netns:       uint64(ev.Netns),
		NetnsName:   n.nsName(uint64(ev.Netns)),
		Published:   n.nsPublished(uint64(ev.Netns)),
		Elsewhere:   uint64(ev.Netns) != n.target,
		Ifindex:     int(ev.Ifindex),
		Src:         netip.AddrPortFrom(eventAddr(ev.Saddr), ev.Sport),
		Dst:         netip.AddrPortFrom(eventAddr(ev.Daddr), ev.Dport),
		ByConntrack: ev.ViaCt != 0,
		Stack:       n.syms.Stack(ev.Stack[:min(int(ev.StackDepth), len(ev.Stack))]),
	}
	if name, _, _, ok := n.syms.Lookup(ev.Location); ok {
		d.Function = name
	}
	if ev.Proto == evidence.TCP.Number() {
		d.Flags = TCPFlags(ev.TcpFlags)
	}
	// An ifindex only means something in its own namespace; the kernel reuses numbers.
	if d.Ifindex != 0 && !d.Elsewhere && d.Netns == n.own && n.ifname != nil {
		d.Iface = n.ifname(d.Ifindex)
	}
	return d
}

// addresses are the kernel addresses the events name: where each drop was, and its stack.
func addresses(events []bpf.KdropEvent) []uint64 {
	var out []uint64
	for i := range events {
		ev := &events[i]
		out = append(out, ev.Location)
		out = append(out, ev.Stack[:min(int(ev.StackDepth), len(ev.Stack))]...)
	}
	return out
}

func (n *namer) nsName(inode uint64) string {
	if n.netns == nil || inode == 0 {
		return ""
	}
	return n.netns(inode)
}

func (n *namer) nsPublished(inode uint64) []string {
	if n.published == nil || inode == 0 {
		return nil
	}
	return n.published(inode)
}

// eventAddr reads the program's 16-byte address, IPv4 being mapped (::ffff:a.b.c.d).
func eventAddr(b [16]uint8) netip.Addr {
	return netip.AddrFrom16(b).Unmap()
}

// TCPFlags prints TCP flags in tcpdump's letters and order: S, S., P., F., R., "." alone
// for a bare ACK.
func TCPFlags(f uint8) string {
	letters := []struct {
		bit    uint8
		letter byte
	}{
		{0x01, 'F'}, {0x02, 'S'}, {0x04, 'R'}, {0x08, 'P'},
		{0x10, '.'}, {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'},
	}
	var b strings.Builder
	for _, l := range letters {
		if f&l.bit != 0 {
			b.WriteByte(l.letter)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}
