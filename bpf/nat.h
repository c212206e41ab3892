/* nat: following the flow through address translation. A translated packet (DNAT to a
 * container, a Service's backend, a redirect to a local port) no longer carries the
 * flow's address and port, and once it crosses into another namespace it no longer
 * carries its conntrack entry either (the veth scrubs it). So the entry is read while the
 * packet still has it: each end of its original direction that is an endpoint of the flow
 * makes the matching end of the reply direction one too (the DNAT's backend, the SNAT's
 * source), added to the flow's maps by the program itself, before the packet reaches the
 * next namespace, and told to user space.
 *
 * Included after flow.h and the header that defines struct ct_tuple (kdrop.h). */
#ifndef NAT_H
#define NAT_H

/* Endpoints the programs learn are numbered from here until user space, told of them,
 * numbers them as the flow's own. */
#define FLOW_LEARNED_ID 0x1000000
__u32 learned_count;

/* nat_netns is the namespace whose translations are the flow's: the one diagnosed (0:
 * any). Another namespace's connections to the same addresses (containers of a second
 * network with the same ones, a test's beside this one) are not the flow's, and neither
 * are the endpoints their translations would teach. */
volatile const __u32 nat_netns;

static __always_inline bool nat_here(__u32 netns)
{
	return !nat_netns || netns == nat_netns;
}

/* ct_load reads n bytes (1, 2 or 8) at off in conntrack entry ct, cast with
 * bpf_rdonly_cast: a plain load, no helper call. */
static __always_inline __u64 ct_load(const void *ct, __u32 off, int n)
{
	if (n == 1)
		return load8(ct, off);
	if (n == 2)
		return load16(ct, off);
	return *(const volatile __u64 *)((const __u8 *)ct + off);
}

/* l3_family is flow.h's family of a conntrack tuple's l3num, 0 when it is neither IPv4
 * nor IPv6. */
static __always_inline __u8 l3_family(__u16 l3num)
{
	return l3num == AF_INET ? 4 : l3num == AF_INET6 ? 6 : 0;
}

/* ends_may_match says whether an end of a connection has a port of the flow's, by the
 * bitmaps (false: none of its ends can be an endpoint), from its protocol, its two
 * directions' families and its four ports. Every translated packet on the host comes here
 * (a NAT gateway's, a Docker host's), before any address is copied or looked up: on the
 * bench's flood DNATed into a container, the learning program took 171 ns per packet when
 * it copied both tuples and looked their ends up first. */
static __always_inline bool ends_may_match(__u8 proto, __u16 l3orig, __u16 l3reply, __be16 osport, __be16 odport,
					   __be16 rsport, __be16 rdport)
{
	struct flow_classes *fc = classes();
	int co = class_of(l3_family(l3orig), proto), cr = class_of(l3_family(l3reply), proto);

	if (!fc || co == CLASS_NONE || cr == CLASS_NONE)
		return false;
	return port_in(fc, co, odport) || port_in(fc, co, osport) || port_in(fc, cr, rsport) || port_in(fc, cr, rdport);
}

/* nat_glance is ends_may_match for conntrack entry ct, read with plain loads
 * (bpf_rdonly_cast, 6.2+) rather than copied. */
static __always_inline bool nat_glance(const struct nf_conn *ct)
{
	const void *c = bpf_rdonly_cast(ct, bpf_core_type_id_kernel(struct nf_conn));
	__u32 t0 = bpf_core_field_offset(struct nf_conn, tuplehash) +
		   bpf_core_field_offset(struct nf_conntrack_tuple_hash, tuple);
	__u32 t1 = t0 + bpf_core_type_size(struct nf_conntrack_tuple_hash);

	return ends_may_match(ct_load(c, t0 + offsetof(struct ct_tuple, proto), 1),
			      ct_load(c, t0 + offsetof(struct ct_tuple, l3num), 2),
			      ct_load(c, t1 + offsetof(struct ct_tuple, l3num), 2),
			      ct_load(c, t0 + offsetof(struct ct_tuple, sport), 2),
			      ct_load(c, t0 + offsetof(struct ct_tuple, dport), 2),
			      ct_load(c, t1 + offsetof(struct ct_tuple, sport), 2),
			      ct_load(c, t1 + offsetof(struct ct_tuple, dport), 2));
}

