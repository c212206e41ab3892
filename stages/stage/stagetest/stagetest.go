// Package stagetest checks that a stage keeps the promises of the lifecycle (package
// stage): every stage's tests run Conformance on it, in a namespace they made.
package stagetest

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Env is where Conformance runs a stage: a pair of namespaces, the server's being the one
// diagnosed, and a UDP flow to a closed port of the server.
type Env struct {
	Pair  *testns.Pair
	Netns uint64 // the server namespace's inode
	// Handle is the server namespace, open: a stage that runs in one namespace runs there
	// through it, armed from the test's own namespace.
	Handle *netns.Handle
	Flow   evidence.Flow
}

// Conformance runs a stage made by newStage through its lifecycle in the server namespace
// of a fresh pair (tag names it), after prepare (nil: nothing to prepare), and checks that:
//   - Close before Arm returns nil, and again;
//   - Arm with a cancelled context fails with context.Canceled and leaves nothing behind;
//   - armed from the test's namespace, the stage observes the server's through Env.Handle: datagrams of the flow make its progress count (if it has
//     one) move, and Stop files evidence;
//   - armed, the stage follows the flow as it grows: after Grow, datagrams to the new
//     endpoint alone make the count move;
//   - Close returns nil, twice, and afterwards no BPF object of the stage is left open;
//   - Installed, measured after Close, says every object it installed is removed.
//
// It counts the whole process's BPF objects: the test that calls it must not run in parallel.
func Conformance(t *testing.T, tag string, prepare func(Env), newStage func(Env) stage.Stage) {
	t.Helper()
	pair := testns.NewPair(t, tag)
	env := Env{Pair: pair, Netns: testns.Inode(t, pair.Server),
		Flow: evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}}
	h, err := netns.Open(pair.Server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	env.Handle = h
	if prepare != nil {
		prepare(env)
	}
	before := bpfrt.OpenObjects()
	in := func(fn func()) { testns.Do(t, pair.Server, fn) }

	t.Run("close unarmed", func(t *testing.T) {
		s := newStage(env)
		if err := s.Close(); err != nil {
			t.Errorf("Close before Arm: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close before Arm: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		s := newStage(env)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var err error
		in(func() { err = s.Arm(ctx) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Arm with a cancelled context: %v, want context.Canceled", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close after a cancelled Arm: %v", err)
		}
		if after := bpfrt.OpenObjects(); !maps.Equal(before, after) {
			t.Errorf("a cancelled Arm left kernel objects: before %v, after %v", before, after)
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		s := newStage(env)
		if err := s.Arm(context.Background()); err != nil {
			s.Close()
			t.Fatalf("Arm: %v", err)
		}
		label, count := s.Progress()
		if (label == "") != (count == nil) {
			t.Errorf("progress %q with count %v: a label needs a count and the reverse", label, count != nil)
		}
		// The count follows events read asynchronously: give them a moment.
		moves := func(from int, what string) {
			if count == nil {
				return
			}
			deadline := time.Now().Add(3 * time.Second)
			for count() == from && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if count() == from {
				t.Errorf("progress %s stayed %d while %s passed", label, from, what)
			}
		}
		testns.SendDatagrams(t, pair.Client, netip.AddrPortFrom(env.Flow.Addr, env.Flow.Port), 2)
		moves(0, "the flow's datagrams")

		grown := evidence.Endpoint{ID: 2, Addr: env.Flow.Addr, Port: testns.Port(), Proto: env.Flow.Proto, Netns: env.Netns}
		if err := s.Grow(grown); err != nil {
			t.Errorf("Grow(%v): %v", grown, err)
		}
		was := 0
		if count != nil {
			time.Sleep(100 * time.Millisecond) // the first datagrams' last events
			was = count()
		}
		testns.SendDatagrams(t, pair.Client, netip.AddrPortFrom(grown.Addr, grown.Port), 2)
		moves(was, "datagrams to the endpoint the flow grew by")
		ev := &evidence.Evidence{}
		s.Stop(context.Background(), ev)
		if reflect.DeepEqual(ev, &evidence.Evidence{}) {
			t.Errorf("%s: Stop filed no evidence", s.Name())
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		open := bpfrt.OpenObjects()
		if !maps.Equal(before, open) {
			t.Errorf("kernel objects left after Close: before %v, after %v", before, open)
		}
		for _, in := range s.Installed(stage.Left{BPF: open[bpfrt.Prog] + open[bpfrt.Link] - before[bpfrt.Prog] - before[bpfrt.Link]}) {
			if in.What == "" || !in.Removed {
				t.Errorf("installed %+v: want it named and removed", in)
			}
		}
	})
}
