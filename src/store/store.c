/* SPDX-License-Identifier: MIT */
/* Dispatch to the backend, and the checks every backend shares. */
#include "store/store.h"

#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "crypto/cr.h"
#include "loop/loop.h"
#include "metrics/met_text.h"
#include "store/store_int.h"

/* A call that may block on the network (every Redis command without an op) must not run on
 * a loop thread: it would stall every connection of that loop. Test builds abort there, so
 * that the suite finds such a call on either store, even where LMDB would not block. */
#ifdef FG_TESTING
#include <stdlib.h>
static void blocking_call(const char *what)
{
    if (loop_current()) {
        log_kv(LOG_ERROR, "blocking store call on a loop thread", "call", what, LOG_END);
        abort();
    }
}
#else
#define blocking_call(what) ((void)0)
#endif

unsigned store_group_of(const char *sub)
{
    return str_fnv1a(sub, strlen(sub)) % STORE_GROUPS;
}

unsigned store_group_in(const uint8_t *id)
{
    return ((unsigned)id[0] << 8 | id[1]) % STORE_GROUPS;
}

void store_group_put(uint8_t *id, unsigned group)
{
    id[0] = (uint8_t)(group % STORE_GROUPS >> 8);
    id[1] = (uint8_t)(group % STORE_GROUPS);
}

void store_family_new(unsigned group, uint8_t *out)
{
    cr_random(out, STORE_FAMILY_ID);
    store_group_put(out, group);
}

int store__validate(const struct store_op *op)
{
    if (op->key_len > STORE_KEY_MAX || !op->on_done)
        return ERR_INVAL;
    switch (op->kind) {
    case STORE_OP_PUT_NEW:
    case STORE_OP_REPLACE:
        if (!op->value && op->value_len)
            return ERR_INVAL;
        __attribute__((fallthrough));
    case STORE_OP_DELETE:
        if ((op->expect && op->kind == STORE_OP_PUT_NEW) || (!op->expect && op->expect_len) ||
            memchr(op->sess_sub, '\0', sizeof(op->sess_sub)) == NULL)
            return ERR_INVAL;
        return (op->table < STORE_T_COUNT && op->table != STORE_T_META && op->key_len) ? ERR_OK
                                                                                       : ERR_INVAL;
    case STORE_OP_JTI_REVOKE:
        return op->key_len ? ERR_OK : ERR_INVAL;
    case STORE_OP_REFRESH_ISSUE:
    case STORE_OP_REFRESH_ROTATE:
    case STORE_OP_FAMILY_REVOKE:
    case STORE_OP_PURGE:
        return ERR_OK;
    case STORE_OP_GET:
        break; /* not a write: store_get makes these */
    }
    return ERR_INVAL;
}

void store_close(struct store *st)
{
    if (st)
        st->vt->close(st);
}

int store_get(struct store *st, enum store_table t, const void *key, size_t klen, struct buf *out,
              struct loop *lp, struct store_op *op)
{
    if (t >= STORE_T_COUNT || klen == 0 || klen > STORE_KEY_MAX)
        return ERR_INVAL;
    if (!op || !lp)
        blocking_call("store_get");
    return st->vt->get(st, t, key, klen, out, lp, op);
}

int store_each(struct store *st, enum store_table t, store_each_cb fn, void *ctx)
{
    blocking_call("store_each");
    return t < STORE_T_COUNT ? st->vt->each(st, t, fn, ctx) : ERR_INVAL;
}

/* What every backend writes for an issued token, whatever the caller left in those fields:
 * live, no successor, never rotated. */
static void issued_as_new(struct store_op *op)
{
    if (op->kind != STORE_OP_REFRESH_ISSUE)
        return;
    op->rt.state = STORE_RT_LIVE;
    memset(op->rt.successor, 0, sizeof(op->rt.successor));
    op->rt.rotated_at = 0;
}

