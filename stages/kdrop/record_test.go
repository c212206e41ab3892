package kdrop

import (
	"bytes"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// The drop reasons of kernels other than the running one are kept in testdata/kernels as
// small BTF files holding only the enums LoadReasons reads, so that the unit tests check
// every kernel we know on any machine. Record the running kernel's with
//
//	go test ./stages/kdrop -run TestRecordedReasons -record-reasons ../../testdata/kernels
//
// and another kernel's by running the test binary in a VM of it (.ci/vm), into a
// directory the host can read.
var recordReasons = flag.String("record-reasons", "", "write the running kernel's drop-reason enums into this `directory` (testdata/kernels)")

const recordedDir = "../../testdata/kernels"

// reasonEnums extracts from the running kernel's BTF exactly the enums reasonsFromBTF
// reads, as a BTF blob of their own.
func reasonEnums(t *testing.T) []byte {
	t.Helper()
	spec := testns.KernelSpec(t)
	var types []btf.Type
	names := []string{"skb_drop_reason", "skb_drop_reason_subsys"}
	for _, enums := range subsystemEnums {
		names = append(names, enums...)
	}
	var subsys *btf.Enum
	if spec.TypeByName("skb_drop_reason_subsys", &subsys) == nil {
		for _, v := range subsys.Values {
			if name, ok := strings.CutPrefix(v.Name, "SKB_DROP_REASON_SUBSYS_"); ok {
				names = append(names, strings.ToLower(name)+"_drop_reason")
			}
		}
	}
	seen := map[string]bool{}
	for _, name := range names {
		var e *btf.Enum
		if seen[name] || spec.TypeByName(name, &e) != nil {
			continue
		}
		seen[name] = true
		types = append(types, e)
	}
	if !seen["skb_drop_reason"] {
		t.Skip("the running kernel has no enum skb_drop_reason (before 5.17)")
	}
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestRecordedReasons checks that the extracted enums name every reason as the kernel's
// whole BTF does, and that the recording of the running kernel, if there is one, is still
// what the kernel says; with -record-reasons it writes the recording.
func TestRecordedReasons(t *testing.T) {
	t.Parallel()
	raw := reasonEnums(t)
	live, err := LoadReasons()
	if err != nil {
		t.Fatal(err)
	}
	name := testns.Release() + ".btf"
	if *recordReasons != "" {
		out := filepath.Join(*recordReasons, name)
		if err := os.WriteFile(out, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d reasons", out, len(live.All()))
	}
	path := filepath.Join(recordedDir, name)
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	extracted, err := reasonsFromBTF(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(extracted.names, live.names) || !maps.Equal(extracted.subsystems, live.subsystems) {
		t.Errorf("the extracted enums name reasons unlike the kernel's BTF:\n%v\n%v", extracted.names, live.names)
	}
	recorded, err := LoadReasonsFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("no recording of this kernel in %s (record it with -record-reasons)", recordedDir)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(recorded.names, live.names) || !maps.Equal(recorded.subsystems, live.subsystems) {
		t.Errorf("%s differs from the running kernel's enums: record it again with -record-reasons", path)
	}
}
