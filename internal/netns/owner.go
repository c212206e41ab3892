package netns

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Owners says who holds a network namespace, for a report that names where a packet died:
// the name `ip netns` gave it, else the container or Kubernetes pod whose processes are in
// it, else the process that holds it. It reads /proc and the container runtimes' state on
// disk, never their tools (docker, crictl, kubectl).
type Owners struct {
	// Roots, for tests; the real paths by default.
	Proc string // /proc
	// DockerRoot is Docker's --data-root, where containers/ID/config.v2.json names a
	// container; "" finds it: the --data-root of each dockerd running (from its command
	// line under Proc), else /var/lib/docker.
	DockerRoot string
	// Containerd is where containerd keeps its running tasks, by its own namespace (k8s.io,
	// moby, default): ID/config.json carries the CRI's pod and container names.
	Containerd string
	// CRIO is where CRI-O keeps its containers' state: ID/userdata/config.json carries the
	// pod and container names in CRI-O's annotations.
	CRIO string

	pids        map[uint64]int // namespace inode -> lowest PID in it; nil until scanned
	dockerRoots []string       // nil until found
}

// NewOwners reads the real system.
func NewOwners() *Owners {
	return &Owners{Proc: "/proc", Containerd: "/run/containerd/io.containerd.runtime.v2.task", CRIO: "/run/containers/storage/overlay-containers"}
}

// Describe names namespace ino: "web" (a name under Dir), "container web (docker, id
// 1965e06dc668)", "pod default/api-7d4 (kubernetes, container api, id 3f2a...)", "pid 812
// (sleep)", "the host" (init's); "" when nothing on the host holds it any more.
func (o *Owners) Describe(ino uint64) string {
	if name, ok := Names()[ino]; ok {
		return name
	}
	if o.pids == nil {
		o.pids = o.scan()
	}
	pid, ok := o.pids[ino]
	switch {
	case !ok:
		return ""
	case pid == 1:
		return "the host"
	}
	return o.describePID(pid)
}

// scan maps each network namespace of a running process to the lowest PID in it: a
// container's first process is its init.
func (o *Owners) scan() map[uint64]int {
	pids := map[uint64]int{}
	entries, err := os.ReadDir(o.Proc)
	if err != nil {
		return pids
	}
	var all []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			all = append(all, pid)
		}
	}
	sort.Ints(all)
	for _, pid := range all {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(o.Proc, strconv.Itoa(pid), "ns/net"), &st) != nil {
			continue
		}
		if _, seen := pids[st.Ino]; !seen {
			pids[st.Ino] = pid
		}
	}
	return pids
}

