/* SPDX-License-Identifier: MIT */
/*
 * Redis Sentinel (issue #14 item 4): a primary with replicas, failed over by sentinels.
 * redis-sentinel://[[user]:password@]host:port[,host:port...]/NAME[/db] names the sentinels
 * (asked without credentials) and the primary's name among them; the user and password are
 * the primary's. Which node is the primary now is asked of the sentinels in turn, blocking,
 * each bounded by a timeout: for a thread that may block (a store's service thread, start-up).
 */
#ifndef REDIS_REDIS_SENTINEL_H
#define REDIS_REDIS_SENTINEL_H

#include <stddef.h>

#include "redis/redis_url.h"

struct redis_sentinel_url {
    struct redis_cluster_url sentinels; /* (host and port each; the credentials apply to the
                                           primary, not to them) */
    char name[128];
    struct redis_url primary; /* user, password and db for the primary; host and port: "" */
};

/* ERR_OK, or ERR_INVAL with "<what>: expected ..." in err. */
int redis_sentinel_url_parse(const char *url, const char *what, struct redis_sentinel_url *u,
                             char *err, size_t errcap);

/* The primary the first sentinel that answers names (SENTINEL get-master-addr-by-name), with
 * the URL's credentials and db: ERR_OK, or ERR_BACKEND with why in err (no sentinel
 * answered, or none knows the name). */
int redis_sentinel_primary(const struct redis_sentinel_url *u, unsigned timeout_ms,
                           struct redis_url *out, char *err, size_t errcap);

#endif
