//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* flowcheck: flow.h's decision on one packet, for the tests only. kdrop.c and path.c run
 * the same code on tracepoints, which BPF_PROG_TEST_RUN cannot feed; a tc program can be
 * fed any frame, and bpf_cast_to_kern_ctx hands it the sk_buff behind it. The tests feed it
 * the crafted packets every other matcher of the flow sees (stages/arrival), so that the
 * kernel stages and the capture cannot disagree on what the flow is. */
#include "kernel.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#include "flow.h"

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* What check returns. */
#define CHECK_NOT_FLOW 0 /* the prefilter refuses it */
#define CHECK_PARSE_NO 1 /* the prefilter lets it by, the full parse refuses it */
#define CHECK_FLOW 2     /* the flow's */
#define CHECK_MISSED 3   /* the full parse takes it, the prefilter refused it: a bug */

SEC("tc")
int check(void *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	struct packet p = {};
	bool maybe = maybe_flow_skb(skb);
	bool flow = parse(skb, &p, false) && matches(&p);

	if (flow)
		return maybe ? CHECK_FLOW : CHECK_MISSED;
	return maybe ? CHECK_PARSE_NO : CHECK_NOT_FLOW;
}
