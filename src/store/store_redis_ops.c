/* SPDX-License-Identifier: MIT */
/* The Redis store's synchronous operations: reads and writes with or without a loop, the
 * lists, the statistics and metrics, readiness, leases and pins (store_redis.c holds the
 * connections and the vtables). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "crypto/cr.h"
#include "metrics/met_text.h"
#include "redis/redis_cluster.h"
#include "redis/redis_conn.h"
#include "redis/redis_csync.h"
#include "redis/redis_sentinel.h"
#include "redis/redis_slot.h"
#include "redis/redis_sync.h"
#include "redis/redis_url.h"
#include "redis/redis_uv.h"
#include "store/store_rec.h"
#include "store/store_redis_int.h"

/* ---- synchronous operations ------------------------------------------------------------ */

/* One write and, when it must wait for replicas, its WAIT (on the same node: our write is
 * among those counted). op->status. */
static int exec_one(struct redis_store *s, struct store_op *op, const struct cmd *c)
{
    struct redis_reply *r = sr_sync_cmd(s, c);
    atomic_fetch_add(&s->ops, 1);
    bool answered = r != NULL;
    sr_decode(op, r);
    sr_note_write(s, op);
    redis_reply_free(r);
    if (answered && sr_waits(s, op)) {
        char n[12], ms[12];
        const char *av[3];
        size_t al[3];
        sr_wait_cmd(s, n, ms, av, al);
        r = sr_sync_at(s, c->slot, 3, av, al);
        if (!sr_wait_ok(s, r))
            op->status = ERR_BACKEND;
        redis_reply_free(r);
    }
    return op->status;
}

int sr_exec(struct store *st, struct store_op *op)
{
    struct redis_store *s = R(st);
    struct cmd c;

    if (op->kind == STORE_OP_PURGE) {
        op->purged = 0;
        return op->status = ERR_OK;
    }
    if (sr_build(s, op, &c))
        return op->status = ERR_INVAL;
    if (exec_one(s, op, &c) != ERR_OK || !s->cluster || !op->sess_sub[0])
        return op->status;
    /* On a cluster the user's record and its sessions generation are in different slots:
     * the record first, then the generation raised to the record's (never lowered). Until
     * the second step, a family of before still rotates (the change is not acknowledged
     * yet); should it fail, the answer is 503 and the next login of the user, whose family
     * carries the record's generation, raises it (docs/internals/STORE.md). */
    sr_build_sessions(s, op, &c);
    return exec_one(s, op, &c);
}

int sr_get(struct store *st, enum store_table t, const void *key, size_t klen, struct buf *out,
           struct loop *lp, struct store_op *op)
{
    struct redis_store *s = R(st);
    struct cmd c;
    char k[sizeof(c.keys[0])];

    if (t == STORE_T_META)
        return ERR_INVAL;
    if (op && lp) { /* on lp's own connection, completing there */
        op->kind = STORE_OP_GET;
        op->table = t;
        memcpy(op->key, key, klen);
        op->key_len = klen;
        op->_out = out;
        return sr_submit(st, lp, op);
    }
    size_t kn = sr_key_of(s, k, t, key, klen);
    memset(&c, 0, sizeof(c));
    sr_read_cmd(s, t, k, kn, &c);
    struct redis_reply *r = sr_sync_cmd(s, &c);
    if (!r)
        return ERR_BACKEND;
    int rc = redis_reply_kind(r) == RK_ERROR ? ERR_BACKEND : sr_value_into(t, r, out);
    redis_reply_free(r);
    return rc;
}

/* The nodes a SCAN or MEMORY STATS must visit: the one Redis (index 0), or each primary. */
#define NODES_MAX 64
static unsigned scan_nodes(struct redis_store *s, unsigned *out)
{
    struct sr_link *l = s->cluster ? sr_sync_ctx(s) : NULL;
    if (!s->cluster) {
        out[0] = 0;
        return 1;
    }
    return l ? redis_csync_primaries(l->many, out, NODES_MAX) : 0;
}

