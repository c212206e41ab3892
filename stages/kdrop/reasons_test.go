package kdrop

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/testns"
)

// fakeBTF builds a BTF blob holding only the given types, as a kernel's would.
func fakeBTF(t *testing.T, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func enum(name string, values ...btf.EnumValue) *btf.Enum {
	return &btf.Enum{Name: name, Size: 4, Values: values}
}

var (
	// Numbers chosen unlike this kernel's, so a hard-coded table would fail the test.
	fakeCore = enum("skb_drop_reason",
		btf.EnumValue{Name: "SKB_NOT_DROPPED_YET", Value: 0},
		btf.EnumValue{Name: "SKB_CONSUMED", Value: 1},
		btf.EnumValue{Name: "SKB_DROP_REASON_NO_SOCKET", Value: 7},
		btf.EnumValue{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 5},
		btf.EnumValue{Name: "SKB_DROP_REASON_MAX", Value: 8},
		btf.EnumValue{Name: "SKB_DROP_REASON_SUBSYS_MASK", Value: 0xffff0000},
	)
	fakeSubsys = enum("skb_drop_reason_subsys",
		btf.EnumValue{Name: "SKB_DROP_REASON_SUBSYS_CORE", Value: 0},
		btf.EnumValue{Name: "SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", Value: 1},
		btf.EnumValue{Name: "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", Value: 2},
		btf.EnumValue{Name: "SKB_DROP_REASON_SUBSYS_NUM", Value: 3},
	)
	fakeOVS = enum("ovs_drop_reason",
		btf.EnumValue{Name: "__OVS_DROP_REASON", Value: 0x20000},
		btf.EnumValue{Name: "OVS_DROP_LAST_ACTION", Value: 0x20001},
		btf.EnumValue{Name: "OVS_DROP_ACTION_ERROR", Value: 0x20002},
	)
	// An unrelated enum with the same bits must not be taken for a subsystem's.
	fakeOther = enum("some_flags",
		btf.EnumValue{Name: "FLAG_A", Value: 0x20001},
		btf.EnumValue{Name: "FLAG_B", Value: 0x1},
	)
)

func TestReasonNames(t *testing.T) {
	t.Parallel()
	r, err := reasonsFromBTF(fakeBTF(t, fakeCore, fakeSubsys, fakeOVS, fakeOther))
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[uint32]string{
		7:       "NO_SOCKET",
		5:       "NOT_SPECIFIED",
		1:       "CONSUMED",
		0:       "NOT_DROPPED_YET",
		8:       "8", // MAX is a sentinel, not a reason
		99:      "99",
		0x20001: "OVS_DROP_LAST_ACTION",
		0x20002: "OVS_DROP_ACTION_ERROR",
		0x20009: "OPENVSWITCH:9",
		0x10005: "MAC80211_UNUSABLE:5",
		0x70001: "7:1",
	} {
		if got := r.Name(code); got != want {
			t.Errorf("Name(%#x) = %q, want %q", code, got, want)
		}
	}
	want := []string{"NOT_DROPPED_YET", "CONSUMED", "NOT_SPECIFIED", "NO_SOCKET"}
	if got := r.All(); !slices.Equal(got, want) {
		t.Errorf("All = %q, want %q", got, want)
	}
}

func TestReasonsWithoutSubsystemEnum(t *testing.T) {
	t.Parallel()
	r, err := reasonsFromBTF(fakeBTF(t, fakeCore, fakeOVS))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Name(0x20001); got != "2:1" {
		t.Errorf("Name = %q, want the raw SUBSYS:code 2:1", got)
	}
	if got := r.Name(7); got != "NO_SOCKET" {
		t.Errorf("Name = %q", got)
	}
}

func TestReasonsWithoutEnum(t *testing.T) {
	t.Parallel()
	_, err := reasonsFromBTF(fakeBTF(t, fakeSubsys))
	if !errors.Is(err, kerr.ErrUnsupported) || !strings.Contains(err.Error(), "skb_drop_reason") {
		t.Errorf("err = %v, want kerr.ErrUnsupported naming the enum", err)
	}
	var none *Reasons
	if got := none.Name(7); got != "7" {
		t.Errorf("nil Reasons: Name = %q, want the number", got)
	}
	if got := none.Name(0x20001); got != "2:1" {
		t.Errorf("nil Reasons: Name = %q", got)
	}
}

// Walks the running kernel's whole enum: every value names back to itself.
func TestKernelReasons(t *testing.T) {
	t.Parallel()
	spec := testns.KernelSpec(t)
	var core *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &core); err != nil {
		t.Skipf("kernel without skb_drop_reason: %v", err)
	}
	start := time.Now()
	r, err := LoadReasons()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LoadReasons: %d reasons in %v", len(r.All()), time.Since(start))
	for _, v := range core.Values {
		name, ok := coreReasonName(v.Name)
		if !ok {
			continue
		}
		if got := r.Name(uint32(v.Value)); got != name {
			t.Errorf("Name(%d) = %q, want %q (from %s)", v.Value, got, name, v.Name)
		}
	}
	if all := r.All(); !slices.Contains(all, "NO_SOCKET") || !slices.Contains(all, "NETFILTER_DROP") || slices.Contains(all, "MAX") {
		t.Errorf("All = %q", all)
	}
}
