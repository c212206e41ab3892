package main

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// currentNetns identifies the namespace diagnose runs in, and its name when `ip netns`
// gave it one, so drops elsewhere on the host can be told apart.
func currentNetns() evidence.Netns {
	inode := netns.Own()
	return evidence.Netns{Inode: inode, Name: netns.Names()[inode]}
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
