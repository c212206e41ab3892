//go:build ignore

/* capture: the arrival stage's capture on tcx, where the kernel has it (6.6+). One program
 * per direction, attached to each interface captured on, whatever its link type; each
 * passes every packet on (TCX_NEXT: a capture never changes a packet's fate) and copies the
 * flow's packets to a ring buffer with their metadata.
 *
 * Why not the packet socket alone: an AF_PACKET tap costs every packet of its namespace a
 * reference, two indirect calls and a filter run, and on the project's machine that was
 * 4-5% of a flood's rate in most runs with a filter that refused everything at once; an
 * empty tcx program on both directions cost 1-2.5%. The packet socket stays as the
 * fallback.
 *
 * What it selects is exactly what the packet socket's classic filter selects (Filter in
 * stages/arrival documents it, and a test runs both on the same packets): IPv4 with any IHL
 * and a zero fragment offset, IPv6 through up to 6 hop-by-hop, routing, destination options,
 * authentication or fragment headers (first fragments only), both ports in the packet, and
 * either end one of the flow's endpoints (flow.h's maps). The protocol is the
 * packet's skb->protocol, as the filter's SKF_AD_PROTOCOL. One difference: headers beyond
 * the linear part of a packet (bpf_skb_load_bytes_relative reads no further), which the
 * stack has always pulled in by the time tc runs. */

// SPDX-License-Identifier: GPL-2.0
#include "kernel.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "capture.h"

char LICENSE[] SEC("license") = "GPL";

const struct capture_meta *const capture_meta_btf __attribute__((unused)) = 0;

#include "flow.h"

/* The start of the UAPI __sk_buff (linux/bpf.h), which the verifier rewrites by offset:
 * stable by ABI, and no CO-RE relocation. */
struct __sk_buff {
	__u32 len;
	__u32 pkt_type;
	__u32 mark;
	__u32 queue_mapping;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 priority;
	__u32 ingress_ifindex;
	__u32 ifindex;
	__u32 tc_index;
	__u32 cb[5];
	__u32 hash;
	__u32 tc_classid;
	__u32 data;
	__u32 data_end;
};

#define TCX_NEXT -1
#define BPF_HDR_START_NET 1
#define PACKET_OUTGOING 4

/* families is the IP families whose packets the programs look at (bit 0: IPv4, bit 1: IPv6):
 * those of the flow's endpoints when the programs were loaded. A constant tested where the
 * IPv6 code starts, so that the verifier drops that code for a flow without IPv6: the image
 * of the IPv4-only program is half as long, and on the flood bench (6.18, in this VM) its
 * refused packet cost 47 ns instead of ~70, though BPF_PROG_TEST_RUN times both at 16 ns
 * and the refused packet runs the same instructions. The loader reloads the programs and
 * swaps them into their links when the flow grows by the other family (stages/arrival). */
volatile const __u8 families = 3;

/* ifindex_tag is ORed into the interface index of each record: 0 in the namespace
 * diagnosed, a followed namespace's number above the interface bits in the programs loaded
 * for that namespace (stages/arrival), whose interfaces number from 1 as this one's do. */
volatile const __u32 ifindex_tag;

/* snap_net is how many bytes from the network header on are copied at most; no more than
 * CAPTURE_SNAP_MAX (capture.h). */
volatile const __u32 snap_net = CAPTURE_SNAP_MAX;

/* bpf_cast_to_kern_ctx (6.3+; tcx needs 6.6) gives the sk_buff behind the program's
 * __sk_buff, whose header offsets say where the network header is on any link type. */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	/* 1250 packets of 1500 bytes, 125 of the largest; tests change it. User space maps a
	 * ring's data twice, all of it resident: each MiB here is 2 MiB of diagnose's RSS. */
	__uint(max_entries, 2 << 20);
} packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture_counters);
} totals SEC(".maps");

enum look { NO, YES, SLOW };

/* link_len is where the network header starts in what the program sees (from skb->data
 * on): the link header's length, 14 on Ethernet and loopback, 0 on IP devices (tun,
 * WireGuard, GRE, IPIP), -1 when the kernel has not set it. At tc, skb->data is at the
 * link header on ingress and egress alike. */
