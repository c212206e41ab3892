package kdrop

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
)

// The kernel splits a drop reason in two: the high 16 bits name a subsystem (0 is the core
// network stack), the low 16 bits a reason within it. Subsystems define their own enums
// (ovs_drop_reason, mac80211_drop_reason) whose values already carry the subsystem bits.
const (
	subsysMask  = 0xffff0000
	subsysShift = 16
)

// Reasons names drop reason codes from the running kernel's BTF: the numbers differ
// between kernels, so there is no table to hard-code.
type Reasons struct {
	// names holds core reasons and every subsystem reason found in BTF, by full code.
	names map[uint32]string
	// subsystems names the subsystem numbers (OPENVSWITCH), for codes without a name.
	subsystems map[uint32]string
	// all lists the core reasons in value order.
	all []string
}

// LoadReasons reads enum skb_drop_reason (and the subsystem enums) from the kernel's BTF.
// It fails with kerr.ErrUnsupported when the kernel has no BTF or no such enum (before 5.17).
func LoadReasons() (*Reasons, error) {
	spec, err := bpfrt.KernelTypes()
	if err != nil {
		return nil, kerr.BTF(err)
	}
	return reasonsFromBTF(spec)
}

// LoadReasonsFile reads the reasons from a BTF file other than the running kernel's: the
// enums recorded from other kernels (testdata/kernels), to check that every reason of
// every kernel we know is explained, on any machine.
func LoadReasonsFile(path string) (*Reasons, error) {
	spec, err := btf.LoadSpec(path)
	if err != nil {
		return nil, fmt.Errorf("load BTF from %s: %w", path, err)
	}
	return reasonsFromBTF(spec)
}

// reasonsFromBTF is LoadReasons on any BTF, so tests can hand it a crafted one.
func reasonsFromBTF(spec *btf.Spec) (*Reasons, error) {
	var core *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &core); err != nil {
		if errors.Is(err, btf.ErrNotFound) {
			return nil, fmt.Errorf("kernel BTF has no enum skb_drop_reason (added in Linux 5.17): %w", kerr.ErrUnsupported)
		}
		return nil, fmt.Errorf("look up enum skb_drop_reason in kernel BTF: %w", err)
	}
	r := &Reasons{names: map[uint32]string{}, subsystems: map[uint32]string{}}
	type named struct {
		code uint32
		name string
	}
	var all []named
	for _, v := range core.Values {
		name, ok := coreReasonName(v.Name)
		if !ok || v.Value > 0xffffffff {
			continue
		}
		code := uint32(v.Value)
		r.names[code] = name
		all = append(all, named{code, name})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].code < all[j].code })
	for _, n := range all {
		r.all = append(r.all, n.name)
	}

	var subsys *btf.Enum
	if spec.TypeByName("skb_drop_reason_subsys", &subsys) == nil {
		for _, v := range subsys.Values {
			name, ok := strings.CutPrefix(v.Name, "SKB_DROP_REASON_SUBSYS_")
			if !ok || name == "NUM" || v.Value == 0 {
				continue
			}
			r.subsystems[uint32(v.Value)] = name
		}
	}
	r.addSubsystemEnums(spec)
	return r, nil
}

// coreReasonName strips the prefix and drops the sentinels that are not reasons.
func coreReasonName(enumName string) (string, bool) {
	name, ok := strings.CutPrefix(enumName, "SKB_DROP_REASON_")
	if !ok {
		// SKB_NOT_DROPPED_YET and SKB_CONSUMED predate the prefix.
		name, ok = strings.CutPrefix(enumName, "SKB_")
	}
	if !ok || name == "MAX" || name == "SUBSYS_MASK" || strings.HasPrefix(name, "SUBSYS_") {
		return "", false
	}
	return name, true
}

// subsystemEnums are the enums that name each subsystem's reasons, by subsystem. They are
// looked up by name: walking every type of the kernel's BTF to find them costs ~47 MiB of
// garbage, most of diagnose's peak memory.
var subsystemEnums = map[string][]string{
	"MAC80211_UNUSABLE": {"mac80211_drop_reason"},
	"MAC80211_MONITOR":  {"mac80211_drop_reason"},
	"OPENVSWITCH":       {"ovs_drop_reason"},
	"QDISC":             {"qdisc_drop_reason"},
}

// addSubsystemEnums names subsystem reasons that a built-in subsystem defines in this
// BTF: an enum counts as the subsystem's when every value but its __ markers carries that
// subsystem's bits. Modules have their own BTF; their reasons print as SUBSYS:code.
func (r *Reasons) addSubsystemEnums(spec *btf.Spec) {
	for sub, subName := range r.subsystems {
		candidates := append([]string{strings.ToLower(subName) + "_drop_reason"}, subsystemEnums[subName]...)
		for _, enumName := range candidates {
			var e *btf.Enum
			if spec.TypeByName(enumName, &e) != nil || len(e.Values) == 0 {
				continue
			}
			found := map[uint32]string{}
			for _, v := range e.Values {
				if strings.HasPrefix(v.Name, "__") {
					continue
				}
				if v.Value > 0xffffffff || uint32(v.Value>>subsysShift)&0xffff != sub {
					found = nil
					break
				}
				found[uint32(v.Value)] = v.Name
			}
			for code, name := range found {
				r.names[code] = name
			}
		}
	}
}

// Name returns the reason's name without its SKB_DROP_REASON_ prefix (NO_SOCKET). A
// subsystem reason absent from BTF prints as SUBSYS:code (OPENVSWITCH:3), an unknown core
// reason as its number. A nil *Reasons (no BTF) names nothing and prints numbers.
func (r *Reasons) Name(code uint32) string {
	if r != nil {
		if name, ok := r.names[code]; ok {
			return name
		}
	}
	sub := (code & subsysMask) >> subsysShift
	if sub == 0 {
		return strconv.FormatUint(uint64(code), 10)
	}
	subName := strconv.FormatUint(uint64(sub), 10)
	if r != nil {
		if name, ok := r.subsystems[sub]; ok {
			subName = name
		}
	}
	return subName + ":" + strconv.FormatUint(uint64(code&^subsysMask), 10)
}

// All returns every core reason name in value order, without the MAX and SUBSYS_MASK
// sentinels: NOT_DROPPED_YET, CONSUMED, NOT_SPECIFIED, NO_SOCKET, ...
func (r *Reasons) All() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.all...)
}
