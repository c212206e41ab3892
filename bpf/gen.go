// Package bpf is the kernel side of the kernel drop and path stages: kdrop.c, a kfree_skb
// program that keeps only one flow's drops; path.c, programs on the tracepoints along the
// kernel's path that keep only the flow's events; and the Go bindings bpf2go generates.
//
// The generated *_bpfel.go and *_bpfel.o are committed, so building packetmortem needs no
// clang. After changing a .c file, its .h or kernel.h run `go generate ./bpf/`
// (clang-14 and llvm-strip-14 from apt, libbpf-dev for the helper headers); the package's
// tests fail when the committed output is stale. clang is pinned to one major version
// because another one emits different bytes, and the staleness check compares bytes.
package bpf

//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -type event -type counters -type netns_source -type translation -type ct_tuple Kdrop kdrop.c -- -O2 -g -Wall -Werror
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -type event -type counters -type point -type netns_source -type match Path path.c -- -O2 -g -Wall -Werror
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -type capture_meta -type capture_counters Capture capture.c -- -O2 -g -Wall -Werror
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel Flowcheck flowcheck.c -- -O2 -g -Wall -Werror
