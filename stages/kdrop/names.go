package kdrop

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where ip netns keeps a bind mount per named namespace.
const netnsDir = "/run/netns"

// netnsNames maps namespace inodes to their names under /run/netns. Unnamed namespaces
// (a container's, say) are simply absent: the inode still identifies them.
func netnsNames() map[uint64]string {
	names := map[uint64]string{}
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return names
	}
	for _, e := range entries {
		// Stat, not Lstat: the inode that counts is the nsfs one behind the bind mount.
		fi, err := os.Stat(filepath.Join(netnsDir, e.Name()))
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			names[st.Ino] = e.Name()
		}
	}
	return names
}

// ownNetns is the inode of the network namespace this process runs in, the only one whose
// interface indexes it can name.
func ownNetns() uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return 0
	}
	return st.Ino
}

func ifaceName(ifindex int) string {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return ""
	}
	return ifi.Name
}

// monoClock converts CLOCK_MONOTONIC nanoseconds, as bpf_ktime_get_ns reports them, to
// wall time. The offset is sampled once: a drop report needs milliseconds, not the
// precision an NTP step during a run would disturb.
type monoClock struct {
	wall time.Time
	mono int64
}

func newMonoClock() (monoClock, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return monoClock{}, err
	}
	// Round(0) strips Go's own monotonic reading, which is not CLOCK_MONOTONIC-based.
	return monoClock{wall: time.Now().Round(0), mono: ts.Nano()}, nil
}

func (c monoClock) wallTime(ktimeNs uint64) time.Time {
	return c.wall.Add(time.Duration(int64(ktimeNs) - c.mono))
}
