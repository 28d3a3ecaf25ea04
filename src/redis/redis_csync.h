/* SPDX-License-Identifier: MIT */
/*
 * A blocking Redis Cluster client, for threads that may wait (workers, the CLI, the store's
 * service thread): the slot map from CLUSTER SLOTS of the first node it knows (the seeds
 * first) that says cluster_state:ok (of the first that answers when none does; see
 * redis_cluster_info_ok), one blocking connection per node, made when first needed, and each
 * command sent to the primary of the slot the caller names. As redis_cluster.h does on a loop:
 * MOVED repoints the slot and has the map read again before the next command, ASK sends the command
 * once to the named node after ASKING, TRYAGAIN, CLUSTERDOWN and LOADING are retried after 10, 20,
 * 40, ... ms (REDIS_CLUSTER_TRIES in all, REDIS_CLUSTER_HOPS redirections at most). Every
 * connection and command is bounded by the timeout. Not thread-safe: one per thread.
 */
#ifndef REDIS_REDIS_CSYNC_H
#define REDIS_REDIS_CSYNC_H

#include <stddef.h>

#include "redis/redis_cluster.h"
#include "redis/redis_reply.h"
#include "redis/redis_url.h"

struct redis_csync;

/* Reads the map now (a start-up error when no seed answers). init (argv ending with NULL,
 * or NULL) is sent on every connection first; an error answer to it fails the connection.
 * NULL with a message in err. */
struct redis_csync *redis_csync_connect(const struct redis_cluster_url *u, unsigned timeout_ms,
                                        const char *const *init, char *err, size_t cap);
/* The reply for a command on `slot`'s keys, or NULL when a connection failed (the command
 * may or may not have run; that connection is remade on the next call). */
struct redis_reply *redis_csync_cmd(struct redis_csync *c, unsigned slot, int argc,
                                    const char **argv, const size_t *lens);
/* The primaries in the map now (their indices into out, at most cap): for the commands that
 * go to each of them (SCAN, MEMORY STATS). The map is read first if it was marked stale. */
unsigned redis_csync_primaries(struct redis_csync *c, unsigned *out, unsigned cap);
/* A command to node i (an index from redis_csync_primaries). NULL as redis_csync_cmd. */
struct redis_reply *redis_csync_node_cmd(struct redis_csync *c, unsigned i, int argc,
                                         const char **argv, const size_t *lens);
/* Node i's address, with the cluster's user and password (for a connection of its own). */
void redis_csync_node_url(const struct redis_csync *c, unsigned i, struct redis_url *out);
/* Whether every slot has a primary in the map last read. */
int redis_csync_covered(const struct redis_csync *c);
void redis_csync_close(struct redis_csync *c);

#endif
