package xtables_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/internal/xtables"
)

// record is the package's -record flag (export_test.go): one flag for both test packages.
var record = xtables.Record

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

// readTables reads every table of a family over c (google/nftables) and ex (the policy
// counters) as FromNft sees it.
func readTables(t *testing.T, c *nftables.Conn, ex xtables.Executor, family nftables.TableFamily) map[string]*xtables.Table {
	t.Helper()
	out := map[string]*xtables.Table{}
	listFamily(t, c, family, func(tb nftTable) {
		xt, err := xtables.FromNft(tb.table, tb.chains, tb.rules)
		if err != nil {
			t.Errorf("table %s: %v", tb.table.Name, err)
			return
		}
		if err := xtables.FillPolicyCounters(ex, xt); err != nil {
			t.Fatal(err)
		}
		out[tb.table.Name] = xt
	})
	return out
}

// readSave renders the tables readTables reads as iptables-nft-save prints the family
// (with counters, as iptables-nft-save -c): the tables in its order.
func readSave(t *testing.T, c *nftables.Conn, ex xtables.Executor, family nftables.TableFamily, counters bool) (string, []string) {
	t.Helper()
	tables := readTables(t, c, ex, family)
	var b strings.Builder
	var notes []string
	for _, name := range xtables.NftTableOrder {
		if x, ok := tables[name]; ok {
			b.WriteString(x.Save(counters))
			notes = append(notes, x.Notes()...)
		}
	}
	return b.String(), notes
}

var ruleCounters = regexp.MustCompile(`(?m)^\[\d+:\d+\] `)

// withoutRuleCounters is the text iptables-save prints without -c.
func withoutRuleCounters(s string) string { return ruleCounters.ReplaceAllString(s, "") }

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

// replayer answers the requests with the recorded replies, in order: the reading code
// makes the same requests in the same order.
type replayer struct {
	batches [][]netlink.Message
}

func newReplayer(t *testing.T, path string) *replayer {
	t.Helper()
	// Every request is a dump: its replies end with Done.
	r := &replayer{}
	var cur []netlink.Message
	for _, m := range testns.NetlinkMessages(t, path) {
		cur = append(cur, m)
		if m.Header.Type == netlink.Done {
			r.batches, cur = append(r.batches, cur), nil
		}
	}
	if len(cur) > 0 {
		t.Fatalf("%s: replies after the last end of a dump", path)
	}
	return r
}

func (r *replayer) exchange(req netlink.Message) ([]netlink.Message, error) {
	if len(r.batches) == 0 {
		return nil, fmt.Errorf("no recorded reply left for request %v", req.Header)
	}
	out := r.batches[0]
	r.batches = r.batches[1:]
	for i := range out {
		out[i].Header.Sequence, out[i].Header.PID = req.Header.Sequence, req.Header.PID
	}
	return out, nil
}

// recorder passes requests to a real netlink socket and writes every reply down, as
// replayer gives them back.
type recorder struct {
	conn *netlink.Conn
	out  strings.Builder
}

func (r *recorder) exchange(req netlink.Message) ([]netlink.Message, error) {
	if req.Header.Flags&netlink.Dump == 0 {
		return nil, fmt.Errorf("recorder: only dump requests are recorded")
	}
	// The real socket numbers its own requests.
	fwd := req
	fwd.Header.Sequence, fwd.Header.PID = 0, 0
	msgs, err := r.conn.Execute(fwd)
	if err != nil {
		return nil, err
	}
	// Execute drops the end of the dump; nltest needs it, and replay splits at it.
	msgs = append(msgs, netlink.Message{Header: netlink.Header{Length: 20, Type: netlink.Done, Flags: netlink.Multi}, Data: make([]byte, 4)})
	fmt.Fprintf(&r.out, "# request type 0x%x flags 0x%x\n", uint16(req.Header.Type), uint16(req.Header.Flags))
	for i := range msgs {
		msgs[i].Header.Sequence, msgs[i].Header.PID = req.Header.Sequence, req.Header.PID
		b, err := msgs[i].MarshalBinary()
		if err != nil {
			return nil, err
		}
		r.out.WriteString(hex.EncodeToString(b) + "\n")
	}
	return msgs, nil
}

// exchanger is a recorder or a replayer.
type exchanger interface {
	exchange(netlink.Message) ([]netlink.Message, error)
}

// executor is an exchanger as FillPolicyCounters uses it: without the end of the dump,
// as netlink.Conn.Execute returns it.
type executor struct{ x exchanger }

func (e executor) Execute(m netlink.Message) ([]netlink.Message, error) {
	msgs, err := e.x.exchange(m)
	if err == nil && len(msgs) > 0 && msgs[len(msgs)-1].Header.Type == netlink.Done {
		msgs = msgs[:len(msgs)-1]
	}
	return msgs, err
}

// conns are a google/nftables connection and an executor that go through x.
func conns(t *testing.T, x exchanger) (*nftables.Conn, xtables.Executor) {
	t.Helper()
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) != 1 {
			return nil, fmt.Errorf("%d messages in one request", len(req))
		}
		return x.exchange(req[0])
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c, executor{x}
}

// TestSaveRecordedCorpus renders the recorded corpus (what google/nftables read of it
// after iptables-nft-restore loaded it and some packets went through) and compares it
// byte for byte with what iptables-nft-save -c printed for it.
func TestSaveRecordedCorpus(t *testing.T) {
	for _, cf := range corpusFamilies {
		t.Run(cf.name, func(t *testing.T) {
			want, err := os.ReadFile(saveFile(cf.name))
			if err != nil {
				t.Fatal(err)
			}
			c, ex := conns(t, newReplayer(t, recordFile(cf.name)))
			got, notes := readSave(t, c, ex, cf.family, true)
			compareSave(t, cf.name+" -c", string(want), got)
			// The same tables as iptables-nft-save prints them without -c.
			c, ex = conns(t, newReplayer(t, recordFile(cf.name)))
			plain, _ := readSave(t, c, ex, cf.family, false)
			compareSave(t, cf.name, withoutRuleCounters(string(want)), plain)
			for _, n := range notes {
				t.Log(n)
			}
			if rules := strings.Count(plain, "\n-A "); rules < 100 {
				t.Errorf("only %d rules rendered", rules)
			}
		})
	}
}
