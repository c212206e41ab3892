package prose_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/prose"
)

// A drop in a Docker container where nothing listens, after the host's DNAT of a
// published port: the fix quotes the mappings that lead to the dropped port (of its
// protocol, not the container's other ports), and says nothing of them for a drop whose
// fix is not about a listener, or when the container publishes none.
func TestFixQuotesPublished(t *testing.T) {
	t.Parallel()
	ap := netip.MustParseAddrPort
	client, backend := ap("198.51.100.1:40000"), ap("203.0.113.2:80")
	published := []string{"8080->80/tcp", "127.0.0.1:9090->80/udp", "32768->81/tcp", "[::1]:8081->80/tcp"}
	at := func(reason, function string, published []string) *evidence.Evidence {
		return &evidence.Evidence{
			Flow:     evidence.Flow{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080, Proto: evidence.TCP},
			Netns:    evidence.Netns{Inode: 1},
			Arrival:  &evidence.Arrival{In: 1},
			Firewall: &evidence.Firewall{Installed: true, Removed: true},
			Kernel: &evidence.KernelDrop{ReasonsFromBTF: true,
				Translations: []evidence.Translation{{Proto: evidence.TCP, Kind: "DNAT", Netns: 1,
					Orig:    evidence.Tuple{Src: client, Dst: ap("198.51.100.2:8080")},
					Reply:   evidence.Tuple{Src: backend, Dst: client},
					Learned: []netip.AddrPort{backend}}},
				Drops: []evidence.Drop{{Reason: reason, Function: function, Location: function + "+0x99",
					Netns: 2, NetnsName: "container web (docker, id 1965e06dc668)", Elsewhere: true,
					Src: client, Dst: backend, Flags: "S", Published: published}}},
		}
	}
	for _, c := range []struct {
		name string
		ev   *evidence.Evidence
		want string // what the fix ends with; "" for no word of the published ports
	}{
		{"nothing listens", at("NO_SOCKET", "tcp_v4_rcv", published),
			"`ip netns exec` to look there); the port is published as 8080->80, [::1]:8081->80"},
		{"no mapping to the dropped port", at("NO_SOCKET", "tcp_v4_rcv", []string{"32768->81/tcp", "9090->80/udp"}), ""},
		{"nothing published", at("NO_SOCKET", "tcp_v4_rcv", nil), ""},
		{"not about a listener", at("SOCKET_RCVBUFF", "tcp_data_queue", published), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := verdict.Judge(c.ev)
			if v.Outcome != verdict.Dropped || v.Hop == nil || v.Hop.Netns != 2 {
				t.Fatalf("verdict %s in %+v, want a drop in namespace 2", v.Outcome, v.Hop)
			}
			fix := prose.Write(c.ev, v).Fix
			if c.want != "" && !strings.HasSuffix(fix, c.want) {
				t.Errorf("fix %q, want it to end with %q", fix, c.want)
			}
			if c.want == "" && strings.Contains(fix, "published") {
				t.Errorf("fix %q speaks of published ports", fix)
			}
		})
	}
}
