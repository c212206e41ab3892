package path

import (
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/stages/testns"
)

// TestMain fails the run when a test leaves a namespace or a BPF object behind.
func TestMain(m *testing.M) {
	before := kernelFDs()
	code := testns.Main(m)
	if after := kernelFDs(); !maps.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "tests left kernel objects open: before %v, after %v\n", before, after)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// kernelFDs counts this process's descriptors for BPF programs, maps, links and perf
// events, by kind.
func kernelFDs() map[string]int {
	counts := map[string]int{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		for _, kind := range []string{"anon_inode:bpf-prog", "anon_inode:bpf-map", "anon_inode:bpf_link", "anon_inode:[perf_event]", "anon_inode:btf"} {
			if strings.HasPrefix(target, kind) {
				counts[kind]++
			}
		}
	}
	return counts
}

// checkReleased fails t when the probe left a BPF object open once closed.
func checkReleased(t *testing.T) {
	t.Helper()
	before := kernelFDs()
	t.Cleanup(func() {
		if after := kernelFDs(); !maps.Equal(before, after) {
			t.Errorf("kernel objects leaked: before %v, after %v", before, after)
		}
	})
}
