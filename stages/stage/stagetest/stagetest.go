// Package stagetest checks that a stage keeps the promises of the lifecycle (package
// stage): every stage's tests run Conformance on it, in a namespace they made.
package stagetest

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
)

// Conformance runs a stage made by newStage through its lifecycle in namespace ns, where
// the process diagnoses, and checks that:
//   - Close before Arm returns nil, and again;
//   - Arm with a cancelled context fails with context.Canceled and leaves nothing behind;
//   - armed, the stage observes: after exercise (traffic the test makes), Stop files
//     evidence, and the progress count (if any) reads without blocking;
//   - Close returns nil, twice, and afterwards no BPF object of the stage is left open;
//   - Installed, measured after Close, says every object it installed is removed.
func Conformance(t *testing.T, ns string, newStage func() stage.Stage, exercise func(t *testing.T)) {
	t.Helper()
	before := bpfrt.OpenObjects()
	in := func(fn func()) { testns.Do(t, ns, fn) }

	t.Run("close unarmed", func(t *testing.T) {
		s := newStage()
		if err := s.Close(); err != nil {
			t.Errorf("Close before Arm: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close before Arm: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		s := newStage()
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
		s := newStage()
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
		exercise(t)
		if count != nil && count() < 0 {
			t.Errorf("progress %s reads %d", label, count())
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
