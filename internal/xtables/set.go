package xtables

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The set match (xt_set_info_match_v1 to v4) and the SET target (xt_set_info_target_v3)
// name ipsets by index (ip_set_id_t); iptables-save prints their names, which only the
// kernel knows.

const (
	soIPSet           = 83     // SO_IP_SET
	ipSetOpGetByIndex = 7      // IP_SET_OP_GET_BYINDEX
	ipSetProtocolMin  = 6      // IPSET_PROTOCOL_MIN: every kernel with ipset takes it
	ipSetInvalidID    = 0xffff // IPSET_INVALID_ID
	ipSetMaxNameLen   = 32     // IPSET_MAXNAMELEN
)

// errSetNames is why a set extension is shown by name only before ResolveSets.
var errSetNames = errors.New("the names of its ipsets were not read")

// setInfoOffsets are where an extension's xt_set_info fields are, in order.
func setInfoOffsets(e Ext, target bool) []int {
	switch {
	case !target && e.Name == "set" && e.Rev >= 1 && e.Rev <= 4:
		return []int{0}
	case target && e.Name == "SET" && e.Rev == 3:
		return []int{0, 4, 8}
	}
	return nil
}

// ResolveSets fills Sets of t's set matches and SET targets with the names of the ipsets
// they refer to, asking the kernel with getsockopt(SO_IP_SET) on sock, a socket (any
// AF_INET one) of the table's network namespace. It needs CAP_NET_ADMIN.
func ResolveSets(t *Table, sock int) error {
	names := map[uint16]string{}
	name := func(index uint16) (string, error) {
		if n, ok := names[index]; ok {
			return n, nil
		}
		n, err := ipsetName(sock, index)
		if err != nil {
			return "", err
		}
		names[index] = n
		return n, nil
	}
	resolve := func(e *Ext, target bool) error {
		offs := setInfoOffsets(*e, target)
		if offs == nil {
			return nil
		}
		d := info(e.Data)
		if d.check(offs[len(offs)-1]+4) != nil {
			return nil
		}
		sets := make([]string, len(offs))
		for i, off := range offs {
			if index := d.u16(off); index != ipSetInvalidID {
				n, err := name(index)
				if err != nil {
					return err
				}
				sets[i] = n
			}
		}
		e.Sets = sets
		return nil
	}
	for ci := range t.Chains {
		for ri := range t.Chains[ci].Rules {
			r := &t.Chains[ci].Rules[ri]
			for mi := range r.Matches {
				if err := resolve(&r.Matches[mi], false); err != nil {
					return err
				}
			}
			if err := resolve(&r.Target, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// ipsetName asks the kernel for the name of the ipset of an index (struct
// ip_set_req_get_set: op, version, then the index or the name).
func ipsetName(sock int, index uint16) (string, error) {
	var req [8 + ipSetMaxNameLen]byte
	info(req[:]).put32(0, ipSetOpGetByIndex)
	info(req[:]).put32(4, ipSetProtocolMin)
	info(req[:]).put16(8, index)
	size := uint32(len(req))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(sock), unix.SOL_IP, soIPSet,
		uintptr(unsafe.Pointer(&req[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return "", fmt.Errorf("ipset %d: getsockopt SO_IP_SET: %w (needs CAP_NET_ADMIN in the table's namespace)", index, errno)
	}
	n := info(req[:]).str(8, ipSetMaxNameLen)
	if n == "" {
		return "", fmt.Errorf("ipset %d: the kernel has no set of that index", index)
	}
	return n, nil
}

// setDims prints an xt_set_info's directions: " src,dst" for dimensions one and two.
func setDims(d info, off int) string {
	dim, flags := int(d.u8(off+2)), d.u8(off+3)
	var dirs []string
	for i := 1; i <= dim && i < 8; i++ {
		if flags&(1<<i) != 0 {
			dirs = append(dirs, "src")
		} else {
			dirs = append(dirs, "dst")
		}
	}
	if len(dirs) == 0 {
		return ""
	}
	return " " + strings.Join(dirs, ",")
}

// setMatchSave prints the set match, revisions 1 to 4: the set, then (3 and 4) the flags
// and the counter conditions.
func setMatchSave(_ *saveCtx, e Ext, d info) (string, string, error) {
	const (
		invMatch       = 1 << 0
		skipCounters   = 1 << 3
		skipSubCounter = 1 << 4
		returnNomatch  = 1 << 7
	)
	// Revision 3's counters are ip_set_counter_match0 (op, then value at 8); 4's
	// ip_set_counter_match (value, then op at 8); both 16 bytes, flags after them.
	size := map[uint8]int{1: 4, 2: 4, 3: 44, 4: 44}[e.Rev]
	if err := d.check(size); err != nil {
		return "", "", err
	}
	if len(e.Sets) != 1 || e.Sets[0] == "" {
		return "", "", errSetNames
	}
	var b strings.Builder
	b.WriteString(inv(d.u8(3)&invMatch != 0) + " --match-set " + e.Sets[0] + setDims(d, 0))
	if e.Rev < 3 {
		return e.Name, b.String(), nil
	}
	flags := d.u32(40)
	if flags&returnNomatch != 0 {
		b.WriteString(" --return-nomatch")
	}
	if flags&skipCounters != 0 {
		b.WriteString(" ! --update-counters")
	}
	if flags&skipSubCounter != 0 {
		b.WriteString(" ! --update-subcounters")
	}
	for i, name := range []string{"packets", "bytes"} {
		at := 8 + 16*i
		op, value := d.u8(at), d.u64(at+8)
		if e.Rev == 4 {
			op, value = d.u8(at+8), d.u64(at)
		}
		switch op {
		case 0:
		case 1:
			fmt.Fprintf(&b, " --%s-eq %d", name, value)
		case 2:
			fmt.Fprintf(&b, " ! --%s-eq %d", name, value)
		case 3:
			fmt.Fprintf(&b, " --%s-lt %d", name, value)
		case 4:
			fmt.Fprintf(&b, " --%s-gt %d", name, value)
		default:
			return "", "", ErrUnknown
		}
	}
	return e.Name, b.String(), nil
}

// setTargetSave prints the SET target, revision 3 (xt_set_info_target_v3: add_set,
// del_set, map_set, flags, timeout).
func setTargetSave(_ *saveCtx, e Ext, d info) (string, string, error) {
	const (
		exist    = 1 << 0
		mapMark  = 1 << 8
		mapPrio  = 1 << 9
		mapQueue = 1 << 10
	)
	if err := d.check(20); err != nil {
		return "", "", err
	}
	if len(e.Sets) != 3 {
		return "", "", errSetNames
	}
	var b strings.Builder
	set := func(opt string, i int) {
		if d.u16(4*i) != ipSetInvalidID {
			b.WriteString(" " + opt + " " + e.Sets[i] + setDims(d, 4*i))
		}
	}
	flags := d.u32(12)
	set("--add-set", 0)
	if flags&exist != 0 {
		b.WriteString(" --exist")
	}
	if t := d.u32(16); t != 0xffffffff {
		fmt.Fprintf(&b, " --timeout %d", t)
	}
	set("--del-set", 1)
	set("--map-set", 2)
	for _, f := range []struct {
		bit uint32
		opt string
	}{{mapMark, " --map-mark"}, {mapPrio, " --map-prio"}, {mapQueue, " --map-queue"}} {
		if flags&f.bit != 0 {
			b.WriteString(f.opt)
		}
	}
	return e.Name, b.String(), nil
}
