package netns_test

import (
	"errors"
	"fmt"
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
