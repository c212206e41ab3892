/* capture.h: what capture.c hands to user space with each packet of the flow, and its
 * counters. The Go side (stages/arrival) reads both through bpf2go's generated types. */
#ifndef CAPTURE_H
#define CAPTURE_H

/* capture_meta comes first in each perf sample; caplen bytes of the packet follow it, from
 * its link header on (link_len bytes of it: 14 on Ethernet and loopback, 0 on IP devices). */
struct capture_meta {
	__u64 ktime_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 len;      /* the packet's length from its link header on */
	__u32 caplen;   /* how much of it follows */
	__u32 ifindex;
	__u16 protocol; /* skb->protocol, host byte order */
	__u8 pkt_type;  /* PACKET_HOST, ... as the socket API numbers them; egress: PACKET_OUTGOING */
	__u8 link_len;
};

/* Per CPU: every packet the programs ran for, and the flow's packets the perf buffer had no
 * room for (the reader counts its own losses too; these are the kernel's). */
struct capture_counters {
	__u64 seen;
	__u64 matched;
	__u64 lost;
};

#endif
