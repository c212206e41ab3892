package testns

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Docker daemon of a test's own, in a namespace of the test's own. It is never started in
// the host's namespace nor with Docker's default 172.17.0.0/16: its bridge docker0 has
// DockerBridgeV4 and DockerBridgeV6 (so a pair with a daemon must not also AddContainer,
// which takes the same networks), and its state, sockets and cgroups are the test's.
const (
	DockerBridgeV4 = "203.0.113.1/24"
	// DockerBridgeV6 is the network of the containers' IPv6 addresses (--fixed-cidr-v6),
	// published by ip6tables' DNAT as IPv4 is by iptables'.
	DockerBridgeV6 = "2001:db8:1::/64"
	// DockerImage is the image every daemon gets: busybox alone, imported from a tarball
	// (no registry). It has sh, nc, httpd, sleep, cat and netstat.
	DockerImage = "pmt-busybox:1"
	// DockerPort is the port containers publish: -p HOSTPORT:80.
	DockerPort = 80
)

// Docker is a dockerd running in namespace NS, in a mount and PID namespace of its own (its
// mounts and processes die with it).
type Docker struct {
	NS       string
	DataRoot string // --data-root: containers/ID/config.v2.json names a container
	sock     string
	log      string
	// cgroup is the --cgroup-parent its containers' cgroups go under: a name of this
	// test's, under each hierarchy's root, removed when the daemon is gone.
	cgroup string
	cmd    *exec.Cmd
	done   chan struct{}
}

// RequireDocker gives the programs a Docker test runs, or skips (fails in CI) without them.
func RequireDocker(t testing.TB) {
	t.Helper()
	RequirePrivileges(t)
	for _, tool := range []string{"dockerd", "docker", "nsenter", "unshare", "busybox", "iptables"} {
		Tool(t, tool)
	}
}

// StartDocker starts a daemon in the pair's server namespace: the client reaches a port a
// container publishes at ServerV4, DNATed by the daemon's rules to the container's address
// on docker0. It imports DockerImage, and stops the daemon and removes everything it made
// when the test ends, failed or not.
func (p *Pair) StartDocker(t testing.TB) *Docker {
	t.Helper()
	RequireDocker(t)
	dir := t.TempDir()
	// The exec root holds containerd's sockets (108 bytes at most for a path): a short one.
	execRoot, err := os.MkdirTemp("", "pmd")
	if err != nil {
		t.Fatal(err)
	}
	d := &Docker{
		NS:       p.Server,
		DataRoot: filepath.Join(dir, "data"),
		sock:     filepath.Join(execRoot, "d.sock"),
		log:      filepath.Join(dir, "dockerd.log"),
		cgroup:   Name("dk"),
		done:     make(chan struct{}),
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// `ip netns exec` would remount /sys without the cgroup mounts dockerd needs: nsenter
	// keeps them. --kill-child: when unshare dies, dockerd (its PID namespace's init) and
	// everything in that namespace die too.
	d.cmd = exec.Command("nsenter", "--net=/run/netns/"+p.Server,
		"unshare", "--mount", "--propagation", "slave", "--pid", "--fork", "--kill-child", "--mount-proc",
		"dockerd", "--bip", DockerBridgeV4, "--data-root", d.DataRoot, "--exec-root", execRoot,
		"--pidfile", filepath.Join(execRoot, "d.pid"), "-H", "unix://"+d.sock, "--userland-proxy=false",
		// Docker 20.10 publishes IPv6 ports with ip6tables only as an experimental feature.
		"--ipv6", "--fixed-cidr-v6", DockerBridgeV6, "--experimental", "--ip6tables",
		"--cgroup-parent", "/"+d.cgroup+"/docker")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop(t)
		removeCgroups(t, d.cgroup)
		_ = os.RemoveAll(execRoot)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := d.cli("version").Run(); err == nil {
			break
		}
		select {
		case <-d.done:
			t.Fatalf("dockerd exited before it answered:\n%s", d.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not answer on %s within 30s:\n%s", d.sock, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.importImage(t, dir)
	return d
}

// stop ends the daemon: SIGTERM to dockerd, then SIGKILL to unshare (and with it every
// process of the daemon's PID namespace) if it has not ended in 20s.
func (d *Docker) stop(t testing.TB) {
	if pid := d.daemonPID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case <-d.done:
		return
	case <-time.After(20 * time.Second):
	}
	t.Logf("dockerd did not stop within 20s of SIGTERM: killing its PID namespace")
	_ = d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Errorf("dockerd's unshare (pid %d) did not die", d.cmd.Process.Pid)
	}
}

// daemonPID is dockerd's PID as the host sees it: nsenter execs unshare, whose one child is
// dockerd. Never the pidfile's, which holds dockerd's PID in its own PID namespace (1).
func (d *Docker) daemonPID() int {
	pid := d.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	var child int
	if _, err := fmt.Sscan(string(b), &child); err != nil {
		return 0
	}
	return child
}

// Log is what dockerd wrote, for failures.
func (d *Docker) Log() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

func (d *Docker) cli(args ...string) *exec.Cmd {
	return exec.Command("docker", append([]string{"-H", "unix://" + d.sock}, args...)...)
}

// CLI runs the docker command with args against this daemon and fails the test, with the
// daemon's log, if it fails.
func (d *Docker) CLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.cli(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s\ndockerd's log:\n%s", strings.Join(args, " "), err, out, d.Log())
	}
	return strings.TrimSpace(string(out))
}

