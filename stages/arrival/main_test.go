package arrival

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// testMethod is the capture method start gives the tests: tcx, and in a second run of the
// test binary (-capture socket), the packet socket. Both are named, not MethodAuto, so that
// a fallback cannot have one method's run test the other. A kernel without tcx (before 6.6)
// has the packet socket's run only.
var testMethod = MethodTCX

var captureOnly = flag.String("capture", "", "capture with this method only, `tcx or socket` (without it: tcx, then a second run with the packet socket)")

func TestMain(m *testing.M) {
	flag.Parse()
	// Open the runtime's poller now: it keeps its own descriptors for good, which the
	// descriptor leak checks must not count.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	switch *captureOnly {
	case MethodTCX, MethodSocket:
		testMethod = *captureOnly
		os.Exit(testns.MainWithKernelFDs(m))
	case "":
	default:
		fmt.Fprintf(os.Stderr, "-capture %q: want tcx or socket\n", *captureOnly)
		os.Exit(2)
	}
	// The unit tier captures nothing: no kernel to probe, no second run.
	if testing.Short() {
		os.Exit(testns.MainWithKernelFDs(m))
	}
	if !testns.HasTCX() {
		fmt.Fprintf(os.Stderr, "arrival: kernel %s has no tcx (Linux 6.6+): the tests run once, capturing with the packet socket\n", testns.Release())
		testMethod = MethodSocket
		os.Exit(testns.MainWithKernelFDs(m))
	}
	code := testns.MainWithKernelFDs(m)
	fmt.Fprintln(os.Stderr, "arrival: the same tests again, capturing with the packet socket")
	// First, so that it comes before any argument that ends the flags.
	again := exec.Command(os.Args[0], append([]string{"-capture=" + MethodSocket}, os.Args[1:]...)...)
	again.Stdout, again.Stderr = os.Stdout, os.Stderr
	if err := again.Run(); err != nil && code == 0 {
		fmt.Fprintf(os.Stderr, "arrival: the packet socket's run: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// checkFDs fails the test when it ends with more open descriptors than it started with.
// Register it first, so it runs after every other cleanup. It counts the whole process's
// descriptors: a test that uses it must not run in parallel.
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

// dropCaps removes capabilities from the calling thread (capabilities are per thread):
// lock the thread first and never unlock it.
func dropCaps(caps ...int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, c := range caps {
		data[c/32].Effective &^= 1 << (c % 32)
		data[c/32].Permitted &^= 1 << (c % 32)
	}
	return unix.Capset(&hdr, &data[0])
}
