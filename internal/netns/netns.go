// Package netns identifies network namespaces: by the inode the kernel's events carry, and
// by the name `ip netns` gave them.
package netns

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Dir is where `ip netns` keeps a bind mount per named namespace.
const Dir = "/run/netns"

// Own is the inode of the network namespace of the calling thread, 0 when unreadable.
// Threads of one process may differ: a goroutine that entered another namespace asks on
// its locked thread.
func Own() uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0
	}
	return st.Ino
}

// OfFd is the inode of the network namespace that fd (a /proc/PID/ns/net or /run/netns
// handle) refers to, 0 when unreadable.
func OfFd(fd int) uint64 {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0
	}
	return st.Ino
}

// Names maps namespace inodes to their names under Dir. Unnamed namespaces (a container's,
// say) are absent: the inode still identifies them.
func Names() map[uint64]string {
	names := map[uint64]string{}
	entries, err := os.ReadDir(Dir)
	if err != nil {
		return names
	}
	for _, e := range entries {
		// Stat, not Lstat: the inode that counts is the nsfs one behind the bind mount.
		var st unix.Stat_t
		if unix.Stat(filepath.Join(Dir, e.Name()), &st) == nil {
			names[st.Ino] = e.Name()
		}
	}
	return names
}
