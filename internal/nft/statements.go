package nft

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Statements: meta set, log, limit, reject.

// NFTA_LOG_* bits of expr.Log.Key.
func logHas(e *expr.Log, attr int) bool { return e.Key&(1<<attr) != 0 }

func (r *renderer) log(e *expr.Log) error {
	s := "log"
	if logHas(e, unix.NFTA_LOG_PREFIX) {
		s += " prefix " + strconv.Quote(string(bytes.TrimRight(e.Data, "\x00")))
	}
	if logHas(e, unix.NFTA_LOG_GROUP) {
		s += fmt.Sprintf(" group %d", e.Group)
	}
	if logHas(e, unix.NFTA_LOG_SNAPLEN) {
		s += fmt.Sprintf(" snaplen %d", e.Snaplen)
	}
	if logHas(e, unix.NFTA_LOG_QTHRESHOLD) {
		s += fmt.Sprintf(" queue-threshold %d", e.QThreshold)
	}
	if logHas(e, unix.NFTA_LOG_LEVEL) && e.Level != expr.LogLevelWarning {
		if int(e.Level) >= len(logLevelNames) {
			return errUnsupported
		}
		s += " level " + logLevelNames[e.Level]
	}
	if logHas(e, unix.NFTA_LOG_FLAGS) && e.Flags != 0 {
		fl := e.Flags
		if fl&^expr.LogFlagsMask != 0 {
			return errUnsupported
		}
		if fl == expr.LogFlagsMask {
			s += " flags all"
		} else {
			if fl&(expr.LogFlagsTCPSeq|expr.LogFlagsTCPOpt) != 0 {
				s += " flags tcp"
				delim := " "
				if fl&expr.LogFlagsTCPSeq != 0 {
					s += " sequence"
					delim = ","
				}
				if fl&expr.LogFlagsTCPOpt != 0 {
					s += delim + "options"
				}
			}
			if fl&expr.LogFlagsIPOpt != 0 {
				s += " flags ip options"
			}
			if fl&expr.LogFlagsUID != 0 {
				s += " flags skuid"
			}
			if fl&expr.LogFlagsMACDecode != 0 {
				s += " flags ether"
			}
		}
	}
	r.emit(s)
	return nil
}

// byteRate scales a byte count as nft does: the largest unit that divides it exactly.
func byteRate(v uint64) (uint64, string) {
	units := []string{"bytes", "kbytes", "mbytes"}
	i := 0
	for i < len(units)-1 && v != 0 && v%1024 == 0 {
		v /= 1024
		i++
	}
	return v, units[i]
}

func (r *renderer) limit(e *expr.Limit) error {
	unit, ok := limitUnitNames[uint64(e.Unit)]
	if !ok {
		return errUnsupported
	}
	over := ""
	if e.Over {
		over = "over "
	}
	switch e.Type {
	case expr.LimitTypePkts:
		s := fmt.Sprintf("limit rate %s%d/%s", over, e.Rate, unit)
		if e.Burst != 0 && e.Burst != 5 {
			s += fmt.Sprintf(" burst %d packets", e.Burst)
		}
		r.emit(s)
	case expr.LimitTypePktBytes:
		rate, ru := byteRate(e.Rate)
		s := fmt.Sprintf("limit rate %s%d %s/%s", over, rate, ru, unit)
		if e.Burst != 0 {
			b, bu := byteRate(uint64(e.Burst))
			s += fmt.Sprintf(" burst %d %s", b, bu)
		}
		r.emit(s)
	default:
		return errUnsupported
	}
	return nil
}

func (r *renderer) reject(e *expr.Reject) error {
	switch e.Type {
	case unix.NFT_REJECT_TCP_RST:
		// nft hides the tcp dependency in an ip or ip6 table, not in an inet one.
		if r.l4Dep.ok && r.l4Dep.v == unix.IPPROTO_TCP && (r.env.Family == unix.NFPROTO_IPV4 || r.env.Family == unix.NFPROTO_IPV6) {
			r.out[r.l4Dep.idx] = ""
			r.l4Dep.ok = false
		}
		r.emit("reject with tcp reset")
	case unix.NFT_REJECT_ICMPX_UNREACH:
		if e.Code == unix.NFT_REJECT_ICMPX_PORT_UNREACH {
			r.emit("reject")
			return nil
		}
		n, ok := icmpxCodeNames[e.Code]
		if !ok {
			n = strconv.Itoa(int(e.Code))
		}
		r.emit("reject with icmpx " + n)
	case unix.NFT_REJECT_ICMP_UNREACH:
		net := r.net
		if net == 0 {
			return errUnsupported
		}
		// The reject type implies the family: nft hides the meta nfproto dependency.
		if r.netDep.ok && r.netDep.v == net {
			r.out[r.netDep.idx] = ""
			r.netDep.ok = false
		}
		names, proto, def := icmpCodeNames, "icmp", uint8(3)
		if net == unix.NFPROTO_IPV6 {
			names, proto, def = icmp6CodeNames, "icmpv6", 4
		}
		if e.Code == def && (r.env.Family == unix.NFPROTO_IPV4 || r.env.Family == unix.NFPROTO_IPV6) {
			r.emit("reject")
			return nil
		}
		n, ok := names[e.Code]
		if !ok {
			n = strconv.Itoa(int(e.Code))
		}
		r.emit("reject with " + proto + " " + n)
	default:
		return errUnsupported
	}
	return nil
}
