//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* path: how far one flow's packets got, from tracepoints along the kernel's path: the
 * packet reached the stack (netif_receive_skb), was routed (fib_table_lookup,
 * fib6_table_lookup), moved a socket's TCP state (inet_sock_set_state), woke it
 * (sk_data_ready), was read (skb_copy_datagram_iovec), or was answered with a reset
 * (tcp_send_reset) or an ICMP error (icmp_send).
 *
 * Each tracepoint has its own program, attached on its own, so that a kernel without one
 * loses that point only. Every program filters in the kernel: only the flow's events cross
 * into user space, through one ring buffer. Each point has two entry points sharing one
 * body: tp_btf (needs no tracefs, preferred) and the classic tracepoint. */
#include "kernel.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "path.h"

/* bpf_probe_read_kernel is a GPL-only helper. */
char LICENSE[] SEC("license") = "GPL";

/* Only here to put struct event (and the enums it uses) in the object's BTF for bpf2go. */
const struct event *const event_btf __attribute__((unused)) = 0;

/* 2 MiB holds about 15,000 events (128 bytes and an 8-byte header each). User space maps
 * a ring's data twice, all of it resident: each MiB here is 2 MiB of diagnose's RSS. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} events SEC(".maps");

/* Per point and per CPU: counting every packet received and every route lookup on the
 * host needs no atomic operation. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, POINT_COUNT);
	__type(key, __u32);
	__type(value, struct counters);
} totals SEC(".maps");

/* The packet netif_receive_skb saw last on this CPU. A route lookup for a received packet
 * carries neither ports nor (IPv4) protocol: it runs within the packet's receive, on the
 * same CPU, after netif_receive_skb, so it belongs to the flow when this packet does and
 * the addresses agree. Under GRO's list receive a batch is traced before it is routed:
 * then "the packet before" is the batch's last, which may be another packet between the
 * same two hosts. */
struct rx_packet {
	__u64 saddr[2];
	__u64 daddr[2];
	__be16 sport;
	__be16 dport;
	__u32 ifindex;
	__u32 netns;
	__u8 matched;
	__u8 proto;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rx_packet);
} rx_current SEC(".maps");

#include "flow.h"

/* ---- Addresses and sockets. ---- */

static __always_inline bool is_v4_mapped(const __u64 a[2])
{
	const __u32 *w = (const __u32 *)a;

	return a[0] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

/* :: or ::ffff:0.0.0.0, the address of a socket bound to any address or not connected. */
static __always_inline bool is_unspecified(const __u64 a[2])
{
	const __u32 *w = (const __u32 *)a;

	return a[0] == 0 && (w[2] == 0 || w[2] == bpf_htonl(0x0000ffff)) && w[3] == 0;
}

static __always_inline bool same_addr(const __u64 a[2], const __u64 b[2])
{
	return a[0] == b[0] && a[1] == b[1];
}

/* sock_packet fills p with a socket's ends, the local one as source. proto 0 reads the
 * socket's protocol, which only a full socket has. */
static __always_inline bool sock_packet(struct sock *sk, __u8 proto, struct packet *p, __u16 *family)
{
	__u16 sk_proto;
	__be32 a;

	*family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (*family == AF_INET) {
		a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		set_v4_mapped(p->saddr, (__u8 *)&a);
		a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		set_v4_mapped(p->daddr, (__u8 *)&a);
		p->family = 4;
	} else if (*family == AF_INET6 && bpf_core_field_exists(sk->__sk_common.skc_v6_daddr)) {
		BPF_CORE_READ_INTO(&p->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&p->daddr, sk, __sk_common.skc_v6_daddr);
		/* A dual-stack socket talking IPv4 holds IPv4-mapped addresses. */
		p->family = is_v4_mapped(p->saddr) || is_v4_mapped(p->daddr) ? 4 : 6;
	} else {
		return false;
	}
	sk_proto = proto ? proto : BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	/* An MPTCP socket (IPPROTO_MPTCP, 262; Go's listeners are MPTCP since Go 1.24) is not
	 * TCP, though its low byte says so: its TCP subflows are, and they are traced. */
	if (sk_proto > 255)
		return false;
	p->proto = sk_proto;
	p->sport = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
	p->dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	return true;
}

/* A socket belongs to the flow when its ends do, or when it is bound to any address on the
 * flow's port and connected to nothing: a listener, or an unconnected UDP socket, which
 * is what the flow's packets are delivered to. An IPv6 socket bound to :: takes IPv4 too,
 * unless IPV6_V6ONLY, which is not read here. */
static __always_inline bool sock_matches(const struct packet *p, __u16 family)
{
	struct flow_classes *fc = classes();

	if (matches(p))
		return true;
	if (!fc || p->dport != 0 || !is_unspecified(p->saddr) || !is_unspecified(p->daddr))
		return false;
	return either_port(fc, class_of(4, p->proto), p->sport, p->sport) ||
	       (family == AF_INET6 && either_port(fc, class_of(6, p->proto), p->sport, p->sport));
}

/* ---- Namespaces and devices. ---- */

static __always_inline __u32 task_netns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return net_inum(BPF_CORE_READ(task, nsproxy, net_ns));
}

