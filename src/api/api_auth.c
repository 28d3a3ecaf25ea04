/* SPDX-License-Identifier: MIT */
/*
 * Users and sessions: registration, password login (JSON API and the OAuth password grant),
 * refresh-token rotation (JSON API and the refresh_token grant), logout.
 *
 * Password work runs on the worker pool (api_submit: a full queue is 503 + Retry-After at
 * once). A failed login, an unknown user and a disabled user get the same answer after the
 * same work: an unknown user's password is hashed against a dummy with the current
 * parameters. Tokens are answered only after the refresh family is durable in the store.
 * Every job lives in the request's arena; the request stays open until the job answers, so
 * the arena outlives every callback that refers to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_login.h"
#include "auth/auth_password.h"
#include "auth/auth_register.h"
#include "auth/auth_user.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/ev.h"
#include "http/http.h"
#include "loop/pool.h"
#include "policy/pol_lockout.h"
#include "token/tok_cache.h"
#include "token/tok_refresh.h"
#include "token/tok_revoke.h"
#include "token/tok_rotate.h"
#include "token/tok_scope.h"
#include "token/tok_verify.h"

/* The body held a password; the copy that matters is wiped after hashing, this one now. */
static void wipe_body(struct http_request *r)
{
    if (r->body.len)
        cr_wipe((void *)(uintptr_t)r->body.p, r->body.len);
}

/* ---- registration ---------------------------------------------------------------------- */

struct reg_job {
    struct auth_registration q; /* first */
    struct http_request *r;
};

static void reg_answer(struct auth_registration *q, int rc)
{
    struct http_request *r = ((struct reg_job *)(void *)q)->r;
    char body[256];

    if (rc == ERR_CONFLICT) {
        http_respond_error(r, 409, "username_taken", "that username is taken");
    } else if (rc == ERR_INVAL) {
        http_respond_error(r, 400, q->bad, q->why);
    } else if (rc == ERR_LIMIT) {
        api__busy(r, q->retry_ms);
    } else if (rc) {
        api__fail(r, rc == ERR_AGAIN ? ERR_AGAIN : rc == ERR_NOMEM ? ERR_NOMEM : ERR_BACKEND, NULL);
    } else {
        snprintf(body, sizeof(body), "{\"id\":\"%s\",\"username\":\"%s\"}", q->u.id, q->u.name);
        http_respond_json(r, 201, body);
    }
}

int api_register(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;

    if (api__rate_limited(r, API_RL_REGISTER_GLOBAL) || api__rate_limited(r, API_RL_REGISTER) ||
        api__admission_refused(r) || api__inflight_full(r, API_IF_REGISTER))
        return HTTP_DONE;
    if (atomic_load(&ctx->sh->pol.mode) >= ctx->sh->pol.registration_pause) {
        /* the spike's capacity goes to logins (policy_registration_pause) */
        api__fail_retry(r, ERR_AGAIN, "registration is paused", 30);
        return HTTP_DONE;
    }
    if (!ctx->sh->cfg->registration) {
        http_respond_error(r, 403, "registration_closed", "registration is closed");
        return HTTP_DONE;
    }
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password");
    json_decref(o);
    wipe_body(r);
    if (!user.p || !pw.p) {
        http_respond_error(r, 400, "invalid_request", "username and password are required");
        return HTTP_DONE;
    }
    struct reg_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->q.svc = &ctx->sh->auth;
    j->q.lp = ctx->lp;
    j->q.user = user;
    j->q.pw = pw;
    j->q.now = clock_wall_s();
    j->q.done = reg_answer;
    api__peer_ip(r, j->q.ip, sizeof(j->q.ip));
    int rc = auth_register(&j->q);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    reg_answer(&j->q, rc);
    return HTTP_DONE;
}

/* ---- password login -------------------------------------------------------------------- */

struct login_job {
    struct auth_login q; /* first */
    struct http_request *r;
    int oauth; /* answer as the token endpoint (400 invalid_grant) or the JSON API (401) */
    char aud[sizeof(((struct tok_claims *)0)->aud)];
    int64_t access_ttl;
};

