/* The little of the kernel that kdrop.c touches, instead of a 130,000-line vmlinux.h.
 *
 * Kernel structs carry preserve_access_index: clang records each field access as a CO-RE
 * relocation and the loader rewrites the offset from the running kernel's BTF, so only the
 * names and types of these fields must match, not their position. Fields are listed flat
 * even where the kernel nests them in anonymous unions (sk_buff's headers group): CO-RE
 * looks through anonymous members. Checked against 6.18 with
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c
 *
 * Wire headers (ethernet, IP, TCP, UDP) are plain structs: their layout is fixed by RFCs,
 * and ipv6hdr may live in a module's BTF, where a relocation against vmlinux would fail. */
#ifndef KDROP_KERNEL_H
#define KDROP_KERNEL_H

/* Our own fixed-width types: <linux/types.h> pulls <asm/types.h>, which lives under a
 * host-architecture directory that clang -target bpf does not search. */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

/* UAPI constants bpf_helpers.h users need (linux/bpf.h), stable by ABI. */
enum bpf_map_type {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

/* Empty when the kernel is built without CONFIG_NET_NS: test with bpf_core_field_exists. */
typedef struct {
	struct net *net;
} __attribute__((preserve_access_index)) possible_net_t;

struct net_device {
	int ifindex;
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct sock_common {
	possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned char *head;
} __attribute__((preserve_access_index));

enum skb_drop_reason {
	SKB_DROP_REASON_NOT_SPECIFIED = 2,
};

/* The classic tracepoint's record. rx_sk arrived in 6.12 and reason in 5.17: read them
 * only when bpf_core_field_exists says the running kernel has them. */
struct trace_event_raw_kfree_skb {
	void *skbaddr;
	void *location;
	void *rx_sk;
	unsigned short protocol;
	enum skb_drop_reason reason;
} __attribute__((preserve_access_index));

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_HOPOPTS 0
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH 51
#define IPPROTO_DSTOPTS 60

struct eth_hdr {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct ipv4_hdr {
	__u8 version_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct ipv6_hdr {
	__be32 version_class_label;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Hop-by-hop, routing and destination options: length in 8-octet units after the first 8. */
struct ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

/* Both TCP and UDP start with the ports. */
struct l4_ports {
	__be16 sport;
	__be16 dport;
};

#define TCP_FLAGS_OFFSET 13

#endif
