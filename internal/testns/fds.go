package testns

import (
	"fmt"
	"maps"
	"os"
	"testing"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
)

// MainWithKernelFDs is Main that also fails the binary when the tests leave a BPF
// program, map, link, BTF or perf event descriptor open, or one of the other kinds named
// ("socket:").
func MainWithKernelFDs(m interface{ Run() int }, also ...string) int {
	before := bpfrt.OpenObjects(also...)
	code := Main(m)
	if after := bpfrt.OpenObjects(also...); !maps.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "tests left kernel objects open: before %v, after %v\n", before, after)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// CheckReleased fails t when, by the end of the test, a BPF object opened during it is
// still open. It counts the whole process's objects: a test that uses it must not run in
// parallel.
func CheckReleased(t testing.TB) {
	t.Helper()
	before := bpfrt.OpenObjects()
	t.Cleanup(func() {
		if after := bpfrt.OpenObjects(); !maps.Equal(before, after) {
			t.Errorf("kernel objects leaked: before %v, after %v", before, after)
		}
	})
}
