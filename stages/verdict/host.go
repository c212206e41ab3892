package verdict

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// hostFinding is what the host's state says about the flow where a fix depends on it.
type hostFinding struct {
	situations []reasons.Situation
	listener   string   // the listening address that takes the flow's packets
	listening  []string // the addresses listening on the flow's port
}

// findHost reads the host's state, when it was read, for the fixes of the drop on iface.
func findHost(ev *evidence.Evidence, iface string) hostFinding {
	var h hostFinding
	host := ev.Host
	if host == nil {
		return h
	}
	forward := host.Sysctls["net.ipv4.ip_forward"]
	if ev.Flow.Family() == 6 {
		forward = host.Sysctls["net.ipv6.conf.all.forwarding"]
	}
	if s, ok := forwarding(forward); ok {
		h.situations = append(h.situations, s)
	}
	if s, ok := rpFilter(host.Sysctls["net.ipv4.conf."+iface+".rp_filter"], host.Sysctls["net.ipv4.conf.all.rp_filter"]); ok {
		h.situations = append(h.situations, s)
	}
	var s reasons.Situation
	s, h.listener, h.listening = listening(host.Listeners, ev.Flow)
	h.situations = append(h.situations, s)
	return h
}

// forwarding tells forwarding off from on by the sysctl's value; false when unread.
func forwarding(value string) (reasons.Situation, bool) {
	switch strings.TrimSpace(value) {
	case "":
		return "", false
	case "0":
		return reasons.ForwardingOff, true
	}
	return reasons.ForwardingOn, true
}

// rpFilter tells what reverse-path filtering does from the interface's and `all`'s
// settings: the kernel uses the higher of the two. False when neither was read.
func rpFilter(iface, all string) (reasons.Situation, bool) {
	iface, all = strings.TrimSpace(iface), strings.TrimSpace(all)
	switch {
	case iface != "" && all != "":
		if maxRP(iface, all) == 2 {
			return reasons.RPFilterLoose, true
		}
		return reasons.RPFilterRead, true
	case iface != "" || all != "":
		return reasons.RPFilterHalfRead, true
	}
	return "", false
}

// maxRP is the effective rp_filter mode: the higher of the two values, -1 if unreadable.
func maxRP(a, b string) int {
	x, errX := strconv.Atoi(a)
	y, errY := strconv.Atoi(b)
	if errX != nil || errY != nil {
		return -1
	}
	return max(x, y)
}

// listening tells whether a socket on the flow's port would take its packets by address:
// the first one that would (listener), else the addresses they listen on.
func listening(ls []evidence.Listener, flow evidence.Flow) (s reasons.Situation, listener string, addrs []string) {
	on := 0
	var locals []netip.AddrPort
	for _, l := range ls {
		if l.Proto != string(flow.Proto) || l.Local.Port() != flow.Port {
			continue
		}
		on++
		if l.Local.Addr().IsValid() {
			locals = append(locals, l.Local)
		}
	}
	switch {
	case on == 0:
		return reasons.NothingListens, "", nil
	case len(locals) == 0:
		return reasons.ListenersUnknown, "", nil
	}
	for _, l := range locals {
		if takes(l.Addr(), flow) {
			return reasons.ListenerTakes, l.String(), nil
		}
		addrs = append(addrs, l.String())
	}
	return reasons.ListensElsewhere, "", addrs
}

// takes tells whether a socket bound to local would take the flow's packets by address:
// the flow's own address, or a wildcard of its family (an IPv6 wildcard takes IPv4 too
// unless it is v6only, which is not weighed here).
func takes(local netip.Addr, flow evidence.Flow) bool {
	a := local.Unmap()
	if a.IsUnspecified() {
		return a.Is6() || flow.Family() != 6
	}
	return a == flow.Addr.Unmap()
}
