package bpfrt

import "github.com/cilium/ebpf/btf"

// kernelBTF is decoded once per run: every program load (CO-RE relocations, tp_btf
// targets) and every enum lookup shares it. Decoding vmlinux's BTF costs 15-20 ms of CPU
// and a few MiB each time, and a run used to decode it once per program it loaded: a
// fifth of the time to armed.
var kernelBTF = btf.NewCache()

// KernelBTF is the cache to pass as ebpf.CollectionOptions.Cache.
func KernelBTF() *btf.Cache { return kernelBTF }

// KernelTypes is the running kernel's BTF, from the shared cache. It fails wrapping
// ebpf.ErrNotSupported when the kernel has no BTF.
func KernelTypes() (*btf.Spec, error) { return kernelBTF.Kernel() }
