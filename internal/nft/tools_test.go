package nft

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
)

func TestIptablesTool(t *testing.T) {
	for family, want := range map[uint8]string{unix.NFPROTO_IPV4: "iptables", unix.NFPROTO_IPV6: "ip6tables", unix.NFPROTO_BRIDGE: "ebtables", unix.NFPROTO_ARP: "arptables"} {
		if got := IptablesTool(family); got != want {
			t.Errorf("IptablesTool(%d) = %q, want %q", family, got, want)
		}
	}
}

// saveLines are the "-A CHAIN ..." lines of a save command's output, by table and chain,
// in order, and the "-P CHAIN POLICY" command of each chain's ":CHAIN POLICY" line.
func saveLines(out string) (lines map[string]map[string][]string, policies map[string]string) {
	lines, policies = map[string]map[string][]string{}, map[string]string{}
	table := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
			lines[table] = map[string][]string{}
		case strings.HasPrefix(l, ":"):
			chain, policy, _ := strings.Cut(l[1:], " ")
			policies[table+" "+chain] = "-P " + chain + " " + policy
		case strings.HasPrefix(l, "-A "):
			chain, _, _ := strings.Cut(l[3:], " ")
			lines[table][chain] = append(lines[table][chain], l)
		}
	}
	return lines, policies
}

// TestToolTablesNamed loads the ebtables and arptables corpora of package xtables with
// ebtables-nft-restore and arptables-nft-restore, and checks that ChainRules names every
// rule as ebtables-nft-save and arptables-nft-save print it (a user-defined chain's
// ebtables policy rule as the -P command that set it). Once nft adds a rule of its own
// to a table, the tool cannot read that table any more: all its rules stay in nft's
// words.
func TestToolTablesNamed(t *testing.T) {
	p := testns.NewPair(t, "tn")
	ns := p.Server
	for _, tc := range []struct {
		family        uint8
		restore, save string
		corpus        string
		policies      int // policy rules in the corpus
	}{
		{unix.NFPROTO_BRIDGE, "ebtables-nft-restore", "ebtables-nft-save", "../xtables/testdata/corpus.ebtables", 2},
		{unix.NFPROTO_ARP, "arptables-nft-restore", "arptables-nft-save", "../xtables/testdata/corpus.arptables", 0},
	} {
		t.Run(FamilyName(tc.family), func(t *testing.T) {
			cmd := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, tc.restore))
			f, err := os.Open(tc.corpus)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s < %s: %v\n%s", tc.restore, tc.corpus, err, out)
			}
			out, err := exec.Command("ip", "netns", "exec", ns, testns.Tool(t, tc.save)).Output()
			if err != nil {
				t.Fatalf("%s: %v", tc.save, err)
			}
			want, wantPolicy := saveLines(string(out))
			var conn *netlink.Conn
			testns.Do(t, ns, func() { conn, err = netlink.Dial(unix.NETLINK_NETFILTER, nil) })
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			read := func() map[ChainKey][]Rule {
				chains, err := Chains(conn)
				if err != nil {
					t.Fatal(err)
				}
				rr := NewRuleReader(conn, nil)
				out := map[ChainKey][]Rule{}
				for k := range chains {
					if k.Family != tc.family {
						continue
					}
					rules, err := rr.ChainRules(k)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rules {
						out[k] = append(out[k], r)
					}
					slices.SortFunc(out[k], func(a, b Rule) int { return a.Position - b.Position })
				}
				return out
			}
			n, policies := 0, 0
			for k, rules := range read() {
				var got []string
				for _, r := range rules {
					if strings.HasPrefix(r.Iptables, "-P ") {
						policies++
						if w := wantPolicy[k.Table+" "+k.Chain]; r.Iptables != w {
							t.Errorf("%s %s: policy rule named %q, want %q", k.Table, k.Chain, r.Iptables, w)
						}
						continue
					}
					got = append(got, r.Iptables)
				}
				if !slices.Equal(got, want[k.Table][k.Chain]) {
					t.Errorf("%s %s: named\n%q\nwant\n%q", k.Table, k.Chain, got, want[k.Table][k.Chain])
				}
				n += len(got)
			}
			if n < 40 || policies != tc.policies {
				t.Errorf("%d rules named, %d policy rules", n, policies)
			}

			// A rule nft adds makes the table nft's.
			p.InServer(t, testns.Tool(t, "nft"), "add", "rule", FamilyName(tc.family), "filter", "INPUT", "meta", "mark", "7", "accept")
			for k, rules := range read() {
				for _, r := range rules {
					if k.Table == "filter" && r.Iptables != "" {
						t.Errorf("%s %s: %q still named after nft added a rule", k.Table, k.Chain, r.Iptables)
					}
				}
			}
		})
	}
}
