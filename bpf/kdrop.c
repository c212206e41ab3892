//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* kdrop: every kfree_skb of one flow's packets, with the reason, the dropping function,
 * the namespace and the kernel stack.
 *
 * kfree_skb fires for every packet the kernel drops on the whole host, so the flow filter
 * runs here, in the kernel: only the flow's drops cross into user space. Two entry points
 * share one body: tp_btf (a raw tracepoint, needs no tracefs, preferred) and the classic
 * tracepoint (needs tracefs to attach, works where tp_btf is refused). */
#include "kernel.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "kdrop.h"

/* bpf_probe_read_kernel and bpf_get_stack are GPL-only helpers. */
char LICENSE[] SEC("license") = "GPL";

/* The flow, written by the loader before the program is loaded: the verifier sees
 * constants, and nothing needs updating at run time. */
volatile const __u8 flow_addr[16] __attribute__((aligned(8))); /* IPv4 as ::ffff:a.b.c.d */
volatile const __u16 flow_port; /* network byte order */
volatile const __u8 flow_proto; /* IPPROTO_TCP or IPPROTO_UDP */
volatile const __u8 flow_family; /* 4 or 6 */

/* Only here to put struct event in the object's BTF, where bpf2go finds it: a ring buffer
 * map cannot carry a value type. Constant, so it lands in .rodata and adds no map. */
const struct event *const event_btf __attribute__((unused)) = 0;

/* 4 MiB holds about 12,000 events: a burst of drops waits there while user space wakes. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* Per CPU, so that counting every kfree_skb on the host needs no atomic operation. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} totals SEC(".maps");

/* The headers of one packet, ports in network byte order. */
struct packet {
	__u64 saddr[2];
	__u64 daddr[2];
	__be16 sport;
	__be16 dport;
	__u8 family;
	__u8 proto;
	__u8 tcp_flags;
};

#define OFFSET_UNSET ((__u16)~0U)
/* An IPv6 header chain longer than this is not worth the instructions. */
#define MAX_IPV6_EXT 4

#include "prefilter.h"

static __always_inline void set_v4_mapped(__u64 dst[2], const __u8 a[4])
{
	__u8 *b = (__u8 *)dst;

	dst[0] = 0;
	dst[1] = 0;
	b[10] = 0xff;
	b[11] = 0xff;
	b[12] = a[0];
	b[13] = a[1];
	b[14] = a[2];
	b[15] = a[3];
}

/* ip_version returns 4 or 6 when head+off starts an IP header that agrees with ethertype
 * (0 accepts either: a packet the stack is still building has no skb->protocol yet). */
static __always_inline __u8 ip_version(unsigned char *head, __u32 off, __u16 ethertype)
{
	__u8 first = 0;

	if (bpf_probe_read_kernel(&first, sizeof(first), head + off))
		return 0;
	switch (first >> 4) {
	case 4:
		return (ethertype == 0 || ethertype == ETH_P_IP) && (first & 0xf) >= 5 ? 4 : 0;
	case 6:
		return ethertype == 0 || ethertype == ETH_P_IPV6 ? 6 : 0;
	}
	return 0;
}

/* find_l3 sets *off to the IP header's offset from skb->head and returns the IP version,
 * or 0 when the packet is not IP. network_header is right for almost every drop; when it
 * is unset or points at something that is not IP (a VLAN-tagged frame before untagging,
 * an skb still being built), the MAC header is the second chance. */
