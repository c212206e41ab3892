package netns

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Containers are named from their cgroup and the runtime's state on disk, as each runtime
// and cgroup driver lays them out; a process outside any is named by its PID.
func TestDescribePID(t *testing.T) {
	t.Parallel()
	const (
		dockerID = "1965e06dc6689c1d1b2c4a5a2a3fb1a39d1d2be9b0d6f0b1c1f2a3b4c5d6e7f8"
		criID    = "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
		crioID   = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999"
		podUID   = "0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d"
	)
	root := t.TempDir()
	o := &Owners{Proc: filepath.Join(root, "proc"), DockerRoot: filepath.Join(root, "docker"), Containerd: filepath.Join(root, "containerd"),
		CRIO: filepath.Join(root, "crio")}
	write := func(path, content string) { writeFile(t, path, content) }
	proc := func(pid, comm, cgroup string) {
		write(filepath.Join(o.Proc, pid, "comm"), comm+"\n")
		write(filepath.Join(o.Proc, pid, "cgroup"), cgroup)
	}
	proc("100", "nginx", "0::/system.slice/docker-"+dockerID+".scope\n")
	write(filepath.Join(o.DockerRoot, "containers", dockerID, "config.v2.json"), `{"ID":"`+dockerID+`","Name":"/web"}`)
	proc("101", "nginx", "12:pids:/docker/"+dockerID+"\n0::/docker/"+dockerID+"\n")
	proc("200", "pause", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"+podUID+".slice/cri-containerd-"+criID+".scope\n")
	write(filepath.Join(o.Containerd, "k8s.io", criID, "config.json"), `{"annotations":{"io.kubernetes.cri.sandbox-name":"api-7d4","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.container-type":"sandbox"}}`)
	proc("300", "app", "0::/kubepods/besteffort/pod"+strings.ReplaceAll(podUID, "_", "-")+"/"+crioID+"\n")
	proc("400", "sleep", "0::/user.slice/user-0.slice/session-1.scope\n")
	proc("500", "conmon", "0::/machine.slice/libpod-"+crioID+".scope\n")
	// CRI-O's pod sandbox (its pause process holds the pod's namespace), and a container of
	// the same pod, systemd driver.
	const crioSandbox, crioApp = "bbbbccccddddeeeeffff00001111222233334444555566667777888899990000", "ccccddddeeeeffff000011112222333344445555666677778888999900001111"
	proc("700", "pause", "0::/kubepods.slice/kubepods-pod"+podUID+".slice/crio-"+crioSandbox+".scope\n")
	write(filepath.Join(o.CRIO, crioSandbox, "userdata", "config.json"), `{"annotations":{"io.kubernetes.cri-o.KubeName":"cart-5f6","io.kubernetes.cri-o.Namespace":"shop","io.kubernetes.cri-o.ContainerType":"sandbox","io.kubernetes.cri-o.ContainerName":"k8s_POD_cart-5f6_shop_0"}}`)
	proc("701", "cart", "0::/kubepods.slice/kubepods-pod"+podUID+".slice/crio-"+crioApp+".scope\n")
	write(filepath.Join(o.CRIO, crioApp, "userdata", "config.json"), `{"annotations":{"io.kubernetes.cri-o.KubeName":"cart-5f6","io.kubernetes.cri-o.Namespace":"shop","io.kubernetes.cri-o.ContainerType":"container","io.kubernetes.cri-o.ContainerName":"k8s_cart_cart-5f6_shop_0a1b_0","io.kubernetes.cri-o.Labels":"{\"io.kubernetes.container.name\":\"cart\",\"io.kubernetes.pod.name\":\"cart-5f6\"}"}}`)
	for pid, want := range map[int]string{
		700: "pod shop/cart-5f6 (kubernetes, id bbbbccccdddd)",
		701: "pod shop/cart-5f6 (kubernetes, container cart, id ccccddddeeee)",
		100: "container web (docker, id 1965e06dc668)",
		101: "container web (docker, id 1965e06dc668)",
		200: "pod shop/api-7d4 (kubernetes, id 3f2a1b0c9d8e)",
		300: "pod uid 0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d (kubernetes, container id aaaabbbbcccc)",
		400: "pid 400 (sleep)",
		500: "container aaaabbbbcccc (podman)",
		600: "pid 600 ()",
	} {
		if got := o.describePID(pid); got != want {
			t.Errorf("pid %d: %q, want %q", pid, got, want)
		}
	}
}

// A Docker container's published ports are read as the daemon wrote them (Docker 20.10's
// files, trimmed): where it bound them, else, from a daemon that wrote nothing there, what
// was asked for. Wildcard host addresses are left out, and a namespace no Docker
// container holds publishes nothing.
func TestPublished(t *testing.T) {
	t.Parallel()
	const (
		running = "bfbc80b0d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3"
		asked   = "6c4a22b0d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3"
		none    = "0000aaaab0d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2"
		crio    = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999"
	)
	root := t.TempDir()
	o := &Owners{Proc: filepath.Join(root, "proc"), DockerRoot: filepath.Join(root, "docker"), Containerd: filepath.Join(root, "containerd")}
	// A fake /proc/PID/ns/net is a file: its inode stands for the namespace's.
	inode := map[string]uint64{}
	proc := func(pid, cgroup string) {
		writeFile(t, filepath.Join(o.Proc, pid, "cgroup"), cgroup)
		writeFile(t, filepath.Join(o.Proc, pid, "ns", "net"), "")
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(o.Proc, pid, "ns", "net"), &st); err != nil {
			t.Fatal(err)
		}
		inode[pid] = st.Ino
	}
	docker := func(id, file, content string) {
		writeFile(t, filepath.Join(o.DockerRoot, "containers", id, file), content)
	}
	proc("1", "0::/init.scope\n")
	proc("100", "0::/system.slice/docker-"+running+".scope\n")
	docker(running, "config.v2.json", `{"ID":"`+running+`","Name":"/web","NetworkSettings":{"Ports":{`+
		`"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],`+
		`"443/tcp":[{"HostIp":"::1","HostPort":"8443"}],`+
		`"80/udp":[{"HostIp":"127.0.0.1","HostPort":"9090"}],`+
		`"81/tcp":[{"HostIp":"0.0.0.0","HostPort":"32768"}],"82/tcp":null}}}`)
	// What was asked for, which the daemon would also have bound: not read when it did.
	docker(running, "hostconfig.json", `{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"1"}]}}`)
	proc("200", "12:pids:/docker/"+asked+"\n")
	docker(asked, "config.v2.json", `{"ID":"`+asked+`","Name":"/old","NetworkSettings":{"Ports":null}}`)
	docker(asked, "hostconfig.json", `{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"7070"},{"HostIp":"198.51.100.2","HostPort":"6060"}],"81/tcp":[{"HostIp":"","HostPort":""}]}}`)
	proc("300", "0::/system.slice/docker-"+none+".scope\n")
	docker(none, "config.v2.json", `{"ID":"`+none+`","Name":"/quiet","NetworkSettings":{"Ports":{"82/tcp":null}}}`)
	proc("400", "0::/machine.slice/crio-"+crio+".scope\n")
	proc("500", "0::/user.slice/user-0.slice/session-1.scope\n")
	for pid, want := range map[string][]string{
		"100": {"8080->80/tcp", "127.0.0.1:9090->80/udp", "32768->81/tcp", "[::1]:8443->443/tcp"},
		"200": {"7070->80/tcp", "198.51.100.2:6060->80/tcp"},
		"300": nil,
		"400": nil,
		"500": nil,
		"1":   nil,
	} {
		if got := o.Published(inode[pid]); !slices.Equal(got, want) {
			t.Errorf("pid %s: published %q, want %q", pid, got, want)
		}
	}
	if got := o.Published(1); got != nil {
		t.Errorf("a namespace no process holds: published %q, want none", got)
	}
}

