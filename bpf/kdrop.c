//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* kdrop: every kfree_skb of one flow's packets, with the reason, the dropping function,
 * the namespace and the kernel stack.
 *
 * kfree_skb fires for every packet the kernel drops on the whole host, so the flow filter
 * runs here, in the kernel: only the flow's drops cross into user space. Two entry points
 * share one body: tp_btf (a raw tracepoint, needs no tracefs, preferred) and the classic
 * tracepoint (needs tracefs to attach, works where tp_btf is refused).
 *
 * A packet whose address was translated is the flow's by its conntrack entry (nat.h): the
 * drop of a DNATed packet matches by the tuple it had, and the programs on
 * net:net_dev_queue learn a translated connection's new ends while its packet still
 * carries the entry, before it enters another namespace, whose drops then match by
 * headers. */
#include "kernel.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "kdrop.h"

/* bpf_probe_read_kernel and bpf_get_stack are GPL-only helpers. */
char LICENSE[] SEC("license") = "GPL";

/* Only here to put struct event in the object's BTF, where bpf2go finds it: a ring buffer
 * map cannot carry a value type. Constant, so it lands in .rodata and adds no map. */
const struct event *const event_btf __attribute__((unused)) = 0;
const struct translation *const translation_btf __attribute__((unused)) = 0;

/* 1 MiB holds about 3,000 events, three times what the report keeps: a burst of drops
 * waits there while user space wakes. User space maps a ring's data twice, all of it
 * resident: each MiB here is 2 MiB of diagnose's RSS. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Per CPU, so that counting every kfree_skb on the host needs no atomic operation. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} totals SEC(".maps");

#include "flow.h"
#include "nat.h"

/* where is the namespace a drop happened in, and its device. */
struct where {
	__u32 netns;
	__u32 ifindex;
	enum netns_source from;
};

/* where_of attributes the drop to a namespace: the device's (where the packet was), else
 * its socket's (a locally built packet that never reached a device), else the receiving
 * socket's. skb->dev shares a union with dev_scratch, which UDP reuses for queued packets:
 * a bogus pointer there only makes the probe read fail, and the next witness answers. */
static __always_inline void where_of(struct sk_buff *skb, struct sock *rx_sk, struct where *w)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	w->ifindex = dev ? BPF_CORE_READ(dev, ifindex) : 0;
	w->netns = dev_netns(dev);
	if (w->netns) {
		w->from = NETNS_DEV;
		return;
	}
	w->netns = sk_netns(BPF_CORE_READ(skb, sk));
	if (w->netns) {
		w->from = NETNS_SK;
		return;
	}
	w->netns = sk_netns(rx_sk);
	w->from = w->netns ? NETNS_RX_SK : NETNS_NONE;
}

/* tell sends a translation of the flow's connection to user space: once per connection,
 * and again whenever it taught the flow a new end. */
static __always_inline void tell(struct nf_conn *ct, const struct nat_seen *s, __u32 netns, __u32 ifindex)
{
	struct translation *t;
	bool first;

	if (!s->flow)
		return;
	/* Asked even when it taught something: the entry is told, and the same packet
	 * leaving by the next device (a bridge, then its port) does not tell it again. */
	first = first_telling(ct);
	if (!s->learned && !first)
		return;
	t = bpf_ringbuf_reserve(&events, sizeof(*t), 0);
	if (!t)
		return; /* the endpoint is learned all the same; only the report lacks it */
	t->ktime_ns = bpf_ktime_get_ns();
	t->orig = s->orig;
	t->reply = s->reply;
	t->netns = netns;
	t->learned = s->learned;
	t->ifindex = ifindex;
	bpf_ringbuf_submit(t, 0);
}

/* report parses a packet that passed the prefilter, if any, and sends its event when it is
 * the flow's, by its headers or, translated, by its conntrack entry. Kept out of line of
 * handle's fast path: nothing here runs for a packet the prefilter rejected. */
