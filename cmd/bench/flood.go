package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// flood sends small UDP datagrams to a closed port as fast as its senders can: each one
// the receiver gets is a NO_SOCKET drop (kfree_skb) and one more Udp NoPorts. Its sockets
// are unconnected, so the ICMP port unreachables coming back (rate limited by the kernel)
// never stop a send.
type flood struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	sent atomic.Uint64
	mu   sync.Mutex
	err  error // the first send error other than a full buffer
}

// floodBatch datagrams go to the kernel in one sendmmsg: the syscall's cost is shared.
const floodBatch = 64

// floodSpec says where a flood goes and how it is sent.
type floodSpec struct {
	// From is the namespace the senders' sockets are opened in (empty: the caller's).
	From string
	// Src and Dst are the datagrams' addresses and ports. Src is used by raw senders only:
	// a UDP socket picks its own.
	Src, Dst netip.AddrPort
	// Senders is how many threads send, each from its own socket.
	Senders int
	// Raw sends prebuilt IPv4/UDP packets on an AF_PACKET socket on Iface, to DstMAC: the
	// sender skips its own UDP and IP layers, so the same CPUs make more drops at the
	// receiver, where the drop is the same NO_SOCKET.
	Raw    bool
	Iface  string
	DstMAC [6]byte
}

// startFlood opens the senders' sockets and sends from each, on a thread of its own,
// until Stop.
func startFlood(spec floodSpec) (*flood, error) {
	if !spec.Dst.Addr().Is4() || (spec.Raw && !spec.Src.Addr().Is4()) {
		return nil, fmt.Errorf("flood: %s -> %s is not IPv4", spec.Src, spec.Dst)
	}
	fds := make([]int, 0, spec.Senders)
	var ifindex int
	err := inNetns(spec.From, func() error {
		if spec.Raw {
			ifi, err := net.InterfaceByName(spec.Iface)
			if err != nil {
				return fmt.Errorf("flood interface: %w", err)
			}
			ifindex = ifi.Index
		}
		for range spec.Senders {
			var fd int
			var err error
			if spec.Raw {
				// Protocol 0: the socket receives nothing, it only sends.
				fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
				if err == nil {
					// Past the interface's qdisc, straight to the driver (veth has none anyway).
					_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
				}
			} else {
				fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			}
			if err != nil {
				return fmt.Errorf("flood socket: %w", err)
			}
			fds = append(fds, fd)
			// A full send buffer would block, not drop: room for a few batches in flight.
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		}
		return nil
	})
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	f := &flood{}
	for _, fd := range fds {
		f.wg.Add(1)
		if spec.Raw {
			to := &unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(unix.ETH_P_IP), Ifindex: int32(ifindex), Halen: 6}
			copy(to.Addr[:], spec.DstMAC[:])
			go f.send(fd, unsafe.Pointer(to), unix.SizeofSockaddrLinklayer, udpPacket(spec.Src, spec.Dst, payload), spec.Dst)
		} else {
			to := &unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(spec.Dst.Port()), Addr: spec.Dst.Addr().As4()}
			go f.send(fd, unsafe.Pointer(to), unix.SizeofSockaddrInet4, []byte(payload), spec.Dst)
		}
	}
	return f, nil
}

const payload = "packetmortem-bench flood"

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// udpPacket is an IPv4 header and a UDP header with no checksum (allowed over IPv4, and
// nothing for the receiver to verify), then the payload.
func udpPacket(src, dst netip.AddrPort, payload string) []byte {
	n := 20 + 8 + len(payload)
	p := make([]byte, n)
	p[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	p[6] = 0x40 // don't fragment
	p[8] = 64   // TTL
	p[9] = unix.IPPROTO_UDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], src.Port())
	binary.BigEndian.PutUint16(p[22:], dst.Port())
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

// send sends batches of the same datagram to the address at to until Stop.
func (f *flood) send(fd int, to unsafe.Pointer, toLen uint32, datagram []byte, dst netip.AddrPort) {
	defer f.wg.Done()
	defer unix.Close(fd)
	// One thread per sender, so that senders run in parallel on as many CPUs.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	iov := unix.Iovec{Base: &datagram[0]}
	iov.SetLen(len(datagram))
	msgs := make([]unix.Mmsghdr, floodBatch)
	for i := range msgs {
		msgs[i].Hdr.Name = (*byte)(to)
		msgs[i].Hdr.Namelen = toLen
		msgs[i].Hdr.Iov = &iov
		msgs[i].Hdr.SetIovlen(1)
	}
	for !f.stop.Load() {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), floodBatch, 0, 0, 0)
		switch errno {
		case 0:
			f.sent.Add(uint64(n))
		case unix.ENOBUFS, unix.EAGAIN, unix.EINTR, unix.ECONNREFUSED:
		default:
			f.mu.Lock()
			if f.err == nil {
				f.err = fmt.Errorf("flood sendmmsg to %s: %w", dst, errno)
			}
			f.mu.Unlock()
			return
		}
	}
	runtime.KeepAlive(datagram)
	runtime.KeepAlive(to)
}

// Err is the first error a sender hit, which ended it; nil while every sender runs.
func (f *flood) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Stop ends the senders and returns the first error one of them hit.
func (f *flood) Stop() error {
	f.stop.Store(true)
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// inNetns runs fn on a locked OS thread that entered namespace ns (empty: the caller's).
// Sockets fn opens belong to ns; the thread dies with its goroutine, so no other goroutine
// ever runs in the wrong namespace.
func inNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// noPorts reads Udp NoPorts of one namespace: datagrams to a port nobody listens on, each
// one dropped. It is the kernel's own count, read without BPF, so the flood's rate is
// measured the same way whatever tracer runs.
type noPorts struct{ f *os.File }

// openNoPorts opens /proc/net/snmp of namespace ns: the file stays bound to the namespace
// it was opened in.
func openNoPorts(ns string) (*noPorts, error) {
	var f *os.File
	err := inNetns(ns, func() error {
		var err error
		f, err = os.Open("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open /proc/net/snmp of %s: %w", ns, err)
	}
	return &noPorts{f: f}, nil
}

// Read returns the counter now. Each read starts at offset 0, which makes the kernel
// print the file afresh.
func (n *noPorts) Read() (uint64, error) {
	b, err := io.ReadAll(io.NewSectionReader(n.f, 0, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("read /proc/net/snmp: %w", err)
	}
	return snmpCounter(b, "Udp", "NoPorts")
}

func (n *noPorts) Close() error { return n.f.Close() }