static __always_inline void set_dev(struct event *e, struct net_device *dev)
{
	if (!dev)
		return;
	e->ifindex = BPF_CORE_READ(dev, ifindex);
	bpf_probe_read_kernel(e->ifname, sizeof(e->ifname), &dev->name);
	e->ifname[sizeof(e->ifname) - 1] = 0;
}

/* set_skb_netns attributes a packet event to its device's namespace, else its socket's.
 * skb->dev shares a union with dev_scratch, which UDP reuses for queued packets: a bogus
 * pointer there only makes the read fail, and the socket answers. */
static __always_inline void set_skb_netns(struct event *e, struct sk_buff *skb, struct sock *sk)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	e->netns = dev_netns(dev);
	if (e->netns) {
		e->netns_from = NETNS_DEV;
		set_dev(e, dev);
		return;
	}
	if (!sk)
		sk = BPF_CORE_READ(skb, sk);
	e->netns = sk_netns(sk);
	e->netns_from = e->netns ? NETNS_SK : NETNS_NONE;
}

/* ---- Events. ---- */

static __always_inline struct counters *seen(__u32 point)
{
	struct counters *c = bpf_map_lookup_elem(&totals, &point);

	if (c)
		c->seen++;
	return c;
}

/* reserve takes a zeroed record, so that every byte of it is written. */
static __always_inline struct event *reserve(struct counters *c, enum point point, enum match how)
{
	struct event *e;

	c->matched++;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->lost++;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ktime_ns = bpf_ktime_get_ns();
	e->point = point;
	e->match = how;
	return e;
}

static __always_inline void put_packet(struct event *e, const struct packet *p)
{
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
	e->sport = bpf_ntohs(p->sport);
	e->dport = bpf_ntohs(p->dport);
	e->family = p->family;
	e->proto = p->proto;
	e->tcp_flags = p->tcp_flags;
}

/* ---- net:netif_receive_skb ---- */

/* on_received reports a packet that passed on_receive's prefilter, if any. */
static __always_inline void on_received(struct sk_buff *skb, struct counters *c, struct rx_packet *rx)
{
	struct net_device *dev;
	struct packet p = {};
	struct event *e;

	if (!parse(skb, &p, true) || !matches(&p))
		return;
	dev = BPF_CORE_READ(skb, dev);
	rx->matched = 1;
	__builtin_memcpy(rx->saddr, p.saddr, 16);
	__builtin_memcpy(rx->daddr, p.daddr, 16);
	rx->sport = p.sport;
	rx->dport = p.dport;
	rx->proto = p.proto;
	rx->ifindex = dev ? BPF_CORE_READ(dev, ifindex) : 0;
	rx->netns = dev_netns(dev);

	e = reserve(c, POINT_RECEIVE, MATCH_HEADERS);
	if (!e)
		return;
	put_packet(e, &p);
	set_dev(e, dev);
	e->netns = rx->netns;
	e->netns_from = e->netns ? NETNS_DEV : NETNS_NONE;
	bpf_ringbuf_submit(e, 0);
}

