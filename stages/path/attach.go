package path

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/internal/bpfrt"
	"github.com/packetmortem/packetmortem/internal/kerr"
	"github.com/packetmortem/packetmortem/internal/tracefs"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// point is one tracepoint of the path and its two programs.
type point struct {
	id    bpf.PathPoint // the program's counters slot
	name  string        // the evidence point (both route lookups are PointRoute)
	group string        // the tracepoint's subsystem: "net"
	event string        // and its name: "netif_receive_skb"
	btf   string        // the tp_btf program
	tp    string        // the classic tracepoint program
	since string        // the first Linux release with the tracepoint, when newer than 6.1
}

// tracepoint is the tracepoint's full name, as perf and tracefs spell it.
func (pt point) tracepoint() string { return pt.group + ":" + pt.event }

var (
	pointReceive   = point{bpf.PathPointPOINT_RECEIVE, evidence.PointReceive, "net", "netif_receive_skb", bpf.PathProgReceiveBtf, bpf.PathProgReceiveTp, ""}
	pointRoute     = point{bpf.PathPointPOINT_ROUTE, evidence.PointRoute, "fib", "fib_table_lookup", bpf.PathProgRouteBtf, bpf.PathProgRouteTp, ""}
	pointRoute6    = point{bpf.PathPointPOINT_ROUTE6, evidence.PointRoute, "fib6", "fib6_table_lookup", bpf.PathProgRoute6Btf, bpf.PathProgRoute6Tp, ""}
	pointSockState = point{bpf.PathPointPOINT_SOCK_STATE, evidence.PointSockState, "sock", "inet_sock_set_state", bpf.PathProgSockStateBtf, bpf.PathProgSockStateTp, ""}
	pointDataReady = point{bpf.PathPointPOINT_DATA_READY, evidence.PointDataReady, "sock", "sk_data_ready", bpf.PathProgDataReadyBtf, bpf.PathProgDataReadyTp, "6.3"}
	pointCopied    = point{bpf.PathPointPOINT_COPIED, evidence.PointCopied, "skb", "skb_copy_datagram_iovec", bpf.PathProgCopiedBtf, bpf.PathProgCopiedTp, ""}
	pointReset     = point{bpf.PathPointPOINT_RESET, evidence.PointReset, "tcp", "tcp_send_reset", bpf.PathProgResetBtf, bpf.PathProgResetTp, ""}
	pointICMP      = point{bpf.PathPointPOINT_ICMP, evidence.PointICMP, "icmp", "icmp_send", bpf.PathProgIcmpBtf, bpf.PathProgIcmpTp, ""}
)

// pointByID finds a point by its counters slot, for decoding.
var pointByID = map[bpf.PathPoint]point{}

func init() {
	for _, pt := range []point{pointReceive, pointRoute, pointRoute6, pointSockState, pointDataReady, pointCopied, pointReset, pointICMP} {
		pointByID[pt.id] = pt
	}
}

// pointsFor lists the points that apply to the flow, in path order, and reports the
// ones that would but cannot: the flow's route lookups are IPv4's or IPv6's; socket states
// and resets are TCP's.
func pointsFor(f evidence.Flow) (wanted []point, missing []evidence.MissingPoint) {
	wanted = append(wanted, pointReceive)
	if f.Addr.Unmap().Is4() {
		wanted = append(wanted, pointRoute)
	} else {
		wanted = append(wanted, pointRoute6)
	}
	if f.Proto == evidence.TCP {
		wanted = append(wanted, pointSockState)
	}
	wanted = append(wanted, pointDataReady, pointCopied)
	if f.Proto == evidence.TCP {
		wanted = append(wanted, pointReset)
	}
	if f.Addr.Unmap().Is4() {
		wanted = append(wanted, pointICMP)
	} else {
		missing = append(missing, evidence.MissingPoint{Point: evidence.PointICMP,
			Why: "icmp:icmp_send traces IPv4 only, and the kernel has no tracepoint for ICMPv6 errors (icmpv6_send): an ICMPv6 error this host sends is not seen"})
	}
	return wanted, missing
}

// absent says why the kernel cannot have the point's tracepoint, "" when it may: every
// tracepoint has a btf_trace_<event> type in the kernel's BTF, which tp_btf programs attach
// by. Without BTF nothing is known and the attachers' errors tell.
func absent(spec *btf.Spec, pt point) string {
	if spec == nil {
		return ""
	}
	var typ *btf.Typedef
	if err := spec.TypeByName("btf_trace_"+pt.event, &typ); !errors.Is(err, btf.ErrNotFound) {
		return ""
	}
	if pt.since != "" {
		return fmt.Sprintf("this kernel has no tracepoint %s (it came with Linux %s)", pt.tracepoint(), pt.since)
	}
	return fmt.Sprintf("this kernel has no tracepoint %s", pt.tracepoint())
}

