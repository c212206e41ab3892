package verdict

// facts are what a fix may quote: the real names from this run.
type facts struct {
	flow  string // 198.51.100.2:8080/tcp
	addr  string
	port  uint16
	proto string
	iface string // the interface the dropped packet was on, or "<iface>"
	src   string // the dropped packet's source address
	dst   string // the dropped packet's destination address
	v6    bool
	// From the host's state, when it was read ("" when unknown):
	rpFilterIface string // net.ipv4.conf.<iface>.rp_filter
	rpFilterAll   string // net.ipv4.conf.all.rp_filter
	ipForward     string // net.ipv4.ip_forward or net.ipv6.conf.all.forwarding
	listeners     string // sockets on the flow's port, e.g. "tcp 127.0.0.1:8080 LISTEN"; "none" when none
	programs      string // tc/XDP programs on iface, e.g. "tcx ingress drop_all (id 42)"
	sysctls       map[string]string
}

// sysctl returns a setting read from the host, or "" when it was not read.
func (f facts) sysctl(name string) string { return f.sysctls[name] }

func (f facts) sysctlFamily() string {
	if f.v6 {
		return "ipv6"
	}
	return "ipv4"
}