/* on_receive: btf says skb is a tp_btf argument, which the prefilter reads with plain loads. */
static __always_inline void on_receive(struct sk_buff *skb, bool btf)
{
	__u32 zero = 0;
	struct counters *c = seen(POINT_RECEIVE);
	struct rx_packet *rx = bpf_map_lookup_elem(&rx_current, &zero);

	if (!c || !rx)
		return;
	if (rx->matched)
		rx->matched = 0;
	if (btf && !maybe_flow_received(skb))
		return;
	on_received(skb, c, rx);
}

SEC("tp_btf/netif_receive_skb")
int receive_btf(__u64 *ctx)
{
	on_receive((struct sk_buff *)ctx[0], true);
	return 0;
}

SEC("tracepoint/net/netif_receive_skb")
int receive_tp(struct trace_event_raw_net_dev_template *rec)
{
	on_receive(rec->skbaddr, false);
	return 0;
}

/* ---- fib:fib_table_lookup, fib6:fib6_table_lookup ---- */

/* One route lookup: the flowi's side first (enough to match), the result after. */
struct lookup {
	struct packet p;
	__s32 iif;
	__s32 oif;
	__u32 table;
	__s32 err;
	__u32 netns; /* from the result's device, or the tracepoint's struct net */
	enum netns_source netns_from;
	__u32 rx_netns; /* the received packet's, for a lookup matched by it */
	enum match how;
};

/* match_lookup says whether a lookup is the flow's, by its flowi when it has ports, else
 * by the packet being received (see rx_packet): the lookup of its destination (input
 * interface the packet's) or of its source, which rp_filter and accept_local make
 * (fib_validate_source: addresses swapped, input interface loopback). The ports are then
 * the packet's.
 *
 * The received packet also tells the namespace of a lookup for its answer (a SYN-ACK, a
 * reset: ends and ports swapped), made in softirq, where the current task's namespace
 * means nothing. */
static __always_inline bool match_lookup(struct lookup *l)
{
	__u32 zero = 0;
	struct rx_packet *rx = bpf_map_lookup_elem(&rx_current, &zero);

	if (l->p.sport || l->p.dport) {
		l->how = MATCH_LOOKUP;
		if (!matches(&l->p))
			return false;
		if (rx && rx->matched && l->p.sport == rx->dport && l->p.dport == rx->sport &&
		    same_addr(l->p.saddr, rx->daddr) && same_addr(l->p.daddr, rx->saddr))
			l->rx_netns = rx->netns;
		return true;
	}
	if (!rx || !rx->matched || (l->p.proto && l->p.proto != rx->proto))
		return false;
	if (l->iif == rx->ifindex && same_addr(l->p.saddr, rx->saddr) && same_addr(l->p.daddr, rx->daddr)) {
		l->p.sport = rx->sport;
		l->p.dport = rx->dport;
	} else if (l->iif == LOOPBACK_IFINDEX && same_addr(l->p.saddr, rx->daddr) &&
		   same_addr(l->p.daddr, rx->saddr)) {
		l->p.sport = rx->dport;
		l->p.dport = rx->sport;
	} else {
		return false;
	}
	l->p.proto = rx->proto;
	l->how = MATCH_RECEIVED;
	l->rx_netns = rx->netns;
	return true;
}

/* emit_lookup reserves the event of a matched lookup; the caller fills the result in and
 * finish_lookup sends it. The namespace: the result's device's (or fib6's struct net),
 * else the received packet's, else the current task's: right for a lookup a process
 * makes (connect, sendmsg), which is what remains once a received packet does not tell. */
static __always_inline struct event *emit_lookup(struct counters *c, struct lookup *l, enum point point)
{
	struct event *e = reserve(c, point, l->how);

	if (!e)
		return 0;
	put_packet(e, &l->p);
	e->iif = l->iif;
	e->oif = l->oif;
	e->table = l->table;
	e->err = l->err;
	if (l->netns) {
		e->netns = l->netns;
		e->netns_from = l->netns_from;
	} else if (l->rx_netns) {
		e->netns = l->rx_netns;
		e->netns_from = NETNS_RX;
	}
	return e;
}

