package nft

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// What a rule that rejects answers the sender with (Rule.Reject).
const (
	RejectTCPReset = "tcp reset"
	RejectICMP     = "icmp error"
)

// rejectOf says how a rule answers the packet it rejects: its native reject statement or
// iptables' REJECT target; "" for a rule that does not reject. A rejected connection looks
// to the client like a closed port ("connection refused" for a reset): the verdict must
// say the firewall answered.
func rejectOf(family uint8, exprs []ruleExpr) string {
	for _, e := range exprs {
		switch x := e.Expr.(type) {
		case *expr.Reject:
			if x.Type == unix.NFT_REJECT_TCP_RST {
				return RejectTCPReset
			}
			return RejectICMP
		case *expr.Target:
			if x.Name != "REJECT" {
				continue
			}
			// ipt_reject_info and ip6t_reject_info begin with the enum of what to send;
			// IPT_TCP_RESET is 7, IP6T_TCP_RESET 6.
			reset := uint32(7)
			if family == unix.NFPROTO_IPV6 {
				reset = 6
			}
			if info := xtInfo(x.Info); len(info) >= 4 && binary.NativeEndian.Uint32(info) == reset {
				return RejectTCPReset
			}
			return RejectICMP
		}
	}
	return ""
}
