package kallsyms

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Symbols maps kernel text addresses to function names, from /proc/kallsyms.
type Symbols struct {
	syms []symbol // sorted by addr
	// Restricted is true when every address read 0: kptr_restrict hides them from us, and
	// addresses can only be printed raw.
	Restricted bool
}

type symbol struct {
	addr   uint64
	name   string
	module string // "" for vmlinux
}

// maxSymbolSize bounds how far past the last symbol an address may still be attributed to
// it; beyond, the address is printed raw rather than misnamed.
const maxSymbolSize = 1 << 20

// Load reads /proc/kallsyms once; Lookup is then a binary search.
func Load() (*Symbols, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads the kallsyms format, "ADDR TYPE NAME [MODULE]" per line, keeping
// text symbols: a stack frame or a call site is always in code. It parses bytes in place:
// kallsyms has ~200k lines, and a string per field would be most of diagnose's memory.
func Parse(r io.Reader) (*Symbols, error) {
	s := &Symbols{}
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
		name, module := line[sp+3:], []byte(nil)
		if i := bytes.IndexAny(name, " \t"); i >= 0 {
			name, module = name[:i], bytes.Trim(name[i+1:], " \t[]")
		}
		sym := symbol{addr: addr, name: string(name)}
		if len(module) > 0 {
			m, ok := modules[string(module)]
			if !ok {
				m = string(module)
				modules[m] = m
			}
			sym.module = m
		}
		if addr != 0 {
			nonzero = true
		}
		s.syms = append(s.syms, sym)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	if len(s.syms) == 0 {
		return nil, fmt.Errorf("read kernel symbols: no text symbols")
	}
	if !nonzero {
		s.Restricted = true
		s.syms = nil
		return s, nil
	}
	sort.SliceStable(s.syms, func(i, j int) bool { return s.syms[i].addr < s.syms[j].addr })
	s.syms = dedupe(s.syms)
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

// dedupe keeps one name per address. Aliases share addresses (_text, _stext); a name
// without a leading underscore is the one a reader recognises.
func dedupe(syms []symbol) []symbol {
	out := syms[:0]
	for _, sym := range syms {
		if n := len(out); n > 0 && out[n-1].addr == sym.addr {
			if strings.HasPrefix(out[n-1].name, "_") && !strings.HasPrefix(sym.name, "_") {
				out[n-1] = sym
			}
			continue
		}
		out = append(out, sym)
	}
	return out
}

// Lookup returns the symbol containing addr and the offset into it.
func (s *Symbols) Lookup(addr uint64) (name, module string, off uint64, ok bool) {
	if s == nil || len(s.syms) == 0 {
		return "", "", 0, false
	}
	i := sort.Search(len(s.syms), func(i int) bool { return s.syms[i].addr > addr }) - 1
	if i < 0 {
		return "", "", 0, false
	}
	sym := s.syms[i]
	off = addr - sym.addr
	if i == len(s.syms)-1 && off >= maxSymbolSize {
		return "", "", 0, false
	}
	return sym.name, sym.module, off, true
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
