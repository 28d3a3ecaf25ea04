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
#include "store/store_rec.h"
#include "store/store_redis_int.h"

static const struct redis_reply *RP(const redisReply *r)
{
    return (const struct redis_reply *)(const void *)r;
}

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
static int beat(struct redis_store *s, redisContext *c, int leave)
{
    char key[PREFIX_MAX + 8];
    snprintf(key, sizeof(key), "%smembers", s->prefix);
    redisReply *r =
        leave ? redisCommand(c, "ZREM %s %s", key, s->member)
              : redisCommand(c, "EVAL %s 1 %s %s %d", beat_script, key, s->member, BEAT_TTL_MS);
    if (!r)
        return 0;
    if (!leave && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        atomic_store(&s->members, (unsigned)r->integer);
    else if (r->type == REDIS_REPLY_ERROR)
        log_kv(LOG_WARN, "redis store: membership beat failed", "error", r->str, LOG_END);
    freeReplyObject(r);
    return 1;
}

void *sr_service_main(void *arg)
{
    struct redis_store *s = arg;
    redisContext *sub = NULL, *ping = NULL;
    uint64_t next_ping = 0, next_beat = 0, next_clock = 0, retry_at = 0;
    unsigned backoff = RETRY_MIN_MS;
    char err[256], chan[PREFIX_MAX + 8];

    snprintf(chan, sizeof(chan), "%sinval", s->prefix);
    while (!atomic_load(&s->stopping)) {
        uint64_t now = clock_mono_ms();
        if ((!sub || !ping) && now >= retry_at) {
            if (!ping)
                ping = sr_connect_sync(s, err, sizeof(err));
            if (ping && !sub) {
                sub = sr_connect_sync(s, err, sizeof(err));
                redisReply *r = sub ? redisCommand(sub, "SUBSCRIBE %s", chan) : NULL;
                if (!r) {
                    if (sub)
                        redisFree(sub);
                    sub = NULL;
                } else {
                    freeReplyObject(r);
                    /* messages may have been missed while we were away: drop every cache */
                    sr_invalidate(s, "*", 1);
                }
            }
            if (!sub || !ping) {
                retry_at = now + backoff;
                backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            } else {
                backoff = RETRY_MIN_MS;
            }
        }
        if (ping && now >= next_clock) {
            /* Redis's clock against ours, for the deadlines writes carry (deadline_of) */
            int64_t t0 = sr_wall_ms();
            redisReply *r = redisCommand(ping, "TIME");
            int64_t t1 = sr_wall_ms();
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                int64_t redis_ms =
                    sr_num(RP(r->element[0])) * 1000 + sr_num(RP(r->element[1])) / 1000;
                atomic_store(&s->clock_offset_ms, redis_ms - (t0 + t1) / 2);
            }
            if (r)
                freeReplyObject(r);
            next_clock = now + CLOCK_EVERY_MS;
        }
        if (ping && now >= next_ping) {
            redisReply *r = redisCommand(ping, "GET %s", s->gen_key);
            int ok = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL);
            if (ok) {
                atomic_store(&s->last_gen,
                             r->type == REDIS_REPLY_NIL ? 0 : (uint64_t)sr_num(RP(r)));
                atomic_store(&s->gen_polled, 1);
            }
            if (r)
                freeReplyObject(r);
            if (!ok) {
                redisFree(ping);
                ping = NULL;
            }
            next_ping = now + PING_EVERY_MS;
        }
        if (ping && now >= next_beat && atomic_load(&s->joined)) {
            if (!beat(s, ping, 0)) {
                redisFree(ping);
                ping = NULL;
            }
            next_beat = now + BEAT_EVERY_MS;
        }
        int up = ping && sub;
        if (up)
            atomic_store(&s->last_ok_ms, clock_mono_ms());
        if (atomic_exchange(&s->healthy, up) != up) {
            if (up) /* connections made before the outage are dead even if they look fine */
                atomic_fetch_add(&s->epoch, 1);
            log_kv(up ? LOG_INFO : LOG_WARN, up ? "redis store reachable" : "redis store down",
                   LOG_END);
        }
        struct pollfd pfd = {sub ? sub->fd : -1, POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0 && sub) {
            void *rep = NULL;
            if (redisBufferRead(sub) != REDIS_OK) {
                redisFree(sub);
                sub = NULL;
                continue;
            }
            while (redisGetReplyFromReader(sub, &rep) == REDIS_OK && rep) {
                redisReply *r = rep;
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                    r->element[2]->type == REDIS_REPLY_STRING)
                    sr_invalidate(s, r->element[2]->str, r->element[2]->len);
                freeReplyObject(r);
                rep = NULL;
            }
        }
    }
    if (sub)
        redisFree(sub);
    if (ping && atomic_load(&s->joined))
        beat(s, ping, 1); /* the others count one less at their next beat */
    if (ping)
        redisFree(ping);
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
