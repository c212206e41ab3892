package hoststate

import (
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/stages/testns"
)

// TestMain fails the run when a test leaves a namespace, a BPF object or a netlink socket
// open.
func TestMain(m *testing.M) {
	before := openFDs()
	code := testns.Main(m)
	if after := openFDs(); !maps.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "tests left descriptors open: before %v, after %v\n", before, after)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// openFDs counts this process's descriptors for BPF objects and sockets, by kind.
func openFDs() map[string]int {
	counts := map[string]int{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		for _, kind := range []string{"anon_inode:bpf-prog", "anon_inode:bpf-map", "anon_inode:bpf_link", "anon_inode:btf", "socket:"} {
			if strings.HasPrefix(target, kind) {
				counts[kind]++
			}
		}
	}
	return counts
}
