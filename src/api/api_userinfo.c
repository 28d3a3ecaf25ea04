/* SPDX-License-Identifier: MIT */
/*
 * OpenID Connect UserInfo (Core §5.3): GET or POST /oauth2/userinfo with a bearer access
 * token that carries the openid scope answers the user's claims, as the scopes granted:
 * sub always; profile: preferred_username and name; email: email and email_verified. A
 * token that is not active is 401 with the Bearer challenge (RFC 6750 §3); one without
 * openid is 403 insufficient_scope; a user gone or disabled since is 401 too.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_origins.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "http/http.h"
#include "token/tok_scope.h"

struct userinfo_job {
    struct auth_user_lookup q; /* first */
    struct http_request *r;
    char scope[TOK_SCOPE_MAX + 1];
};

static int put(struct buf *b, const char *name, const char *v)
{
    int rc = buf_printf(b, ",\"%s\":\"", name);
    if (!rc)
        rc = buf_json_escape(b, v, strlen(v));
    return rc ? rc : buf_puts(b, "\"");
}

static void found(struct auth_user_lookup *q, int rc)
{
    struct userinfo_job *j = (struct userinfo_job *)(void *)q;
    struct http_request *r = j->r;
    struct buf b;

    if (rc) {
        api__fail(r, ERR_BACKEND, NULL);
        return;
    }
    if (!q->found) {
        api__bearer_refused(r, 401, "invalid_token", "the user is not there any more");
        return;
    }
    buf_init(&b, 8192);
    rc = buf_puts(&b, "{\"sub\":\"");
    if (!rc)
        rc = buf_json_escape(&b, q->u.id, strlen(q->u.id));
    if (!rc)
        rc = buf_puts(&b, "\"");
    if (!rc && tok_scope_subset(STR_LIT("profile"), j->scope)) {
        rc = put(&b, "preferred_username", q->u.name);
        if (!rc && q->u.display[0])
            rc = put(&b, "name", q->u.display);
    }
    if (!rc && tok_scope_subset(STR_LIT("email"), j->scope) && q->u.email[0]) {
        rc = put(&b, "email", q->u.email);
        if (!rc)
            rc = buf_printf(&b, ",\"email_verified\":%s", q->u.email_verified ? "true" : "false");
    }
    if (!rc)
        rc = buf_puts(&b, "}");
    api__no_store(r);
    api__answer_buf(r, rc, &b, NULL, NULL);
}

static int verified(struct http_request *r, int rc, const struct tok_claims *cl, void *arg)
{
    struct api_ctx *ctx = r->app;
    (void)arg;
    if (rc == ERR_BACKEND)
        return api__fail(r, ERR_BACKEND, "cannot check the token now");
    if (rc)
        return api__bearer_refused(r, 401, "invalid_token", NULL);
    if (!tok_scope_subset(STR_LIT("openid"), cl->scope))
        return api__bearer_refused(r, 403, "insufficient_scope", "the token has no openid scope");
    if (strlen(cl->sub) > AUTH_USER_ID_LEN) /* (a client's own token: no user) */
        return api__bearer_refused(r, 401, "invalid_token", "the token is not a user's");
    struct userinfo_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    str_copy(j->scope, sizeof(j->scope), cl->scope);
    j->q.st = ctx->sh->store;
    j->q.lp = ctx->lp;
    j->q.done = found;
    memcpy(j->q.sub, cl->sub, strlen(cl->sub) + 1);
    rc = auth_user_lookup(&j->q);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    found(&j->q, rc);
    return HTTP_DONE;
}

int api_userinfo(struct http_request *r)
{
    struct str authz = http_header(r, "authorization");
    int cors = api__cors(r, AUTH_ORIGINS_CLIENTS, "GET, POST");

    if (cors >= 0)
        return cors;
    if (api__rate_limited(r, POL_RL_VERIFY))
        return HTTP_DONE;
    if (authz.len <= 7 || !str_eq_nocase((struct str){authz.p, 7}, STR_LIT("Bearer ")))
        return api__bearer_refused(r, 401, "invalid_request", "a Bearer token is required");
    return api__verify(r, (struct str){authz.p + 7, authz.len - 7}, verified, NULL);
}
