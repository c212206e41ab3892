package report

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Pseudonym ranges: addresses that still parse where the model holds a netip.Addr, and that
// a reader knows for fake: the benchmarking range (RFC 2544) and the documentation prefix.
var (
	pseudo4 = netip.MustParsePrefix("198.18.0.0/15")
	pseudo6 = netip.MustParsePrefix("2001:db8:ffff::/48")
)

// redactNote says in the report what Redact did; its presence marks a redacted report.
var redactNote = fmt.Sprintf("redacted: IP addresses are replaced by stable pseudonyms (IPv4 in %s, IPv6 in %s; loopback, unspecified and multicast addresses are kept), the host name by host-1 and namespace names by netns-N; ports, interface names, reasons, functions and stacks are as recorded", pseudo4, pseudo6)

// Redact returns a deep copy of the report fit to attach to a public ticket: every IP
// address (in the flow, packets, traces, drops, routes, listeners, rule text, the
// verdict's sentences and the command lines), the host name and the network namespace
// names are replaced by stable pseudonyms: the same original gets the same pseudonym
// everywhere in the report. IPv4 addresses become 198.18.0.N and IPv6 ones 2001:db8:ffff::N
// (an IPv4-mapped address stays mapped), so typed fields still parse; the flow's address is
// the first. Ports, interface names, drop reasons, functions, stacks, times and counts are
// kept, so the verdict reads the same. A note in Run.Notes says the report is redacted.
func Redact(r *Report) *Report {
	rd := &redactor{
		addrs:     map[netip.Addr]netip.Addr{},
		names:     map[string]string{},
		redacted:  slices.Contains(r.Run.Notes, redactNote),
		originals: map[netip.Addr]bool{},
	}
	rd.collect(r)
	out := rd.value(reflect.ValueOf(r), false).Interface().(*Report)
	if !rd.redacted {
		out.Run.Notes = append(out.Run.Notes, redactNote)
	}
	return out
}

type redactor struct {
	addrs      map[netip.Addr]netip.Addr // original (unmapped) -> pseudonym
	order      []netip.Addr
	originals  map[netip.Addr]bool
	names      map[string]string // host and namespace names -> pseudonym
	nameRE     *regexp.Regexp
	collecting bool
	// redacted: the report was redacted before; its pseudonyms stay as they are.
	redacted bool
}

// keptFields are the JSON names whose text is kept as recorded: kernel facts that hold no
// address or name of this host, and must stay searchable.
var keptFields = map[string]bool{"stack": true, "function": true, "location": true, "at": true, "reason": true, "kernel": true, "version": true, "attach": true}

// netnsInText finds namespace names in command lines (ip netns exec NAME, ip -n NAME,
// nsenter --net=/run/netns/NAME) and in the verdict's sentences ("namespace NAME (inode)").
var netnsInText = regexp.MustCompile(`(?:\bnetns exec |\bip -n |\bip -netns |--netns[= ]|/run/netns/)([A-Za-z0-9_.@+-]+)|\b(?:namespace|netns) ([A-Za-z0-9_.@+-]+) \(\d+\)`)

func (rd *redactor) collect(r *Report) {
	// The flow's address first: it becomes 198.18.0.1 or 2001:db8:ffff::1.
	rd.collecting = true
	rd.addr(r.Flow.Addr)
	if r.Host.Hostname != "" {
		rd.names[r.Host.Hostname] = "host-1"
	}
	rd.netns(r.Host.Netns.Name)
	rd.value(reflect.ValueOf(r), false)
	// Command lines hold names across arguments: ip netns exec NAME.
	rd.text(strings.Join(r.Run.Args, " "))
	rd.text(strings.Join(r.Run.Reproduction, " "))
	rd.collecting = false
	// Assign in order of first appearance, skipping pseudonyms that are some original.
	n4, n6 := 0, 0
	for _, a := range rd.order {
		var p netip.Addr
		for {
			if a.Is4() {
				n4++
				p = nthAddr(pseudo4, n4)
				if last := p.As4()[3]; last == 0 || last == 255 {
					continue
				}
			} else {
				n6++
				p = nthAddr(pseudo6, n6)
			}
			if !rd.originals[p] {
				break
			}
		}
		rd.addrs[a] = p
	}
	var names []string
	for name := range rd.names {
		names = append(names, regexp.QuoteMeta(name))
	}
	// Longest first, so that a name never matches inside a longer one.
	sort.Slice(names, func(i, j int) bool {
		return len(names[i]) > len(names[j]) || len(names[i]) == len(names[j]) && names[i] < names[j]
	})
	if len(names) > 0 {
		rd.nameRE = regexp.MustCompile(strings.Join(names, "|"))
	}
}

