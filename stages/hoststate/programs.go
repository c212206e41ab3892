package hoststate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	cilink "github.com/cilium/ebpf/link"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// tc (linux/rtnetlink.h, linux/pkt_sched.h, linux/pkt_cls.h): not in x/sys/unix.
const (
	sizeofTcMsg = 20 // family, 3 pad, ifindex i32, handle, parent, info

	tcHIngress    = 0xFFFF0000 // major of the ingress and clsact qdiscs
	tcHMinIngress = 0xFFF2
	tcHMinEgress  = 0xFFF3

	tcaBPFName = 7  // TCA_BPF_NAME: the name tc gave (object file and section)
	tcaBPFID   = 11 // TCA_BPF_ID: the program's id
)

// program is one BPF program on a hook of an interface, before its name is known.
type program struct {
	Index  int
	Hook   string
	ID     uint32
	TCName string // TCA_BPF_NAME, for when the program's own name cannot be read
}

func tcRequest(typ netlink.HeaderType, ifindex int, parent uint32) netlink.Message {
	b := make([]byte, sizeofTcMsg)
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(ifindex)))
	binary.NativeEndian.PutUint32(b[12:], parent)
	return netlink.Message{Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Dump}, Data: b}
}

// tcMsg is the part of struct tcmsg and its attributes the host state reads.
type tcMsg struct {
	Ifindex int
	Parent  uint32
	Kind    string
	BPFID   uint32
	BPFName string
}

func decodeTcMsg(b []byte) (tcMsg, error) {
	var t tcMsg
	if len(b) < sizeofTcMsg {
		return t, fmt.Errorf("decode tc message: %d bytes, shorter than tcmsg", len(b))
	}
	t.Ifindex = int(int32(binary.NativeEndian.Uint32(b[4:8])))
	t.Parent = binary.NativeEndian.Uint32(b[12:16])
	ad, err := netlink.NewAttributeDecoder(b[sizeofTcMsg:])
	if err != nil {
		return t, fmt.Errorf("decode tc message: %w", err)
	}
	var options []byte
	for ad.Next() {
		switch ad.Type() {
		case unix.TCA_KIND:
			t.Kind = ad.String()
		case unix.TCA_OPTIONS:
			options = ad.Bytes()
		}
	}
	if err := ad.Err(); err != nil {
		return t, fmt.Errorf("decode tc message: %w", err)
	}
	if t.Kind != "bpf" || len(options) == 0 {
		return t, nil
	}
	ad, err = netlink.NewAttributeDecoder(options)
	if err != nil {
		return t, fmt.Errorf("decode cls_bpf options: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case tcaBPFID:
			t.BPFID = ad.Uint32()
		case tcaBPFName:
			t.BPFName = ad.String()
		}
	}
	if err := ad.Err(); err != nil {
		return t, fmt.Errorf("decode cls_bpf options: %w", err)
	}
	return t, nil
}

// tcPrograms lists cls_bpf filters on the clsact (or ingress) qdiscs of the namespace: one
// qdisc dump finds the interfaces that have one, then one filter dump per hook. cls_bpf
// filters under other qdiscs (prio, htb classes) are not looked for.
func tcPrograms(c *netlink.Conn) ([]program, error) {
	msgs, err := c.Execute(tcRequest(unix.RTM_GETQDISC, 0, 0))
	if err != nil {
		return nil, fmt.Errorf("list qdiscs (RTM_GETQDISC): %w", err)
	}
	hooks := map[int][]string{} // ifindex -> the hooks its qdisc offers
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWQDISC {
			continue
		}
		q, err := decodeTcMsg(m.Data)
		if err != nil {
			return nil, err
		}
		switch q.Kind {
		case "clsact":
			hooks[q.Ifindex] = []string{"ingress", "egress"}
		case "ingress":
			hooks[q.Ifindex] = []string{"ingress"}
		}
	}
	var progs []program
	var errs []error
	for _, ifindex := range slices.Sorted(maps.Keys(hooks)) {
		for _, hook := range hooks[ifindex] {
			minor := uint32(tcHMinIngress)
			if hook == "egress" {
				minor = tcHMinEgress
			}
			msgs, err := c.Execute(tcRequest(unix.RTM_GETTFILTER, ifindex, tcHIngress|minor))
			if err != nil {
				errs = append(errs, fmt.Errorf("list tc %s filters of interface %d (RTM_GETTFILTER): %w", hook, ifindex, err))
				continue
			}
			ps, err := decodeFilters(msgs, "tc "+hook)
			if err != nil {
				errs = append(errs, err)
			}
			progs = append(progs, ps...)
		}
	}
	return progs, errors.Join(errs...)
}

