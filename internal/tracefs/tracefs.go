// Package tracefs finds tracefs for classic tracepoints, and mounts it privately where it
// is not mounted: under `ip netns exec`, /sys is a fresh sysfs without it, and attaching a
// classic tracepoint needs the event's id from there.
package tracefs

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Where tracefs is looked for; the same places cilium/ebpf looks.
var paths = []struct {
	path  string
	magic int64
}{
	{"/sys/kernel/tracing", unix.TRACEFS_MAGIC},
	{"/sys/kernel/debug/tracing", unix.TRACEFS_MAGIC},
	{"/sys/kernel/debug/tracing", unix.DEBUGFS_MAGIC},
}

// Mounted says whether cilium/ebpf will find tracefs from this thread. It must be
// asked before cilium/ebpf's first look: the library remembers the answer, failures too.
func Mounted() bool {
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// "... - tracefs tracefs rw": the type follows the separator.
			if _, after, ok := strings.Cut(sc.Text(), " - "); ok && strings.HasPrefix(after, "tracefs ") {
				return true
			}
		}
	}
	for _, p := range paths {
		var st unix.Statfs_t
		if unix.Statfs(p.path, &st) == nil && int64(st.Type) == p.magic {
			return true
		}
	}
	return false
}

// WithPrivate runs fn on a thread with a mount namespace of its own, where tracefs
// is mounted at /sys/kernel/tracing. The mount cannot leak: the namespace is made private
// first, so nothing propagates back, and the thread is never unlocked, so Go ends it with
// the goroutine, and the namespace with its mount goes with the thread. What fn creates
// (file descriptors) belongs to the process and outlives the thread.
func WithPrivate(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			errc <- inPrivate(fn)
			return
		}
		// The main thread never exits (Go parks it instead), so a namespace changed there
		// would outlive us, and /proc/self/mountinfo, which reads the main thread's, would
		// show the mount. Hop: while this goroutine holds the main thread, the new one
		// runs on another.
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			errc <- inPrivate(fn)
		}()
		<-done
		runtime.UnlockOSThread()
	}()
	return <-errc
}

// inPrivate is WithPrivate's body, on a locked thread that is not the main
// one, and that must die with its goroutine.
func inPrivate(fn func() error) error {
	const failed = "tracefs is not mounted, and mounting it privately failed"
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("%s: unshare mount namespace: %w", failed, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("%s: make mounts private: %w", failed, err)
	}
	if err := unix.Mount("tracefs", paths[0].path, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("%s: mount tracefs on %s: %w", failed, paths[0].path, err)
	}
	return fn()
}
