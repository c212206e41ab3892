package nft

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file reads the user's ruleset (chains, rules, sets) with raw netlink dumps. It does
// not use google/nftables' GetRules: that silently skips expressions it does not know,
// which would print a rule with a match missing. Here every expression is kept, by name
// at least, and only expressions whose attributes are all understood are decoded.

// Executor sends a request and returns the replies (a *netlink.Conn).
type Executor interface {
	Execute(netlink.Message) ([]netlink.Message, error)
}

func MsgType(msg int) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msg)
}

func Genmsg(family uint8) []byte { return []byte{family, unix.NFNETLINK_V0, 0, 0} }

func dumpRequest(msg int, family uint8, attrs []netlink.Attribute) (netlink.Message, error) {
	data := Genmsg(family)
	if len(attrs) > 0 {
		b, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return netlink.Message{}, err
		}
		data = append(data, b...)
	}
	return netlink.Message{
		Header: netlink.Header{Type: MsgType(msg), Flags: netlink.Request | netlink.Dump},
		Data:   data,
	}, nil
}

func CString(s string) []byte { return append([]byte(s), 0) }

// ChainKey names a chain.
type ChainKey struct {
	Family uint8
	Table  string
	Chain  string
}

// Chain is what the trace assembly needs of a chain.
type Chain struct {
	ChainKey
	Base     bool
	Hook     uint32
	Priority int32
	Policy   uint32
}

// Chains lists every chain of every table in the namespace.
func Chains(c Executor) (map[ChainKey]Chain, error) {
	req, err := dumpRequest(unix.NFT_MSG_GETCHAIN, unix.NFPROTO_UNSPEC, nil)
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	chains := map[ChainKey]Chain{}
	for _, m := range msgs {
		if m.Header.Type != MsgType(unix.NFT_MSG_NEWCHAIN) {
			continue
		}
		ci, err := parseChain(m.Data)
		if err != nil {
			return nil, fmt.Errorf("list chains: %w", err)
		}
		chains[ci.ChainKey] = ci
	}
	return chains, nil
}

func parseChain(data []byte) (Chain, error) {
	var ci Chain
	if len(data) < 4 {
		return ci, fmt.Errorf("chain message too short")
	}
	ci.Family = data[0]
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return ci, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_CHAIN_TABLE:
			ci.Table = ad.String()
		case unix.NFTA_CHAIN_NAME:
			ci.Chain = ad.String()
		case unix.NFTA_CHAIN_POLICY:
			ci.Policy = ad.Uint32()
		case unix.NFTA_CHAIN_HOOK:
			ci.Base = true
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				nad.ByteOrder = binary.BigEndian
				for nad.Next() {
					switch nad.Type() {
					case unix.NFTA_HOOK_HOOKNUM:
						ci.Hook = nad.Uint32()
					case unix.NFTA_HOOK_PRIORITY:
						ci.Priority = int32(nad.Uint32())
					}
				}
				return nil
			})
		}
	}
	return ci, ad.Err()
}

// ruleInfo is a rule as fetched from the kernel.
type ruleInfo struct {
	Chain   string
	Handle  uint64
	Exprs   []ruleExpr
	Comment string
	// UserData is NFTA_RULE_USERDATA whole: ebtables-nft marks a chain's policy rule there.
	UserData []byte
}

// dumpRules lists the rules of one chain; of every chain of the table when chain is "".
func dumpRules(c Executor, family uint8, table, chain string) ([]ruleInfo, error) {
	attrs := []netlink.Attribute{{Type: unix.NFTA_RULE_TABLE, Data: CString(table)}}
	if chain != "" {
		attrs = append(attrs, netlink.Attribute{Type: unix.NFTA_RULE_CHAIN, Data: CString(chain)})
	}
	req, err := dumpRequest(unix.NFT_MSG_GETRULE, family, attrs)
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("list rules of %s %s %s: %w", FamilyName(family), table, chain, err)
	}
	var rules []ruleInfo
	for _, m := range msgs {
		if m.Header.Type != MsgType(unix.NFT_MSG_NEWRULE) {
			continue
		}
		ri, err := parseRule(m.Data)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s %s %s: %w", FamilyName(family), table, chain, err)
		}
		rules = append(rules, ri)
	}
	return rules, nil
}

