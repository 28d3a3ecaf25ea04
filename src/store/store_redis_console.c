/* SPDX-License-Identifier: MIT */
/*
 * The live console's frames on Redis (store.h, store_console_*): one hash, PREFIX"console",
 * field the instance's member id, value "MS JSON" (the time the instance filed it, by its
 * own clock, then the frame). A put files this instance's frame and drops the fields older
 * than 10 s (an instance that stopped); the key itself lapses a minute after the last put.
 * One key, so one slot on a cluster.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "store/store_redis_int.h"

#define CONSOLE_STALE_MS 10000

static const char put_script[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "local old = tonumber(ARGV[3])\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  local t = tonumber(string.match(all[i + 1], '^(%d+) '))\n"
    "  if not t or t < old then redis.call('HDEL', KEYS[1], all[i]) end\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], 60000)\n"
    "return 1\n";

int sr_console_put(struct store *st, int64_t now_ms, const char *json, size_t len)
{
    struct redis_store *s = R(st);
    char key[PREFIX_MAX + 8], old[24], head[24];

    if (!atomic_load(&s->joined))
        return ERR_OK; /* (no member id yet) */
    snprintf(key, sizeof(key), "%sconsole", s->prefix);
    snprintf(old, sizeof(old), "%" PRId64, now_ms - CONSOLE_STALE_MS);
    int hn = snprintf(head, sizeof(head), "%" PRId64 " ", now_ms);
    char *val = mem_malloc((size_t)hn + len);
    if (!val)
        return ERR_NOMEM;
    memcpy(val, head, (size_t)hn);
    memcpy(val + hn, json, len);
    const char *a[] = {"EVAL", put_script, "1", key, s->member, val, old};
    size_t l[] = {4,           sizeof(put_script) - 1, 1,
                  strlen(key), strlen(s->member),      (size_t)hn + len,
                  strlen(old)};
    struct redis_reply *r = sr_sync_fmt(s, 7, a, l);
    int rc = r && redis_reply_kind(r) == RK_INTEGER ? ERR_OK : ERR_BACKEND;
    redis_reply_free(r);
    mem_free(val);
    return rc;
}

int sr_console_each(struct store *st, store_console_cb fn, void *ctx)
{
    struct redis_store *s = R(st);
    char key[PREFIX_MAX + 8];

    snprintf(key, sizeof(key), "%sconsole", s->prefix);
    const char *a[] = {"HGETALL", key};
    size_t l[] = {7, strlen(key)};
    struct redis_reply *r = sr_sync_fmt(s, 2, a, l);
    if (!r || redis_reply_kind(r) != RK_ARRAY) {
        redis_reply_free(r);
        return ERR_BACKEND;
    }
    size_t n = redis_reply_count(r);
    for (size_t i = 1; i < n; i += 2) {
        size_t vlen;
        const char *v = redis_reply_str(redis_reply_at(r, i), &vlen);
        const char *sp = v ? memchr(v, ' ', vlen) : NULL;
        if (sp && fn(ctx, sp + 1, vlen - (size_t)(sp + 1 - v)))
            break;
    }
    redis_reply_free(r);
    return ERR_OK;
}
