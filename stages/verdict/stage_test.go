package verdict

import "testing"

func TestBaseFunction(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"__netif_receive_skb_core.constprop.0": "__netif_receive_skb_core", "tcp_v4_rcv": "tcp_v4_rcv", "ip_rcv_finish_core.isra.0": "ip_rcv_finish_core"} {
		if got := baseFunction(in); got != want {
			t.Errorf("baseFunction(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestStageOfFunction(t *testing.T) {
	t.Parallel()
	for fn, want := range map[string]Stage{
		"ip_rcv_finish_core": Routing, "ip_rcv_core": IPRcv, "tcp_v4_rcv": Socket, "udp_queue_rcv_one_skb": Socket,
		"__dev_queue_xmit": Egress, "sch_handle_ingress": Ingress, "ip_rcv_finish_core.isra.0": Routing, "neigh_resolve_output": Egress,
	} {
		if got, ok := stageOfFunction(fn); !ok || got != want {
			t.Errorf("stageOfFunction(%s) = %s, %v; want %s", fn, got, ok, want)
		}
	}
	if s, ok := stageOfFunction("unrelated"); ok {
		t.Errorf("stageOfFunction(unrelated) = %s", s)
	}
}
