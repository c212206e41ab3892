// Package bpfrt is what every stage that runs BPF programs does the same way: reading a
// ring buffer until it is flushed, summing per-CPU counters, counting the BPF objects the
// process still holds.
package bpfrt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// ReadRing hands each record of rd to handle until rd is flushed (a stage's Stop, after
// which everything already in the ring has been handed over) or closed. It blocks in epoll
// between records: no polling. It returns the error that ended it otherwise.
func ReadRing(rd *ringbuf.Reader, handle func(raw []byte)) error {
	var rec ringbuf.Record
	for {
		err := rd.ReadInto(&rec)
		switch {
		case err == nil:
			handle(rec.RawSample)
		case errors.Is(err, ringbuf.ErrFlushed), errors.Is(err, ringbuf.ErrClosed):
			return nil
		default:
			return err
		}
	}
}

// SumPerCPU reads the per-CPU values of key in m and adds them up, field by field: T is a
// struct of unsigned integer counters, as the programs' C structs are (bpf2go's blank
// fields aside).
func SumPerCPU[T any](m *ebpf.Map, key uint32) (T, error) {
	var sum T
	var perCPU []T
	if err := m.Lookup(key, &perCPU); err != nil {
		return sum, err
	}
	total := reflect.ValueOf(&sum).Elem()
	for i := range perCPU {
		v := reflect.ValueOf(perCPU[i])
		for f := 0; f < v.NumField(); f++ {
			if v.Type().Field(f).Name == "_" {
				continue // bpf2go's layout markers and padding
			}
			switch v.Field(f).Kind() {
			case reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
				total.Field(f).SetUint(total.Field(f).Uint() + v.Field(f).Uint())
			default:
				return sum, fmt.Errorf("sum per-CPU %T: field %s is not a counter", sum, v.Type().Field(f).Name)
			}
		}
	}
	return sum, nil
}

// Kinds of kernel objects a process holds through file descriptors.
const (
	Prog      = "anon_inode:bpf-prog"
	Map       = "anon_inode:bpf-map"
	Link      = "anon_inode:bpf_link"
	PerfEvent = "anon_inode:[perf_event]"
	BTF       = "anon_inode:btf"
)

// OpenObjects counts this process's descriptors of BPF programs, maps, links, BTF and perf
// events, by kind, and of the other kinds named ("socket:"): what a stage has not released.
func OpenObjects(also ...string) map[string]int {
	kinds := append([]string{Prog, Map, Link, PerfEvent, BTF}, also...)
	counts := map[string]int{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue
		}
		for _, kind := range kinds {
			if strings.HasPrefix(target, kind) {
				counts[kind]++
			}
		}
	}
	return counts
}
