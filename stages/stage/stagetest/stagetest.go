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
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Env is where Conformance runs a stage: a pair of namespaces, the server's being the one
// diagnosed, and a UDP flow to a closed port of the server.
type Env struct {
	Pair  *testns.Pair
	Netns uint64 // the server namespace's inode
	Flow  evidence.Flow
}

// Conformance runs a stage made by newStage through its lifecycle in the server namespace
// of a fresh pair (tag names it), after prepare (nil: nothing to prepare), and checks that:
//   - Close before Arm returns nil, and again;
//   - Arm with a cancelled context fails with context.Canceled and leaves nothing behind;
//   - armed, the stage observes: datagrams of the flow make its progress count (if it has
//     one) move, and Stop files evidence;
//   - Close returns nil, twice, and afterwards no BPF object of the stage is left open;
//   - Installed, measured after Close, says every object it installed is removed.
//
// It counts the whole process's BPF objects: the test that calls it must not run in parallel.
func Conformance(t *testing.T, tag string, prepare func(Env), newStage func(Env) stage.Stage) {
	t.Helper()
	pair := testns.NewPair(t, tag)
	env := Env{Pair: pair, Netns: testns.Inode(t, pair.Server),
		Flow: evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}}
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
		var err error
		in(func() { err = s.Arm(context.Background()) })
		if err != nil {
			s.Close()
			t.Fatalf("Arm: %v", err)
		}
		label, count := s.Progress()
		if (label == "") != (count == nil) {
			t.Errorf("progress %q with count %v: a label needs a count and the reverse", label, count != nil)
		}
		testns.SendDatagrams(t, pair.Client, netip.AddrPortFrom(env.Flow.Addr, env.Flow.Port), 2)
		if count != nil {
			// The count follows events read asynchronously: give them a moment.
			deadline := time.Now().Add(3 * time.Second)
			for count() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if count() == 0 {
				t.Errorf("progress %s stayed 0 while the flow's datagrams passed", label)
			}
		}
		ev := &evidence.Evidence{}
		in(func() { s.Stop(context.Background(), ev) })
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
