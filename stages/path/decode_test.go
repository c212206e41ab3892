package path

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/ktime"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// The Go type bpf2go generated has the size of the C struct the programs write.
func TestEventSizeMatchesBTF(t *testing.T) {
	t.Parallel()
	spec, err := bpf.LoadPath()
	if err != nil {
		t.Fatal(err)
	}
	var ev *btf.Struct
	if err := spec.Types.TypeByName("event", &ev); err != nil {
		t.Fatal(err)
	}
	if int(ev.Size) != eventSize || eventSize != 128 {
		t.Errorf("struct event is %d bytes in the object, Go decodes %d, path.h asserts 128", ev.Size, eventSize)
	}
}

const (
	target = 4026532000 // the diagnosed namespace
	other  = 4026532999 // a client's
	own    = 4026531840 // the test process's
)

func ifname(s string) [16]int8 {
	var b [16]int8
	for i := 0; i < len(s) && i < 15; i++ {
		b[i] = int8(s[i])
	}
	return b
}

func addr(s string) [16]uint8 { return netip.MustParseAddr(s).As16() }

func v4mapped(s string) [16]uint8 {
	return netip.AddrFrom16(netip.MustParseAddr("::ffff:" + s).As16()).As16()
}

func receiveEvent() bpf.PathEvent {
	return bpf.PathEvent{
		KtimeNs:   5_000_000_000,
		Point:     bpf.PathPointPOINT_RECEIVE,
		NetnsFrom: bpf.PathNetnsSourceNETNS_DEV,
		Match:     bpf.PathMatchMATCH_HEADERS,
		Netns:     target,
		Ifindex:   7,
		Ifname:    ifname("veth0"),
		Saddr:     v4mapped("198.51.100.1"),
		Daddr:     v4mapped("198.51.100.2"),
		Sport:     40000,
		Dport:     8080,
		Family:    4,
		Proto:     6,
		TcpFlags:  0x02,
	}
}

func encode(t *testing.T, ev bpf.PathEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, &ev); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeEvent(t *testing.T) {
	t.Parallel()
	want := receiveEvent()
	want.Gateway = addr("2001:db8::ff")
	want.Err = -11
	want.RstReason = 1
	raw := encode(t, want)
	// The ring buffer pads records to 8 bytes: trailing bytes are ignored.
	got, err := decodeEvent(append(raw, make([]byte, 8)...))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("decoded %+v\nwant %+v", got, want)
	}
	if _, err := decodeEvent(raw[:eventSize-1]); err == nil {
		t.Error("short record decoded")
	}
	bad := want
	bad.Point = bpf.PathPointPOINT_COUNT
	if _, err := decodeEvent(encode(t, bad)); err == nil || !strings.Contains(err.Error(), "unknown point 8") {
		t.Errorf("unknown point: %v", err)
	}
}

func testNamer(t *testing.T) *namer {
	t.Helper()
	clock, err := ktime.NewMono()
	if err != nil {
		t.Fatal(err)
	}
	return &namer{
		target: target,
		own:    own,
		clock:  clock,
		ifname: func(i int) string { return fmt.Sprintf("own%d", i) },
		learnt: map[ifaceKey]string{{target, 7}: "veth0"},
	}
}

