/* SPDX-License-Identifier: MIT */
/* Access-token verification; see tok_verify.h. */
#include "token/tok_verify.h"

#include <string.h>

#include "core/err.h"
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
        if (rc == ERR_NOTFOUND && tok_local_kid_unknown(t))
            rc = tok_jwt_verify(tok_local_ring(t, q->now), svc->issuer, q->now, svc->leeway_s,
                                q->token, &q->cl);
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
    return start(q);
}

int tok_verify(struct tok_verification *q)
{
    int rc = start(q);
    return rc == ERR_AGAIN ? tok_verify_finish(q) : rc;
}

int tok_verify_finish(struct tok_verification *q)
{
    int rc;
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
    return rc == ERR_AGAIN ? ERR_OK : rc;
}
