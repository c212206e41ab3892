package kallsyms

import (
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/internal/testns"
)

func loadFixture(t *testing.T, name string, addrs ...uint64) *Symbols {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Parse(f, addrs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	tcpV4Rcv     = 0xffffffff81a00010
	skbDrop      = 0xffffffff81b00000
	ipDeliver    = 0xffffffff81b00200
	bpfTraceRun4 = 0xffffffff81000200
	bpfProg      = 0xffffffffc0400000
	nftDoChain   = 0xffffffffc0500000
)

func TestFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr uint64
		want string
	}{
		{tcpV4Rcv + 0x91, "tcp_v4_rcv+0x91"},
		{tcpV4Rcv, "tcp_v4_rcv+0x0"},
		{tcpV4Rcv - 1, "__pfx_tcp_v4_rcv+0xf"},
		// Aliases at one address: the name without a leading underscore wins.
		{0xffffffff81000005, "srso_alias_untrain_ret+0x5"},
		// Data symbols are not code: the address stays in the text symbol before them.
		{0xffffffff82000010, "ip_local_deliver_finish+0x4ffc10"},
		{nftDoChain + 0x10, "nft_do_chain+0x10 [nf_tables]"},
		{0xffffffffc0500900, "nft_immediate_eval+0x100 [nf_tables]"},
		{0x1000, "0x1000"},
		// Far past the last symbol names nothing.
		{0xffffffffc0500800 + 2<<20, "0xffffffffc0700800"},
	}
	addrs := []uint64{nftDoChain + 4}
	for _, tc := range cases {
		addrs = append(addrs, tc.addr)
	}
	s := loadFixture(t, "kallsyms", addrs...)
	if s.Restricted {
		t.Fatal("fixture with addresses read as restricted")
	}
	for _, tc := range cases {
		if got := s.Format(tc.addr); got != tc.want {
			t.Errorf("Format(%#x) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	name, mod, off, ok := s.Lookup(nftDoChain + 4)
	if !ok || name != "nft_do_chain" || mod != "nf_tables" || off != 4 {
		t.Errorf("Lookup = %q %q %#x %v", name, mod, off, ok)
	}
	// Only the addresses asked about are named: another would be named wrongly.
	if got := s.Format(nftDoChain + 8); got != "0xffffffffc0500008" {
		t.Errorf("Format of an address not given to Parse = %q, want it raw", got)
	}
}

// The file is not sorted by address: a module's or a BPF program's symbols come after
// vmlinux's, and any line may name an address better than the lines before it.
func TestParseUnsorted(t *testing.T) {
	t.Parallel()
	const in = `ffffffffc0500000 t nft_do_chain	[nf_tables]
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81a00010 T tcp_v4_rcv
ffffffff81000000 T startup_64
ffffffff81a00000 t __pfx_tcp_v4_rcv
ffffffff81000000 T _head
ffffffffc0400000 t bpf_prog_1_kfree_skb	[bpf]
`
	want := map[uint64]string{
		0xffffffffc0500010: "nft_do_chain+0x10 [nf_tables]",
		0xffffffff81a00020: "tcp_v4_rcv+0x10",
		0xffffffff81a00008: "__pfx_tcp_v4_rcv+0x8",
		0xffffffff81000004: "startup_64+0x4",
		0xffffffffc0400001: "bpf_prog_1_kfree_skb+0x1 [bpf]",
	}
	// Asked twice: a stack and a call site often name the same address.
	addrs := append(slices.Collect(maps.Keys(want)), 0xffffffff81a00020)
	s, err := Parse(strings.NewReader(in), addrs)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range want {
		if got := s.Format(addr); got != want {
			t.Errorf("Format(%#x) = %q, want %q", addr, got, want)
		}
	}
}

func TestStackSkipsTracingFrames(t *testing.T) {
	t.Parallel()
	stack := []uint64{
		bpfProg + 0x50,
		bpfTraceRun4 + 0x40,
		0x10, // an unlisted JIT image
		skbDrop + 0x50,
		tcpV4Rcv + 0x91,
		ipDeliver + 0x30,
		skbDrop + 0x60, // not leading: a real frame, kept
	}
	s := loadFixture(t, "kallsyms", stack...)
	got := s.Stack(stack)
	want := []string{"tcp_v4_rcv+0x91", "ip_protocol_deliver_rcu+0x30", "sk_skb_reason_drop+0x60"}
	if !slices.Equal(got, want) {
		t.Errorf("Stack = %q, want %q", got, want)
	}
	if got := s.Stack(nil); len(got) != 0 {
		t.Errorf("Stack(nil) = %q", got)
	}
}

func TestIsTracingFrame(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"bpf_prog_6deef7357e7b4530_kfree_skb_btf": true,
		"bpf_trace_run4":        true,
		"__bpf_trace_kfree_skb": true,
		"__traceiter_kfree_skb": true,
		"trace_kfree_skb":       true,
		"kfree_skb_reason":      true,
		"sk_skb_reason_drop":    true,
		"kfree_skb_list_reason": true,
		"__kfree_skb":           true,
		"perf_trace_kfree_skb":  true,
		"trace_call_bpf":        true,
		"tcp_v4_rcv":            false,
		"nft_do_chain":          false,
		"kfree_skb_partial":     false,
	} {
		if got := isTracingFrame(name); got != want {
			t.Errorf("isTracingFrame(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRestrictedSymbols(t *testing.T) {
	t.Parallel()
	s := loadFixture(t, "kallsyms-restricted", bpfProg, tcpV4Rcv+0x91, tcpV4Rcv)
	if !s.Restricted {
		t.Fatal("all-zero addresses not detected as kptr_restrict")
	}
	got := s.Stack([]uint64{bpfProg, tcpV4Rcv + 0x91})
	want := []string{"0xffffffffc0400000", "0xffffffff81a000a1"}
	if !slices.Equal(got, want) {
		t.Errorf("Stack = %q, want raw %q", got, want)
	}
	if got := s.Format(tcpV4Rcv); got != "0xffffffff81a00010" {
		t.Errorf("Format = %q", got)
	}
}

func TestParseSymbolsErrors(t *testing.T) {
	t.Parallel()
	if _, err := Parse(strings.NewReader("zzzz T foo\n"), nil); err == nil {
		t.Error("bad address accepted")
	}
	if _, err := Parse(strings.NewReader("ffffffff82000000 D init_net\n"), nil); err == nil {
		t.Error("no text symbols accepted")
	}
}

// The host's own kallsyms parses, and names a function kfree_skb drops from.
func TestLoadSymbolsHost(t *testing.T) {
	t.Parallel()
	testns.SkipShort(t, "the running kernel's /proc/kallsyms")
	b, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Skipf("no /proc/kallsyms here: %v", err)
	}
	var addr uint64
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "tcp_v4_rcv" {
			if addr, err = strconv.ParseUint(f[0], 16, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	if addr == 0 {
		t.Skip("kallsyms addresses hidden (kptr_restrict), or no tcp_v4_rcv")
	}
	s, err := Load([]uint64{addr + 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Format(addr + 1); got != "tcp_v4_rcv+0x1" {
		t.Errorf("Format = %q", got)
	}
}
