/* flow: what kdrop.c, path.c and capture.c share to find the flow's packets: the flow's
 * endpoints, the headers of a packet (IPv4, IPv6 with its common extension headers, the TCP
 * or UDP ports), the comparison with the endpoints, and the namespace of a device or a
 * socket.
 *
 * Included after kernel.h and the bpf/ helper headers; it includes prefilter.h, the cheap
 * first look that must agree with parse and matches. */
#ifndef FLOW_H
#define FLOW_H

/* The flow is a set of endpoints (address, port, protocol, and the namespace where one
 * applies), in two maps the loader fills before the programs load and adds to while they
 * run, as the flow grows (a translated address, another namespace): maps, not load-time
 * constants, so that growing needs no reload.
 *
 * flow_ends holds the endpoints; a packet is the flow's when either end is one of them.
 * flow_classes is its summary for the prefilters, which look at every packet on the host:
 * per family and protocol, a bitmap of the endpoints' ports. An array map of one element,
 * whose lookup the verifier inlines: a port is tested with a few loads and no call, as the
 * constants were. The loader sets an endpoint's bit after the endpoint, so a prefilter that
 * sees the bit finds the endpoint. stages/arrival's classic filter and nftrace's rules are
 * generated from the same endpoints, and one test feeds them all the same packets. */
#define FLOW_MAX_ENDS 1024

struct flow_key {
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* 4 or 6 */
};

/* An endpoint's namespace is checked where the program knows the packet's cheaply: kdrop
 * does; the prefilters and path's points take it for any namespace, and their events carry
 * the namespace for user space. */
struct flow_end {
	__u32 id;    /* from 1, in the order the endpoints were added */
	__u32 netns; /* the inode of the namespace where it applies; 0: any */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FLOW_MAX_ENDS);
	__type(key, struct flow_key);
	__type(value, struct flow_end);
} flow_ends SEC(".maps");

/* The four classes of endpoint: IPv4 TCP, IPv4 UDP, IPv6 TCP, IPv6 UDP. */
#define FLOW_CLASSES 4
#define CLASS_NONE -1

/* ports[class] has bit port_bit(n) set when an endpoint of that class has the port whose two
 * bytes, as the header carries them (network order), load as the number n. The bitmap is a
 * filter, not the set: ports that share a bit go on to the lookup in flow_ends, which
 * decides. 4096 bits per class keep the value at 2 KiB (a bit per port took 32 KiB per
 * object, copied whole at every endpoint added) while a flow of a few dozen ports still
 * sends almost no other port to the lookup. */
#define FLOW_PORT_BITS 4096

struct flow_classes {
	__u32 any; /* bit class: the class has an endpoint */
	__u32 pad;
	__u64 ports[FLOW_CLASSES][FLOW_PORT_BITS / 64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_classes);
} flow_classes SEC(".maps");

/* Tests set it to take the prefilter's probe-read path where bpf_rdonly_cast exists. */
volatile const bool flow_probe_read;

/* The headers of one packet (or the ends of one socket), ports in network byte order. */
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
/* How many IPv6 extension headers are walked to the transport header: the capture's
 * classic filter walks as many (maxExtHeaders in stages/arrival), so that every stage
 * takes the same packets for the flow's. */
#define MAX_IPV6_EXT 6

/* ---- The flow. ---- */

static __always_inline struct flow_classes *classes(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&flow_classes, &zero);
}

/* class_of is the class of a family and protocol, CLASS_NONE for a protocol no endpoint
 * can have. */
static __always_inline int class_of(__u8 family, __u8 proto)
{
	int c = family == 6 ? 2 : 0;

	if (proto == IPPROTO_TCP)
		return c;
	if (proto == IPPROTO_UDP)
		return c + 1;
	return CLASS_NONE;
}

static __always_inline bool class_any(const struct flow_classes *fc, int c)
{
	return c != CLASS_NONE && (fc->any >> (c & 3)) & 1;
}

/* family_any says whether the flow has an endpoint of the family (4 or 6). */
static __always_inline bool family_any(const struct flow_classes *fc, __u8 family)
{
	return (fc->any >> (family == 6 ? 2 : 0)) & 3;
}

/* port_bit spreads the 16 bits over FLOW_PORT_BITS (Knuth's multiplicative hash, whose
 * top bits are the best mixed): neighbouring ports, as a service's often are, take
 * different bits. bpf.Flow computes the same in Go. */
static __always_inline __u32 port_bit(__be16 port)
{
	return ((__u32)(__u16)port * 40503U & 0xffff) >> 4;
}

static __always_inline bool port_in(const struct flow_classes *fc, int c, __be16 port)
{
	__u32 b = port_bit(port);

	return (fc->ports[c & 3][b >> 6] >> (b & 63)) & 1;
}

/* either_port says whether a packet of class c may be the flow's by its ports. The bitmaps
 * alone decide: a class without endpoints has none of its bits set. */
static __always_inline bool either_port(const struct flow_classes *fc, int c, __be16 sport, __be16 dport)
{
	return c != CLASS_NONE && (port_in(fc, c, sport) || port_in(fc, c, dport));
}

/* end_id is the id of the endpoint at addr:port, 0 when there is none or it applies in
 * another namespace than netns (0: unknown, any). */
