/* SPDX-License-Identifier: MIT */
/* Refresh-token rotation and the start of a family; see tok_rotate.h. */
#include "token/tok_rotate.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/ev.h"
#include "loop/pool.h"
#include "store/store_rec.h"

/* ---- the reaction to reuse: every session of the user ends -------------------------------- */

#define REVOKE_ALL_MAX 4096 /* families of one user handled per reuse */

struct revoke_all_job {
    struct pool_job pj; /* first */
    struct store *st;
    char sub[STORE_SUB_MAX + 1];
    uint8_t (*fam)[STORE_FAMILY_ID];
    size_t n;
    int rc;
};

static int on_user_token(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct revoke_all_job *j = ctx;
    struct store_refresh rt;
    (void)key;
    (void)klen;
    if (store_refresh_decode(val, vlen, &rt) || strcmp(rt.sub, j->sub) != 0)
        return ERR_OK;
    for (size_t i = 0; i < j->n; i++)
        if (memcmp(j->fam[i], rt.family, STORE_FAMILY_ID) == 0)
            return ERR_OK;
    if (j->n < REVOKE_ALL_MAX)
        memcpy(j->fam[j->n++], rt.family, STORE_FAMILY_ID);
    return ERR_OK;
}

static void exec_inline(struct store_op *op)
{
    (void)op;
}

/* On a worker: a scan of the refresh tokens (there is no index by user: this is rare and
 * may take a while), then one durable revocation per family. */
static void revoke_all_work(struct pool_job *pj)
{
    struct revoke_all_job *j = (struct revoke_all_job *)(void *)pj;
    j->fam = malloc(REVOKE_ALL_MAX * sizeof(*j->fam));
    if (!j->fam) {
        j->rc = ERR_NOMEM;
        return;
    }
    j->rc = store_each(j->st, STORE_T_REFRESH, on_user_token, j);
    for (size_t i = 0; j->rc == ERR_OK && i < j->n; i++) {
        struct store_op op;
        memset(&op, 0, sizeof(op));
        op.kind = STORE_OP_FAMILY_REVOKE;
        op.on_done = exec_inline; /* store_exec answers by its return value */
        op.now = clock_wall_s();
        memcpy(op.rt.family, j->fam[i], STORE_FAMILY_ID);
        j->rc = store_exec(j->st, &op);
        if (j->rc == ERR_NOTFOUND)
            j->rc = ERR_OK;
    }
}

static void revoke_all_done(struct pool_job *pj)
{
    struct revoke_all_job *j = (struct revoke_all_job *)(void *)pj;
    char n[24];
    snprintf(n, sizeof(n), "%zu", j->n);
    log_kv(j->rc ? LOG_ERROR : LOG_WARN,
           j->rc ? "revoking every session after a token reuse failed"
                 : "every session revoked after a token reuse",
           "sub", j->sub, "families", n, LOG_END);
    if (!j->rc && !pj->cancelled && ev_wanted(EV_TOKEN_REVOKED)) {
        struct ev e;
        ev_begin(&e, EV_TOKEN_REVOKED);
        ev_str(&e, "token", "all_sessions");
        ev_user(&e, j->sub);
        ev_int(&e, "families", (long long)j->n);
        ev_str(&e, "reason", "token.reuse_detected");
        ev_publish(&e);
    }
    free(j->fam);
    free(j);
}

static void revoke_all_sessions(const struct tok_svc *svc, struct loop *lp, const char *sub)
{
    struct revoke_all_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->st = svc->st;
    str_copy(j->sub, sizeof(j->sub), sub);
    j->pj.on_work = revoke_all_work;
    j->pj.on_done = revoke_all_done;
    if (pool_submit(svc->pool, lp, &j->pj)) {
        log_kv(LOG_ERROR, "cannot queue the revocation of every session (pool full)", "sub", sub,
               LOG_END);
        free(j);
    }
}

/* ---- rotation ----------------------------------------------------------------------------- */