static __always_inline void finish_lookup(struct event *e)
{
	if (!e->netns) {
		e->netns = task_netns();
		e->netns_from = e->netns ? NETNS_TASK : NETNS_NONE;
	}
	bpf_ringbuf_submit(e, 0);
}

/* rx_flow says whether the packet netif_receive_skb saw last on this CPU is the flow's. */
static __always_inline bool rx_flow(void)
{
	__u32 zero = 0;
	struct rx_packet *rx = bpf_map_lookup_elem(&rx_current, &zero);

	return rx && rx->matched;
}

/* route_maybe_flow is match_lookup's prefilter for an IPv4 lookup, on the flowi4 a tp_btf
 * program reads with plain loads: a lookup with ports needs one end to be an endpoint of
 * the flow, one without needs the received packet to be the flow's (match_lookup then
 * compares the addresses). */
static __always_inline bool route_maybe_flow(struct flowi4 *flp)
{
	struct flow_classes *fc = classes();
	__be16 sport, dport;
	__u8 proto;
	int c;

	if (!fc || !family_any(fc, 4))
		return false;
	sport = flp->uli.ports.sport;
	dport = flp->uli.ports.dport;
	proto = flp->__fl_common.flowic_proto;
	if (sport || dport) {
		c = class_of(4, proto);
		return either_port(fc, c, sport, dport) &&
		       (v4_end(fc, c, sport, flp->saddr) || v4_end(fc, c, dport, flp->daddr));
	}
	return rx_flow();
}

/* route_report is route_btf past the prefilter. */
static __always_inline int route_report(__u64 *ctx, struct counters *c, struct flowi4 *flp)
{
	struct fib_nh_common *nhc = (struct fib_nh_common *)ctx[2];
	struct net_device *dev = 0;
	struct lookup l = {};
	struct event *e;
	__be32 a;

	a = BPF_CORE_READ(flp, saddr);
	set_v4_mapped(l.p.saddr, (__u8 *)&a);
	a = BPF_CORE_READ(flp, daddr);
	set_v4_mapped(l.p.daddr, (__u8 *)&a);
	l.p.family = 4;
	l.p.proto = BPF_CORE_READ(flp, __fl_common.flowic_proto);
	l.p.sport = BPF_CORE_READ(flp, uli.ports.sport);
	l.p.dport = BPF_CORE_READ(flp, uli.ports.dport);
	l.iif = BPF_CORE_READ(flp, __fl_common.flowic_iif);
	if (!match_lookup(&l))
		return 0;
	l.err = (__s32)ctx[3];
	/* The result's device is the best witness of the namespace. */
	if (nhc && !l.err) {
		dev = BPF_CORE_READ(nhc, nhc_dev);
		l.netns = dev_netns(dev);
		l.netns_from = l.netns ? NETNS_DEV : NETNS_NONE;
	}
	l.table = (__u32)ctx[0];
	l.oif = BPF_CORE_READ(flp, __fl_common.flowic_oif);
	e = emit_lookup(c, &l, POINT_ROUTE);
	if (!e)
		return 0;
	if (nhc && !l.err) {
		set_dev(e, dev);
		e->gw_family = BPF_CORE_READ(nhc, nhc_gw_family);
		if (e->gw_family == AF_INET)
			bpf_core_read(e->gateway, 4, &nhc->nhc_gw.ipv4);
		else if (e->gw_family == AF_INET6)
			bpf_core_read(e->gateway, 16, &nhc->nhc_gw.ipv6);
	}
	finish_lookup(e);
	return 0;
}

SEC("tp_btf/fib_table_lookup")
int route_btf(__u64 *ctx)
{
	struct flowi4 *flp = (struct flowi4 *)ctx[1];
	struct counters *c = seen(POINT_ROUTE);

	if (!c || !flp || !route_maybe_flow(flp))
		return 0;
	return route_report(ctx, c, flp);
}

