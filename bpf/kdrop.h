/* The records kdrop.c hands to user space. Go types are generated from this header by
 * bpf2go (-type event -type counters): change it here, then run go generate. */
#ifndef KDROP_H
#define KDROP_H

#define KDROP_STACK_DEPTH 32

/* Where event.netns came from: the packet's device is the best witness of the namespace
 * that dropped it, its socket the next best. */
enum netns_source {
	NETNS_NONE = 0,
	NETNS_DEV = 1,
	NETNS_SK = 2,
	NETNS_RX_SK = 3,
};

/* One kfree_skb of a packet of the flow. */
struct event {
	__u64 ktime_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64 location; /* the caller that dropped the packet */
	__u64 stack[KDROP_STACK_DEPTH]; /* innermost first, tracing frames included */
	__u32 stack_depth; /* frames in stack */
	__u32 reason; /* enum skb_drop_reason, subsystem in the high 16 bits */
	__u32 netns; /* inode of the packet's namespace, 0 when unknown */
	__u32 ifindex; /* skb->dev, 0 when the packet had no device */
	enum netns_source netns_from; /* which pointer gave netns */
	__u8 saddr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 family; /* 4 or 6 */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 tcp_flags; /* byte 13 of the TCP header, 0 for UDP */
	__u8 via_ct; /* matched by its conntrack entry's tuples, not its headers (nat.h) */
	__u32 end; /* the id of the endpoint it matched */
};

/* One direction of a connection, as struct nf_conntrack_tuple lays it out. */
struct ct_tuple {
	__u8 saddr[16]; /* union nf_inet_addr: IPv4 in the first 4 bytes */
	__be16 sport;
	__u16 l3num; /* AF_INET or AF_INET6 */
	__u8 daddr[16];
	__be16 dport;
	__u8 proto;
	__u8 dir;
};

/* A translation of the flow's connection the programs learned: a record of its own size
 * in the events ring, told apart from a drop by its length. */
struct translation {
	__u64 ktime_ns;
	struct ct_tuple orig;
	struct ct_tuple reply;
	__u32 netns; /* where the packet that showed it was */
	__u32 learned; /* which ends became endpoints: LEARNED_* (nat.h) */
	__u32 ifindex; /* the device it was leaving by; 0 when a drop showed it */
};

/* Totals, one slot per CPU, summed by user space. */
struct counters {
	__u64 seen; /* every kfree_skb the program ran for */
	__u64 matched; /* packets of the flow */
	__u64 lost; /* matched but the ring buffer was full */
};

#endif
