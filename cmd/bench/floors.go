package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// runFloor arms one floor (tcxFloor, tapFloor or kfreeFloor), writes the stamp line, and holds it
// until SIGINT, SIGTERM, hold or its parent's end.
func runFloor(which string, hold time.Duration, stderr io.Writer) int {
	var armed io.Closer
	var err error
	switch which {
	case tcxFloor:
		armed, err = armTCX()
	case tapFloor:
		armed, err = armTap()
	case kfreeFloor:
		armed, err = armKfree()
	case hooksFloor:
		armed, err = armHooks()
	default:
		err = fmt.Errorf("no floor %q", which)
	}
	if err != nil {
		fmt.Fprintln(stderr, "helper floor:", err)
		return 1
	}
	defer armed.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "%s%d\n", stampPrefix, monotonic().Nanoseconds())
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0)
	if os.Getppid() == 1 {
		return 0
	}
	select {
	case <-ctx.Done():
	case <-time.After(hold):
	}
	return 0
}

// fdCloser closes a file descriptor.
type fdCloser int

func (fd fdCloser) Close() error { return unix.Close(int(fd)) }

// armTap opens what any AF_PACKET capture of the namespace opens, as diagnose's does: a
// cooked packet socket of every protocol on every interface, whose classic filter here
// refuses each packet at its first instruction. What it costs is the tap itself: the
// kernel hands every packet to the socket and runs the filter.
func armTap() (io.Closer, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	// The filter goes on before the bind: a bound socket queues packets until it has one.
	refuse := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &refuse[0]}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach the filter: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind the packet socket: %w", err)
	}
	return fdCloser(fd), nil
}

// kfreeProgram is attached and its program, closed together.
type kfreeProgram struct {
	prog *ebpf.Program
	link link.Link
}

func (k kfreeProgram) Close() error {
	err := k.link.Close()
	k.prog.Close()
	return err
}

// armKfree attaches a program that returns at once to tp_btf/kfree_skb, as diagnose's is:
// what it costs is the tracepoint calling a BPF program on every drop of the host.
func armKfree() (io.Closer, error) { return armEmptyTracepoint("kfree_skb", "kfree_floor") }

// armEmptyTracepoint attaches a program that returns at once, named progName, to
// tp_btf/name.
func armEmptyTracepoint(name, progName string) (io.Closer, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         progName,
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     name,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return nil, fmt.Errorf("load the empty %s program: %w", name, err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("attach the empty %s program: %w", name, err)
	}
	return kfreeProgram{prog, l}, nil
}

// armHooks attaches empty programs everywhere diagnose hooks every packet at once: tcx
// on the namespace's interfaces, tp_btf/kfree_skb and tp_btf/net_dev_queue (where it
// learns translations). Under the flood through NAT each datagram crosses more of these
// hooks than under the plain flood (it leaves by a veth): their difference is what any
// tool that captures, watches drops and follows translations there pays at the least.
func armHooks() (_ io.Closer, err error) {
	var cs closers
	defer func() {
		if err != nil {
			cs.Close()
		}
	}()
	for _, arm := range []func() (io.Closer, error){armTCX, armKfree, func() (io.Closer, error) { return armEmptyTracepoint("net_dev_queue", "xmit_floor") }} {
		c, err := arm()
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// closers closes each in turn.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		errs = append(errs, cs[i].Close())
	}
	return errors.Join(errs...)
}

// armTCX attaches a program that returns at once (TCX_NEXT) where diagnose's capture
// attaches its own: ingress and egress of each interface of the namespace, ingress only on
// loopback. What it costs is tcx calling a BPF program on every packet.
func armTCX() (_ io.Closer, err error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "tcx_floor",
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
	})
	if err != nil {
		return nil, fmt.Errorf("load the empty tcx program: %w", err)
	}
	cs := closers{prog}
	defer func() {
		if err != nil {
			cs.Close()
		}
	}()
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifs {
		dirs := []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress}
		if i.Flags&net.FlagLoopback != 0 {
			dirs = dirs[:1]
		}
		for _, at := range dirs {
			l, err := link.AttachTCX(link.TCXOptions{Program: prog, Attach: at, Interface: i.Index})
			if err != nil {
				return nil, fmt.Errorf("attach the empty tcx program to %s: %w", i.Name, err)
			}
			cs = append(cs, l)
		}
	}
	return cs, nil
}