static struct redis_reply *node_cmd(struct redis_store *s, unsigned node, int argc,
                                    const char **argv, const size_t *lens)
{
    if (!s->cluster)
        return sr_sync_fmt(s, argc, argv, lens);
    struct sr_link *l = sr_sync_ctx(s);
    return l ? redis_csync_node_cmd(l->many, node, argc, argv, lens) : NULL;
}

/* One SCAN step over a table's keys on one node: the reply ({next cursor, keys}), with
 * cursor advanced; NULL on failure. */
static struct redis_reply *scan_page(struct redis_store *s, unsigned node, enum store_table t,
                                     char *cursor, size_t cap)
{
    char pat[PREFIX_MAX + 16];
    snprintf(pat, sizeof(pat), "%s%s*", s->prefix, sr_tags[t]);
    const char *a[] = {"SCAN", cursor, "MATCH", pat, "COUNT", "1000"};
    size_t l[] = {4, strlen(cursor), 5, strlen(pat), 5, 4};
    struct redis_reply *r = node_cmd(s, node, 6, a, l);
    const struct redis_reply *c0 = r ? redis_reply_at(r, 0) : NULL,
                             *c1 = r ? redis_reply_at(r, 1) : NULL;
    if (r && (redis_reply_kind(r) != RK_ARRAY || redis_reply_count(r) != 2 || !c0 ||
              redis_reply_kind(c0) != RK_STRING || !c1 || redis_reply_kind(c1) != RK_ARRAY ||
              sr_str_to(c0, cursor, cap))) {
        redis_reply_free(r);
        r = NULL;
    }
    return r;
}

/* Listed through an index set (see sr_idx_key), or else by SCAN. */
static bool indexed(const struct redis_store *s, enum store_table t)
{
    return sr_indexed(t) && !(s->cluster && t == STORE_T_USERS);
}

/* One listed key: its record read and handed to fn. ERR_OK, or fn's or the store's error. */
static int each_key(struct redis_store *s, enum store_table t, const struct redis_reply *e,
                    bool scan, store_each_cb fn, void *ctx, struct buf *v)
{
    size_t plen = strlen(s->prefix) + strlen(sr_tags[t]), elen;
    const char *estr = redis_reply_str(e, &elen);
    struct cmd c;
    char k[sizeof(c.keys[0])];
    uint8_t raw[STORE_KEY_MAX];
    const void *kp = estr;
    size_t kl = elen;

    if (redis_reply_kind(e) != RK_STRING)
        return ERR_OK;
    if (scan) { /* the full key name: take the table's key back out of it */
        if (elen < plen || elen >= sizeof(k))
            return ERR_OK;
        if (s->cluster && estr[plen] == '{') { /* (its hash tag) */
            const char *close = memchr(estr + plen, '}', elen - plen);
            if (!close)
                return ERR_OK;
            plen = (size_t)(close + 1 - estr);
        }
        kl = elen - plen;
        kp = estr + plen;
        if (t == STORE_T_REFRESH || t == STORE_T_FAMILIES) {
            size_t bn = t == STORE_T_REFRESH ? STORE_DIGEST : STORE_FAMILY_ID;
            if (sr_unhex(estr + plen, kl, raw, bn))
                return ERR_OK;
            kp = raw;
            kl = bn;
        }
        memcpy(k, estr, elen);
        k[elen] = '\0';
    } else {
        sr_key_of(s, k, t, estr, elen);
    }
    memset(&c, 0, sizeof(c));
    sr_read_cmd(s, t, k, strlen(k), &c);
    struct redis_reply *r = sr_sync_cmd(s, &c);
    if (!r)
        return ERR_BACKEND;
    int vr = sr_value_into(t, r, v);
    redis_reply_free(r);
    if (vr == ERR_OK)
        return fn(ctx, kp, kl, v->p, v->len);
    return vr == ERR_NOTFOUND ? ERR_OK : vr; /* (gone since it was listed: skipped) */
}

