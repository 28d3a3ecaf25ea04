/* SPDX-License-Identifier: MIT */
/* The Redis store's shared login guard: lockout and login rates counted exactly across
 * instances by the store script (the gbegin/gend/gcancel/gunlock branches). */
#include <inttypes.h>
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
    char k[6][PREFIX_MAX + 64];
    char n[20][24];
    int nn;
};

static void g_num(struct gcmd *g, int64_t v)
{
    snprintf(g->n[g->nn], sizeof(g->n[0]), "%" PRId64, v);
    sr_arg_s(&g->c, g->n[g->nn++]);
}

/* EVALSHA sha NKEYS lo:user lo:ip lo:pair [rl:ip rl:user lp:user] op */
static void g_head(const struct redis_store *s, const struct store_guard *g, struct gcmd *x,
                   int nkeys, const char *op)
{
    memset(x, 0, sizeof(*x));
    sr_arg_s(&x->c, "EVALSHA");
    sr_arg_s(&x->c, s->sha);
    g_num(x, nkeys);
    for (int k = 0; k < 3; k++) {
        snprintf(x->k[k], sizeof(x->k[k]), "%slo:%s", s->prefix, g->key[k]);
        sr_arg_s(&x->c, x->k[k]);
    }
    if (nkeys == 6) {
        for (int i = 0; i < 2; i++) {
            snprintf(x->k[3 + i], sizeof(x->k[0]), "%srl:%s", s->prefix, g->rl_key[i]);
            sr_arg_s(&x->c, x->k[3 + i]);
        }
        snprintf(x->k[5], sizeof(x->k[5]), "%slp:%s", s->prefix, g->key[0]);
        sr_arg_s(&x->c, x->k[5]);
    }
    sr_arg_s(&x->c, op);
}

int sr_guard_begin(struct store *st, struct store_guard *g, int64_t now_ms, int *verdict)
{
    struct redis_store *s = R(st);
    struct gcmd x;

    g_head(s, g, &x, 6, "gbegin");
    g_num(&x, now_ms);
    for (int i = 0; i < 2; i++) {
        g_num(&x, (int64_t)g->rl_interval_ms[i]);
        g_num(&x, (int64_t)g->rl_tau_ms[i]);
    }
    for (int k = 0; k < 3; k++) {
        g_num(&x, g->lock[k].attempts);
        g_num(&x, g->lock[k].window_ms > 0 ? g->lock[k].window_ms : 1);
    }
    struct redis_reply *r = sr_sync_cmd(s, &x.c);
    int rc =
        r && redis_reply_kind(r) == RK_ARRAY && redis_reply_count(r) == 2 ? ERR_OK : ERR_BACKEND;
    if (rc == ERR_OK) {
        *verdict = (int)sr_num(redis_reply_at(r, 0));
        g->retry_ms = sr_num(redis_reply_at(r, 1));
        g->held = *verdict == STORE_GUARD_OK;
    }
    redis_reply_free(r);
    return rc;
}

unsigned sr_guard_end(struct store *st, struct store_guard *g, int success, int64_t now_ms)
{
    struct redis_store *s = R(st);
    struct gcmd x;

    g_head(s, g, &x, 3, "gend");
    g_num(&x, now_ms);
    g_num(&x, success ? 1 : 0);
    for (int k = 0; k < 3; k++) {
        g_num(&x, g->lock[k].attempts);
        g_num(&x, g->lock[k].base_ms);
        g_num(&x, g->lock[k].max_ms);
        g_num(&x, g->lock[k].window_ms > 0 ? g->lock[k].window_ms : 1);
    }
    struct redis_reply *r = sr_sync_cmd(s, &x.c);
    unsigned locked = r && redis_reply_kind(r) == RK_INTEGER ? (unsigned)redis_reply_int(r) : 0;
    redis_reply_free(r);
    return locked; /* (lost: the reservation expires with its window) */
}

void sr_guard_cancel(struct store *st, struct store_guard *g)
{
    struct redis_store *s = R(st);
    struct gcmd x;

    g_head(s, g, &x, 3, "gcancel");
    for (int k = 0; k < 3; k++)
        g_num(&x, g->lock[k].attempts);
    redis_reply_free(sr_sync_cmd(s, &x.c));
}

void sr_guard_unlock(struct store *st, const char *user_key, const char *msg)
{
    struct redis_store *s = R(st);
    char k1[PREFIX_MAX + 64], k2[PREFIX_MAX + 64], ch[PREFIX_MAX + 8];
    snprintf(k1, sizeof(k1), "%slo:%s", s->prefix, user_key);
    snprintf(k2, sizeof(k2), "%slp:%s", s->prefix, user_key);
    snprintf(ch, sizeof(ch), "%sinval", s->prefix);
    const char *a[] = {"EVALSHA", s->sha, "2", k1, k2, "gunlock", ch, msg};
    size_t l[] = {7, 40, 1, strlen(k1), strlen(k2), 7, strlen(ch), strlen(msg)};
    redis_reply_free(sr_sync_fmt(s, 8, a, l));
}
