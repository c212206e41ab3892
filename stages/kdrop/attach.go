package kdrop

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/bpf"
)

// How the program is attached, as evidence.KernelDrop.Attach reports it.
const (
	attachBTF        = "tp_btf/kfree_skb"
	attachTracepoint = "tracepoint/skb/kfree_skb"
)

// attachment is the loaded program and maps, with the program attached.
type attachment struct {
	name string
	coll *ebpf.Collection // what is not assigned below: the .rodata map
	maps bpf.KdropMaps
	prog *ebpf.Program
	link link.Link // nil until attached
}

func (a *attachment) Close() error {
	var err error
	if a.link != nil {
		err = a.link.Close()
	}
	a.prog.Close()
	a.maps.Close()
	a.coll.Close()
	return err
}

type attacher func(*ebpf.CollectionSpec) (*attachment, error)

// specFor loads the program spec with the flow's constants set.
func specFor(cfg Config) (*ebpf.CollectionSpec, error) {
	f := cfg.Flow
	spec, err := bpf.LoadKdrop()
	if err != nil {
		return nil, fmt.Errorf("load kdrop BPF object: %w", err)
	}
	var vars bpf.KdropVariableSpecs
	if err := spec.Assign(&vars); err != nil {
		return nil, fmt.Errorf("load kdrop BPF object: %w", err)
	}
	flow := bpf.FlowVars{Addr: vars.FlowAddr, Port: vars.FlowPort, Proto: vars.FlowProto, Family: vars.FlowFamily,
		ProbeRead: vars.FlowProbeRead, ForceProbeRead: cfg.probeRead}
	if err := flow.Set(f.Addr, f.Port, f.Proto.Number()); err != nil {
		return nil, fmt.Errorf("kdrop BPF object: %w", err)
	}
	return spec, nil
}

// load loads the maps and the one program wanted. Loading only that program matters: a
// kernel that refuses tp_btf programs must not fail the tracepoint fallback.
func load(spec *ebpf.CollectionSpec, name, prog string) (*attachment, error) {
	cs := spec.Copy()
	for p := range cs.Programs {
		if p != prog {
			delete(cs.Programs, p)
		}
	}
	coll, err := ebpf.NewCollection(cs)
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			// The message ends with the verifier's last words; bpftool has the whole log.
			return nil, fmt.Errorf("verifier rejected %s: %w", prog, err)
		}
		return nil, err
	}
	a := &attachment{name: name, coll: coll, prog: coll.DetachProgram(prog)}
	if err := coll.Assign(&a.maps); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func attachTPBTF(spec *ebpf.CollectionSpec) (*attachment, error) {
	a, err := load(spec, attachBTF, bpf.KdropProgKfreeSkbBtf)
	if err != nil {
		return nil, classifyNeeds("load "+attachBTF, needsBTFTP, err)
	}
	if a.link, err = link.AttachTracing(link.TracingOptions{Program: a.prog, AttachType: ebpf.AttachTraceRawTp}); err != nil {
		a.Close()
		return nil, classifyNeeds("attach "+attachBTF, needsBTFTP, err)
	}
	return a, nil
}

func attachClassic(spec *ebpf.CollectionSpec) (*attachment, error) {
	a, err := load(spec, attachTracepoint, bpf.KdropProgKfreeSkbTp)
	if err != nil {
		return nil, classifyNeeds("load "+attachTracepoint, needsBPFTP, err)
	}
	attach := func() error {
		var err error
		a.link, err = link.Tracepoint("skb", "kfree_skb", a.prog, nil)
		return err
	}
	if tracefsMounted() {
		err = attach()
	} else {
		// Under `ip netns exec` /sys is a fresh sysfs without tracefs, and the event id
		// attaching needs lives there.
		err = withPrivateTracefs(attach)
	}
	if err != nil {
		a.Close()
		return nil, classifyNeeds("attach "+attachTracepoint, needsBPFTP, err)
	}
	return a, nil
}

// Where tracefs is looked for; the same places cilium/ebpf looks.
var tracefsPaths = []struct {
	path  string
	magic int64
}{
	{"/sys/kernel/tracing", unix.TRACEFS_MAGIC},
	{"/sys/kernel/debug/tracing", unix.TRACEFS_MAGIC},
	{"/sys/kernel/debug/tracing", unix.DEBUGFS_MAGIC},
}

// tracefsMounted says whether cilium/ebpf will find tracefs from this thread. It must be
// asked before cilium/ebpf's first look: the library remembers the answer, failures too.
func tracefsMounted() bool {
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
	for _, p := range tracefsPaths {
		var st unix.Statfs_t
		if unix.Statfs(p.path, &st) == nil && int64(st.Type) == p.magic {
			return true
		}
	}
	return false
}

// withPrivateTracefs runs fn on a thread with a mount namespace of its own, where tracefs
// is mounted at /sys/kernel/tracing. The mount cannot leak: the namespace is made private
// first, so nothing propagates back, and the thread is never unlocked, so Go ends it with
// the goroutine, and the namespace with its mount goes with the thread. What fn creates
// (file descriptors) belongs to the process and outlives the thread.
func withPrivateTracefs(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			errc <- inPrivateTracefs(fn)
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
			errc <- inPrivateTracefs(fn)
		}()
		<-done
		runtime.UnlockOSThread()
	}()
	return <-errc
}

// inPrivateTracefs is withPrivateTracefs's body, on a locked thread that is not the main
// one, and that must die with its goroutine.
func inPrivateTracefs(fn func() error) error {
	const failed = "tracefs is not mounted, and mounting it privately failed"
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("%s: unshare mount namespace: %w", failed, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("%s: make mounts private: %w", failed, err)
	}
	if err := unix.Mount("tracefs", tracefsPaths[0].path, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("%s: mount tracefs on %s: %w", failed, tracefsPaths[0].path, err)
	}
	return fn()
}
