// Package xtables is the iptables view of a firewall: one model of a rule, whichever
// backend holds it (iptables-nft's nf_tables expressions, or iptables-legacy's x_tables
// blob read with getsockopt), rendered as iptables-save prints it, so that a rule is named
// in the words of the tool that wrote it.
package xtables

import "net/netip"

// Ext is one extension, a match (-m NAME) or a target (-j NAME), as the kernel holds it:
// its name, revision and info struct (linux/netfilter/xt_*.h, ipt_*.h, ip6t_*.h).
type Ext struct {
	Name string
	Rev  uint8
	Data []byte
	// Sets are the names of the ipsets a set match or a SET target refers to by index
	// (its xt_set_info fields in order: the match set; add, del, map), once ResolveSets
	// has asked the kernel: Save prints them by name, and the extension by name only
	// without them.
	Sets []string
}

// Inverted parts of a rule's fixed header, as in struct ipt_ip's invflags (IPT_INV_*).
const (
	InvInIface  = 0x01
	InvOutIface = 0x02
	InvSrc      = 0x08
	InvDst      = 0x10
	InvProto    = 0x40
	InvFrag     = 0x20
)

// Rule is one rule of a chain.
type Rule struct {
	// Src and Dst are -s and -d; the zero Prefix means any address.
	Src, Dst netip.Prefix
	// SrcMask and DstMask are a netmask that is not a prefix (-s 198.51.0.0/255.255.0.255):
	// then Src or Dst holds the address with all its bits, and iptables prints the mask.
	// The zero Addr when the prefix length says it all.
	SrcMask, DstMask netip.Addr
	// InIface and OutIface are -i and -o as iptables prints them (a trailing + is a
	// prefix match); empty means any.
	InIface, OutIface string
	// Proto is -p's protocol number; 0 means any.
	Proto uint8
	// Frag is -f (IPv4 only): the rule matches second and later fragments only.
	Frag bool
	// Inv is the Inv* bits of the parts above that are negated (!).
	Inv uint8
	// Matches are the -m extensions, in order.
	Matches []Ext
	// Target is the -j (or -g) extension. A standard target has an empty Name and says its
	// verdict in Verdict instead.
	Target Ext
	// Verdict is a standard target's verdict: ACCEPT, DROP, RETURN, QUEUE, or the name of
	// the chain jumped to (Goto: gone to); empty when the rule has no target.
	Verdict string
	Goto    bool
	// Packets and Bytes are the rule's counters.
	Packets, Bytes uint64
}

// Chain is a built-in chain (with a policy) or a user-defined one (Policy empty).
type Chain struct {
	Name   string
	Policy string
	// Packets and Bytes are a built-in chain's policy counters.
	Packets, Bytes uint64
	Rules          []Rule
}

// Table is one table of one family, its chains in the order iptables-save prints them.
type Table struct {
	// Family is unix.NFPROTO_IPV4 (iptables) or unix.NFPROTO_IPV6 (ip6tables).
	Family uint8
	Name   string
	Chains []Chain
}
