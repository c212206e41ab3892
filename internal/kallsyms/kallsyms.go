package kallsyms

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Symbols names the kernel text addresses it was asked about, from /proc/kallsyms.
type Symbols struct {
	addrs []uint64 // the addresses asked about, sorted, unique
	syms  []symbol // syms[i] contains addrs[i] when ok
	// Restricted is true when every address read 0: kptr_restrict hides them from us, and
	// addresses can only be printed raw.
	Restricted bool
}

type symbol struct {
	addr   uint64
	name   string
	module string // "" for vmlinux
	ok     bool
}

// maxSymbolSize bounds how far past the last symbol an address may still be attributed to
// it; beyond, the address is printed raw rather than misnamed.
const maxSymbolSize = 1 << 20

// Load reads /proc/kallsyms once and keeps the symbols that contain addrs; Lookup then
// answers for those addresses.
func Load(addrs []uint64) (*Symbols, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	defer f.Close()
	return Parse(f, addrs)
}

// Parse reads the kallsyms format, "ADDR TYPE NAME [MODULE]" per line, keeping for each of
// addrs the text symbol at or below it: a stack frame or a call site is always in code.
// It streams, holding nothing per line: kallsyms has ~200k lines, and a table of its text
// symbols took 13 MiB of heap (30 MiB allocated) as the report was made. The file is not
// sorted by address (modules, BPF programs), so each line may improve any address above it.
func Parse(r io.Reader, addrs []uint64) (*Symbols, error) {
	s := &Symbols{addrs: slices.Compact(slices.Sorted(slices.Values(addrs)))}
	s.syms = make([]symbol, len(s.addrs))
	var texts int
	var top uint64 // the highest text symbol
	nonzero := false
	modules := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 || len(line) < sp+4 || line[sp+2] != ' ' {
			continue
		}
		addr, ok := parseHex(line[:sp])
		if !ok {
			return nil, fmt.Errorf("parse kernel symbols: bad address in %q", line)
		}
		switch line[sp+1] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		texts++
		nonzero = nonzero || addr != 0
		top = max(top, addr)
		name, module := line[sp+3:], []byte(nil)
		if i := bytes.IndexAny(name, " \t"); i >= 0 {
			name, module = name[:i], bytes.Trim(name[i+1:], " \t[]")
		}
		var sym *symbol // built once, for the first address it improves
		i, _ := slices.BinarySearch(s.addrs, addr)
		// The best symbol of each address rises with the address: past the first whose
		// best is above this line's, none can improve.
		for ; i < len(s.addrs); i++ {
			best := &s.syms[i]
			if best.ok && (best.addr > addr || best.addr == addr && !betterAlias(name, best.name)) {
				break
			}
			if sym == nil {
				sym = &symbol{addr: addr, name: string(name), ok: true}
				if len(module) > 0 {
					m, ok := modules[string(module)]
					if !ok {
						m = string(module)
						modules[m] = m
					}
					sym.module = m
				}
			}
			*best = *sym
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	if texts == 0 {
		return nil, fmt.Errorf("read kernel symbols: no text symbols")
	}
	if !nonzero {
		s.Restricted = true
		s.syms = make([]symbol, len(s.addrs))
		return s, nil
	}
	for i, a := range s.addrs {
		if sym := &s.syms[i]; sym.ok && sym.addr == top && a-top >= maxSymbolSize {
			*sym = symbol{}
		}
	}
	return s, nil
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// betterAlias says whether name should replace kept, another name at the same address.
// Aliases share addresses (_text, _stext); a name without a leading underscore is the one
// a reader recognises, and the first listed otherwise.
func betterAlias(name []byte, kept string) bool {
	return strings.HasPrefix(kept, "_") && !bytes.HasPrefix(name, []byte("_"))
}

// Lookup returns the symbol containing addr and the offset into it. It knows only the
// addresses given to Load or Parse: any other names nothing.
func (s *Symbols) Lookup(addr uint64) (name, module string, off uint64, ok bool) {
	if s == nil {
		return "", "", 0, false
	}
	i, found := slices.BinarySearch(s.addrs, addr)
	if !found || !s.syms[i].ok {
		return "", "", 0, false
	}
	sym := s.syms[i]
	return sym.name, sym.module, addr - sym.addr, true
}

// Format prints addr as the kernel's %pS does: tcp_v4_rcv+0x91, with " [module]" for a
// module's symbol, or the raw address when it names nothing.
func (s *Symbols) Format(addr uint64) string {
	name, mod, off, ok := s.Lookup(addr)
	if !ok {
		return fmt.Sprintf("0x%x", addr)
	}
	out := fmt.Sprintf("%s+0x%x", name, off)
	if mod != "" {
		out += " [" + mod + "]"
	}
	return out
}

// Functions the drop passes through after the dropping caller: the kfree_skb family and
// the tracepoint and BPF machinery that ran our program. Matched by name, never by count:
// which of them appear depends on the kernel version, the attach type and inlining.
var (
	tracingFrameNames = map[string]bool{
		"kfree_skb":                 true,
		"kfree_skb_reason":          true,
		"sk_skb_reason_drop":        true,
		"kfree_skb_list_reason":     true,
		"__kfree_skb":               true,
		"trace_kfree_skb":           true,
		"trace_call_bpf":            true,
		"perf_trace_run_bpf_submit": true,
		"perf_tp_event":             true,
	}
	tracingFramePrefixes = []string{
		"bpf_prog_",
		"bpf_trace_run",
		"__bpf_trace_",
		"__traceiter_",
		"perf_trace_",
		"trace_event_raw_event_",
	}
)

func isTracingFrame(name string) bool {
	if tracingFrameNames[name] {
		return true
	}
	for _, p := range tracingFramePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Stack symbolizes a kernel stack, innermost first, without the leading tracing frames.
// Leading frames that name nothing are dropped too: they are the JITed BPF program when
// the kernel does not list BPF programs in kallsyms. With Restricted symbols nothing can be
// recognised, and the stack is returned whole, as raw addresses.
func (s *Symbols) Stack(addrs []uint64) []string {
	out := make([]string, 0, len(addrs))
	leading := s != nil && !s.Restricted
	for _, a := range addrs {
		if leading {
			name, _, _, ok := s.Lookup(a)
			if !ok || isTracingFrame(name) {
				continue
			}
			leading = false
		}
		out = append(out, s.Format(a))
	}
	return out
}