static void reused(struct tok_rotation *q, const struct store_refresh *rt)
{
    log_kv(LOG_WARN, "refresh token reuse: family revoked", "sub", rt->sub, "client_id",
           rt->client_id, LOG_END);
    if (ev_wanted(EV_TOKEN_REUSE_DETECTED)) {
        struct ev e;
        ev_begin(&e, EV_TOKEN_REUSE_DETECTED);
        ev_user(&e, rt->sub);
        ev_str(&e, "client_id", rt->client_id);
        if (q->ip[0])
            ev_ip(&e, q->ip);
        ev_str(&e, "action", q->svc->reuse_revokes_all ? "all_sessions_revoked" : "family_revoked");
        ev_publish(&e);
    }
    if (q->svc->reuse_revokes_all)
        revoke_all_sessions(q->svc, q->lp, rt->sub);
}

/* Rotations by outcome, process-wide (for /metrics: a wave of reuse is an attack, or a
 * client that lost answers). */
static _Atomic uint64_t outcomes[4]; /* rotated (or grace), reused, invalid, failed */

int tok_rotate_metrics_text(struct buf *b)
{
    static const char *const names[4] = {"rotated", "reused", "invalid", "failed"};
    int rc = buf_puts(b, "# HELP floodgate_refresh_rotations_total Refresh-token rotations by "
                         "outcome (reused: a spent token presented again, its family revoked; "
                         "failed: the store did not answer).\n"
                         "# TYPE floodgate_refresh_rotations_total counter\n");
    for (int i = 0; i < 4; i++)
        rc |= buf_printf(
            b, "floodgate_refresh_rotations_total{result=\"%s\"} %llu\n", names[i],
            (unsigned long long)atomic_load_explicit(&outcomes[i], memory_order_relaxed));
    return rc;
}

/* The store's verdict (op->status, op->rotate_result, op->rt) as the outputs. */
static int rotated(struct tok_rotation *q)
{
    struct store_op *op = &q->_op;
    int k = op->status                                                                      ? 3
            : op->rotate_result == STORE_ROTATE_REUSED                                      ? 1
            : op->rotate_result == STORE_ROTATED || op->rotate_result == STORE_ROTATE_GRACE ? 0
                                                                                            : 2;
    atomic_fetch_add_explicit(&outcomes[k], 1, memory_order_relaxed);

    if (op->status)
        return ERR_BACKEND;
    q->reused = op->rotate_result == STORE_ROTATE_REUSED;
    if (q->reused)
        reused(q, &op->rt);
    if (op->rotate_result != STORE_ROTATED && op->rotate_result != STORE_ROTATE_GRACE) {
        q->outcome = TOK_ROTATE_INVALID;
        return ERR_OK;
    }
    if (op->rotate_result == STORE_ROTATE_GRACE &&
        tok_refresh_successor_of(q->svc->key, q->token, op->digest, q->successor)) {
        /* the store answered a successor this token never had: refuse, change nothing */
        log_kv(LOG_ERROR, "refresh rotation: the stored successor is not this token's", "sub",
               op->rt.sub, LOG_END);
        q->outcome = TOK_ROTATE_INVALID;
        return ERR_OK;
    }
    q->outcome = op->rotate_result == STORE_ROTATE_GRACE ? TOK_ROTATED_GRACE : TOK_ROTATED;
    str_copy(q->sub, sizeof(q->sub), op->rt.sub);
    /* (a narrower scope was checked against this family's before the rotation, and a
     * family's scope never changes) */
    str_copy(q->scope, sizeof(q->scope), q->want_scope[0] ? q->want_scope : op->rt.scope);
    if (ev_wanted(EV_TOKEN_REFRESHED)) {
        struct ev e;
        ev_begin(&e, EV_TOKEN_REFRESHED);
        ev_user(&e, op->rt.sub);
        ev_str(&e, "client_id", op->rt.client_id);
        ev_bool(&e, "grace", q->outcome == TOK_ROTATED_GRACE);
        ev_publish(&e);
    }
    return ERR_OK;
}

static void on_rotated(struct store_op *op)
{
    struct tok_rotation *q = (struct tok_rotation *)(void *)op;
    q->done(q, rotated(q));
}

/* The presented token's record was read (rc): ERR_OK to go on and rotate (an unknown token
 * or another client's gets the rotation's own "invalid"), ERR_OK with TOK_ROTATE_SCOPE
 * set, or ERR_BACKEND. */
