package testns

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/packetmortem/packetmortem/internal/kerr"
)

// Helpers for tests that run their own test binary again as another process: inside a
// namespace under ip netns exec, or as nobody.

// The environment that tells a test binary it runs as a child, and what for.
const (
	childMode   = "PMT_CHILD"
	childClient = "PMT_CHILD_CLIENT"
	childPort   = "PMT_CHILD_PORT"
	childOut    = "PMT_CHILD_OUT"
)

// Unprivileged is the ChildArgs mode of RunUnprivileged's child.
const Unprivileged = "unprivileged"

// ChildArgs is what a parent test hands its TestChild.
type ChildArgs struct {
	Mode   string // what the child does; Unprivileged for RunUnprivileged
	Client string // the namespace to send from
	Port   uint16 // the server's port
}

// ChildResult is what every child reports; a child's result type embeds it.
type ChildResult struct {
	TracefsVisible bool   // the child's private tracefs mount leaked into its mount namespace
	Error          string // why the child could not run its test
}

// Check fails the test when the child could not run or leaked its tracefs mount.
func (r *ChildResult) Check(t testing.TB) {
	t.Helper()
	if r.Error != "" {
		t.Fatalf("child: %s", r.Error)
	}
	if r.TracefsVisible {
		t.Error("tracefs mount visible in the process's mount namespace: the private mount leaked")
	}
}

// RunChild runs this test binary's TestChild under ip netns exec in namespace ns, and
// decodes what it wrote with WriteChildResult into res.
func RunChild(t testing.TB, ns string, args ChildArgs, res any) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), childMode+"="+args.Mode, childClient+"="+args.Client,
		childPort+"="+strconv.Itoa(int(args.Port)), childOut+"="+out)
	log, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", log)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	b, err := os.ReadFile(out)
	if err == nil {
		err = json.Unmarshal(b, res)
	}
	if err != nil {
		t.Fatalf("child result: %v", err)
	}
}

// Child returns the arguments of a TestChild that RunChild or RunUnprivileged started,
// and skips the test when nothing did.
func Child(t testing.TB) ChildArgs {
	t.Helper()
	args := ChildArgs{Mode: os.Getenv(childMode), Client: os.Getenv(childClient)}
	if args.Mode == "" {
		t.Skip("run by TestUnderIPNetnsExec and TestUnprivileged")
	}
	port, _ := strconv.Atoi(os.Getenv(childPort))
	args.Port = uint16(port)
	return args
}

// WriteChildResult hands res to the parent RunChild.
func WriteChildResult(t testing.TB, res any) {
	t.Helper()
	b, _ := json.Marshal(res)
	if err := os.WriteFile(os.Getenv(childOut), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// LogStartError is what an Unprivileged child does with its Start's error: it logs
// whether the error is kerr.ErrPrivilege, and the error, for RunUnprivileged to check.
func LogStartError(t testing.TB, err error) {
	t.Helper()
	t.Logf("ErrPrivilege: %v\nerror: %v", errors.Is(err, kerr.ErrPrivilege), err)
}

// RunUnprivileged runs this test binary's TestChild as nobody, with mode Unprivileged, and
// fails the test unless the child's Start failed with ErrPrivilege and said to run as root.
func RunUnprivileged(t testing.TB) {
	t.Helper()
	RequirePrivileges(t)
	// The test binary sits in a directory only root may enter: copy it where nobody can.
	dir, err := os.MkdirTemp("", Prefix+"child")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), childMode+"="+Unprivileged)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("child as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(string(out), "ErrPrivilege: true") || !strings.Contains(string(out), "run as root") {
		t.Error("unprivileged Start did not fail with ErrPrivilege and the fix")
	}
}
