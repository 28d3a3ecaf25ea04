/* SPDX-License-Identifier: MIT */
/* Revocation of refresh families and access tokens; see tok_revoke.h. */
#include "token/tok_revoke.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "event/ev.h"
#include "store/store_rec.h"
#include "token/tok_cache.h"
#include "token/tok_refresh.h"
#include "token/tok_verify.h"

/* One step ended: the last one answers (through done when the answer was deferred). */
static int step_done(struct tok_revocation *q, bool deferred)
{
    if (--q->_pending > 0)
        return ERR_AGAIN;
    int rc = q->_failed ? ERR_BACKEND : ERR_OK;
    if (deferred)
        q->done(q, rc);
    return rc;
}

static void on_family(struct store_op *op)
{
    struct tok_revocation *q = CONTAINER_OF(op, struct tok_revocation, _family);
    if (op->status && op->status != ERR_NOTFOUND)
        q->_failed = 1;
    else
        q->family_revoked = true;
    step_done(q, true);
}

static void on_jti(struct store_op *op)
{
    struct tok_revocation *q = CONTAINER_OF(op, struct tok_revocation, _jti);
    if (op->status == ERR_OK) {
        /* Durable: every thread's cache drops it (other instances hear it from the store). */
        tok_revoked_publish(q->jti, strlen(q->jti), q->jti_exp, q->now);
        if (q->cache && q->access.p)
            tok_cache_drop(q->cache, q->access);
        q->access_revoked = true;
        if (ev_wanted(EV_TOKEN_REVOKED)) {
            struct ev e;
            ev_begin(&e, EV_TOKEN_REVOKED);
            ev_str(&e, "token", "access");
            ev_str(&e, "jti", q->jti);
            ev_publish(&e);
        }
    } else if (op->status != ERR_NOTFOUND) {
        q->_failed = 1;
    }
    step_done(q, true);
}

/* The refresh token's record was read (rc): queues its family's revocation if the token
 * belongs to the client. */
static void family_read(struct tok_revocation *q, int rc)
{
    struct store_refresh rt;

    if (rc == ERR_OK)
        rc = store_refresh_decode((const uint8_t *)q->_b.p, q->_b.len, &rt);
    buf_fini(&q->_b);
    if (rc == ERR_NOTFOUND || rc == ERR_INVAL)
        return;
    if (rc) {
        q->_failed = 1;
        return;
    }
    if (strcmp(rt.client_id, q->client_id) != 0)
        return; /* RFC 7009 §2.1: not this client's token; nothing is revoked */
    memset(&q->_family, 0, sizeof(q->_family));
    q->_family.kind = STORE_OP_FAMILY_REVOKE;
    q->_family.on_done = on_family;
    q->_family.now = q->now;
    memcpy(q->_family.rt.family, rt.family, STORE_FAMILY_ID);
    if (store_submit(q->svc->st, q->lp, &q->_family) != ERR_AGAIN) {
        q->_failed = 1;
        return;
    }
    q->_pending++;
    if (ev_wanted(EV_TOKEN_REVOKED)) {
        struct ev e;
        ev_begin(&e, EV_TOKEN_REVOKED);
        ev_str(&e, "token", "refresh_family");
        ev_user(&e, rt.sub);
        ev_str(&e, "client_id", rt.client_id);
        ev_publish(&e);
    }
}

static void on_read(struct store_op *op)
{
    struct tok_revocation *q = (struct tok_revocation *)(void *)op;
    family_read(q, op->status);
    step_done(q, true);
}

/* Reads the refresh token's record first (without blocking the loop on a shared store). */
static void start_family(struct tok_revocation *q)
{
    uint8_t digest[CR_HASH_LEN];

    if (tok_refresh_digest(q->svc->key, q->refresh, digest))
        return; /* not one of ours: nothing to revoke */
    memset(&q->_read, 0, sizeof(q->_read));
    q->_read.on_done = on_read;
    buf_init(&q->_b, STORE_REFRESH_ENC_MAX);
    int rc =
        store_get(q->svc->st, STORE_T_REFRESH, digest, sizeof(digest), &q->_b, q->lp, &q->_read);
    if (rc == ERR_AGAIN)
        q->_pending++;
    else
        family_read(q, rc);
}

static void start_jti(struct tok_revocation *q)
{
    memset(&q->_jti, 0, sizeof(q->_jti));
    q->_jti.kind = STORE_OP_JTI_REVOKE;
    q->_jti.on_done = on_jti;
    q->_jti.key_len = strlen(q->jti);
    memcpy(q->_jti.key, q->jti, q->_jti.key_len);
    q->_jti.jti_expires_at = q->jti_exp;
    q->_jti.now = q->now;
    if (store_submit(q->svc->st, q->lp, &q->_jti) == ERR_AGAIN)
        q->_pending++;
    else
        q->_failed = 1;
}

int tok_revoke(struct tok_revocation *q)
{
    q->family_revoked = q->access_revoked = false;
    q->_failed = 0;
    q->_pending = 1; /* held until every step is queued: a fast completion cannot answer */
    if (q->refresh.p)
        start_family(q);
    if (q->jti[0])
        start_jti(q);
    return step_done(q, false);
}

int tok_revocation_access(struct tok_revocation *q, struct tok_local *t, struct str access,
                          bool same_client)
{
    struct tok_claims cl;
    /* Expired tokens need no revocation: verification at `now` (with leeway) decides. */
    int rc = tok_verify_signed(t, access, q->now, &cl);

    if (rc == ERR_BACKEND)
        return ERR_BACKEND;
    if (rc)
        return ERR_NOTFOUND;
    if (same_client && strcmp(cl.client_id, q->client_id) != 0)
        return ERR_DENIED;
    q->access = access;
    str_copy(q->jti, sizeof(q->jti), cl.jti);
    q->jti_exp = cl.exp + q->svc->leeway_s;
    return ERR_OK;
}

bool tok_is_refresh_token(struct str token)
{
    return token.len && !memchr(token.p, '.', token.len);
}
