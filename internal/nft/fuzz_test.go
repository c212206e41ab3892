package nft

import (
	"testing"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The decoders of kernel bytes must never panic, whatever the kernel (or a bug) sends:
// diagnose reads other programs' rulesets. Seeds are well-formed messages; go test -fuzz
// mutates them.

// seedAttrs encodes attributes, for seeds.
func seedAttrs(f *testing.F, attrs ...netlink.Attribute) []byte {
	f.Helper()
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// seedExprs is a rule's NFTA_RULE_EXPRESSIONS: every expression the renderer knows.
func seedExprs(f *testing.F) []byte {
	f.Helper()
	var attrs []netlink.Attribute
	for _, e := range []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2, DestRegister: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x1f, 0x90}}, &expr.Counter{Packets: 3, Bytes: 4},
		&expr.Lookup{SourceRegister: 1, SetName: "s"}, &expr.Verdict{Kind: expr.VerdictDrop},
	} {
		b, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			f.Fatal(err)
		}
		attrs = append(attrs, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: b})
	}
	return seedAttrs(f, attrs...)
}

func FuzzParseChain(f *testing.F) {
	f.Add(append(Genmsg(unix.NFPROTO_INET), seedAttrs(f,
		netlink.Attribute{Type: unix.NFTA_CHAIN_TABLE, Data: CString("filter")},
		netlink.Attribute{Type: unix.NFTA_CHAIN_NAME, Data: CString("input")},
	)...))
	f.Fuzz(func(t *testing.T, b []byte) { t.Parallel(); _, _ = parseChain(b) })
}

func FuzzParseRule(f *testing.F) {
	f.Add(append(Genmsg(unix.NFPROTO_INET), seedAttrs(f,
		netlink.Attribute{Type: unix.NFTA_RULE_TABLE, Data: CString("filter")},
		netlink.Attribute{Type: unix.NFTA_RULE_CHAIN, Data: CString("input")},
		netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS, Data: seedExprs(f)},
	)...))
	f.Fuzz(func(t *testing.T, b []byte) { t.Parallel(); _, _ = parseRule(b) })
}

// Decoded expressions must render or refuse, never panic.
// seedNative encodes expressions this package decodes from raw attributes (numgen,
// byteorder, hash, ct with a direction, NAT with its registers, exthdr).
func seedNative(f *testing.F) []byte {
	f.Helper()
	var attrs []netlink.Attribute
	for _, e := range []ruleExpr{
		raw("numgen", unix.NFTA_NG_DREG, 1, unix.NFTA_NG_MODULUS, 100, unix.NFTA_NG_TYPE, 1), hton(1, 4),
		raw("hash", unix.NFTA_HASH_SREG, 1, unix.NFTA_HASH_DREG, 2, unix.NFTA_HASH_LEN, 4, unix.NFTA_HASH_MODULUS, 2, unix.NFTA_HASH_TYPE, 0),
		raw("ct", unix.NFTA_CT_KEY, unix.NFT_CT_DST_IP6, unix.NFTA_CT_DREG, 1, unix.NFTA_CT_DIRECTION, uint8(1)),
		raw("fib", unix.NFTA_FIB_DREG, 1, unix.NFTA_FIB_RESULT, 3, unix.NFTA_FIB_FLAGS, 2),
		raw("exthdr", unix.NFTA_EXTHDR_DREG, 1, unix.NFTA_EXTHDR_TYPE, uint8(2), unix.NFTA_EXTHDR_OFFSET, 2, unix.NFTA_EXTHDR_LEN, 2, unix.NFTA_EXTHDR_OP, 1),
		raw("nat", unix.NFTA_NAT_TYPE, 1, unix.NFTA_NAT_FAMILY, 2, unix.NFTA_NAT_REG_ADDR_MIN, 1, unix.NFTA_NAT_REG_PROTO_MIN, 2, unix.NFTA_NAT_FLAGS, 3),
	} {
		var inner []netlink.Attribute
		for t, v := range e.Raw {
			inner = append(inner, netlink.Attribute{Type: t, Data: v})
		}
		data, err := netlink.MarshalAttributes(inner)
		if err != nil {
			f.Fatal(err)
		}
		attrs = append(attrs, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: seedAttrs(f,
			netlink.Attribute{Type: unix.NFTA_EXPR_NAME, Data: CString(e.Name)},
			netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: data})})
	}
	return seedAttrs(f, attrs...)
}

func FuzzDecodeExprs(f *testing.F) {
	f.Add(seedExprs(f))
	f.Add(seedNative(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		t.Parallel()
		es, err := decodeExprs(unix.NFPROTO_INET, b)
		if err == nil {
			_, _ = Render(Env{Family: unix.NFPROTO_INET}, es, "")
		}
	})
}

func FuzzParseSet(f *testing.F) {
	f.Add(append(Genmsg(unix.NFPROTO_INET), seedAttrs(f,
		netlink.Attribute{Type: unix.NFTA_SET_NAME, Data: CString("__set0")},
	)...))
	f.Fuzz(func(t *testing.T, b []byte) { t.Parallel(); _, _ = parseSet(b) })
}

func FuzzParseElems(f *testing.F) {
	key := seedAttrs(f, netlink.Attribute{Type: unix.NFTA_DATA_VALUE, Data: []byte{0, 80}})
	elem := seedAttrs(f, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_KEY, Data: key})
	f.Add(seedAttrs(f, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: elem}))
	f.Fuzz(func(t *testing.T, b []byte) { t.Parallel(); _, _ = parseElems(b) })
}

func FuzzDecodeVerdict(f *testing.F) {
	f.Add(seedAttrs(f, netlink.Attribute{Type: unix.NFTA_VERDICT_CODE, Data: []byte{0xff, 0xff, 0xff, 0xfd}},
		netlink.Attribute{Type: unix.NFTA_VERDICT_CHAIN, Data: CString("next")}))
	f.Fuzz(func(t *testing.T, b []byte) { t.Parallel(); _, _ = decodeVerdict(b) })
}

func FuzzRuleComment(f *testing.F) {
	f.Add([]byte{0, 5, 'h', 'e', 'l', 'o', 0})
	f.Fuzz(func(t *testing.T, b []byte) { t.Parallel(); _ = ruleComment(b) })
}

// xtables infos come from whatever wrote the rule: any bytes must render or refuse.
func FuzzXtRender(f *testing.F) {
	for _, c := range xtCases {
		l4 := byte(0)
		if len(c.pre) == 2 {
			l4 = c.pre[1].(*expr.Cmp).Data[0]
		}
		f.Add(c.family, c.target, c.name, c.rev, l4, c.info)
	}
	f.Fuzz(func(t *testing.T, family byte, target bool, name string, rev uint32, l4 byte, info []byte) {
		t.Parallel()
		u := xt.Unknown(info)
		var x expr.Any = &expr.Match{Name: name, Rev: rev, Info: &u}
		if target {
			x = &expr.Target{Name: name, Rev: rev, Info: &u}
		}
		es := []ruleExpr{
			{Name: "meta", Expr: &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}},
			{Name: "cmp", Expr: &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}}},
			{Name: "xt", Expr: x},
		}
		_, _ = Render(Env{Family: family}, es, "")
	})
}