static __always_inline __u8 find_l3(struct sk_buff *skb, unsigned char *head, __u32 *off)
{
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 mh = BPF_CORE_READ(skb, mac_header);
	__u16 ethertype = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	struct eth_hdr eth;
	struct vlan_tag tag;
	__u32 l3;
	__u8 v;

	if (ethertype != 0 && ethertype != ETH_P_IP && ethertype != ETH_P_IPV6 &&
	    ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD)
		return 0; /* ARP and friends */

	if (nh != OFFSET_UNSET) {
		v = ip_version(head, nh, ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD ? 0 : ethertype);
		if (v) {
			*off = nh;
			return v;
		}
	}

	if (mh == OFFSET_UNSET)
		return 0;
	if (bpf_probe_read_kernel(&eth, sizeof(eth), head + mh))
		return 0;
	l3 = mh + sizeof(eth);
	ethertype = bpf_ntohs(eth.proto);
	if (ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD) {
		if (bpf_probe_read_kernel(&tag, sizeof(tag), head + l3))
			return 0;
		l3 += sizeof(tag);
		ethertype = bpf_ntohs(tag.proto);
	}
	if (ethertype != ETH_P_IP && ethertype != ETH_P_IPV6)
		return 0;
	v = ip_version(head, l3, ethertype);
	if (v)
		*off = l3;
	return v;
}

/* parse_ipv4 fills p from the IPv4 header at head+l3 and returns the L4 offset, 0 when
 * there is no L4 header to read (a non-first fragment carries no ports). The offset comes
 * from IHL, not skb->transport_header: until ip_rcv_core sets it, a received packet's
 * transport_header is the network header's offset (__netif_receive_skb_core resets it). */
static __always_inline __u32 parse_ipv4(unsigned char *head, __u32 l3, struct packet *p)
{
	struct ipv4_hdr ip;

	if (bpf_probe_read_kernel(&ip, sizeof(ip), head + l3))
		return 0;
	if (bpf_ntohs(ip.frag_off) & 0x1fff)
		return 0;
	p->family = 4;
	p->proto = ip.protocol;
	set_v4_mapped(p->saddr, ip.saddr);
	set_v4_mapped(p->daddr, ip.daddr);
	return l3 + (ip.version_ihl & 0xf) * 4;
}

/* parse_ipv6 fills p from the IPv6 header at head+l3, walking the few extension headers a
 * TCP or UDP packet commonly carries, and returns the L4 offset or 0. */
static __always_inline __u32 parse_ipv6(unsigned char *head, __u32 l3, struct packet *p)
{
	struct ipv6_hdr ip;
	struct ipv6_opt_hdr opt;
	__be16 frag_off;
	__u32 off = l3 + sizeof(ip);
	__u8 next;

	if (bpf_probe_read_kernel(&ip, sizeof(ip), head + l3))
		return 0;
	__builtin_memcpy(p->saddr, ip.saddr, 16);
	__builtin_memcpy(p->daddr, ip.daddr, 16);
	p->family = 6;
	next = ip.nexthdr;

#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT; i++) {
		if (next == IPPROTO_TCP || next == IPPROTO_UDP)
			break;
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
		    next != IPPROTO_FRAGMENT && next != IPPROTO_AH)
			return 0;
		if (bpf_probe_read_kernel(&opt, sizeof(opt), head + off))
			return 0;
		if (next == IPPROTO_FRAGMENT) {
			if (bpf_probe_read_kernel(&frag_off, sizeof(frag_off), head + off + 2))
				return 0;
			if (bpf_ntohs(frag_off) & 0xfff8)
				return 0;
			off += 8;
		} else if (next == IPPROTO_AH) {
			off += (opt.hdrlen + 2) * 4;
		} else {
			off += (opt.hdrlen + 1) * 8;
		}
		next = opt.nexthdr;
	}
	if (next != IPPROTO_TCP && next != IPPROTO_UDP)
		return 0;
	p->proto = next;
	return off;
}

static __always_inline bool parse(struct sk_buff *skb, struct packet *p)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	struct l4_ports ports;
	__u32 l3 = 0, l4;
	__u8 v;

	if (!head)
		return false;
	v = find_l3(skb, head, &l3);
	if (v == 4)
		l4 = parse_ipv4(head, l3, p);
	else if (v == 6)
		l4 = parse_ipv6(head, l3, p);
	else
		return false;
	if (!l4 || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return false;
	if (bpf_probe_read_kernel(&ports, sizeof(ports), head + l4))
		return false;
	p->sport = ports.sport;
	p->dport = ports.dport;
	if (p->proto == IPPROTO_TCP)
		bpf_probe_read_kernel(&p->tcp_flags, 1, head + l4 + TCP_FLAGS_OFFSET);
	return true;
}

