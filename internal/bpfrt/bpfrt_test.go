package bpfrt_test

import (
	"structs"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/testns"
)

// counters is laid out as bpf2go generates such a struct.
type counters struct {
	_                   structs.HostLayout
	Seen, Matched, Lost uint64
}

// SumPerCPU adds each field over the CPUs, and refuses a struct that is not all counters.
func TestSumPerCPU(t *testing.T) {
	testns.RequirePrivileges(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 24, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	per := make([]counters, n)
	for i := range per {
		per[i] = counters{Seen: uint64(i + 1), Matched: 2, Lost: uint64(i % 2)}
	}
	if err := m.Put(uint32(1), per); err != nil {
		t.Fatal(err)
	}
	got, err := bpfrt.SumPerCPU[counters](m, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := counters{Seen: uint64(n * (n + 1) / 2), Matched: uint64(2 * n), Lost: uint64(n / 2)}
	if got != want {
		t.Errorf("sum %+v, want %+v over %d CPUs", got, want, n)
	}
	type notCounters struct {
		A uint64
		B int64
		C uint64
	}
	if _, err := bpfrt.SumPerCPU[notCounters](m, 1); err == nil {
		t.Error("a struct with a signed field summed")
	}
}

// Every load and lookup of a run shares one decoding of the kernel's BTF.
func TestKernelTypesDecodedOnce(t *testing.T) {
	a, err := bpfrt.KernelTypes()
	if err != nil {
		t.Fatalf("the kernels diagnose runs on have BTF: %v", err)
	}
	b, err := bpfrt.KernelBTF().Kernel()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("the kernel's BTF was decoded twice")
	}
}
