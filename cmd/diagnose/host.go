package main

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// currentNetns identifies the namespace diagnose runs in, and its name when `ip netns`
// gave it one, so drops elsewhere on the host can be told apart.
func currentNetns() evidence.Netns {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return evidence.Netns{}
	}
	ns := evidence.Netns{Inode: st.Ino}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		var s unix.Stat_t
		if unix.Stat(filepath.Join("/run/netns", e.Name()), &s) == nil && s.Ino == st.Ino {
			ns.Name = e.Name()
			break
		}
	}
	return ns
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
	n := 0
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (strings.HasPrefix(target, "anon_inode:bpf-prog") || strings.HasPrefix(target, "anon_inode:bpf_link")) {
			n++
		}
	}
	return n
}
