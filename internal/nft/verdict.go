package nft

import "strconv"

// Verdict codes of nf_tables (include/uapi/linux/netfilter/nf_tables.h, netfilter.h).
const (
	Drop     = 0
	Accept   = 1
	Stolen   = 2
	Queue    = 3
	Repeat   = 4
	Continue = -1
	Break    = -2
	Jump     = -3
	Goto     = -4
	Return   = -5
	// verdictMask keeps the verdict of an NF_DROP_ERR or NF_QUEUE_NR code.
	verdictMask = 0xff
)

// VerdictString names a verdict code as nft prints it: accept, drop, jump X, ...
func VerdictString(code int32, chain string) string {
	switch code {
	case Continue:
		return "continue"
	case Break:
		return "break"
	case Jump:
		return "jump " + chain
	case Goto:
		return "goto " + chain
	case Return:
		return "return"
	}
	if code < 0 {
		return "verdict " + strconv.Itoa(int(code))
	}
	switch code & verdictMask {
	case Drop:
		return "drop"
	case Accept:
		return "accept"
	case Stolen:
		return "stolen"
	case Queue:
		return "queue"
	case Repeat:
		return "repeat"
	}
	return "verdict " + strconv.Itoa(int(code))
}

// Terminal reports whether a verdict ends the packet's walk through this base chain's
// hook invocation with a fate: accept, drop, queue or stolen.
func Terminal(code int32) bool {
	if code < 0 {
		return false
	}
	switch code & verdictMask {
	case Drop, Accept, Stolen, Queue:
		return true
	}
	return false
}
