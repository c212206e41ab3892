package xtables_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// TestMain fails the run when a test leaves a namespace behind.
func TestMain(m *testing.M) { os.Exit(testns.Main(m)) }

// TestSaveMatchesIptablesNft loads the corpus with iptables-nft-restore (and
// ip6tables-nft-restore) into a test namespace, reads it back over netlink with
// google/nftables, converts it with FromNft and renders it with Save: the text must be
// iptables-nft-save's, byte for byte. With -record it writes what it read and the
// expected text to testdata, for TestSaveRecordedCorpus.
func TestSaveMatchesIptablesNft(t *testing.T) {
	p := testns.NewPair(t, "xs")
	ns := p.Server
	// No IPv6 neighbour discovery on the veth: the built-in chains' policy counters must
	// stay 0, as google/nftables does not read them.
	p.InServer(t, "ip", "link", "set", testns.Iface, "down")
	for _, cf := range corpusFamilies {
		t.Run(cf.name, func(t *testing.T) {
			restore := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, cf.restore))
			f, err := os.Open(corpusFile(cf.name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			restore.Stdin = f
			if out, err := restore.CombinedOutput(); err != nil {
				t.Fatalf("%s < %s: %v\n%s", cf.restore, corpusFile(cf.name), err, out)
			}
			out, err := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, cf.save)).Output()
			if err != nil {
				t.Fatalf("%s: %v", cf.save, err)
			}
			want := stripHeader(string(out))

			nsf, err := os.Open("/run/netns/" + ns)
			if err != nil {
				t.Fatal(err)
			}
			defer nsf.Close()
			c, err := nftables.New(nftables.WithNetNSFd(int(nsf.Fd())))
			if err != nil {
				t.Fatalf("nftables in %s: %v", ns, err)
			}
			got, notes := readSave(t, c, cf.family)
			compareSave(t, cf.name, want, got)
			for _, n := range notes {
				t.Log(n)
			}
			t.Logf("%d rules compared", strings.Count(want, "\n-A "))
			if !*record {
				return
			}
			var raw *netlink.Conn
			testns.Do(t, ns, func() {
				raw, err = netlink.Dial(unix.NETLINK_NETFILTER, nil)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			fc, rec := newForwarder(t, raw)
			again, _ := readSave(t, fc, cf.family)
			if again != got {
				t.Fatal("reading through the recorder gave another text")
			}
			header := "# netlink replies to google/nftables' requests, read from the corpus loaded by " + cf.restore + " (TestSaveMatchesIptablesNft -record)\n"
			if err := os.WriteFile(recordFile(cf.name), []byte(header+rec.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(saveFile(cf.name), []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}
