/* The records path.c hands to user space. Go types are generated from this header by
 * bpf2go (-type event -type counters -type point -type netns_source -type match): change
 * it here, then run go generate. */
#ifndef PATH_H
#define PATH_H

/* The tracepoints, one program each (two for the route: IPv4 and IPv6); also the index of
 * their counters. */
enum point {
	POINT_RECEIVE = 0, /* net:netif_receive_skb */
	POINT_ROUTE = 1, /* fib:fib_table_lookup */
	POINT_ROUTE6 = 2, /* fib6:fib6_table_lookup */
	POINT_SOCK_STATE = 3, /* sock:inet_sock_set_state */
	POINT_DATA_READY = 4, /* sock:sk_data_ready */
	POINT_COPIED = 5, /* skb:skb_copy_datagram_iovec */
	POINT_RESET = 6, /* tcp:tcp_send_reset */
	POINT_ICMP = 7, /* icmp:icmp_send */
	POINT_COUNT = 8,
};

/* Where event.netns came from. */
enum netns_source {
	NETNS_NONE = 0,
	NETNS_DEV = 1, /* the packet's device, or the device the route chose */
	NETNS_SK = 2, /* the socket */
	NETNS_NET = 3, /* the tracepoint's own struct net argument (fib6) */
	NETNS_RX = 4, /* the device of the flow packet received just before on this CPU */
	NETNS_TASK = 5, /* the current task: right in process context only */
};

/* How the event was found to belong to the flow. */
enum match {
	MATCH_HEADERS = 1, /* the packet's IP and TCP/UDP headers */
	MATCH_SOCKET = 2, /* the socket's addresses and ports: src is the local end */
	MATCH_LOOKUP = 3, /* the route lookup's flowi: addresses, protocol and ports */
	MATCH_RECEIVED = 4, /* a lookup without ports, for the flow packet being received */
};

/* One tracepoint hit of the flow. */
struct event {
	__u64 ktime_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u8 saddr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 daddr[16];
	__u8 gateway[16]; /* route lookups: the next hop's gateway, per gw_family */
	char ifname[16]; /* the packet's device, or the route's output device, at event time */
	enum point point;
	enum netns_source netns_from;
	enum match match;
	__u32 netns; /* inode of the event's namespace, 0 when unknown */
	__u32 ifindex; /* the device ifname names, 0 when none */
	__s32 iif; /* route lookups: flowi's input interface (1, loopback, for output lookups) */
	__s32 oif; /* route lookups: flowi's requested output interface, 0 when any */
	__u32 table; /* route lookups: the table looked up */
	__s32 err; /* route lookups: 0 or a negative errno (-EAGAIN: no route in this table) */
	__u32 len; /* skb_copy_datagram_iovec: bytes copied */
	__u32 rst_reason; /* tcp_send_reset: enum sk_rst_reason (6.10+), else 0 */
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 family; /* 4 or 6: of the addresses, so 4 for IPv4-mapped ones */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 tcp_flags; /* byte 13 of the TCP header, 0 for UDP and socket events */
	__u8 old_state; /* inet_sock_set_state: TCP states */
	__u8 new_state;
	__u8 icmp_type; /* icmp_send */
	__u8 icmp_code;
	__u8 gw_family; /* AF_INET, AF_INET6 or 0 (no gateway) */
};

/* The bytes above add up to 128: no padding for the program to leave unwritten. */
_Static_assert(sizeof(struct event) == 128, "struct event has padding");

/* Totals per point, one slot per CPU, summed by user space. */
struct counters {
	__u64 seen; /* every hit of the tracepoint */
	__u64 matched; /* hits of the flow */
	__u64 lost; /* matched but the ring buffer was full */
};

#endif
