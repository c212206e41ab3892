package nft

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// exprs names google/nftables expressions the way the kernel does.
func exprs(es ...expr.Any) []ruleExpr {
	out := make([]ruleExpr, len(es))
	for i, e := range es {
		name := ""
		switch e.(type) {
		case *expr.Payload:
			name = "payload"
		case *expr.Meta:
			name = "meta"
		case *expr.Ct:
			name = "ct"
		case *expr.Cmp:
			name = "cmp"
		case *expr.Range:
			name = "range"
		case *expr.Bitwise:
			name = "bitwise"
		case *expr.Lookup:
			name = "lookup"
		case *expr.Immediate, *expr.Verdict:
			name = "immediate"
		case *expr.Counter:
			name = "counter"
		case *expr.Log:
			name = "log"
		case *expr.Limit:
			name = "limit"
		case *expr.Reject:
			name = "reject"
		case *expr.Notrack:
			name = "notrack"
		default:
			panic("unnamed expression")
		}
		out[i] = ruleExpr{Name: name, Expr: e}
	}
	return out
}

// Building blocks, as nft 1.0.6 compiles them (see `nft --debug=netlink`).
func metaLoad(k expr.MetaKey) *expr.Meta { return &expr.Meta{Key: k, Register: 1} }
func ctLoad(k expr.CtKey) *expr.Ct       { return &expr.Ct{Key: k, Register: 1} }
func eq(b ...byte) *expr.Cmp             { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
func cmpOp(op expr.CmpOp, b ...byte) *expr.Cmp {
	return &expr.Cmp{Op: op, Register: 1, Data: b}
}
func nh(off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}
func th(off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}
}
func mask(m ...byte) *expr.Bitwise {
	return &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(m)), Mask: m, Xor: make([]byte, len(m))}
}
func host32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func be16(v uint16) []byte   { return binary.BigEndian.AppendUint16(nil, v) }
func verdict(k expr.VerdictKind) *expr.Verdict {
	return &expr.Verdict{Kind: k}
}
func lookup(set string) *expr.Lookup { return &expr.Lookup{SourceRegister: 1, SetName: set} }

var (
	nfIPv4  = []expr.Any{metaLoad(expr.MetaKeyNFPROTO), eq(unix.NFPROTO_IPV4)}
	nfIPv6  = []expr.Any{metaLoad(expr.MetaKeyNFPROTO), eq(unix.NFPROTO_IPV6)}
	l4TCP   = []expr.Any{metaLoad(expr.MetaKeyL4PROTO), eq(unix.IPPROTO_TCP)}
	l4UDP   = []expr.Any{metaLoad(expr.MetaKeyL4PROTO), eq(unix.IPPROTO_UDP)}
	accept  = verdict(expr.VerdictAccept)
	drop    = verdict(expr.VerdictDrop)
	anySets = map[string]*setInfo{
		"__set0": {Name: "__set0", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT, KeyLen: 2,
			Elems: []setElem{{Key: be16(123)}, {Key: be16(53)}}},
		"__set1": {Name: "__set1", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT | unix.NFT_SET_INTERVAL, KeyLen: 2,
			// As the kernel dumps an interval set: descending, with an end marker at 0.
			Elems: []setElem{{Key: be16(444), End: true}, {Key: be16(443)}, {Key: be16(101), End: true}, {Key: be16(1)}, {Key: be16(0), End: true}}},
		"__set2": {Name: "__set2", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT | unix.NFT_SET_INTERVAL, KeyLen: 4,
			Elems: []setElem{
				{Key: []byte{203, 0, 113, 10}, End: true}, {Key: []byte{203, 0, 113, 0}},
				{Key: []byte{192, 0, 2, 2}, End: true}, {Key: []byte{192, 0, 2, 1}},
				{Key: []byte{11, 0, 0, 0}, End: true}, {Key: []byte{10, 0, 0, 0}},
				{Key: []byte{0, 0, 0, 0}, End: true},
			}},
		"__map0": {Name: "__map0", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT | unix.NFT_SET_MAP, KeyLen: 4, DataType: nftDataVerdict,
			Elems: []setElem{
				{Key: host32(4), Verdict: &verdictData{Code: Accept}},
				{Key: host32(1), Verdict: &verdictData{Code: Drop}},
				{Key: host32(2), Verdict: &verdictData{Code: Jump, Chain: "est"}},
			}},
		"__set3": {Name: "__set3", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT, KeyLen: 16,
			Elems: []setElem{{Key: append([]byte("veth0"), make([]byte, 11)...)}, {Key: append([]byte("lo"), make([]byte, 14)...)}}},
		"__set4": {Name: "__set4", Flags: unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT, KeyLen: 1,
			Elems: []setElem{{Key: []byte{17}}, {Key: []byte{6}}}},
		"blk":    {Name: "blk", Flags: unix.NFT_SET_INTERVAL, KeyLen: 4},
		"concat": {Name: "concat", Flags: unix.NFT_SET_ANONYMOUS | nftSetConcat, KeyLen: 8},
		"dmap":   {Name: "dmap", Flags: unix.NFT_SET_MAP, KeyLen: 2, DataType: 0x3f},
		"broken": {Name: "broken", Flags: unix.NFT_SET_ANONYMOUS, KeyLen: 2, ElemsErr: errors.New("no elements")},
	}
)