static int scope_checked(struct tok_rotation *q, int rc)
{
    struct store_refresh rt;
    bool beyond = rc == ERR_OK &&
                  store_refresh_decode((const uint8_t *)q->_b.p, q->_b.len, &rt) == ERR_OK &&
                  strcmp(rt.client_id, q->client_id) == 0 &&
                  !tok_scope_subset(str_c(q->want_scope), rt.scope);
    buf_fini(&q->_b);
    if (rc != ERR_OK && rc != ERR_NOTFOUND)
        return ERR_BACKEND;
    if (beyond)
        q->outcome = TOK_ROTATE_SCOPE;
    return ERR_OK;
}

/* Queues the rotation prepared in q->_op: ERR_AGAIN or ERR_LIMIT. */
static int submit(struct tok_rotation *q)
{
    return store_submit(q->svc->st, q->lp, &q->_op) == ERR_AGAIN ? ERR_AGAIN : ERR_LIMIT;
}

static void on_scope_read(struct store_op *op)
{
    struct tok_rotation *q = CONTAINER_OF(op, struct tok_rotation, _read);
    int rc = scope_checked(q, op->status);
    if (rc == ERR_OK && q->outcome != TOK_ROTATE_SCOPE)
        rc = submit(q);
    if (rc != ERR_AGAIN)
        q->done(q, rc);
}

int tok_rotate(struct tok_rotation *q)
{
    const struct tok_svc *svc = q->svc;
    struct store_op *op = &q->_op;

    memset(op, 0, sizeof(*op));
    q->outcome = TOK_ROTATE_INVALID;
    q->reused = false;
    q->sub[0] = q->scope[0] = q->successor[0] = '\0';
    if (tok_refresh_digest(svc->key, q->token, op->old_digest))
        return ERR_OK; /* not one of ours */
    /* (a stamp orders the store's keys; no rule reads it, so it is not q->now) */
    tok_refresh_successor(svc->key, q->token, clock_wall_us(), q->successor, op->digest);
    op->kind = STORE_OP_REFRESH_ROTATE;
    op->on_done = on_rotated;
    op->now = q->now;
    op->grace_s = svc->refresh_grace_s;
    op->rt.idle_expires_at = q->now + svc->refresh_idle_s;
    str_copy(op->rt.client_id, sizeof(op->rt.client_id), q->client_id);
    if (q->want_scope[0]) {
        memset(&q->_read, 0, sizeof(q->_read));
        q->_read.on_done = on_scope_read;
        buf_init(&q->_b, STORE_REFRESH_ENC_MAX);
        int rc = store_get(svc->st, STORE_T_REFRESH, op->old_digest, STORE_DIGEST, &q->_b, q->lp,
                           &q->_read);
        if (rc == ERR_AGAIN)
            return ERR_AGAIN;
        rc = scope_checked(q, rc);
        if (rc != ERR_OK || q->outcome == TOK_ROTATE_SCOPE)
            return rc;
        q->outcome = TOK_ROTATE_INVALID;
    }
    return submit(q);
}

/* ---- the start of a family --------------------------------------------------------------------
 */

static void on_family(struct store_op *op)
{
    struct tok_family *q = (struct tok_family *)(void *)op;
    q->done(q, op->status ? ERR_BACKEND : ERR_OK);
}

int tok_family_start(struct tok_family *q)
{
    const struct tok_svc *svc = q->svc;
    struct store_op *op = &q->_op;

    memset(op, 0, sizeof(*op));
    unsigned group = store_group_of(q->sub); /* (the user's: tokens, family, sessions) */
    tok_refresh_new(group, clock_wall_us(), q->token);
    op->kind = STORE_OP_REFRESH_ISSUE;
    op->on_done = on_family;
    op->now = q->now;
    tok_refresh_digest(svc->key, str_c(q->token), op->digest);
    if (q->preset)
        memcpy(op->rt.family, q->family, STORE_FAMILY_ID);
    else
        store_family_new(group, op->rt.family);
    op->rt.issued_at = q->now;
    op->rt.expires_at = q->now + svc->refresh_ttl_s;
    op->rt.idle_expires_at = q->now + svc->refresh_idle_s;
    op->rt.gen = q->gen;
    str_copy(op->rt.sub, sizeof(op->rt.sub), q->sub);
    str_copy(op->rt.client_id, sizeof(op->rt.client_id), q->client_id);
    str_copy(op->rt.scope, sizeof(op->rt.scope), q->scope);
    return store_submit(svc->st, q->lp, op) == ERR_AGAIN ? ERR_AGAIN : ERR_LIMIT;
}
