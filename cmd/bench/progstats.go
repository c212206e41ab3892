package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// tracingTypes are the program types that run on kernel events or on every packet of an
// interface (tc, as diagnose's capture): a tracer's, anyone's.
var tracingTypes = []ebpf.ProgramType{ebpf.Tracing, ebpf.TracePoint, ebpf.RawTracepoint,
	ebpf.RawTracepointWritable, ebpf.Kprobe, ebpf.PerfEvent, ebpf.SchedCLS}

// tracingPrograms lists the tracing programs loaded now, by ID, with their names. They
// tell which programs a tracer loaded (those new since its launch), and whether someone
// else traced the kernel during a measurement (any other).
func tracingPrograms() (map[ebpf.ProgramID]string, error) {
	progs := map[ebpf.ProgramID]string{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
			return progs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list BPF programs: %w", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err == nil && slices.Contains(tracingTypes, info.Type) {
			progs[id] = info.Name
		}
	}
}

// without returns the programs of a that are not in b.
func without(a, b map[ebpf.ProgramID]string) map[ebpf.ProgramID]string {
	out := map[ebpf.ProgramID]string{}
	for id, name := range a {
		if _, ok := b[id]; !ok {
			out[id] = name
		}
	}
	return out
}

// progRun is what one program did over a measurement, with BPF statistics on.
type progRun struct {
	Name    string
	Runs    uint64
	Runtime time.Duration
}

// progStats reads the run count and run time of each program.
func progStats(ids map[ebpf.ProgramID]string) map[ebpf.ProgramID]progRun {
	out := map[ebpf.ProgramID]progRun{}
	for id, name := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		st, err := p.Stats()
		p.Close()
		if err == nil {
			out[id] = progRun{Name: name, Runs: st.RunCount, Runtime: st.Runtime}
		}
	}
	return out
}

// delta is after minus before, summed by program name (a name loaded twice adds up), the
// costliest first.
func delta(before, after map[ebpf.ProgramID]progRun) []progRun {
	byName := map[string]progRun{}
	for id, a := range after {
		b := before[id]
		r := byName[a.Name]
		r.Name = a.Name
		r.Runs += a.Runs - b.Runs
		r.Runtime += a.Runtime - b.Runtime
		byName[a.Name] = r
	}
	out := slices.Collect(maps.Values(byName))
	slices.SortFunc(out, func(x, y progRun) int { return cmp.Compare(y.Runtime, x.Runtime) })
	return out
}

// enableStats turns on BPF run-time statistics while the returned Closer is open: the
// kernel turns them off when it is closed, or when the bench dies.
func enableStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable BPF statistics: %w", err)
	}
	return c, nil
}
