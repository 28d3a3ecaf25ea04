/* SPDX-License-Identifier: MIT */
/*
 * The client's IP address. It is the TCP peer, unless the peer is a configured trusted
 * proxy: then X-Forwarded-For (or, if absent, Forwarded's for=, RFC 7239) is read from the
 * right, skipping addresses that are themselves trusted proxies, and the first other one
 * is the client. Reading from the right matters: anything left of the last trusted hop was
 * written by the client and could name anyone. A header that does not parse falls back to
 * the nearest address that did. Any thread; the proxy list is read-only after start-up.
 */
#ifndef POLICY_POL_CLIENTIP_H
#define POLICY_POL_CLIENTIP_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/str.h"

struct pol_proxies;

/* Parses "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8" (addresses or CIDR blocks, comma or space
 * separated; empty: none). ERR_INVAL with the bad item in err. */
int pol_proxies_parse(const char *list, struct pol_proxies **out, char *err, size_t cap);
void pol_proxies_free(struct pol_proxies *p);

/* Writes the client address as text into out[cap >= 64]. p may be NULL (no proxies). */
void pol_client_ip(const struct pol_proxies *p, const struct sockaddr *peer, struct str xff,
                   struct str forwarded, char *out, size_t cap);

/* The key per-IP rules count a client under (rate limits, lockout, the failing-address
 * sketch): an IPv4 address masked to v4_bits, an IPv6 address to v6_bits (a host given a
 * /64 cannot rotate through it past every per-IP budget), as text, "ADDR/BITS" when masked
 * ("ADDR" alone at a full length). An IPv4-mapped IPv6 address counts as IPv4. Anything that
 * is not an address is copied as it is. out[cap >= 64]. */
void pol_ip_key(const char *ip, unsigned v4_bits, unsigned v6_bits, char *out, size_t cap);

#endif