SEC("tracepoint/fib/fib_table_lookup")
int route_tp(struct trace_event_raw_fib_table_lookup *rec)
{
	struct counters *c = seen(POINT_ROUTE);
	struct lookup l = {};
	struct event *e;
	__u8 a[4];

	if (!c)
		return 0;
	/* Arrays in a record are read with a helper: the verifier refuses loads through a ctx
	 * pointer plus an offset. */
	bpf_core_read(a, 4, &rec->src);
	set_v4_mapped(l.p.saddr, a);
	bpf_core_read(a, 4, &rec->dst);
	set_v4_mapped(l.p.daddr, a);
	l.p.family = 4;
	l.p.proto = rec->proto;
	l.p.sport = bpf_htons(rec->sport);
	l.p.dport = bpf_htons(rec->dport);
	l.iif = rec->iif;
	l.err = rec->err;
	if (!match_lookup(&l))
		return 0;
	l.table = rec->tb_id;
	l.oif = rec->oif;
	e = emit_lookup(c, &l, POINT_ROUTE);
	if (!e)
		return 0;
	/* The record names the device ("-" for none) but gives neither its index nor its
	 * namespace. Its gw4 and gw6 are left unwritten, stale bytes of an earlier record,
	 * when the next hop has no gateway: the gateway is not reported from here. */
	if (!l.err) {
		bpf_core_read(e->ifname, sizeof(e->ifname), &rec->name);
		e->ifname[sizeof(e->ifname) - 1] = 0;
		if (e->ifname[0] == '-' && e->ifname[1] == 0)
			e->ifname[0] = 0;
	}
	finish_lookup(e);
	return 0;
}

/* The IPv6 tracepoint reports the route's type; its classic record turns it into an error
 * the way ip6_rt_type_to_error does, and so does this. */
static __always_inline __s32 rt6_type_error(__u8 type)
{
	switch (type) {
	case RTN_BLACKHOLE:
	case RTN_NAT:
	case RTN_XRESOLVE:
		return -22; /* EINVAL */
	case RTN_UNREACHABLE:
		return -113; /* EHOSTUNREACH */
	case RTN_PROHIBIT:
		return -13; /* EACCES */
	case RTN_THROW:
		return -11; /* EAGAIN */
	}
	return 0;
}

SEC("tp_btf/fib6_table_lookup")
int route6_btf(__u64 *ctx)
{
	struct net *net = (struct net *)ctx[0];
	struct fib6_result *res = (struct fib6_result *)ctx[1];
	struct fib6_table *table = (struct fib6_table *)ctx[2];
	struct flowi6 *flp = (struct flowi6 *)ctx[3];
	struct counters *c = seen(POINT_ROUTE6);
	struct net_device *dev;
	struct fib6_nh *nh;
	struct lookup l = {};
	struct event *e;

	if (!c || !flp || !res)
		return 0;
	BPF_CORE_READ_INTO(&l.p.saddr, flp, saddr);
	BPF_CORE_READ_INTO(&l.p.daddr, flp, daddr);
	l.p.family = is_v4_mapped(l.p.daddr) ? 4 : 6;
	l.p.proto = BPF_CORE_READ(flp, __fl_common.flowic_proto);
	l.p.sport = BPF_CORE_READ(flp, uli.ports.sport);
	l.p.dport = BPF_CORE_READ(flp, uli.ports.dport);
	l.iif = BPF_CORE_READ(flp, __fl_common.flowic_iif);
	if (!match_lookup(&l))
		return 0;
	l.netns = net_inum(net);
	l.netns_from = l.netns ? NETNS_NET : NETNS_NONE;
	l.table = table ? BPF_CORE_READ(table, tb6_id) : 0;
	l.oif = BPF_CORE_READ(flp, __fl_common.flowic_oif);
	l.err = rt6_type_error(BPF_CORE_READ(res, fib6_type));
	e = emit_lookup(c, &l, POINT_ROUTE6);
	if (!e)
		return 0;
	nh = BPF_CORE_READ(res, nh);
	if (nh && !l.err) {
		dev = BPF_CORE_READ(nh, nh_common.nhc_dev);
		set_dev(e, dev);
		e->gw_family = BPF_CORE_READ(nh, nh_common.nhc_gw_family);
		if (e->gw_family == AF_INET)
			bpf_core_read(e->gateway, 4, &nh->nh_common.nhc_gw.ipv4);
		else if (e->gw_family == AF_INET6)
			bpf_core_read(e->gateway, 16, &nh->nh_common.nhc_gw.ipv6);
	}
	finish_lookup(e);
	return 0;
}

