/* SPDX-License-Identifier: MIT */
#include "policy/pol_announce.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "store/store.h"

/* Seconds from "90", "90s", "30m", "2h", "1d". -1 if malformed. */
int64_t pol_announce_secs(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0 || v > 1000000000LL) /* bounded: v * 86400 cannot overflow */
        return -1;
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        v *= 60;
        break;
    case 'h':
        v *= 3600;
        break;
    case 'd':
        v *= 86400;
        break;
    default:
        return -1;
    }
    return (*end && end[1]) ? -1 : v;
}

/* Epoch seconds from "1795900000", "2026-11-28T18:00:00Z" or "+30m". -1 if malformed. */
int64_t pol_announce_time(const char *s, int64_t now)
{
    struct tm tm;
    if (s[0] == '+') {
        int64_t d = pol_announce_secs(s + 1);
        return d < 0 ? -1 : now + d;
    }
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end && !*end)
        return (int64_t)timegm(&tm);
    char *e;
    long long v = strtoll(s, &e, 10);
    return (e != s && !*e && v > 0) ? v : -1;
}

int pol_announce_schedule(struct store *st, const char *name, int64_t at, int64_t duration,
                          double expect, char id[POL_ANNOUNCE_ID_MAX + 1],
                          char json[POL_ANNOUNCE_JSON_MAX])
{
    size_t n = strlen(name);
    if (at <= 0 || !isfinite(expect) || expect < 1 || expect > 1000 || duration < 1 ||
        duration > POL_ANNOUNCE_DURATION_MAX || n == 0 || n > POL_ANNOUNCE_NAME_MAX)
        return ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x20 || name[i] > 0x7e || name[i] == '"' || name[i] == '\\')
            return ERR_INVAL;
    uint8_t rnd[9];
    do { /* not '-' first: the id is an argument of 'event cancel' */
        cr_random(rnd, sizeof(rnd));
        cr_b64url_encode(rnd, sizeof(rnd), id, POL_ANNOUNCE_ID_MAX + 1);
    } while (id[0] == '-');
    snprintf(json, POL_ANNOUNCE_JSON_MAX,
             "{\"name\":\"%s\",\"at\":%lld,\"duration\":%lld,\"expect\":%.1f}", name, (long long)at,
             (long long)duration, expect);
    return store_exec_kv(st, STORE_OP_PUT_NEW, STORE_T_EVENTS, id, json, strlen(json));
}

struct list_ctx {
    struct buf *b;
    int n;
};

static int on_event(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct list_ctx *l = ctx;
    /* the stored value is JSON that this process wrote (pol_announce_schedule) */
    return buf_printf(l->b, "%s{\"id\":\"%.*s\",\"event\":%.*s}", l->n++ ? "," : "", (int)klen,
                      (const char *)key, (int)vlen, (const char *)val);
}

int pol_announce_list(struct store *st, struct buf *b)
{
    struct list_ctx l = {b, 0};
    int rc = buf_puts(b, "[");
    if (!rc)
        rc = store_each(st, STORE_T_EVENTS, on_event, &l);
    return rc ? rc : buf_puts(b, "]");
}

int pol_announce_from_json(json_t *o, int64_t now, char name[POL_ANNOUNCE_NAME_MAX + 1],
                           int64_t *at, int64_t *duration, double *expect)
{
    json_t *a = json_object_get(o, "at"), *dur = json_object_get(o, "duration"),
           *ex = json_object_get(o, "expect"), *nm = json_object_get(o, "name");
    const char *n = nm ? json_string_value(nm) : "event";

    if (!n || strlen(n) > POL_ANNOUNCE_NAME_MAX)
        return ERR_INVAL;
    snprintf(name, POL_ANNOUNCE_NAME_MAX + 1, "%s", n);
    *at = json_is_integer(a)  ? json_integer_value(a)
          : json_is_string(a) ? pol_announce_time(json_string_value(a), now)
                              : -1;
    *duration = !dur                   ? 3600
                : json_is_integer(dur) ? json_integer_value(dur)
                : json_is_string(dur)  ? pol_announce_secs(json_string_value(dur))
                                       : -1;
    if (json_is_number(ex)) {
        *expect = json_number_value(ex);
    } else if (json_is_string(ex)) {
        const char *v = json_string_value(ex);
        char *end;
        *expect = strtod(v, &end);
        if (end == v || (*end && strcmp(end, "x") != 0))
            return ERR_INVAL;
    } else {
        return ERR_INVAL;
    }
    return ERR_OK;
}

int pol_announce_cancel(struct store *st, const char *id)
{
    return store_exec_kv(st, STORE_OP_DELETE, STORE_T_EVENTS, id, NULL, 0);
}
