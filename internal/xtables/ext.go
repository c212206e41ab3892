package xtables

import (
	"fmt"
)

// saveCtx is what an extension's text depends on besides its info.
type saveCtx struct {
	family uint8
}

// saver renders an extension's options as iptables 1.8.9's libxt_NAME save function
// does (each option with its leading space), and the name it prints (an alias such as
// state, NOTRACK).
type saver func(c *saveCtx, e Ext, d info) (name, opts string, err error)

type extKey struct {
	target bool
	name   string
	rev    uint8
}

// opts wraps a saver that prints the extension under its own name.
func opts(f func(c *saveCtx, d info) (string, error)) saver {
	return func(c *saveCtx, e Ext, d info) (string, string, error) {
		s, err := f(c, d)
		return e.Name, s, err
	}
}

// sized wraps a saver that needs n bytes of info.
func sized(n int, f func(c *saveCtx, d info) (string, error)) saver {
	return opts(func(c *saveCtx, d info) (string, error) {
		if err := d.check(n); err != nil {
			return "", err
		}
		return f(c, d)
	})
}

func saveMatch(c *saveCtx, e Ext) (string, string, error) {
	return saveExt(c, extKey{false, e.Name, e.Rev}, e)
}

func saveTarget(c *saveCtx, e Ext) (string, string, error) {
	return saveExt(c, extKey{true, e.Name, e.Rev}, e)
}

func saveExt(c *saveCtx, k extKey, e Ext) (string, string, error) {
	f, ok := savers[k]
	if !ok {
		return "", "", ErrUnknown
	}
	return f(c, e, info(e.Data))
}

var savers map[extKey]saver

func init() {
	savers = map[extKey]saver{
		{false, "tcp", 0}:       sized(12, tcpSave),
		{false, "udp", 0}:       sized(9, udpSave),
		{false, "icmp", 0}:      icmpSave("--icmp-type"),
		{false, "icmp6", 0}:     icmpSave("--icmpv6-type"),
		{false, "conntrack", 1}: conntrackSave,
		{false, "conntrack", 2}: conntrackSave,
		{false, "conntrack", 3}: conntrackSave,
		{false, "comment", 0}:   sized(256, func(_ *saveCtx, d info) (string, error) { return " --comment" + saveString(d.str(0, 256)), nil }),
		{false, "multiport", 1}: multiportSave,
		{false, "mark", 1}:      sized(9, markMatchSave),
		{false, "connmark", 1}:  sized(9, markMatchSave),
		{false, "limit", 0}:     sized(8, limitSave),
		{false, "hashlimit", 3}: sized(298, hashlimitSave),
		{false, "addrtype", 1}:  addrtypeSave,
		{false, "physdev", 0}:   sized(66, physdevSave),
		{false, "owner", 1}:     sized(18, ownerSave),
		{false, "iprange", 1}:   sized(65, iprangeSave),
		{false, "string", 1}:    sized(150, stringSave),
		{false, "length", 0}:    sized(5, lengthSave),
		{false, "recent", 0}:    sized(211, recentSave(false)),
		{false, "recent", 1}:    sized(228, recentSave(true)),
		{false, "socket", 1}:    sized(1, socketSave),
		{false, "socket", 2}:    sized(1, socketSave),
		{false, "socket", 3}:    sized(1, socketSave),
		{false, "u32", 0}:       sized(1982, u32Save),
		{false, "statistic", 0}: sized(16, statisticSave),
		{false, "pkttype", 0}:   pkttypeSave,
		{false, "mac", 0}:       sized(12, macSave),
		{false, "tos", 1}:       sized(3, tosSave),
		{false, "dscp", 0}:      sized(2, dscpSave),
		{false, "ttl", 0}:       sized(2, hopSave("ttl")),
		{false, "hl", 0}:        sized(2, hopSave("hl")),
		{false, "tcpmss", 0}:    sized(5, tcpmssSave),
		{false, "cpu", 0}:       sized(8, cpuSave),
		{false, "helper", 0}:    sized(34, helperSave),
		{false, "rt", 0}:        sized(18, rtSave),
		{false, "rpfilter", 0}:  sized(1, rpfilterSave),
		{false, "set", 1}:       setMatchSave,
		{false, "set", 2}:       setMatchSave,
		{false, "set", 3}:       setMatchSave,
		{false, "set", 4}:       setMatchSave,
		{true, "SET", 3}:        setTargetSave,
		{true, "LOG", 0}:        logSave,
		{true, "REJECT", 0}:     rejectSave,
		{true, "MARK", 2}:       markTargetSave,
		{true, "CONNMARK", 1}:   sized(16, connmarkTargetSave(false)),
		{true, "CONNMARK", 2}:   sized(15, connmarkTargetSave(true)),
		{true, "DNAT", 0}:       natSave("--to-destination"),
		{true, "DNAT", 1}:       natSave("--to-destination"),
		{true, "DNAT", 2}:       natSave("--to-destination"),
		{true, "SNAT", 0}:       natSave("--to-source"),
		{true, "SNAT", 1}:       natSave("--to-source"),
		{true, "SNAT", 2}:       natSave("--to-source"),
		{true, "MASQUERADE", 0}: natSave("--to-ports"),
		{true, "REDIRECT", 0}:   natSave("--to-ports"),
		{true, "TPROXY", 1}:     sized(26, tproxySave),
		{true, "CT", 1}:         ctSave,
		{true, "CT", 2}:         ctSave,
		{true, "NOTRACK", 0}:    opts(func(*saveCtx, info) (string, error) { return "", nil }),
		{true, "TRACE", 0}:      opts(func(*saveCtx, info) (string, error) { return "", nil }),
		{true, "TCPMSS", 0}:     sized(2, tcpmssTargetSave),
		{true, "CHECKSUM", 0}:   sized(1, checksumSave),
		{true, "NFLOG", 0}:      sized(76, nflogSave),
		{true, "NFQUEUE", 3}:    sized(6, nfqueueSave),
	}
}

// ports prints a port or a range "lo:hi" (tcp, udp, conntrack, length, tcpmss).
func portRange(lo, hi uint16) string {
	if lo == hi {
		return fmt.Sprintf("%d", lo)
	}
	return fmt.Sprintf("%d:%d", lo, hi)
}

func inv(b bool) string {
	if b {
		return " !"
	}
	return ""
}
