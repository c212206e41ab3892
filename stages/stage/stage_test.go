package stage

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// fake records what the pipeline does to it in a shared log.
type fake struct {
	name   string
	log    *[]string
	armErr error
	panics bool
}

func (f *fake) Name() string { return f.name }
func (f *fake) Arm(context.Context) error {
	*f.log = append(*f.log, "arm "+f.name)
	if f.panics {
		panic("stage " + f.name + " panicked")
	}
	return f.armErr
}
func (f *fake) Progress() (string, func() int) {
	if f.armErr != nil {
		return "", nil
	}
	return f.name + " events", func() int { return 1 }
}
func (f *fake) Grow(e evidence.Endpoint) error {
	*f.log = append(*f.log, fmt.Sprintf("grow %s %d %s", f.name, e.ID, e))
	if f.name == "c" {
		return errors.New("c cannot follow it")
	}
	return nil
}
func (f *fake) Stop(_ context.Context, ev *evidence.Evidence) {
	*f.log = append(*f.log, "stop "+f.name)
}
func (f *fake) Close() error {
	*f.log = append(*f.log, "close "+f.name)
	if f.name == "b" {
		return errors.New("b would not close")
	}
	return nil
}
func (f *fake) Installed(left Left) []evidence.Installed {
	return []evidence.Installed{{What: f.name, Removed: left.BPF == 0}}
}

var testFlow = evidence.Flow{Addr: netip.MustParseAddr("198.51.100.2"), Port: 80, Proto: evidence.TCP}

func fakes(log *[]string, names ...string) []Stage {
	var out []Stage
	for _, n := range names {
		out = append(out, &fake{name: n, log: log})
	}
	return out
}

// Armed in order, stopped and closed in reverse, closed once however often asked.
func TestLifecycleOrder(t *testing.T) {
	t.Parallel()
	var log []string
	p := New(testFlow, func(w string) { t.Errorf("warned %q", w) }, fakes(&log, "a", "b", "c")...)
	if err := p.Arm(context.Background()); err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, c := range p.Progress() {
		labels = append(labels, c.Label)
	}
	if !slices.Equal(labels, []string{"c events", "b events", "a events"}) {
		t.Errorf("progress %q, want the last armed first", labels)
	}
	p.Stop(context.Background(), &evidence.Evidence{})
	installed, notes := p.Installed()
	p.Close()
	want := []string{"arm a", "arm b", "arm c", "stop c", "stop b", "stop a", "close c", "close b", "close a"}
	if !slices.Equal(log, want) {
		t.Errorf("lifecycle %q, want %q", log, want)
	}
	if len(installed) != 3 || installed[0].What != "a" {
		t.Errorf("installed %+v", installed)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "closing the b stage: b would not close") {
		t.Errorf("notes %q, want the one stage whose Close failed", notes)
	}
}

// A failing stage ends the run: what was armed, itself included, is closed in reverse, and
// nothing after it is armed.
func TestArmFails(t *testing.T) {
	t.Parallel()
	var log []string
	st := fakes(&log, "a", "b", "c")
	st[1].(*fake).armErr = errors.New("no BPF")
	p := New(testFlow, func(string) {}, st...)
	err := p.Arm(context.Background())
	if err == nil || err.Error() != "b stage: no BPF" {
		t.Fatalf("Arm: %v, want the failing stage named", err)
	}
	p.Close()
	if want := []string{"arm a", "arm b", "close b", "close a"}; !slices.Equal(log, want) {
		t.Errorf("lifecycle %q, want %q", log, want)
	}
}

// A skipped stage is warned about, stopped (to file why) and closed; the run goes on.
func TestArmSkips(t *testing.T) {
	t.Parallel()
	var log, warned []string
	st := fakes(&log, "a", "b")
	st[0].(*fake).armErr = Skip(errors.New("no tracepoints"))
	p := New(testFlow, func(w string) { warned = append(warned, w) }, st...)
	if err := p.Arm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || warned[0] != "a stage unavailable, going on without it: no tracepoints" {
		t.Errorf("warned %q", warned)
	}
	if n := len(p.Progress()); n != 1 {
		t.Errorf("%d progress counters, want b's only", n)
	}
	p.Stop(context.Background(), &evidence.Evidence{})
	p.Close()
	if want := []string{"arm a", "arm b", "stop b", "stop a", "close b", "close a"}; !slices.Equal(log, want) {
		t.Errorf("lifecycle %q, want %q", log, want)
	}
}

// A skip after the context is cancelled is the cancellation, not a skip.
func TestArmCancelledIsNoSkip(t *testing.T) {
	t.Parallel()
	var log []string
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := fakes(&log, "a")
	st[0].(*fake).armErr = Skip(context.Canceled)
	if err := New(testFlow, func(string) { t.Error("warned") }, st...).Arm(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Arm: %v, want context.Canceled", err)
	}
}

// A stage that panics while arming is closed with the others by the caller's deferred
// Close, as diagnose defers it: nothing it made half-way is left to process exit.
func TestArmPanics(t *testing.T) {
	t.Parallel()
	var log []string
	st := fakes(&log, "a", "b")
	st[1].(*fake).panics = true
	p := New(testFlow, func(string) {}, st...)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		defer p.Close()
		_ = p.Arm(context.Background())
	}()
	if want := []string{"arm a", "arm b", "close b", "close a"}; !slices.Equal(log, want) {
		t.Errorf("lifecycle %q, want %q", log, want)
	}
}

// Grow numbers each new endpoint, hands it to every armed stage, names those that cannot
// follow it, and returns an endpoint the flow already has as it is.
func TestGrow(t *testing.T) {
	t.Parallel()
	var log []string
	var warned []string
	p := New(testFlow, func(w string) { warned = append(warned, w) }, fakes(&log, "a", "b", "c")...)
	if err := p.Arm(context.Background()); err != nil {
		t.Fatal(err)
	}
	log = nil
	dnat := evidence.Endpoint{Addr: netip.MustParseAddr("203.0.113.2"), Port: 8080, Proto: evidence.TCP, Netns: 4026532000}
	got := p.Grow(dnat)
	if got.ID != 2 {
		t.Errorf("Grow gave id %d, want 2", got.ID)
	}
	if again := p.Grow(dnat); again != got {
		t.Errorf("growing by the same endpoint again gave %v, want %v", again, got)
	}
	if again := p.Grow(testFlow.Endpoint()); again.ID != 1 {
		t.Errorf("growing by the configured flow gave id %d, want 1", again.ID)
	}
	want := []string{"grow a 2 203.0.113.2:8080/tcp", "grow b 2 203.0.113.2:8080/tcp", "grow c 2 203.0.113.2:8080/tcp"}
	if !slices.Equal(log, want) {
		t.Errorf("log %q, want %q", log, want)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "the c stage does not follow 203.0.113.2:8080/tcp: c cannot follow it") {
		t.Errorf("warned %q", warned)
	}
	if ends := p.Endpoints(); len(ends) != 2 || ends[0] != testFlow.Endpoint() || ends[1] != got {
		t.Errorf("Endpoints() = %v", ends)
	}
}
