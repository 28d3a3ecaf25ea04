/* SPDX-License-Identifier: MIT */
/*
 * A blocking Redis connection, for threads that may wait (workers, the CLI, the store's
 * service thread): connect to a redis_url (ACL user and password, database) with a
 * timeout that also bounds every command, send commands as argv with lengths, and read
 * what a subscription pushes once poll(2) says the socket is readable. Not thread-safe:
 * one connection per thread.
 */
#ifndef REDIS_REDIS_SYNC_H
#define REDIS_REDIS_SYNC_H

#include <stddef.h>

#include "redis/redis_reply.h"
#include "redis/redis_url.h"

struct redis_sync;

/* NULL with a message in err (the address and what went wrong, or Redis's refusal). */
struct redis_sync *redis_sync_connect(const struct redis_url *u, unsigned timeout_ms, char *err,
                                      size_t cap);
/* The reply (free it with redis_reply_free), or NULL when the connection failed: it is
 * unusable then (close it). */
struct redis_reply *redis_sync_cmd(struct redis_sync *c, int argc, const char **argv,
                                   const size_t *lens);
/* The same with NUL-terminated arguments, argv ending with NULL (at most 32: more is
 * refused with NULL, never sent cut). */
struct redis_reply *redis_sync_cmdv(struct redis_sync *c, const char *const *argv);
/* The socket, to poll for a subscription's messages. */
int redis_sync_fd(const struct redis_sync *c);
/* Reads what arrived and calls fn for each complete reply. 0, or -1 when the connection
 * failed (close it). */
int redis_sync_read(struct redis_sync *c, void (*fn)(const struct redis_reply *r, void *arg),
                    void *arg);
void redis_sync_close(struct redis_sync *c);

#endif