// resetsNeedSocket tells whether tcp:tcp_send_reset fires only for resets a socket sends:
// before Linux 6.10 the reset answering a port nothing listens on (no socket) passed it by.
// The tracepoint gained its reason argument (enum sk_rst_reason) with that change.
func resetsNeedSocket(spec *btf.Spec) bool {
	var typ *btf.Typedef
	if spec == nil || spec.TypeByName("btf_trace_tcp_send_reset", &typ) != nil {
		return false
	}
	ptr, ok := typ.Type.(*btf.Pointer)
	if !ok {
		return false
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		return false
	}
	for _, p := range proto.Params {
		if e, ok := btf.UnderlyingType(p.Type).(*btf.Enum); ok && e.Name == "sk_rst_reason" {
			return false
		}
	}
	return true
}

// loader loads one program at a time against maps created once, so that a program the
// kernel refuses (its tracepoint missing) costs only its own point.
type loader struct {
	spec *ebpf.CollectionSpec
	maps *ebpf.Collection
	flow *bpf.Flow
}

// newLoader creates the shared maps, the flow's (empty: the caller adds the endpoints)
// among them.
func newLoader(cfg Config) (*loader, error) {
	spec, err := bpf.LoadPath()
	if err != nil {
		return nil, fmt.Errorf("load path BPF object: %w", err)
	}
	if err := spec.Variables["flow_probe_read"].Set(cfg.probeRead); err != nil {
		return nil, fmt.Errorf("path BPF object: %w", err)
	}
	l := &loader{spec: spec}
	if l.flow, err = bpf.FlowFor(cfg.FlowMaps, spec); err != nil {
		return nil, kerr.BPF("path probe", err)
	}
	onlyMaps := spec.Copy()
	onlyMaps.Programs = map[string]*ebpf.ProgramSpec{}
	if l.maps, err = ebpf.NewCollectionWithOptions(onlyMaps, ebpf.CollectionOptions{Cache: bpfrt.KernelBTF(), MapReplacements: l.flow.Maps()}); err != nil {
		l.flow.Close()
		return nil, kerr.BPF("create path BPF maps", err)
	}
	return l, nil
}

// load loads one program, using the shared maps.
func (l *loader) load(prog string) (*ebpf.Program, error) {
	cs := l.spec.Copy()
	for name := range cs.Programs {
		if name != prog {
			delete(cs.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{MapReplacements: l.maps.Maps, Cache: bpfrt.KernelBTF()})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			// The message ends with the verifier's last words; bpftool has the whole log.
			return nil, fmt.Errorf("verifier rejected %s: %w", prog, err)
		}
		return nil, err
	}
	// The program holds its maps in the kernel: the collection's copies can go.
	p := coll.DetachProgram(prog)
	coll.Close()
	return p, nil
}

// classifyLoad is kerr.BPF, except for the verifier's refusals: they fail with
// EACCES, which is no privilege problem.
func classifyLoad(what string, err error) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return kerr.BPF(what, err)
}

// attachment is one program attached to its tracepoint.
type attachment struct {
	point point
	name  string // how: "tp_btf/netif_receive_skb", "tracepoint/net/netif_receive_skb"
	prog  *ebpf.Program
	link  link.Link
	// shed says why the link was detached during the capture (see shed.go), "" if not.
	shed string
}

func (a *attachment) Close() error {
	var err error
	if a.shed == "" {
		err = a.link.Close()
	}
	a.prog.Close()
	return err
}

type attacher func(*loader, point) (*attachment, error)

// attachPoint tries each attacher in turn; it returns the first attachment and the errors
// of those tried before it (all of them when none worked).
func attachPoint(l *loader, pt point, attachers []attacher) (*attachment, []error) {
	var tried []error
	for _, attach := range attachers {
		a, err := attach(l, pt)
		if err == nil {
			return a, tried
		}
		tried = append(tried, err)
	}
	return nil, tried
}

func joinWhy(pt point, errs []error) string {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return pt.tracepoint() + ": " + strings.Join(msgs, "; ")
}

func attachBTF(l *loader, pt point) (*attachment, error) {
	name := "tp_btf/" + pt.event
	prog, err := l.load(pt.btf)
	if err != nil {
		return nil, classifyLoad("load "+name, err)
	}
	lk, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		prog.Close()
		return nil, kerr.BPF("attach "+name, err)
	}
	return &attachment{point: pt, name: name, prog: prog, link: lk}, nil
}

// attachClassic attaches the classic tracepoint, which needs tracefs for the event's id:
// under `ip netns exec` it is not mounted, and kdrop's private mount stands in.
func attachClassic(l *loader, pt point) (*attachment, error) {
	name := "tracepoint/" + pt.group + "/" + pt.event
	prog, err := l.load(pt.tp)
	if err != nil {
		return nil, classifyLoad("load "+name, err)
	}
	var lk link.Link
	attach := func() error {
		var err error
		lk, err = link.Tracepoint(pt.group, pt.event, prog, nil)
		return err
	}
	if tracefs.Mounted() {
		err = attach()
	} else {
		err = tracefs.WithPrivate(attach)
	}
	if err != nil {
		prog.Close()
		return nil, kerr.BPF("attach "+name, err)
	}
	return &attachment{point: pt, name: name, prog: prog, link: lk}, nil
}