int store_submit(struct store *st, struct loop *lp, struct store_op *op)
{
    int rc = store__validate(op);
    if (rc)
        return rc;
    issued_as_new(op);
    return st->vt->submit(st, lp, op);
}

int store_exec(struct store *st, struct store_op *op)
{
    blocking_call("store_exec");
    int rc = store__validate(op);
    if (rc)
        return rc;
    issued_as_new(op);
    return st->vt->exec(st, op);
}

static void exec_done(struct store_op *op)
{
    (void)op; /* store_exec runs inline: the result is its return value */
}

int store_exec_kv(struct store *st, enum store_op_kind kind, enum store_table t, const char *key,
                  const void *val, size_t vlen)
{
    struct store_op op;
    size_t klen = strlen(key);

    if (klen > STORE_KEY_MAX)
        return ERR_INVAL;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.on_done = exec_done;
    op.table = t;
    op.key_len = klen;
    memcpy(op.key, key, klen);
    op.value = val;
    op.value_len = vlen;
    return store_exec(st, &op);
}

uint64_t store_generation(struct store *st)
{
    return st->vt->generation(st);
}

uint64_t store_generation_recent(struct store *st)
{
    return st->vt->generation_recent ? st->vt->generation_recent(st) : st->vt->generation(st);
}

void store_get_stats(struct store *st, struct store_stats *out)
{
    st->vt->stats(st, out);
}

int store_usage(struct store *st, enum store_table t, uint64_t *entries, uint64_t *bytes)
{
    return t < STORE_T_COUNT ? st->vt->usage(st, t, entries, bytes) : ERR_INVAL;
}

int store_fold(struct store *st, uint64_t *n)
{
    *n = 0;
    return st->vt->fold ? st->vt->fold(st, n) : ERR_OK;
}

void store_loop_release(struct store *st, struct loop *lp)
{
    if (st && st->vt->loop_release)
        st->vt->loop_release(st, lp);
}

int store_ready(struct store *st, uint64_t *stale_ms)
{
    if (st->vt->ready)
        return st->vt->ready(st, stale_ms);
    if (stale_ms)
        *stale_ms = 0;
    return 1;
}

void store_on_invalidate(struct store *st, store_inval_cb fn, void *arg)
{
    if (st->vt->shared)
        st->vt->shared->on_invalidate(st, fn, arg);
}

int store_lease(struct store *st, const char *name, unsigned ttl_ms)
{
    blocking_call("store_lease");
    return st->vt->shared ? st->vt->shared->lease(st, name, ttl_ms) : ERR_OK;
}

int store_pin(struct store *st, const char *name, const void *val, size_t len)
{
    blocking_call("store_pin");
    return st->vt->shared ? st->vt->shared->pin(st, name, val, len) : ERR_OK;
}

int store_console_put(struct store *st, int64_t now_ms, const char *json, size_t len)
{
    blocking_call("store_console_put");
    return st->vt->shared ? st->vt->shared->console_put(st, now_ms, json, len) : ERR_OK;
}

int store_console_each(struct store *st, store_console_cb fn, void *ctx)
{
    blocking_call("store_console_each");
    return st->vt->shared ? st->vt->shared->console_each(st, fn, ctx) : ERR_OK;
}

void store_join(struct store *st)
{
    if (st->vt->shared)
        st->vt->shared->join(st);
}

unsigned store_members(struct store *st)
{
    unsigned n = st->vt->shared ? st->vt->shared->members(st) : 1;
    return n ? n : 1;
}

int store_shared(struct store *st)
{
    return st->vt->shared != NULL;
}

int store_guard_begin(struct store *st, struct store_guard *g, int64_t now_ms, int *verdict)
{
    blocking_call("store_guard_begin");
    g->held = 0;
    g->retry_ms = 0;
    *verdict = STORE_GUARD_OK;
    return st->vt->shared ? st->vt->shared->guard_begin(st, g, now_ms, verdict) : ERR_OK;
}

