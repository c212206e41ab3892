package hoststate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sysctls read from /proc/sys. /proc/sys/net is resolved against the network namespace of
// the thread that opens the file (measured on 6.18: a thread that entered another namespace
// with setns reads that namespace's values, the process's other threads their own), so
// reading on the caller's thread reads the caller's namespace, as netlink does.
var (
	// globalSysctls are read once each; missing ones (no IPv6, no conntrack, net.core.rmem_max
	// outside the initial namespace on older kernels) are left out.
	globalSysctls = []string{
		"net.ipv4.ip_forward",
		"net.ipv4.tcp_syncookies",
		"net.core.somaxconn",
		"net.core.rmem_max",
		"net.netfilter.nf_conntrack_count",
		"net.netfilter.nf_conntrack_max",
		"net.netfilter.nf_conntrack_log_invalid",
	}
	// confSysctls are read for all, default and each interface.
	confSysctls = map[string][]string{
		"ipv4": {"rp_filter", "forwarding", "accept_local", "log_martians"},
		"ipv6": {"forwarding", "disable_ipv6"},
	}
)

// Names of the conntrack sysctls, also reported as HostState.Conntrack.
const (
	sysctlConntrackCount = "net.netfilter.nf_conntrack_count"
	sysctlConntrackMax   = "net.netfilter.nf_conntrack_max"
)

// sysctlName is the full dotted name of /proc/sys/net/ipv4/conf/<dev>/<key>. A dot in an
// interface name (eth0.100) becomes a slash, as sysctl(8) writes it: net.ipv4.conf.eth0/100.rp_filter.
func sysctlName(family, dev, key string) string {
	return "net." + family + ".conf." + strings.ReplaceAll(dev, ".", "/") + "." + key
}

// readSysctls reads the sysctls that bear on a verdict under root (/proc/sys): the global
// ones, and the conf ones for all, default and each of ifaces. A value that does not exist
// is left out; an interface with no conf directory costs one error.
func readSysctls(root string, ifaces []string) (map[string]string, []error) {
	out := map[string]string{}
	var errs []error
	read := func(name, path string) error {
		v, err := readSmall(path)
		switch {
		case err == nil:
			out[name] = v
		case !errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", name, err))
		}
		return err
	}
	for _, name := range globalSysctls {
		read(name, filepath.Join(root, strings.ReplaceAll(name, ".", "/")))
	}
	devs := append([]string{"all", "default"}, ifaces...)
	for _, family := range []string{"ipv4", "ipv6"} {
		for _, dev := range devs {
			dir := filepath.Join(root, "net", family, "conf", dev)
			for i, key := range confSysctls[family] {
				err := read(sysctlName(family, dev, key), filepath.Join(dir, key))
				if i == 0 && errors.Is(err, os.ErrNotExist) {
					// No such interface, or no IPv6 at all: the latter is not worth a line.
					if family == "ipv4" {
						errs = append(errs, fmt.Errorf("read sysctls of %s: no such interface in this network namespace", dev))
					}
					break
				}
			}
		}
	}
	return out, errs
}

// readSmall reads a small /proc file with plain system calls: os.ReadFile's fstat and
// poller registration triple the cost of a sysctl read (6 us instead of 17 measured), and a
// Stop with no interface given reads over a thousand of them on a busy host.
func readSmall(path string) (string, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var buf [512]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return "", &os.PathError{Op: "read", Path: path, Err: err}
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// sysctlInt reads an integer sysctl from the map; ok is false when it is absent or not a number.
func sysctlInt(sysctls map[string]string, name string) (int, bool) {
	v, ok := sysctls[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}