/* The members of an index set; NULL on failure. */
static struct redis_reply *index_members(struct redis_store *s, enum store_table t)
{
    char k[PREFIX_MAX + 16];
    sr_idx_key(s, k, sizeof(k), t);
    const char *a[] = {"SMEMBERS", k};
    size_t l[] = {8, strlen(k)};
    struct redis_reply *r = sr_sync_fmt(s, 2, a, l);
    if (r && redis_reply_kind(r) != RK_ARRAY) {
        redis_reply_free(r);
        r = NULL;
    }
    return r;
}

/* Small tables: the members of their index. The others: SCAN, of every primary on a
 * cluster (rare: the revoke-every-session reaction, maintenance tools). */
int sr_each(struct store *st, enum store_table t, store_each_cb fn, void *ctx)
{
    struct redis_store *s = R(st);
    unsigned nodes[NODES_MAX], nn = 0;
    struct buf v;
    int rc = ERR_OK;

    if (t == STORE_T_META)
        return ERR_OK;
    buf_init(&v, 4096);
    if (indexed(s, t)) {
        struct redis_reply *list = index_members(s, t);
        rc = list ? ERR_OK : ERR_BACKEND;
        for (size_t i = 0; list && i < redis_reply_count(list) && rc == ERR_OK; i++)
            rc = each_key(s, t, redis_reply_at(list, i), false, fn, ctx, &v);
        redis_reply_free(list);
    } else if (!(nn = scan_nodes(s, nodes))) {
        rc = ERR_BACKEND;
    }
    for (unsigned n = 0; !indexed(s, t) && n < nn && rc == ERR_OK; n++) {
        char cursor[32] = "0";
        do {
            struct redis_reply *list = scan_page(s, nodes[n], t, cursor, sizeof(cursor));
            if (!list) {
                rc = ERR_BACKEND;
                break;
            }
            const struct redis_reply *names = redis_reply_at(list, 1);
            for (size_t i = 0; i < redis_reply_count(names) && rc == ERR_OK; i++)
                rc = each_key(s, t, redis_reply_at(names, i), true, fn, ctx, &v);
            redis_reply_free(list);
        } while (rc == ERR_OK && strcmp(cursor, "0") != 0);
    }
    buf_fini(&v);
    return rc;
}

uint64_t sr_generation(struct store *st)
{
    struct redis_store *s = R(st);
    const char *a[] = {"GET", s->gen_key};
    size_t l[] = {3, strlen(s->gen_key)};
    struct redis_reply *r = sr_sync_fmt(s, 2, a, l);
    /* Unreachable: the last value read, so that caches keyed by it (clients, the key ring)
     * stay valid through an outage instead of all missing at once. */
    uint64_t g =
        r && redis_reply_kind(r) != RK_ERROR ? (uint64_t)sr_num(r) : atomic_load(&s->last_gen);
    redis_reply_free(r);
    atomic_store(&s->last_gen, g);
    return g;
}

uint64_t sr_generation_recent(struct store *st)
{
    struct redis_store *s = R(st);
    if (!atomic_load(&s->gen_polled) || atomic_exchange(&s->gen_dirty, 0))
        return sr_generation(st);
    return atomic_load(&s->last_gen);
}

void sr_stats(struct store *st, struct store_stats *out)
{
    struct redis_store *s = R(st);
    memset(out, 0, sizeof(*out));
    out->ops = out->commits = atomic_load(&s->ops);
    out->max_batch = 1;
    out->queue_depth = (unsigned)atomic_load(&s->inflight);
    out->timeouts = atomic_load(&s->timeouts);
    out->wait_short = atomic_load(&s->wait_short);
    out->degraded = s->cluster && !atomic_load(&s->cluster_full);
}

/* On a cluster: each primary's state (the service thread's check) and each node's commands,
 * redirections, error answers and round trips, summed over the loops. */
