package xtables

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Save renders the table as iptables-save (1.8.9) prints it, without the comment lines
// that open and close its output: "*name", a ":CHAIN POLICY [packets:bytes]" line per
// chain, the rules, "COMMIT". With counters, each rule line starts with its
// "[packets:bytes]", as with iptables-save -c.
func (t *Table) Save(counters bool) string {
	var b strings.Builder
	b.WriteString("*" + t.Name + "\n")
	for _, c := range t.Chains {
		policy := c.Policy
		if policy == "" {
			policy = "-"
		}
		fmt.Fprintf(&b, ":%s %s [%d:%d]\n", c.Name, policy, c.Packets, c.Bytes)
	}
	for _, c := range t.Chains {
		for i := range c.Rules {
			r := &c.Rules[i]
			if counters {
				fmt.Fprintf(&b, "[%d:%d] ", r.Packets, r.Bytes)
			}
			text, _ := r.Save(c.Name, t.Family)
			b.WriteString(text + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// Notes says what Save could not decode in the table's rules, once per extension.
func (t *Table) Notes() []string {
	var notes []string
	seen := map[string]bool{}
	for _, c := range t.Chains {
		for i := range c.Rules {
			_, ns := c.Rules[i].Save(c.Name, t.Family)
			for _, n := range ns {
				if !seen[n] {
					seen[n] = true
					notes = append(notes, n)
				}
			}
		}
	}
	return notes
}

// Save renders the rule as the "-A CHAIN ..." line iptables-save prints for it (family
// unix.NFPROTO_IPV4 or NFPROTO_IPV6). An extension whose info it does not decode is
// printed by name alone, and a note says so: such a line names the rule but cannot be
// restored as it is.
func (r *Rule) Save(chain string, family uint8) (text string, notes []string) {
	var b strings.Builder
	b.WriteString("-A " + chain)
	saveAddr(&b, "s", r.Src, r.SrcMask, r.Inv&InvSrc != 0, family)
	saveAddr(&b, "d", r.Dst, r.DstMask, r.Inv&InvDst != 0, family)
	saveIface(&b, "i", r.InIface, r.Inv&InvInIface != 0)
	saveIface(&b, "o", r.OutIface, r.Inv&InvOutIface != 0)
	if r.Proto != 0 || r.Inv&InvProto != 0 {
		if r.Inv&InvProto != 0 {
			b.WriteString(" !")
		}
		b.WriteString(" -p " + protoName(r.Proto))
	}
	if r.Frag {
		if r.Inv&InvFrag != 0 {
			b.WriteString(" !")
		}
		b.WriteString(" -f")
	}
	ctx := &saveCtx{family: family}
	for _, m := range r.Matches {
		name, opts, err := saveMatch(ctx, m)
		if err != nil {
			name, opts = m.Name, ""
			notes = append(notes, notDecoded(m, err))
		}
		b.WriteString(" -m " + name + opts)
	}
	switch {
	case r.Target.Name != "":
		name, opts, err := saveTarget(ctx, r.Target)
		if err != nil {
			name, opts = r.Target.Name, ""
			notes = append(notes, notDecoded(r.Target, err))
		}
		b.WriteString(" -j " + name + opts)
	case r.Verdict != "" && r.Goto:
		b.WriteString(" -g " + r.Verdict)
	case r.Verdict != "":
		b.WriteString(" -j " + r.Verdict)
	}
	return b.String(), notes
}

func notDecoded(e Ext, err error) string {
	why := "its options were not decoded"
	if errors.Is(err, errSetNames) {
		why = err.Error()
	}
	return fmt.Sprintf("extension %s (revision %d) is shown by name only: %s", e.Name, e.Rev, why)
}

// saveAddr prints -s or -d: iptables-save always gives the prefix length, or the mask
// itself when it is not contiguous.
func saveAddr(b *strings.Builder, letter string, p netip.Prefix, mask netip.Addr, inv bool, family uint8) {
	if !p.IsValid() && !inv {
		return
	}
	if !p.IsValid() {
		p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if family == unix.NFPROTO_IPV6 {
			p = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	}
	if inv {
		b.WriteString(" !")
	}
	if mask.IsValid() {
		fmt.Fprintf(b, " -%s %s/%s", letter, p.Addr(), mask)
		return
	}
	fmt.Fprintf(b, " -%s %s/%d", letter, p.Addr(), p.Bits())
}

func saveIface(b *strings.Builder, letter, name string, inv bool) {
	if name == "" {
		return
	}
	if inv {
		b.WriteString(" !")
	}
	b.WriteString(" -" + letter + " " + name)
}

// protoName names -p's protocol as iptables 1.8.9 does: by its name in the system's
// protocol database (Debian's netbase, taken as fixed here: a static binary does not read
// /etc/protocols), else by number.
func protoName(p uint8) string {
	if n, ok := protocolNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// protocolNames are the IANA protocol keywords as Debian 12's /etc/protocols spells them.
var protocolNames = map[uint8]string{
	1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp", 8: "egp", 9: "igp", 12: "pup",
	17: "udp", 20: "hmp", 22: "xns-idp", 27: "rdp", 29: "iso-tp4", 33: "dccp", 36: "xtp", 37: "ddp",
	38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 45: "idrp", 46: "rsvp", 47: "gre",
	50: "esp", 51: "ah", 57: "skip", 58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts", 73: "rspf",
	81: "vmtp", 88: "eigrp", 89: "ospf", 93: "ax.25", 94: "ipip", 97: "etherip", 98: "encap", 103: "pim",
	108: "ipcomp", 112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 133: "fc", 135: "mobility-header",
	136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip", 140: "shim6", 141: "wesp", 142: "rohc",
	143: "ethernet",
}

// saveString prints a string option as libxtables does: bare when it is a plain word,
// else between double quotes with ", \ and ' escaped.
func saveString(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return " " + s
	}
	var b strings.Builder
	b.WriteString(` "`)
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteString(`"`)
	return b.String()
}

// saveOrder orders chains as both iptables-save's print them: built-in chains (hook >= 0)
// in hook order, then user chains by name.
func saveOrder(hookA, hookB int, nameA, nameB string) int {
	switch {
	case hookA >= 0 && hookB >= 0:
		return hookA - hookB
	case hookA >= 0:
		return -1
	case hookB >= 0:
		return 1
	}
	return strings.Compare(nameA, nameB)
}
