package nft

import (
	"testing"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// encodeExprs encodes expressions as NFTA_RULE_EXPRESSIONS, as the kernel dumps them.
func encodeExprs(t *testing.T, es []expr.Any) []byte {
	t.Helper()
	var attrs []netlink.Attribute
	for _, e := range es {
		b, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			t.Fatalf("marshal %T: %v", e, err)
		}
		attrs = append(attrs, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: b})
	}
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func roundTrip(t *testing.T, es []expr.Any) []ruleExpr {
	t.Helper()
	out, err := decodeExprs(unix.NFPROTO_INET, encodeExprs(t, es))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rawExpr(t *testing.T, name string, attrs []netlink.Attribute) []byte {
	t.Helper()
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_EXPR_NAME, Data: CString(name)},
		{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: data},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeExprs(t *testing.T) {
	t.Parallel()
	// Every expression the renderer knows survives the kernel encoding.
	all := []expr.Any{
		metaLoad(expr.MetaKeyL4PROTO), eq(6), th(2, 2), mask(0xff, 0xff), &expr.Range{Op: expr.CmpOpNeq, Register: 1, FromData: be16(1), ToData: be16(2)},
		lookup("s"), &expr.Counter{Packets: 3, Bytes: 4}, &expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte("p")},
		&expr.Limit{Type: expr.LimitTypePkts, Rate: 1, Unit: expr.LimitTimeSecond, Burst: 5}, &expr.Reject{Type: 1}, &expr.Notrack{},
		ctLoad(expr.CtKeySTATE), &expr.Immediate{Register: 1, Data: []byte{1}}, &expr.Verdict{Kind: expr.VerdictJump, Chain: "x"}, accept,
	}
	got := roundTrip(t, all)
	if len(got) != len(all) {
		t.Fatalf("%d expressions back, want %d", len(got), len(all))
	}
	for i, g := range got {
		if g.Expr == nil {
			t.Errorf("expression %d (%s, %T) not decoded", i, g.Name, all[i])
		}
	}
	if v, ok := got[13].Expr.(*expr.Verdict); !ok || v.Kind != expr.VerdictJump || v.Chain != "x" {
		t.Errorf("verdict = %#v", got[13].Expr)
	}

	// Unknown expressions and unknown attributes are kept by name, never half-decoded.
	b, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: rawExpr(t, "fib", []netlink.Attribute{{Type: 1, Data: []byte{0, 0, 0, 1}}})},
		// A payload write (SREG) and a ct set (SREG): google/nftables would read the ct
		// one as a load.
		{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: rawExpr(t, "payload", []netlink.Attribute{
			{Type: unix.NFTA_PAYLOAD_SREG, Data: []byte{0, 0, 0, 1}}, {Type: unix.NFTA_PAYLOAD_BASE, Data: []byte{0, 0, 0, 1}},
			{Type: unix.NFTA_PAYLOAD_OFFSET, Data: []byte{0, 0, 0, 8}}, {Type: unix.NFTA_PAYLOAD_LEN, Data: []byte{0, 0, 0, 1}},
		})},
		{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: rawExpr(t, "ct", []netlink.Attribute{
			{Type: unix.NFTA_CT_KEY, Data: []byte{0, 0, 0, 3}}, {Type: unix.NFTA_CT_SREG, Data: []byte{0, 0, 0, 1}},
		})},
		// A shift, not a mask.
		{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: rawExpr(t, "bitwise", []netlink.Attribute{
			{Type: unix.NFTA_BITWISE_SREG, Data: []byte{0, 0, 0, 1}}, {Type: unix.NFTA_BITWISE_DREG, Data: []byte{0, 0, 0, 1}},
			{Type: unix.NFTA_BITWISE_LEN, Data: []byte{0, 0, 0, 4}}, {Type: nftaBitwiseOp, Data: []byte{0, 0, 0, 1}},
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = decodeExprs(unix.NFPROTO_INET, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fib", "payload", "ct", "bitwise"}
	if len(got) != len(want) {
		t.Fatalf("got %d expressions", len(got))
	}
	for i, g := range got {
		if g.Name != want[i] || g.Expr != nil {
			t.Errorf("expression %d = %s %#v; want %s, not decoded", i, g.Name, g.Expr, want[i])
		}
	}
}

func TestRuleComment(t *testing.T) {
	t.Parallel()
	if c := ruleComment([]byte("\x00\x06hello\x00")); c != "hello" {
		t.Errorf("comment %q", c)
	}
	if c := ruleComment([]byte("\x01\x02ab\x00\x03hi\x00")); c != "hi" {
		t.Errorf("comment %q", c)
	}
	if c := ruleComment([]byte("\x00\x09short")); c != "" {
		t.Errorf("truncated comment %q", c)
	}
}
