/* prefilter: the cheap first look at a packet, for the tp_btf programs that run for every
 * packet on the host (kfree_skb, netif_receive_skb). It reads the sk_buff's fields with
 * plain loads (the verifier allows them from a tp_btf argument, a PTR_TO_BTF_ID) and the IP
 * header and the ports with one bpf_probe_read_kernel, then compares protocol, port and
 * address. It answers false only for a packet the full parse (parse and matches in
 * flow.h) would reject too; for anything it does not decide (IP options, IPv6
 * extension headers, VLAN tags, a header that is not where network_header says), it
 * answers true and the full parse decides, so that what is reported never changes.
 *
 * Included by flow.h, after the flow_* constants and OFFSET_UNSET. */
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

/* The flow's IPv4 address in network byte order, and whether flow_addr holds one
 * (::ffff:a.b.c.d): an IPv4 packet or lookup can match only then. */
static __always_inline __u32 flow_v4(void)
{
	return ((const volatile __u32 *)flow_addr)[3];
}

static __always_inline bool flow_is_v4(void)
{
	const volatile __u32 *w = (const volatile __u32 *)flow_addr;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline bool is_flow_v6(const __u8 a[16])
{
	const volatile __u64 *f = (const volatile __u64 *)flow_addr;
	__u64 w[2];

	__builtin_memcpy(w, a, 16);
	return w[0] == f[0] && w[1] == f[1];
}

/* maybe_flow_at looks at the IP header at p; ethertype as ip_version takes it (0: either). */
static __always_inline bool maybe_flow_at(const unsigned char *p, __u16 ethertype)
{
	union ip_ports h;
	__u32 a;
	__u8 first;

	/* An IPv4 flow needs the IPv4 part only: fewer bytes to copy. */
	if (bpf_probe_read_kernel(&h, flow_family == 4 ? sizeof(h.v4) : sizeof(h.v6), p))
		return true;
	first = h.v4.ip.version_ihl;
	switch (first >> 4) {
	case 4:
		if ((ethertype != 0 && ethertype != ETH_P_IP) || (first & 0xf) < 5)
			return true;
		/* Cheapest first: protocol, fragment, then ports and addresses. */
		if (h.v4.ip.protocol != flow_proto || flow_family != 4)
			return false;
		if (bpf_ntohs(h.v4.ip.frag_off) & 0x1fff)
			return false;
		if ((first & 0xf) != 5)
			return true; /* options: the ports are further on */
		if (h.v4.ports.sport == flow_port) {
			__builtin_memcpy(&a, h.v4.ip.saddr, 4);
			if (a == flow_v4() && flow_is_v4())
				return true;
		}
		if (h.v4.ports.dport == flow_port) {
			__builtin_memcpy(&a, h.v4.ip.daddr, 4);
			if (a == flow_v4() && flow_is_v4())
				return true;
		}
		return false;
	case 6:
		if (ethertype != 0 && ethertype != ETH_P_IPV6)
			return true;
		if (flow_family != 6)
			return false;
		switch (h.v6.ip.nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_FRAGMENT:
		case IPPROTO_AH:
			return true; /* extension headers: the full parse walks them */
		}
		if (h.v6.ip.nexthdr != flow_proto)
			return false;
		return (h.v6.ports.sport == flow_port && is_flow_v6(h.v6.ip.saddr)) ||
		       (h.v6.ports.dport == flow_port && is_flow_v6(h.v6.ip.daddr));
	}
	return true; /* not IP at network_header: the MAC header is the full parse's second chance */
}

static __always_inline bool vlan_ethertype(__u16 ethertype)
{
	return ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD;
}

/* maybe_flow_skb is the prefilter of find_l3's packets (network_header first). skb must be
 * a tp_btf argument. */
static __always_inline bool maybe_flow_skb(struct sk_buff *skb)
{
	__u16 ethertype = bpf_ntohs(skb->protocol);
	unsigned char *head;
	__u16 nh;

	if (ethertype != 0 && ethertype != ETH_P_IP && ethertype != ETH_P_IPV6 && !vlan_ethertype(ethertype))
		return false;
	head = skb->head;
	if (!head)
		return false;
	nh = skb->network_header;
	if (nh == OFFSET_UNSET)
		return true;
	return maybe_flow_at(head + nh, vlan_ethertype(ethertype) ? 0 : ethertype);
}

/* maybe_flow_received is the prefilter of find_l3_received's packets (skb->data first). */
static __always_inline bool maybe_flow_received(struct sk_buff *skb)
{
	__u16 ethertype = bpf_ntohs(skb->protocol);
	unsigned char *head, *data;

	if (ethertype != 0 && ethertype != ETH_P_IP && ethertype != ETH_P_IPV6 && !vlan_ethertype(ethertype))
		return false;
	head = skb->head;
	if (!head)
		return false;
	data = skb->data;
	if (vlan_ethertype(ethertype) || data <= head || data - head >= OFFSET_UNSET)
		return true;
	return maybe_flow_at(data, ethertype);
}

#endif
