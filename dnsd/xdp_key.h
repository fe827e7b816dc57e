/* dnsd/xdp_key.h - the key of the XDP program's `listen` map, shared by
 * the program (xdp_filter.bpf.c) and dnsd (xdp.c): one UDP listen address.
 * Plain fixed-size types only, so that both compilers lay it out alike. */
#ifndef DNSD_XDP_KEY_H
#define DNSD_XDP_KEY_H

#include <linux/types.h>

#define XDP_KEY_V4  4
#define XDP_KEY_V6  6
#define XDP_KEY_MAX 64          /* listen addresses (CONFIG_LIST_MAX) */

struct xdp_key {
	__u16 family;           /* XDP_KEY_V4 or XDP_KEY_V6 */
	__be16 port;            /* network order */
	__u8 addr[16];          /* IPv4 in the first 4; all zero: any address */
};

#endif
