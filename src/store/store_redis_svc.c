/* SPDX-License-Identifier: MIT */
/* The Redis store's service thread: the health read (the generation, every 200 ms), the
 * invalidation subscription, Redis's clock offset and the membership beat. */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"
#include "core/log.h"
#include "crypto/cr.h"
#include "redis/redis_csync.h"
#include "redis/redis_sentinel.h"
#include "redis/redis_sync.h"
#include "store/store_rec.h"
#include "store/store_redis_int.h"

/* ---- the service thread: health and invalidations -------------------------------------- */

/* One beat: this instance's expiry by Redis's clock (instances' clocks may differ), the
 * expired ones dropped, the rest counted. TIME before writes needs effects replication,
 * the default since Redis 5 and the only mode since 7. */
static const char beat_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "redis.call('PEXPIRE', KEYS[1], 4 * tonumber(ARGV[2]))\n"
    "return redis.call('ZCARD', KEYS[1])\n";

/* 0 if the connection failed (the caller drops it). */
static int beat(struct redis_store *s, struct sr_link *c, int leave)
{
    char key[PREFIX_MAX + 8], ttl[16];
    snprintf(key, sizeof(key), "%smembers", s->prefix);
    snprintf(ttl, sizeof(ttl), "%d", BEAT_TTL_MS);
    const char *zrem[] = {"ZREM", key, s->member, NULL};
    const char *eval[] = {"EVAL", beat_script, "1", key, s->member, ttl, NULL};
    struct redis_reply *r = sr_link_cmdv(s, c, sr_slot(key), leave ? zrem : eval);
    if (!r)
        return 0;
    if (!leave && redis_reply_kind(r) == RK_INTEGER && redis_reply_int(r) > 0)
        atomic_store(&s->members, (unsigned)redis_reply_int(r));
    else if (redis_reply_kind(r) == RK_ERROR)
        log_kv(LOG_WARN, "redis store: membership beat failed", "error", redis_reply_str(r, NULL),
               LOG_END);
    redis_reply_free(r);
    return 1;
}

/* A message on the invalidation channel: ["message", channel, payload]. */
static void on_message(const struct redis_reply *r, void *arg)
{
    const struct redis_reply *m = redis_reply_at(r, 2);
    size_t n;
    if (redis_reply_kind(r) == RK_ARRAY && redis_reply_count(r) == 3 && m &&
        redis_reply_kind(m) == RK_STRING) {
        const char *p = redis_reply_str(m, &n);
        sr_invalidate(arg, p, n);
    }
}

/* Redis's clock against ours, for the deadlines writes carry (deadline_of). */
static void measure_clock(struct redis_store *s, struct sr_link *ping)
{
    const char *time_[] = {"TIME", NULL};
    int64_t t0 = clock_wall_ms();
    struct redis_reply *r = sr_link_cmdv(s, ping, sr_slot(s->gen_key), time_);
    int64_t t1 = clock_wall_ms();
    if (r && redis_reply_kind(r) == RK_ARRAY && redis_reply_count(r) == 2) {
        int64_t redis_ms =
            sr_num(redis_reply_at(r, 0)) * 1000 + sr_num(redis_reply_at(r, 1)) / 1000;
        atomic_store(&s->clock_offset_ms, redis_ms - (t0 + t1) / 2);
    }
    redis_reply_free(r);
}

/* The generation, read every PING_EVERY_MS: also the health read. 0 if it failed. */
static int poll_generation(struct redis_store *s, struct sr_link *ping)
{
    const char *get[] = {"GET", s->gen_key, NULL};
    struct redis_reply *r = sr_link_cmdv(s, ping, sr_slot(s->gen_key), get);
    enum redis_kind k = r ? redis_reply_kind(r) : RK_OTHER;
    int ok = k == RK_STRING || k == RK_NIL;
    if (ok) {
        atomic_store(&s->last_gen, k == RK_NIL ? 0 : (uint64_t)sr_num(r));
        atomic_store(&s->gen_polled, 1);
    }
    redis_reply_free(r);
    return ok;
}

