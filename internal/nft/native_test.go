package nft

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// raw builds an expression as this package keeps one google/nftables does not decode:
// its name and attributes, u32 values big-endian as the kernel sends them.
func raw(name string, kv ...any) ruleExpr {
	a := rawAttrs{}
	for i := 0; i < len(kv); i += 2 {
		t := uint16(kv[i].(int))
		switch v := kv[i+1].(type) {
		case int:
			a[t] = binary.BigEndian.AppendUint32(nil, uint32(v))
		case uint8:
			a[t] = []byte{v}
		case uint16:
			a[t] = binary.BigEndian.AppendUint16(nil, v)
		case uint64:
			a[t] = binary.BigEndian.AppendUint64(nil, v)
		case string:
			a[t] = append([]byte(v), 0)
		case []byte:
			a[t] = v
		}
	}
	return ruleExpr{Name: name, Raw: a}
}

func rexprs(parts ...any) []ruleExpr {
	var out []ruleExpr
	for _, p := range parts {
		switch p := p.(type) {
		case ruleExpr:
			out = append(out, p)
		case []expr.Any:
			out = append(out, exprs(p...)...)
		case expr.Any:
			out = append(out, exprs(p)...)
		}
	}
	return out
}

func hton(reg, n int) ruleExpr {
	return raw("byteorder", unix.NFTA_BYTEORDER_SREG, reg, unix.NFTA_BYTEORDER_DREG, reg,
		unix.NFTA_BYTEORDER_OP, unix.NFT_BYTEORDER_HTON, unix.NFTA_BYTEORDER_LEN, n, unix.NFTA_BYTEORDER_SIZE, n)
}