SEC("tracepoint/fib6/fib6_table_lookup")
int route6_tp(struct trace_event_raw_fib6_table_lookup *rec)
{
	struct counters *c = seen(POINT_ROUTE6);
	struct lookup l = {};
	struct event *e;

	if (!c)
		return 0;
	bpf_core_read(l.p.saddr, 16, &rec->src);
	bpf_core_read(l.p.daddr, 16, &rec->dst);
	l.p.family = is_v4_mapped(l.p.daddr) ? 4 : 6;
	l.p.proto = rec->proto;
	l.p.sport = bpf_htons(rec->sport);
	l.p.dport = bpf_htons(rec->dport);
	l.iif = rec->iif;
	if (!match_lookup(&l))
		return 0;
	l.table = rec->tb_id;
	l.oif = rec->oif;
	l.err = rec->err;
	e = emit_lookup(c, &l, POINT_ROUTE6);
	if (!e)
		return 0;
	if (!l.err) {
		bpf_core_read(e->ifname, sizeof(e->ifname), &rec->name);
		e->ifname[sizeof(e->ifname) - 1] = 0;
		if (e->ifname[0] == '-' && e->ifname[1] == 0)
			e->ifname[0] = 0;
		bpf_core_read(e->gateway, 16, &rec->gw);
		if (*(__u64 *)e->gateway || *(__u64 *)(e->gateway + 8))
			e->gw_family = AF_INET6;
	}
	finish_lookup(e);
	return 0;
}

/* ---- sock:inet_sock_set_state, sock:sk_data_ready ---- */

