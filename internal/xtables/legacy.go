package xtables

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// iptables-legacy's rules live in the kernel's x_tables, not in nf_tables: the nftables
// trace never sees them, and only getsockopt on a raw socket reads them, one table at a
// time, in the network namespace of the calling thread. The caller enters the namespace
// on a locked OS thread (netns.Handle.Do) and calls these there.

// ErrNoTable is returned by ReadLegacy for a table that does not exist in the namespace.
var ErrNoTable = errors.New("no such iptables-legacy table in this network namespace")

// LegacyTables lists the x_tables tables of one family (unix.NFPROTO_IPV4 or
// NFPROTO_IPV6) that exist in the calling thread's network namespace, in the order
// iptables-legacy-save dumps them; none when the kernel has no x_tables (module not
// loaded, or built without CONFIG_IP_NF_IPTABLES_LEGACY).
//
// The list comes from /proc/thread-self/net/ip_tables_names (ip6_tables_names), never
// from asking the kernel for a table: a getsockopt for a table the namespace lacks makes
// the kernel create it there (xt_find_table_lock instantiates the table's template), a
// change to the user's host that a diagnosis must not make.
func LegacyTables(family uint8) ([]string, error) {
	l, err := layoutOf(family)
	if err != nil {
		return nil, err
	}
	// thread-self, not self: /proc/self/net is the namespace of the process's first
	// thread, not of the locked thread that entered the one diagnosed.
	dir := "/proc/thread-self/net"
	if _, err := os.Stat(dir); err != nil {
		// Without it (a /proc of another pid namespace, a kernel before 3.17) no table
		// can be listed, which is not the same as none.
		return nil, fmt.Errorf("list iptables-legacy tables: %w (mount a /proc of this pid namespace)", err)
	}
	path := filepath.Join(dir, l.namesFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list iptables-legacy tables: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			names = append(names, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list iptables-legacy tables: read %s: %w", path, err)
	}
	return names, nil
}

// ReadLegacy reads one iptables-legacy table (filter, nat, mangle, raw, security) of one
// family in the calling thread's network namespace, as iptables-legacy-save -c would print
// it. A table LegacyTables does not list is not asked for (it would be created): the error
// then wraps ErrNoTable. It needs CAP_NET_RAW and CAP_NET_ADMIN in the namespace's owner.
func ReadLegacy(family uint8, table string) (*Table, error) {
	l, err := layoutOf(family)
	if err != nil {
		return nil, err
	}
	names, err := LegacyTables(family)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(names, table) {
		return nil, fmt.Errorf("read iptables-legacy table %s: %w", table, ErrNoTable)
	}
	info, blob, err := readRaw(l, table)
	if err != nil {
		return nil, err
	}
	return parseLegacy(l, table, info, blob)
}

// ReadAllLegacy reads every iptables-legacy table of both families in the calling thread's
// network namespace, IPv4's first; none when there are none.
func ReadAllLegacy() ([]*Table, error) {
	var tables []*Table
	for _, family := range []uint8{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6} {
		names, err := LegacyTables(family)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			t, err := ReadLegacy(family, name)
			if err != nil {
				return nil, err
			}
			tables = append(tables, t)
		}
	}
	return tables, nil
}

// LegacyInUse tells whether the tables hold anything that can change a packet's fate: a
// rule, or a built-in chain whose policy is not ACCEPT. A table with empty chains and
// ACCEPT policies exists once anything asked for it (iptables-legacy -L does) and filters
// nothing.
func LegacyInUse(tables []*Table) bool {
	for _, t := range tables {
		for _, c := range t.Chains {
			if len(c.Rules) > 0 || c.Policy != "" && c.Policy != "ACCEPT" {
				return true
			}
		}
	}
	return false
}

// readRaw asks the kernel for the table: GET_INFO for its size, then GET_ENTRIES for
// the entries (without the ipt_get_entries header). A table replaced in between changes
// size and the kernel answers EAGAIN: ask again.
func readRaw(l *layout, table string) (info, blob []byte, err error) {
	if len(table) >= tableNameLen {
		return nil, nil, fmt.Errorf("read iptables-legacy table %q: name longer than %d bytes", table, tableNameLen-1)
	}
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return nil, nil, fmt.Errorf("read iptables-legacy table %s: only a 64-bit build reads x_tables (32-bit processes get the compat layout)", table)
	}
	fd, err := unix.Socket(l.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, nil, fmt.Errorf("read iptables-legacy table %s: open a raw socket: %w (needs CAP_NET_RAW; run as root)", table, err)
	}
	defer unix.Close(fd)
	for range 10 {
		info = make([]byte, getinfoSize)
		copy(info, table)
		if err := getsockopt(fd, l.level, soGetInfo, info); err != nil {
			return nil, nil, sockoptError(table, "info", err)
		}
		size := xtEndian.Uint32(info[infoSize:])
		buf := make([]byte, getEntriesSize+int(size))
		copy(buf, table)
		xtEndian.PutUint32(buf[getEntriesTotal:], size)
		err := getsockopt(fd, l.level, soGetEntries, buf)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return nil, nil, sockoptError(table, "entries", err)
		}
		return info, buf[getEntriesSize:], nil
	}
	return nil, nil, fmt.Errorf("read iptables-legacy table %s: it kept changing while read (10 tries); run again", table)
}

func sockoptError(table, what string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("read iptables-legacy table %s: get %s: %w (needs CAP_NET_ADMIN; run as root)", table, what, err)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("read iptables-legacy table %s: get %s: %w", table, what, ErrNoTable)
	}
	return fmt.Errorf("read iptables-legacy table %s: get %s: %w", table, what, err)
}

// getsockopt passes buf both ways, as x_tables' getsockopts want; x/sys/unix has no
// wrapper for an arbitrary buffer.
func getsockopt(fd, level, opt int, buf []byte) error {
	n := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return e
	}
	return nil
}
