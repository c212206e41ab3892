/* prefilter: the cheap first look at a packet, for the tp_btf programs that run for every
 * packet on the host (kfree_skb, netif_receive_skb). It reads the sk_buff's fields with
 * plain loads (the verifier allows them from a tp_btf argument, a PTR_TO_BTF_ID), and the IP
 * header and the ports through bpf_rdonly_cast with plain loads too (6.2+; about 25 ns less
 * per packet than a helper call, measured on 6.18) or else with one bpf_probe_read_kernel,
 * then looks up protocol and port in the flow's bitmaps and the address in its endpoints
 * (flow.h). It answers false only for a packet the full
 * parse (parse and matches in flow.h) would reject too; for anything it does not decide (IP
 * options, IPv6 extension headers, a header that is not where network_header says), it
 * answers true and the full parse decides, so that what is reported never changes.
 *
 * Included by flow.h, after the flow's maps and their lookups and OFFSET_UNSET. */
#ifndef PREFILTER_H
#define PREFILTER_H

/* An IP header without options or extension headers, and the ports right after it. */
union ip_ports {
	struct {
		struct ipv4_hdr ip;
		struct l4_ports ports;
	} v4;
	struct {
		struct ipv6_hdr ip;
		struct l4_ports ports;
	} v6;
	__u64 align;
};

/* v4_end says whether addr:port (as the header carries them) is an IPv4 endpoint of class c,
 * the bitmap first. */
static __always_inline bool v4_end(const struct flow_classes *fc, int c, __be16 port, __u32 addr)
{
	__u32 a[4] = {0, 0, bpf_htonl(0x0000ffff), addr};

	return port_in(fc, c, port) && end_id((__u64 *)a, port, c & 1 ? IPPROTO_UDP : IPPROTO_TCP, 4, 0);
}

static __always_inline bool v6_end(const struct flow_classes *fc, int c, __be16 port, const __u8 addr[16])
{
	__u64 a[2];

	__builtin_memcpy(a, addr, 16);
	return port_in(fc, c, port) && end_id(a, port, c & 1 ? IPPROTO_UDP : IPPROTO_TCP, 6, 0);
}

/* bpf_rdonly_cast (6.2+) makes an address a read-only pointer to a kernel type, which the
 * program reads with plain loads the JIT guards: no helper call per packet. Weak, so that
 * the programs load where it is missing and take the probe read instead. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* Only their type IDs are used: the loads go by offset, which the RFCs fix. */
struct iphdr {
} __attribute__((preserve_access_index));
struct ipv6hdr {
} __attribute__((preserve_access_index));
struct udphdr {
} __attribute__((preserve_access_index));

static __always_inline __u8 load8(const void *p, int off)
{
	return *(const volatile __u8 *)((const __u8 *)p + off);
}

static __always_inline __u16 load16(const void *p, int off)
{
	return *(const volatile __u16 *)((const __u8 *)p + off);
}

static __always_inline __u32 load32(const void *p, int off)
{
	return *(const volatile __u32 *)((const __u8 *)p + off);
}

/* What the first look at a header says: not the flow, maybe the flow (the full parse
 * decides), or look at the ports. */
enum verdict { NOT_FLOW, MAYBE_FLOW, PORTS };

/* ipv6_ext says whether an IPv6 next header is an extension header the full parse walks. */
static __always_inline bool ipv6_ext(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	       next == IPPROTO_FRAGMENT || next == IPPROTO_AH;
}

/* v4_header looks at an IPv4 header's first byte, protocol and fragment offset, cheapest
 * first. With options, the ports are further on: the full parse finds them. */
static __always_inline enum verdict v4_header(const struct flow_classes *fc, __u8 first, __u8 proto,
					      __be16 frag_off, __u16 ethertype)
{
	if ((ethertype != 0 && ethertype != ETH_P_IP) || (first & 0xf) < 5)
		return MAYBE_FLOW;
	if (!class_any(fc, class_of(4, proto)))
		return NOT_FLOW;
	if (bpf_ntohs(frag_off) & 0x1fff)
		return NOT_FLOW;
	return (first & 0xf) == 5 ? PORTS : MAYBE_FLOW;
}

static __always_inline bool v4_ends(const struct flow_classes *fc, __u8 proto, __be16 sport, __u32 saddr,
				    __be16 dport, __u32 daddr)
{
	int c = class_of(4, proto);

	return v4_end(fc, c, sport, saddr) || v4_end(fc, c, dport, daddr);
}

static __always_inline enum verdict v6_header(const struct flow_classes *fc, __u8 nexthdr, __u16 ethertype)
{
	if (ethertype != 0 && ethertype != ETH_P_IPV6)
		return MAYBE_FLOW;
	if (!family_any(fc, 6))
		return NOT_FLOW;
	if (ipv6_ext(nexthdr))
		return MAYBE_FLOW;
	return class_any(fc, class_of(6, nexthdr)) ? PORTS : NOT_FLOW;
}

