package verdict

import (
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Stage is a stop on the kernel path of a packet, from the ingress map of the seeds
// extended to the whole host (locally sent packets and forwarding).
type Stage string

const (
	Arrival      Stage = "arrival"       // the capture point: did it reach an interface at all
	Ingress      Stage = "ingress"       // between capture and IP: tc, XDP, bridge
	IPRcv        Stage = "ip_rcv"        // IP header checks
	Prerouting   Stage = "prerouting"    // netfilter prerouting
	Routing      Stage = "routing"       // route lookup, unicast RPF
	MulticastRPF Stage = "multicast_rpf" // ip_mr_input
	Input        Stage = "input"         // netfilter input
	Forward      Stage = "forward"       // ip_forward and netfilter forward
	Socket       Stage = "socket"        // transport layer and socket delivery
	Output       Stage = "output"        // locally sent: netfilter output, route lookup
	Postrouting  Stage = "postrouting"   // netfilter postrouting
	Egress       Stage = "egress"        // qdisc, neighbour, device
)

// Path lists the receive path in order, then the send path: the report's stage map.
var Path = []Stage{Arrival, Ingress, IPRcv, Prerouting, Routing, MulticastRPF, Input, Forward, Socket, Output, Postrouting, Egress}

// hookStage names the stage of a netfilter hook as nftables names hooks.
func hookStage(hook string) (Stage, bool) {
	switch hook {
	case "prerouting":
		return Prerouting, true
	case "input":
		return Input, true
	case "forward":
		return Forward, true
	case "output":
		return Output, true
	case "postrouting":
		return Postrouting, true
	case "ingress":
		return Ingress, true
	case "egress":
		return Egress, true
	}
	return "", false
}

// netfilterCallers maps the function that ran a netfilter hook, as found on the stack just
// outside nf_hook_slow, to the hook's stage. Stacks are the only witness when no nftables
// trace caught the packet (iptables-legacy, or a lost trace).
var netfilterCallers = []struct {
	prefix string
	stage  Stage
}{
	{"ip_local_deliver", Input}, {"ip6_input", Input},
	{"ip_forward", Forward}, {"ip6_forward", Forward},
	{"__ip_local_out", Output}, {"ip_local_out", Output}, {"__ip6_local_out", Output}, {"ip6_local_out", Output}, {"ip6_xmit", Output},
	{"ip_output", Postrouting}, {"ip6_output", Postrouting}, {"ip_mc_output", Postrouting},
	{"ip_rcv", Prerouting}, {"ip_sublist_rcv", Prerouting}, {"ip_list_rcv", Prerouting}, {"ipv6_rcv", Prerouting}, {"ipv6_list_rcv", Prerouting}, {"ip6_rcv", Prerouting},
	{"br_", Ingress}, {"nf_hook_ingress", Ingress}, {"__netif_receive_skb", Ingress},
}

// bridgeHooks maps the bridge function that ran a netfilter hook to the hook. Bridged
// packets never reach IP on this host: their whole netfilter life is in the ingress stage.
var bridgeHooks = []struct{ prefix, hook string }{
	{"br_handle_frame", "prerouting"}, {"br_pass_frame_up", "input"}, {"__br_forward", "forward"},
	{"br_forward_finish", "postrouting"}, {"br_dev_queue_push_xmit", "postrouting"}, {"__br_deliver", "output"},
	{"br_dev_xmit", "output"}, {"br_nf_", "prerouting"},
}

// ipHooks maps the IP function that ran a netfilter hook to the hook's name.
var ipHooks = map[Stage]string{Prerouting: "prerouting", Input: "input", Forward: "forward", Output: "output", Postrouting: "postrouting", Ingress: "ingress"}

// netfilterHook names the family and hook that dropped from the stack alone, for drops no
// trace caught (iptables-legacy, ebtables, a lost trace).
func netfilterHook(stack []string, flow evidence.Flow) (Hook, bool) {
	family := "ip"
	if flow.Family() == 6 {
		family = "ip6"
	}
	for _, frame := range stack {
		fn := frameFunction(frame)
		for _, b := range bridgeHooks {
			if strings.HasPrefix(fn, b.prefix) {
				return Hook{Family: "bridge", Hook: b.hook}, true
			}
		}
	}
	if st, ok := netfilterStage(stack); ok {
		if st == Ingress {
			return Hook{Family: "netdev", Hook: "ingress"}, true
		}
		return Hook{Family: family, Hook: ipHooks[st]}, true
	}
	return Hook{}, false
}

// functionStages maps a dropping function (or the first telling frame of a stack) to its
// stage. Longest prefix wins, so ip_rcv_finish_core beats ip_rcv.
var functionStages = map[string]Stage{
	"__netif_receive_skb_core": Ingress, "netif_receive_generic_xdp": Ingress, "do_xdp_generic": Ingress,
	"tcf_classify": Ingress, "sch_handle_ingress": Ingress, "tcx_run": Ingress, "br_": Ingress, "veth_xdp_rcv": Ingress,
	"ip_rcv_core": IPRcv, "ip_rcv": IPRcv, "ipv6_rcv": IPRcv, "ip6_rcv_core": IPRcv, "ip_defrag": IPRcv, "ip_check_defrag": IPRcv,
	"ip_rcv_finish_core": Routing, "ip_rcv_finish": Routing, "ip_route_input": Routing, "ip_route_input_slow": Routing,
	"ip_route_input_noref": Routing, "fib_validate_source": Routing, "__fib_validate_source": Routing, "ip6_route_input": Routing,
	"ip_error": Routing, "ip6_pkt_drop": Routing, "ip6_pkt_discard": Routing, "ip_rt_bug": Routing, "ip6_rcv_finish": Routing,
	"ip_mr_input": MulticastRPF, "ip_mr_forward": MulticastRPF, "ip6_mr_input": MulticastRPF, "ip_mc_input": MulticastRPF, "ip6_mc_input": MulticastRPF,
	"ip_local_deliver": Input, "ip_local_deliver_finish": Input, "ip_protocol_deliver_rcu": Socket, "ip6_input": Input, "ip6_protocol_deliver_rcu": Socket,
	"ip_forward": Forward, "ip6_forward": Forward, "ip_forward_finish": Forward,
	"tcp_v4_rcv": Socket, "tcp_v6_rcv": Socket, "tcp_": Socket, "udp_": Socket, "__udp4_lib_rcv": Socket, "__udp6_lib_rcv": Socket,
	"udpv6_": Socket, "sk_": Socket, "raw_": Socket, "icmp_": Socket, "icmpv6_": Socket, "sk_filter": Socket, "sock_": Socket, "inet_": Socket,
	"__ip_local_out": Output, "ip_local_out": Output, "ip_queue_xmit": Output, "__ip_queue_xmit": Output, "ip_send_skb": Output,
	"ip6_xmit": Output, "ip6_local_out": Output, "ip_route_output": Output, "ip6_send_skb": Output, "ip_make_skb": Output,
	"ip_output": Postrouting, "ip6_output": Postrouting,
	"ip_finish_output": Egress, "ip_finish_output2": Egress, "ip6_finish_output": Egress, "ip6_finish_output2": Egress,
	"neigh_": Egress, "__neigh_event_send": Egress, "__dev_queue_xmit": Egress, "dev_hard_start_xmit": Egress,
	"sch_": Egress, "qdisc_": Egress, "__qdisc_run": Egress, "pfifo_": Egress, "tbf_": Egress, "netem_": Egress,
	"sch_handle_egress": Egress, "veth_xmit": Egress, "dev_queue_xmit": Egress,
}

// stageOfFunction returns the stage of the longest known prefix of fn.
func stageOfFunction(fn string) (Stage, bool) {
	best := ""
	var stage Stage
	for prefix, s := range functionStages {
		if len(prefix) > len(best) && (fn == prefix || (strings.HasSuffix(prefix, "_") && strings.HasPrefix(fn, prefix)) || strings.HasPrefix(fn, prefix+".")) {
			best, stage = prefix, s
		}
	}
	return stage, best != ""
}

// frameFunction strips the offset and module from a symbolized frame:
// "nf_hook_slow+0x44/0xc0 [nf_tables]" -> "nf_hook_slow".
func frameFunction(frame string) string {
	if i := strings.IndexAny(frame, "+ "); i >= 0 {
		frame = frame[:i]
	}
	return frame
}

// netfilterStage finds the hook that dropped from the stack: the first frame outside the
// netfilter core (nft_*, nf_*) names the hook's caller.
func netfilterStage(stack []string) (Stage, bool) {
	for _, frame := range stack {
		fn := frameFunction(frame)
		if strings.HasPrefix(fn, "nft_") || strings.HasPrefix(fn, "nf_hook") || strings.HasPrefix(fn, "__nf_hook") ||
			strings.HasPrefix(fn, "nf_") || strings.HasPrefix(fn, "ipt_") || strings.HasPrefix(fn, "ip6t_") {
			continue
		}
		for _, c := range netfilterCallers {
			if strings.HasPrefix(fn, c.prefix) {
				return c.stage, true
			}
		}
	}
	return "", false
}

// stackStage infers a stage from the stack when the reason does not tell: the innermost
// frame with a known stage.
func stackStage(stack []string) (Stage, bool) {
	for _, frame := range stack {
		if s, ok := stageOfFunction(frameFunction(frame)); ok {
			return s, true
		}
	}
	return "", false
}
