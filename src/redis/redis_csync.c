/* SPDX-License-Identifier: MIT */
/* A blocking Redis Cluster client; see redis_csync.h. */
#include "redis/redis_csync.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/mem.h"
#include "redis/redis_slot.h"
#include "redis/redis_sync.h"

struct cnode {
    struct redis_url url;
    struct redis_sync *c;
};

struct redis_csync {
    struct redis_url auth; /* user and password of every node */
    unsigned timeout_ms;
    const char *const *init;
    unsigned n;
    struct cnode node[REDIS_CLUSTER_NODES];
    int16_t slot_node[REDIS_SLOTS]; /* -1: no primary known */
    unsigned covered;
    bool stale; /* read the map again before the next command */
};

static int node_get(struct redis_csync *c, const char *host, int port)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->node[i].url.port == port && strcmp(c->node[i].url.host, host) == 0)
            return (int)i;
    if (c->n == REDIS_CLUSTER_NODES)
        return -1;
    struct cnode *n = &c->node[c->n];
    n->url = c->auth;
    snprintf(n->url.host, sizeof(n->url.host), "%s", host);
    n->url.port = port;
    n->url.path[0] = '\0';
    n->url.db = 0;
    n->c = NULL;
    return (int)c->n++;
}

static void node_drop(struct redis_csync *c, unsigned i)
{
    redis_sync_close(c->node[i].c);
    c->node[i].c = NULL;
    c->stale = true; /* (a node gone: a failover may follow) */
}

/* Node i's connection, made now if needed; NULL with a message. */
static struct redis_sync *node_conn(struct redis_csync *c, unsigned i, char *err, size_t cap)
{
    struct cnode *n = &c->node[i];
    if (n->c)
        return n->c;
    n->c = redis_sync_connect(&n->url, c->timeout_ms, err, cap);
    if (n->c && c->init) {
        struct redis_reply *r = redis_sync_cmdv(n->c, c->init);
        if (!r || redis_reply_kind(r) == RK_ERROR) {
            snprintf(err, cap, "redis %s:%d: %s", n->url.host, n->url.port,
                     r ? redis_reply_str(r, NULL) : "the connection failed");
            redis_sync_close(n->c);
            n->c = NULL;
        }
        redis_reply_free(r);
    }
    return n->c;
}

/* CLUSTER SLOTS from node i into the map: ERR_OK, or an error (the map unchanged). */
static int map_from(struct redis_csync *c, unsigned i, char *err, size_t cap)
{
    const char *argv[] = {"CLUSTER", "SLOTS", NULL};
    struct redis_sync *conn = node_conn(c, i, err, cap);
    struct redis_reply *r = conn ? redis_sync_cmdv(conn, argv) : NULL;
    if (!r) {
        if (conn)
            node_drop(c, i);
        return ERR_BACKEND;
    }
    if (redis_reply_kind(r) != RK_ARRAY) {
        snprintf(err, cap, "redis %s:%d: CLUSTER SLOTS: %s", c->node[i].url.host,
                 c->node[i].url.port,
                 redis_reply_kind(r) == RK_ERROR ? redis_reply_str(r, NULL) : "unexpected answer");
        redis_reply_free(r);
        return ERR_BACKEND;
    }
    int16_t *map = mem_malloc(sizeof(c->slot_node));
    if (!map) {
        redis_reply_free(r);
        return ERR_NOMEM;
    }
    unsigned covered = 0;
    memset(map, 0xff, sizeof(c->slot_node));
    for (size_t k = 0; k < redis_reply_count(r); k++) {
        const struct redis_reply *e = redis_reply_at(r, k), *p = redis_reply_at(e, 2);
        if (redis_reply_kind(e) != RK_ARRAY || redis_reply_count(e) < 3 ||
            redis_reply_kind(p) != RK_ARRAY || redis_reply_count(p) < 2)
            continue;
        long long a = redis_reply_int(redis_reply_at(e, 0)),
                  b = redis_reply_int(redis_reply_at(e, 1)),
                  port = redis_reply_int(redis_reply_at(p, 1));
        size_t hn;
        const char *host = redis_reply_str(redis_reply_at(p, 0), &hn);
        char h[REDIS_HOST_MAX + 1];
        if (a < 0 || b >= REDIS_SLOTS || a > b || hn > REDIS_HOST_MAX || port < 1 || port > 65535)
            continue;
        if (hn == 0) /* (a node that does not know its address: the one asked) */
            snprintf(h, sizeof(h), "%s", c->node[i].url.host);
        else
            snprintf(h, sizeof(h), "%.*s", (int)hn, host);
        int n = node_get(c, h, (int)port);
        for (long long s = a; n >= 0 && s <= b; s++) {
            covered += map[s] < 0;
            map[s] = (int16_t)n;
        }
    }
    memcpy(c->slot_node, map, sizeof(c->slot_node));
    mem_free(map);
    c->covered = covered;
    c->stale = false;
    redis_reply_free(r);
    return ERR_OK;
}

/* Whether node i says cluster_state:ok (see redis_cluster_info_ok). */
static bool node_ok(struct redis_csync *c, unsigned i)
{
    const char *argv[] = {"CLUSTER", "INFO"};
    const size_t lens[] = {7, 4};
    struct redis_reply *r = redis_csync_node_cmd(c, i, 2, argv, lens);
    size_t n;
    const char *s = r && redis_reply_kind(r) != RK_ERROR ? redis_reply_str(r, &n) : NULL;
    bool ok = s && redis_cluster_info_ok(s, n);
    redis_reply_free(r);
    return ok;
}

