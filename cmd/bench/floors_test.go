package main

import (
	"slices"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// The floors arm what they claim, and release it.
func TestFloors(t *testing.T) {
	testns.RequirePrivileges(t)
	names := func() []string {
		progs, err := tracingPrograms()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, name := range progs {
			out = append(out, name)
		}
		return out
	}
	testns.CheckReleased(t)

	kfree, err := armKfree()
	if err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Contains(got, "kfree_floor") {
		t.Errorf("tracing programs %q: the empty kfree_skb program is not loaded", got)
	}
	if err := kfree.Close(); err != nil {
		t.Error(err)
	}
	// The kernel frees a detached tracing program after an RCU grace period.
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(names(), "kfree_floor") {
		if time.Now().After(deadline) {
			t.Fatalf("the empty kfree_skb program is still loaded 10s after Close")
		}
		time.Sleep(50 * time.Millisecond)
	}

	pair := testns.NewPair(t, "bft")
	testns.Do(t, pair.Server, func() {
		tap, err := armTap()
		if err != nil {
			t.Error(err)
			return
		}
		if err := tap.Close(); err != nil {
			t.Error(err)
		}
		before := names()
		tcx, err := armTCX()
		if err != nil {
			t.Error(err)
			return
		}
		if got := names(); !slices.Contains(got, "tcx_floor") || slices.Contains(before, "tcx_floor") {
			t.Errorf("programs %q: the empty tcx program is not loaded", got)
		}
		if err := tcx.Close(); err != nil {
			t.Error(err)
		}
		hooks, err := armHooks()
		if err != nil {
			t.Error(err)
			return
		}
		got := names()
		for _, want := range []string{"tcx_floor", "kfree_floor", "xmit_floor"} {
			if !slices.Contains(got, want) {
				t.Errorf("programs %q: the hooks floor lacks %s", got, want)
			}
		}
		if err := hooks.Close(); err != nil {
			t.Error(err)
		}
	})
}