/* The one answer for a wrong password, an unknown or disabled user, and a locked key. */
static void answer_failed_login(struct http_request *r, int oauth)
{
    if (oauth) {
        api__oauth_error(r, 400, "invalid_grant", "invalid username or password");
    } else {
        http_add_header(r, "Cache-Control", "no-store");
        http_respond_error(r, 401, "invalid_credentials", "invalid username or password");
    }
}

/* Refused only because other attempts for the same username or address are in flight: the
 * password was never checked, so it must not be told it is wrong (issue #11 item 9). The
 * same answer for known and unknown usernames (the lockout keys by the name as typed). */
static void answer_busy_login(struct http_request *r, uint64_t retry_ms)
{
    char ra[24];
    uint64_t s = (retry_ms + 999) / 1000;
    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)(s ? s : 1));
    http_add_header(r, "Retry-After", ra);
    http_add_header(r, "Cache-Control", "no-store");
    http_respond_error(r, 429, "too_many_attempts",
                       "other sign-in attempts are in progress; try again shortly");
}

static void login_answer(struct auth_login *q, int rc)
{
    struct login_job *j = (struct login_job *)(void *)q;
    struct http_request *r = j->r;
    struct tok_claims cl;

    if (rc == ERR_LIMIT) {
        api__busy(r, q->retry_ms);
    } else if (rc) {
        api__fail(r, rc, NULL);
    } else if (q->outcome == AUTH_LOGIN_BUSY) {
        answer_busy_login(r, q->retry_ms);
    } else if (q->outcome == AUTH_LOGIN_LIMITED) {
        api__rate_limited_answer(r, API_RL_LOGIN, q->retry_ms);
    } else if (q->outcome != AUTH_LOGIN_OK) {
        answer_failed_login(r, j->oauth);
    } else {
        memset(&cl, 0, sizeof(cl));
        snprintf(cl.sub, sizeof(cl.sub), "%s", q->sub);
        snprintf(cl.client_id, sizeof(cl.client_id), "%s", q->client_id);
        snprintf(cl.scope, sizeof(cl.scope), "%s", q->scope);
        str_copy(cl.aud, sizeof(cl.aud), j->aud);
        api__answer_tokens(r, &cl, j->access_ttl, q->refresh_token);
    }
}

/* Common start of both password logins. */
static int start_login(struct http_request *r, struct str user, struct str pw,
                       const char *client_id, const char *scope, const char *aud,
                       int64_t access_ttl, int oauth)
{
    struct api_ctx *ctx = r->app;
    char name[AUTH_USERNAME_MAX + 1];

    if (api__rate_limited_key(r, API_RL_LOGIN_USER, auth_login_key(user, name)) ||
        api__inflight_full(r, API_IF_LOGIN))
        return HTTP_DONE;
    struct login_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->oauth = oauth;
    j->access_ttl = access_ttl;
    str_copy(j->aud, sizeof(j->aud), aud);
    j->q.svc = &ctx->sh->auth;
    j->q.lp = ctx->lp;
    j->q.user = user;
    j->q.pw = pw;
    j->q.refresh = true;
    j->q.now = clock_wall_s();
    j->q.done = login_answer;
    api__peer_ip(r, j->q.ip, sizeof(j->q.ip));
    api__peer_key(r, j->q.ip_key, sizeof(j->q.ip_key));
    snprintf(j->q.client_id, sizeof(j->q.client_id), "%s", client_id);
    snprintf(j->q.scope, sizeof(j->q.scope), "%s", scope);
    api__login_rules(r, &j->q.rl_ip, &j->q.rl_user);
    int rc = auth_login(&j->q);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    login_answer(&j->q, rc);
    return HTTP_DONE;
}

