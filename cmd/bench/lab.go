package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// The bench's two pairs of namespaces, from the documentation ranges: traffic only ever
// goes between namespaces the bench made. The first is where diagnose runs and its flow
// lives (the addresses of internal/testns, which the bench cannot use outside a test); the
// second carries a flood elsewhere on the host, to its own addresses.
const (
	clientV4      = "198.51.100.1"
	serverV4      = "198.51.100.2"
	otherClientV4 = "203.0.113.1"
	otherServerV4 = "203.0.113.2"
	iface         = "veth0"
)

// namePrefix starts the names of the bench's namespaces: pmb-c-PID, pmb-s-PID, and
// pmb-oc-PID, pmb-os-PID for the other pair.
const namePrefix = "pmb-"

// lab is two namespaces joined by veth0, and for the NAT flood a third behind the server,
// its container. Close removes them.
type lab struct {
	client, server     string
	clientIP, serverIP string
	// container, when not empty, is where the server DNATs the flood: the drops happen,
	// and are counted, there.
	container string
	made      []string
}

// The NAT lab's container, behind its server on ctr0: addresses of the documentation
// range the other pair uses too, in namespaces of their own.
const (
	hostSideV4  = "203.0.113.1"
	containerV4 = "203.0.113.2"
)

// newNATLab makes a pair and a container namespace behind its server, which DNATs the
// flood's port to the container as a published port does (nftables, prerouting): every
// flood datagram is translated by conntrack, forwarded, and dropped in the container.
func newNATLab(tag string) (_ *lab, err error) {
	l, err := newLab(tag, clientV4, serverV4)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	l.container = fmt.Sprintf("%s%sk-%d", namePrefix, tag, os.Getpid())
	if err := runCmd("ip", "netns", "add", l.container); err != nil {
		return nil, err
	}
	l.made = append(l.made, l.container)
	if err := runCmd("ip", "link", "add", "ctr0", "netns", l.server, "type", "veth", "peer", "name", "eth0", "netns", l.container); err != nil {
		return nil, err
	}
	for _, c := range [][]string{
		{l.server, "ip", "link", "set", "ctr0", "up"},
		{l.server, "ip", "addr", "add", hostSideV4 + "/24", "dev", "ctr0"},
		{l.server, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{l.server, "nft", "add table ip pmb_nat"},
		{l.server, "nft", "add chain ip pmb_nat pre { type nat hook prerouting priority dstnat; policy accept; }"},
		{l.server, "nft", fmt.Sprintf("add rule ip pmb_nat pre udp dport %d dnat to %s", floodPort, containerV4)},
		{l.container, "ip", "link", "set", "lo", "up"},
		{l.container, "ip", "link", "set", "eth0", "up"},
		{l.container, "ip", "addr", "add", containerV4 + "/24", "dev", "eth0"},
		{l.container, "ip", "route", "add", "default", "via", hostSideV4},
	} {
		if err := runCmd(append([]string{"ip", "netns", "exec"}, c...)...); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// dropsIn is the namespace where the flood's datagrams are dropped.
func (l *lab) dropsIn() string {
	if l.container != "" {
		return l.container
	}
	return l.server
}

// newLab makes a pair named after tag, the client at client and the server at server (/24).
func newLab(tag, client, server string) (_ *lab, err error) {
	pid := os.Getpid()
	l := &lab{
		client: fmt.Sprintf("%s%sc-%d", namePrefix, tag, pid), server: fmt.Sprintf("%s%ss-%d", namePrefix, tag, pid),
		clientIP: client, serverIP: server,
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for _, ns := range []string{l.client, l.server} {
		if err := runCmd("ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		l.made = append(l.made, ns)
	}
	if err := runCmd("ip", "link", "add", iface, "netns", l.client, "type", "veth", "peer", "name", iface, "netns", l.server); err != nil {
		return nil, err
	}
	for ns, addr := range map[string]string{l.client: client, l.server: server} {
		for _, args := range [][]string{
			{"ip", "link", "set", "lo", "up"},
			{"ip", "link", "set", iface, "up"},
			{"ip", "addr", "add", addr + "/24", "dev", iface},
		} {
			if err := runCmd(append([]string{"ip", "netns", "exec", ns}, args...)...); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// Close removes the namespaces, and with them the veth pair and anything inside.
func (l *lab) Close() error {
	var errs []error
	for _, ns := range l.made {
		errs = append(errs, runCmd("ip", "netns", "del", ns))
	}
	l.made = nil
	return errors.Join(errs...)
}

// runCmd runs a command and returns its output in the error when it fails.
func runCmd(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// macOf returns the hardware address of interface name in namespace ns.
func macOf(ns, name string) ([6]byte, error) {
	var mac [6]byte
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		if len(ifi.HardwareAddr) != 6 {
			return fmt.Errorf("%s has no Ethernet address", name)
		}
		copy(mac[:], ifi.HardwareAddr)
		return nil
	})
	if err != nil {
		return mac, fmt.Errorf("address of %s in %s: %w", name, ns, err)
	}
	return mac, nil
}
