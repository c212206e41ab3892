package main

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/packetmortem/packetmortem/stages/kdrop"
)

func heap(label string) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	st, _ := readMemory(os.Getpid())
	fmt.Printf("%-20s alloc %.1f MiB, heapInuse %.1f MiB, sys %.1f MiB, RSS %.1f MiB HWM %.1f MiB\n", label, float64(m.TotalAlloc)/(1<<20), float64(m.HeapInuse)/(1<<20), float64(m.Sys)/(1<<20), float64(st.RSS)/(1<<20), float64(st.HWM)/(1<<20))
}

func TestExp3(t *testing.T) {
	if os.Getenv("EXP3") == "" { t.Skip() }
	heap("start")
	s, err := btf.LoadKernelSpec()
	if err != nil { t.Fatal(err) }
	heap("kernel BTF")
	_ = s
	r, err := kdrop.LoadReasons()
	if err != nil { t.Fatal(err) }
	heap("reasons")
	_ = r
	_, _ = kdrop.LoadReasons()
	heap("reasons again")
	var e *btf.Enum
	_ = s.TypeByName("sk_rst_reason", &e)
	heap("first spec lookup")
	sy, err := kdrop.LoadSymbols()
	if err != nil { t.Fatal(err) }
	heap("symbols")
	runtime.KeepAlive(sy)
	runtime.KeepAlive(s)
}
