package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Handle is an open network namespace that a stage can run against, whichever namespace
// diagnose started in: opened by path (/run/netns/NAME, /proc/PID/ns/net) or by the inode
// that the kernel's events carry. The open file keeps the namespace alive while it is used.
type Handle struct {
	f *os.File
	// Inode identifies the namespace, as Own and the BPF programs report it.
	Inode uint64
	// Path is where it was opened.
	Path string
}

// Clone is another handle on the same namespace, open after h is closed (a handle given
// for a moment, kept to go back there later).
func (h *Handle) Clone() (*Handle, error) {
	fd, err := unix.FcntlInt(h.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate the handle of namespace %s: %w", h, err)
	}
	return &Handle{f: os.NewFile(uintptr(fd), h.Path), Inode: h.Inode, Path: h.Path}, nil
}

// Open opens the network namespace at path: a bind mount under Dir, a /proc/PID/ns/net
// link, or a bare name under Dir.
func Open(path string) (*Handle, error) {
	if !strings.Contains(path, "/") {
		path = filepath.Join(Dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	// A namespace file is on nsfs; anything else (a mistyped path, a plain file) is not one.
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil || fs.Type != unix.NSFS_MAGIC {
		f.Close()
		return nil, fmt.Errorf("open network namespace %s: not a namespace file (want /run/netns/NAME or /proc/PID/ns/net)", path)
	}
	// setns checks the type when entering; a mount or pid namespace would fail only then.
	if typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE); err == nil && typ != unix.CLONE_NEWNET {
		f.Close()
		return nil, fmt.Errorf("open network namespace %s: it is another kind of namespace", path)
	}
	return &Handle{f: f, Inode: st.Ino, Path: path}, nil
}

// OpenInode opens the network namespace with inode ino, found among the named ones and
// those of the processes running; one no process holds and nobody named cannot be
// opened.
func OpenInode(ino uint64) (*Handle, error) {
	var found *Handle
	walk(func(i uint64, path string) bool {
		if i != ino {
			return true
		}
		// Between the walk's stat and the open, the process may have left or exited.
		if h, err := Open(path); err == nil && h.Inode == ino {
			found = h
			return false
		} else if h != nil {
			h.Close()
		}
		return true
	})
	if found == nil {
		return nil, fmt.Errorf("find network namespace %d: no process is in it and it has no name under %s", ino, Dir)
	}
	return found, nil
}

func (h *Handle) String() string { return fmt.Sprintf("%s (inode %d)", h.Path, h.Inode) }

// Fd is the namespace's file descriptor, valid until Close.
func (h *Handle) Fd() int { return int(h.f.Fd()) }

// Close closes the handle. Idempotent; nil is a handle on the current namespace.
func (h *Handle) Close() error {
	if h == nil || h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}

// errGoexit stands for a fn that ended its goroutine with runtime.Goexit (a test's
// FailNow): the caller's goroutine ends the same way.
var errGoexit = errors.New("runtime.Goexit")

// Do runs fn on an OS thread in the namespace and returns its error; a nil Handle runs it
// here. What fn opens there (sockets, netlink, a /proc/thread-self file) stays in the
// namespace; goroutines fn starts do not run there. fn's panic is raised again in the
// caller, so that its deferred cleanup runs.
func (h *Handle) Do(fn func() error) error {
	if h == nil {
		return fn()
	}
	type result struct {
		err      error
		panicked bool
		panic    any
	}
	out := make(chan result, 1)
	go func() {
		returned := false
		defer func() {
			if r := recover(); r != nil {
				out <- result{panicked: true, panic: r}
			} else if !returned {
				out <- result{err: errGoexit}
			}
		}()
		// Never unlocked: the thread dies with the goroutine, so no other goroutine runs
		// in the namespace by mistake.
		runtime.LockOSThread()
		err := unix.Setns(h.Fd(), unix.CLONE_NEWNET)
		if err != nil {
			err = fmt.Errorf("enter network namespace %s: %w", h, err)
		} else {
			err = fn()
		}
		returned = true
		out <- result{err: err}
	}()
	r := <-out
	switch {
	case r.panicked:
		panic(r.panic)
	case r.err == errGoexit:
		runtime.Goexit()
	}
	return r.err
}
