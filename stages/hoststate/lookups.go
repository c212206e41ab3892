package hoststate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// routes looks the flow's routes up. First the way to the flow's address; then, for each
// peer, the way back and, for each interface the flow arrived on, the input lookup of the
// packets that arrive there, which validates their source as the kernel does (rp_filter).
// Which end sends depends on which is local:
//
//	flow address local (a server):   PEER from FLOW;  FLOW from PEER iif IFACE
//	peer local (a client):           FLOW from PEER;  PEER from FLOW iif IFACE
//	neither (a router):              PEER;            FLOW from PEER iif IFACE
func (st *stopper) routes(peers []netip.Addr, ifaces []string) {
	if st.rt == nil {
		return
	}
	flow := st.s.cfg.Flow.Addr
	lookup := func(q routeQuery) (evidence.RouteLookup, error) {
		if q.Iif != "" {
			q.IifIndex = st.index[q.Iif]
		}
		return lookupRoute(st.rt, q, st.names)
	}
	add := func(rl evidence.RouteLookup) { st.hs.Routes = append(st.hs.Routes, rl) }

	out, _ := lookup(routeQuery{Dst: flow})
	add(out)
	flowLocal := out.Type == "local"

	peers, dropped := usablePeers(flow, peers)
	if dropped > 0 {
		st.fail(fmt.Errorf("route lookups: %d more peers not looked up (at most %d)", dropped, MaxPeers))
	}
	for _, peer := range peers {
		if err := st.ctx.Err(); err != nil {
			return
		}
		// src sends to dst; back is the output lookup of dst's answers, made first.
		src, dst := peer, flow
		var back evidence.RouteLookup
		if flowLocal {
			back, _ = lookup(routeQuery{Dst: peer, Src: flow})
		} else if p, _ := lookup(routeQuery{Dst: peer}); p.Type == "local" {
			src, dst = flow, peer
			back, _ = lookup(routeQuery{Dst: flow, Src: peer})
		} else {
			back = p
		}
		add(back)
		for _, iface := range ifaces {
			in, err := lookup(routeQuery{Dst: dst, Src: src, Iif: iface})
			if err != nil {
				if why := explain(err, in, back, st.hs.Sysctls); why != "" {
					in.Err += "; " + why
				}
			}
			add(in)
		}
	}
}

// usablePeers drops peers that cannot be the far end of the flow (other family, the flow's
// own address, invalid), unmaps and deduplicates them, and keeps at most MaxPeers.
func usablePeers(flow netip.Addr, peers []netip.Addr) ([]netip.Addr, int) {
	var out []netip.Addr
	dropped := 0
	for _, p := range peers {
		p = p.Unmap()
		if !p.IsValid() || p.Is4() != flow.Is4() || p == flow {
			continue
		}
		if slices.Contains(out, p) {
			continue
		}
		if len(out) == MaxPeers {
			dropped++
			continue
		}
		out = append(out, p)
	}
	return out, dropped
}

// explain says which of the host state explains a failed IPv4 input lookup. The kernel's
// error alone is ambiguous: a source that fails validation gives EXDEV before 6.13 and
// EINVAL since (measured on 6.18: the lookup reports every invalid source as EINVAL), and a
// packet that would need forwarding gives EHOSTUNREACH when forwarding is off.
//
// Reverse path filtering (fib_validate_source) accepts a source when a route back to it
// leaves by the interface it came in on (strict, rp_filter 1) or by any interface (loose,
// 2); the value used is the larger of conf.all and conf.IFACE. back is that route, the
// output lookup of the answers.
func explain(err error, in, back evidence.RouteLookup, sysctls map[string]string) string {
	src, perr := netip.ParseAddr(in.Src)
	if perr != nil || !src.Is4() || in.Iif == "" {
		return ""
	}
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EXDEV):
		if src.IsLoopback() || src.IsMulticast() || src.IsUnspecified() || src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return fmt.Sprintf("martian source: %s is never a valid source on the wire", src)
		}
		if back.Type == "local" {
			if v, _ := sysctlInt(sysctls, sysctlName("ipv4", in.Iif, "accept_local")); v == 0 {
				all, _ := sysctlInt(sysctls, sysctlName("ipv4", "all", "accept_local"))
				if all == 0 {
					return fmt.Sprintf("source %s is an address of this host and accept_local is 0", src)
				}
			}
		}
		all, okAll := sysctlInt(sysctls, sysctlName("ipv4", "all", "rp_filter"))
		dev, okDev := sysctlInt(sysctls, sysctlName("ipv4", in.Iif, "rp_filter"))
		if !okAll && !okDev {
			return ""
		}
		rp := max(all, dev)
		noBack := back.Err != "" || back.Type == "unreachable" || back.Type == "blackhole" || back.Type == "prohibit"
		mode := fmt.Sprintf("reverse path filter: rp_filter %d", rp)
		switch {
		case rp == 1 && noBack:
			return fmt.Sprintf("%s (strict) on %s and no route back to %s", mode, in.Iif, src)
		case rp == 1 && back.Oif != in.Iif:
			return fmt.Sprintf("%s (strict) on %s and the route back to %s leaves by %s", mode, in.Iif, src, back.Oif)
		case rp == 2 && noBack:
			return fmt.Sprintf("%s (loose) on %s and no route back to %s", mode, in.Iif, src)
		}
	case errors.Is(err, unix.EHOSTUNREACH):
		if v, ok := sysctlInt(sysctls, sysctlName("ipv4", in.Iif, "forwarding")); ok && v == 0 {
			return fmt.Sprintf("%s is not local and forwarding is off on %s", in.Dst, in.Iif)
		}
	}
	return ""
}
