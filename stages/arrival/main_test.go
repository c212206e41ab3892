package arrival

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/stages/testns"
)

func TestMain(m *testing.M) {
	// Open the runtime's poller now: it keeps its own descriptors for good, which the
	// descriptor leak checks must not count.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	os.Exit(testns.Main(m))
}

// checkFDs fails the test when it ends with more open descriptors than it started with.
// Register it first, so it runs after every other cleanup.
func checkFDs(t *testing.T) {
	t.Helper()
	before := openFDs(t)
	t.Cleanup(func() {
		if after := openFDs(t); len(after) > len(before) {
			t.Errorf("file descriptors leaked: %d open before, %d after: %v", len(before), len(after), after)
		}
	})
}

func openFDs(t *testing.T) []string {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds = append(fds, e.Name()+"->"+target)
	}
	return fds
}

func runtimeLockOSThread() { runtime.LockOSThread() }

// dropCapNetRaw removes CAP_NET_RAW from the calling thread (capabilities are per thread):
// lock the thread first and never unlock it.
func dropCapNetRaw() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Effective &^= 1 << unix.CAP_NET_RAW
	data[0].Permitted &^= 1 << unix.CAP_NET_RAW
	return unix.Capset(&hdr, &data[0])
}
