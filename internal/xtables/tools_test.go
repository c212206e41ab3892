package xtables_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/internal/xtables"
)

// toolCorpora are ebtables-nft's and arptables-nft's corpora: rules their save commands
// print as this package does, and rules it must refuse.
var toolCorpora = []struct {
	name    string
	family  nftables.TableFamily
	restore string
	save    string
	tables  []string // in the save command's order
	rules   int      // at least this many in the corpus
}{
	{"bridge", nftables.TableFamilyBridge, "ebtables-nft-restore", "ebtables-nft-save", []string{"filter", "nat"}, 100},
	{"arp", nftables.TableFamilyARP, "arptables-nft-restore", "arptables-nft-save", []string{"filter"}, 35},
}

func toolCorpusFile(name string, refused bool) string {
	ext := map[string]string{"bridge": "ebtables", "arp": "arptables"}[name]
	if refused {
		return filepath.Join("testdata", "refused."+ext)
	}
	return filepath.Join("testdata", "corpus."+ext)
}

func toolRecordFile(name string, refused bool) string {
	if refused {
		return filepath.Join("testdata", "nft-"+name+"-refused.hex")
	}
	return recordFile(name)
}

// nftTable is a table as google/nftables lists it, with its chains and their rules.
type nftTable struct {
	table  *nftables.Table
	chains []*nftables.Chain
	rules  []*nftables.Rule
}

// listFamily reads the family's tables over c: their chains, and their rules chain by
// chain, and passes each table to each in turn, before it reads the next (recordings
// replay the requests in this order).
func listFamily(t *testing.T, c *nftables.Conn, family nftables.TableFamily, each func(nftTable)) {
	t.Helper()
	tables, err := c.ListTablesOfFamily(family)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		t.Fatalf("list chains: %v", err)
	}
	for _, tb := range tables {
		e := nftTable{table: tb}
		for _, ch := range chains {
			if ch.Table.Name != tb.Name {
				continue
			}
			e.chains = append(e.chains, ch)
			rs, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatalf("list rules of %s %s: %v", tb.Name, ch.Name, err)
			}
			e.rules = append(e.rules, rs...)
		}
		each(e)
	}
}

// tablesOf is listFamily's tables by name.
func tablesOf(t *testing.T, c *nftables.Conn, family nftables.TableFamily) map[string]nftTable {
	t.Helper()
	out := map[string]nftTable{}
	listFamily(t, c, family, func(tb nftTable) { out[tb.table.Name] = tb })
	return out
}

// readToolSave renders the family's tables as the tool's save command prints them.
func readToolSave(t *testing.T, c *nftables.Conn, family nftables.TableFamily, order []string, counters bool) string {
	t.Helper()
	tables := tablesOf(t, c, family)
	var b strings.Builder
	for _, name := range order {
		tb, ok := tables[name]
		if !ok {
			continue
		}
		var text string
		var err error
		if family == nftables.TableFamilyBridge {
			var x *xtables.BridgeTable
			if x, err = xtables.BridgeFromNft(tb.table, tb.chains, tb.rules); err == nil {
				text, err = x.Save(counters)
			}
		} else {
			var x *xtables.ArpTable
			if x, err = xtables.ArpFromNft(tb.table, tb.chains, tb.rules); err == nil {
				text, err = x.Save(counters)
			}
		}
		if err != nil {
			t.Errorf("table %s: %v", name, err)
		}
		b.WriteString(text)
	}
	return b.String()
}

// checkRefused checks that every rule of the family's tables is refused, and so each
// table.
func checkRefused(t *testing.T, c *nftables.Conn, family nftables.TableFamily) int {
	t.Helper()
	n := 0
	for name, tb := range tablesOf(t, c, family) {
		for _, r := range tb.rules {
			text, err := xtables.ToolRuleFromNft(uint8(family), name, r.Chain.Name, r.Exprs, r.UserData)
			if !errors.Is(err, xtables.ErrNotIptables) && !errors.Is(err, xtables.ErrUnknown) {
				t.Errorf("table %s chain %s rule %d: converted to %q, want it refused", name, r.Chain.Name, r.Handle, text)
			}
			t.Logf("table %s chain %s rule %d refused: %v", name, r.Chain.Name, r.Handle, err)
			n++
		}
		var err error
		if family == nftables.TableFamilyBridge {
			_, err = xtables.BridgeFromNft(tb.table, tb.chains, tb.rules)
		} else {
			_, err = xtables.ArpFromNft(tb.table, tb.chains, tb.rules)
		}
		if err == nil && len(tb.rules) > 0 {
			t.Errorf("table %s converted, want it refused", name)
		}
	}
	return n
}

