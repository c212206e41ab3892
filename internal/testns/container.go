package testns

import (
	"os/exec"
	"testing"
)

// Addresses of a container behind the server: the server routes 203.0.113.0/24 and
// 2001:db8:1::/64 to it over a veth, as a host does to its containers or pods.
const (
	HostSideV4      = "203.0.113.1"
	ContainerV4     = "203.0.113.2"
	HostSideV6      = "2001:db8:1::1"
	ContainerV6     = "2001:db8:1::2"
	ContainerIface  = "eth0" // the container's end
	HostSideIface   = "ctr0" // the server's end
	containerPrefix = "/24"
)

// AddContainer makes a third namespace behind the pair's server, the way a container
// runtime or a CNI plugin with routed veths does: the server forwards between the client
// and it, and it routes everything back through the server. It is removed when the test
// ends.
func (p *Pair) AddContainer(t testing.TB, tag string) string {
	t.Helper()
	ns := Name(tag + "k")
	Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	Run(t, "ip", "link", "add", HostSideIface, "netns", p.Server, "type", "veth", "peer", "name", ContainerIface, "netns", ns)
	for _, c := range [][]string{
		{p.Server, "ip", "link", "set", HostSideIface, "up"},
		{p.Server, "ip", "addr", "add", HostSideV4 + containerPrefix, "dev", HostSideIface},
		{p.Server, "ip", "-6", "addr", "add", HostSideV6 + "/64", "dev", HostSideIface, "nodad"},
		{p.Server, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{p.Server, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
		{ns, "ip", "link", "set", "lo", "up"},
		{ns, "ip", "link", "set", ContainerIface, "up"},
		{ns, "ip", "addr", "add", ContainerV4 + containerPrefix, "dev", ContainerIface},
		{ns, "ip", "-6", "addr", "add", ContainerV6 + "/64", "dev", ContainerIface, "nodad"},
		{ns, "ip", "route", "add", "default", "via", HostSideV4},
		{ns, "ip", "-6", "route", "add", "default", "via", HostSideV6},
	} {
		p.in(t, c[0], c[1:]...)
	}
	return ns
}
