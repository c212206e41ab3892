package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// targetNetns identifies the namespace diagnosed (h's, or nil: the one diagnose runs in),
// and its name when `ip netns` gave it one, so drops elsewhere on the host can be told
// apart.
func targetNetns(h *netns.Handle) evidence.Netns {
	if h != nil {
		// Another namespace: named by who holds it when `ip netns` did not name it.
		return evidence.Netns{Inode: h.Inode, Name: netns.NewOwners().Describe(h.Inode)}
	}
	inode := netns.Own()
	return evidence.Netns{Inode: inode, Name: netns.Names()[inode]}
}

// openTarget opens the namespace --netns or --container names (nil: diagnose's own), with
// the container's description for --container.
func openTarget(o *options) (*netns.Handle, string, error) {
	switch {
	case o.container != "":
		path, desc, err := netns.NewOwners().Container(o.container)
		if err != nil {
			return nil, "", usageErrorf("--container: %v", err)
		}
		h, err := netns.Open(path)
		if err != nil {
			return nil, "", usageErrorf("--container %s: %v", o.container, err)
		}
		return h, desc, nil
	case o.netnsSpec != "":
		h, err := openNetns(o.netnsSpec)
		return h, "", err
	}
	return nil, "", nil
}

// openNetns opens --netns: a name under /run/netns, a path, or pid:N.
func openNetns(spec string) (*netns.Handle, error) {
	path := spec
	if pid, ok := strings.CutPrefix(spec, "pid:"); ok {
		if n, err := strconv.Atoi(pid); err != nil || n <= 0 {
			return nil, usageErrorf("--netns %q: pid:N wants a process id", spec)
		}
		path = "/proc/" + pid + "/ns/net"
	}
	h, err := netns.Open(path)
	if err != nil {
		return nil, usageErrorf("--netns %q: %v (list the named ones with `ip netns`; a container's is /proc/PID/ns/net of one of its processes)", spec, err)
	}
	return h, nil
}

func hostInfo(ns evidence.Netns) report.Host {
	h := report.Host{Netns: ns}
	h.Hostname, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	return h
}

// openBPFObjects counts the BPF programs and links this process still holds.
func openBPFObjects() int {
	open := bpfrt.OpenObjects()
	return open[bpfrt.Prog] + open[bpfrt.Link]
}
