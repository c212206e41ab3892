package testns

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// What the running kernel offers, for tests whose expectations differ between kernels
// (Debian 12's 6.1 and today's 6.18 among them). Each answer comes from the kernel itself
// (its build configuration, its BTF), never from the product's own probes, so that a
// product that misjudges the kernel fails its tests.

// Release is the running kernel's release, as uname -r prints it.
func Release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelConfig reads the running kernel's build configuration from the places kernels
// and distributions keep it; nil when none is readable.
func kernelConfig() map[string]string {
	release := Release()
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + release, "/lib/modules/" + release + "/config"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		defer f.Close()
		var r io.Reader = f
		if strings.HasSuffix(path, ".gz") {
			gz, err := gzip.NewReader(f)
			if err != nil {
				continue
			}
			r = gz
		}
		config := map[string]string{}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if name, value, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(name, "CONFIG_") {
				config[name] = value
			}
		}
		if sc.Err() == nil && len(config) > 0 {
			return config
		}
	}
	return nil
}

// RequireKernelConfig skips the test, naming the option, when the running kernel is built
// without one of the options: the kernel cannot have the feature, whatever is installed.
// This holds in CI too: a kernel built without a feature is a fact of the machine, not a
// missing fixture. When the configuration cannot be read the test runs and fails on its
// own if the feature is missing.
func RequireKernelConfig(t testing.TB, options ...string) {
	t.Helper()
	SkipShort(t, "the running kernel's configuration")
	config := kernelConfig()
	if config == nil {
		t.Logf("kernel %s: no build configuration readable (/proc/config.gz, /boot/config-*): running without checking %s", Release(), strings.Join(options, ", "))
		return
	}
	for _, opt := range options {
		if v := config[opt]; v != "y" && v != "m" {
			t.Skipf("kernel %s is built without %s: it cannot run this test", Release(), opt)
		}
	}
}

// KernelSpec returns the running kernel's BTF, for tests that check the product against
// it; without it the test skips (fails in CI).
func KernelSpec(t testing.TB) *btf.Spec {
	t.Helper()
	SkipShort(t, "the running kernel's BTF")
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		Missing(t, "kernel %s has no BTF: %v", Release(), err)
	}
	return spec
}

// kernelSpec is the running kernel's BTF, nil without it.
func kernelSpec() *btf.Spec {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil
	}
	return spec
}

// HasKernelType tells whether the running kernel's BTF has a type of that name and kind:
// the simplest witness of a feature the kernel gained with that type.
func HasKernelType[T btf.Type](name string) bool {
	spec := kernelSpec()
	if spec == nil {
		return false
	}
	var typ T
	return spec.TypeByName(name, &typ) == nil
}

// HasTCX tells whether the kernel has tcx links (6.6+).
func HasTCX() bool { return HasKernelType[*btf.Struct]("tcx_entry") }

// HasKfunc tells whether the kernel has the BPF kfunc of that name (bpf_rdonly_cast and
// bpf_cast_to_kern_ctx are 6.2+).
func HasKfunc(name string) bool { return HasKernelType[*btf.Func](name) }

// HasTracepoint tells whether the kernel has a tracepoint of that name, by its BTF
// (btf_trace_<name>, what tp_btf programs attach to).
func HasTracepoint(name string) bool { return HasKernelType[*btf.Typedef]("btf_trace_" + name) }