func imm(reg uint32, b ...byte) *expr.Immediate { return &expr.Immediate{Register: reg, Data: b} }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// TestRenderNative renders the expressions decoded from raw attributes as nft 1.0.6 prints
// them (the cross-check with nft is TestRenderMatchesNft; these need no root).
func TestRenderNative(t *testing.T) {
	t.Parallel()
	links := func(i uint32) (string, bool) { return map[uint32]string{1: "lo"}[i], i == 1 }
	ng := raw("numgen", unix.NFTA_NG_DREG, 1, unix.NFTA_NG_MODULUS, 100, unix.NFTA_NG_TYPE, 1)
	sets := map[string]*setInfo{
		"__map0": {Name: "__map0", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_INTERVAL | unix.NFT_SET_MAP, KeyLen: 4, DataType: nftDataVerdict,
			// 0-4 and 5-9: the kernel dumps no end between adjacent intervals.
			Elems: []setElem{{Key: be32(10), End: true}, {Key: be32(5), Verdict: &verdictData{Code: Drop}}, {Key: be32(0), Verdict: &verdictData{Code: Accept}}}},
		"__set1": {Name: "__set1", Flags: unix.NFT_SET_ANONYMOUS, KeyLen: 8,
			Elems: []setElem{{Key: []byte{1, 2, 3, 5, 0, 23, 0, 0}}, {Key: []byte{1, 2, 3, 4, 0, 22, 0, 0}}}},
		"__map2": {Name: "__map2", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_MAP, KeyLen: 2, DataType: 19, DataLen: 4,
			Elems: []setElem{{Key: be16(22), Data: host32(1)}}},
		"s4": {Name: "s4", KeyLen: 4},
	}
	counter := func(p uint64) []byte {
		inner, _ := netlink.MarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_COUNTER_BYTES, Data: binary.BigEndian.AppendUint64(nil, 0)},
			{Type: unix.NFTA_COUNTER_PACKETS, Data: binary.BigEndian.AppendUint64(nil, p)},
		})
		b, _ := netlink.MarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_EXPR_NAME, Data: []byte("counter\x00")},
			{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: inner},
		})
		return b
	}
	for _, tc := range []struct {
		name   string
		family uint8
		exprs  []ruleExpr
		want   string
	}{
		{"numgen <", 0, rexprs(ng, hton(1, 4), cmpOp(expr.CmpOpLt, be32(2)...), drop), "numgen random mod 100 < 2 drop"},
		{"numgen ==", 0, rexprs(raw("numgen", unix.NFTA_NG_DREG, 1, unix.NFTA_NG_MODULUS, 2, unix.NFTA_NG_TYPE, 0, unix.NFTA_NG_OFFSET, 100),
			eq(host32(101)...), accept), "numgen inc mod 2 offset 100 101 accept"},
		{"numgen vmap adjacent intervals", 0, rexprs(ng, hton(1, 4), &expr.Lookup{SourceRegister: 1, SetName: "__map0", IsDestRegSet: true}),
			"numgen random mod 100 vmap { 0-4 : accept, 5-9 : drop }"},
		{"jhash of a concatenation", 0, rexprs(nfIPv4, l4TCP, nh(12, 4), &expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			raw("hash", unix.NFTA_HASH_SREG, 1, unix.NFTA_HASH_DREG, 1, unix.NFTA_HASH_LEN, 8, unix.NFTA_HASH_MODULUS, 2, unix.NFTA_HASH_SEED, 5, unix.NFTA_HASH_TYPE, 0),
			eq(host32(1)...), accept), "jhash ip saddr . tcp dport mod 2 seed 0x5 1 accept"},
		{"symhash to mark", 0, rexprs(raw("hash", unix.NFTA_HASH_DREG, 1, unix.NFTA_HASH_MODULUS, 8, unix.NFTA_HASH_TYPE, 1),
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}), "meta mark set symhash mod 8"},
		{"fib present, 32-bit compare", 0, rexprs(raw("fib", unix.NFTA_FIB_DREG, 1, unix.NFTA_FIB_RESULT, unix.NFT_FIB_RESULT_OIF,
			unix.NFTA_FIB_FLAGS, unix.NFTA_FIB_F_SADDR|unix.NFTA_FIB_F_IIF|unix.NFTA_FIB_F_PRESENT), eq(host32(0)...), drop), "fib saddr . iif oif missing drop"},
		{"fib type", 0, rexprs(raw("fib", unix.NFTA_FIB_DREG, 1, unix.NFTA_FIB_RESULT, unix.NFT_FIB_RESULT_ADDRTYPE, unix.NFTA_FIB_FLAGS, unix.NFTA_FIB_F_DADDR),
			eq(host32(2)...), accept), "fib daddr type local accept"},
		{"ct direction, prefix", 0, rexprs(raw("ct", unix.NFTA_CT_KEY, unix.NFT_CT_DST_IP6, unix.NFTA_CT_DREG, 1, unix.NFTA_CT_DIRECTION, uint8(1)),
			eq(0x20, 0x01, 0x0d, 0xb8), accept), "ct reply ip6 daddr 2001:db8::/32 accept"},
		{"ct expiration >", 0, rexprs(ctLoad(unix.NFT_CT_EXPIRATION), hton(1, 4), cmpOp(expr.CmpOpGt, be32(60000)...), accept), "ct expiration > 1m accept"},
		{"ct mark set or", 0, rexprs(ctLoad(expr.CtKeyMARK), &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: host32(^uint32(0x10)), Xor: host32(0x10)},
			raw("ct", unix.NFTA_CT_KEY, unix.NFT_CT_MARK, unix.NFTA_CT_SREG, 1)), "ct mark set ct mark | 0x00000010"},
		{"ct zone set", 0, rexprs(imm(1, host32(4)...), raw("ct", unix.NFTA_CT_KEY, unix.NFT_CT_ZONE, unix.NFTA_CT_SREG, 1)), "ct zone set 4"},
		{"ct event set", 0, rexprs(imm(1, host32(3)...), raw("ct", unix.NFTA_CT_KEY, unix.NFT_CT_EVENTMASK, unix.NFTA_CT_SREG, 1)), "ct event set new,related"},
		{"ct count over", 0, rexprs(raw("connlimit", nftaConnlimitCount, 3, nftaConnlimitFlags, 1), drop), "ct count over 3 drop"},
		{"tcp option from rt mtu", 0, rexprs(raw("rt", unix.NFTA_RT_DREG, 1, unix.NFTA_RT_KEY, unix.NFT_RT_TCPMSS), hton(1, 2),
			raw("exthdr", unix.NFTA_EXTHDR_SREG, 1, unix.NFTA_EXTHDR_TYPE, uint8(2), unix.NFTA_EXTHDR_OFFSET, 2, unix.NFTA_EXTHDR_LEN, 2, unix.NFTA_EXTHDR_OP, unix.NFT_EXTHDR_OP_TCPOPT)),
			"tcp option maxseg size set rt mtu"},
		{"ipv6 exthdr hides nfproto", 0, rexprs(nfIPv6, raw("exthdr", unix.NFTA_EXTHDR_DREG, 1, unix.NFTA_EXTHDR_TYPE, uint8(0), unix.NFTA_EXTHDR_LEN, 1,
			unix.NFTA_EXTHDR_FLAGS, unix.NFT_EXTHDR_F_PRESENT, unix.NFTA_EXTHDR_OP, unix.NFT_EXTHDR_OP_IPV6), eq(1), accept), "exthdr hbh exists accept"},
		{"ipsec spi", 0, rexprs(raw("xfrm", nftaXfrmDreg, 1, nftaXfrmKey, 6, nftaXfrmDir, uint8(1)), eq(be32(5)...), accept), "ipsec out spi 5 accept"},
		{"quota", 0, rexprs(raw("quota", unix.NFTA_QUOTA_BYTES, uint64(100<<10), unix.NFTA_QUOTA_CONSUMED, uint64(10), unix.NFTA_QUOTA_FLAGS, 0), accept),
			"quota 100 kbytes used 10 bytes accept"},
		{"synproxy", 0, rexprs(raw("synproxy", nftaSynproxyMss, uint16(1460), nftaSynproxyWscale, uint8(7), nftaSynproxyF, 0xf)),
			"synproxy mss 1460 wscale 7 timestamp sack-perm"},
		{"objref", 0, rexprs(raw("objref", unix.NFTA_OBJREF_IMM_TYPE, unix.NFT_OBJECT_CT_HELPER, unix.NFTA_OBJREF_IMM_NAME, "ftp")), `ct helper set "ftp"`},
		{"dynset", 0, rexprs(nfIPv4, nh(12, 4), raw("dynset", unix.NFTA_DYNSET_SET_NAME, "s4", unix.NFTA_DYNSET_OP, unix.NFT_DYNSET_OP_UPDATE,
			unix.NFTA_DYNSET_SREG_KEY, 1, unix.NFTA_DYNSET_TIMEOUT, uint64(90000), unix.NFTA_DYNSET_EXPR, counter(0), unix.NFTA_DYNSET_FLAGS, 2)),
			"update @s4 { ip saddr timeout 1m30s counter }"},
		{"concatenation set", unix.NFPROTO_IPV4, rexprs(l4TCP, nh(12, 4), &expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup("__set1"), accept), "ip saddr . tcp dport { 1.2.3.4 . 22, 1.2.3.5 . 23 } accept"},
		{"data map", 0, rexprs(l4TCP, th(2, 2), &expr.Lookup{SourceRegister: 1, SetName: "__map2", IsDestRegSet: true, DestRegister: 1},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}), "meta mark set tcp dport map { 22 : 0x00000001 }"},
		{"dnat ip6 with ports, inet", 0, rexprs(imm(1, netipSlice("2001:db8::1")...), imm(2, be16(80)...), imm(3, be16(90)...),
			raw("nat", unix.NFTA_NAT_TYPE, unix.NFT_NAT_DNAT, unix.NFTA_NAT_FAMILY, unix.NFPROTO_IPV6, unix.NFTA_NAT_REG_ADDR_MIN, 1, unix.NFTA_NAT_REG_ADDR_MAX, 1,
				unix.NFTA_NAT_REG_PROTO_MIN, 2, unix.NFTA_NAT_REG_PROTO_MAX, 3, unix.NFTA_NAT_FLAGS, 0x3|0x4)),
			"dnat ip6 to [2001:db8::1]:80-90 random"},
		{"snat range as prefix", unix.NFPROTO_IPV4, rexprs(imm(1, 1, 2, 3, 4), imm(2, 1, 2, 3, 5),
			raw("nat", unix.NFTA_NAT_TYPE, unix.NFT_NAT_SNAT, unix.NFTA_NAT_FAMILY, unix.NFPROTO_IPV4, unix.NFTA_NAT_REG_ADDR_MIN, 1, unix.NFTA_NAT_REG_ADDR_MAX, 2, unix.NFTA_NAT_FLAGS, 1)),
			"snat to 1.2.3.4/31"},
		{"redirect", unix.NFPROTO_IPV4, rexprs(imm(1, be16(8080)...), raw("redir", unix.NFTA_REDIR_REG_PROTO_MIN, 1, unix.NFTA_REDIR_FLAGS, 0x12)),
			"redirect to :8080 fully-random"},
		{"dup with device", unix.NFPROTO_IPV4, rexprs(imm(1, 1, 2, 3, 4), imm(2, host32(1)...), raw("dup", unix.NFTA_DUP_SREG_ADDR, 1, unix.NFTA_DUP_SREG_DEV, 2)),
			`dup to 1.2.3.4 device "lo"`},
		{"ip dscp", 0, rexprs(nfIPv4, nh(1, 1), mask(0xfc), eq(0x20), accept), "ip dscp cs1 accept"},
		{"ip6 dscp over two bytes", 0, rexprs(nfIPv6, nh(0, 2), mask(0x0f, 0xc0), eq(0x0b, 0x80), accept), "ip6 dscp ef accept"},
		{"ip ttl set", 0, rexprs(nfIPv4, nh(8, 2), &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: []byte{0, 0xff}, Xor: []byte{64, 0}},
			raw("payload", unix.NFTA_PAYLOAD_SREG, 1, unix.NFTA_PAYLOAD_BASE, unix.NFT_PAYLOAD_NETWORK_HEADER, unix.NFTA_PAYLOAD_OFFSET, 8, unix.NFTA_PAYLOAD_LEN, 2,
				unix.NFTA_PAYLOAD_CSUM_TYPE, 1, unix.NFTA_PAYLOAD_CSUM_OFFSET, 10)), "ip ttl set 64"},
		{"vlan id hides ether type 8021q", unix.NFPROTO_BRIDGE, rexprs(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 12, Len: 2}, eq(0x81, 0),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 14, Len: 2}, mask(0x0f, 0xff), eq(0, 5), accept), "vlan id 5 accept"},
		{"icmp mtu hides its type", 0, rexprs(nfIPv4, metaLoad(expr.MetaKeyL4PROTO), eq(unix.IPPROTO_ICMP), th(0, 1), eq(3), th(6, 2), eq(be16(1500)...), accept),
			"icmp mtu 1500 accept"},
		{"icmp id keeps the echo type", 0, rexprs(nfIPv4, metaLoad(expr.MetaKeyL4PROTO), eq(unix.IPPROTO_ICMP), th(0, 1), eq(8), th(4, 2), eq(be16(3)...), accept),
			"icmp type echo-request icmp id 3 accept"},
		{"offset 4 without a type is not named", 0, rexprs(nfIPv4, metaLoad(expr.MetaKeyL4PROTO), eq(unix.IPPROTO_ICMP), th(4, 2), eq(be16(3)...), accept), ""},
		{"mark shift", 0, rexprs(ctLoad(expr.CtKeyMARK), raw("bitwise", unix.NFTA_BITWISE_SREG, 1, unix.NFTA_BITWISE_DREG, 1, unix.NFTA_BITWISE_LEN, 4,
			nftaBitwiseOp, 2, nftaBitwiseData, dataAttr(host32(8))), &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}), "meta mark set ct mark >> 8"},
		{"flow offload", 0, rexprs(raw("flow_offload", 1, "ft")), "flow add @ft"},
		{"network header without family in inet: raw", 0, rexprs(nh(12, 4), eq(1, 2, 3, 4), accept), "@nh,96,32 0x1020304 accept"},
		{"link layer without meta iiftype: raw", 0, rexprs(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 12, Len: 2}, eq(8, 0)), "@ll,96,16 0x800"},
		{"overwritten register", 0, rexprs(nfIPv4, nh(12, 4), &expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			nh(16, 4), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1, 2, 3, 4}}, accept), "ip daddr 1.2.3.4 accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fam := tc.family
			if fam == 0 {
				fam = unix.NFPROTO_INET
			}
			got, err := Render(Env{Family: fam, Sets: sets, IfName: links}, tc.exprs, "")
			if tc.want == "" {
				var nd *notDecoded
				if !errors.As(err, &nd) {
					t.Errorf("rendered %q, %v; want notDecoded", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

// TestRenderNativeRefuses: an attribute not understood, a value without a faithful
// text, or a register never loaded makes the rule fall back.
func TestRenderNativeRefuses(t *testing.T) {
	t.Parallel()
	sets := map[string]*setInfo{"s4": {Name: "s4", KeyLen: 4}}
	for _, tc := range []struct {
		name  string
		exprs []ruleExpr
	}{
		{"numgen with an unknown attribute", rexprs(raw("numgen", unix.NFTA_NG_DREG, 1, unix.NFTA_NG_MODULUS, 2, 9, 1), eq(host32(1)...))},
		{"ntoh", rexprs(ctLoad(unix.NFT_CT_EXPIRATION), raw("byteorder", unix.NFTA_BYTEORDER_SREG, 1, unix.NFTA_BYTEORDER_DREG, 1,
			unix.NFTA_BYTEORDER_OP, unix.NFT_BYTEORDER_NTOH, unix.NFTA_BYTEORDER_LEN, 4, unix.NFTA_BYTEORDER_SIZE, 4), eq(host32(1)...))},
		{"hash of a register never loaded", rexprs(raw("hash", unix.NFTA_HASH_SREG, 2, unix.NFTA_HASH_DREG, 1, unix.NFTA_HASH_LEN, 4, unix.NFTA_HASH_MODULUS, 2), eq(host32(1)...))},
		{"socket cgroupv2", rexprs(raw("socket", nftaSocketKey, 3, nftaSocketDreg, 1, nftaSocketLevel, 1), eq(host32(1)...))},
		{"unknown fib flag", rexprs(raw("fib", unix.NFTA_FIB_DREG, 1, unix.NFTA_FIB_RESULT, 3, unix.NFTA_FIB_FLAGS, 0x40|2), eq(host32(2)...))},
		{"rt realm 0", rexprs(raw("rt", unix.NFTA_RT_DREG, 1, unix.NFTA_RT_KEY, unix.NFT_RT_CLASSID), eq(host32(0)...))},
		{"nat netmap", rexprs(imm(1, 1, 2, 3, 4), raw("nat", unix.NFTA_NAT_TYPE, 0, unix.NFTA_NAT_FAMILY, 2, unix.NFTA_NAT_REG_ADDR_MIN, 1, unix.NFTA_NAT_FLAGS, 0x41))},
		{"dynset counter with counts", rexprs(nfIPv4, nh(12, 4), raw("dynset", unix.NFTA_DYNSET_SET_NAME, "s4", unix.NFTA_DYNSET_OP, 0,
			unix.NFTA_DYNSET_SREG_KEY, 1, unix.NFTA_DYNSET_EXPR, []byte{1}))},
		{"ct label unmasked", rexprs(raw("ct", unix.NFTA_CT_KEY, unix.NFT_CT_LABELS, unix.NFTA_CT_DREG, 1), cmpOp(expr.CmpOpNeq, make([]byte, 16)...))},
		{"ct src in inet", rexprs(raw("ct", unix.NFTA_CT_KEY, unix.NFT_CT_SRC, unix.NFTA_CT_DREG, 1, unix.NFTA_CT_DIRECTION, uint8(0)), eq(1, 2, 3, 4))},
		{"queue", rexprs(raw("queue", 1, uint16(3)))},
		{"last", rexprs(raw("last", 1, 0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(Env{Family: unix.NFPROTO_INET, Sets: sets}, tc.exprs, "")
			var nd *notDecoded
			if !errors.As(err, &nd) {
				t.Fatalf("rendered %q, %v; want notDecoded", got, err)
			}
		})
	}
}

func netipSlice(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// dataAttr wraps a value as NFTA_DATA_VALUE.
func dataAttr(b []byte) []byte {
	out, _ := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_DATA_VALUE, Data: b}})
	return out
}