unsigned store_guard_end(struct store *st, struct store_guard *g, int success, int64_t now_ms)
{
    unsigned locked = 0;
    if (g->held && st->vt->shared)
        locked = st->vt->shared->guard_end(st, g, success, now_ms);
    g->held = 0;
    return locked;
}

void store_guard_cancel(struct store *st, struct store_guard *g)
{
    if (g->held && st->vt->shared)
        st->vt->shared->guard_cancel(st, g);
    g->held = 0;
}

void store_guard_unlock(struct store *st, const char *user_key, const char *msg)
{
    if (st->vt->shared)
        st->vt->shared->guard_unlock(st, user_key, msg);
}

int store_metrics_text(struct store *st, struct buf *b)
{
    uint64_t stale_ms;
    struct store_stats ss;
    store_get_stats(st, &ss);
    int rc =
        met_text_counter(b, "floodgate_store_operations_total",
                         "Store operations done (LMDB: writes; Redis: commands sent).", ss.ops);
    rc |= met_text_counter(b, "floodgate_store_commits_total",
                           "LMDB write transactions committed, each one fsync (Redis: as "
                           "operations).",
                           ss.commits);
    rc |= met_text_family(b, "floodgate_store_commit_seconds_total", "counter",
                          "LMDB: time the writer spent in its batches' write transactions, "
                          "both fsyncs included; over commits_total, the mean commit: what "
                          "the disk's sync costs every waiting write (Redis: 0).");
    rc |= buf_printf(b, "floodgate_store_commit_seconds_total %.6f\n", (double)ss.commit_ns / 1e9);
    rc |= met_text_gauge(b, "floodgate_store_queue_depth",
                         "LMDB: writes waiting for the writer; Redis: commands in flight.",
                         ss.queue_depth);
    rc |= met_text_counter(b, "floodgate_store_timeouts_total",
                           "Redis commands unanswered within redis_timeout (their connection was "
                           "remade).",
                           ss.timeouts);
    rc |= met_text_counter(b, "floodgate_store_wait_short_total",
                           "Redis writes answered 503 because WAIT counted fewer than "
                           "redis_wait_replicas replicas within redis_wait_timeout.",
                           ss.wait_short);
    int up = store_ready(st, &stale_ms) && !ss.degraded;
    rc |= met_text_gauge(b, "floodgate_store_up",
                         "1 if the store answers (a shared Redis: its last health read, every "
                         "200 ms; a Redis Cluster: every slot's primary answered its last "
                         "check, every second, while /readyz stays ready as long as any "
                         "slot is served).",
                         up);
    rc |= met_text_gauge(b, "floodgate_instances",
                         "Serving instances on the store, this one included (Redis: counted "
                         "every second).",
                         store_members(st));
    rc |= met_text_gauge(b, "floodgate_store_stale_seconds",
                         "Seconds since the store last answered; 0 while it does.",
                         (double)stale_ms / 1000.0);
    if (st->vt->metrics_text)
        rc |= st->vt->metrics_text(st, b);
    return rc;
}

bool store_expiring(enum store_table t)
{
    return t == STORE_T_CODES || t == STORE_T_SSO;
}

int store_exp_wrap(int64_t exp, const void *payload, size_t n, struct buf *out)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)((uint64_t)exp >> (8 * i));
    int rc = buf_append(out, le, sizeof(le));
    return rc ? rc : buf_append(out, payload, n);
}

int store_exp_unwrap(const void *v, size_t n, int64_t *exp, const char **payload, size_t *pn)
{
    const uint8_t *p = v;
    uint64_t e = 0;
    if (n < 8)
        return ERR_INVAL;
    for (int i = 7; i >= 0; i--)
        e = e << 8 | p[i];
    *exp = (int64_t)e;
    *payload = (const char *)p + 8;
    *pn = n - 8;
    return ERR_OK;
}
