// Package bpf is the kernel side of the kernel drop stage: kdrop.c, a kfree_skb program
// that keeps only one flow's drops, and the Go bindings bpf2go generates from it.
//
// The generated kdrop_bpfel.go and kdrop_bpfel.o are committed, so building packetmortem
// needs no clang. After changing kdrop.c, kdrop.h or kernel.h run `go generate ./bpf/`
// (clang-14 and llvm-strip-14 from apt, libbpf-dev for the helper headers); the package's
// tests fail when the committed output is stale. clang is pinned to one major version
// because another one emits different bytes, and the staleness check compares bytes.
package bpf

//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -type event -type counters -type netns_source Kdrop kdrop.c -- -O2 -g -Wall -Werror
