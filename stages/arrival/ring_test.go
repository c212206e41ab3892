package arrival

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// A packet longer than a ring frame keeps its first kernelSnap bytes and its length: the
// report and the pcap say how long it was.
func TestCaptureLongPacket(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	port := testns.Port()
	flow := evidence.Flow{Addr: netip.MustParseAddr("127.0.0.1"), Port: port, Proto: evidence.UDP}
	pcap := filepath.Join(t.TempDir(), "long.pcap")
	c := start(t, p.Server, Config{Flow: flow, Ifaces: []string{"lo"}, PcapPath: pcap})
	const payload = 30000 // lo's MTU is 65536: one packet, longer than a frame
	testns.Do(t, p.Server, func() {
		conn, err := net.Dial("udp4", netip.AddrPortFrom(flow.Addr, port).String())
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if _, err := conn.Write(make([]byte, payload)); err != nil {
			t.Error(err)
		}
	})
	waitPackets(t, c, 1)
	a := c.Stop()
	if len(a.Packets) != 1 || a.Packets[0].Length != payload+28 || a.Packets[0].Dst.Port() != port {
		t.Fatalf("packets %+v, want one of %d bytes to port %d", a.Packets, payload+28, port)
	}
	want := fmt.Sprintf("%d|%d|%d", payload+28+sll2Len, Snaplen, port)
	if lines := tshark(t, pcap, "frame.len", "frame.cap_len", "udp.dstport"); len(lines) != 1 || lines[0] != want {
		t.Errorf("tshark reads %q, want %q (length, captured length, port)", lines, want)
	}
}

// When the reader falls behind by more than the ring holds, the packets
// the kernel could not queue are counted, and the count adds up with the packets read to what was sent.
func TestCaptureRingFull(t *testing.T) {
	checkFDs(t)
	p := testns.NewPair(t, "ar")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}
	stall := newStall()
	// tcx: a ring buffer of 64 KiB holds 39 records of packets this small.
	c := start(t, p.Server, Config{Flow: flow, OnPacket: stall.onPacket, ringSize: 64 << 10})
	dst := netip.AddrPortFrom(flow.Addr, flow.Port)
	testns.SendDatagrams(t, p.Client, dst, 1)
	stall.wait(t)
	const more = ringFrames + 100
	testns.SendDatagrams(t, p.Client, dst, more)
	time.Sleep(200 * time.Millisecond) // in the ring, or dropped, by now
	stall.release()
	if testMethod == MethodSocket {
		waitPackets(t, c, ringFrames)
	}
	time.Sleep(50 * time.Millisecond)
	a := c.Stop()
	if a.SocketDrops == 0 || uint64(a.In)+a.SocketDrops != 1+more {
		t.Errorf("in %d, socket drops %d: want drops, and %d in all", a.In, a.SocketDrops, 1+more)
	}
}