/* The map from the first node that says its state is ok; when none does (the cluster is
 * down), from the first that answers. */
static int map_read(struct redis_csync *c, char *err, size_t cap)
{
    for (unsigned i = 0; i < c->n; i++)
        if (node_ok(c, i) && map_from(c, i, err, cap) == ERR_OK)
            return ERR_OK;
    int rc = ERR_BACKEND;
    for (unsigned i = 0; i < c->n && rc != ERR_OK; i++)
        rc = map_from(c, i, err, cap);
    return rc;
}

struct redis_csync *redis_csync_connect(const struct redis_cluster_url *u, unsigned timeout_ms,
                                        const char *const *init, char *err, size_t cap)
{
    struct redis_csync *c = mem_calloc(1, sizeof(*c));
    if (!c || !u->n) {
        snprintf(err, cap, !c ? "out of memory" : "no cluster node named");
        mem_free(c);
        return NULL;
    }
    c->timeout_ms = timeout_ms;
    c->init = init;
    memset(c->slot_node, 0xff, sizeof(c->slot_node));
    for (unsigned i = 0; i < u->n; i++) {
        c->auth = u->seed[i];
        node_get(c, u->seed[i].host, u->seed[i].port);
    }
    if (map_read(c, err, cap)) {
        redis_csync_close(c);
        return NULL;
    }
    return c;
}

static bool is_error(const struct redis_reply *r, const char *prefix)
{
    size_t n, pn = strlen(prefix);
    const char *s = redis_reply_str(r, &n);
    return redis_reply_kind(r) == RK_ERROR && n >= pn && memcmp(s, prefix, pn) == 0;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct redis_reply *redis_csync_cmd(struct redis_csync *c, unsigned slot, int argc,
                                    const char **argv, const size_t *lens)
{
    char err[256];
    int node = -1, hops = 0, tries = 0;
    bool asking = false, redirected = false;

    if (slot >= REDIS_SLOTS)
        return NULL;
    for (;;) {
        if (!redirected) {
            if (c->stale || c->slot_node[slot] < 0)
                map_read(c, err, sizeof(err)); /* (failing: the map as it was) */
            node = c->slot_node[slot];
        }
        struct redis_sync *conn = node >= 0 ? node_conn(c, (unsigned)node, err, sizeof(err)) : NULL;
        if (!conn) {
            c->stale = true;
            return NULL;
        }
        if (asking) {
            const char *a[] = {"ASKING", NULL};
            redis_reply_free(redis_sync_cmdv(conn, a));
        }
        struct redis_reply *r = redis_sync_cmd(conn, argc, argv, lens);
        if (!r) {
            node_drop(c, (unsigned)node);
            return NULL;
        }
        asking = redirected = false;
        size_t n;
        const char *s = redis_reply_kind(r) == RK_ERROR ? redis_reply_str(r, &n) : NULL;
        enum redis_redirect kind;
        unsigned to_slot;
        char host[REDIS_HOST_MAX + 1];
        int port;
        if (s && redis_redirect_parse(s, n, &kind, &to_slot, host, &port) == ERR_OK) {
            int to = node_get(c, host[0] ? host : c->node[node].url.host, port);
            if (to < 0 || ++hops > REDIS_CLUSTER_HOPS)
                return r;
            redis_reply_free(r);
            if (kind == REDIS_MOVED) {
                c->slot_node[to_slot] = (int16_t)to;
                c->stale = true; /* (more moved with it, likely: read before the next) */
            } else {
                asking = true;
            }
            node = to; /* (this command goes there; the next reads the map first) */
            redirected = true;
            continue;
        }
        if (s &&
            (is_error(r, "TRYAGAIN") || is_error(r, "CLUSTERDOWN") || is_error(r, "LOADING")) &&
            ++tries < REDIS_CLUSTER_TRIES) {
            if (is_error(r, "CLUSTERDOWN"))
                c->stale = true;
            redis_reply_free(r);
            nap_ms(10u << (tries - 1));
            continue;
        }
        return r;
    }
}

unsigned redis_csync_primaries(struct redis_csync *c, unsigned *out, unsigned cap)
{
    char err[256];
    bool seen[REDIS_CLUSTER_NODES] = {false};
    unsigned k = 0;
    if (c->stale)
        map_read(c, err, sizeof(err));
    for (unsigned s = 0; s < REDIS_SLOTS; s++) {
        int i = c->slot_node[s];
        if (i >= 0 && !seen[i] && k < cap) {
            seen[i] = true;
            out[k++] = (unsigned)i;
        }
    }
    return k;
}

struct redis_reply *redis_csync_node_cmd(struct redis_csync *c, unsigned i, int argc,
                                         const char **argv, const size_t *lens)
{
    char err[256];
    struct redis_sync *conn = i < c->n ? node_conn(c, i, err, sizeof(err)) : NULL;
    struct redis_reply *r = conn ? redis_sync_cmd(conn, argc, argv, lens) : NULL;
    if (conn && !r)
        node_drop(c, i);
    return r;
}

void redis_csync_node_url(const struct redis_csync *c, unsigned i, struct redis_url *out)
{
    *out = c->node[i < c->n ? i : 0].url;
}

int redis_csync_covered(const struct redis_csync *c)
{
    return c->covered == REDIS_SLOTS;
}

void redis_csync_close(struct redis_csync *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->n; i++)
        redis_sync_close(c->node[i].c);
    mem_free(c);
}