// nthAddr is the n-th address of a prefix.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	b := p.Addr().AsSlice()
	for i := len(b) - 1; i >= 0 && n > 0; i-- {
		n += int(b[i])
		b[i] = byte(n)
		n >>= 8
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (rd *redactor) netns(name string) {
	if name == "" || rd.names[name] != "" || rd.redacted && strings.HasPrefix(name, "netns-") {
		return
	}
	n := 0
	for _, p := range rd.names {
		if strings.HasPrefix(p, "netns-") {
			n++
		}
	}
	rd.names[name] = fmt.Sprintf("netns-%d", n+1)
}

// kept: addresses that say nothing about the host, and pseudonyms of an earlier Redact.
func (rd *redactor) kept(a netip.Addr) bool {
	return !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() ||
		rd.redacted && (pseudo4.Contains(a) || pseudo6.Contains(a))
}

// addr returns the pseudonym of a (collecting it on the first pass).
func (rd *redactor) addr(a netip.Addr) netip.Addr {
	zone := a.Zone()
	base := a.WithZone("").Unmap()
	if rd.kept(base) {
		return a
	}
	if rd.collecting {
		if _, ok := rd.addrs[base]; !ok {
			rd.addrs[base] = netip.Addr{}
			rd.order = append(rd.order, base)
			rd.originals[base] = true
		}
		return a
	}
	p := rd.addrs[base]
	if a.Is4In6() {
		p = netip.AddrFrom16(p.As16())
	}
	if zone != "" {
		p = p.WithZone(zone)
	}
	return p
}

// text replaces the addresses and names in s.
func (rd *redactor) text(s string) string {
	var b strings.Builder
	last := 0
	scanAddrs(s, func(start, end int, a netip.Addr) {
		p := rd.addr(a)
		b.WriteString(s[last:start])
		b.WriteString(p.String())
		last = end
	})
	b.WriteString(s[last:])
	s = b.String()
	if rd.collecting {
		for _, m := range netnsInText.FindAllStringSubmatch(s, -1) {
			name := m[1] + m[2]
			if _, err := netip.ParseAddr(name); err != nil && !isNumber(name) {
				rd.netns(name)
			}
		}
		return s
	}
	if rd.nameRE == nil {
		return s
	}
	b.Reset()
	last = 0
	for _, m := range rd.nameRE.FindAllStringIndex(s, -1) {
		if m[0] > 0 && isNameByte(s[m[0]-1]) || m[1] < len(s) && isNameByte(s[m[1]]) {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(rd.names[s[m[0]:m[1]]])
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

func isNumber(s string) bool { return strings.Trim(s, "0123456789") == "" }

func isNameByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

func isAddrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
}

var dottedQuad = regexp.MustCompile(`[0-9]{1,3}(?:\.[0-9]{1,3}){3}`)

// scanAddrs calls fn for each IP address written in s, with its place: runs of hex digits,
// dots and colons that parse as an address once sentence punctuation is trimmed, an
// address before a :port, or a dotted quad inside a longer run.
func scanAddrs(s string, fn func(start, end int, a netip.Addr)) {
	for i := 0; i < len(s); {
		if !isAddrByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAddrByte(s[j]) {
			j++
		}
		run := s[i:j]
		i0 := i
		i = j
		if !strings.ContainsAny(run, ".:") {
			continue
		}
		trimmed := strings.TrimRight(run, ".:")
		if a, err := netip.ParseAddr(trimmed); err == nil {
			fn(i0, i0+len(trimmed), a)
			continue
		}
		if ap, err := netip.ParseAddrPort(trimmed); err == nil && ap.Addr().Is4() {
			host := trimmed[:strings.LastIndexByte(trimmed, ':')]
			fn(i0, i0+len(host), ap.Addr())
			continue
		}
		for _, m := range dottedQuad.FindAllStringIndex(run, -1) {
			before, after := m[0]-1, m[1]
			if before >= 0 && (run[before] == '.' || run[before] >= '0' && run[before] <= '9') {
				continue
			}
			if after < len(run) && (run[after] >= '0' && run[after] <= '9' || run[after] == '.' && after+1 < len(run) && run[after+1] >= '0' && run[after+1] <= '9') {
				continue
			}
			if a, err := netip.ParseAddr(run[m[0]:m[1]]); err == nil {
				fn(i0+m[0], i0+m[1], a)
			}
		}
	}
}

var (
	typeTime     = reflect.TypeFor[time.Time]()
	typeAddr     = reflect.TypeFor[netip.Addr]()
	typeAddrPort = reflect.TypeFor[netip.AddrPort]()
	typeString   = reflect.TypeFor[string]()
	typeNetns    = reflect.TypeFor[evidence.Netns]()
)

// value returns a deep copy of v with addresses and names replaced; keep leaves the text
// of strings as it is (addresses are still collected). Named string types are enums
// (stages, outcomes, directions) and are kept.
func (rd *redactor) value(v reflect.Value, keep bool) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(rd.value(v.Elem(), keep))
			out.Set(p)
		}
	case reflect.Struct:
		switch v.Type() {
		case typeTime:
			out.Set(v)
		case typeAddr:
			out.Set(reflect.ValueOf(rd.addr(v.Interface().(netip.Addr))))
		case typeAddrPort:
			ap := v.Interface().(netip.AddrPort)
			if ap.IsValid() {
				ap = netip.AddrPortFrom(rd.addr(ap.Addr()), ap.Port())
			}
			out.Set(reflect.ValueOf(ap))
		default:
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if !f.IsExported() {
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if rd.collecting && f.Type == typeString && (name == "netns_name" || v.Type() == typeNetns && name == "name") {
					rd.netns(v.Field(i).String())
				}
				out.Field(i).Set(rd.value(v.Field(i), keptFields[name]))
			}
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			for i := range v.Len() {
				s.Index(i).Set(rd.value(v.Index(i), keep))
			}
			out.Set(s)
		}
	case reflect.Map:
		if !v.IsNil() {
			m := reflect.MakeMapWithSize(v.Type(), v.Len())
			keys := v.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
			for _, k := range keys {
				m.SetMapIndex(rd.value(k, keep), rd.value(v.MapIndex(k), keep))
			}
			out.Set(m)
		}
	case reflect.String:
		s := v.String()
		if v.Type() == typeString {
			t := rd.text(s)
			if !keep {
				s = t
			}
		}
		out.SetString(s)
	default:
		out.Set(v)
	}
	return out
}
