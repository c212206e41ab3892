package xtables_test

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/internal/xtables"
)

// TestMain fails the run when a test leaves a namespace behind.
func TestMain(m *testing.M) { os.Exit(testns.Main(m)) }

// TestSaveMatchesIptablesNft loads the corpus with iptables-nft-restore (and
// ip6tables-nft-restore) into a test namespace, sends a few datagrams through it so that
// counters move, reads it back over netlink with google/nftables, converts it with
// FromNft and renders it with Save: the text must be iptables-nft-save's and
// iptables-nft-save -c's, byte for byte. With -record it writes what it read and the
// expected text to testdata, for TestSaveRecordedCorpus.
func TestSaveMatchesIptablesNft(t *testing.T) {
	p := testns.NewPair(t, "xs")
	ns := p.Server
	// Only the test's own datagrams on lo move the counters: no IPv6 neighbour discovery
	// on the veth between the two readings.
	p.InServer(t, "ip", "link", "set", testns.Iface, "down")
	for _, cf := range corpusFamilies {
		t.Run(cf.name, func(t *testing.T) {
			restoreCorpus(t, ns, cf.restore, cf.name)
			sendLoopback(t, ns, cf.family == nftables.TableFamilyIPv6)
			save := func(args ...string) string {
				out, err := exec.Command("ip", append([]string{"netns", "exec", ns, testns.Tool(t, cf.save)}, args...)...).Output()
				if err != nil {
					t.Fatalf("%s %v: %v", cf.save, args, err)
				}
				return stripHeader(string(out))
			}
			wantC, want := save("-c"), save()

			c, raw := nsConns(t, ns)
			gotC, notes := readSave(t, c, raw, cf.family, true)
			compareSave(t, cf.name+" -c", wantC, gotC)
			got, _ := readSave(t, c, raw, cf.family, false)
			compareSave(t, cf.name, want, got)
			for _, n := range notes {
				t.Log(n)
			}
			t.Logf("%d rules compared", strings.Count(want, "\n-A "))
			if !strings.Contains(wantC, ":OUTPUT ACCEPT [") || strings.Count(wantC, "\n[0:0] -A ") == strings.Count(wantC, "\n[") {
				t.Errorf("no counter moved:\n%s", wantC)
			}
			if !*record {
				return
			}
			rec := &recorder{conn: raw}
			rc, rex := conns(t, rec)
			if again, _ := readSave(t, rc, rex, cf.family, true); again != gotC {
				t.Fatal("reading through the recorder gave another text")
			}
			header := "# netlink replies to google/nftables' requests, read from the corpus loaded by " + cf.restore + " (TestSaveMatchesIptablesNft -record)\n"
			if err := os.WriteFile(recordFile(cf.name), []byte(header+rec.out.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(saveFile(cf.name), []byte(wantC), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSaveMatchesDocker compares the rules a real Docker daemon (Debian 12's 20.10,
// through iptables-nft) writes for a container with a published port, IPv4 and IPv6,
// with iptables-nft-save's text of them. The policy counters are compared as 0: the
// container's neighbour discovery goes on between the two readings.
func TestSaveMatchesDocker(t *testing.T) {
	p := testns.NewPair(t, "xd")
	d := p.StartDocker(t)
	d.Run(t, testns.Name("web"), testns.Port(), "sleep", "600")
	c, raw := nsConns(t, p.Server)
	policy := regexp.MustCompile(`(?m)^(:\S+ \S+) \[\d+:\d+\]$`)
	for _, cf := range corpusFamilies {
		out, err := exec.Command("ip", "netns", "exec", p.Server, testns.Tool(t, cf.save)).Output()
		if err != nil {
			t.Fatalf("%s: %v", cf.save, err)
		}
		want := policy.ReplaceAllString(stripHeader(string(out)), "$1 [0:0]")
		got, notes := readSave(t, c, raw, cf.family, false)
		compareSave(t, cf.name, want, policy.ReplaceAllString(got, "$1 [0:0]"))
		for _, n := range notes {
			t.Error(n)
		}
		for _, w := range []string{"-j DNAT --to-destination ", "-j MASQUERADE", "-m addrtype --dst-type LOCAL", "--ctstate RELATED,ESTABLISHED"} {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no rule with %q:\n%s", cf.name, w, got)
			}
		}
	}
}

// TestSaveSets restores rules with ipsets (fail2ban's, the set match's counter
// conditions, the SET target) and compares them with iptables-nft-save once ResolveSets
// has named the sets.
func TestSaveSets(t *testing.T) {
	p := testns.NewPair(t, "xi")
	ns := p.Server
	ipset := testns.Tool(t, "ipset")
	for _, set := range [][]string{{"f2b-sshd", "hash:ip"}, {"allow4", "hash:net", "timeout", "60"}, {"pairs", "hash:ip,port"}} {
		p.InServer(t, append([]string{ipset, "create"}, set...)...)
	}
	restore := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, "iptables-nft-restore"), "testdata/sets.iptables")
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("iptables-nft-restore: %v\n%s", err, out)
	}
	out, err := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, "iptables-nft-save"), "-t", "filter").Output()
	if err != nil {
		t.Fatal(err)
	}
	c, raw := nsConns(t, ns)
	x := readTables(t, c, raw, nftables.TableFamilyIPv4)["filter"]
	if x == nil {
		t.Fatal("no filter table read")
	}
	if n := x.Notes(); len(n) != 2 || !strings.Contains(n[0], "names of its ipsets") {
		t.Errorf("before ResolveSets, notes %q; want the set match's and the SET target's", n)
	}
	var sock int
	testns.Do(t, ns, func() {
		sock, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	if err := xtables.ResolveSets(x, sock); err != nil {
		t.Fatal(err)
	}
	compareSave(t, "sets", stripHeader(string(out)), x.Save(false))
	if n := x.Notes(); n != nil {
		t.Errorf("notes %q", n)
	}
}

// nsConns are a google/nftables connection and a netlink socket (for the policy
// counters) in namespace ns, closed when the test ends.
func nsConns(t *testing.T, ns string) (*nftables.Conn, *netlink.Conn) {
	t.Helper()
	nsf, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	// google/nftables opens a socket in the namespace for every request.
	t.Cleanup(func() { nsf.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(int(nsf.Fd())))
	if err != nil {
		t.Fatalf("nftables in %s: %v", ns, err)
	}
	var raw *netlink.Conn
	testns.Do(t, ns, func() {
		raw, err = netlink.Dial(unix.NETLINK_NETFILTER, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return c, raw
}

// sendLoopback sends a few UDP datagrams to a closed port on the loopback address of
// namespace ns.
func sendLoopback(t *testing.T, ns string, v6 bool) {
	t.Helper()
	network, dst := "udp4", "127.0.0.1:9"
	if v6 {
		network, dst = "udp6", "[::1]:9"
	}
	testns.Do(t, ns, func() {
		c, err := net.ListenPacket(network, ":0")
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		to, err := net.ResolveUDPAddr(network, dst)
		if err != nil {
			t.Error(err)
			return
		}
		for i := 0; i < 3; i++ {
			if _, err := c.WriteTo([]byte("x"), to); err != nil {
				t.Error(err)
				return
			}
		}
	})
}

// TestSaveMatchesIptablesLegacy loads the same corpus with iptables-legacy-restore and
// compares the rules ReadLegacy reads from x_tables, rendered by Save, with what
// iptables-legacy-save prints, table by table, with and without counters. With -record it
// keeps the kernel's answers and the text for TestSaveRecordedLegacyCorpus.
func TestSaveMatchesIptablesLegacy(t *testing.T) {
	p := testns.NewPair(t, "xl")
	ns := p.Server
	p.InServer(t, "ip", "link", "set", testns.Iface, "down")
	for _, cf := range corpusFamilies {
		t.Run(cf.name, func(t *testing.T) {
			tool := strings.TrimSuffix(cf.restore, "-nft-restore")
			restoreCorpus(t, ns, tool+"-legacy-restore", cf.name)
			sendLoopback(t, ns, cf.family == nftables.TableFamilyIPv6)
			family := uint8(cf.family)
			var rec legacyRecording
			testns.Do(t, ns, func() {
				names, err := xtables.LegacyTables(family)
				if err != nil {
					t.Errorf("list: %v", err)
				}
				for _, name := range names {
					info, entries, err := xtables.ReadRawLegacy(family, name)
					if err != nil {
						t.Errorf("read %s: %v", name, err)
						continue
					}
					rec.tables = append(rec.tables, legacyTable{name: name, info: info, entries: entries})
				}
			})
			for i, tb := range rec.tables {
				out, err := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, tool+"-legacy-save"), "-c", "-t", tb.name).Output()
				if err != nil {
					t.Fatalf("%s-legacy-save -t %s: %v", tool, tb.name, err)
				}
				rec.tables[i].save = stripHeader(string(out))
			}
			if n := rec.check(t, family); n < 100 {
				t.Errorf("only %d rules compared: the corpus did not load", n)
			}
			if *record {
				rec.write(t, legacyCorpusFile(cf.name), tool+"-legacy-restore")
			}
		})
	}
}

// restoreCorpus loads the corpus of family name into namespace ns with restore.
func restoreCorpus(t *testing.T, ns, restore, name string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, restore))
	f, err := os.Open(corpusFile(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s < %s: %v\n%s", restore, corpusFile(name), err, out)
	}
}

// TestSaveRecordedLegacyCorpus is TestSaveMatchesIptablesLegacy without root: the
// kernel's recorded answers, parsed and rendered, against the recorded text.
func TestSaveRecordedLegacyCorpus(t *testing.T) {
	for _, cf := range corpusFamilies {
		t.Run(cf.name, func(t *testing.T) {
			if n := readLegacyRecording(t, legacyCorpusFile(cf.name)).check(t, uint8(cf.family)); n < 100 {
				t.Errorf("only %d rules compared", n)
			}
		})
	}
}

func legacyCorpusFile(name string) string {
	return filepath.Join("testdata", "legacy-corpus-"+name+".rec")
}

// legacyRecording is the kernel's answers for each table of a family, with
// iptables-legacy-save -c's text of the table.
type legacyRecording struct{ tables []legacyTable }

type legacyTable struct {
	name          string
	info, entries []byte
	save          string
}

// check parses and renders each table, compares it with its text with and without
// counters, and returns how many rules it compared.
func (r legacyRecording) check(t *testing.T, family uint8) int {
	t.Helper()
	rules := 0
	for _, tb := range r.tables {
		got, err := xtables.ParseLegacy(family, tb.name, tb.info, tb.entries)
		if err != nil {
			t.Errorf("parse %s: %v", tb.name, err)
			continue
		}
		compareSave(t, tb.name+" -c", tb.save, got.Save(true))
		compareSave(t, tb.name, withoutRuleCounters(tb.save), got.Save(false))
		rules += strings.Count(tb.save, "-A ")
	}
	return rules
}

func (r legacyRecording) write(t *testing.T, path, restore string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# %s's answers to GET_INFO and GET_ENTRIES for the corpus, and iptables-legacy-save -c's text, recorded by TestSaveMatchesIptablesLegacy -record\n", restore)
	for _, tb := range r.tables {
		fmt.Fprintf(&b, "table %s\ninfo %x\nentries %x\nsave %x\n", tb.name, tb.info, tb.entries, tb.save)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readLegacyRecording(t *testing.T, path string) legacyRecording {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r legacyRecording
	for _, line := range strings.Split(string(data), "\n") {
		key, value, _ := strings.Cut(line, " ")
		if key == "table" {
			r.tables = append(r.tables, legacyTable{name: value})
			continue
		}
		if key != "info" && key != "entries" && key != "save" {
			continue
		}
		b, err := hex.DecodeString(value)
		if err != nil || len(r.tables) == 0 {
			t.Fatalf("%s: bad line %.40q: %v", path, line, err)
		}
		tb := &r.tables[len(r.tables)-1]
		switch key {
		case "info":
			tb.info = b
		case "entries":
			tb.entries = b
		case "save":
			tb.save = string(b)
		}
	}
	return r
}
