package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// baseline is diagnose built at an earlier commit, measured in the same run as the current
// one: a comparison across two runs would mostly measure how the machine drifted between them.
type baseline struct {
	ref    string // as given: a tag, a commit
	commit string // its full hash
	short  string // and its short one
	bin    string
	// lacks holds, per baseline tracer, the flags of its command line the old binary does
	// not define: that tracer is not measured, and its row says why.
	lacks map[string][]string
}

// The baseline's tracers, each the twin of a current diagnose tracer run the same way.
const (
	baselineTCX    = "baseline"
	baselineSocket = "baseline-socket"
)

// twins pairs each current diagnose tracer with its baseline; captureOf names the capture
// method each pair is compared on.
var (
	twins     = map[string]string{diagnose: baselineTCX, diagnoseSocket: baselineSocket}
	captureOf = map[string]string{diagnose: "tcx", diagnoseSocket: "socket"}
)

// noBaseline is what the bench says when it has nothing to compare with.
const noBaseline = "bench: no baseline given, so no comparison with a previous diagnose: " +
	"`make bench BASELINE=<ref>` (or -baseline REF) measures diagnose at that tag or commit beside this one"

// name is how the tables call the baseline: "v0.3.0 539e901", or "539e901" when the ref
// given is the hash itself.
func (bl *baseline) name() string {
	if strings.HasPrefix(bl.commit, strings.ToLower(bl.ref)) {
		return bl.short
	}
	return bl.ref + " " + bl.short
}

// measures says whether tr is a tracer the bench runs: every current one, and a baseline
// one whose flags the old binary has.
func (bl *baseline) measures(tr string) bool {
	if tr != baselineTCX && tr != baselineSocket {
		return true
	}
	return bl != nil && len(bl.lacks[tr]) == 0
}

// withTwins inserts, after each current diagnose tracer of trs, its baseline twin when that
// passes keep: windows of the two come one after the other, so the machine's drift over
// the run falls on both alike.
func withTwins(trs []string, keep func(string) bool) []string {
	var out []string
	for _, tr := range trs {
		out = append(out, tr)
		if twin, ok := twins[tr]; ok && keep(twin) {
			out = append(out, twin)
		}
	}
	return out
}

// buildBaseline builds cmd/diagnose as it was at ref into dir. The source comes from git
// archive, not a worktree: the repository, which others may be working in, is only read.
func buildBaseline(ctx context.Context, ref, dir string) (*baseline, error) {
	commit, err := git(ctx, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("-baseline %s: not a commit of this repository (run the bench from the repository; a tag or a commit hash): %w", ref, err)
	}
	short, err := git(ctx, "rev-parse", "--short", commit)
	if err != nil {
		return nil, err
	}
	version, err := git(ctx, "describe", "--tags", "--always", commit)
	if err != nil {
		return nil, err
	}
	src, err := os.MkdirTemp(dir, "baseline-src-")
	if err != nil {
		return nil, err
	}
	// Only the binary is needed past the build.
	defer os.RemoveAll(src)
	tarball := filepath.Join(src, "src.tar")
	if _, err := git(ctx, "archive", "--format=tar", "-o", tarball, commit); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "tar", "-x", "-C", src, "-f", tarball).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("unpack %s at %s: %w\n%s", ref, short, err, out)
	}
	bl := &baseline{ref: ref, commit: commit, short: short, bin: filepath.Join(dir, "diagnose-"+short)}
	// As `make build` builds the current one, so that the two differ in their code only.
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version,
		"-o", bl.bin, "./cmd/diagnose")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build diagnose at %s (%s): %w\n%s", ref, short, err, out)
	}
	return bl, nil
}

// git runs git in the working directory and returns its output, trimmed.
func git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// undefinedFlags returns the flags of argv (up to "--"; argv[0] is the binary) that the
// binary does not define. Each is tried alone, followed by --help: Go's flag package
// refuses an undefined flag before it acts on any, and --help makes a binary that knows
// the flag exit without doing anything. A value follows its flag unless it starts with "-".
func undefinedFlags(ctx context.Context, argv []string) ([]string, error) {
	var missing []string
	for i := 1; i < len(argv) && argv[i] != "--"; i++ {
		probe := []string{argv[i]}
		if i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			probe = append(probe, argv[i+1])
			i++
		}
		out, err := exec.CommandContext(ctx, argv[0], append(probe, "--help")...).CombinedOutput()
		if strings.Contains(string(out), "flag provided but not defined") {
			missing = append(missing, probe[0])
			continue
		}
		// Help may exit 0 or with a usage status; only a binary that did not run is an error.
		var exited *exec.ExitError
		if err != nil && !errors.As(err, &exited) {
			return nil, fmt.Errorf("%s: %w", argv[0], err)
		}
	}
	return missing, nil
}