func decodeFilters(msgs []netlink.Message, hook string) ([]program, error) {
	var progs []program
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWTFILTER {
			continue
		}
		f, err := decodeTcMsg(m.Data)
		if err != nil {
			return progs, err
		}
		// A filter's first message per priority is its chain head, with no program.
		if f.Kind == "bpf" && f.BPFID != 0 {
			progs = append(progs, program{Index: f.Ifindex, Hook: hook, ID: f.BPFID, TCName: f.BPFName})
		}
	}
	return progs, nil
}

// errNoTCX says the kernel has no tcx (before 6.6): no program can be attached that way.
var errNoTCX = errors.New("no tcx")

// tcxPrograms asks BPF_PROG_QUERY for the tcx programs of each interface. The ifindex is
// resolved in the calling thread's namespace, like netlink. Links and programs attached
// without a link are both listed.
func tcxPrograms(links []links.Link) ([]program, error) {
	var progs []program
	for _, l := range links {
		for _, at := range []struct {
			hook string
			typ  ebpf.AttachType
		}{{"tcx ingress", ebpf.AttachTCXIngress}, {"tcx egress", ebpf.AttachTCXEgress}} {
			res, err := cilink.QueryPrograms(cilink.QueryOptions{Target: l.Index, Attach: at.typ})
			if errors.Is(err, unix.EINVAL) || errors.Is(err, ebpf.ErrNotSupported) {
				return nil, errNoTCX
			}
			if err != nil {
				return progs, fmt.Errorf("list %s programs of %s (BPF_PROG_QUERY): %w", at.hook, l.Name, err)
			}
			for _, p := range res.Programs {
				progs = append(progs, program{Index: l.Index, Hook: at.hook, ID: uint32(p.ID)})
			}
		}
	}
	return progs, nil
}

// namePrograms turns programs into evidence, named from the program's info (the name it
// was loaded with, at most 15 characters); when that cannot be read, from tc's name.
func namePrograms(progs []program, names map[int]string) ([]evidence.AttachedProgram, []error) {
	out := []evidence.AttachedProgram{}
	var errs []error
	cache := map[uint32]string{}
	for _, p := range progs {
		name, ok := cache[p.ID]
		if !ok {
			var err error
			name, err = programName(p.ID)
			if err != nil {
				errs = append(errs, fmt.Errorf("name of BPF program %d on %s %s: %w", p.ID, names[p.Index], p.Hook, err))
			}
			cache[p.ID] = name
		}
		if name == "" {
			name = p.TCName
		}
		iface := names[p.Index]
		if iface == "" {
			iface = fmt.Sprintf("if%d", p.Index)
		}
		out = append(out, evidence.AttachedProgram{Iface: iface, Hook: p.Hook, Name: name, ID: p.ID})
	}
	slices.SortStableFunc(out, func(a, b evidence.AttachedProgram) int {
		if c := strings.Compare(a.Iface, b.Iface); c != 0 {
			return c
		}
		return strings.Compare(a.Hook, b.Hook)
	})
	return out, errs
}

func programName(id uint32) (string, error) {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return "", err
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "", err
	}
	return info.Name, nil
}