func parseRule(data []byte) (ruleInfo, error) {
	var ri ruleInfo
	if len(data) < 4 {
		return ri, fmt.Errorf("rule message too short")
	}
	fam := data[0]
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return ri, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_CHAIN:
			ri.Chain = strings.TrimRight(ad.String(), "\x00")
		case unix.NFTA_RULE_HANDLE:
			ri.Handle = ad.Uint64()
		case unix.NFTA_RULE_EXPRESSIONS:
			ri.Exprs, err = decodeExprs(fam, ad.Bytes())
			if err != nil {
				return ri, err
			}
		case unix.NFTA_RULE_USERDATA:
			ri.UserData = ad.Bytes()
			ri.Comment = ruleComment(ri.UserData)
		}
	}
	return ri, ad.Err()
}

// Attributes not in x/sys/unix.
const (
	nftaBitwiseOp   = 6 // NFTA_BITWISE_OP
	nftaBitwiseData = 7 // NFTA_BITWISE_DATA
	nftBitwiseMask  = 0 // NFT_BITWISE_MASK_XOR (formerly BOOL)
)

// exprSpec says which attributes an expression may carry for this package to decode it,
// and how to make the google/nftables value to decode it into.
type exprSpec struct {
	attrs []uint16
	make  func() expr.Any
	// check inspects attribute values the decoder would otherwise ignore.
	check func(attrs map[uint16][]byte) bool
}

var exprSpecs = map[string]exprSpec{
	"payload": {attrs: []uint16{unix.NFTA_PAYLOAD_DREG, unix.NFTA_PAYLOAD_BASE, unix.NFTA_PAYLOAD_OFFSET, unix.NFTA_PAYLOAD_LEN},
		make: func() expr.Any { return &expr.Payload{} }},
	"meta": {attrs: []uint16{unix.NFTA_META_KEY, unix.NFTA_META_DREG, unix.NFTA_META_SREG},
		make: func() expr.Any { return &expr.Meta{} }},
	"ct": {attrs: []uint16{unix.NFTA_CT_KEY, unix.NFTA_CT_DREG},
		make: func() expr.Any { return &expr.Ct{} }},
	"cmp": {attrs: []uint16{unix.NFTA_CMP_SREG, unix.NFTA_CMP_OP, unix.NFTA_CMP_DATA},
		make: func() expr.Any { return &expr.Cmp{} }, check: valueData(unix.NFTA_CMP_DATA)},
	"range": {attrs: []uint16{unix.NFTA_RANGE_SREG, unix.NFTA_RANGE_OP, unix.NFTA_RANGE_FROM_DATA, unix.NFTA_RANGE_TO_DATA},
		make: func() expr.Any { return &expr.Range{} }},
	"bitwise": {attrs: []uint16{unix.NFTA_BITWISE_SREG, unix.NFTA_BITWISE_DREG, unix.NFTA_BITWISE_LEN, unix.NFTA_BITWISE_MASK, unix.NFTA_BITWISE_XOR, nftaBitwiseOp},
		make: func() expr.Any { return &expr.Bitwise{} },
		check: func(a map[uint16][]byte) bool {
			op, ok := a[nftaBitwiseOp]
			return !ok || (len(op) == 4 && binary.BigEndian.Uint32(op) == nftBitwiseMask)
		}},
	"lookup": {attrs: []uint16{unix.NFTA_LOOKUP_SET, unix.NFTA_LOOKUP_SET_ID, unix.NFTA_LOOKUP_SREG, unix.NFTA_LOOKUP_DREG, unix.NFTA_LOOKUP_FLAGS},
		make: func() expr.Any { return &expr.Lookup{} },
		check: func(a map[uint16][]byte) bool {
			f, ok := a[unix.NFTA_LOOKUP_FLAGS]
			return !ok || (len(f) == 4 && binary.BigEndian.Uint32(f)&^unix.NFT_LOOKUP_F_INV == 0)
		}},
	"immediate": {attrs: []uint16{unix.NFTA_IMMEDIATE_DREG, unix.NFTA_IMMEDIATE_DATA},
		make: func() expr.Any { return &expr.Immediate{} }},
	"counter": {attrs: []uint16{unix.NFTA_COUNTER_BYTES, unix.NFTA_COUNTER_PACKETS, unix.NFTA_COUNTER_PAD},
		make: func() expr.Any { return &expr.Counter{} }},
	"log": {attrs: []uint16{unix.NFTA_LOG_GROUP, unix.NFTA_LOG_PREFIX, unix.NFTA_LOG_SNAPLEN, unix.NFTA_LOG_QTHRESHOLD, unix.NFTA_LOG_LEVEL, unix.NFTA_LOG_FLAGS},
		make: func() expr.Any { return &expr.Log{} }},
	"limit": {attrs: []uint16{unix.NFTA_LIMIT_RATE, unix.NFTA_LIMIT_UNIT, unix.NFTA_LIMIT_BURST, unix.NFTA_LIMIT_TYPE, unix.NFTA_LIMIT_FLAGS},
		make: func() expr.Any { return &expr.Limit{} },
		check: func(a map[uint16][]byte) bool {
			f, ok := a[unix.NFTA_LIMIT_FLAGS]
			return !ok || (len(f) == 4 && binary.BigEndian.Uint32(f)&^unix.NFT_LIMIT_F_INV == 0)
		}},
	"reject": {attrs: []uint16{unix.NFTA_REJECT_TYPE, unix.NFTA_REJECT_ICMP_CODE},
		make: func() expr.Any { return &expr.Reject{} }},
	"notrack": {make: func() expr.Any { return &expr.Notrack{} }},
}