// A namespace that no name and no container holds is named by the process in it.
func TestDescribeProcess(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root: unshare a network namespace")
	}
	cmd := exec.Command("unshare", "--net", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var st, own unix.Stat_t
	deadline := time.Now().Add(2 * time.Second)
	for {
		// unshare execs sleep in the same process once the namespace is made.
		if err := unix.Stat(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "ns/net"), &st); err != nil {
			t.Fatal(err)
		}
		unix.Stat("/proc/thread-self/ns/net", &own)
		// The namespace changes before unshare execs sleep: the name read in between is
		// unshare's.
		comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "comm"))
		if st.Ino != own.Ino && string(comm) == "sleep\n" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := NewOwners().Describe(st.Ino), "pid "+strconv.Itoa(cmd.Process.Pid)+" (sleep)"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	if got := NewOwners().Describe(1); got != "" {
		t.Errorf("Describe(1) = %q, want nothing", got)
	}
}

// --container finds a Docker container by name or id prefix, and a pod by namespace/name
// or a container's name; an ambiguous prefix or a stopped container says so.
func TestContainer(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	o := &Owners{Proc: "/proc", DockerRoot: filepath.Join(root, "docker"), Containerd: filepath.Join(root, "containerd"), CRIO: filepath.Join(root, "crio")}
	write := func(path, content string) { writeFile(t, path, content) }
	docker := func(id, name string, pid int) {
		write(filepath.Join(o.DockerRoot, "containers", id, "config.v2.json"),
			`{"ID":"`+id+`","Name":"/`+name+`","State":{"Pid":`+strconv.Itoa(pid)+`}}`)
	}
	docker("1965e06dc6689c1d1b2c4a5a2a3fb1a39d1d2be9b0d6f0b1c1f2a3b4c5d6e7f8", "web", 4242)
	docker("1965aaaa6689c1d1b2c4a5a2a3fb1a39d1d2be9b0d6f0b1c1f2a3b4c5d6e7f8", "db", 4343)
	docker("77aa0000000000000000000000000000000000000000000000000000000000aa", "stopped", 0)
	for _, id := range []string{"aaaa1111", "bbbb2222"} {
		dir := filepath.Join(o.Containerd, "k8s.io", id+strings.Repeat("0", 56))
		write(filepath.Join(dir, "config.json"), `{"annotations":{"io.kubernetes.cri.sandbox-name":"api-7d4","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.container-name":"`+id[:4]+`"}}`)
		write(filepath.Join(dir, "init.pid"), "5151\n")
	}
	// Docker's own tasks in containerd are skipped: found once, by their Docker name.
	write(filepath.Join(o.Containerd, "moby", "1965e06dc6689c1d1b2c4a5a2a3fb1a39d1d2be9b0d6f0b1c1f2a3b4c5d6e7f8", "init.pid"), "4242\n")
	// A CRI-O pod: its sandbox and a container, sharing the namespace.
	for _, c := range [][3]string{{"cccc3333", "sandbox", ""}, {"dddd4444", "container", "cart"}} {
		dir := filepath.Join(o.CRIO, c[0]+strings.Repeat("0", 56), "userdata")
		write(filepath.Join(dir, "config.json"), `{"annotations":{"io.kubernetes.cri-o.KubeName":"cart-5f6","io.kubernetes.cri-o.Namespace":"shop","io.kubernetes.cri-o.ContainerType":"`+c[1]+`","io.kubernetes.cri-o.Labels":"{\"io.kubernetes.container.name\":\"`+c[2]+`\"}"}}`)
		write(filepath.Join(dir, "pidfile"), "6161")
	}
	for ref, want := range map[string]string{
		"shop/cart-5f6": "/proc/6161/ns/net pod shop/cart-5f6 (kubernetes, cri-o, id ",
		"cart":          "/proc/6161/ns/net pod shop/cart-5f6 (kubernetes, cri-o, id dddd44440000)",
		"web":           "/proc/4242/ns/net container web (docker, id 1965e06dc668)",
		"1965e0":        "/proc/4242/ns/net container web (docker, id 1965e06dc668)",
		"db":            "/proc/4343/ns/net container db (docker, id 1965aaaa6689)",
		"shop/api-7d4":  "/proc/5151/ns/net pod shop/api-7d4 (kubernetes, id bbbb22220000)",
		"aaaa":          "/proc/5151/ns/net pod shop/api-7d4 (kubernetes, id aaaa11110000)",
		"196":           "error: no container",
		"1965":          "error: names 2 containers",
		"1965a":         "/proc/4343/ns/net container db (docker, id 1965aaaa6689)",
		"stopped":       "error: is not running",
		"nope":          "error: no container",
	} {
		path, desc, err := o.Container(ref)
		got := path + " " + desc
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, want) && !(strings.HasPrefix(want, "error: ") && strings.Contains(got, strings.TrimPrefix(want, "error: "))) {
			t.Errorf("Container(%q) = %q, want %q", ref, got, want)
		}
	}
}

