package verdict

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// Host is what the host's state says about the flow where a fix depends on it; empty
// when the state was not read.
type Host struct {
	Situations []reasons.Situation
	// Listener is the listening address that takes the flow's packets (ListenerTakes).
	Listener string
	// Listening are the addresses listening on the flow's port (ListensElsewhere).
	Listening []string
}

// findHost reads the host's state for the fixes of a drop on iface.
func findHost(ev *evidence.Evidence, iface string, flow evidence.Flow) Host {
	var h Host
	host := ev.Host
	if host == nil {
		return h
	}
	if s, ok := forwarding(host.Sysctls[forwardSysctl(ev.Flow)]); ok {
		h.Situations = append(h.Situations, s)
	}
	if s, ok := rpFilter(host.Sysctls["net.ipv4.conf."+iface+".rp_filter"], host.Sysctls["net.ipv4.conf.all.rp_filter"]); ok {
		h.Situations = append(h.Situations, s)
	}
	var s reasons.Situation
	s, h.Listener, h.Listening = listening(host.Listeners, flow)
	h.Situations = append(h.Situations, s)
	return h
}

// forwardSysctl is the setting that turns forwarding on for the flow's family.
func forwardSysctl(flow evidence.Flow) string {
	if flow.Family() == 6 {
		return "net.ipv6.conf.all.forwarding"
	}
	return "net.ipv4.ip_forward"
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
