package arrival

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The capture reads the packets the filter accepts from a TPACKET_V2 ring that the kernel
// fills (PACKET_RX_RING), not with recvmsg. In the ring each packet carries the time the
// kernel took it, for the accepted packets only. recvmsg would need SO_TIMESTAMPNS for
// that, which turns on the timestamping of every packet the whole host receives
// (net_enable_timestamp): it cost a flood 1-3% of its rate on the project's machine, in
// every namespace, for a capture that keeps none of those packets.

const (
	// ringFrameSize holds one packet: its ring header, its address, then up to
	// ringFrameSize-ringNetOffset bytes of it from the network header on (a 9000-byte jumbo
	// frame whole; a GRO super-packet is cut, its length kept).
	ringFrameSize = 16 << 10
	ringBlockSize = 128 << 10
	ringBlocks    = 64 // 8 MiB, 512 frames: the burst the ring holds while the reader wakes
	ringFrames    = ringBlocks * (ringBlockSize / ringFrameSize)

	// ringAddrOffset is where the kernel writes the packet's sockaddr_ll in a frame
	// (TPACKET_ALIGN of the header), and ringNetOffset where a SOCK_DGRAM packet's network
	// header starts: TPACKET_ALIGN(TPACKET2_HDRLEN + 16), as tpacket_rcv computes it.
	ringAddrOffset = (unix.SizeofTpacket2Hdr + tpacketAlign - 1) &^ (tpacketAlign - 1)
	ringNetOffset  = (ringAddrOffset + unix.SizeofSockaddrLinklayer + 16 + tpacketAlign - 1) &^ (tpacketAlign - 1)
	tpacketAlign   = 16
)

// ring is the mapped TPACKET_V2 ring of a packet socket. Only the reader goroutine uses it.
type ring struct {
	mem  []byte
	next int // the frame the kernel fills after the last one read
}

// newRing switches fd to TPACKET_V2, asks for the ring and maps it.
func newRing(fd int) (*ring, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("select TPACKET_V2 for the capture ring: %w", err)
	}
	req := unix.TpacketReq{Block_size: ringBlockSize, Block_nr: ringBlocks, Frame_size: ringFrameSize, Frame_nr: ringFrames}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("set up the capture ring (%d MiB of kernel memory): %w", ringBlocks*ringBlockSize>>20, err)
	}
	mem, err := unix.Mmap(fd, 0, ringBlocks*ringBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the capture ring: %w", err)
	}
	return &ring{mem: mem}, nil
}

// frame is one packet the kernel handed over.
type frame struct {
	hdr     *unix.Tpacket2Hdr
	time    time.Time
	origLen int
	link    linkInfo
	data    []byte // from the network header on, valid until release
}

// take returns the next packet the kernel has handed over, if any. The status word is
// the handshake: the kernel sets TP_STATUS_USER once the frame is written, the reader
// sets TP_STATUS_KERNEL once it is done with it (release).
func (r *ring) take() (frame, bool) {
	f := r.mem[r.next*ringFrameSize : (r.next+1)*ringFrameSize]
	hdr := (*unix.Tpacket2Hdr)(unsafe.Pointer(&f[0]))
	if atomic.LoadUint32(&hdr.Status)&unix.TP_STATUS_USER == 0 {
		return frame{}, false
	}
	sa := (*unix.RawSockaddrLinklayer)(unsafe.Pointer(&f[ringAddrOffset]))
	link := linkInfo{
		ethertype: ntohs(sa.Protocol),
		ifindex:   int(sa.Ifindex),
		hatype:    sa.Hatype,
		pkttype:   sa.Pkttype,
		halen:     sa.Halen,
		addr:      sa.Addr,
	}
	start, end := int(hdr.Net), int(hdr.Net)+int(hdr.Snaplen)
	if start > len(f) || end > len(f) || start > end {
		start, end = 0, 0 // a frame the kernel cannot have written: keep its counts, no bytes
	}
	return frame{
		hdr:     hdr,
		time:    time.Unix(int64(hdr.Sec), int64(hdr.Nsec)),
		origLen: int(hdr.Len),
		link:    link,
		data:    f[start:end],
	}, true
}

// release hands the frame back to the kernel and moves on to the next.
func (r *ring) release(f frame) {
	atomic.StoreUint32(&f.hdr.Status, unix.TP_STATUS_KERNEL)
	r.next = (r.next + 1) % ringFrames
}

func (r *ring) close() error {
	if r == nil || r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}
