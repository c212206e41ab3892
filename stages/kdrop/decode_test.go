package kdrop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/kallsyms"
	"github.com/packetmortem/packetmortem/internal/ktime"
)

// The Go type bpf2go generated has the size of the C struct the program writes.
// Addresses of functions in the kallsyms fixture (internal/kallsyms/testdata).
const (
	tcpV4Rcv  = 0xffffffff81a00010
	skbDrop   = 0xffffffff81b00000
	ipDeliver = 0xffffffff81b00200
	bpfProg   = 0xffffffffc0400000
)

func TestEventSizeMatchesBTF(t *testing.T) {
	t.Parallel()
	spec, err := bpf.LoadKdrop()
	if err != nil {
		t.Fatal(err)
	}
	var ev *btf.Struct
	if err := spec.Types.TypeByName("event", &ev); err != nil {
		t.Fatal(err)
	}
	if int(ev.Size) != eventSize {
		t.Errorf("struct event is %d bytes in the object, Go decodes %d", ev.Size, eventSize)
	}
}

func mapped(s string) [16]uint8 { return netip.MustParseAddr(s).As16() }

func sampleEvent() bpf.KdropEvent {
	ev := bpf.KdropEvent{
		KtimeNs:    5_000_000_000,
		Location:   tcpV4Rcv + 0x91,
		StackDepth: 4,
		Reason:     7,
		Netns:      4026532000,
		Ifindex:    2,
		NetnsFrom:  bpf.KdropNetnsSourceNETNS_DEV,
		Saddr:      mapped("198.51.100.1"),
		Daddr:      mapped("198.51.100.2"),
		Sport:      40000,
		Dport:      8080,
		Family:     4,
		Proto:      6,
		TcpFlags:   0x02,
	}
	copy(ev.Stack[:], []uint64{bpfProg + 0x40, skbDrop + 0x50, tcpV4Rcv + 0x91, ipDeliver + 0x30, 0xdead})
	return ev
}

func TestDecodeEvent(t *testing.T) {
	t.Parallel()
	want := sampleEvent()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, &want); err != nil {
		t.Fatal(err)
	}
	// The ring buffer pads records to 8 bytes: trailing bytes are ignored.
	buf.Write(make([]byte, 8))
	got, err := decodeEvent(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("decoded %+v\nwant %+v", got, want)
	}
	if _, err := decodeEvent(buf.Bytes()[:eventSize-1]); err == nil {
		t.Error("short record decoded")
	}
}

func TestNamerDrop(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../internal/kallsyms/testdata/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ev := sampleEvent()
	syms, err := kallsyms.Parse(f, addresses([]bpf.KdropEvent{ev}))
	if err != nil {
		t.Fatal(err)
	}
	reasons, err := reasonsFromBTF(fakeBTF(t, fakeCore, fakeSubsys))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	n := &namer{
		reasons: reasons,
		syms:    syms,
		netns: func(i uint64) string {
			return map[uint64]string{4026532000: "server", 4026532999: "container web (docker, id 1965e06dc668)"}[i]
		},
		published: func(i uint64) []string {
			return map[uint64][]string{4026532999: {"8080->80/tcp"}}[i]
		},
		target: 4026532000,
		own:    4026532000,
		clock:  ktime.MonoAt(base, 4_000_000_000),
		ifname: func(i int) string { return fmt.Sprintf("if%d", i) },
	}
	d := n.drop(&ev)
	if d.Reason != "NO_SOCKET" || d.ReasonCode != 7 {
		t.Errorf("reason %q %d", d.Reason, d.ReasonCode)
	}
	if d.Location != "tcp_v4_rcv+0x91" || d.Function != "tcp_v4_rcv" {
		t.Errorf("location %q function %q", d.Location, d.Function)
	}
	if !d.Time.Equal(base.Add(time.Second)) {
		t.Errorf("time %v, want %v", d.Time, base.Add(time.Second))
	}
	if d.Netns != 4026532000 || d.NetnsName != "server" || d.Elsewhere || d.Published != nil {
		t.Errorf("netns %d %q elsewhere=%v published %q", d.Netns, d.NetnsName, d.Elsewhere, d.Published)
	}
	if d.Ifindex != 2 || d.Iface != "if2" {
		t.Errorf("ifindex %d iface %q", d.Ifindex, d.Iface)
	}
	if d.Src.String() != "198.51.100.1:40000" || d.Dst.String() != "198.51.100.2:8080" {
		t.Errorf("src %v dst %v", d.Src, d.Dst)
	}
	if d.Flags != "S" {
		t.Errorf("flags %q", d.Flags)
	}
	// StackDepth bounds the frames read; the tracing frames go.
	if want := []string{"tcp_v4_rcv+0x91", "ip_protocol_deliver_rcu+0x30"}; !slices.Equal(d.Stack, want) {
		t.Errorf("stack %q, want %q", d.Stack, want)
	}

	// Another namespace: elsewhere, and its ifindex is not ours to name; its container's
	// published ports come with it.
	ev.Netns = 4026532999
	d = n.drop(&ev)
	if !d.Elsewhere || d.NetnsName != "container web (docker, id 1965e06dc668)" || d.Iface != "" || d.Ifindex != 2 {
		t.Errorf("elsewhere %v name %q iface %q ifindex %d", d.Elsewhere, d.NetnsName, d.Iface, d.Ifindex)
	}
	if want := []string{"8080->80/tcp"}; !slices.Equal(d.Published, want) {
		t.Errorf("published %q, want %q", d.Published, want)
	}

	// The diagnosed namespace, but not the one this process runs in (tests, mostly).
	ev.Netns = 4026532000
	n.own = 1
	if d = n.drop(&ev); d.Iface != "" || d.Elsewhere {
		t.Errorf("iface %q named from the wrong namespace", d.Iface)
	}

	// IPv6 and UDP, nothing resolvable.
	ev = sampleEvent()
	ev.Family, ev.Proto, ev.TcpFlags = 6, 17, 0
	ev.Saddr, ev.Daddr = mapped("2001:db8::1"), mapped("2001:db8::2")
	ev.Reason = 0x20003
	ev.Location = 0x1234
	bare := &namer{target: 4026532000}
	d = bare.drop(&ev)
	if d.Src.String() != "[2001:db8::1]:40000" || d.Flags != "" || d.Reason != "2:3" || d.Location != "0x1234" || d.Function != "" {
		t.Errorf("bare drop %+v", d)
	}
	if len(d.Stack) != 4 || !strings.HasPrefix(d.Stack[0], "0x") {
		t.Errorf("bare stack %q", d.Stack)
	}
}

func TestTCPFlags(t *testing.T) {
	t.Parallel()
	for f, want := range map[uint8]string{
		0x02: "S", 0x12: "S.", 0x18: "P.", 0x11: "F.", 0x04: "R", 0x14: "R.",
		0x10: ".", 0x00: "none", 0xc2: "SEW", 0x19: "FP.",
	} {
		if got := TCPFlags(f); got != want {
			t.Errorf("TCPFlags(%#x) = %q, want %q", f, got, want)
		}
	}
}