static __always_inline int link_len(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	__u16 nh = skb->network_header;
	long off = (long)nh - (long)(skb->data - skb->head);

	if (nh == OFFSET_UNSET || off < 0 || off > MAX_LINK_LEN)
		return -1;
	return off;
}

/* fast looks at a packet in place: the packet without IP options or IPv6 extension headers
 * whose headers are all in the linear part, almost every one. Anything else is left to
 * slow. */
static __always_inline enum look fast(const struct flow_classes *fc, struct __sk_buff *skb, __u16 proto, int ll)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	int c;

	if (ll < 0 || ll > MAX_LINK_LEN)
		return SLOW;
	if (proto == ETH_P_IP) {
		struct ipv4_hdr *ip = data + ll;
		struct l4_ports *l4 = (void *)(ip + 1);

		if ((void *)(l4 + 1) > end || ip->version_ihl != 0x45)
			return SLOW;
		/* Ports first: on a busy host most packets are other ports' (and in a packet of
		 * a later fragment, what sits there does not matter: the check below refuses it
		 * too). */
		c = class_of(4, ip->protocol);
		if (!either_port(fc, c, l4->sport, l4->dport) || (ip->frag_off & bpf_htons(0x1fff)))
			return NO;
		return v4_end(fc, c, l4->sport, *(__u32 *)ip->saddr) || v4_end(fc, c, l4->dport, *(__u32 *)ip->daddr)
			       ? YES
			       : NO;
	}
	if (!(families & 2))
		return NO;
	struct ipv6_hdr *ip = data + ll;
	struct l4_ports *l4 = (void *)(ip + 1);

	if ((void *)(l4 + 1) > end || (ip->version_class_label & bpf_htonl(0xf0000000)) != bpf_htonl(0x60000000))
		return SLOW;
	c = class_of(6, ip->nexthdr);
	if (c == CLASS_NONE)
		return SLOW;
	return v6_end(fc, c, l4->sport, ip->saddr) || v6_end(fc, c, l4->dport, ip->daddr) ? YES : NO;
}

static __always_inline bool ports_match(const struct flow_classes *fc, struct __sk_buff *skb, __u32 off, int c,
					 const __u8 *saddr, const __u8 *daddr)
{
	struct l4_ports l4;

	if (bpf_skb_load_bytes_relative(skb, off, &l4, sizeof(l4), BPF_HDR_START_NET))
		return false; /* the ports are not in the packet */
	if (c < 2)
		return v4_end(fc, c, l4.sport, *(__u32 *)saddr) || v4_end(fc, c, l4.dport, *(__u32 *)daddr);
	return v6_end(fc, c, l4.sport, saddr) || v6_end(fc, c, l4.dport, daddr);
}

/* slow reads the headers from the network header on, wherever they are. */
static __always_inline bool slow(const struct flow_classes *fc, struct __sk_buff *skb, __u16 proto)
{
	int c;

	if (proto == ETH_P_IP) {
		struct ipv4_hdr ip;

		if (bpf_skb_load_bytes_relative(skb, 0, &ip, sizeof(ip), BPF_HDR_START_NET))
			return false;
		c = class_of(4, ip.protocol);
		if ((ip.version_ihl >> 4) != 4 || (ip.version_ihl & 0xf) < 5 || !class_any(fc, c) ||
		    (ip.frag_off & bpf_htons(0x1fff)))
			return false;
		return ports_match(fc, skb, (ip.version_ihl & 0xf) * 4, c, ip.saddr, ip.daddr);
	}

	if (!(families & 2))
		return false;
	struct ipv6_hdr ip;
	__u32 off = sizeof(ip);
	__u8 next;

	if (bpf_skb_load_bytes_relative(skb, 0, &ip, sizeof(ip), BPF_HDR_START_NET))
		return false;
	if ((ip.version_class_label & bpf_htonl(0xf0000000)) != bpf_htonl(0x60000000))
		return false;
	next = ip.nexthdr;
#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT; i++) {
		__u8 h[4];

		if (next == IPPROTO_TCP || next == IPPROTO_UDP)
			break;
		if (!ipv6_ext(next))
			return false;
		if (bpf_skb_load_bytes_relative(skb, off, h, sizeof(h), BPF_HDR_START_NET))
			return false;
		if (next == IPPROTO_FRAGMENT) {
			/* Only the first fragment carries the ports. */
			if (((h[2] << 8) | h[3]) & 0xfff8)
				return false;
			off += 8;
		} else if (next == IPPROTO_AH) {
			off += (h[1] + 2) * 4;
		} else {
			off += (h[1] + 1) * 8;
		}
		next = h[0];
	}
	c = class_of(6, next);
	if (!class_any(fc, c))
		return false;
	return ports_match(fc, skb, off, c, ip.saddr, ip.daddr);
}

