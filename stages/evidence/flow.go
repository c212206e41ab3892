// Package evidence is the model shared by every stage of the pipeline: the flow being
// diagnosed and what each stage recorded about it. Stages fill it in, the verdict package
// judges it, the report package renders it. It holds data only, never kernel objects.
package evidence

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Proto is the transport protocol of a flow.
type Proto string

const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// Number is the IP protocol number.
func (p Proto) Number() uint8 {
	if p == UDP {
		return 17
	}
	return 6
}

// ParseProto accepts the --proto values.
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "", "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return "", fmt.Errorf("unknown protocol %q: use tcp or udp", s)
}

// Flow is every packet to or from Addr:Port with protocol Proto, the way the pcap filter
// "host ADDR and port PORT" selects them.
type Flow struct {
	Addr  netip.Addr `json:"addr"`
	Port  uint16     `json:"port"`
	Proto Proto      `json:"proto"`
}

// String prints the flow the way the user typed it: 10.0.0.1:80/tcp, [2001:db8::1]:80/tcp.
func (f Flow) String() string {
	return netip.AddrPortFrom(f.Addr, f.Port).String() + "/" + string(f.Proto)
}

// Family is 4 or 6.
func (f Flow) Family() int {
	if f.Addr.Is4() {
		return 4
	}
	return 6
}

// Endpoint is one end of the flow's packets as the kernel sees them in headers: the
// address and port the user named, or one the flow turned into on its way (a translation,
// another namespace). A packet belongs to the flow when either of its ends is an endpoint.
type Endpoint struct {
	// ID numbers the endpoints from 1 in the order they joined the flow; the user's is 1.
	ID    uint32     `json:"id"`
	Addr  netip.Addr `json:"addr"`
	Port  uint16     `json:"port"`
	Proto Proto      `json:"proto"`
	// Netns is the inode of the network namespace where the endpoint applies; 0: any.
	Netns uint64 `json:"netns,omitempty"`
}

func (e Endpoint) String() string {
	return netip.AddrPortFrom(e.Addr, e.Port).String() + "/" + string(e.Proto)
}

// Endpoint is the flow as its first endpoint, in every namespace.
func (f Flow) Endpoint() Endpoint {
	return Endpoint{ID: 1, Addr: f.Addr.Unmap(), Port: f.Port, Proto: f.Proto}
}

// Endpoints are the flow as it stands during a run: what every matcher is made from.
type Endpoints []Endpoint

// Match returns the endpoint that an end of a packet between src and dst with protocol
// proto is, seen in namespace netns (0: unknown, any), the source first. IPv4-mapped
// addresses are not IPv4 ones: a packet carries one family, and so does an endpoint.
func (s Endpoints) Match(proto uint8, src, dst netip.AddrPort, netns uint64) (Endpoint, bool) {
	for _, end := range []netip.AddrPort{src, dst} {
		for _, e := range s {
			if e.Proto.Number() == proto && e.Port == end.Port() && e.Addr == end.Addr() &&
				(e.Netns == 0 || netns == 0 || e.Netns == netns) {
				return e, true
			}
		}
	}
	return Endpoint{}, false
}

// In returns the endpoints that apply in namespace netns.
func (s Endpoints) In(netns uint64) Endpoints {
	var out Endpoints
	for _, e := range s {
		if e.Netns == 0 || netns == 0 || e.Netns == netns {
			out = append(out, e)
		}
	}
	return out
}

// Check says what a flow built in code (not parsed) lacks: every stage needs an address,
// a port and tcp or udp.
func (f Flow) Check() error {
	switch {
	case !f.Addr.IsValid():
		return errors.New("flow has no address")
	case f.Port == 0:
		return errors.New("flow has no port")
	case f.Proto != TCP && f.Proto != UDP:
		return fmt.Errorf("flow protocol %q is not tcp or udp", f.Proto)
	}
	return nil
}

// ErrFlowSyntax is wrapped by every ParseFlow error, so callers can map it to a usage error.
var ErrFlowSyntax = errors.New("bad flow")

// ParseFlow parses ADDR:PORT, with IPv6 addresses in brackets ([2001:db8::1]:80).
// Host names and zones are refused: a flow names an address the kernel sees in headers.
func ParseFlow(spec string, proto Proto) (Flow, error) {
	bad := func(why string) (Flow, error) {
		return Flow{}, fmt.Errorf("%w %q: %s (want ADDR:PORT, e.g. 10.0.0.1:80 or [2001:db8::1]:80)", ErrFlowSyntax, spec, why)
	}
	if spec == "" {
		return bad("empty")
	}
	i := strings.LastIndexByte(spec, ':')
	if i < 0 {
		return bad("no port")
	}
	host, port := spec[:i], spec[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return bad("unclosed bracket")
		}
		host = host[1 : len(host)-1]
		if !strings.Contains(host, ":") {
			return bad("brackets are for IPv6 addresses only")
		}
	} else if strings.Contains(host, ":") {
		return bad("put an IPv6 address in brackets")
	}
	if strings.Contains(host, "%") {
		return bad("IPv6 zones are not supported; use --iface to choose the interface")
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return bad("not an IP address (host names are not resolved)")
	}
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if port == "" || strings.TrimLeft(port, "0123456789") != "" {
		return bad("port is not a number")
	}
	n, err := strconv.ParseUint(port, 10, 32)
	if err != nil || n == 0 || n > 65535 {
		return bad("port must be 1-65535")
	}
	if proto == "" {
		proto = TCP
	}
	return Flow{Addr: addr, Port: uint16(n), Proto: proto}, nil
}
