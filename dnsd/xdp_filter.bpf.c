/* dnsd/xdp_filter.bpf.c - the XDP program of dnsd's AF_XDP mode (xdp.c).
 *
 * Compiled with clang -target bpf and embedded in dnsd (the Makefile turns
 * the object into build/dnsd/xdp_filter_obj.c). Runs in the kernel for
 * every packet that reaches the interface: it hands to dnsd's AF_XDP
 * socket of the receiving queue only what dnsd can answer from user space
 * without the kernel's UDP stack - a plain UDP datagram (IPv4 without
 * options or fragments, IPv6 without extension headers) to one of dnsd's
 * unicast listen addresses and ports, not larger than `listen`'s value.
 * Everything else, ARP and neighbour discovery, TCP, fragments, other
 * ports, broadcast and multicast, takes the normal path (XDP_PASS), and so
 * does a datagram when no socket is bound to its queue: the UDP sockets
 * dnsd keeps on the same addresses answer those. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "dnsd/xdp_key.h"

/* Queue index -> AF_XDP socket; dnsd sizes it to the interface's queues. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* dnsd's UDP listen addresses (an all-zero address: any) -> the largest
 * UDP payload to redirect. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDP_KEY_MAX);
	__type(key, struct xdp_key);
	__type(value, __u32);
} listen SEC(".maps");

static __always_inline int ours(struct xdp_key *k, __u32 payload)
{
	__u32 *max = bpf_map_lookup_elem(&listen, k);

	if (!max) {
		__builtin_memset(k->addr, 0, sizeof(k->addr));
		max = bpf_map_lookup_elem(&listen, k);
	}
	return max && payload >= 12 && payload <= *max;
}

SEC("xdp")
int dnsd_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct xdp_key k = { 0 };
	struct udphdr *udp;
	__u32 ulen;

	/* Broadcast and multicast stay with the sockets: an answer must come
	 * from a unicast address, which the kernel picks there. */
	if ((void *)(eth + 1) > end || (eth->h_dest[0] & 1))
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl != 5 ||
		    ip->protocol != IPPROTO_UDP ||
		    (ip->frag_off & bpf_htons(0x3fff)) ||  /* MF or an offset */
		    (bpf_ntohl(ip->daddr) >> 28) >= 14)   /* 224/4, 240/4 */
			return XDP_PASS;
		udp = (void *)(ip + 1);
		k.family = XDP_KEY_V4;
		__builtin_memcpy(k.addr, &ip->daddr, 4);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6 ||
		    ip6->nexthdr != IPPROTO_UDP ||
		    ip6->daddr.in6_u.u6_addr8[0] == 0xff)  /* multicast */
			return XDP_PASS;
		udp = (void *)(ip6 + 1);
		k.family = XDP_KEY_V6;
		__builtin_memcpy(k.addr, &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}
	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	/* What the UDP header claims must be there. */
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || (void *)udp + ulen > end)
		return XDP_PASS;
	k.port = udp->dest;
	if (!ours(&k, ulen - sizeof(*udp)))
		return XDP_PASS;
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
