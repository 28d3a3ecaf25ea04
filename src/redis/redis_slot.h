/* SPDX-License-Identifier: MIT */
/*
 * Redis Cluster's rules that need no connection (https://redis.io/docs/reference/cluster-spec/):
 * the hash slot of a key (CRC16 XMODEM modulo 16384, of the part between the first '{' and
 * the next '}' when that part is not empty: a hash tag), and the redirections a node
 * answers with ("MOVED <slot> <host>:<port>", "ASK <slot> <host>:<port>"). Pure; any thread.
 */
#ifndef REDIS_REDIS_SLOT_H
#define REDIS_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define REDIS_SLOTS    16384
#define REDIS_HOST_MAX 255

unsigned redis_key_slot(const void *key, size_t n);

enum redis_redirect { REDIS_MOVED = 1, REDIS_ASK = 2 };

/* An error reply's text as a redirection: ERR_OK with *kind, *slot (< REDIS_SLOTS), host
 * (NUL-terminated, "" when the node did not say: the one that answered) and *port
 * (1-65535); ERR_INVAL for anything else. An IPv6 address comes as is, the port after its
 * last colon. */
int redis_redirect_parse(const char *s, size_t n, enum redis_redirect *kind, unsigned *slot,
                         char host[REDIS_HOST_MAX + 1], int *port);

/* Whether a CLUSTER INFO answer (n bytes of "field:value" lines, CRLF or LF) has the line
 * "cluster_state:ok": the node serves its slots and its view of the map can be trusted. An
 * old primary restarted after its replica took over still claims its slots, and says
 * "cluster_state:fail" until the others have told it otherwise. */
int redis_cluster_info_ok(const char *s, size_t n);

#endif