int api_login(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;

    if (api__rate_limited(r, API_RL_LOGIN_GLOBAL) || api__rate_limited(r, API_RL_LOGIN) ||
        api__admission_refused(r) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password");
    json_decref(o);
    wipe_body(r);
    if (!user.p || !pw.p) {
        http_respond_error(r, 400, "invalid_request", "username and password are required");
        return HTTP_DONE;
    }
    return start_login(r, user, pw, ctx->sh->cfg->first_party_client, "", "",
                       ctx->sh->cfg->access_ttl_ms / 1000, 0);
}

int api__grant_password(struct http_request *r, const struct http_form *f,
                        const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str user, pw, scope;
    char sc[TOK_SCOPE_MAX + 1];

    if (api__rate_limited(r, API_RL_LOGIN_GLOBAL) || api__rate_limited(r, API_RL_LOGIN) ||
        api__admission_refused(r))
        return HTTP_DONE;
    if (!(c->grants & AUTH_GRANT_PASSWORD)) {
        api__oauth_error(r, 400, "unauthorized_client", "this client may not use password");
        return HTTP_DONE;
    }
    int a = api__param(r, f, "username", &user);
    if (a == ERR_INVAL)
        return HTTP_DONE;
    int b = api__param(r, f, "password", &pw);
    if (b == ERR_INVAL)
        return HTTP_DONE;
    if (a || b) {
        api__oauth_error(r, 400, "invalid_request", "username and password are required");
        return HTTP_DONE;
    }
    int rc = api__param(r, f, "scope", &scope);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc == ERR_OK) {
        if (tok_scope_normalize(scope, sc, sizeof(sc)) || !tok_scope_subset(str_c(sc), c->scopes)) {
            api__oauth_error(r, 400, "invalid_scope", "scope not allowed for this client");
            return HTTP_DONE;
        }
    } else {
        snprintf(sc, sizeof(sc), "%s", c->scopes);
    }
    char aud[sizeof(((struct tok_claims *)0)->aud)];
    auth_client_audience(c, NULL, aud, sizeof(aud)); /* (the client's default) */
    return start_login(r, user, pw, c->id, sc, aud,
                       c->access_ttl ? c->access_ttl : ctx->sh->cfg->access_ttl_ms / 1000, 1);
}

/* ---- refresh ------------------------------------------------------------------------- */

struct refresh_job {
    struct tok_rotation q; /* first */
    struct http_request *r;
    int oauth;
    char aud[sizeof(((struct tok_claims *)0)->aud)]; /* the client's default audience */
    int64_t access_ttl;
};

static void refresh_answer(struct tok_rotation *q, int rc)
{
    struct refresh_job *j = (struct refresh_job *)(void *)q;
    struct http_request *r = j->r;
    struct tok_claims cl;

    if (rc) {
        api__fail(r, rc, NULL);
    } else if (q->outcome == TOK_ROTATE_SCOPE) {
        api__oauth_error(r, 400, "invalid_scope", "scope beyond the original grant");
    } else if (q->outcome == TOK_ROTATE_INVALID) {
        if (j->oauth) {
            api__oauth_error(r, 400, "invalid_grant", "invalid refresh token");
        } else {
            http_add_header(r, "Cache-Control", "no-store");
            http_respond_error(r, 401, "invalid_grant", "invalid refresh token");
        }
    } else {
        memset(&cl, 0, sizeof(cl));
        snprintf(cl.sub, sizeof(cl.sub), "%s", q->sub);
        snprintf(cl.client_id, sizeof(cl.client_id), "%s", q->client_id);
        str_copy(cl.aud, sizeof(cl.aud), j->aud);
        snprintf(cl.scope, sizeof(cl.scope), "%s", q->scope);
        api__answer_tokens(r, &cl, j->access_ttl, q->successor);
    }
}

static int start_refresh(struct http_request *r, struct str token, const char *client_id,
                         const char *want_scope, const char *aud, int64_t access_ttl, int oauth)
{
    struct api_ctx *ctx = r->app;
    if (api__inflight_full(r, API_IF_REFRESH))
        return HTTP_DONE;
    struct refresh_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->oauth = oauth;
    j->access_ttl = access_ttl;
    str_copy(j->aud, sizeof(j->aud), aud);
    j->q.svc = &ctx->sh->tok;
    j->q.lp = ctx->lp;
    j->q.token = token;
    j->q.now = clock_wall_s();
    j->q.done = refresh_answer;
    snprintf(j->q.client_id, sizeof(j->q.client_id), "%s", client_id);
    snprintf(j->q.want_scope, sizeof(j->q.want_scope), "%s", want_scope);
    api__peer_ip(r, j->q.ip, sizeof(j->q.ip));
    int rc = tok_rotate(&j->q);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    refresh_answer(&j->q, rc);
    return HTTP_DONE;
}

