package testns

import (
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
)

// MainWithKernelFDs is Main that also fails the binary when the tests leave a BPF
// program, map, link, BTF or perf event descriptor open.
func MainWithKernelFDs(m interface{ Run() int }) int {
	before := KernelFDs()
	code := Main(m)
	if after := KernelFDs(); !maps.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "tests left kernel objects open: before %v, after %v\n", before, after)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// KernelFDs counts this process's descriptors for BPF programs, maps, links, BTF and perf
// events, by kind.
func KernelFDs() map[string]int {
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

// CheckReleased fails t when, by the end of the test, a BPF object opened during it is
// still open.
func CheckReleased(t testing.TB) {
	t.Helper()
	before := KernelFDs()
	t.Cleanup(func() {
		if after := KernelFDs(); !maps.Equal(before, after) {
			t.Errorf("kernel objects leaked: before %v, after %v", before, after)
		}
	})
}
