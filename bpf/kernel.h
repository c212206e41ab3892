/* The little of the kernel that kdrop.c and path.c touch, instead of a 130,000-line vmlinux.h.
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
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* bpf_map_update_elem's flags. */
#define BPF_ANY 0
#define BPF_NOEXIST 1

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

#define IFNAMSIZ 16

struct net_device {
	int ifindex;
	char name[IFNAMSIZ];
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

/* The kernel's in6_addr is a union of arrays; its first member is the bytes. */
struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

/* Addresses and ports of a socket: skc_rcv_saddr and skc_num are the local end (skc_num in
 * host byte order), skc_daddr and skc_dport the remote one. The v6 fields exist only with
 * CONFIG_IPV6. */
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

/* sk_protocol was an 8-bit bitfield before 5.6: read it with BPF_CORE_READ_BITFIELD_PROBED. */
struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned long _nfct; /* CONFIG_NF_CONNTRACK: struct nf_conn *, ctinfo in the low 3 bits */
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned char *head;
	unsigned char *data;
} __attribute__((preserve_access_index));

/* Connection tracking. Only where a tuple lies is relocated: a tuple itself is read whole
 * into struct ct_tuple (nat.h), whose layout (source address, port, family; destination
 * address, port, protocol, direction) has not changed since conntrack replaced
 * ip_conntrack; TestConntrackLayout holds it to the running kernel's BTF. */
struct nf_conntrack_tuple {
	__u8 opaque;
} __attribute__((preserve_access_index));

struct nf_conntrack_tuple_hash {
	struct nf_conntrack_tuple tuple;
} __attribute__((preserve_access_index));

struct nf_conn {
	struct nf_conntrack_tuple_hash tuplehash[2]; /* IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY */
	unsigned long status;
} __attribute__((preserve_access_index));

#define IPS_SRC_NAT (1 << 4)
#define IPS_DST_NAT (1 << 5)

/* The current task's network namespace: right for a route lookup a process makes (connect,
 * sendmsg), meaningless in softirq, where current is whichever task was interrupted. */
struct nsproxy {
	struct net *net_ns;
} __attribute__((preserve_access_index));

struct task_struct {
	struct nsproxy *nsproxy;
} __attribute__((preserve_access_index));

/* Route lookups. struct flowi is a union of flowi_common, flowi4 and flowi6, each starting
 * with flowi_common: the tracepoints pass a flowi4 or flowi6 pointer. On input lookups
 * (ip_route_input_slow, ip6_route_input) the ports, and for IPv4 the protocol, are 0 unless
 * a fib rule matches on them. */
struct flowi_common {
	int flowic_oif;
	int flowic_iif;
	__u8 flowic_proto;
} __attribute__((preserve_access_index));

union flowi_uli {
	struct {
		__be16 dport;
		__be16 sport;
	} ports;
} __attribute__((preserve_access_index));

struct flowi4 {
	struct flowi_common __fl_common;
	__be32 saddr;
	__be32 daddr;
	union flowi_uli uli;
} __attribute__((preserve_access_index));

struct flowi6 {
	struct flowi_common __fl_common;
	struct in6_addr daddr;
	struct in6_addr saddr;
	union flowi_uli uli;
} __attribute__((preserve_access_index));

/* The next hop a lookup chose: fib_nh_common since 5.3. nhc_gw_family is AF_INET, AF_INET6
 * or 0 (no gateway: the destination is on link). */
struct fib_nh_common {
	struct net_device *nhc_dev;
	__u8 nhc_gw_family;
	union {
		__be32 ipv4;
		struct in6_addr ipv6;
	} nhc_gw;
} __attribute__((preserve_access_index));

struct fib6_nh {
	struct fib_nh_common nh_common;
} __attribute__((preserve_access_index));

struct fib6_result {
	struct fib6_nh *nh;
	__u8 fib6_type;
} __attribute__((preserve_access_index));

struct fib6_table {
	__u32 tb6_id;
} __attribute__((preserve_access_index));

/* Route types (uapi rtnetlink.h), for IPv6 lookups, whose tracepoint reports a type, not
 * an error. */
#define RTN_BLACKHOLE 6
#define RTN_UNREACHABLE 7
#define RTN_PROHIBIT 8
#define RTN_THROW 9
#define RTN_NAT 10
#define RTN_XRESOLVE 11

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

/* Classic tracepoint records of the path points (path.c). Fields a kernel lacks are
 * tested with bpf_core_field_exists before they are read. */
struct trace_event_raw_net_dev_template {
	void *skbaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_fib_table_lookup {
	__u32 tb_id;
	int err;
	int oif;
	int iif;
	__u8 proto;
	__u8 src[4];
	__u8 dst[4];
	__u8 gw4[4];
	__u8 gw6[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	char name[IFNAMSIZ];
} __attribute__((preserve_access_index));

struct trace_event_raw_fib6_table_lookup {
	__u32 tb_id;
	int err;
	int oif;
	int iif;
	__u8 src[16];
	__u8 dst[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 proto;
	char name[IFNAMSIZ];
	__u8 gw[16];
} __attribute__((preserve_access_index));

struct trace_event_raw_inet_sock_set_state {
	const void *skaddr;
	int oldstate;
	int newstate;
} __attribute__((preserve_access_index));

struct trace_event_raw_sk_data_ready {
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_skb_copy_datagram_iovec {
	const void *skbaddr;
	int len;
} __attribute__((preserve_access_index));

enum sk_rst_reason {
	SK_RST_REASON_NOT_SPECIFIED = 0,
};

/* tcp_send_reset's own record, with reason, arrived in 6.10; before, the event shares the
 * record of its class, tcp_event_sk_skb. */
struct trace_event_raw_tcp_send_reset {
	const void *skbaddr;
	const void *skaddr;
	enum sk_rst_reason reason;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk_skb {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_icmp_send {
	const void *skbaddr;
	int type;
	int code;
} __attribute__((preserve_access_index));

#define AF_INET 2
#define AF_INET6 10

#define LOOPBACK_IFINDEX 1

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

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
