package hoststate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Fixtures: testdata/proc/before holds this machine's /proc/net/{snmp,netstat,snmp6,softnet_stat};
// testdata/proc/after the same with Udp NoPorts +3, Ip InReceives +10, Icmp OutDestUnreachs +3,
// TcpExt ListenOverflows and ListenDrops +2, Udp6 NoPorts +1, softnet dropped +5 on CPU 1;
// stat/nf_conntrack (two CPUs) invalid +3 on CPU 1, its entries gauge 5 then 7.

func TestReadCounters(t *testing.T) {
	t.Parallel()
	c, errs := readCounters(filepath.Join("testdata", "proc", "before"))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	for name, want := range map[string]uint64{
		"Ip Forwarding":            2,
		"Ip InReceives":            6963,
		"Udp InDatagrams":          45,
		"Udp NoPorts":              0,
		"Tcp ActiveOpens":          42,
		"IcmpMsg InType3":          1,
		"TcpExt TW":                40,
		"IpExt InNoRoutes":         0,
		"Ip6 InReceives":           1,
		"Udp6 NoPorts":             0,
		"Icmp6 InMsgs":             1,
		"UdpLite6 InErrors":        0,
		"Conntrack invalid":        12,
		"Conntrack search_restart": 1,
	} {
		got, ok := c[name]
		if !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", name, got, ok, want)
		}
	}
	if _, ok := c["Conntrack entries"]; ok {
		t.Errorf("Conntrack entries (a gauge) read as a counter")
	}
	if _, ok := c["Tcp MaxConn"]; ok {
		t.Errorf("Tcp MaxConn (-1, a constant) read as a counter")
	}
}

func TestCounterDeltas(t *testing.T) {
	t.Parallel()
	before, errs := readCounters(filepath.Join("testdata", "proc", "before"))
	after, errs2 := readCounters(filepath.Join("testdata", "proc", "after"))
	if len(errs)+len(errs2) != 0 {
		t.Fatal(errs, errs2)
	}
	got := counterDeltas(before, after)
	want := []evidence.Counter{
		{Name: "Conntrack invalid", Before: 12, After: 15, Delta: 3},
		{Name: "Icmp OutDestUnreachs", Before: 0, After: 3, Delta: 3},
		{Name: "Ip InReceives", Before: 6963, After: 6973, Delta: 10},
		{Name: "TcpExt ListenDrops", Before: 0, After: 2, Delta: 2},
		{Name: "TcpExt ListenOverflows", Before: 0, After: 2, Delta: 2},
		{Name: "Udp NoPorts", Before: 0, After: 3, Delta: 3},
		{Name: "Udp6 NoPorts", Before: 0, After: 1, Delta: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("deltas %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("delta %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Counters that went down (reset, or a gauge) or appeared only after are left out.
	if d := counterDeltas(map[string]uint64{"A x": 5, "B y": 1}, map[string]uint64{"A x": 4, "B y": 1, "C z": 9}); len(d) != 0 {
		t.Errorf("deltas %+v, want none", d)
	}
}

func TestParseSNMPErrors(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"no values":     "Udp: InDatagrams NoPorts\n",
		"count differs": "Udp: InDatagrams NoPorts\nUdp: 1\n",
		"other group":   "Udp: InDatagrams\nTcp: 1\n",
		"not a number":  "Udp: InDatagrams\nUdp: x\n",
	} {
		if err := parseSNMP(strings.NewReader(in), map[string]uint64{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for name, in := range map[string]string{
		"empty":         "",
		"count differs": "entries invalid\n00000001\n",
		"not hex":       "entries invalid\n00000001 0000000g\n",
	} {
		if err := parseConntrackStat(strings.NewReader(in), map[string]uint64{}); err == nil {
			t.Errorf("conntrack stat %s: no error", name)
		}
	}
	if err := parseSNMP6(strings.NewReader("Ip6InReceives 1 2\n"), map[string]uint64{}); err == nil {
		t.Errorf("snmp6 line with three fields: no error")
	}
}

func TestSoftnet(t *testing.T) {
	t.Parallel()
	before, err := readSoftnetDropped(filepath.Join("testdata", "proc", "before"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := readSoftnetDropped(filepath.Join("testdata", "proc", "after"))
	if err != nil {
		t.Fatal(err)
	}
	if d := softnetDelta(before, after); d != 5 {
		t.Errorf("softnet dropped moved by %d, want 5", d)
	}
	if n, err := parseSoftnetDropped(strings.NewReader("00000001 0000000a\n00000002 00000010 00000000\n")); err != nil || n != 26 {
		t.Errorf("sum of dropped = %d, %v; want 26", n, err)
	}
	if _, err := parseSoftnetDropped(strings.NewReader("0000001\n")); err == nil {
		t.Errorf("line without a dropped column: no error")
	}
}

// TestReadSysctls reads testdata/sys: a fixture tree with no IPv6 (left out silently) and
// an interface with a dot in its name.
func TestReadSysctls(t *testing.T) {
	t.Parallel()
	got, errs := readSysctls(filepath.Join("testdata", "sys"), []string{"veth0", "eth0.100", "nosuch0"})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "nosuch0: no such interface") {
		t.Errorf("errors %v, want one for nosuch0", errs)
	}
	for name, want := range map[string]string{
		"net.ipv4.conf.all.rp_filter":      "0",
		"net.ipv4.conf.default.rp_filter":  "0",
		"net.ipv4.conf.veth0.rp_filter":    "1",
		"net.ipv4.conf.eth0/100.rp_filter": "2",
		"net.ipv4.conf.veth0.accept_local": "0",
		"net.ipv4.conf.veth0.log_martians": "0",
		"net.ipv4.conf.veth0.forwarding":   "0",
		"net.ipv4.ip_forward":              "1",
		"net.core.somaxconn":               "4096",
		"net.netfilter.nf_conntrack_count": "12",
		"net.netfilter.nf_conntrack_max":   "262144",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	for name := range got {
		if strings.HasPrefix(name, "net.ipv6.") || strings.Contains(name, "nosuch0") {
			t.Errorf("%s read from a tree that has none", name)
		}
	}
	if len(got) != 4*4+4 {
		t.Errorf("%d sysctls read, want %d: %v", len(got), 4*4+4, got)
	}
}

// TestStartFixtures runs Start against the fixture tree: it must not fail, whatever netlink
// says, and refuses an incomplete flow.
func TestStartFixtures(t *testing.T) {
	t.Parallel()
	p := paths{net: filepath.Join("testdata", "proc", "before"), sys: filepath.Join("testdata", "sys")}
	flow := evidence.Flow{Port: 80, Proto: evidence.TCP}
	if _, err := start(context.Background(), Config{Flow: flow}, p); err == nil {
		t.Errorf("start with no address: no error")
	}
	testns.SkipShort(t, "rtnetlink: start asks the kernel for the interfaces' counters")
	flow, _ = evidence.ParseFlow("198.51.100.2:80", evidence.TCP)
	s, err := start(context.Background(), Config{Flow: flow}, p)
	if err != nil {
		t.Fatal(err)
	}
	if s.counters["Udp InDatagrams"] != 45 || !s.softnetOK {
		t.Errorf("start read %d counters, softnet %v", len(s.counters), s.softnetOK)
	}
}
