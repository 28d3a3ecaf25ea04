/* SPDX-License-Identifier: MIT */
/*
 * An asynchronous Redis connection on a libuv loop that keeps itself up: it connects to a
 * redis_url (ACL user and password, database), and when the connection fails or drops it
 * says so and tries again, backing off from retry_min_ms to retry_max_ms. Commands go out
 * as argv with lengths (hiredis does the wire protocol and pipelines what one loop
 * iteration sends); each reply comes back to its callback on the loop's thread, or NULL if
 * the connection went away first. Replies are read through the accessors below, so that
 * hiredis is spoken only in src/redis/. One loop, one thread.
 */
#ifndef REDIS_REDIS_CONN_H
#define REDIS_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "redis/redis_reply.h"
#include "redis/redis_url.h"

struct redis_conn;

/* Up (why NULL) or down (why says why: a refused connect, a reset, an error reply to the
 * authentication). */
typedef void (*redis_conn_state_cb)(struct redis_conn *c, bool up, const char *why, void *arg);
/* r is NULL when the connection went away with the command unanswered. */
typedef void (*redis_reply_cb)(struct redis_conn *c, const struct redis_reply *r, void *arg);

/* Starts connecting at once. init, if not NULL, is a command (NULL-terminated argv, kept
 * by reference) sent on every connection right after the authentication, before anything
 * else (a SCRIPT LOAD; at most 16 arguments). NULL without memory or with a longer init. */
struct redis_conn *redis_conn_new(uv_loop_t *loop, const struct redis_url *u, unsigned retry_min_ms,
                                  unsigned retry_max_ms, const char *const *init,
                                  redis_conn_state_cb state, void *arg);
/* Sends a command: ERR_OK (cb, if not NULL, will run once: hiredis holds the command while
 * a connection is being made), or ERR_BACKEND while waiting to try again (cb will not run),
 * or ERR_NOMEM. */
int redis_conn_cmd(struct redis_conn *c, redis_reply_cb cb, void *arg, int argc, const char **argv,
                   const size_t *lens);
bool redis_conn_up(const struct redis_conn *c);
/* Where the next connection goes (a primary that moved: Sentinel); the current one stays
 * until it is dropped or remade. */
void redis_conn_set_url(struct redis_conn *c, const struct redis_url *u);
/* Drops the connection now (a command that never came back, a state to start over):
 * unanswered commands get a NULL reply, and a new connection follows after the backoff. */
void redis_conn_drop(struct redis_conn *c);
/* The same, connecting again at once (the server is known to be back): commands sent from
 * now on wait for the new connection. */
void redis_conn_reconnect(struct redis_conn *c);
/* Stops for good: unanswered commands get a NULL reply, no retry follows, and closed(arg)
 * runs once everything is released (c is freed then). */
void redis_conn_close(struct redis_conn *c, void (*closed)(void *), void *arg);

#endif