static __always_inline bool is_flow_addr(const __u64 a[2])
{
	const volatile __u64 *f = (const volatile __u64 *)flow_addr;

	return a[0] == f[0] && a[1] == f[1];
}

/* A packet belongs to the flow when either end is the flow's address and port, the way
 * "host A and port P" would select it, with the protocol equal. */
static __always_inline bool matches(const struct packet *p)
{
	if (p->family != flow_family || p->proto != flow_proto)
		return false;
	return (p->sport == flow_port && is_flow_addr(p->saddr)) ||
	       (p->dport == flow_port && is_flow_addr(p->daddr));
}

static __always_inline __u32 net_inum(struct net *net)
{
	return net ? BPF_CORE_READ(net, ns.inum) : 0;
}

/* set_netns attributes the drop to a namespace: the device's (where the packet was), else
 * its socket's (a locally built packet that never reached a device), else the receiving
 * socket's. skb->dev shares a union with dev_scratch, which UDP reuses for queued packets:
 * a bogus pointer there only makes the probe read fail, and the next witness answers. */
static __always_inline void set_netns(struct sk_buff *skb, struct sock *rx_sk, struct event *e)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	__u32 inum;

	e->netns = 0;
	e->netns_from = NETNS_NONE;
	e->ifindex = dev ? BPF_CORE_READ(dev, ifindex) : 0;

	/* Without CONFIG_NET_NS possible_net_t is empty: every packet is in init_net. */
	if (!bpf_core_field_exists(dev->nd_net.net))
		return;
	if (dev) {
		inum = net_inum(BPF_CORE_READ(dev, nd_net.net));
		if (inum) {
			e->netns = inum;
			e->netns_from = NETNS_DEV;
			return;
		}
	}
	if (sk) {
		inum = net_inum(BPF_CORE_READ(sk, __sk_common.skc_net.net));
		if (inum) {
			e->netns = inum;
			e->netns_from = NETNS_SK;
			return;
		}
	}
	if (rx_sk) {
		inum = net_inum(BPF_CORE_READ(rx_sk, __sk_common.skc_net.net));
		if (inum) {
			e->netns = inum;
			e->netns_from = NETNS_RX_SK;
		}
	}
}

/* report parses a packet that passed the prefilter, if any, and sends its event when it is
 * the flow's. Kept out of line of handle's fast path: nothing here runs for a packet the
 * prefilter rejected. */
static __always_inline void report(void *ctx, struct counters *c, struct sk_buff *skb, __u64 location,
				   __u32 reason, struct sock *rx_sk)
{
	struct packet p = {};
	struct event *e;
	long n;

	if (!parse(skb, &p) || !matches(&p))
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
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	set_netns(skb, rx_sk, e);
	n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), 0);
	e->stack_depth = n > 0 ? n / sizeof(e->stack[0]) : 0;
	bpf_ringbuf_submit(e, 0);
}

/* handle counts every drop; btf says skb is a tp_btf argument, whose fields the prefilter
 * reads with plain loads (the classic tracepoint's is a bare address: probe reads only). */
static __always_inline void handle(void *ctx, struct sk_buff *skb, __u64 location, __u32 reason,
				   struct sock *rx_sk, bool btf)
{
	__u32 zero = 0;
	struct counters *c = bpf_map_lookup_elem(&totals, &zero);

	if (!c)
		return;
	c->seen++;
	if (btf && !maybe_flow_skb(skb))
		return;
	report(ctx, c, skb, location, reason, rx_sk);
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
