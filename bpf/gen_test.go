package bpf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// The committed *_bpfel.{go,o} are what go generate makes from the C sources now, for
// every go:generate line. Needs the pinned clang, its llvm-strip and the libbpf headers;
// without them the test skips naming what is missing, except under CI=true, where it fails.
func TestGeneratedIsCurrent(t *testing.T) {
	t.Parallel()
	testns.SkipShort(t, "clang-14, llvm-strip and libbpf-dev")
	lines := generateLines(t)
	var missing []string
	for _, args := range lines {
		for _, tool := range []string{flagValue(t, args, "-cc"), flagValue(t, args, "-strip")} {
			if _, err := exec.LookPath(tool); err != nil && !slices.Contains(missing, tool) {
				missing = append(missing, tool)
			}
		}
	}
	// The C sources include <bpf/bpf_helpers.h>, which clang finds in the system's headers.
	if !slices.ContainsFunc([]string{"/usr/include", "/usr/local/include"}, func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "bpf", "bpf_helpers.h"))
		return err == nil
	}) {
		missing = append(missing, "bpf/bpf_helpers.h (libbpf-dev)")
	}
	if len(missing) > 0 {
		testns.Missing(t, "cannot check that the committed BPF objects are what go generate makes: %s not installed (as root: WITH_CLANG=1 make deps)", strings.Join(missing, ", "))
	}
	for _, args := range lines {
		ident := identifier(t, args)
		t.Run(ident, func(t *testing.T) {
			out := t.TempDir()
			// Flags go before the identifier: what follows "--" is clang's.
			cmd := exec.Command("go", append([]string{"tool", args[0], "-output-dir", out}, args[1:]...)...)
			cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bpf2go: %v\n%s", err, msg)
			}
			stem := strings.ToLower(ident) + "_bpfel"
			for _, name := range []string{stem + ".go", stem + ".o"} {
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
		})
	}
}

// generateLines returns the bpf2go command line of each of gen.go's go:generate
// directives, after "go tool", so the test checks exactly what go generate runs.
func generateLines(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate go tool "); ok {
			lines = append(lines, strings.Fields(rest))
		}
	}
	if len(lines) < 2 {
		t.Fatalf("gen.go has %d go:generate go tool lines, want kdrop's and path's", len(lines))
	}
	return lines
}

// identifier is bpf2go's first positional argument, which names the outputs: the one
// before the C source.
func identifier(t *testing.T, args []string) string {
	t.Helper()
	for i := 1; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		if strings.HasSuffix(args[i], ".c") {
			return args[i-1]
		}
	}
	t.Fatalf("no C source in bpf2go arguments %q", args)
	return ""
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
	t.Parallel()
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
	if m := specs.Events; m.Type != ebpf.RingBuf || m.MaxEntries != 1<<20 {
		t.Errorf("events: %v %d", m.Type, m.MaxEntries)
	}
	if m := specs.Totals; m.Type != ebpf.PerCPUArray || m.MaxEntries != 1 {
		t.Errorf("totals: %v %d", m.Type, m.MaxEntries)
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

// The path object holds a tp_btf and a classic tracepoint program per point, the maps and
// constants the Go side relies on, with the layouts it decodes.
func TestPathObject(t *testing.T) {
	t.Parallel()
	spec, err := LoadPath()
	if err != nil {
		t.Fatal(err)
	}
	var specs PathSpecs
	if err := spec.Assign(&specs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		btf, tp *ebpf.ProgramSpec
		group   string
		name    string
	}{
		{specs.ReceiveBtf, specs.ReceiveTp, "net", "netif_receive_skb"},
		{specs.RouteBtf, specs.RouteTp, "fib", "fib_table_lookup"},
		{specs.Route6Btf, specs.Route6Tp, "fib6", "fib6_table_lookup"},
		{specs.SockStateBtf, specs.SockStateTp, "sock", "inet_sock_set_state"},
		{specs.DataReadyBtf, specs.DataReadyTp, "sock", "sk_data_ready"},
		{specs.CopiedBtf, specs.CopiedTp, "skb", "skb_copy_datagram_iovec"},
		{specs.ResetBtf, specs.ResetTp, "tcp", "tcp_send_reset"},
		{specs.IcmpBtf, specs.IcmpTp, "icmp", "icmp_send"},
	} {
		if p := tc.btf; p.Type != ebpf.Tracing || p.AttachType != ebpf.AttachTraceRawTp || p.AttachTo != tc.name {
			t.Errorf("%s: %v %v %q", p.Name, p.Type, p.AttachType, p.AttachTo)
		}
		if p := tc.tp; p.Type != ebpf.TracePoint || p.SectionName != "tracepoint/"+tc.group+"/"+tc.name {
			t.Errorf("%s: %v %q", p.Name, p.Type, p.SectionName)
		}
	}
	if m := specs.Events; m.Type != ebpf.RingBuf || m.MaxEntries != 2<<20 {
		t.Errorf("events: %v %d", m.Type, m.MaxEntries)
	}
	if m := specs.Totals; m.Type != ebpf.PerCPUArray || m.MaxEntries != uint32(PathPointPOINT_COUNT) {
		t.Errorf("totals: %v %d", m.Type, m.MaxEntries)
	}
	if m := specs.RxCurrent; m.Type != ebpf.PerCPUArray || m.MaxEntries != 1 {
		t.Errorf("rx_current: %v %d", m.Type, m.MaxEntries)
	}
	for name, goSize := range map[string]int{
		"event":     binary.Size(PathEvent{}),
		"counters":  binary.Size(PathCounters{}),
		"rx_packet": binary.Size(PathRxPacket{}),
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
