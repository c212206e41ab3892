package nft

import (
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/xtables"
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
			if xtables.RejectsWithReset(family, xtExt(x.Name, x.Rev, x.Info)) {
				return RejectTCPReset
			}
			return RejectICMP
		}
	}
	return ""
}
