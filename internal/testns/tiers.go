package testns

import (
	"os"
	"testing"
)

// The tiers of the tests. go test -short (make unit) runs the unit tier: anywhere, as any
// user, with nothing installed but Go. It needs no root, reads nothing of the machine's own
// (BTF, /proc, netlink answers) and runs no clang, so it passes the same on every machine.
// A test that needs more says what through SkipShort, or through a helper that calls it
// (RequirePrivileges, RequireKernelConfig, KernelSpec): the decision is made here, once.
// Without -short such a test skips where the machine lacks what it needs, except in CI,
// which must run every test and fails instead.

// SkipShort skips the test under -short: it needs what the unit tier must not (needs says
// what, as in "-short: needs root").
func SkipShort(t testing.TB, needs string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: needs %s", needs)
	}
}

// CI tells whether this run is CI's full run (CI=true, CI's contract, and no -short):
// there a test that cannot run fails.
func CI() bool { return os.Getenv("CI") == "true" && !testing.Short() }

// Missing skips the test for want of what the message names, or fails it in CI, where
// .ci/deps installed everything and the machine must have it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf(format+" (CI must run this test)", args...)
	}
	t.Skipf(format, args...)
}