/* maybe_flow_cast is maybe_flow_at through bpf_rdonly_cast. An IPv6 packet whose port
 * matches is passed on without comparing addresses: the full parse does that. */
static __always_inline bool maybe_flow_cast(const struct flow_classes *fc, const unsigned char *p, __u16 ethertype)
{
	const void *ip = bpf_rdonly_cast(p, bpf_core_type_id_kernel(struct iphdr));
	const void *l4;
	enum verdict v;
	__u8 first = load8(ip, 0);
	__u8 proto;

	switch (first >> 4) {
	case 4:
		proto = load8(ip, 9);
		if (first == 0x45 && (ethertype == 0 || ethertype == ETH_P_IP)) {
			/* Ports first: on a busy host most drops are other ports'. In a packet of
			 * another protocol or a later fragment what sits there does not matter:
			 * v4_header refuses it too. */
			l4 = bpf_rdonly_cast(p + 20, bpf_core_type_id_kernel(struct udphdr));
			if (!either_port(fc, class_of(4, proto), load16(l4, 0), load16(l4, 2)))
				return false;
		}
		v = v4_header(fc, first, proto, load16(ip, 6), ethertype);
		if (v != PORTS)
			return v == MAYBE_FLOW;
		l4 = bpf_rdonly_cast(p + 20, bpf_core_type_id_kernel(struct udphdr));
		return v4_ends(fc, proto, load16(l4, 0), load32(ip, 12), load16(l4, 2), load32(ip, 16));
	case 6:
		ip = bpf_rdonly_cast(p, bpf_core_type_id_kernel(struct ipv6hdr));
		proto = load8(ip, 6);
		v = v6_header(fc, proto, ethertype);
		if (v != PORTS)
			return v == MAYBE_FLOW;
		l4 = bpf_rdonly_cast(p + 40, bpf_core_type_id_kernel(struct udphdr));
		return either_port(fc, class_of(6, proto), load16(l4, 0), load16(l4, 2));
	}
	return true; /* not IP at network_header: the MAC header is the full parse's second chance */
}

/* maybe_flow_at looks at the IP header at p; ethertype as ip_version takes it (0: either). */
static __always_inline bool maybe_flow_at(const unsigned char *p, __u16 ethertype)
{
	struct flow_classes *fc = classes();
	union ip_ports h;
	enum verdict v;
	__u32 saddr, daddr;
	int c;

	if (!fc)
		return true;
	if (bpf_rdonly_cast && !flow_probe_read)
		return maybe_flow_cast(fc, p, ethertype);
	/* An IPv4 flow needs the IPv4 part only: fewer bytes to copy. */
	if (bpf_probe_read_kernel(&h, family_any(fc, 6) ? sizeof(h.v6) : sizeof(h.v4), p))
		return true;
	switch (h.v4.ip.version_ihl >> 4) {
	case 4:
		v = v4_header(fc, h.v4.ip.version_ihl, h.v4.ip.protocol, h.v4.ip.frag_off, ethertype);
		if (v != PORTS)
			return v == MAYBE_FLOW;
		__builtin_memcpy(&saddr, h.v4.ip.saddr, 4);
		__builtin_memcpy(&daddr, h.v4.ip.daddr, 4);
		return v4_ends(fc, h.v4.ip.protocol, h.v4.ports.sport, saddr, h.v4.ports.dport, daddr);
	case 6:
		v = v6_header(fc, h.v6.ip.nexthdr, ethertype);
		if (v != PORTS)
			return v == MAYBE_FLOW;
		c = class_of(6, h.v6.ip.nexthdr);
		return v6_end(fc, c, h.v6.ports.sport, h.v6.ip.saddr) || v6_end(fc, c, h.v6.ports.dport, h.v6.ip.daddr);
	}
	return true; /* not IP at network_header: the MAC header is the full parse's second chance */
}

/* maybe_flow_skb is the prefilter of find_l3's packets (network_header first). skb must be
 * a tp_btf argument. */
static __always_inline bool maybe_flow_skb(struct sk_buff *skb)
{
	__u16 ethertype = bpf_ntohs(skb->protocol);
	unsigned char *head;
	__u16 nh;

	if (ethertype != 0 && ethertype != ETH_P_IP && ethertype != ETH_P_IPV6)
		return false;
	head = skb->head;
	if (!head)
		return false;
	nh = skb->network_header;
	if (nh == OFFSET_UNSET)
		return true;
	return maybe_flow_at(head + nh, ethertype);
}

/* maybe_flow_received is the prefilter of find_l3_received's packets (skb->data first). */
static __always_inline bool maybe_flow_received(struct sk_buff *skb)
{
	__u16 ethertype = bpf_ntohs(skb->protocol);
	unsigned char *head, *data;

	if (ethertype != 0 && ethertype != ETH_P_IP && ethertype != ETH_P_IPV6)
		return false;
	head = skb->head;
	if (!head)
		return false;
	data = skb->data;
	if (data <= head || data - head >= OFFSET_UNSET)
		return true;
	return maybe_flow_at(data, ethertype);
}

#endif
