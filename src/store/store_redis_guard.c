/* SPDX-License-Identifier: MIT */
/* The Redis store's shared login guard: lockout and login rates counted exactly across
 * instances by the store script (the gbegin/gend/gcancel/gunlock branches). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store_rec.h"
#include "store/store_redis_int.h"

/* ---- shared login protection ------------------------------------------------------------ */

struct gcmd {
    struct cmd c;
    char k[6][PREFIX_MAX + 128];
    char n[20][24];
    int nn;
};

static void g_num(struct gcmd *g, int64_t v)
{
    snprintf(g->n[g->nn], sizeof(g->n[0]), "%" PRId64, v);
    sr_arg_s(&g->c, g->n[g->nn++]);
}

/* Which of the guard's keys one call holds. On one Redis, all of them in one call. On a
 * cluster the username's (its lock, its pairs' locks, its login rate, the list of its
 * pairs: tagged with the username's key) and the address's (its lock and login rate: tagged
 * with its key) are two slots, so two calls: the address's first. */
enum part { PART_ALL, PART_IP, PART_USER };

static bool in_part(enum part p, int lock_or_rate_ip)
{
    return p == PART_ALL || (p == PART_IP) == (lock_or_rate_ip != 0);
}

/* The six keys: lo:user lo:ip lo:pair rl:ip rl:user lp:user; in a cluster part, the other
 * part's positions name one of this part's keys (untouched: their rules are off). */
static void g_keys(const struct redis_store *s, const struct store_guard *g, enum part p,
                   char k[6][PREFIX_MAX + 128])
{
    const char *pre = s->prefix;
    if (p == PART_ALL) {
        snprintf(k[0], sizeof(k[0]), "%slo:%s", pre, g->key[0]);
        snprintf(k[1], sizeof(k[1]), "%slo:%s", pre, g->key[1]);
        snprintf(k[2], sizeof(k[2]), "%slo:%s", pre, g->key[2]);
        snprintf(k[3], sizeof(k[3]), "%srl:%s", pre, g->rl_key[0]);
        snprintf(k[4], sizeof(k[4]), "%srl:%s", pre, g->rl_key[1]);
        snprintf(k[5], sizeof(k[5]), "%slp:%s", pre, g->key[0]);
        return;
    }
    const char *u = g->key[0], *ip = g->key[1];
    snprintf(k[0], sizeof(k[0]), "%slo:{%s}", pre, p == PART_USER ? u : ip);
    snprintf(k[1], sizeof(k[1]), "%slo:{%s}", pre, p == PART_USER ? u : ip);
    if (p == PART_USER) {
        snprintf(k[2], sizeof(k[2]), "%slo:{%s}%s", pre, u, g->key[2]);
        memcpy(k[3], k[0], sizeof(k[0]));
        snprintf(k[4], sizeof(k[4]), "%srl:{%s}%s", pre, u, g->rl_key[1]);
        snprintf(k[5], sizeof(k[5]), "%slp:{%s}", pre, u);
    } else {
        memcpy(k[2], k[0], sizeof(k[0]));
        snprintf(k[3], sizeof(k[3]), "%srl:{%s}%s", pre, ip, g->rl_key[0]);
        memcpy(k[4], k[0], sizeof(k[0]));
        memcpy(k[5], k[0], sizeof(k[0]));
    }
}

/* EVALSHA sha NKEYS lo:user lo:ip lo:pair [rl:ip rl:user lp:user] op */
static void g_head(const struct redis_store *s, const struct store_guard *g, struct gcmd *x,
                   int nkeys, const char *op, enum part p)
{
    memset(x, 0, sizeof(*x));
    sr_arg_s(&x->c, "EVALSHA");
    sr_arg_s(&x->c, s->sha);
    g_num(x, nkeys);
    g_keys(s, g, p, x->k);
    for (int k = 0; k < nkeys; k++)
        sr_arg_s(&x->c, x->k[k]);
    sr_arg_s(&x->c, op);
    x->c.slot = sr_slot(x->k[0]);
}

