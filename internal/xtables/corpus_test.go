package xtables_test

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/internal/xtables"
)

var record = flag.Bool("record", false, "record the netlink replies and iptables-nft-save's text of the corpus into testdata (root)")

// corpusFamilies are the corpus files, the programs that load and print them, and the
// recordings the unit test replays.
var corpusFamilies = []struct {
	name    string
	family  nftables.TableFamily
	restore string
	save    string
}{
	{"ip", nftables.TableFamilyIPv4, "iptables-nft-restore", "iptables-nft-save"},
	{"ip6", nftables.TableFamilyIPv6, "ip6tables-nft-restore", "ip6tables-nft-save"},
}

func corpusFile(name string) string {
	if name == "ip" {
		return filepath.Join("testdata", "corpus.iptables")
	}
	return filepath.Join("testdata", "corpus.ip6tables")
}

func recordFile(name string) string { return filepath.Join("testdata", "nft-"+name+".hex") }
func saveFile(name string) string   { return filepath.Join("testdata", "nft-"+name+".save") }

// readSave reads every table of a family over c as FromNft sees it, and renders it as
// iptables-nft-save prints the family: the tables in its order.
func readSave(t *testing.T, c *nftables.Conn, family nftables.TableFamily) (string, []string) {
	t.Helper()
	tables, err := c.ListTablesOfFamily(family)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		t.Fatalf("list chains: %v", err)
	}
	byName := map[string]string{}
	var notes []string
	for _, tb := range tables {
		var mine []*nftables.Chain
		var rules []*nftables.Rule
		for _, ch := range chains {
			if ch.Table.Name != tb.Name {
				continue
			}
			mine = append(mine, ch)
			rs, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatalf("list rules of %s %s: %v", tb.Name, ch.Name, err)
			}
			rules = append(rules, rs...)
		}
		xt, err := xtables.FromNft(tb, mine, rules)
		if err != nil {
			t.Errorf("table %s: %v", tb.Name, err)
			continue
		}
		byName[tb.Name] = xt.Save(false)
		notes = append(notes, xt.Notes()...)
	}
	var b strings.Builder
	for _, name := range xtables.NftTableOrder {
		b.WriteString(byName[name])
	}
	return b.String(), notes
}

// stripHeader drops the comment lines iptables-save prints around each table.
func stripHeader(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "#") && l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// compareSave reports every line that differs, with its table.
func compareSave(t *testing.T, what, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	n := 0
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			t.Errorf("%s line %d:\n want %q\n got  %q", what, i+1, w, g)
			if n++; n > 40 {
				t.Fatalf("%s: too many differences", what)
			}
		}
	}
}

// replay answers google/nftables' requests with the recorded replies, in order: the
// reading code makes the same requests in the same order.
func replay(t *testing.T, path string) *nftables.Conn {
	t.Helper()
	// Every request is a dump: its replies end with Done.
	var batches [][]netlink.Message
	var cur []netlink.Message
	for _, m := range testns.NetlinkMessages(t, path) {
		cur = append(cur, m)
		if m.Header.Type == netlink.Done {
			batches, cur = append(batches, cur), nil
		}
	}
	if len(cur) > 0 {
		t.Fatalf("%s: replies after the last end of a dump", path)
	}
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(batches) == 0 {
			return nil, fmt.Errorf("no recorded reply left for request %v", req[0].Header)
		}
		out := batches[0]
		batches = batches[1:]
		for i := range out {
			out[i].Header.Sequence, out[i].Header.PID = req[0].Header.Sequence, req[0].Header.PID
		}
		return out, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSaveRecordedCorpus renders the recorded corpus (what google/nftables read of it
// after iptables-nft-restore loaded it) and compares it byte for byte with what
// iptables-nft-save printed for it.
func TestSaveRecordedCorpus(t *testing.T) {
	for _, cf := range corpusFamilies {
		t.Run(cf.name, func(t *testing.T) {
			want, err := os.ReadFile(saveFile(cf.name))
			if err != nil {
				t.Fatal(err)
			}
			got, notes := readSave(t, replay(t, recordFile(cf.name)), cf.family)
			compareSave(t, cf.name, string(want), got)
			for _, n := range notes {
				t.Log(n)
			}
			if rules := strings.Count(got, "\n-A "); rules < 100 {
				t.Errorf("only %d rules rendered", rules)
			}
		})
	}
}

// forwarder is a test dial that passes google/nftables' requests to a real netlink
// socket and writes every reply down, as replay gives them back.
type forwarder struct {
	conn *netlink.Conn
	out  *strings.Builder
}

func (f *forwarder) dial(req []netlink.Message) ([]netlink.Message, error) {
	if len(req) != 1 || req[0].Header.Flags&netlink.Dump == 0 {
		return nil, fmt.Errorf("forwarder: only single dump requests are recorded")
	}
	// The real socket numbers its own requests.
	fwd := req[0]
	fwd.Header.Sequence, fwd.Header.PID = 0, 0
	msgs, err := f.conn.Execute(fwd)
	if err != nil {
		return nil, err
	}
	// Execute drops the end of the dump; nltest needs it, and replay splits at it.
	msgs = append(msgs, netlink.Message{Header: netlink.Header{Length: 20, Type: netlink.Done, Flags: netlink.Multi}, Data: make([]byte, 4)})
	fmt.Fprintf(f.out, "# request type 0x%x flags 0x%x\n", uint16(req[0].Header.Type), uint16(req[0].Header.Flags))
	for i := range msgs {
		msgs[i].Header.Sequence, msgs[i].Header.PID = req[0].Header.Sequence, req[0].Header.PID
		b, err := msgs[i].MarshalBinary()
		if err != nil {
			return nil, err
		}
		f.out.WriteString(hex.EncodeToString(b) + "\n")
	}
	return msgs, nil
}

func newForwarder(t *testing.T, raw *netlink.Conn) (*nftables.Conn, *strings.Builder) {
	f := &forwarder{conn: raw, out: &strings.Builder{}}
	c, err := nftables.New(nftables.WithTestDial(f.dial))
	if err != nil {
		t.Fatal(err)
	}
	return c, f.out
}
