package netns_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/testns"
)

// A namespace opens by name, by path and by inode, to the same namespace; Do runs there
// and hands back fn's error and panic.
func TestHandle(t *testing.T) {
	t.Parallel()
	testns.RequirePrivileges(t)
	ns := testns.Name("nh")
	testns.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	want := testns.Inode(t, ns)

	for _, open := range []func() (*netns.Handle, error){
		func() (*netns.Handle, error) { return netns.Open(ns) },
		func() (*netns.Handle, error) { return netns.Open("/run/netns/" + ns) },
		func() (*netns.Handle, error) { return netns.OpenInode(want) },
	} {
		h, err := open()
		if err != nil {
			t.Fatal(err)
		}
		var in uint64
		if err := h.Do(func() error { in = netns.Own(); return nil }); err != nil {
			t.Fatal(err)
		}
		if h.Inode != want || in != want {
			t.Errorf("%s: inode %d, inside Do %d, want %d", h, h.Inode, in, want)
		}
		fail := errors.New("fn failed")
		if err := h.Do(func() error { return fail }); err != fail {
			t.Errorf("Do returned %v, want fn's error", err)
		}
		func() {
			defer func() {
				if r := recover(); fmt.Sprint(r) != "in the namespace" {
					t.Errorf("recovered %v, want fn's panic", r)
				}
			}()
			_ = h.Do(func() error { panic("in the namespace") })
		}()
		if err := h.Close(); err != nil {
			t.Error(err)
		}
		if err := h.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	// Not /proc/self: that is the main thread's, which a goroutine that locked it and
	// entered a namespace leaves there.
	self, err := netns.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if self.Inode != netns.Own() {
		t.Errorf("/proc/thread-self/ns/net is inode %d, Own says %d", self.Inode, netns.Own())
	}
}

// What is not a network namespace is refused, saying what is wanted.
func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	for path, why := range map[string]string{
		"/proc/self/ns/mnt":      "another kind of namespace",
		"/etc/hostname":          "not a namespace file",
		"/run/netns/pm-none-xyz": "no such file",
	} {
		h, err := netns.Open(path)
		if err == nil {
			h.Close()
			t.Errorf("Open(%s) succeeded", path)
			continue
		}
		if !strings.Contains(err.Error(), why) {
			t.Errorf("Open(%s): %v, want %q", path, err, why)
		}
	}
	if _, err := netns.OpenInode(1); err == nil || !strings.Contains(err.Error(), "no process is in it") {
		t.Errorf("OpenInode(1): %v", err)
	}
}

// A nil handle is the current namespace.
func TestNilHandle(t *testing.T) {
	t.Parallel()
	var h *netns.Handle
	ran := false
	if err := h.Do(func() error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("nil Do: ran %v, %v", ran, err)
	}
	if err := h.Close(); err != nil {
		t.Error(err)
	}
}

// Holding finds the namespace next to this one that has an address, IPv4 and IPv6, and
// not another that has the same address but is not joined to it.
func TestHolding(t *testing.T) {
	t.Parallel()
	testns.RequirePrivileges(t)
	from, next, apart := testns.Name("nhf"), testns.Name("nhn"), testns.Name("nha")
	for _, ns := range []string{from, next, apart} {
		testns.Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	testns.Run(t, "ip", "-n", from, "link", "add", "h0", "type", "veth", "peer", "name", "c0", "netns", next)
	// A device of its own in each (this kernel has no dummy driver).
	testns.Run(t, "ip", "-n", apart, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	a4, a6 := "203.0.113.77", "2001:db8:77::7"
	for _, at := range [][2]string{{next, "c0"}, {apart, "d0"}} {
		testns.Run(t, "ip", "-n", at[0], "addr", "add", a4+"/32", "dev", at[1])
		testns.Run(t, "ip", "-n", at[0], "addr", "add", a6+"/128", "dev", at[1], "nodad")
	}
	h, err := netns.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	want := testns.Inode(t, next)
	for _, a := range []string{a4, a6} {
		got, err := netns.Holding(netip.MustParseAddr(a), h)
		if err != nil || got == nil || got.Inode != want {
			t.Errorf("Holding(%s) = %v, %v; want the namespace %d", a, got, err, want)
		}
		got.Close()
	}
	if got, err := netns.Holding(netip.MustParseAddr("203.0.113.253"), h); got != nil || err != nil {
		t.Errorf("Holding of an address nobody has = %v, %v", got, err)
		got.Close()
	}
}