// valueData checks that a data attribute holds a plain value (NFTA_DATA_VALUE).
func valueData(attr uint16) func(map[uint16][]byte) bool {
	return func(a map[uint16][]byte) bool {
		b, ok := a[attr]
		if !ok {
			return false
		}
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return false
		}
		n := 0
		for ad.Next() {
			if ad.Type() != unix.NFTA_DATA_VALUE {
				return false
			}
			n++
		}
		return ad.Err() == nil && n == 1
	}
}

// decodeExprs decodes NFTA_RULE_EXPRESSIONS: every expression becomes a ruleExpr, decoded
// when its name and every attribute it carries are understood, named only otherwise.
func decodeExprs(fam uint8, b []byte) ([]ruleExpr, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	var out []ruleExpr
	for ad.Next() {
		if ad.Type() != unix.NFTA_LIST_ELEM {
			continue
		}
		name, data, err := splitExpr(ad.Bytes())
		if err != nil {
			return nil, err
		}
		if name == "match" || name == "target" {
			// Named by extension, so that an undecoded rule says which one is missing.
			xtName, e := decodeXt(name, data)
			if xtName != "" {
				name = fmt.Sprintf("xt %s %q", name, xtName)
			}
			out = append(out, ruleExpr{Name: name, Expr: e})
			continue
		}
		e := ruleExpr{Name: name, Expr: decodeExpr(fam, name, data)}
		if e.Expr == nil {
			e.Raw = parseRaw(data)
		}
		out = append(out, e)
	}
	return out, ad.Err()
}

func splitExpr(b []byte) (name string, data []byte, err error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", nil, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_EXPR_NAME:
			name = ad.String()
		case unix.NFTA_EXPR_DATA:
			data = ad.Bytes()
		}
	}
	if name == "" {
		return "", nil, fmt.Errorf("expression without a name")
	}
	return name, data, ad.Err()
}

// decodeExpr returns the decoded expression, or nil when it cannot be decoded faithfully.
func decodeExpr(fam uint8, name string, data []byte) expr.Any {
	spec, ok := exprSpecs[name]
	if !ok {
		return nil
	}
	attrs := map[uint16][]byte{}
	if len(data) > 0 {
		ad, err := netlink.NewAttributeDecoder(data)
		if err != nil {
			return nil
		}
		for ad.Next() {
			t := ad.Type()
			allowed := false
			for _, a := range spec.attrs {
				if a == t {
					allowed = true
				}
			}
			if !allowed {
				return nil
			}
			attrs[t] = ad.Bytes()
		}
		if ad.Err() != nil {
			return nil
		}
	}
	if spec.check != nil && !spec.check(attrs) {
		return nil
	}
	if name == "immediate" {
		return decodeImmediate(attrs)
	}
	e := spec.make()
	if len(data) > 0 {
		if err := expr.Unmarshal(fam, data, e); err != nil {
			return nil
		}
	}
	return e
}

// decodeImmediate decodes an immediate: data into a register, or a verdict (register 0).
func decodeImmediate(attrs map[uint16][]byte) expr.Any {
	reg, ok := attrs[unix.NFTA_IMMEDIATE_DREG]
	data, ok2 := attrs[unix.NFTA_IMMEDIATE_DATA]
	if !ok || !ok2 || len(reg) != 4 {
		return nil
	}
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil || !ad.Next() {
		return nil
	}
	r := binary.BigEndian.Uint32(reg)
	switch ad.Type() {
	case unix.NFTA_DATA_VALUE:
		if r == nftRegVerdict {
			return nil
		}
		return &expr.Immediate{Register: r, Data: ad.Bytes()}
	case unix.NFTA_DATA_VERDICT:
		if r != nftRegVerdict {
			return nil
		}
		v, ok := decodeVerdict(ad.Bytes())
		if !ok {
			return nil
		}
		return &expr.Verdict{Kind: expr.VerdictKind(v.Code), Chain: v.Chain}
	}
	return nil
}