static __always_inline void report(void *ctx, struct counters *c, struct sk_buff *skb, __u64 location,
				   __u32 reason, struct sock *rx_sk, struct nf_conn *ct)
{
	struct nat_seen *seen = 0;
	struct packet p = {};
	struct where w;
	struct event *e;
	__u32 end = 0;
	long n;

	if (!parse(skb, &p, false))
		return;
	/* The namespace before the endpoints: an endpoint may apply in one namespace only. */
	where_of(skb, rx_sk, &w);
	end = matches_in(&p, w.netns);
	if (ct && nat_here(w.netns) && (seen = learn_nat(ct)))
		tell(ct, seen, w.netns, 0);
	if (!end && !(seen && seen->flow))
		return;
	c->matched++;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->lost++;
		return;
	}
	e->ktime_ns = bpf_ktime_get_ns();
	e->location = location;
	e->reason = reason;
	__builtin_memcpy(e->saddr, p.saddr, 16);
	__builtin_memcpy(e->daddr, p.daddr, 16);
	e->sport = bpf_ntohs(p.sport);
	e->dport = bpf_ntohs(p.dport);
	e->family = p.family;
	e->proto = p.proto;
	e->tcp_flags = p.tcp_flags;
	e->via_ct = !end;
	e->end = end;
	e->netns = w.netns;
	e->ifindex = w.ifindex;
	e->netns_from = w.from;
	n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), 0);
	e->stack_depth = n > 0 ? n / sizeof(e->stack[0]) : 0;
	bpf_ringbuf_submit(e, 0);
}

/* handle counts every drop; btf says skb is a tp_btf argument, whose fields the prefilter
 * reads with plain loads (the classic tracepoint's is a bare address: probe reads only). A
 * drop the headers rule out may still be the flow's translated: its conntrack entry says,
 * when it has one (one load, for the drops of an untracked host). */
static __always_inline void handle(void *ctx, struct sk_buff *skb, __u64 location, __u32 reason,
				   struct sock *rx_sk, bool btf)
{
	__u32 zero = 0;
	struct counters *c = bpf_map_lookup_elem(&totals, &zero);
	struct nf_conn *ct;

	if (!c)
		return;
	c->seen++;
	ct = nat_ct(skb, btf);
	if (btf && !ct && !maybe_flow_skb(skb))
		return;
	report(ctx, c, skb, location, reason, rx_sk, ct);
}

/* tp_btf arguments follow the tracepoint's prototype, which grew: reason in 5.17, rx_sk in
 * 6.12. Reading an argument the kernel does not pass fails verification, so each is read
 * only when the tracepoint's record has the field; the loader turns the test into a
 * constant and the verifier skips the dead branch. */
SEC("tp_btf/kfree_skb")
int kfree_skb_btf(__u64 *ctx)
{
	struct trace_event_raw_kfree_skb *rec = 0;
	struct sock *rx_sk = 0;
	__u32 reason = 0;

	if (bpf_core_field_exists(rec->reason))
		reason = (__u32)ctx[2];
	if (bpf_core_field_exists(rec->rx_sk))
		rx_sk = (struct sock *)ctx[3];
	handle(ctx, (struct sk_buff *)ctx[0], ctx[1], reason, rx_sk, true);
	return 0;
}

SEC("tracepoint/skb/kfree_skb")
int kfree_skb_tp(struct trace_event_raw_kfree_skb *rec)
{
	struct sock *rx_sk = 0;
	__u32 reason = 0;

	if (bpf_core_field_exists(rec->reason))
		reason = rec->reason;
	if (bpf_core_field_exists(rec->rx_sk))
		rx_sk = rec->rx_sk;
	handle(rec, rec->skbaddr, (__u64)rec->location, reason, rx_sk, false);
	return 0;
}

/* ---- net:net_dev_queue: learning translations on the way out of a namespace. ---- */

static __always_inline void on_xmit(struct sk_buff *skb, bool btf)
{
	struct nf_conn *ct = nat_ct(skb, btf);
	struct nat_seen *seen;
	struct net_device *dev;
	__u32 netns;

	if (!ct)
		return;
	dev = BPF_CORE_READ(skb, dev);
	netns = dev_netns(dev);
	if (nat_here(netns) && (seen = learn_nat(ct)))
		tell(ct, seen, netns, BPF_CORE_READ(dev, ifindex));
}

SEC("tp_btf/net_dev_queue")
int xmit_btf(__u64 *ctx)
{
	on_xmit((struct sk_buff *)ctx[0], true);
	return 0;
}

SEC("tracepoint/net/net_dev_queue")
int xmit_tp(struct trace_event_raw_net_dev_template *rec)
{
	on_xmit(rec->skbaddr, false);
	return 0;
}
