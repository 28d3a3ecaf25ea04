/* SPDX-License-Identifier: MIT */
/* Issuing an access token; see tok_issue.h. */
#include "token/tok_issue.h"

#include <string.h>

#include "core/err.h"
#include "core/str.h"
#include "crypto/cr.h"
#include "event/ev.h"

int64_t tok_issue_ttl(const struct tok_issue *o)
{
    int64_t ttl = o->ttl_s;
    /* Under load, longer access tokens, so that fewer refreshes hit the store while the
     * spike lasts (bounded by ttl_max_s; never shortened by the factor). */
    if (o->factor > 1 && ttl < o->ttl_max_s)
        ttl = ttl * o->factor < o->ttl_max_s ? ttl * o->factor : o->ttl_max_s;
    if (o->jitter_s > 0) {
        uint32_t j;
        cr_random_id(&j, sizeof(j));
        int64_t cut = (int64_t)(j % (uint64_t)(o->jitter_s + 1));
        ttl = ttl - cut > 10 ? ttl - cut : 10;
    }
    return ttl;
}

static void issued_event(const struct tok_claims *cl, int64_t ttl, bool refresh)
{
    struct ev e;
    if (!ev_wanted(EV_TOKEN_ISSUED))
        return;
    ev_begin(&e, EV_TOKEN_ISSUED);
    ev_str(&e, "client_id", cl->client_id);
    if (strcmp(cl->sub, cl->client_id) != 0)
        ev_user(&e, cl->sub);
    ev_str(&e, "jti", cl->jti);
    ev_int(&e, "expires_in", ttl);
    ev_str(&e, "scope", cl->scope);
    ev_bool(&e, "refresh_token", refresh);
    ev_publish(&e);
}

int tok_issue_answer(const struct tok_ring *ring, const char *issuer, int64_t now,
                     struct tok_claims *cl, const struct tok_issue *o, struct buf *body)
{
    int64_t ttl = tok_issue_ttl(o);
    struct buf tok;

    if (!cl->aud[0])
        str_copy(cl->aud, sizeof(cl->aud), o->default_aud);
    buf_init(&tok, 16384);
    /* One allocation each for the usual token and answer (they grow if they must). */
    int rc = buf_reserve(&tok, 2048);
    if (!rc)
        rc = buf_reserve(body, 3072);
    if (!rc)
        rc = tok_jwt_issue(ring, o->alg, issuer, now, ttl, cl, &tok);
    if (!rc)
        rc = buf_puts(body, "{\"access_token\":\"");
    if (!rc)
        rc = buf_append(body, tok.p, tok.len);
    if (!rc)
        rc = buf_puts(body, "\",\"token_type\":\"Bearer\",\"expires_in\":");
    if (!rc)
        rc = buf_put_i64(body, ttl);
    if (!rc && o->refresh)
        rc = buf_printf(body, ",\"refresh_token\":\"%s\"", o->refresh);
    if (!rc && o->id) { /* (lives as long as the access token it comes with) */
        rc = buf_puts(body, ",\"id_token\":\"");
        if (!rc)
            rc = tok_id_token_issue(ring, issuer, now, ttl, cl, o->id, (struct str){tok.p, tok.len},
                                    body);
        if (!rc)
            rc = buf_puts(body, "\"");
    }
    if (!rc && cl->scope[0]) {
        rc = buf_puts(body, ",\"scope\":\"");
        if (!rc)
            rc = buf_json_escape(body, cl->scope, strlen(cl->scope));
        if (!rc)
            rc = buf_puts(body, "\"");
    }
    if (!rc)
        rc = buf_puts(body, "}");
    buf_fini(&tok);
    if (!rc)
        issued_event(cl, ttl, o->refresh != NULL);
    return rc;
}