static bool link_up(const struct sr_link *l)
{
    return l->one || l->many;
}

/* The subscription's connection: to the one Redis, or on a cluster to a primary (a message
 * published on any node reaches every node's subscribers), another one at each try. */
static struct redis_sync *sub_connect(struct redis_store *s, struct sr_link *ping)
{
    static unsigned turn; /* (the service thread's) */
    char err[256];
    if (!s->cluster)
        return sr_connect_sync(s, err, sizeof(err));
    unsigned nodes[64];
    unsigned n = redis_csync_primaries(ping->many, nodes, 64);
    if (!n)
        return NULL;
    struct redis_url u;
    redis_csync_node_url(ping->many, nodes[turn++ % n], &u);
    return redis_sync_connect(&u, s->timeout_ms, err, sizeof(err));
}

/* (Re)connects what is missing: the health connection, then the subscription. */
static void connect_missing(struct redis_store *s, struct sr_link *ping, struct redis_sync **sub,
                            const char *chan)
{
    char err[256];
    if (!link_up(ping))
        sr_link_open(s, ping, err, sizeof(err));
    if (link_up(ping) && !*sub) {
        *sub = sub_connect(s, ping);
        const char *subscribe[] = {"SUBSCRIBE", chan, NULL};
        struct redis_reply *r = *sub ? redis_sync_cmdv(*sub, subscribe) : NULL;
        if (!r) {
            redis_sync_close(*sub);
            *sub = NULL;
        } else {
            redis_reply_free(r);
            /* messages may have been missed while we were away: drop every cache */
            sr_invalidate(s, "*", 1);
        }
    }
}

/* With Sentinel: asks where the primary is; if it moved, the address changes for every
 * connection made from now on, this thread's are closed, and the epoch moves so that every
 * other connection is remade (to the new primary) before its next command. */
static void follow_primary(struct redis_store *s, struct sr_link *ping, struct redis_sync **sub)
{
    struct redis_url now, was;
    char err[256];
    if (!s->sentinel || redis_sentinel_primary(s->sentinel, s->timeout_ms, &now, err, sizeof(err)))
        return;
    sr_url(s, &was);
    if (strcmp(now.host, was.host) == 0 && now.port == was.port)
        return;
    pthread_mutex_lock(&s->url_mu);
    s->url = now;
    pthread_mutex_unlock(&s->url_mu);
    char addr[300];
    snprintf(addr, sizeof(addr), "%s:%d", now.host, now.port);
    log_kv(LOG_WARN, "redis store: the sentinels name a new primary", "primary", addr, LOG_END);
    sr_link_close(ping);
    redis_sync_close(*sub);
    *sub = NULL;
    atomic_fetch_add(&s->epoch, 1);
}

/* On a cluster, every second: each primary of the map asked PING, for floodgate_store_up
 * (every slot served) and floodgate_store_node_up. A primary that does not answer costs
 * this thread up to the timeout. */
static void check_nodes(struct redis_store *s, struct sr_link *ping)
{
    unsigned idx[SNAP_NODES], n = redis_csync_primaries(ping->many, idx, SNAP_NODES);
    int full = n > 0 && redis_csync_covered(ping->many);
    int up[SNAP_NODES];
    for (unsigned i = 0; i < n; i++) {
        const char *argv[] = {"PING"};
        const size_t lens[] = {4};
        struct redis_reply *r = redis_csync_node_cmd(ping->many, idx[i], 1, argv, lens);
        up[i] = r && redis_reply_kind(r) == RK_STATUS;
        full &= up[i];
        redis_reply_free(r);
    }
    pthread_mutex_lock(&s->stats_mu);
    s->nup = n;
    for (unsigned i = 0; i < n; i++) {
        struct redis_url u;
        redis_csync_node_url(ping->many, idx[i], &u);
        snprintf(s->node_up[i].addr, sizeof(s->node_up[i].addr), "%s:%d", u.host, u.port);
        s->node_up[i].up = up[i];
    }
    pthread_mutex_unlock(&s->stats_mu);
    /* every slot answering again after a failover: the threads' links, made before it and
     * idle since, may hold connections to a node that died or is a replica now; the epoch
     * moves so that each remakes its link (and reads the map) before its next command */
    if (atomic_exchange(&s->cluster_full, full) != full && full)
        atomic_fetch_add(&s->epoch, 1);
}

