/* capture.h: what capture.c hands to user space with each packet of the flow, and its
 * counters. The Go side (stages/arrival) reads both through bpf2go's generated types. */
#ifndef CAPTURE_H
#define CAPTURE_H

/* capture_meta comes first in each record; caplen bytes of the packet follow it, from its
 * link header on (link_len bytes of it: 14 on Ethernet and loopback, 0 on IP devices). */
struct capture_meta {
	__u64 ktime_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 len;      /* the packet's length from its link header on */
	__u32 caplen;   /* how much of it follows */
	__u32 ifindex;
	__u16 protocol; /* skb->protocol, host byte order */
	__u8 pkt_type;  /* PACKET_HOST, ... as the socket API numbers them; egress: PACKET_OUTGOING */
	__u8 link_len;  /* bytes before the network header */
};

/* A longer link header than any device has (Ethernet with two VLAN tags is 22), and the
 * most bytes of a packet copied from its network header on (the packet socket's ring frame
 * held as many). */
#define MAX_LINK_LEN 128
#define CAPTURE_SNAP_MAX 16304

/* The records of the ring buffer, one per packet: for packets that fit a 1500-byte MTU, and
 * for the longer ones. */
struct capture_small {
	struct capture_meta meta;
	__u8 data[MAX_LINK_LEN + 1500];
};

struct capture_large {
	struct capture_meta meta;
	__u8 data[MAX_LINK_LEN + CAPTURE_SNAP_MAX];
};

/* Per CPU: every packet the programs ran for, the flow's among them, and the flow's packets
 * the ring buffer had no room for. */
struct capture_counters {
	__u64 seen;
	__u64 matched;
	__u64 lost;
};

#endif