int sr_metrics_text(struct store *st, struct buf *b)
{
    struct redis_store *s = R(st);
    struct redis_cluster_node_stats sum[SNAP_NODES * 2];
    unsigned n = 0;
    int rc = 0;

    if (!s->cluster)
        return 0;
    pthread_mutex_lock(&s->stats_mu);
    for (unsigned i = 0; i < LOOPS_MAX; i++) {
        const struct aconn *a = s->aconns[i];
        for (unsigned k = 0; a && k < a->nsnap; k++) {
            const struct redis_cluster_node_stats *x = &a->snap[k];
            unsigned j = 0;
            while (j < n && strcmp(sum[j].addr, x->addr) != 0)
                j++;
            if (j == n && n == SNAP_NODES * 2)
                continue;
            if (j == n) {
                memset(&sum[n], 0, sizeof(sum[n]));
                snprintf(sum[n].addr, sizeof(sum[n].addr), "%s", x->addr);
                n++;
            }
            sum[j].commands += x->commands;
            sum[j].redirects += x->redirects;
            sum[j].errors += x->errors;
            sum[j].replies += x->replies;
            sum[j].latency_ns += x->latency_ns;
        }
    }
    rc |= met_text_family(b, "floodgate_store_node_up", "gauge",
                          "Redis Cluster: 1 if this primary answered the last check (every "
                          "second).");
    for (unsigned i = 0; i < s->nup; i++)
        rc |= buf_printf(b, "floodgate_store_node_up{node=\"%s\"} %d\n", s->node_up[i].addr,
                         s->node_up[i].up);
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"floodgate_store_node_commands_total", "Redis Cluster: commands sent to this node."},
        {"floodgate_store_node_redirects_total",
         "Redis Cluster: MOVED and ASK answers from this node (followed)."},
        {"floodgate_store_node_errors_total",
         "Redis Cluster: other error answers from this node (TRYAGAIN, CLUSTERDOWN, ... "
         "retried)."},
        {"floodgate_store_node_latency_seconds_count", "Redis Cluster: answers from this node."},
        {"floodgate_store_node_latency_seconds_sum",
         "Redis Cluster: the round trips of those answers, summed."},
    };
    for (unsigned f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        rc |= met_text_family(b, fam[f].name, "counter", fam[f].help);
        for (unsigned i = 0; i < n; i++) {
            const struct redis_cluster_node_stats *x = &sum[i];
            if (f < 4)
                rc |= buf_printf(b, "%s{node=\"%s\"} %" PRIu64 "\n", fam[f].name, x->addr,
                                 f == 0   ? x->commands
                                 : f == 1 ? x->redirects
                                 : f == 2 ? x->errors
                                          : x->replies);
            else
                rc |= buf_printf(b, "%s{node=\"%s\"} %.6f\n", fam[f].name, x->addr,
                                 (double)x->latency_ns / 1e9);
        }
    }
    pthread_mutex_unlock(&s->stats_mu);
    return rc;
}

int sr_usage(struct store *st, enum store_table t, uint64_t *entries, uint64_t *bytes)
{
    struct redis_store *s = R(st);
    unsigned nodes[NODES_MAX], nn = 0;
    uint64_t n = 0;
    int rc = t == STORE_T_META ? ERR_INVAL : ERR_OK;

    if (rc == ERR_OK && indexed(s, t)) {
        char k[PREFIX_MAX + 16];
        sr_idx_key(s, k, sizeof(k), t);
        const char *a[] = {"SCARD", k};
        size_t l[] = {5, strlen(k)};
        struct redis_reply *r = sr_sync_fmt(s, 2, a, l);
        rc = r && redis_reply_kind(r) == RK_INTEGER ? ERR_OK : ERR_BACKEND;
        n = r ? (uint64_t)sr_num(r) : 0;
        redis_reply_free(r);
    }
    if (rc == ERR_OK && !(nn = scan_nodes(s, nodes)))
        rc = ERR_BACKEND;
    for (unsigned i = 0; rc == ERR_OK && !indexed(s, t) && i < nn; i++) {
        char cursor[32] = "0";
        do {
            struct redis_reply *r = scan_page(s, nodes[i], t, cursor, sizeof(cursor));
            if (!r) {
                rc = ERR_BACKEND;
                break;
            }
            n += redis_reply_count(redis_reply_at(r, 1));
            redis_reply_free(r);
        } while (strcmp(cursor, "0") != 0);
    }
    *entries = n;
    *bytes = 0;
    for (unsigned i = 0; rc == ERR_OK && i < nn; i++) { /* (every primary's, summed) */
        const char *a[] = {"MEMORY", "STATS"};
        size_t l[] = {6, 5};
        struct redis_reply *r = node_cmd(s, nodes[i], 2, a, l);
        for (size_t k = 0; r && k + 1 < redis_reply_count(r); k += 2)
            if (redis_reply_is(redis_reply_at(r, k), "total.allocated", 15))
                *bytes += (uint64_t)sr_num(redis_reply_at(r, k + 1));
        redis_reply_free(r);
    }
    return rc;
}

