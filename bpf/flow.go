package bpf

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// FlowVars are the load-time constants of flow.h, which every program filtering on the
// flow shares: set them once through here, so kdrop and path cannot disagree on the layout.
type FlowVars struct {
	Addr, Port, Proto, Family, ProbeRead *ebpf.VariableSpec
	// ForceProbeRead makes the prefilter read headers with bpf_probe_read_kernel even where
	// bpf_rdonly_cast exists: tests check the path older kernels take.
	ForceProbeRead bool
}

// Set writes the flow: the address as 16 bytes (IPv4 mapped, told apart by Family), the
// port in network byte order, as the headers carry it.
func (v FlowVars) Set(addr netip.Addr, port uint16, proto uint8) error {
	addr = addr.Unmap()
	family := uint8(6)
	if addr.Is4() {
		family = 4
	}
	for _, set := range []struct {
		v   *ebpf.VariableSpec
		val any
	}{
		{v.Addr, addr.As16()},
		{v.Port, [2]byte{byte(port >> 8), byte(port)}},
		{v.Proto, proto},
		{v.Family, family},
		{v.ProbeRead, v.ForceProbeRead},
	} {
		if err := set.v.Set(set.val); err != nil {
			return fmt.Errorf("set %s: %w", set.v.Name, err)
		}
	}
	return nil
}
