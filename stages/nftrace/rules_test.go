package nftrace

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/nft"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

func TestFlowRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		flow evidence.Flow
		want [2]string
	}{
		{evidence.Flow{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080, Proto: evidence.TCP}, [2]string{
			"ip daddr 198.51.100.2 tcp dport 8080 meta nftrace set 1",
			"ip saddr 198.51.100.2 tcp sport 8080 meta nftrace set 1",
		}},
		{evidence.Flow{Addr: netip.MustParseAddr("2001:db8::2"), Port: 53, Proto: evidence.UDP}, [2]string{
			"ip6 daddr 2001:db8::2 udp dport 53 meta nftrace set 1",
			"ip6 saddr 2001:db8::2 udp sport 53 meta nftrace set 1",
		}},
	} {
		rules := flowRules(tc.flow.Endpoint())
		if len(rules) != 2 {
			t.Fatalf("%d rules", len(rules))
		}
		for i, r := range rules {
			got, err := nft.RenderExprs(unix.NFPROTO_INET, r)
			if err != nil || got != tc.want[i] {
				t.Errorf("%s rule %d = %q, %v; want %q", tc.flow, i, got, err, tc.want[i])
			}
			for _, e := range r {
				if _, ok := e.(*expr.Verdict); ok {
					t.Errorf("trace rule has a verdict")
				}
				if _, err := expr.Marshal(unix.NFPROTO_INET, e); err != nil {
					t.Errorf("marshal %T: %v", e, err)
				}
			}
		}
	}
	if err := (evidence.Flow{Addr: netip.MustParseAddr("198.51.100.2"), Proto: evidence.TCP}).Check(); err == nil {
		t.Errorf("flow without port accepted")
	}
}

func TestOwnerTableBatch(t *testing.T) {
	t.Parallel()
	msgs, err := newOwnerTableBatch("packetmortem_42")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].Header.Type != unix.NFNL_MSG_BATCH_BEGIN || msgs[2].Header.Type != unix.NFNL_MSG_BATCH_END {
		t.Fatalf("not a batch: %+v", msgs)
	}
	m := msgs[1]
	if m.Header.Type != nft.MsgType(unix.NFT_MSG_NEWTABLE) || m.Data[0] != unix.NFPROTO_INET {
		t.Fatalf("message %+v", m.Header)
	}
	// NFTA_TABLE_FLAGS carries NFT_TABLE_F_OWNER, big-endian.
	if !strings.Contains(string(m.Data), "packetmortem_42\x00") || !strings.Contains(string(m.Data), "\x08\x00\x02\x00\x00\x00\x00\x02") {
		t.Errorf("data % x", m.Data)
	}
}