/* nat_ct is the skb's conntrack entry when the connection is translated and may be the
 * flow's (where nat_glance can tell), else 0. btf says skb is a tp_btf argument: its _nfct
 * is a plain load, and most packets end there. */
static __always_inline struct nf_conn *nat_ct(struct sk_buff *skb, bool btf)
{
	unsigned long nfct;
	struct nf_conn *ct;

	if (!bpf_core_field_exists(skb->_nfct))
		return 0;
	nfct = btf ? skb->_nfct : BPF_CORE_READ(skb, _nfct);
	ct = (struct nf_conn *)(nfct & ~7UL);
	if (!ct)
		return 0;
	if (bpf_rdonly_cast && !flow_probe_read) {
		const void *c = bpf_rdonly_cast(ct, bpf_core_type_id_kernel(struct nf_conn));

		if (!(ct_load(c, bpf_core_field_offset(struct nf_conn, status), 8) & (IPS_SRC_NAT | IPS_DST_NAT)))
			return 0;
		return nat_glance(ct) ? ct : 0;
	}
	if (!(BPF_CORE_READ(ct, status) & (IPS_SRC_NAT | IPS_DST_NAT)))
		return 0;
	return ct;
}

static __always_inline bool ct_tuples(struct nf_conn *ct, struct ct_tuple *orig, struct ct_tuple *reply)
{
	return !bpf_probe_read_kernel(orig, sizeof(*orig), __builtin_preserve_access_index(&ct->tuplehash[0].tuple)) &&
	       !bpf_probe_read_kernel(reply, sizeof(*reply), __builtin_preserve_access_index(&ct->tuplehash[1].tuple));
}

/* tuple_end sets a to one end of a tuple (src or dst) as flow.h keeps addresses, and
 * returns the family, 0 when the tuple is not IPv4 or IPv6. */
static __always_inline __u8 tuple_end(const struct ct_tuple *t, bool dst, __u64 a[2])
{
	const __u8 *addr = dst ? t->daddr : t->saddr;

	if (t->l3num == AF_INET) {
		set_v4_mapped(a, addr);
		return 4;
	}
	if (t->l3num == AF_INET6) {
		__builtin_memcpy(a, addr, 16);
		return 6;
	}
	return 0;
}

/* flow_learn makes addr:port an endpoint of the flow, for every namespace; it returns its
 * id when it is new, 0 when it was one already or the map is full. */
static __always_inline __u32 flow_learn(const __u64 addr[2], __be16 port, __u8 proto, __u8 family)
{
	struct flow_classes *fc = classes();
	struct flow_key k;
	struct flow_end e = {};
	int c = class_of(family, proto);
	__u32 b = port_bit(port);

	if (!fc || c == CLASS_NONE)
		return 0;
	__builtin_memcpy(k.addr, addr, 16);
	k.port = port;
	k.proto = proto;
	k.family = family;
	/* Not atomic either (no fetching add in the oldest instruction set): two CPUs may give
	 * one id twice. User space numbers the endpoint it is told of for the report. */
	e.id = FLOW_LEARNED_ID + learned_count++;
	if (bpf_map_update_elem(&flow_ends, &k, &e, BPF_NOEXIST))
		return 0;
	/* After the endpoint, as the loader does: a program that sees the bit finds it. Not
	 * atomic (the objects are built for the oldest instruction set, which has no atomic
	 * OR): two CPUs learning at once may lose a bit, which user space sets again when it
	 * adds the endpoint it is told of. */
	fc->ports[c & 3][b >> 6] |= 1ULL << (b & 63);
	fc->any |= 1U << (c & 3);
	return e.id;
}