func TestNamerEvent(t *testing.T) {
	t.Parallel()
	n := testNamer(t)
	src := netip.MustParseAddrPort("198.51.100.1:40000")
	dst := netip.MustParseAddrPort("198.51.100.2:8080")
	for _, tc := range []struct {
		name string
		edit func(*bpf.PathEvent)
		want evidence.PathEvent
	}{
		{"receive", func(*bpf.PathEvent) {},
			evidence.PathEvent{Point: evidence.PointReceive, Netns: target, Iface: "veth0", Src: src, Dst: dst, Flags: "S"}},
		{"receive elsewhere, UDP", func(e *bpf.PathEvent) { e.Netns, e.Proto, e.TcpFlags = other, 17, 0 },
			evidence.PathEvent{Point: evidence.PointReceive, Netns: other, Elsewhere: true, Iface: "veth0", Src: src, Dst: dst}},
		{"input route lookup", func(e *bpf.PathEvent) {
			e.Point, e.Match, e.Table, e.Iif, e.Oif = bpf.PathPointPOINT_ROUTE, bpf.PathMatchMATCH_RECEIVED, 254, 7, 0
			e.Ifname, e.Ifindex = ifname("veth0"), 7
		}, evidence.PathEvent{Point: evidence.PointRoute, Netns: target, Src: src, Dst: dst, Table: 254, Iif: "veth0", Oif: "veth0"}},
		{"output lookup via a gateway", func(e *bpf.PathEvent) {
			e.Point, e.Match, e.Table, e.Iif = bpf.PathPointPOINT_ROUTE, bpf.PathMatchMATCH_LOOKUP, 254, 1
			e.Ifname, e.Ifindex, e.GwFamily = ifname("eth1"), 3, afInet
			copy(e.Gateway[:], []byte{203, 0, 113, 1})
		}, evidence.PathEvent{Point: evidence.PointRoute, Netns: target, Src: src, Dst: dst, Table: 254, Oif: "eth1", Gateway: "203.0.113.1"}},
		{"IPv6 lookup with an IPv6 gateway, failed", func(e *bpf.PathEvent) {
			e.Point, e.Match, e.Table, e.Err = bpf.PathPointPOINT_ROUTE6, bpf.PathMatchMATCH_LOOKUP, 255, -113
			e.Ifname, e.Ifindex, e.GwFamily, e.Gateway = [16]int8{}, 0, afInet6, addr("fe80::1")
		}, evidence.PathEvent{Point: evidence.PointRoute, Netns: target, Src: src, Dst: dst, Table: 255, Err: -113, Gateway: "fe80::1"}},
		{"our own namespace's index is named", func(e *bpf.PathEvent) {
			e.Point, e.Netns, e.Iif, e.Ifname, e.Ifindex = bpf.PathPointPOINT_ROUTE, own, 4, [16]int8{}, 5
		}, evidence.PathEvent{Point: evidence.PointRoute, Netns: own, Elsewhere: true, Src: src, Dst: dst, Iif: "own4", Oif: "own5", Flags: "S"}},
		{"another namespace's index is not", func(e *bpf.PathEvent) {
			e.Point, e.Netns, e.Iif, e.Ifname, e.Ifindex = bpf.PathPointPOINT_ROUTE, other, 4, [16]int8{}, 5
		}, evidence.PathEvent{Point: evidence.PointRoute, Netns: other, Elsewhere: true, Src: src, Dst: dst, Flags: "S"}},
		{"socket state", func(e *bpf.PathEvent) {
			e.Point, e.Match, e.OldState, e.NewState, e.Ifname, e.Ifindex = bpf.PathPointPOINT_SOCK_STATE, bpf.PathMatchMATCH_SOCKET, 3, 1, [16]int8{}, 0
		}, evidence.PathEvent{Point: evidence.PointSockState, Netns: target, Src: src, Dst: dst, OldState: "SYN_RECV", NewState: "ESTABLISHED"}},
		{"read", func(e *bpf.PathEvent) {
			e.Point, e.Len, e.TcpFlags, e.Ifname, e.Ifindex = bpf.PathPointPOINT_COPIED, 6, 0x18, [16]int8{}, 0
		}, evidence.PathEvent{Point: evidence.PointCopied, Netns: target, Src: src, Dst: dst, Flags: "P.", Length: 6}},
		{"icmp", func(e *bpf.PathEvent) {
			e.Point, e.Proto, e.TcpFlags, e.IcmpType, e.IcmpCode = bpf.PathPointPOINT_ICMP, 17, 0, 3, 3
		}, evidence.PathEvent{Point: evidence.PointICMP, Netns: target, Iface: "veth0", Src: src, Dst: dst, ICMPType: 3, ICMPCode: 3}},
		{"reset", func(e *bpf.PathEvent) { e.Point = bpf.PathPointPOINT_RESET },
			evidence.PathEvent{Point: evidence.PointReset, Netns: target, Iface: "veth0", Src: src, Dst: dst, Flags: "S"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := receiveEvent()
			tc.edit(&ev)
			got := n.event(&ev)
			if d := got.Time.Sub(n.clock.Wall(5_000_000_000)); d != 0 {
				t.Errorf("time off by %v", d)
			}
			got.Time = time.Time{}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Every event is counted by point and namespace; only the first MaxEvents are kept.
func TestAggregate(t *testing.T) {
	t.Parallel()
	a := newAggregate()
	const extra = 10
	for i := 0; i < MaxEvents+extra; i++ {
		ev := receiveEvent()
		ev.KtimeNs = uint64(i)
		if i%2 == 1 {
			ev.Netns, ev.Ifindex, ev.Ifname = other, 9, ifname("eth9")
		}
		a.add(ev, nil)
	}
	route := receiveEvent()
	route.Point, route.Err, route.NetnsFrom, route.Ifname, route.Ifindex = bpf.PathPointPOINT_ROUTE, -11, bpf.PathNetnsSourceNETNS_TASK, [16]int8{}, 0
	a.add(route, nil)
	unknown := receiveEvent()
	unknown.Point, unknown.Netns, unknown.RstReason = bpf.PathPointPOINT_RESET, 0, 1
	a.add(unknown, nil)
	a.add(bpf.PathEvent{}, fmt.Errorf("short path event"))
	a.add(bpf.PathEvent{}, fmt.Errorf("another"))

	if len(a.events) != MaxEvents || a.read != MaxEvents+extra+2 || a.bad != 2 {
		t.Fatalf("kept %d read %d bad %d", len(a.events), a.read, a.bad)
	}
	if a.ifnames[ifaceKey{other, 9}] != "eth9" || a.ifnames[ifaceKey{target, 7}] != "veth0" {
		t.Errorf("learnt names %v", a.ifnames)
	}

	n := testNamer(t)
	n.learnt = a.ifnames
	n.resets = &resetReasons{names: map[uint32]string{1: "NO_SOCKET"}}
	path := &evidence.Path{}
	a.describe(path, n, map[bpf.PathPoint]bpf.PathCounters{
		bpf.PathPointPOINT_ROUTE:   {Seen: 100, Matched: 1},
		bpf.PathPointPOINT_RECEIVE: {Seen: 2000, Matched: MaxEvents + extra + 3, Lost: 3},
	})
	if len(path.Events) != MaxEvents || path.Events[1].Iface != "eth9" || !path.Events[1].Elsewhere {
		t.Errorf("%d events, second %+v", len(path.Events), path.Events[1])
	}
	// In path order, the diagnosed namespace first.
	wantCounts := []evidence.PointCount{
		{Point: evidence.PointReceive, Netns: target, Events: (MaxEvents + extra) / 2},
		{Point: evidence.PointReceive, Netns: other, Elsewhere: true, Events: (MaxEvents + extra) / 2},
		{Point: evidence.PointRoute, Netns: target, Events: 1},
		{Point: evidence.PointReset, Netns: 0, Elsewhere: true, Events: 1},
	}
	if !slices.Equal(path.Counts, wantCounts) {
		t.Errorf("counts %+v\nwant   %+v", path.Counts, wantCounts)
	}
	if path.Lost != 3 {
		t.Errorf("lost %d", path.Lost)
	}
	for _, note := range []string{
		"events of the flow/all events per tracepoint: net:netif_receive_skb 525/2000, fib:fib_table_lookup 1/100",
		"3 events of the flow were lost: the ring buffer was full",
		"kept the first 512 of 524 events of the flow; counts cover all",
		"fib_table_lookup error -11 (EAGAIN) means no route in that table",
		"1 route lookups had neither a device nor a received packet to tell their namespace",
		"1 events had no device, socket or task to tell their namespace: marked elsewhere",
		"resets sent, by reason: NO_SOCKET 1",
		"2 path events could not be decoded: short path event",
	} {
		if !slices.ContainsFunc(path.Notes, func(s string) bool { return strings.HasPrefix(s, note) }) {
			t.Errorf("no note %q in %q", note, path.Notes)
		}
	}
	if path.Error != "" {
		t.Errorf("error %q", path.Error)
	}
}

func TestPointsFor(t *testing.T) {
	t.Parallel()
	names := func(pts []point) (s []string) {
		for _, pt := range pts {
			s = append(s, pt.tracepoint())
		}
		return s
	}
	tcp4 := evidence.Flow{Addr: netip.MustParseAddr("198.51.100.2"), Port: 80, Proto: evidence.TCP}
	got, missing := pointsFor(tcp4)
	if want := []string{"net:netif_receive_skb", "fib:fib_table_lookup", "sock:inet_sock_set_state", "sock:sk_data_ready",
		"skb:skb_copy_datagram_iovec", "tcp:tcp_send_reset", "icmp:icmp_send"}; !slices.Equal(names(got), want) || len(missing) != 0 {
		t.Errorf("tcp4: %q, missing %+v", names(got), missing)
	}
	udp6 := evidence.Flow{Addr: netip.MustParseAddr("2001:db8::2"), Port: 53, Proto: evidence.UDP}
	got, missing = pointsFor(udp6)
	if want := []string{"net:netif_receive_skb", "fib6:fib6_table_lookup", "sock:sk_data_ready", "skb:skb_copy_datagram_iovec"}; !slices.Equal(names(got), want) ||
		len(missing) != 1 || missing[0].Point != evidence.PointICMP {
		t.Errorf("udp6: %q, missing %+v", names(got), missing)
	}
	// Every point's programs exist in the object under the names used.
	spec, err := bpf.LoadPath()
	if err != nil {
		t.Fatal(err)
	}
	for id, pt := range pointByID {
		if pt.id != id || spec.Programs[pt.btf] == nil || spec.Programs[pt.tp] == nil {
			t.Errorf("point %d: %+v", id, pt)
		}
	}
	if len(pointByID) != int(bpf.PathPointPOINT_COUNT) {
		t.Errorf("%d points, the object has %d", len(pointByID), bpf.PathPointPOINT_COUNT)
	}
}

func TestTCPState(t *testing.T) {
	t.Parallel()
	for s, want := range map[uint8]string{1: "ESTABLISHED", 3: "SYN_RECV", 7: "CLOSE", 10: "LISTEN", 12: "NEW_SYN_RECV", 0: "STATE_0", 14: "STATE_14"} {
		if got := TCPState(s); got != want {
			t.Errorf("TCPState(%d) = %q, want %q", s, got, want)
		}
	}
}

// The state table is the running kernel's: its anonymous enum of TCP_ESTABLISHED... .
func TestTCPStatesMatchKernel(t *testing.T) {
	t.Parallel()
	spec := testns.KernelSpec(t)
	for typ, err := range spec.All() {
		if err != nil {
			t.Fatal(err)
		}
		e, ok := typ.(*btf.Enum)
		if !ok || e.Name != "" || !slices.ContainsFunc(e.Values, func(v btf.EnumValue) bool { return v.Name == "TCP_ESTABLISHED" }) {
			continue
		}
		for _, v := range e.Values {
			name, _ := strings.CutPrefix(v.Name, "TCP_")
			if name == "MAX_STATES" {
				continue
			}
			if got := TCPState(uint8(v.Value)); got != name {
				t.Errorf("kernel state %d is %s, TCPState says %s", v.Value, name, got)
			}
		}
		return
	}
	t.Error("no enum with TCP_ESTABLISHED in the kernel's BTF")
}

func fakeBTF(t *testing.T, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestResetReasons(t *testing.T) {
	t.Parallel()
	spec := fakeBTF(t, &btf.Enum{Name: "sk_rst_reason", Size: 4, Values: []btf.EnumValue{
		{Name: "SK_RST_REASON_NOT_SPECIFIED", Value: 0},
		{Name: "SK_RST_REASON_NO_SOCKET", Value: 5}, // unlike this kernel's 1: nothing hard-coded
		{Name: "SK_RST_REASON_MAX", Value: 6},
	}})
	r, err := resetReasonsFromBTF(spec)
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[uint32]string{0: "NOT_SPECIFIED", 5: "NO_SOCKET", 6: "REASON_6", 1: "REASON_1"} {
		if got := r.name(code); got != want {
			t.Errorf("name(%d) = %q, want %q", code, got, want)
		}
	}
	if _, err := resetReasonsFromBTF(fakeBTF(t, &btf.Int{Name: "int", Size: 4})); err == nil || !strings.Contains(err.Error(), "6.10") {
		t.Errorf("no enum: %v", err)
	}
}

// tracepointType is the btf_trace_<event> typedef a kernel with the tracepoint has, with
// the given arguments after the context pointer.
func tracepointType(event string, args ...btf.Type) *btf.Typedef {
	params := []btf.FuncParam{{Name: "__data", Type: &btf.Pointer{Target: &btf.Void{}}}}
	for i, a := range args {
		params = append(params, btf.FuncParam{Name: fmt.Sprintf("arg%d", i), Type: a})
	}
	return &btf.Typedef{Name: "btf_trace_" + event, Type: &btf.Pointer{Target: &btf.FuncProto{Return: &btf.Void{}, Params: params}}}
}

// The tracepoints a kernel lacks are told from its BTF, with the release that brought them.
func TestAbsentTracepoints(t *testing.T) {
	t.Parallel()
	sock := &btf.Pointer{Target: &btf.Struct{Name: "sock"}}
	older := fakeBTF(t, tracepointType("netif_receive_skb", sock), tracepointType("tcp_send_reset", sock, sock))
	if why := absent(older, pointReceive); why != "" {
		t.Errorf("netif_receive_skb absent: %s", why)
	}
	if why := absent(older, pointDataReady); !strings.Contains(why, "sock:sk_data_ready") || !strings.Contains(why, "6.3") {
		t.Errorf("sk_data_ready: %q, want it named absent, with its release", why)
	}
	if why := absent(older, pointSockState); why != "this kernel has no tracepoint sock:inet_sock_set_state" {
		t.Errorf("inet_sock_set_state: %q", why)
	}
	if why := absent(nil, pointDataReady); why != "" {
		t.Errorf("without BTF: %q, want nothing known", why)
	}
	if !resetsNeedSocket(older) {
		t.Error("a tcp_send_reset without a reason argument is the one that needs a socket")
	}
	reason := &btf.Enum{Name: "sk_rst_reason", Size: 4, Values: []btf.EnumValue{{Name: "SK_RST_REASON_NOT_SPECIFIED"}}}
	newer := fakeBTF(t, tracepointType("tcp_send_reset", sock, sock, reason))
	if resetsNeedSocket(newer) || resetsNeedSocket(nil) {
		t.Error("a tcp_send_reset with its reason argument (or an unknown one) needs no socket")
	}
}
