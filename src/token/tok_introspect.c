/* SPDX-License-Identifier: MIT */
/*
 * Refresh-token introspection as a chain of store reads; see tok_introspect.h.
 */
#include "token/tok_introspect.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "store/store_rec.h"
#include "token/tok_jwt.h"
#include "token/tok_refresh.h"

enum { STEP_RECORD, STEP_FAMILY, STEP_SESSIONS, STEP_DONE };

/* Takes the current read's result (rc) and starts the next read. ERR_AGAIN while a read is
 * under way; otherwise the answer is final (ERR_OK: q->active says; else the store failed). */
static int step(struct tok_rt_introspection *q, int rc)
{
    for (;;) {
        if (rc == ERR_NOTFOUND && q->_step != STEP_SESSIONS)
            return ERR_OK; /* unknown token or family: inactive */
        if (rc && rc != ERR_NOTFOUND)
            return rc;
        switch (q->_step) {
        case STEP_RECORD:
            if (store_refresh_decode((const uint8_t *)q->_b.p, q->_b.len, &q->rt))
                return ERR_OK;
            /* another client's token is not disclosed (RFC 7662 §4), nor a spent or expired
             * one */
            if (strcmp(q->rt.client_id, q->client_id) != 0 || q->rt.state != STORE_RT_LIVE ||
                q->now >= q->rt.idle_expires_at || q->now >= q->rt.expires_at)
                return ERR_OK;
            q->_step = STEP_FAMILY;
            rc = store_get(q->st, STORE_T_FAMILIES, q->rt.family, STORE_FAMILY_ID, &q->_b, q->lp,
                           &q->_op);
            break;
        case STEP_FAMILY: {
            struct store_family f;
            if (store_family_decode((const uint8_t *)q->_b.p, q->_b.len, &f) || f.revoked ||
                q->now >= f.expires_at)
                return ERR_OK;
            q->_step = STEP_SESSIONS;
            rc = store_get(q->st, STORE_T_SESSIONS, q->rt.sub, strlen(q->rt.sub), &q->_b, q->lp,
                           &q->_op);
            break;
        }
        case STEP_SESSIONS: {
            uint64_t gen = 0; /* (none stored: generation 0) */
            if (rc == ERR_OK && store_sessions_decode(q->_b.p, q->_b.len, &gen))
                return ERR_BACKEND;
            q->active = gen == q->rt.gen;
            q->_step = STEP_DONE;
            return ERR_OK;
        }
        default:
            return ERR_OK;
        }
        if (rc == ERR_AGAIN)
            return ERR_AGAIN;
    }
}

static int finish(struct tok_rt_introspection *q, int rc)
{
    buf_fini(&q->_b);
    if (rc == ERR_OK && !q->active)
        memset(&q->rt, 0, sizeof(q->rt)); /* nothing of a token that is not active leaks */
    return rc;
}

static void on_read(struct store_op *op)
{
    struct tok_rt_introspection *q = (struct tok_rt_introspection *)(void *)op;
    int rc = step(q, op->status);
    if (rc != ERR_AGAIN)
        q->done(q, finish(q, rc));
}

int tok_rt_introspect(struct tok_rt_introspection *q, const uint8_t key[CR_HASH_KEY_LEN],
                      struct str token)
{
    uint8_t digest[STORE_DIGEST];
    q->active = false;
    q->_step = STEP_RECORD;
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.on_done = on_read;
    buf_init(&q->_b, STORE_REFRESH_ENC_MAX);
    if (tok_refresh_digest(key, token, digest)) /* not one of ours */
        return finish(q, ERR_OK);
    int rc = store_get(q->st, STORE_T_REFRESH, digest, STORE_DIGEST, &q->_b, q->lp, &q->_op);
    if (rc != ERR_AGAIN)
        rc = step(q, rc);
    return rc == ERR_AGAIN ? ERR_AGAIN : finish(q, rc);
}

bool tok_may_introspect(const struct tok_introspector *who, const struct tok_claims *cl)
{
    return who->any || strcmp(cl->client_id, who->id) == 0 || strcmp(cl->aud, who->id) == 0;
}

/* ,"name":"v" (v escaped), nothing when v is empty; without printf, and the literal part
 * with its length known and one reservation: the cached introspection's answer is made on
 * every call (put_claim's string calls were 1,700 of its instructions, bench/instructions.sh).
 * name is a string literal. */
#define put_claim(b, name, v)                                                                      \
    put_claim_lit(b, ",\"" name "\":\"", sizeof(",\"" name "\":\"") - 1, v)

static int put_claim_lit(struct buf *b, const char *head, size_t hn, const char *v)
{
    size_t vn = strlen(v);
    return vn ? buf_put_json_str(b, head, hn, v, vn) : ERR_OK;
}

/* ,"exp":E,"iat":I} (the literals' lengths known, as put_claim's) */
static int put_times(struct buf *b, int64_t exp, int64_t iat)
{
    int rc = buf_append(b, ",\"exp\":", 7);
    if (!rc)
        rc = buf_put_i64(b, exp);
    if (!rc)
        rc = buf_append(b, ",\"iat\":", 7);
    if (!rc)
        rc = buf_put_i64(b, iat);
    return rc ? rc : buf_append(b, "}", 1);
}

int tok_introspection_json(struct buf *b, const char *issuer, bool active,
                           const struct tok_claims *cl)
{
    if (!active)
        return buf_puts(b, "{\"active\":false}");
    static const char head[] = "{\"active\":true,\"token_type\":\"Bearer\"";
    int rc = buf_append(b, head, sizeof(head) - 1);
    if (!rc)
        rc = put_claim(b, "iss", issuer);
    if (!rc)
        rc = put_claim(b, "sub", cl->sub);
    if (!rc)
        rc = put_claim(b, "client_id", cl->client_id);
    if (!rc)
        rc = put_claim(b, "scope", cl->scope);
    if (!rc)
        rc = put_claim(b, "aud", cl->aud);
    if (!rc)
        rc = put_claim(b, "jti", cl->jti);
    return rc ? rc : put_times(b, cl->exp, cl->iat);
}

int tok_rt_introspection_json(struct buf *b, const char *issuer, bool active,
                              const struct store_refresh *rt)
{
    if (!active)
        return buf_puts(b, "{\"active\":false}");
    int64_t exp = rt->idle_expires_at < rt->expires_at ? rt->idle_expires_at : rt->expires_at;
    int rc = buf_puts(b, "{\"active\":true,\"token_type\":\"refresh_token\"");
    if (!rc)
        rc = put_claim(b, "iss", issuer);
    if (!rc)
        rc = put_claim(b, "sub", rt->sub);
    if (!rc)
        rc = put_claim(b, "client_id", rt->client_id);
    if (!rc)
        rc = put_claim(b, "scope", rt->scope);
    return rc ? rc : put_times(b, exp, rt->issued_at);
}