/* Which ends of a connection learn_nat made endpoints. */
#define LEARNED_REPLY_SRC 1
#define LEARNED_ORIG_DST 2
#define LEARNED_REPLY_DST 4
#define LEARNED_ORIG_SRC 8

/* What learn_nat found: the connection's tuples, whether it is the flow's, and which of
 * its ends it learned (LEARNED_*; 0: none new). Per CPU, in a map: the tuples and the addresses
 * they become would not fit the stack beside a drop's report. */
struct nat_seen {
	struct ct_tuple orig;
	struct ct_tuple reply;
	__u64 od[2], os[2], rs[2], rd[2]; /* orig.dst, orig.src, reply.src, reply.dst */
	bool flow;
	__u32 learned;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nat_seen);
} nat_scratch SEC(".maps");

/* The translated connections of the flow already told to user space, by conntrack entry:
 * each is told once, not with every packet. Least recently used go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} nat_told SEC(".maps");

/* first_telling says whether the flow's connection ct is not told yet, and marks it told. */
static __always_inline bool first_telling(struct nf_conn *ct)
{
	__u64 key = (__u64)ct;
	__u8 one = 1;

	return bpf_map_update_elem(&nat_told, &key, &one, BPF_NOEXIST) == 0;
}

/* learn_nat reads a translated connection's tuples and, when an end of its original
 * direction is an endpoint, learns the reply direction's matching end: the DNAT's backend
 * for the destination, the SNAT's address for the source. The reverse too, for a flow
 * given by its backend's address. It returns what it saw, 0 when the entry is unreadable. */
static __always_inline struct nat_seen *learn_nat(struct nf_conn *ct)
{
	__u32 zero = 0;
	struct nat_seen *s = bpf_map_lookup_elem(&nat_scratch, &zero);
	__u8 fam, rfam, proto;

	if (!s)
		return 0;
	s->flow = false;
	s->learned = 0;
	if (!ct_tuples(ct, &s->orig, &s->reply))
		return 0;
	proto = s->orig.proto;
	/* Without bpf_rdonly_cast nat_ct could not glance: the bitmaps first here. Where it
	 * did, this repeats it on the copies, for the few connections that passed. */
	if (!ends_may_match(proto, s->orig.l3num, s->reply.l3num, s->orig.sport, s->orig.dport, s->reply.sport,
			    s->reply.dport))
		return s;
	fam = tuple_end(&s->orig, true, s->od);
	tuple_end(&s->orig, false, s->os);
	rfam = tuple_end(&s->reply, false, s->rs);
	tuple_end(&s->reply, true, s->rd);
	if (!fam || !rfam || class_of(fam, proto) == CLASS_NONE)
		return s;
	/* The destination: orig.dst is what the client asked for, reply.src who answers. */
	if (end_id(s->od, s->orig.dport, proto, fam, 0)) {
		s->flow = true;
		if (flow_learn(s->rs, s->reply.sport, proto, rfam))
			s->learned |= LEARNED_REPLY_SRC;
	} else if (end_id(s->rs, s->reply.sport, proto, rfam, 0)) {
		s->flow = true;
		if (flow_learn(s->od, s->orig.dport, proto, fam))
			s->learned |= LEARNED_ORIG_DST;
	}
	/* The source: orig.src is the client, reply.dst where the answers go after SNAT. */
	if (end_id(s->os, s->orig.sport, proto, fam, 0)) {
		s->flow = true;
		if (flow_learn(s->rd, s->reply.dport, proto, rfam))
			s->learned |= LEARNED_REPLY_DST;
	} else if (end_id(s->rd, s->reply.dport, proto, rfam, 0)) {
		s->flow = true;
		if (flow_learn(s->os, s->orig.sport, proto, fam))
			s->learned |= LEARNED_ORIG_SRC;
	}
	return s;
}

#endif
