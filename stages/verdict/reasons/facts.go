package reasons

import (
	"strconv"
	"strings"
)

// Facts are what a fix may quote: the real names of this run, and what the verdict found
// in the host's state.
type Facts struct {
	Flow  string // 198.51.100.2:8080/tcp
	Addr  string
	Port  uint16
	Proto string
	Iface string // the interface the dropped packet was on, or "<iface>"
	Src   string // the dropped packet's source address
	Dst   string // the dropped packet's destination address
	V6    bool
	// From the host's state, when it was read ("" when unknown):
	RPFilter    string // net.ipv4.conf.<iface>.rp_filter
	RPFilterAll string // net.ipv4.conf.all.rp_filter
	IPForward   string // net.ipv4.ip_forward or net.ipv6.conf.all.forwarding
	Listeners   string // sockets on the flow's port, e.g. "tcp 127.0.0.1:8080 LISTEN"; "none" when none
	Programs    string // tc/XDP programs on Iface, e.g. "tcx ingress drop_all (id 42)"

	// Situations are the states of the host the verdict found, in no particular order: no
	// entry knows two of them.
	Situations []Situation
	// Listener is the listening address that takes the flow's packets (ListenerTakes).
	Listener string
	// Listening are the addresses listening on the flow's port (ListensElsewhere).
	Listening []string
}

// Situation is a state of the host that changes what to do about a reason.
type Situation string

const (
	// Forwarding is off, or on (a route says unreachable).
	ForwardingOff Situation = "forwarding_off"
	ForwardingOn  Situation = "forwarding_on"
	// Reverse-path filtering: both settings read and the effective mode loose already;
	// both read and strict (or unreadable numbers); only one of the two read.
	RPFilterLoose    Situation = "rp_filter_loose"
	RPFilterRead     Situation = "rp_filter_read"
	RPFilterHalfRead Situation = "rp_filter_half_read"
	// Sockets on the flow's port: none; one whose address takes the flow's; some, on
	// other addresses only; some whose addresses are unknown.
	NothingListens   Situation = "nothing_listens"
	ListenerTakes    Situation = "listener_takes"
	ListensElsewhere Situation = "listens_elsewhere"
	ListenersUnknown Situation = "listeners_unknown"
)

// byFamily are the placeholders whose words depend on the flow's family: IPv4, IPv6.
var byFamily = map[string][2]string{
	"family":     {"ipv4", "ipv6"},
	"any":        {"0.0.0.0", "::"},
	"forwarding": {"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"},
	"frag_time":  {"net.ipv4.ipfrag_time", "net.ipv6.ip6frag_time"},
}

// Fill replaces each {name} of template with its value from f; a name it does not know
// stays as it is.
func Fill(template string, f Facts) string {
	if !strings.Contains(template, "{") {
		return template
	}
	var pairs []string
	for name, value := range Placeholders(f) {
		pairs = append(pairs, "{"+name+"}", value)
	}
	return strings.NewReplacer(pairs...).Replace(template)
}

// Placeholders are the names a template may use, with their values for f.
func Placeholders(f Facts) map[string]string {
	proto := f.Proto
	if proto == "" {
		proto = "tcp"
	}
	attached := ""
	if p := strings.TrimSpace(f.Programs); p != "" {
		attached = "; attached now: " + p
	}
	m := map[string]string{
		"flow":  f.Flow,
		"addr":  f.Addr,
		"port":  strconv.Itoa(int(f.Port)),
		"proto": proto,
		// p is the protocol's letter in ss's options: -t, -u.
		"p":     proto[:1],
		"iface": f.Iface,
		"src":   f.Src,
		"dst":   f.Dst,
		// attached names the programs on the interface, when the host state was read.
		"attached":      attached,
		"rp_filter":     orUnread(f.RPFilter),
		"rp_filter_all": orUnread(f.RPFilterAll),
		"ip_forward":    strings.TrimSpace(f.IPForward),
		"listeners":     strings.TrimSpace(f.Listeners),
		"listener":      f.Listener,
		"listening":     strings.Join(f.Listening, ", "),
	}
	family := 0
	if f.V6 {
		family = 1
	}
	for name, words := range byFamily {
		m[name] = words[family]
	}
	return m
}

func orUnread(v string) string {
	if v = strings.TrimSpace(v); v == "" {
		return "unread"
	}
	return v
}