int api_refresh(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;

    if (api__rate_limited(r, API_RL_REFRESH) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str token = api__jstr(r, o, "refresh_token");
    json_decref(o);
    if (!token.p) {
        http_respond_error(r, 400, "invalid_request", "refresh_token is required");
        return HTTP_DONE;
    }
    return start_refresh(r, token, ctx->sh->cfg->first_party_client, "", "",
                         ctx->sh->cfg->access_ttl_ms / 1000, 0);
}

int api__grant_refresh(struct http_request *r, const struct http_form *f,
                       const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str token, scope;
    char sc[TOK_SCOPE_MAX + 1] = "";

    if (!(c->grants & AUTH_GRANT_REFRESH_TOKEN)) {
        api__oauth_error(r, 400, "unauthorized_client", "this client may not use refresh_token");
        return HTTP_DONE;
    }
    int rc = api__param(r, f, "refresh_token", &token);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc) {
        api__oauth_error(r, 400, "invalid_request", "refresh_token is required");
        return HTTP_DONE;
    }
    rc = api__param(r, f, "scope", &scope);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc == ERR_OK && tok_scope_normalize(scope, sc, sizeof(sc))) {
        api__oauth_error(r, 400, "invalid_scope", "malformed scope");
        return HTTP_DONE;
    }
    char aud[sizeof(((struct tok_claims *)0)->aud)];
    auth_client_audience(c, NULL, aud, sizeof(aud)); /* (the client's default) */
    return start_refresh(r, token, c->id, sc, aud,
                         c->access_ttl ? c->access_ttl : ctx->sh->cfg->access_ttl_ms / 1000, 1);
}

/* ---- logout and revocation ------------------------------------------------------------- */

struct revoke_job {
    struct tok_revocation q; /* first */
    struct http_request *r;
    int oauth;
};

static void revoke_answer(struct tok_revocation *q, int rc)
{
    struct revoke_job *j = (struct revoke_job *)(void *)q;
    if (rc) {
        api__fail(j->r, ERR_BACKEND, "revocation not stored");
        return;
    }
    api__no_store(j->r);
    if (j->oauth)
        http_respond(j->r, 200, NULL, "", 0); /* unknown tokens are not an error (§2.2) */
    else
        http_respond_json(j->r, 200, "{\"status\":\"logged_out\"}");
}

int api__revoke(struct http_request *r, int oauth, struct str refresh, const char *client_id,
                struct str access, const struct tok_claims *cl)
{
    struct api_ctx *ctx = r->app;
    struct revoke_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->oauth = oauth;
    j->q.svc = &ctx->sh->tok;
    j->q.lp = ctx->lp;
    j->q.cache = ctx->tok.cache;
    j->q.refresh = refresh;
    j->q.access = access;
    j->q.now = clock_wall_s();
    j->q.done = revoke_answer;
    snprintf(j->q.client_id, sizeof(j->q.client_id), "%s", client_id);
    if (cl) {
        snprintf(j->q.jti, sizeof(j->q.jti), "%s", cl->jti);
        j->q.jti_exp = cl->exp + ctx->sh->cfg->leeway_ms / 1000;
    }
    int rc = tok_revoke(&j->q);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    revoke_answer(&j->q, rc);
    return HTTP_DONE;
}

/* POST /v1/auth/logout {"refresh_token":..} with the access token as Bearer (optional):
 * revokes the refresh family and the presented access token. */
int api_logout(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;
    struct tok_claims cl;
    struct str access = STR_NULL;
    bool has_access = false;

    if (api__rate_limited(r, API_RL_REVOKE) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str token = api__jstr(r, o, "refresh_token");
    json_decref(o);
    struct str authz = http_header(r, "authorization");
    if (authz.len > 7 && str_eq_nocase((struct str){authz.p, 7}, STR_LIT("Bearer "))) {
        access = (struct str){authz.p + 7, authz.len - 7};
        /* ours, unexpired and well signed: whether revoked already does not matter */
        int rc = tok_verify_signed(&ctx->tok, access, clock_wall_s(), &cl);
        if (rc == ERR_BACKEND) { /* cannot tell now: nothing is revoked, come back */
            api__fail(r, ERR_BACKEND, "cannot check the access token now");
            return HTTP_DONE;
        }
        has_access = rc == ERR_OK;
    }
    return api__revoke(r, 0, token, ctx->sh->cfg->first_party_client, access,
                       has_access ? &cl : NULL);
}
