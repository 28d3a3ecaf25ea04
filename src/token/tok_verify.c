/* SPDX-License-Identifier: MIT */
/* Access-token verification; see tok_verify.h. */
#include "token/tok_verify.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "loop/pool.h"
#include "token/tok_cache.h"

/* The first half: the cache, else the signature. ERR_OK (cached and current), ERR_INVAL,
 * ERR_BACKEND (the store has been unreachable longer than stale_ms: fail closed), or
 * ERR_AGAIN: valid, cl filled, and the revoked list must be asked about cl->jti. */
static int start(struct tok_verification *q)
{
    /* (api__verify keeps q on its stack with only the inputs set: the rest is output) */
    // cppcheck-suppress ctuuninitvar
    struct tok_local *t = q->t;
    const struct tok_svc *svc = t->svc;
    uint64_t stale_ms;

    /* (read before the revoked list: a revocation racing with this check wins) */
    q->_epoch = tok_revocation_epoch();
    q->_seq = tok_revoked_seq();
    q->_store_up = store_ready(svc->st, &stale_ms);
    if (!q->_store_up && stale_ms > svc->stale_ms)
        return ERR_BACKEND;
    int hit = tok_cache_get(t->cache, q->token, q->now, q->_epoch, &q->cl);
    if (hit == 1)
        return ERR_OK;
    if (hit == 0) {
        int rc = tok_jwt_verify(tok_local_ring(t, q->now), svc->issuer, q->now, svc->leeway_s,
                                q->token, &q->cl);
        int unknown = rc == ERR_NOTFOUND ? tok_local_kid_unknown(t) : 0;
        if (unknown == 1) /* the main thread's newer ring, taken */
            rc = tok_jwt_verify(tok_local_ring(t, q->now), svc->issuer, q->now, svc->leeway_s,
                                q->token, &q->cl);
        if (unknown == 2 && !q->_reloaded) { /* the store moved past both: read the ring */
            q->_need_keys = true;
            return ERR_AGAIN;
        }
        if (rc)
            return ERR_INVAL;
    }
    return ERR_AGAIN;
}

/* The second half, given what the revoked list said (store_get's result). */
static int end(struct tok_verification *q, int found)
{
    struct tok_local *t = q->t;

    buf_fini(&q->_b);
    if (found == ERR_OK) {
        tok_cache_drop(t->cache, q->token);
        return ERR_INVAL;
    }
    if (found != ERR_NOTFOUND) {
        int known = tok_revoked_known(q->cl.jti, strlen(q->cl.jti), q->now);
        if (known == 1)
            return ERR_INVAL;
        if (q->_store_up || known != 0 || !t->svc->stale_unchecked)
            return ERR_BACKEND;
        return ERR_OK; /* the operator's choice: signature only, within stale_ms */
    }
    tok_cache_put_checked(t->cache, q->token, &q->cl, q->_epoch, q->_seq);
    return ERR_OK;
}

static void on_read(struct store_op *op)
{
    struct tok_verification *q = (struct tok_verification *)(void *)op;
    q->done(q, end(q, op->status));
}

int tok_verify_start(struct tok_verification *q)
{
    q->_need_keys = q->_reloaded = false;
    return start(q);
}

int tok_verify(struct tok_verification *q)
{
    int rc = tok_verify_start(q);
    return rc == ERR_AGAIN ? tok_verify_finish(q) : rc;
}

/* ---- the key ring, read on the worker pool ---------------------------------------------- */

struct reload_job {
    struct pool_job pj; /* first */
    struct tok_local *t;
    struct tok_ring fresh;
    int rc;
};

static void reload_work(struct pool_job *pj)
{
    struct reload_job *j = (struct reload_job *)(void *)pj;
    j->rc = tok_ring_load(&j->fresh, j->t->svc->st);
}

/* Back on the loop thread: the ring installed, and every waiting verification resumed. */
static void reload_done(struct pool_job *pj)
{
    struct reload_job *j = (struct reload_job *)(void *)pj;
    struct tok_local *t = j->t;
    int ok = !pj->cancelled && j->rc == ERR_OK;
    if (ok)
        tok_local__install(t, &j->fresh);
    else
        tok_ring_clear(&j->fresh);
    free(j);
    t->reloading = false;
    struct tok_verification *q = t->waiting;
    t->waiting = NULL;
    while (q) {
        struct tok_verification *next = q->_next; /* (done() may free q) */
        int rc = ok ? start(q) : ERR_BACKEND;     /* (cannot tell: 503, never "inactive") */
        if (rc == ERR_AGAIN)
            rc = tok_verify_finish(q);
        if (rc != ERR_AGAIN)
            q->done(q, rc);
        q = next;
    }
}

/* Queues q until the ring has been read (one read for all who wait). ERR_AGAIN, or
 * ERR_BACKEND if the read cannot be queued. */
static int wait_for_keys(struct tok_verification *q)
{
    struct tok_local *t = q->t;
    q->_need_keys = false;
    q->_reloaded = true;
    if (!t->reloading) {
        struct reload_job *j = calloc(1, sizeof(*j));
        if (!j)
            return ERR_BACKEND;
        j->t = t;
        j->pj.on_work = reload_work;
        j->pj.on_done = reload_done;
        if (!t->svc->pool || pool_submit(t->svc->pool, t->lp, &j->pj)) {
            free(j);
            return ERR_BACKEND;
        }
        t->reloading = true;
    }
    q->_next = t->waiting;
    t->waiting = q;
    return ERR_AGAIN;
}

int tok_verify_finish(struct tok_verification *q)
{
    int rc;
    if (q->_need_keys)
        return wait_for_keys(q);
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.on_done = on_read;
    buf_init(&q->_b, 64);
    rc = store_get(q->t->svc->st, STORE_T_REVOKED, q->cl.jti, strlen(q->cl.jti), &q->_b, q->t->lp,
                   &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : end(q, rc);
}

int tok_verify_signed(struct tok_local *t, struct str token, int64_t now, struct tok_claims *cl)
{
    struct tok_verification q = {.t = t, .token = token, .now = now};

    int rc = start(&q);
    *cl = q.cl;
    if (rc == ERR_AGAIN && q._need_keys)
        return ERR_BACKEND; /* the ring must be read first: "try again", never "not ours" */
    return rc == ERR_AGAIN ? ERR_OK : rc;
}