/* One part's begin: ERR_OK with *verdict, or ERR_BACKEND. */
static int begin_part(struct redis_store *s, struct store_guard *g, int64_t now_ms, enum part p,
                      int *verdict)
{
    struct gcmd x;

    g_head(s, g, &x, 6, "gbegin", p);
    g_num(&x, now_ms);
    for (int i = 0; i < 2; i++) { /* (0: per ip, 1: per user) */
        g_num(&x, in_part(p, i == 0) ? (int64_t)g->rl_interval_ms[i] : 0);
        g_num(&x, (int64_t)g->rl_tau_ms[i]);
    }
    for (int k = 0; k < 3; k++) { /* (0: user, 1: ip, 2: pair) */
        g_num(&x, in_part(p, k == 1) ? g->lock[k].attempts : 0);
        g_num(&x, g->lock[k].window_ms > 0 ? g->lock[k].window_ms : 1);
    }
    struct redis_reply *r = sr_sync_cmd(s, &x.c);
    int rc =
        r && redis_reply_kind(r) == RK_ARRAY && redis_reply_count(r) == 2 ? ERR_OK : ERR_BACKEND;
    if (rc == ERR_OK) {
        *verdict = (int)sr_num(redis_reply_at(r, 0));
        g->retry_ms = sr_num(redis_reply_at(r, 1));
    }
    redis_reply_free(r);
    return rc;
}

static void cancel_part(struct redis_store *s, struct store_guard *g, enum part p)
{
    struct gcmd x;

    g_head(s, g, &x, 3, "gcancel", p);
    for (int k = 0; k < 3; k++)
        g_num(&x, in_part(p, k == 1) ? g->lock[k].attempts : 0);
    redis_reply_free(sr_sync_cmd(s, &x.c));
}

int sr_guard_begin(struct store *st, struct store_guard *g, int64_t now_ms, int *verdict)
{
    struct redis_store *s = R(st);
    int rc;

    if (!s->cluster) {
        rc = begin_part(s, g, now_ms, PART_ALL, verdict);
    } else {
        /* The address's part, then the username's; refused there, the address's
         * reservation is given back (its login rate stays spent: the attempt was made). */
        rc = begin_part(s, g, now_ms, PART_IP, verdict);
        if (rc == ERR_OK && *verdict == STORE_GUARD_OK) {
            rc = begin_part(s, g, now_ms, PART_USER, verdict);
            if (rc != ERR_OK || *verdict != STORE_GUARD_OK)
                cancel_part(s, g, PART_IP);
        }
    }
    g->held = rc == ERR_OK && *verdict == STORE_GUARD_OK;
    return rc;
}

static unsigned end_part(struct redis_store *s, struct store_guard *g, int success, int64_t now_ms,
                         enum part p)
{
    struct gcmd x;

    g_head(s, g, &x, 3, "gend", p);
    g_num(&x, now_ms);
    g_num(&x, success ? 1 : 0);
    for (int k = 0; k < 3; k++) {
        g_num(&x, in_part(p, k == 1) ? g->lock[k].attempts : 0);
        g_num(&x, g->lock[k].base_ms);
        g_num(&x, g->lock[k].max_ms);
        g_num(&x, g->lock[k].window_ms > 0 ? g->lock[k].window_ms : 1);
    }
    struct redis_reply *r = sr_sync_cmd(s, &x.c);
    unsigned locked = r && redis_reply_kind(r) == RK_INTEGER ? (unsigned)redis_reply_int(r) : 0;
    redis_reply_free(r);
    return locked; /* (lost: the reservation expires with its window) */
}

unsigned sr_guard_end(struct store *st, struct store_guard *g, int success, int64_t now_ms)
{
    struct redis_store *s = R(st);
    if (!s->cluster)
        return end_part(s, g, success, now_ms, PART_ALL);
    return end_part(s, g, success, now_ms, PART_IP) | end_part(s, g, success, now_ms, PART_USER);
}

void sr_guard_cancel(struct store *st, struct store_guard *g)
{
    struct redis_store *s = R(st);
    if (!s->cluster) {
        cancel_part(s, g, PART_ALL);
        return;
    }
    cancel_part(s, g, PART_IP);
    cancel_part(s, g, PART_USER);
}

void sr_guard_unlock(struct store *st, const char *user_key, const char *msg)
{
    struct redis_store *s = R(st);
    char k1[PREFIX_MAX + 64], k2[PREFIX_MAX + 64], ch[PREFIX_MAX + 8];
    const char *o = s->cluster ? "{" : "", *c = s->cluster ? "}" : "";
    snprintf(k1, sizeof(k1), "%slo:%s%s%s", s->prefix, o, user_key, c);
    snprintf(k2, sizeof(k2), "%slp:%s%s%s", s->prefix, o, user_key, c);
    snprintf(ch, sizeof(ch), "%sinval", s->prefix);
    const char *a[] = {"EVALSHA", s->sha, "2", k1, k2, "gunlock", ch, msg};
    size_t l[] = {7, 40, 1, strlen(k1), strlen(k2), 7, strlen(ch), strlen(msg)};
    redis_reply_free(sr_sync_fmt(s, 8, a, l));
}