static __always_inline void on_sock(struct sock *sk, enum point point, int oldstate, int newstate)
{
	struct counters *c = seen(point);
	struct packet p = {};
	struct event *e;
	__u16 family;

	if (!c || !sk)
		return;
	if (!sock_packet(sk, 0, &p, &family) || !sock_matches(&p, family))
		return;
	e = reserve(c, point, MATCH_SOCKET);
	if (!e)
		return;
	put_packet(e, &p);
	e->old_state = oldstate;
	e->new_state = newstate;
	e->netns = sk_netns(sk);
	e->netns_from = e->netns ? NETNS_SK : NETNS_NONE;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/inet_sock_set_state")
int sock_state_btf(__u64 *ctx)
{
	on_sock((struct sock *)ctx[0], POINT_SOCK_STATE, (int)ctx[1], (int)ctx[2]);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int sock_state_tp(struct trace_event_raw_inet_sock_set_state *rec)
{
	on_sock((struct sock *)rec->skaddr, POINT_SOCK_STATE, rec->oldstate, rec->newstate);
	return 0;
}

SEC("tp_btf/sk_data_ready")
int data_ready_btf(__u64 *ctx)
{
	on_sock((struct sock *)ctx[0], POINT_DATA_READY, 0, 0);
	return 0;
}

SEC("tracepoint/sock/sk_data_ready")
int data_ready_tp(struct trace_event_raw_sk_data_ready *rec)
{
	on_sock((struct sock *)rec->skaddr, POINT_DATA_READY, 0, 0);
	return 0;
}

/* ---- skb:skb_copy_datagram_iovec ---- */

/* The application read a packet. Every socket family's reads pass here: only IP sockets'
 * count (an AF_PACKET capture of the flow must not). A TCP or UDP packet in a receive
 * queue still has its headers; when they cannot be read, the socket tells. */
static __always_inline void on_copy(struct sk_buff *skb, int len)
{
	struct counters *c = seen(POINT_COPIED);
	struct packet p = {};
	struct event *e;
	struct sock *sk;
	enum match how = MATCH_HEADERS;
	__u16 family = 0;

	if (!c || !skb)
		return;
	sk = BPF_CORE_READ(skb, sk);
	if (sk) {
		family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (family != AF_INET && family != AF_INET6)
			return;
	}
	if (parse(skb, &p, false)) {
		if (!matches(&p))
			return;
	} else {
		__builtin_memset(&p, 0, sizeof(p));
		if (!sk || !sock_packet(sk, 0, &p, &family) || !sock_matches(&p, family))
			return;
		how = MATCH_SOCKET;
	}
	e = reserve(c, POINT_COPIED, how);
	if (!e)
		return;
	put_packet(e, &p);
	e->len = len;
	/* The reading socket's namespace: a queued packet's dev is no longer trustworthy. */
	e->netns = sk_netns(sk);
	e->netns_from = e->netns ? NETNS_SK : NETNS_NONE;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/skb_copy_datagram_iovec")
int copied_btf(__u64 *ctx)
{
	on_copy((struct sk_buff *)ctx[0], (int)ctx[1]);
	return 0;
}

SEC("tracepoint/skb/skb_copy_datagram_iovec")
int copied_tp(struct trace_event_raw_skb_copy_datagram_iovec *rec)
{
	on_copy((struct sk_buff *)rec->skbaddr, rec->len);
	return 0;
}

/* ---- tcp:tcp_send_reset ---- */

/* A reset answers a packet (skb: the packet that caused it, as received; sk may be NULL,
 * a request or a timewait socket) or ends a connection (skb NULL: the socket's ends,
 * local as source). */
static __always_inline void on_reset(struct sock *sk, struct sk_buff *skb, __u32 reason, bool btf)
{
	struct counters *c = seen(POINT_RESET);
	struct packet p = {};
	struct event *e;
	__u16 family;

	if (!c)
		return;
	if (skb) {
		if ((btf && !maybe_flow_skb(skb)) || !parse(skb, &p, false) || !matches(&p))
			return;
		e = reserve(c, POINT_RESET, MATCH_HEADERS);
		if (!e)
			return;
		set_skb_netns(e, skb, sk);
	} else {
		if (!sk || !sock_packet(sk, IPPROTO_TCP, &p, &family) || !sock_matches(&p, family))
			return;
		e = reserve(c, POINT_RESET, MATCH_SOCKET);
		if (!e)
			return;
		e->netns = sk_netns(sk);
		e->netns_from = e->netns ? NETNS_SK : NETNS_NONE;
	}
	put_packet(e, &p);
	e->rst_reason = reason;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/tcp_send_reset")
int reset_btf(__u64 *ctx)
{
	struct trace_event_raw_tcp_send_reset *rec = 0;
	__u32 reason = 0;

	if (bpf_core_field_exists(rec->reason))
		reason = (__u32)ctx[2];
	on_reset((struct sock *)ctx[0], (struct sk_buff *)ctx[1], reason, true);
	return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int reset_tp(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset)) {
		struct trace_event_raw_tcp_send_reset *rec = ctx;

		on_reset((struct sock *)rec->skaddr, (struct sk_buff *)rec->skbaddr, rec->reason, false);
	} else {
		struct trace_event_raw_tcp_event_sk_skb *rec = ctx;

		on_reset((struct sock *)rec->skaddr, (struct sk_buff *)rec->skbaddr, 0, false);
	}
	return 0;
}

/* ---- icmp:icmp_send (IPv4 only: ICMPv6 errors have no tracepoint) ---- */

/* The packet that caused the error, as received. */
static __always_inline void on_icmp(struct sk_buff *skb, int type, int code, bool btf)
{
	struct counters *c = seen(POINT_ICMP);
	struct packet p = {};
	struct event *e;

	if (!c || !skb)
		return;
	if ((btf && !maybe_flow_skb(skb)) || !parse(skb, &p, false) || !matches(&p))
		return;
	e = reserve(c, POINT_ICMP, MATCH_HEADERS);
	if (!e)
		return;
	put_packet(e, &p);
	e->icmp_type = type;
	e->icmp_code = code;
	set_skb_netns(e, skb, 0);
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/icmp_send")
int icmp_btf(__u64 *ctx)
{
	on_icmp((struct sk_buff *)ctx[0], (int)ctx[1], (int)ctx[2], true);
	return 0;
}

SEC("tracepoint/icmp/icmp_send")
int icmp_tp(struct trace_event_raw_icmp_send *rec)
{
	on_icmp((struct sk_buff *)rec->skbaddr, rec->type, rec->code, false);
	return 0;
}