// writeFile makes a fixture file, with its folders.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Docker's state is found where the running daemons keep it: each dockerd's --data-root
// (in either spelling, or the old -g/--graph), /var/lib/docker for one that gives none or
// when no dockerd runs; a container is named from whichever root holds it.
func TestDockerRoots(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	proc := filepath.Join(root, "proc")
	cmdline := func(pid string, args ...string) {
		writeFile(t, filepath.Join(proc, pid, "cmdline"), strings.Join(args, "\x00")+"\x00")
	}
	if got := (&Owners{Proc: proc}).roots(); len(got) != 1 || got[0] != "/var/lib/docker" {
		t.Errorf("no dockerd: roots %q, want the default", got)
	}
	other, mine := filepath.Join(root, "other"), filepath.Join(root, "mine")
	cmdline("10", "/usr/sbin/dockerd", "-H", "fd://", "--data-root", other)
	cmdline("11", "dockerd", "--data-root="+mine, "--bip", "203.0.113.1/24")
	cmdline("12", "dockerd", "-H", "unix:///run/d.sock") // its root is the default
	cmdline("13", "containerd", "--data-root", "/not/docker")
	cmdline("14", "dockerd", "--data-root", other) // the same root twice counts once
	writeFile(t, filepath.Join(proc, "self", "cmdline"), "dockerd\x00")
	o := &Owners{Proc: proc}
	got := strings.Join(o.roots(), " ")
	if want := strings.Join([]string{other, mine, "/var/lib/docker"}, " "); got != want {
		t.Errorf("roots %q, want %q", got, want)
	}
	const id = "9810574522d836fbf808252baa5ea35efea369533260d77f912e869072c3f871"
	writeFile(t, filepath.Join(mine, "containers", id, "config.v2.json"), `{"ID":"`+id+`","Name":"/web"}`)
	writeFile(t, filepath.Join(proc, "20", "cgroup"), "4:memory:/docker/"+id+"\n")
	if got, want := o.describePID(20), "container web (docker, id 9810574522d8)"; got != want {
		t.Errorf("a container under a daemon's --data-root: %q, want %q", got, want)
	}
	if got := (&Owners{Proc: proc, DockerRoot: other}).roots(); len(got) != 1 || got[0] != other {
		t.Errorf("an explicit DockerRoot: roots %q, want only it", got)
	}
}