void *sr_service_main(void *arg)
{
    struct redis_store *s = arg;
    struct redis_sync *sub = NULL;
    struct sr_link ping = {NULL, NULL};
    uint64_t next_ping = 0, next_beat = 0, next_clock = 0, retry_at = 0, next_sentinel = 0,
             next_nodes = 0;
    unsigned backoff = RETRY_MIN_MS;
    char chan[PREFIX_MAX + 8];

    snprintf(chan, sizeof(chan), "%sinval", s->prefix);
    while (!atomic_load(&s->stopping)) {
        uint64_t now = clock_mono_ms();
        if (s->sentinel &&
            (now >= next_sentinel || ((!sub || !link_up(&ping)) && now >= retry_at))) {
            follow_primary(s, &ping, &sub);
            next_sentinel = now + SENTINEL_EVERY_MS;
        }
        if ((!sub || !link_up(&ping)) && now >= retry_at) {
            connect_missing(s, &ping, &sub, chan);
            if (!sub || !link_up(&ping)) {
                retry_at = now + backoff;
                backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            } else {
                backoff = RETRY_MIN_MS;
            }
        }
        if (link_up(&ping) && now >= next_clock) {
            measure_clock(s, &ping);
            next_clock = now + CLOCK_EVERY_MS;
        }
        if (link_up(&ping) && now >= next_ping) {
            if (!poll_generation(s, &ping) && !s->cluster)
                sr_link_close(&ping); /* (a cluster link remakes a failed node's own) */
            next_ping = now + PING_EVERY_MS;
        }
        if (s->cluster && link_up(&ping) && now >= next_nodes) {
            check_nodes(s, &ping);
            next_nodes = now + BEAT_EVERY_MS;
        }
        if (link_up(&ping) && now >= next_beat && atomic_load(&s->joined)) {
            if (!beat(s, &ping, 0) && !s->cluster)
                sr_link_close(&ping); /* (a cluster link remakes a failed node's own) */
            next_beat = now + BEAT_EVERY_MS;
        }
        /* On a cluster, one node down (the generation's, the subscription's) fails only its
         * slots' commands, not the store: the subscription is remade on another primary,
         * and every cache is dropped then (connect_missing). */
        int up = link_up(&ping) && (sub || s->cluster);
        if (up)
            atomic_store(&s->last_ok_ms, clock_mono_ms());
        if (atomic_exchange(&s->healthy, up) != up) {
            if (up) /* connections made before the outage are dead even if they look fine */
                atomic_fetch_add(&s->epoch, 1);
            log_kv(up ? LOG_INFO : LOG_WARN, up ? "redis store reachable" : "redis store down",
                   LOG_END);
        }
        struct pollfd pfd = {sub ? redis_sync_fd(sub) : -1, POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0 && sub && redis_sync_read(sub, on_message, s)) {
            redis_sync_close(sub);
            sub = NULL;
        }
    }
    redis_sync_close(sub);
    if (link_up(&ping) && atomic_load(&s->joined))
        beat(s, &ping, 1); /* the others count one less at their next beat */
    sr_link_close(&ping);
    return NULL;
}

void sr_join(struct store *st)
{
    struct redis_store *s = R(st);
    uint8_t id[16];

    cr_random(id, sizeof(id));
    sr_hex(id, sizeof(id), s->member);
    atomic_store(&s->joined, 1); /* (after the id: the service thread reads it then) */
}

unsigned sr_members(struct store *st)
{
    return atomic_load(&R(st)->members);
}
