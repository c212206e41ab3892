package testns

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
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
// namespace under ip netns exec, or as nobody. The child's TestChild finds what it is for
// on its command line, after "--" (flag.Args()): a test binary never takes orders from its
// environment, which a user's shell or CI could set by chance.

// Unprivileged is the ChildArgs mode of RunUnprivileged's child.
const Unprivileged = "unprivileged"

// ChildArgs is what a parent test hands its TestChild.
type ChildArgs struct {
	Mode   string // what the child does; Unprivileged for RunUnprivileged
	Client string // the namespace to send from
	Port   uint16 // the server's port
}

// command is the child's command line: this test binary, TestChild only, then args.
func (a ChildArgs) command(bin, out string) []string {
	return []string{bin, "-test.run=^TestChild$", "-test.v", "--",
		"-mode=" + a.Mode, "-client=" + a.Client, "-port=" + strconv.Itoa(int(a.Port)), "-out=" + out}
}

// childArgs parses what command put after "--"; out is where the result goes.
func childArgs() (args ChildArgs, out string, err error) {
	fs := flag.NewFlagSet("TestChild", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller reports the error
	fs.StringVar(&args.Mode, "mode", "", "what the child does")
	fs.StringVar(&args.Client, "client", "", "the namespace to send from")
	port := fs.Uint("port", 0, "the server's port")
	fs.StringVar(&out, "out", "", "the file WriteChildResult writes")
	err = fs.Parse(flag.Args())
	args.Port = uint16(*port)
	return args, out, err
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
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args.command(os.Args[0], out)...)...)
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
// and skips the test when nothing did: then it runs among the package's other tests.
func Child(t testing.TB) ChildArgs {
	t.Helper()
	args, _, err := childArgs()
	if err != nil {
		t.Fatalf("child arguments %q: %v", flag.Args(), err)
	}
	if args.Mode == "" {
		t.Skip("the child of another test of this package (testns.RunChild, RunUnprivileged)")
	}
	return args
}

// WriteChildResult hands res to the parent RunChild.
func WriteChildResult(t testing.TB, res any) {
	t.Helper()
	_, out, err := childArgs()
	if err != nil || out == "" {
		t.Fatalf("child arguments %q name no result file: %v", flag.Args(), err)
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(out, b, 0o600); err != nil {
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
	line := ChildArgs{Mode: Unprivileged}.command(bin, "")
	cmd := exec.Command(line[0], line[1:]...)
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
