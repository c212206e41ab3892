package xtables

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/testns"
)

type legacyFamily struct {
	name             string
	family           uint8
	restore, save    string
	rules, rec, text string
}

var legacyFamilies = []legacyFamily{
	{"ipv4", unix.NFPROTO_IPV4, "iptables-legacy-restore", "iptables-legacy-save", "testdata/legacy.iptables", "testdata/legacy-ipv4.rec", "testdata/legacy-ipv4.save"},
	{"ipv6", unix.NFPROTO_IPV6, "ip6tables-legacy-restore", "ip6tables-legacy-save", "testdata/legacy.ip6tables", "testdata/legacy-ipv6.rec", "testdata/legacy-ipv6.save"},
}

// newNS makes one namespace, nothing in it up: no packet moves a counter there.
func newLegacyNS(t *testing.T, tag string) string {
	t.Helper()
	testns.RequirePrivileges(t)
	requireLegacy(t)
	ns := testns.Name(tag)
	testns.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// requireLegacy skips the test on a kernel built without what the tests' rules use.
func requireLegacy(t *testing.T) {
	t.Helper()
	testns.RequireKernelConfig(t, "CONFIG_IP_NF_IPTABLES", "CONFIG_IP6_NF_IPTABLES", "CONFIG_IP_NF_FILTER", "CONFIG_IP6_NF_FILTER",
		"CONFIG_IP_NF_NAT", "CONFIG_IP6_NF_NAT", "CONFIG_IP_NF_RAW", "CONFIG_IP_NF_TARGET_REJECT", "CONFIG_IP6_NF_TARGET_REJECT",
		"CONFIG_NETFILTER_XT_MATCH_CONNTRACK", "CONFIG_NETFILTER_XT_MATCH_MULTIPORT", "CONFIG_NETFILTER_XT_MATCH_COMMENT",
		"CONFIG_NETFILTER_XT_TARGET_LOG")
}

// inNS runs fn on a thread in namespace ns.
func inLegacyNS(t *testing.T, ns string, fn func() error) {
	t.Helper()
	h, err := netns.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Do(fn); err != nil {
		t.Fatal(err)
	}
}

// restore loads rules (a file, or the text itself) with an iptables-*-restore in ns.
func restoreIn(t *testing.T, ns, tool, rules string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, testns.Tool(t, tool)}, args...)...)
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s\n%s", tool, err, out, rules)
	}
}

func readTestFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadLegacyMatchesSave loads a ruleset with iptables-legacy-restore and
// ip6tables-legacy-restore and checks every table ReadLegacy reads against
// iptables-legacy-save -c, chain by chain and rule by rule. With -record it keeps the
// kernel's answers for TestParseRecorded.
func TestReadLegacyMatchesSave(t *testing.T) {
	ns := newLegacyNS(t, "xl")
	for _, f := range legacyFamilies {
		restoreIn(t, ns, f.restore, readTestFile(t, f.rules), "-c")
	}
	for _, f := range legacyFamilies {
		t.Run(f.name, func(t *testing.T) {
			saved := testns.Run(t, "ip", "netns", "exec", ns, testns.Tool(t, f.save), "-c")
			want := parseSave(t, saved)
			var got []*Table
			var rec strings.Builder
			inLegacyNS(t, ns, func() error {
				names, err := LegacyTables(f.family)
				if err != nil {
					return err
				}
				for _, name := range names {
					tbl, err := ReadLegacy(f.family, name)
					if err != nil {
						return err
					}
					got = append(got, tbl)
					l, _ := layoutOf(f.family)
					info, blob, err := readRaw(l, name)
					if err != nil {
						return err
					}
					fmt.Fprintf(&rec, "table %s\ninfo %x\nentries %x\n", name, info, blob)
				}
				return nil
			})
			checkTables(t, got, want)
			if *record {
				header := fmt.Sprintf("# %s's answers to GET_INFO and GET_ENTRIES for %s, recorded by go test -run TestReadLegacyMatchesSave -record\n", f.restore, f.rules)
				if err := os.WriteFile(f.rec, []byte(header+rec.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f.text, []byte(saved), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestParseRecorded is TestReadLegacyMatchesSave without root: the recorded kernel
// answers, parsed, against the recorded save output.
func TestParseRecorded(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the blobs were recorded on a little-endian machine")
	}
	for _, f := range legacyFamilies {
		t.Run(f.name, func(t *testing.T) {
			l, _ := layoutOf(f.family)
			var got []*Table
			for _, r := range readRecording(t, f.rec) {
				tbl, err := parseLegacy(l, r.table, r.info, r.entries)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, tbl)
			}
			checkTables(t, got, parseSave(t, readTestFile(t, f.text)))
		})
	}
}

type recorded struct {
	table         string
	info, entries []byte
}

func readRecording(t testing.TB, path string) []recorded {
	t.Helper()
	var out []recorded
	sc := bufio.NewScanner(strings.NewReader(readTestFile(t, path)))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), " ")
		switch key {
		case "table":
			out = append(out, recorded{table: value})
		case "info", "entries":
			b, err := hex.DecodeString(value)
			if err != nil || len(out) == 0 {
				t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
			}
			if key == "info" {
				out[len(out)-1].info = b
			} else {
				out[len(out)-1].entries = b
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: nothing recorded", path)
	}
	return out
}

// checkTables compares the tables with the save output, in order, and spot-checks the
// extensions' data, which save prints only through libxtables.
func checkTables(t *testing.T, got []*Table, want []*savedTable) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d tables, save printed %d", len(got), len(want))
	}
	rules := 0
	for i := range got {
		compareWithSave(t, got[i], want[i])
		for _, c := range got[i].Chains {
			for _, r := range c.Rules {
				rules++
				for _, e := range append(slices.Clone(r.Matches), r.Target) {
					if len(e.Data)%8 != 0 {
						t.Errorf("%s %s: %s's data is %d bytes, not XT_ALIGNed", got[i].Name, c.Name, e.Name, len(e.Data))
					}
				}
			}
		}
	}
	if rules < 8 {
		t.Fatalf("only %d rules read", rules)
	}
	find := func(table, chain string, num int) *Rule {
		for _, tbl := range got {
			for _, c := range tbl.Chains {
				if tbl.Name == table && c.Name == chain && num <= len(c.Rules) {
					return &c.Rules[num-1]
				}
			}
		}
		return nil
	}
	switch got[0].Family {
	case unix.NFPROTO_IPV4:
		r := find("filter", "INPUT", 4)
		if r == nil || len(r.Matches) != 2 {
			t.Fatalf("filter INPUT 4: %+v", r)
		}
		if tcp := r.Matches[0]; tcp.Rev != 0 || len(tcp.Data) != 16 || binary.NativeEndian.Uint16(tcp.Data[4:]) != 80 || binary.NativeEndian.Uint16(tcp.Data[6:]) != 80 {
			t.Errorf("tcp --dport 80: %+v", tcp)
		}
		if c := r.Matches[1]; len(c.Data) != 256 || !strings.HasPrefix(string(c.Data), "web in\x00") {
			t.Errorf("comment: %q", c.Data)
		}
		if r := find("filter", "INPUT", 7); r == nil || r.Verdict != "" || r.Target.Name != "" || len(r.Matches) != 1 ||
			binary.NativeEndian.Uint16(r.Matches[0].Data[0:]) != 1000 || binary.NativeEndian.Uint16(r.Matches[0].Data[2:]) != 2000 || r.Matches[0].Data[8] != 0x02 {
			t.Errorf("filter INPUT 7 (udp --sport 1000:2000 ! --dport 53, no target): %+v", r)
		}
		if r := find("nat", "PREROUTING", 1); r == nil || r.Target.Name != "DNAT" || len(r.Target.Data) == 0 {
			t.Errorf("nat PREROUTING 1: %+v", r)
		}
		if r := find("filter", "AUDIT", 2); r == nil || r.Verdict != "RETURN" {
			t.Errorf("filter AUDIT 2 (an explicit RETURN, kept): %+v", r)
		}
	case unix.NFPROTO_IPV6:
		if r := find("filter", "INPUT", 3); r == nil || !r.Goto || r.Verdict != "SVC" || r.Src != netip.MustParsePrefix("2001:db8::1/128") {
			t.Errorf("filter INPUT 3: %+v", r)
		}
	}
}

// TestNoLegacyTables: in a namespace without x_tables tables the reader finds none and
// creates none, while the getsockopt it avoids would have created one.
func TestNoLegacyTables(t *testing.T) {
	ns := newLegacyNS(t, "xn")
	procNames := func() string {
		// A file is missing while its module is not loaded.
		return strings.TrimSpace(testns.Run(t, "ip", "netns", "exec", ns, "sh", "-c", "cat /proc/net/ip_tables_names /proc/net/ip6_tables_names 2>/dev/null; true"))
	}
	inLegacyNS(t, ns, func() error {
		for _, f := range legacyFamilies {
			if names, err := LegacyTables(f.family); err != nil || len(names) != 0 {
				return fmt.Errorf("%s: tables %v, %v; want none", f.name, names, err)
			}
			if tbl, err := ReadLegacy(f.family, "filter"); !errors.Is(err, ErrNoTable) {
				return fmt.Errorf("%s: ReadLegacy of a missing table: %v, %v; want ErrNoTable", f.name, tbl, err)
			}
		}
		if tables, err := ReadAllLegacy(); err != nil || len(tables) != 0 {
			return fmt.Errorf("ReadAllLegacy: %v, %v; want none", tables, err)
		}
		return nil
	})
	if got := procNames(); got != "" {
		t.Fatalf("reading created tables: %q", got)
	}
	// What ReadLegacy refuses to do: a getsockopt for the table creates it (once
	// ip_tables is loaded: without it the kernel does not know the option).
	created := false
	inLegacyNS(t, ns, func() error {
		_, _, err := readRaw(&ipv4Layout, "filter")
		if errors.Is(err, unix.ENOPROTOOPT) {
			t.Logf("ip_tables is not loaded: %v", err)
			return nil
		}
		if err != nil {
			return err
		}
		created = true
		names, err := LegacyTables(unix.NFPROTO_IPV4)
		if err != nil || !slices.Equal(names, []string{"filter"}) {
			return fmt.Errorf("after a getsockopt for filter: tables %v, %v", names, err)
		}
		tables, err := ReadAllLegacy()
		if err != nil || len(tables) != 1 {
			return fmt.Errorf("ReadAllLegacy: %v, %v", tables, err)
		}
		if LegacyInUse(tables) {
			return fmt.Errorf("an empty filter table with ACCEPT policies is in use: %+v", tables[0])
		}
		return nil
	})
	if got := procNames(); created && got != "filter" {
		t.Fatalf("after a getsockopt for filter, the namespace lists %q", got)
	}
}

// TestWhoDropped sends UDP from the client to the server namespace, whose
// iptables-legacy rules accept one port and drop two others in user chains, and checks
// that Grown sees every rule the packets crossed and Candidates names only the DROP rule
// of the flow's port.
func TestWhoDropped(t *testing.T) {
	requireLegacy(t)
	p := testns.NewPair(t, "xw")
	okPort, dropPort, otherPort := testns.Port(), testns.Port(), testns.Port()
	const n = 5
	for _, f := range []struct {
		name, restore, net string
		family             uint8
		client, server     string
	}{
		{"ipv4", "iptables-legacy-restore", "198.51.100.0/24", unix.NFPROTO_IPV4, testns.ClientV4, testns.ServerV4},
		{"ipv6", "ip6tables-legacy-restore", "2001:db8::/64", unix.NFPROTO_IPV6, testns.ClientV6, testns.ServerV6},
	} {
		t.Run(f.name, func(t *testing.T) {
			restoreIn(t, p.Server, f.restore, fmt.Sprintf(`*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:GUARD - [0:0]
:SVC - [0:0]
-A INPUT -p udp -m udp --dport %[1]d -j ACCEPT
-A INPUT -s %[4]s -i veth+ -p udp -j SVC
-A INPUT -p tcp -j DROP
-A FORWARD -p udp -j DROP
-A GUARD -p udp -m multiport --dports 9,%[2]d -j DROP
-A GUARD -j RETURN
-A SVC -p udp -m udp --dport %[3]d -j DROP
-A SVC -p udp -g GUARD
COMMIT
`, okPort, dropPort, otherPort, f.net))
			read := func() (tables []*Table) {
				inLegacyNS(t, p.Server, func() (err error) {
					tables, err = ReadAllLegacy()
					return err
				})
				return tables
			}
			before := read()
			client, server := netip.MustParseAddr(f.client), netip.MustParseAddr(f.server)
			for _, port := range []uint16{okPort, dropPort, otherPort} {
				inLegacyNS(t, p.Client, func() error {
					c, err := net.ListenUDP("udp", nil)
					if err != nil {
						return err
					}
					defer c.Close()
					for range n {
						if _, err := c.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(server, port)); err != nil {
							return err
						}
					}
					return nil
				})
			}
			want := map[string]uint64{"filter INPUT 1": n, "filter INPUT 2": 2 * n, "filter SVC 1": n, "filter SVC 2": n, "filter GUARD 1": n}
			var after []*Table
			var grown []RuleRef
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				after = read()
				grown = GrownAll(before, after)
				got := map[string]uint64{}
				for _, g := range grown {
					if !g.Policy() {
						got[fmt.Sprintf("%s %s %d", g.Table, g.Chain, g.Num)] = g.Packets
					} else if g.Chain != "INPUT" && g.Chain != "OUTPUT" {
						t.Errorf("policy of %s grew by %d", g.Chain, g.Packets)
					}
				}
				if fmt.Sprint(got) == fmt.Sprint(want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("grown rules %v, want %v", got, want)
				}
			}
			if !LegacyInUse(after) {
				t.Error("LegacyInUse false with rules loaded")
			}
			pkt := Packet{Src: client, Dst: server, Proto: unix.IPPROTO_UDP, SrcPort: 40000, DstPort: dropPort, InIface: "veth0"}
			got := Candidates(after, grown, "input", pkt)
			if len(got) != 1 || got[0].Family != f.family || got[0].Table != "filter" || got[0].Chain != "GUARD" || got[0].Num != 1 ||
				got[0].Packets != n || got[0].Rule.Verdict != "DROP" {
				t.Errorf("candidates for the dropped flow: %s, want filter GUARD 1", legacyRefs(got))
			}
			// The same flow seen only by its server end: both DROP rules of the chains may
			// have dropped it, the jumps to them are no candidates of their own.
			if got := legacyRefs(Candidates(after, grown, "input", Packet{Dst: server, Proto: unix.IPPROTO_UDP})); got != "filter GUARD 1, filter SVC 1" {
				t.Errorf("candidates for a packet to the server, ports unknown: %s", got)
			}
			for _, c := range []struct {
				what string
				hook string
				p    Packet
			}{
				{"the accepted port", "input", Packet{Src: client, Dst: server, Proto: unix.IPPROTO_UDP, DstPort: okPort}},
				{"a drop at forward", "forward", pkt},
				{"another source", "input", Packet{Src: netip.MustParseAddr(map[uint8]string{unix.NFPROTO_IPV4: "203.0.113.1", unix.NFPROTO_IPV6: "2001:db8:1::1"}[f.family]), Dst: server, Proto: unix.IPPROTO_UDP, DstPort: dropPort}},
				{"another interface", "input", Packet{Src: client, Dst: server, Proto: unix.IPPROTO_UDP, DstPort: dropPort, InIface: "eth0"}},
			} {
				if got := Candidates(after, grown, c.hook, c.p); len(got) != 0 {
					t.Errorf("candidates for %s: %s, want none", c.what, legacyRefs(got))
				}
			}
		})
	}
}

func legacyRefs(rs []RuleRef) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%s %s %d", r.Table, r.Chain, r.Num))
	}
	return strings.Join(s, ", ")
}

// FuzzParseLegacy: whatever the blob, the parser returns a table or an error, never
// panics; seeded with the recorded tables.
func FuzzParseLegacy(f *testing.F) {
	for _, fam := range legacyFamilies {
		for _, r := range readRecording(f, fam.rec) {
			f.Add(fam.family == unix.NFPROTO_IPV6, r.info, r.entries)
		}
	}
	f.Fuzz(func(t *testing.T, v6 bool, info, blob []byte) {
		l := &ipv4Layout
		if v6 {
			l = &ipv6Layout
		}
		_, _ = parseLegacy(l, "fuzz", info, blob)
	})
}
