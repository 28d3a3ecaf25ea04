/* SPDX-License-Identifier: MIT */
/*
 * An asynchronous Redis Cluster client on one libuv loop (issue #14 item 1). It learns the
 * slot map (CLUSTER SLOTS) from the first connected node that says cluster_state:ok (from
 * the last asked when none does; see redis_cluster_info_ok), keeps one redis_conn per node, and
 * sends each command to the primary of the slot the caller names (redis_slot.h: every key a command
 * touches must be in that slot, which the caller's key design ensures). The cluster's
 * answers that are not the command's are handled here, so a caller sees only the command's
 * reply:
 *
 *   MOVED slot host:port   the slot lives elsewhere now: the slot is pointed there at once,
 *                          the whole map is read again (in the background, at most one
 *                          read at a time), and the command is sent there;
 *   ASK slot host:port     the slot is moving: the command goes to that node once, after
 *                          ASKING, and the map is left as it is;
 *   TRYAGAIN, CLUSTERDOWN, LOADING
 *                          a reshard or a failover in progress: sent again after 10, 20,
 *                          40, ... ms, at most REDIS_CLUSTER_TRIES times in all.
 *
 * At most REDIS_CLUSTER_HOPS redirections per command; past that, or past the tries, the
 * last error reply is the answer. A command whose connection went away unanswered gets a
 * NULL reply (the caller fails closed: it cannot know whether the command ran), and the map
 * is read again. Commands sent before the first map arrives wait for it (at most
 * REDIS_CLUSTER_WAITING of them). One loop, one thread.
 */
#ifndef REDIS_REDIS_CLUSTER_H
#define REDIS_REDIS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "redis/redis_reply.h"
#include "redis/redis_url.h"

#define REDIS_CLUSTER_NODES   64
#define REDIS_CLUSTER_HOPS    5
#define REDIS_CLUSTER_TRIES   6
#define REDIS_CLUSTER_WAITING 4096

struct redis_cluster;

/* Up: the map covers every slot and the primary of every slot is connected; why says what
 * is missing when it is not. */
typedef void (*redis_cluster_state_cb)(struct redis_cluster *cl, bool up, const char *why,
                                       void *arg);
/* r is NULL when the command went unanswered (see above). */
typedef void (*redis_cluster_reply_cb)(struct redis_cluster *cl, const struct redis_reply *r,
                                       void *arg);

/* Per-node counters, for metrics. */
struct redis_cluster_node_stats {
    char addr[280]; /* host:port */
    bool primary, up;
    uint64_t commands, redirects, errors;
    uint64_t replies, latency_ns; /* answers from it, and their round trips summed */
};

/* Starts connecting to the seeds at once. init: as redis_conn_new's (sent on every node's
 * every connection first). NULL without memory. */
struct redis_cluster *redis_cluster_new(uv_loop_t *loop, const struct redis_cluster_url *u,
                                        unsigned retry_min_ms, unsigned retry_max_ms,
                                        const char *const *init, redis_cluster_state_cb state,
                                        void *arg);
/* Sends a command for `slot` (its arguments are copied): ERR_OK (cb, if not NULL, runs
 * once), ERR_BACKEND (the slot's primary is not connected, or too many commands wait for
 * the map: cb will not run; the former has the map read again, at most every 100 ms, since
 * a replica may have taken the slot over), ERR_INVAL (slot out of range), ERR_NOMEM. */
int redis_cluster_cmd(struct redis_cluster *cl, unsigned slot, redis_cluster_reply_cb cb, void *arg,
                      int argc, const char **argv, const size_t *lens);
bool redis_cluster_up(const struct redis_cluster *cl);
/* How many nodes are known (stats filled for the first cap). */
unsigned redis_cluster_stats(const struct redis_cluster *cl, struct redis_cluster_node_stats *out,
                             unsigned cap);
/* Drops the connection to `slot`'s primary (a command on it went unanswered too long): what
 * is in flight on it gets a NULL reply, and it is remade. */
void redis_cluster_drop(struct redis_cluster *cl, unsigned slot);
/* Reads the map again now (at most one read in flight). */
void redis_cluster_refresh(struct redis_cluster *cl);
/* Stops for good: commands still out get a NULL reply; closed(arg) runs once everything is
 * released (cl is freed then). */
void redis_cluster_close(struct redis_cluster *cl, void (*closed)(void *), void *arg);

#endif