// decodeVerdict decodes the inside of NFTA_DATA_VERDICT.
func decodeVerdict(b []byte) (verdictData, bool) {
	var v verdictData
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return v, false
	}
	ad.ByteOrder = binary.BigEndian
	code := false
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			v.Code = int32(ad.Uint32())
			code = true
		case unix.NFTA_VERDICT_CHAIN:
			v.Chain = ad.String()
		default:
			return v, false
		}
	}
	return v, code && ad.Err() == nil
}

// dumpSets lists the sets of one table.
func dumpSets(c Executor, family uint8, table string) (map[string]*setInfo, error) {
	req, err := dumpRequest(unix.NFT_MSG_GETSET, family, []netlink.Attribute{
		{Type: unix.NFTA_SET_TABLE, Data: CString(table)},
	})
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("list sets of %s %s: %w", FamilyName(family), table, err)
	}
	sets := map[string]*setInfo{}
	for _, m := range msgs {
		if m.Header.Type != MsgType(unix.NFT_MSG_NEWSET) || len(m.Data) < 4 {
			continue
		}
		s, err := parseSet(m.Data)
		if err != nil {
			return nil, fmt.Errorf("list sets of %s %s: %w", FamilyName(family), table, err)
		}
		sets[s.Name] = s
	}
	return sets, nil
}

func parseSet(data []byte) (*setInfo, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("set message too short")
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	s := &setInfo{}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_NAME:
			s.Name = ad.String()
		case unix.NFTA_SET_FLAGS:
			s.Flags = ad.Uint32()
		case unix.NFTA_SET_KEY_LEN:
			s.KeyLen = ad.Uint32()
		case unix.NFTA_SET_DATA_TYPE:
			s.DataType = ad.Uint32()
		case unix.NFTA_SET_DATA_LEN:
			s.DataLen = ad.Uint32()
		case nftaSetObjType:
			s.ObjType = ad.Uint32()
		}
	}
	return s, ad.Err()
}

// dumpElems lists the elements of one set.
func dumpElems(c Executor, family uint8, table, set string) ([]setElem, error) {
	req, err := dumpRequest(unix.NFT_MSG_GETSETELEM, family, []netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: CString(table)},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: CString(set)},
	})
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("list elements of set %s: %w", set, err)
	}
	var elems []setElem
	for _, m := range msgs {
		if m.Header.Type != MsgType(unix.NFT_MSG_NEWSETELEM) || len(m.Data) < 4 {
			continue
		}
		es, err := parseElems(m.Data[4:])
		if err != nil {
			return nil, fmt.Errorf("list elements of set %s: %w", set, err)
		}
		elems = append(elems, es...)
	}
	return elems, nil
}

func parseElems(b []byte) ([]setElem, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	var elems []setElem
	for ad.Next() {
		if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			continue
		}
		lad, err := netlink.NewAttributeDecoder(ad.Bytes())
		if err != nil {
			return nil, err
		}
		for lad.Next() {
			if lad.Type() != unix.NFTA_LIST_ELEM {
				continue
			}
			el, err := parseElem(lad.Bytes())
			if err != nil {
				return nil, err
			}
			elems = append(elems, el)
		}
		if err := lad.Err(); err != nil {
			return nil, err
		}
	}
	return elems, ad.Err()
}

func parseElem(b []byte) (setElem, error) {
	var el setElem
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return el, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			el.Key = dataValue(ad.Bytes())
		case nftaSetElemKeyEnd:
			el.KeyEnd = dataValue(ad.Bytes())
		case nftaSetElemObjRef:
			el.ObjRef = ad.String()
		case unix.NFTA_SET_ELEM_FLAGS:
			el.End = ad.Uint32()&unix.NFT_SET_ELEM_INTERVAL_END != 0
		case unix.NFTA_SET_ELEM_DATA:
			dad, err := netlink.NewAttributeDecoder(ad.Bytes())
			if err != nil {
				return el, err
			}
			for dad.Next() {
				switch dad.Type() {
				case unix.NFTA_DATA_VALUE:
					el.Data = dad.Bytes()
				case unix.NFTA_DATA_VERDICT:
					if v, ok := decodeVerdict(dad.Bytes()); ok {
						el.Verdict = &v
					}
				}
			}
		}
	}
	return el, ad.Err()
}

// dataValue returns the NFTA_DATA_VALUE inside a data attribute.
func dataValue(b []byte) []byte {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_DATA_VALUE {
			return ad.Bytes()
		}
	}
	return nil
}