/* EMIT defines emit_NAME, which copies a packet of cap bytes into a record of type
 * struct capture_NAME. bpf_ringbuf_reserve wants a constant size, so a record has room for
 * the largest packet of its class: a small one for packets that fit a 1500-byte MTU, most
 * of them, a large one for the rest (jumbo frames, GRO and TSO super-packets, up to the
 * snap length). The ring is one for all CPUs, so the reader gets the packets in the order
 * they were taken. */
#define EMIT(NAME)                                                                             \
	static __always_inline void emit_##NAME(struct __sk_buff *skb, struct capture_counters *c, \
						__u64 cap, int ll, __u16 proto, bool egress)           \
	{                                                                                      \
		struct capture_##NAME *r = bpf_ringbuf_reserve(&packets, sizeof(*r), 0);       \
                                                                                               \
		if (!r) {                                                                      \
			c->lost++;                                                             \
			return;                                                                \
		}                                                                              \
		if (cap > sizeof(r->data))                                                     \
			cap = sizeof(r->data);                                                 \
		/* The zero test must be on the register the helper gets: clang would rather  \
		 * reuse an earlier comparison, which the verifier does not carry over. */     \
		asm volatile("" : "+r"(cap));                                                  \
		/* Through skb_header_pointer: the part of the packet in pages comes too. */   \
		if (cap == 0 || bpf_skb_load_bytes(skb, 0, r->data, cap)) {                    \
			bpf_ringbuf_discard(r, 0);                                             \
			c->lost++;                                                             \
			return;                                                                \
		}                                                                              \
		r->meta.ktime_ns = bpf_ktime_get_ns();                                         \
		r->meta.len = skb->len;                                                        \
		r->meta.caplen = cap;                                                          \
		r->meta.ifindex = skb->ifindex | ifindex_tag;                                  \
		r->meta.protocol = proto;                                                      \
		r->meta.pkt_type = egress ? PACKET_OUTGOING : skb->pkt_type;                   \
		r->meta.link_len = ll;                                                         \
		bpf_ringbuf_submit(r, 0);                                                      \
	}

EMIT(small)
EMIT(large)

static __always_inline void capture(struct __sk_buff *skb, bool egress)
{
	__u32 zero = 0;
	struct capture_counters *c = bpf_map_lookup_elem(&totals, &zero);
	struct flow_classes *fc = classes();
	__u16 proto = bpf_ntohs(skb->protocol);
	enum look l;
	int ll;

	if (!c || !fc)
		return;
	c->seen++;
	if (!(proto == ETH_P_IP && (families & 1)) && !(proto == ETH_P_IPV6 && (families & 2)))
		return;
	ll = link_len(skb);
	l = fast(fc, skb, proto, ll);
	if (l == NO || (l == SLOW && !slow(fc, skb, proto)))
		return;
	c->matched++;
	if (ll < 0) {
		c->lost++; /* where its network header starts is unknown: no use copying it */
		return;
	}

	__u64 cap = skb->len;

	if (cap > ll + snap_net)
		cap = ll + snap_net;
	if (cap <= sizeof(((struct capture_small *)0)->data))
		emit_small(skb, c, cap, ll, proto, egress);
	else
		emit_large(skb, c, cap, ll, proto, egress);
}

SEC("tcx/ingress")
int capture_ingress(struct __sk_buff *skb)
{
	capture(skb, false);
	return TCX_NEXT;
}

SEC("tcx/egress")
int capture_egress(struct __sk_buff *skb)
{
	capture(skb, true);
	return TCX_NEXT;
}