var (
	// A container's cgroup, by runtime: systemd's scopes (docker-ID.scope,
	// cri-containerd-ID.scope, crio-ID.scope, libpod-ID.scope) or cgroupfs paths
	// (/docker/ID, /kubepods/burstable/podUID/ID).
	scopeRE    = regexp.MustCompile(`(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope`)
	cgroupfsRE = regexp.MustCompile(`/(docker|kubepods)/(?:[^/]+/)*([0-9a-f]{64})$`)
	podRE      = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})`)
)

// runtimeNames says which runtime a cgroup's prefix stands for.
var runtimeNames = map[string]string{"docker": "docker", "cri-containerd": "containerd", "crio": "cri-o", "libpod": "podman", "kubepods": "kubernetes"}

// describePID names the container process pid belongs to, or the process.
func (o *Owners) describePID(pid int) string {
	comm, _ := os.ReadFile(filepath.Join(o.Proc, strconv.Itoa(pid), "comm"))
	process := fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
	runtime, id, pod := o.container(pid)
	if id == "" {
		return process
	}
	short := id[:12]
	if name := o.dockerName(id); name != "" {
		return fmt.Sprintf("container %s (docker, id %s)", name, short)
	}
	if c := o.criNames(id); c.pod != "" {
		desc := fmt.Sprintf("pod %s/%s (kubernetes", c.namespace, c.pod)
		if c.container != "" {
			desc += ", container " + c.container
		}
		return desc + ", id " + short + ")"
	}
	if pod != "" {
		return fmt.Sprintf("pod uid %s (kubernetes, container id %s)", pod, short)
	}
	return fmt.Sprintf("container %s (%s)", short, runtime)
}

// container tells from its cgroup which container process pid is in: the runtime, the
// container's id and its pod's uid; an empty id when it is in none.
func (o *Owners) container(pid int) (runtime, id, pod string) {
	cg, err := os.ReadFile(filepath.Join(o.Proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", "", ""
	}
	for _, line := range strings.Split(string(cg), "\n") {
		path := line[strings.LastIndexByte(line, ':')+1:]
		if m := scopeRE.FindStringSubmatch(path); m != nil {
			runtime, id = runtimeNames[m[1]], m[2]
		} else if m := cgroupfsRE.FindStringSubmatch(path); m != nil {
			runtime, id = runtimeNames[m[1]], m[2]
		}
		if m := podRE.FindStringSubmatch(path); m != nil {
			pod = strings.ReplaceAll(m[1], "_", "-")
		}
	}
	return runtime, id, pod
}

// defaultDockerRoot is where Docker keeps its state unless told otherwise.
const defaultDockerRoot = "/var/lib/docker"

// roots are the Docker data roots to read: DockerRoot when given, else each running
// dockerd's --data-root (a host may run several daemons, or one with its state elsewhere),
// else Docker's default.
func (o *Owners) roots() []string {
	if o.DockerRoot != "" {
		return []string{o.DockerRoot}
	}
	if o.dockerRoots == nil {
		o.dockerRoots = dockerdRoots(o.Proc)
		if len(o.dockerRoots) == 0 {
			o.dockerRoots = []string{defaultDockerRoot}
		}
	}
	return o.dockerRoots
}

// dockerdRoots reads the data root of every dockerd process under proc from its command
// line: --data-root DIR, --data-root=DIR, or the old -g/--graph; /var/lib/docker for a
// daemon that gives none.
func dockerdRoots(proc string) []string {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	var roots []string
	seen := map[string]bool{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "dockerd" {
			continue
		}
		root := defaultDockerRoot
		for i, a := range args[1:] {
			name, value, inline := strings.Cut(a, "=")
			if name != "--data-root" && name != "--graph" && name != "-g" {
				continue
			}
			if !inline {
				if i+2 >= len(args) {
					break
				}
				value = args[i+2]
			}
			root = value
		}
		if !seen[root] {
			seen[root] = true
			roots = append(roots, root)
		}
	}
	return roots
}

// dockerName is a Docker container's name, from its config on disk.
func (o *Owners) dockerName(id string) string {
	for _, root := range o.roots() {
		b, err := os.ReadFile(filepath.Join(root, "containers", id, "config.v2.json"))
		if err != nil {
			continue
		}
		var c struct{ Name string }
		if json.Unmarshal(b, &c) != nil {
			return ""
		}
		return strings.TrimPrefix(c.Name, "/")
	}
	return ""
}

// Published lists the ports the Docker container in namespace ino publishes on the host,
// as `docker ps` shows them: "8080->80/tcp", "127.0.0.1:9090->80/udp"; nil when no Docker
// container holds the namespace or it publishes nothing. A report quotes them where
// nothing listened on the container's port: the host's port is what its users connect to.
func (o *Owners) Published(ino uint64) []string {
	if o.pids == nil {
		o.pids = o.scan()
	}
	pid, ok := o.pids[ino]
	if !ok || pid == 1 {
		return nil
	}
	if _, id, _ := o.container(pid); id != "" {
		return o.dockerPorts(id)
	}
	return nil
}

// portBinding is one host end of a published port, as Docker stores it.
type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

// dockerPorts reads a Docker container's published ports from its state on disk: what the
// daemon bound when it started the container (config.v2.json's NetworkSettings.Ports,
// which holds the host port Docker chose for a bare `-p 80`), else, from a daemon that
// wrote none there, what was asked for (hostconfig.json's PortBindings).
func (o *Owners) dockerPorts(id string) []string {
	for _, root := range o.roots() {
		dir := filepath.Join(root, "containers", id)
		b, err := os.ReadFile(filepath.Join(dir, "config.v2.json"))
		if err != nil {
			continue
		}
		var c struct {
			NetworkSettings struct{ Ports map[string][]portBinding }
		}
		if json.Unmarshal(b, &c) != nil {
			return nil
		}
		ports := c.NetworkSettings.Ports
		if ports == nil {
			var h struct{ PortBindings map[string][]portBinding }
			if b, err := os.ReadFile(filepath.Join(dir, "hostconfig.json")); err == nil && json.Unmarshal(b, &h) == nil {
				ports = h.PortBindings
			}
		}
		return publishedText(ports)
	}
	return nil
}

// publishedText writes Docker's port map ({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort":
// "8080"}]}) as `docker ps` does, one mapping a string, by container port and protocol.
// The host address is left out when it is a wildcard, so Docker's two bindings of a port
// on both families' wildcards read as one. A binding without a host port is left out:
// Docker had not chosen it yet.
func publishedText(ports map[string][]portBinding) []string {
	type key struct {
		spec, proto string
		port        int
	}
	var keys []key
	for spec := range ports {
		port, proto, ok := strings.Cut(spec, "/")
		if !ok {
			proto = "tcp" // Docker's default, when a port is given without one
		}
		if n, err := strconv.Atoi(port); err == nil {
			keys = append(keys, key{spec, proto, n})
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.port < b.port || a.port == b.port && a.proto < b.proto
	})
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		for _, b := range ports[k.spec] {
			if b.HostPort == "" {
				continue
			}
			host := b.HostPort
			if ip, err := netip.ParseAddr(b.HostIP); b.HostIP != "" && (err != nil || !ip.IsUnspecified()) {
				host = net.JoinHostPort(b.HostIP, b.HostPort)
			}
			m := fmt.Sprintf("%s->%d/%s", host, k.port, k.proto)
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

type criContainer struct{ namespace, pod, container string }

// criNames are the Kubernetes names the CRI put in a container's OCI annotations: a
// containerd task's, else a CRI-O container's (whose pod sandbox is named "POD").
func (o *Owners) criNames(id string) criContainer {
	spaces, _ := os.ReadDir(o.Containerd)
	for _, ns := range spaces {
		if a := annotations(filepath.Join(o.Containerd, ns.Name(), id, "config.json")); a != nil {
			return criContainer{namespace: a["io.kubernetes.cri.sandbox-namespace"], pod: a["io.kubernetes.cri.sandbox-name"], container: a["io.kubernetes.cri.container-name"]}
		}
	}
	if o.CRIO == "" {
		return criContainer{}
	}
	if a := annotations(filepath.Join(o.CRIO, id, "userdata", "config.json")); a != nil {
		// The container's own name is the kubelet's label; ContainerName is CRI-O's long
		// k8s_NAME_POD_NAMESPACE_UID_N.
		var labels map[string]string
		_ = json.Unmarshal([]byte(a["io.kubernetes.cri-o.Labels"]), &labels)
		c := criContainer{namespace: a["io.kubernetes.cri-o.Namespace"], pod: a["io.kubernetes.cri-o.KubeName"],
			container: cmp.Or(labels["io.kubernetes.container.name"], a["io.kubernetes.cri-o.ContainerName"])}
		if a["io.kubernetes.cri-o.ContainerType"] == "sandbox" {
			c.container = ""
		}
		return c
	}
	return criContainer{}
}

// annotations reads the annotations of the OCI spec at path; nil when it cannot.
func annotations(path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var spec struct{ Annotations map[string]string }
	if json.Unmarshal(b, &spec) != nil || spec.Annotations == nil {
		return nil
	}
	return spec.Annotations
}

// Container finds a container's network namespace by its name or id (a prefix of at least
// 4 hex digits), among Docker's containers, containerd's tasks and CRI-O's containers
// (Kubernetes pods by `namespace/pod` or by container name), and returns the path that
// opens it and what the container is.
func (o *Owners) Container(ref string) (path, desc string, err error) {
	if ref == "" {
		return "", "", fmt.Errorf("no container named")
	}
	var found []string
	pick := func(p, d string) {
		path, desc = p, d
		found = append(found, d)
	}
	for _, root := range o.roots() {
		dirs, _ := os.ReadDir(filepath.Join(root, "containers"))
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(root, "containers", d.Name(), "config.v2.json"))
			if err != nil {
				continue
			}
			var c struct {
				ID, Name string
				State    struct{ Pid int }
			}
			if json.Unmarshal(b, &c) != nil || !matchRef(ref, c.ID, strings.TrimPrefix(c.Name, "/")) {
				continue
			}
			if c.State.Pid <= 0 {
				return "", "", fmt.Errorf("container %s (docker) is not running: it has no network namespace", strings.TrimPrefix(c.Name, "/"))
			}
			pick(filepath.Join(o.Proc, strconv.Itoa(c.State.Pid), "ns/net"), fmt.Sprintf("container %s (docker, id %s)", strings.TrimPrefix(c.Name, "/"), c.ID[:12]))
		}
	}
	spaces, _ := os.ReadDir(o.Containerd)
	for _, ns := range spaces {
		if ns.Name() == "moby" {
			continue // Docker's own: found above, by its Docker name
		}
		tasks, _ := os.ReadDir(filepath.Join(o.Containerd, ns.Name()))
		for _, task := range tasks {
			dir := filepath.Join(o.Containerd, ns.Name(), task.Name())
			c := o.criNames(task.Name())
			pod := c.namespace + "/" + c.pod
			if !matchRef(ref, task.Name(), c.container) && ref != pod {
				continue
			}
			pid, err := os.ReadFile(filepath.Join(dir, "init.pid"))
			if err != nil {
				continue
			}
			short := task.Name()[:min(12, len(task.Name()))]
			desc := fmt.Sprintf("container %s (containerd)", short)
			if c.pod != "" {
				desc = fmt.Sprintf("pod %s (kubernetes, id %s)", pod, short)
			}
			pick(filepath.Join(o.Proc, strings.TrimSpace(string(pid)), "ns/net"), desc)
		}
	}
	if o.CRIO != "" {
		ctrs, _ := os.ReadDir(o.CRIO)
		for _, ctr := range ctrs {
			c := o.criNames(ctr.Name())
			pod := c.namespace + "/" + c.pod
			if c.pod == "" || !matchRef(ref, ctr.Name(), c.container) && ref != pod {
				continue
			}
			// conmon writes the container's init PID there while it runs.
			pid, err := os.ReadFile(filepath.Join(o.CRIO, ctr.Name(), "userdata", "pidfile"))
			if err != nil {
				continue
			}
			pick(filepath.Join(o.Proc, strings.TrimSpace(string(pid)), "ns/net"), fmt.Sprintf("pod %s (kubernetes, cri-o, id %s)", pod, ctr.Name()[:min(12, len(ctr.Name()))]))
		}
	}
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("no container %q among Docker's (%s), containerd's (%s) and CRI-O's (%s)", ref, strings.Join(o.roots(), ", "), o.Containerd, o.CRIO)
	case 1:
		return path, desc, nil
	}
	// A pod's containers share its namespace: any of them will do when they all are one pod.
	pod := func(d string) string { return d[:strings.IndexByte(d, '(')] }
	onePod := strings.HasPrefix(found[0], "pod ")
	for _, d := range found {
		onePod = onePod && pod(d) == pod(found[0])
	}
	if onePod {
		return path, desc, nil
	}
	return "", "", fmt.Errorf("%q names %d containers: %s; give more of the id", ref, len(found), strings.Join(found, ", "))
}

// matchRef says whether ref is a container's name or a prefix of its id.
func matchRef(ref, id, name string) bool {
	if ref == name && name != "" {
		return true
	}
	return len(ref) >= 4 && strings.HasPrefix(id, ref)
}