// TestToolSaveMatches loads the ebtables and arptables corpora with ebtables-nft-restore
// and arptables-nft-restore into a test namespace, sends a datagram out of a bridge so
// that counters move, reads the tables back with google/nftables and renders them: the
// text must be ebtables-nft-save's and arptables-nft-save's (with and without -c), byte
// for byte. Then it loads the corpora of rules the tools' save commands misprint (or this
// package does not decode) and checks each is refused. With -record it writes what it
// read and the expected text to testdata, for TestToolSaveRecorded.
func TestToolSaveMatches(t *testing.T) {
	p := testns.NewPair(t, "xe")
	ns := p.Server
	// Only the test's own frames move the counters: no IPv6 (neighbour discovery, MLD) in
	// either namespace, and one ARP request per neighbour, not retransmitted while the
	// tables are read.
	for _, ns := range []string{p.Client, p.Server} {
		testns.Run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	// Frames the server sends out of br0 go through the bridge's and arp's OUTPUT hooks.
	p.InServer(t, "ip", "link", "add", "br0", "type", "bridge")
	p.InServer(t, "sysctl", "-q", "-w", "net.ipv4.neigh.br0.mcast_solicit=1")
	p.InServer(t, "ip", "link", "set", testns.Iface, "master", "br0")
	p.InServer(t, "ip", "link", "set", "br0", "up")
	p.InServer(t, "ip", "addr", "add", "203.0.113.1/24", "dev", "br0")
	for i, tc := range toolCorpora {
		t.Run(tc.name, func(t *testing.T) {
			restore(t, ns, tc.restore, toolCorpusFile(tc.name, false))
			// A neighbour not asked for yet: its ARP request goes out now.
			testns.Do(t, ns, func() {
				c, err := net.Dial("udp4", fmt.Sprintf("203.0.113.%d:9", 10+i))
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				if _, err := c.Write([]byte("x")); err != nil {
					t.Error(err)
				}
			})
			save := func(args ...string) string {
				out, err := exec.Command("ip", append([]string{"netns", "exec", ns, testns.Tool(t, tc.save)}, args...)...).Output()
				if err != nil {
					t.Fatalf("%s %v: %v", tc.save, args, err)
				}
				return stripHeader(string(out))
			}
			wantC := save("-c")
			want := save()
			c, raw := nsConns(t, ns)
			gotC := readToolSave(t, c, tc.family, tc.tables, true)
			compareSave(t, tc.name+" -c", wantC, gotC)
			compareSave(t, tc.name, want, readToolSave(t, c, tc.family, tc.tables, false))
			if n := strings.Count(want, "\n-A "); n < tc.rules {
				t.Errorf("%d rules compared, want at least %d", n, tc.rules)
			}
			if strings.Count(wantC, "\n[0:0] -A ") == strings.Count(wantC, "\n[") {
				t.Errorf("no counter moved:\n%s", wantC)
			}
			if *record {
				rec := &recorder{conn: raw}
				rc, _ := conns(t, rec)
				if again := readToolSave(t, rc, tc.family, tc.tables, true); again != gotC {
					t.Fatal("reading through the recorder gave another text")
				}
				writeRecording(t, toolRecordFile(tc.name, false), tc.restore, rec)
				if err := os.WriteFile(saveFile(tc.name), []byte(wantC), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			// The refused corpus replaces the tables.
			p.InServer(t, testns.Tool(t, "nft"), "flush", "ruleset", familyWord(tc.family))
			restore(t, ns, tc.restore, toolCorpusFile(tc.name, true))
			if n := checkRefused(t, c, tc.family); n < 5 {
				t.Errorf("only %d rules refused: the refused corpus did not load", n)
			}
			if *record {
				rec := &recorder{conn: raw}
				rc, _ := conns(t, rec)
				checkRefused(t, rc, tc.family)
				writeRecording(t, toolRecordFile(tc.name, true), tc.restore, rec)
			}
			p.InServer(t, testns.Tool(t, "nft"), "flush", "ruleset", familyWord(tc.family))
		})
	}
}

func familyWord(f nftables.TableFamily) string {
	if f == nftables.TableFamilyBridge {
		return "bridge"
	}
	return "arp"
}

func restore(t *testing.T, ns, tool, file string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, tool))
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s < %s: %v\n%s", tool, file, err, out)
	}
}

func writeRecording(t *testing.T, path, restore string, rec *recorder) {
	t.Helper()
	header := "# netlink replies to google/nftables' requests, read from the corpus loaded by " + restore + " (TestToolSaveMatches -record)\n"
	if err := os.WriteFile(path, []byte(header+rec.out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestToolSaveRecorded is TestToolSaveMatches without root: the recorded netlink
// replies, rendered, against the recorded text of ebtables-nft-save -c and
// arptables-nft-save -c; and every rule of the refused corpora refused.
func TestToolSaveRecorded(t *testing.T) {
	for _, tc := range toolCorpora {
		t.Run(tc.name, func(t *testing.T) {
			want, err := os.ReadFile(saveFile(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			c, _ := conns(t, newReplayer(t, toolRecordFile(tc.name, false)))
			compareSave(t, tc.name+" -c", string(want), readToolSave(t, c, tc.family, tc.tables, true))
			c, _ = conns(t, newReplayer(t, toolRecordFile(tc.name, false)))
			plain := readToolSave(t, c, tc.family, tc.tables, false)
			compareSave(t, tc.name, withoutRuleCounters(string(want)), plain)
			if n := strings.Count(plain, "\n-A "); n < tc.rules {
				t.Errorf("only %d rules rendered", n)
			}
			c, _ = conns(t, newReplayer(t, toolRecordFile(tc.name, true)))
			if n := checkRefused(t, c, tc.family); n < 5 {
				t.Errorf("only %d rules refused", n)
			}
		})
	}
}
