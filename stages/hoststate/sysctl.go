package hoststate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	read := func(name, path string) {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			out[name] = strings.TrimSpace(string(b))
		case errors.Is(err, os.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", name, err))
		}
	}
	for _, name := range globalSysctls {
		read(name, filepath.Join(root, strings.ReplaceAll(name, ".", "/")))
	}
	devs := append([]string{"all", "default"}, ifaces...)
	for _, family := range []string{"ipv4", "ipv6"} {
		for _, dev := range devs {
			dir := filepath.Join(root, "net", family, "conf", dev)
			if _, err := os.Stat(dir); err != nil {
				// IPv6 may be off altogether; an interface missing from ipv4 is worth a line.
				if family == "ipv4" || !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("read sysctls of %s: %w", dev, noSuchIface(err)))
				}
				continue
			}
			for _, key := range confSysctls[family] {
				read(sysctlName(family, dev, key), filepath.Join(dir, key))
			}
		}
	}
	return out, errs
}

func noSuchIface(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("no such interface in this network namespace")
	}
	return err
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
