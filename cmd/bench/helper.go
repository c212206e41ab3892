package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// helperArg as the first argument makes the bench (and its test binary) a small helper that
// a tracer runs as its workload: the tracer starts it once armed.
const helperArg = "pmbench-helper"

// stampPrefix starts the line the stamp helper writes: CLOCK_MONOTONIC in ns when it ran.
const stampPrefix = "pmbench-stamp "

// helperCommand is the command line that runs helper with args.
func helperCommand(args ...string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the bench's own executable for its helper: %w", err)
	}
	return append([]string{self, helperArg}, args...), nil
}

// runHelper runs a helper and returns its exit status:
//
//	stamp [HOLD]                       write "pmbench-stamp NS" to stderr; then stay HOLD long
//	send NETNS ADDR:PORT COUNT EVERY   send COUNT UDP datagrams from NETNS, EVERY apart
//	floor tap-floor|kfree-floor HOLD   arm a floor, write the stamp, hold it HOLD long
func runHelper(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "helper: no command")
		return 2
	}
	switch {
	case args[0] == "stamp" && len(args) <= 2:
		// First, so that the stamp is as close to exec as Go allows.
		fmt.Fprintf(stderr, "%s%d\n", stampPrefix, monotonic().Nanoseconds())
		if len(args) == 2 {
			hold, err := time.ParseDuration(args[1])
			if err != nil {
				fmt.Fprintln(stderr, "helper stamp:", err)
				return 2
			}
			// Held by a tracer that is itself ended: go with it, never linger.
			_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
			if os.Getppid() == 1 {
				return 0
			}
			time.Sleep(hold)
		}
		return 0
	case args[0] == "floor" && len(args) == 3:
		hold, err := time.ParseDuration(args[2])
		if err != nil {
			fmt.Fprintln(stderr, "helper floor:", err)
			return 2
		}
		return runFloor(args[1], hold, stderr)
	case args[0] == "send" && len(args) == 5:
		to, err1 := netip.ParseAddrPort(args[2])
		count, err2 := strconv.Atoi(args[3])
		every, err3 := time.ParseDuration(args[4])
		if err1 != nil || err2 != nil || err3 != nil || !to.Addr().Is4() {
			fmt.Fprintf(stderr, "helper send: bad arguments %q\n", args[1:])
			return 2
		}
		sent, err := sendDatagrams(args[1], to, count, every)
		fmt.Fprintf(stderr, "pmbench-sent %d\n", sent)
		if err != nil {
			fmt.Fprintln(stderr, "helper send:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "helper: bad command %q\n", args)
	return 2
}

// sendDatagrams sends count datagrams to a closed port from namespace ns, every apart, from
// one unconnected socket: the ICMP errors coming back cannot fail a send. It returns how
// many the kernel took.
func sendDatagrams(ns string, to netip.AddrPort, count int, every time.Duration) (int, error) {
	var fd int
	err := inNetns(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("socket in %s: %w", ns, err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}
	for i := range count {
		if i > 0 {
			time.Sleep(every)
		}
		if err := unix.Sendto(fd, []byte("packetmortem-bench flow"), 0, sa); err != nil {
			return i, fmt.Errorf("datagram %d to %s: %w", i+1, to, err)
		}
	}
	return count, nil
}