// importImage makes DockerImage from this machine's static busybox.
func (d *Docker) importImage(t testing.TB, dir string) {
	t.Helper()
	busybox, err := os.ReadFile(Tool(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(busybox))}, busybox)
	for _, applet := range []string{"sh", "nc", "httpd", "sleep", "cat", "netstat"} {
		add(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(tarball, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	d.CLI(t, "import", "--change", "ENV PATH=/bin", tarball, DockerImage)
}

// Run starts a container named name from DockerImage running cmd, with its port 80
// published on hostPort, and removes it when the test ends. It returns the container's id.
func (d *Docker) Run(t testing.TB, name string, hostPort uint16, cmd ...string) string {
	t.Helper()
	// Registered before the run: a container made by a run that then failed goes too.
	t.Cleanup(func() {
		if out, err := d.cli("rm", "-f", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such container") {
			t.Errorf("docker rm -f %s: %v\n%s", name, err, out)
		}
	})
	args := []string{"run", "-d", "--name", name, "-p", fmt.Sprintf("%d:%d", hostPort, DockerPort), DockerImage}
	return d.CLI(t, append(args, cmd...)...)
}

// WaitListening waits until something in container name listens on tcp port 80.
func (d *Docker) WaitListening(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := d.cli("exec", name, "netstat", "-ltn").CombinedOutput()
		if strings.Contains(string(out), fmt.Sprintf(":%d ", DockerPort)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d in container %s after 10s:\n%s", DockerPort, name, d.Log())
}

// IP is the container's address on docker0: its IPv4 one, or with v6 its IPv6 one.
func (d *Docker) IP(t testing.TB, name string, v6 bool) string {
	t.Helper()
	if v6 {
		return d.CLI(t, "inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}", name)
	}
	return d.CLI(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name)
}

// cgroupRoots are where a cgroup named at the root of each hierarchy lives: cgroup v2's
// one tree, or each v1 controller's.
func cgroupRoots() []string {
	roots := []string{"/sys/fs/cgroup"}
	v1, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range v1 {
		if fi, err := os.Lstat(r); err == nil && fi.IsDir() {
			if _, err := os.Stat(filepath.Join(r, "cgroup.procs")); err == nil {
				roots = append(roots, r)
			}
		}
	}
	return roots
}

// removeCgroups removes cgroup name and everything under it from every hierarchy, deepest
// first: what runc made for the test's containers under --cgroup-parent. They are empty by
// now (the daemon and its containers are gone).
func removeCgroups(t testing.TB, name string) {
	for _, root := range cgroupRoots() {
		top := filepath.Join(root, name)
		var dirs []string
		_ = filepath.WalkDir(top, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
				t.Errorf("remove cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

// leftoverCgroups lists the cgroups this test binary's daemons made that still exist.
func leftoverCgroups() []string {
	var left []string
	mine := fmt.Sprintf("-%d-", os.Getpid())
	for _, root := range cgroupRoots() {
		found, _ := filepath.Glob(filepath.Join(root, Prefix+"*"))
		for _, f := range found {
			if strings.Contains(filepath.Base(f), mine) {
				left = append(left, f)
			}
		}
	}
	return left
}