int sr_ready(struct store *st, uint64_t *stale_ms)
{
    struct redis_store *s = R(st);
    int ok = atomic_load(&s->healthy);
    if (stale_ms)
        *stale_ms = ok ? 0 : clock_mono_ms() - atomic_load(&s->last_ok_ms);
    return ok;
}

void sr_on_invalidate(struct store *st, store_inval_cb fn, void *arg)
{
    struct redis_store *s = R(st);
    pthread_mutex_lock(&s->cb_mu);
    s->inval = fn;
    s->inval_arg = arg;
    pthread_mutex_unlock(&s->cb_mu);
}

void sr_invalidate(struct redis_store *s, const char *msg, size_t len)
{
    pthread_mutex_lock(&s->cb_mu);
    if (s->inval)
        s->inval(s->inval_arg, msg, len);
    pthread_mutex_unlock(&s->cb_mu);
}

/* The instance id in leases: host name and pid, for whoever inspects the key. */
static void holder(char *out, size_t cap)
{
    char host[128] = "?";
    gethostname(host, sizeof(host) - 1);
    snprintf(out, cap, "%s:%d", host, (int)getpid());
}

int sr_lease(struct store *st, const char *name, unsigned ttl_ms)
{
    struct redis_store *s = R(st);
    char k[PREFIX_MAX + 64], me[192], ms[24];
    snprintf(k, sizeof(k), "%slease:%s", s->prefix, name);
    holder(me, sizeof(me));
    snprintf(ms, sizeof(ms), "%u", ttl_ms);
    const char *a[] = {"SET", k, me, "NX", "PX", ms};
    size_t l[] = {3, strlen(k), strlen(me), 2, 2, strlen(ms)};
    struct redis_reply *r = sr_sync_fmt(s, 6, a, l);
    int rc = !r ? ERR_BACKEND : redis_reply_kind(r) == RK_STATUS ? ERR_OK : ERR_CONFLICT;
    redis_reply_free(r);
    if (rc == ERR_CONFLICT) { /* ours from an earlier round? */
        const char *g[] = {"GET", k};
        size_t gl[] = {3, strlen(k)};
        r = sr_sync_fmt(s, 2, g, gl);
        if (redis_reply_is(r, me, strlen(me)))
            rc = ERR_OK;
        redis_reply_free(r);
    }
    return rc;
}

int sr_pin(struct store *st, const char *name, const void *val, size_t len)
{
    struct redis_store *s = R(st);
    char k[PREFIX_MAX + 64];
    snprintf(k, sizeof(k), "%spin:%s", s->prefix, name);
    const char *a[] = {"SET", k, val, "NX", "GET"};
    size_t l[] = {3, strlen(k), len, 2, 3};
    struct redis_reply *r = sr_sync_fmt(s, 5, a, l); /* SET ... NX GET: Redis >= 7.0 */
    int rc = !r                                ? ERR_BACKEND
             : redis_reply_kind(r) == RK_NIL   ? ERR_OK
             : redis_reply_kind(r) == RK_ERROR ? ERR_BACKEND
             : redis_reply_is(r, val, len)     ? ERR_OK
                                               : ERR_CONFLICT;
    redis_reply_free(r);
    return rc;
}
