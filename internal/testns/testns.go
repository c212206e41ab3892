// Package testns builds throwaway network namespaces for end-to-end tests: two namespaces
// joined by a veth pair, with test addresses from 198.51.100.0/24 and 2001:db8::/32 only.
// Every namespace it makes is removed by t.Cleanup, even when the test fails.
//
// Tests may run programs here (ip, nft): the product never does, its tests may.
package testns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace this package makes, so leak checks find them.
const Prefix = "pmt-"

// Addresses of the two ends. Traffic only ever goes between namespaces a test made.
const (
	ClientV4 = "198.51.100.1"
	ServerV4 = "198.51.100.2"
	ClientV6 = "2001:db8::1"
	ServerV6 = "2001:db8::2"
	// Iface is the name of the veth end in both namespaces.
	Iface = "veth0"
)

// RequirePrivileges skips the test when it cannot run here (under -short, without root or
// ip), except in CI, where it fails: CI is root and must run every end-to-end test.
func RequirePrivileges(t testing.TB) {
	t.Helper()
	SkipShort(t, "root and network namespaces")
	if os.Geteuid() != 0 {
		Missing(t, "end-to-end test: needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		Missing(t, "end-to-end test: needs ip from iproute2")
	}
}

var counter atomic.Uint32

// Name returns a namespace name unique across parallel test binaries.
func Name(tag string) string {
	return fmt.Sprintf("%s%s-%d-%d", Prefix, tag, os.Getpid(), counter.Add(1))
}

// Port returns a port that differs between tests and test binaries, so that drops of one
// test's flow seen host-wide by kfree_skb are not mistaken for another's.
func Port() uint16 {
	return uint16(20000 + (os.Getpid()*97+int(counter.Add(1))*131)%40000)
}

// Pair is two namespaces joined by veth0, client .1 / ::1 and server .2 / ::2.
type Pair struct {
	Client, Server string
}

// NewPair makes the namespaces and removes them when the test ends.
func NewPair(t testing.TB, tag string) *Pair {
	t.Helper()
	RequirePrivileges(t)
	p := &Pair{Client: Name(tag + "c"), Server: Name(tag + "s")}
	for _, ns := range []string{p.Client, p.Server} {
		Run(t, "ip", "netns", "add", ns)
		ns := ns
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	Run(t, "ip", "link", "add", Iface, "netns", p.Client, "type", "veth", "peer", "name", Iface, "netns", p.Server)
	for ns, ends := range map[string][2]string{p.Client: {ClientV4, ClientV6}, p.Server: {ServerV4, ServerV6}} {
		p.in(t, ns, "ip", "link", "set", "lo", "up")
		p.in(t, ns, "ip", "link", "set", Iface, "up")
		p.in(t, ns, "ip", "addr", "add", ends[0]+"/24", "dev", Iface)
		// nodad: the address is usable at once, no duplicate detection delay.
		p.in(t, ns, "ip", "-6", "addr", "add", ends[1]+"/64", "dev", Iface, "nodad")
	}
	return p
}

func (p *Pair) in(t testing.TB, ns string, args ...string) {
	t.Helper()
	Run(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// InClient runs a command in the client namespace and fails the test if it fails.
func (p *Pair) InClient(t testing.TB, args ...string) { p.in(t, p.Client, args...) }

// InServer runs a command in the server namespace and fails the test if it fails.
func (p *Pair) InServer(t testing.TB, args ...string) { p.in(t, p.Server, args...) }

// Run runs a command and fails the test with its output if it fails.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs fn on a locked OS thread that has entered namespace ns, so sockets fn opens
// belong to ns. Goroutines fn starts run in the caller's namespace; sockets keep theirs.
func Do(t testing.TB, ns string, fn func()) {
	t.Helper()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatalf("open namespace %s: %v", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it dies with the goroutine, so no other goroutine
		// ever runs in the wrong namespace.
		runtime.LockOSThread()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// SendDatagrams sends n one-byte UDP datagrams from namespace ns to dst, from one
// unconnected socket: ICMP errors do not fail the next write.
func SendDatagrams(t testing.TB, ns string, dst netip.AddrPort, n int) {
	t.Helper()
	Do(t, ns, func() {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			if _, err := c.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(dst)); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
		}
	})
}

// UDPNoPorts is namespace ns's Udp NoPorts counter (/proc/net/snmp): the datagrams it
// dropped for want of a socket, counted as the kernel drops them.
func UDPNoPorts(t testing.TB, ns string) uint64 {
	t.Helper()
	var n uint64
	Do(t, ns, func() {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			for i := range f {
				if i < len(names) && names[i] == "NoPorts" {
					n, err = strconv.ParseUint(f[i], 10, 64)
					if err != nil {
						t.Fatalf("Udp NoPorts %q: %v", f[i], err)
					}
				}
			}
		}
	})
	return n
}

// WaitUDPNoPorts waits until namespace ns has dropped n datagrams for want of a socket
// (UDPNoPorts reaches n): on a loaded machine the receiving softirq may run after the
// sending call has returned.
func WaitUDPNoPorts(t testing.TB, ns string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for UDPNoPorts(t, ns) < n {
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s dropped %d datagrams for want of a socket after 30s, want %d", ns, UDPNoPorts(t, ns), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Inode returns the inode of namespace ns, the number kfree_skb events carry.
func Inode(t testing.TB, ns string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+ns, &st); err != nil {
		t.Fatalf("stat namespace %s: %v", ns, err)
	}
	return st.Ino
}

// InodeOfPID is the inode of process pid's network namespace, 0 when unreadable.
func InodeOfPID(pid int) uint64 {
	var st unix.Stat_t
	if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
		return 0
	}
	return st.Ino
}

// Leftovers lists namespaces made by this package that still exist, for TestMain checks.
func Leftovers() []string {
	entries, _ := os.ReadDir("/run/netns")
	var left []string
	mine := fmt.Sprintf("-%d-", os.Getpid())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), Prefix) && strings.Contains(e.Name(), mine) {
			left = append(left, e.Name())
		}
	}
	return left
}

// Main is a TestMain body: it runs the tests and fails the binary when they leave a
// namespace, or a cgroup of a Docker daemon's (StartDocker), behind.
func Main(m interface{ Run() int }) int {
	code := m.Run()
	if left := leftoverCgroups(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "tests left cgroups behind: %s\n", strings.Join(left, " "))
		for _, cg := range left {
			_ = exec.Command("find", cg, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";").Run()
		}
		if code == 0 {
			code = 1
		}
	}
	if left := Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "tests left network namespaces behind: %s\n", strings.Join(left, " "))
		for _, ns := range left {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Tool returns the path of a program a test calls (a cross-check such as tshark, a fixture
// such as nft or tmux). Without it the test skips, except in CI, where .ci/deps must have
// installed it and the test fails.
func Tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (make deps installs it)", name)
	}
	return path
}
