package xtables

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kballard/go-shellquote"
)

// A minimal reading of iptables-legacy-save -c output, what the tests compare the reader
// with: chains with policies and counters; per rule its counters, header flags, the
// names of its -m matches in order and its -j or -g target.

type savedRule struct {
	packets, bytes uint64
	src, dst       string
	in, out        string
	proto          string
	frag           bool
	inv            uint8
	matches        []string
	target         string
	gotoTarget     bool
}

type savedChain struct {
	name, policy   string
	packets, bytes uint64
	rules          []savedRule
}

type savedTable struct {
	name   string
	chains []*savedChain
}

var (
	saveChainRE = regexp.MustCompile(`^:(\S+) (\S+) \[(\d+):(\d+)\]$`)
	saveRuleRE  = regexp.MustCompile(`^\[(\d+):(\d+)\] -A (\S+) ?(.*)$`)
)

func parseSave(t *testing.T, text string) []*savedTable {
	t.Helper()
	var tables []*savedTable
	var cur *savedTable
	chain := func(name string) *savedChain {
		for _, c := range cur.chains {
			if c.name == name {
				return c
			}
		}
		t.Fatalf("rule of undeclared chain %s", name)
		return nil
	}
	num := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			cur = &savedTable{name: line[1:]}
			tables = append(tables, cur)
		case saveChainRE.MatchString(line):
			m := saveChainRE.FindStringSubmatch(line)
			policy := m[2]
			if policy == "-" {
				policy = ""
			}
			cur.chains = append(cur.chains, &savedChain{name: m[1], policy: policy, packets: num(m[3]), bytes: num(m[4])})
		case saveRuleRE.MatchString(line):
			m := saveRuleRE.FindStringSubmatch(line)
			words, err := shellquote.Split(m[4])
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			r := savedRule{packets: num(m[1]), bytes: num(m[2])}
			parseSavedRule(t, words, &r)
			c := chain(m[3])
			c.rules = append(c.rules, r)
		default:
			t.Fatalf("unexpected save line %q", line)
		}
	}
	return tables
}

// parseSavedRule reads the header flags up to the first -m, -j or -g, then the match
// names and the target; match and target options are skipped.
func parseSavedRule(t *testing.T, words []string, r *savedRule) {
	t.Helper()
	header, inv := true, false
	for i := 0; i < len(words); i++ {
		w := words[i]
		arg := func() string {
			if i+1 >= len(words) {
				t.Fatalf("%q: %s without argument", words, w)
			}
			i++
			return words[i]
		}
		var bit uint8
		switch {
		case w == "!":
			inv = true
			continue
		case w == "-m":
			header = false
			r.matches = append(r.matches, arg())
		case w == "-j" || w == "-g":
			r.target, r.gotoTarget = arg(), w == "-g"
			return
		case header && w == "-s":
			r.src, bit = arg(), InvSrc
		case header && w == "-d":
			r.dst, bit = arg(), InvDst
		case header && w == "-i":
			r.in, bit = arg(), InvInIface
		case header && w == "-o":
			r.out, bit = arg(), InvOutIface
		case header && w == "-p":
			r.proto, bit = arg(), InvProto
		case header && w == "-f":
			r.frag, bit = true, InvFrag
		case header:
			t.Fatalf("%q: unknown header flag %s", words, w)
		}
		if inv {
			r.inv |= bit
		}
		inv = false
	}
}

var saveProtos = map[string]uint8{"": 0, "icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58, "icmpv6": 58}

// compareWithSave checks the model against the save output, field by field.
func compareWithSave(t *testing.T, got *Table, want *savedTable) {
	t.Helper()
	if got.Name != want.name {
		t.Errorf("table %s, save has %s", got.Name, want.name)
		return
	}
	var gotNames, wantNames []string
	for _, c := range got.Chains {
		gotNames = append(gotNames, c.Name)
	}
	for _, c := range want.chains {
		wantNames = append(wantNames, c.name)
	}
	if !slices.Equal(gotNames, wantNames) {
		t.Errorf("table %s: chains %v, save has %v", got.Name, gotNames, wantNames)
		return
	}
	for i, c := range got.Chains {
		w := want.chains[i]
		where := got.Name + " " + c.Name
		if c.Policy != w.policy || c.Packets != w.packets || c.Bytes != w.bytes {
			t.Errorf("%s: policy %q [%d:%d], save has %q [%d:%d]", where, c.Policy, c.Packets, c.Bytes, w.policy, w.packets, w.bytes)
		}
		if len(c.Rules) != len(w.rules) {
			t.Errorf("%s: %d rules, save has %d", where, len(c.Rules), len(w.rules))
			continue
		}
		for j := range c.Rules {
			compareRule(t, fmt.Sprintf("%s rule %d", where, j+1), &c.Rules[j], &w.rules[j])
		}
	}
}

func compareRule(t *testing.T, where string, r *Rule, w *savedRule) {
	t.Helper()
	prefix := func(p netip.Prefix) string {
		if !p.IsValid() {
			return ""
		}
		return p.String()
	}
	var names []string
	for _, m := range r.Matches {
		names = append(names, m.Name)
	}
	target := r.Verdict
	if r.Target.Name != "" {
		target = r.Target.Name
	}
	got := fmt.Sprintf("[%d:%d] s=%s d=%s i=%s o=%s p=%d f=%v inv=%#x m=%v t=%s g=%v",
		r.Packets, r.Bytes, prefix(r.Src), prefix(r.Dst), r.InIface, r.OutIface, r.Proto, r.Frag, r.Inv, names, target, r.Goto)
	proto, ok := saveProtos[w.proto]
	if !ok {
		t.Fatalf("%s: protocol %q unknown to the test", where, w.proto)
	}
	want := fmt.Sprintf("[%d:%d] s=%s d=%s i=%s o=%s p=%d f=%v inv=%#x m=%v t=%s g=%v",
		w.packets, w.bytes, w.src, w.dst, w.in, w.out, proto, w.frag, w.inv, w.matches, w.target, w.gotoTarget)
	if got != want {
		t.Errorf("%s:\n read %s\n save %s", where, got, want)
	}
}
