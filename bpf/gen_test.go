package bpf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// The committed kdrop_bpfel.{go,o} are what go generate makes from the C sources now.
// Needs the pinned clang; without it the test skips, except under CI=true.
func TestGeneratedIsCurrent(t *testing.T) {
	args := generateArgs(t)
	for _, tool := range []string{flagValue(t, args, "-cc"), flagValue(t, args, "-strip")} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: CI must check the generated BPF object", tool)
			}
			t.Skipf("%s not found: cannot check the generated BPF object", tool)
		}
	}
	out := t.TempDir()
	// Flags go before the identifier: what follows "--" is clang's.
	cmd := exec.Command("go", append([]string{"tool", args[0], "-output-dir", out}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, msg)
	}
	for _, name := range []string{"kdrop_bpfel.go", "kdrop_bpfel.o"} {
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, fresh) {
			t.Errorf("%s is stale: run go generate ./bpf/ and commit the result", name)
		}
	}
}

// generateArgs returns the bpf2go command line of gen.go's go:generate directive, after
// "go tool", so the test checks exactly what go generate runs.
func generateArgs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate go tool "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("no go:generate go tool line in gen.go")
	return nil
}

func flagValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	t.Fatalf("gen.go runs bpf2go without %s: pin the tool, or bytes differ between machines", flag)
	return ""
}

// The object holds what the Go side relies on, with the layouts it decodes.
func TestObject(t *testing.T) {
	spec, err := LoadKdrop()
	if err != nil {
		t.Fatal(err)
	}
	var specs KdropSpecs
	if err := spec.Assign(&specs); err != nil {
		t.Fatal(err)
	}
	if p := specs.KfreeSkbBtf; p.Type != ebpf.Tracing || p.AttachType != ebpf.AttachTraceRawTp || p.AttachTo != "kfree_skb" {
		t.Errorf("kfree_skb_btf: %v %v %q", p.Type, p.AttachType, p.AttachTo)
	}
	if p := specs.KfreeSkbTp; p.Type != ebpf.TracePoint || p.SectionName != "tracepoint/skb/kfree_skb" {
		t.Errorf("kfree_skb_tp: %v %q", p.Type, p.SectionName)
	}
	if m := specs.Events; m.Type != ebpf.RingBuf || m.MaxEntries != 4<<20 {
		t.Errorf("events: %v %d", m.Type, m.MaxEntries)
	}
	if m := specs.Totals; m.Type != ebpf.PerCPUArray || m.MaxEntries != 1 {
		t.Errorf("totals: %v %d", m.Type, m.MaxEntries)
	}
	for _, v := range []*ebpf.VariableSpec{specs.FlowAddr, specs.FlowPort, specs.FlowProto, specs.FlowFamily} {
		if !v.Constant() {
			t.Errorf("%s is not a load-time constant", v.Name)
		}
	}
	for name, goSize := range map[string]int{
		"event":    binary.Size(KdropEvent{}),
		"counters": binary.Size(KdropCounters{}),
	} {
		var s *btf.Struct
		if err := spec.Types.TypeByName(name, &s); err != nil {
			t.Fatal(err)
		}
		if int(s.Size) != goSize {
			t.Errorf("struct %s: %d bytes in C, %d in Go", name, s.Size, goSize)
		}
	}
}