func cat(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case []expr.Any:
			out = append(out, p...)
		case expr.Any:
			out = append(out, p)
		}
	}
	return out
}

func TestRenderRule(t *testing.T) {
	t.Parallel()
	links := func(i uint32) (string, bool) {
		if i == 1 {
			return "lo", true
		}
		return "", false
	}
	logPrefix := &expr.Log{Key: 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_LEVEL, Level: expr.LogLevelWarning, Data: []byte("low ")}
	for _, tc := range []struct {
		name    string
		family  uint8
		exprs   []expr.Any
		comment string
		want    string
	}{
		{"tcp dport drop", 0, cat(l4TCP, th(2, 2), eq(be16(8080)...), drop), "", "tcp dport 8080 drop"},
		{"ip saddr counter", 0, cat(nfIPv4, nh(12, 4), eq(198, 51, 100, 1), &expr.Counter{Packets: 1, Bytes: 60}, accept), "",
			"ip saddr 198.51.100.1 counter packets 1 bytes 60 accept"},
		{"th dport", 0, cat(th(2, 2), eq(be16(9999)...), &expr.Notrack{}), "", "th dport 9999 notrack"},
		{"kept nfproto", 0, cat(nfIPv4, l4TCP, th(2, 2), eq(be16(22)...), accept), "", "meta nfproto ipv4 tcp dport 22 accept"},
		{"lone nfproto", 0, cat(nfIPv6, accept), "", "meta nfproto ipv6 accept"},
		{"icmp hides both", 0, cat(nfIPv4, metaLoad(expr.MetaKeyL4PROTO), eq(unix.IPPROTO_ICMP), th(0, 1), eq(8), accept), "",
			"icmp type echo-request accept"},
		{"ip protocol kept in inet", 0, cat(nfIPv4, nh(9, 1), eq(6), th(2, 2), eq(be16(22)...), accept), "",
			"ip protocol tcp tcp dport 22 accept"},
		{"ip protocol hidden in ip", unix.NFPROTO_IPV4, cat(nh(9, 1), eq(6), th(2, 2), eq(be16(22)...), accept), "", "tcp dport 22 accept"},
		{"ip6 nexthdr hidden in ip6", unix.NFPROTO_IPV6, cat(nh(6, 1), eq(6), th(2, 2), eq(be16(22)...), accept), "", "tcp dport 22 accept"},
		{"ip6 nexthdr alone", unix.NFPROTO_IPV6, cat(nh(6, 1), eq(6), accept), "", "ip6 nexthdr tcp accept"},
		{"late dependency", 0, cat(l4UDP, nfIPv4, nh(12, 4), eq(1, 2, 3, 4), th(2, 2), eq(be16(5)...), accept), "",
			"ip saddr 1.2.3.4 udp dport 5 accept"},
		{"prefix /8", unix.NFPROTO_IPV4, cat(nh(12, 1), eq(10), accept), "", "ip saddr 10.0.0.0/8 accept"},
		{"prefix /12", 0, cat(nfIPv4, nh(12, 4), mask(0xff, 0xf0, 0, 0), eq(10, 0, 0, 0), drop), "", "ip saddr 10.0.0.0/12 drop"},
		{"prefix != /33", 0, cat(nfIPv6, nh(8, 5), mask(0xff, 0xff, 0xff, 0xff, 0x80), cmpOp(expr.CmpOpNeq, 0x20, 0x01, 0x0d, 0xb8, 0), accept), "",
			"ip6 saddr != 2001:db8::/33 accept"},
		{"ip6 daddr", 0, cat(nfIPv6, nh(24, 16), eq(netip.MustParseAddr("2001:db8::2").AsSlice()...), accept), "", "ip6 daddr 2001:db8::2 accept"},
		{"merged ports", 0, cat(l4UDP, th(0, 4), eq(0x04, 0x00, 0x00, 0x35), accept), "", "udp sport 1024 udp dport 53 accept"},
		{"ports !=, <, >=", 0, cat(l4UDP, th(0, 2), cmpOp(expr.CmpOpNeq, be16(53)...), th(2, 2), cmpOp(expr.CmpOpLt, be16(1024)...), th(2, 2), cmpOp(expr.CmpOpGte, be16(10)...)), "",
			"udp sport != 53 udp dport < 1024 udp dport >= 10"},
		{"range as two cmps", 0, cat(l4TCP, th(2, 2), cmpOp(expr.CmpOpGte, be16(1000)...), cmpOp(expr.CmpOpLte, be16(2000)...), &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}), "",
			"tcp dport 1000-2000 reject with tcp reset"},
		{"range expr !=", 0, cat(l4TCP, th(2, 2), &expr.Range{Op: expr.CmpOpNeq, Register: 1, FromData: be16(1000), ToData: be16(2000)}, accept), "",
			"tcp dport != 1000-2000 accept"},
		{"ct state", 0, cat(ctLoad(expr.CtKeySTATE), mask(host32(6)...), cmpOp(expr.CmpOpNeq, host32(0)...), accept), "", "ct state established,related accept"},
		{"ct state !", 0, cat(ctLoad(expr.CtKeySTATE), mask(host32(2)...), eq(host32(0)...), accept), "", "ct state ! established accept"},
		{"ct state ==", 0, cat(ctLoad(expr.CtKeySTATE), eq(host32(2)...), accept), "", "ct state == established accept"},
		{"ct state !=", 0, cat(ctLoad(expr.CtKeySTATE), cmpOp(expr.CmpOpNeq, host32(2)...), accept), "", "ct state != established accept"},
		{"ct status", 0, cat(ctLoad(expr.CtKeySTATUS), mask(host32(0x20)...), cmpOp(expr.CmpOpNeq, host32(0)...), accept), "", "ct status dnat accept"},
		{"ct mark", 0, cat(ctLoad(expr.CtKeyMARK), eq(host32(2)...), accept), "", "ct mark 0x00000002 accept"},
		{"ct direction", 0, cat(ctLoad(expr.CtKeyDIRECTION), eq(0), accept), "", "ct direction original accept"},
		{"tcp flags", 0, cat(l4TCP, th(13, 1), mask(0x02), cmpOp(expr.CmpOpNeq, 0), &expr.Counter{}), "", "tcp flags syn counter packets 0 bytes 0"},
		{"tcp flags /", 0, cat(l4TCP, th(13, 1), mask(0x17), eq(0x02), accept), "", "tcp flags syn / fin,syn,rst,ack accept"},
		{"tcp flags == one", 0, cat(l4TCP, th(13, 1), eq(0x02), accept), "", "tcp flags == syn accept"},
		{"tcp flags == two", 0, cat(l4TCP, th(13, 1), eq(0x12), accept), "", "tcp flags == 0x12 accept"},
		{"tcp flags !", 0, cat(l4TCP, th(13, 1), mask(0x02), eq(0), accept), "", "tcp flags ! syn accept"},
		{"iifname", 0, cat(metaLoad(expr.MetaKeyIIFNAME), eq(append([]byte("lo"), make([]byte, 14)...)...), accept), "", `iifname "lo" accept`},
		{"iifname wildcard", 0, cat(metaLoad(expr.MetaKeyIIFNAME), eq([]byte("veth")...), accept), "", `iifname "veth*" accept`},
		{"oifname !=", 0, cat(metaLoad(expr.MetaKeyOIFNAME), cmpOp(expr.CmpOpNeq, append([]byte("eth0"), make([]byte, 12)...)...), accept), "", `oifname != "eth0" accept`},
		{"iif named", 0, cat(metaLoad(expr.MetaKeyIIF), eq(host32(1)...), accept), "", `iif "lo" accept`},
		{"iif unnamed", 0, cat(metaLoad(expr.MetaKeyIIF), eq(host32(7)...), accept), "", `iif 7 accept`},
		{"mark", 0, cat(metaLoad(expr.MetaKeyMARK), eq(host32(1)...), &expr.Verdict{Kind: expr.VerdictJump, Chain: "other"}), "", "meta mark 0x00000001 jump other"},
		{"mark masked", 0, cat(metaLoad(expr.MetaKeyMARK), mask(host32(0xff)...), eq(host32(1)...), accept), "", "meta mark & 0x000000ff == 0x00000001 accept"},
		{"mark set", 0, cat(&expr.Immediate{Register: 1, Data: host32(5)}, &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}), "", "meta mark set 0x00000005"},
		{"nftrace set", 0, cat(&expr.Immediate{Register: 1, Data: []byte{1}}, &expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1}), "", "meta nftrace set 1"},
		{"skuid", 0, cat(metaLoad(expr.MetaKeySKUID), eq(host32(0)...), accept), "", "meta skuid 0 accept"},
		{"pkttype", 0, cat(metaLoad(expr.MetaKeyPKTTYPE), eq(0), accept), "", "meta pkttype host accept"},
		{"l4proto name", 0, cat(metaLoad(expr.MetaKeyL4PROTO), eq(58), accept), "", "meta l4proto ipv6-icmp accept"},
		{"l4proto !=", 0, cat(metaLoad(expr.MetaKeyL4PROTO), cmpOp(expr.CmpOpNeq, 6), accept), "", "meta l4proto != tcp accept"},
		{"anonymous set", 0, cat(nfIPv6, nh(8, 4), eq(0x20, 0x01, 0x0d, 0xb8), l4UDP, th(2, 2), lookup("__set0"), accept), "",
			"ip6 saddr 2001:db8::/32 udp dport { 53, 123 } accept"},
		{"inverted set", 0, cat(l4TCP, th(2, 2), &expr.Lookup{SourceRegister: 1, SetName: "__set0", Invert: true}, accept), "", "tcp dport != { 53, 123 } accept"},
		{"interval set", 0, cat(l4TCP, th(2, 2), lookup("__set1"), accept), "", "tcp dport { 1-100, 443 } accept"},
		{"address intervals", 0, cat(nfIPv4, nh(12, 4), lookup("__set2"), accept), "", "ip saddr { 10.0.0.0/8, 192.0.2.1, 203.0.113.0-203.0.113.9 } accept"},
		{"named set", 0, cat(nfIPv4, nh(12, 4), lookup("blk"), drop), "", "ip saddr @blk drop"},
		{"vmap", 0, cat(ctLoad(expr.CtKeySTATE), &expr.Lookup{SourceRegister: 1, SetName: "__map0", IsDestRegSet: true}), "",
			"ct state vmap { invalid : drop, established : jump est, related : accept }"},
		{"string set", 0, cat(metaLoad(expr.MetaKeyIIFNAME), lookup("__set3"), accept), "", `iifname { "lo", "veth0" } accept`},
		{"l4proto set, th", 0, cat(metaLoad(expr.MetaKeyL4PROTO), lookup("__set4"), th(2, 2), eq(be16(53)...), accept), "", "meta l4proto { tcp, udp } th dport 53 accept"},
		{"log", 0, cat(l4TCP, th(2, 2), cmpOp(expr.CmpOpLt, be16(1024)...), logPrefix, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}), "",
			`tcp dport < 1024 log prefix "low " reject`},
		{"log flags", 0, cat(&expr.Log{Key: 1<<unix.NFTA_LOG_LEVEL | 1<<unix.NFTA_LOG_FLAGS, Level: expr.LogLevelInfo, Flags: expr.LogFlagsMask}), "", "log level info flags all"},
		{"log group", 0, cat(&expr.Log{Key: 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_GROUP, Group: 3, Data: []byte("x")}), "", `log prefix "x" group 3`},
		{"log tcp flags", 0, cat(&expr.Log{Key: 1 << unix.NFTA_LOG_FLAGS, Flags: expr.LogFlagsTCPSeq | expr.LogFlagsTCPOpt}), "", "log flags tcp sequence,options"},
		{"limit", 0, cat(&expr.Limit{Type: expr.LimitTypePkts, Rate: 10, Unit: expr.LimitTimeSecond, Burst: 5}, accept), "", "limit rate 10/second accept"},
		{"limit burst", 0, cat(&expr.Limit{Type: expr.LimitTypePkts, Rate: 3, Unit: expr.LimitTimeMinute, Burst: 7}), "", "limit rate 3/minute burst 7 packets"},
		{"limit bytes", 0, cat(&expr.Limit{Type: expr.LimitTypePktBytes, Rate: 1 << 20, Unit: expr.LimitTimeSecond, Burst: 10240, Over: true}), "",
			"limit rate over 1 mbytes/second burst 10 kbytes"},
		{"reject ip", unix.NFPROTO_IPV4, cat(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}), "", "reject"},
		{"reject ip6", unix.NFPROTO_IPV6, cat(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 1}), "", "reject with icmpv6 admin-prohibited"},
		{"reject inet icmp", 0, cat(nfIPv4, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 1}), "", "reject with icmp host-unreachable"},
		{"reject icmpx", 0, cat(&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: 3}), "", "reject with icmpx admin-prohibited"},
		{"tcp reset keeps l4proto", 0, cat(l4TCP, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}), "", "meta l4proto tcp reject with tcp reset"},
		{"verdicts", 0, cat(&expr.Verdict{Kind: expr.VerdictGoto, Chain: "d"}), "", "goto d"},
		{"return", 0, cat(verdict(expr.VerdictReturn)), "", "return"},
		{"continue", 0, cat(verdict(expr.VerdictContinue)), "", "continue"},
		{"comment", 0, cat(&expr.Counter{}), "hello", `counter packets 0 bytes 0 comment "hello"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fam := tc.family
			if fam == 0 {
				fam = unix.NFPROTO_INET
			}
			got, err := Render(Env{Family: fam, Sets: anySets, IfName: links}, exprs(tc.exprs...), tc.comment)
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

// TestRenderRefuses checks that what is not understood never renders as a rule.
func TestRenderRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		exprs []ruleExpr
	}{
		{"unknown expression", append(exprs(nfIPv4...), ruleExpr{Name: "fib"}, ruleExpr{Name: "cmp", Expr: eq(1)})},
		{"unknown ip field", exprs(cat(nfIPv4, nh(1, 1), mask(0xfe), eq(0x20), accept)...)},
		{"unknown tcp field", exprs(cat(l4TCP, th(20, 4), eq(1, 2, 3, 4))...)},
		{"payload write", exprs(&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 1})},
		{"register never loaded", exprs(&expr.Cmp{Op: expr.CmpOpEq, Register: 2, Data: []byte{1}}, accept)},
		{"mask with a hole", exprs(cat(nfIPv4, nh(12, 4), mask(0xff, 0, 0xff, 0), eq(10, 0, 1, 0))...)},
		{"bitwise xor", exprs(metaLoad(expr.MetaKeyMARK), &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: host32(0xff), Xor: host32(1)}, eq(host32(1)...))},
		{"missing set", exprs(cat(l4TCP, th(2, 2), lookup("nope"))...)},
		{"set without elements", exprs(cat(l4TCP, th(2, 2), lookup("broken"))...)},
		{"concatenation", exprs(cat(l4TCP, th(2, 2), lookup("concat"))...)},
		{"data map", exprs(cat(l4TCP, th(2, 2), &expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "dmap"})...)},
		{"ct set", exprs(&expr.Immediate{Register: 1, Data: host32(1)}, &expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: 1})},
		{"meta set priority", exprs(&expr.Immediate{Register: 1, Data: host32(1)}, &expr.Meta{Key: expr.MetaKeyPRIORITY, SourceRegister: true, Register: 1})},
		{"unknown ct state bit", exprs(ctLoad(expr.CtKeySTATE), mask(host32(0x100)...), cmpOp(expr.CmpOpNeq, host32(0)...))},
		{"multi-bit ct state ==", exprs(ctLoad(expr.CtKeySTATE), eq(host32(6)...))},
		{"queue verdict", exprs(verdict(expr.VerdictQueue))},
		{"reject icmp without family", exprs(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 1})},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(Env{Family: unix.NFPROTO_INET, Sets: anySets}, tc.exprs, "")
			var nd *notDecoded
			if !errors.As(err, &nd) {
				t.Fatalf("rendered %q, %v; want notDecoded", got, err)
			}
			if len(tc.exprs) > 0 && len(nd.names) != len(tc.exprs) {
				t.Errorf("names %v; want all %d expressions", nd.names, len(tc.exprs))
			}
			if s := Undecoded(9, err); !strings.HasPrefix(s, "handle 9 # (expressions not decoded: ") {
				t.Errorf("fallback %q", s)
			}
		})
	}
}