static __always_inline __u32 end_id(const __u64 addr[2], __be16 port, __u8 proto, __u8 family, __u32 netns)
{
	struct flow_key k;
	struct flow_end *e;

	__builtin_memcpy(k.addr, addr, 16);
	k.port = port;
	k.proto = proto;
	k.family = family;
	e = bpf_map_lookup_elem(&flow_ends, &k);
	if (!e || (e->netns && netns && e->netns != netns))
		return 0;
	return e->id;
}

/* matches_in is the id of the endpoint either end of p is, 0 when neither is. */
static __always_inline __u32 matches_in(const struct packet *p, __u32 netns)
{
	struct flow_classes *fc = classes();
	int c = class_of(p->family, p->proto);
	__u32 id = 0;

	if (!fc || !class_any(fc, c))
		return 0;
	if (port_in(fc, c, p->sport))
		id = end_id(p->saddr, p->sport, p->proto, p->family, netns);
	if (!id && port_in(fc, c, p->dport))
		id = end_id(p->daddr, p->dport, p->proto, p->family, netns);
	return id;
}

/* Either end is one of the flow's endpoints: "host A and port P" for each. */
static __always_inline bool matches(const struct packet *p)
{
	return matches_in(p, 0) != 0;
}

#include "prefilter.h"

/* ---- Packet headers. ---- */

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

/* l3_from_mac finds the IP header behind the Ethernet header. A frame that still carries
 * an 802.1Q or 802.1ad tag in the packet is not read through: the stack strips a tag before
 * anything else looks at a frame, and the capture does not read through one either (one
 * decision for every stage; TestFlowHAgreesWithCapture). */
static __always_inline __u8 l3_from_mac(unsigned char *head, __u16 mh, __u32 *off)
{
	struct eth_hdr eth;
	__u16 ethertype;
	__u32 l3;
	__u8 v;

	if (mh == OFFSET_UNSET)
		return 0;
	if (bpf_probe_read_kernel(&eth, sizeof(eth), head + mh))
		return 0;
	l3 = mh + sizeof(eth);
	ethertype = bpf_ntohs(eth.proto);
	if (ethertype != ETH_P_IP && ethertype != ETH_P_IPV6)
		return 0;
	v = ip_version(head, l3, ethertype);
	if (v)
		*off = l3;
	return v;
}

/* ip_ethertype says whether skb->protocol may be IP (0: a packet the stack is still
 * building has none yet). */
static __always_inline bool ip_ethertype(__u16 ethertype)
{
	return ethertype == 0 || ethertype == ETH_P_IP || ethertype == ETH_P_IPV6;
}

/* find_l3 sets *off to the IP header's offset from skb->head and returns the IP version,
 * or 0 when the packet is not IP. network_header is right for almost every drop; when it
 * is unset or points at something that is not IP (a VLAN-tagged frame before untagging,
 * an skb still being built), the MAC header is the second chance. */
static __always_inline __u8 find_l3(struct sk_buff *skb, unsigned char *head, __u32 *off)
{
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 ethertype = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	__u8 v;

	if (!ip_ethertype(ethertype))
		return 0;
	if (nh != OFFSET_UNSET) {
		v = ip_version(head, nh, ethertype);
		if (v) {
			*off = nh;
			return v;
		}
	}
	return l3_from_mac(head, BPF_CORE_READ(skb, mac_header), off);
}

/* find_l3_received is find_l3 at netif_receive_skb, which fires before
 * __netif_receive_skb_core resets network_header: until then it holds whatever the
 * sender's stack (veth) or nothing (a NIC's fresh buffer) left there. eth_type_trans has
 * pulled the Ethernet header, so skb->data is the network header; the MAC header, which
 * eth_type_trans set, is the second chance. */
static __always_inline __u8 find_l3_received(struct sk_buff *skb, unsigned char *head, __u32 *off)
{
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u16 ethertype = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	__u8 v;

	if (!ip_ethertype(ethertype))
		return 0;
	if (data > head && data - head < OFFSET_UNSET) {
		v = ip_version(head, data - head, ethertype);
		if (v) {
			*off = data - head;
			return v;
		}
	}
	return l3_from_mac(head, BPF_CORE_READ(skb, mac_header), off);
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
		if (!ipv6_ext(next))
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

/* parse fills p from skb's headers; received says the skb is at netif_receive_skb. */
static __always_inline bool parse(struct sk_buff *skb, struct packet *p, bool received)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	struct l4_ports ports;
	__u32 l3 = 0, l4;
	__u8 v;

	if (!head)
		return false;
	v = received ? find_l3_received(skb, head, &l3) : find_l3(skb, head, &l3);
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

/* ---- Namespaces. ---- */

static __always_inline __u32 net_inum(struct net *net)
{
	return net ? BPF_CORE_READ(net, ns.inum) : 0;
}

/* Without CONFIG_NET_NS possible_net_t is empty: every namespace reads as 0, unknown. */
static __always_inline __u32 dev_netns(struct net_device *dev)
{
	if (!dev || !bpf_core_field_exists(dev->nd_net.net))
		return 0;
	return net_inum(BPF_CORE_READ(dev, nd_net.net));
}

static __always_inline __u32 sk_netns(struct sock *sk)
{
	if (!sk || !bpf_core_field_exists(sk->__sk_common.skc_net.net))
		return 0;
	return net_inum(BPF_CORE_READ(sk, __sk_common.skc_net.net));
}

#endif
