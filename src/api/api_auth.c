/* SPDX-License-Identifier: MIT */
/*
 * Users and sessions: registration, password login (JSON API and the OAuth password grant),
 * refresh-token rotation (JSON API and the refresh_token grant), logout. The rules are
 * auth_login.h's, auth_register.h's, tok_rotate.h's and tok_revoke.h's. Every job lives in
 * the request's arena; the request stays open until the job answers, so the arena outlives
 * every callback that refers to it.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_login.h"
#include "auth/auth_origins.h"
#include "auth/auth_register.h"
#include "auth/auth_user.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "http/http.h"
#include "token/tok_revoke.h"
#include "token/tok_rotate.h"
#include "token/tok_scope.h"

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
    int cors = api__cors(r, AUTH_ORIGINS_API, "POST");

    if (cors >= 0)
        return cors;
    if (api__rate_limited(r, POL_RL_REGISTER_GLOBAL) || api__rate_limited(r, POL_RL_REGISTER) ||
        api__admission_refused(r) || api__inflight_full(r, API_IF_REGISTER))
        return HTTP_DONE;
    if (atomic_load(&ctx->sh->pol.mode) >= ctx->sh->pol.registration_pause) {
        /* the spike's capacity goes to logins (policy_registration_pause) */
        return api__fail_retry(r, ERR_AGAIN, "registration is paused", 30);
    }
    if (!ctx->sh->cfg->registration)
        return api__error(r, 403, "registration_closed", "registration is closed");
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password"),
               email = api__jstr(r, o, "email"), display = api__jstr(r, o, "name");
    json_decref(o);
    wipe_body(r);
    if (!user.p || !pw.p)
        return api__error(r, 400, "invalid_request", "username and password are required");
    struct reg_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->q.svc = &ctx->sh->auth;
    j->q.lp = ctx->lp;
    j->q.user = user;
    j->q.pw = pw;
    j->q.email = email.p; /* (arena copies: NUL-terminated) */
    j->q.display = display.p;
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

/* A credential refused: 400 invalid_grant at the token endpoint (RFC 6749 §5.2), 401 with
 * `code` on the JSON API; never cached. */
static void refuse(struct http_request *r, int oauth, const char *code, const char *desc)
{
    api__oauth_error(r, oauth ? 400 : 401, oauth ? "invalid_grant" : code, desc);
}

/* The tokens of a user's session (the access token's claims; the refresh token, if any). */
static void answer_session(struct http_request *r, const char *sub, const char *client_id,
                           const char *scope, const char *aud, int64_t ttl, const char *refresh)
{
    struct tok_claims cl;
    memset(&cl, 0, sizeof(cl));
    str_copy(cl.sub, sizeof(cl.sub), sub);
    str_copy(cl.client_id, sizeof(cl.client_id), client_id);
    str_copy(cl.scope, sizeof(cl.scope), scope);
    str_copy(cl.aud, sizeof(cl.aud), aud);
    api__answer_tokens(r, &cl, ttl, refresh, NULL);
}

/* Refused only because other attempts for the same username or address are in flight: the
 * password was never checked, so it must not be told it is wrong (issue #11 item 9). The
 * same answer for known and unknown usernames (the lockout keys by the name as typed). */
static void answer_busy_login(struct http_request *r, uint64_t retry_ms)
{
    api__retry_after(r, (retry_ms + 999) / 1000);
    http_add_header(r, "Cache-Control", "no-store");
    http_respond_error(r, 429, "too_many_attempts",
                       "other sign-in attempts are in progress; try again shortly");
}

static void login_answer(struct auth_login *q, int rc)
{
    struct login_job *j = (struct login_job *)(void *)q;
    struct http_request *r = j->r;

    if (rc == ERR_LIMIT) {
        api__busy(r, q->retry_ms);
    } else if (rc) {
        api__fail(r, rc, NULL);
    } else if (q->outcome == AUTH_LOGIN_BUSY) {
        answer_busy_login(r, q->retry_ms);
    } else if (q->outcome == AUTH_LOGIN_LIMITED) {
        api__rate_limited_answer(r, POL_RL_LOGIN, q->retry_ms);
    } else if (q->outcome != AUTH_LOGIN_OK) {
        /* one answer for a wrong password, an unknown or disabled user, a locked key */
        refuse(r, j->oauth, "invalid_credentials", "invalid username or password");
    } else {
        answer_session(r, q->sub, q->client_id, q->scope, j->aud, j->access_ttl, q->refresh_token);
    }
}

/* Common start of both password logins. */
static int start_login(struct http_request *r, struct str user, struct str pw,
                       const char *client_id, const char *scope, const char *aud,
                       int64_t access_ttl, int oauth)
{
    struct api_ctx *ctx = r->app;
    char name[AUTH_USERNAME_MAX + 1];

    if (api__rate_limited_key(r, POL_RL_LOGIN_USER, auth_login_key(user, name)) ||
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
    str_copy(j->q.client_id, sizeof(j->q.client_id), client_id);
    str_copy(j->q.scope, sizeof(j->q.scope), scope);
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
    int cors = api__cors(r, AUTH_ORIGINS_API, "POST");

    if (cors >= 0)
        return cors;
    if (api__rate_limited(r, POL_RL_LOGIN_GLOBAL) || api__rate_limited(r, POL_RL_LOGIN) ||
        api__admission_refused(r) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password");
    json_decref(o);
    wipe_body(r);
    if (!user.p || !pw.p)
        return api__error(r, 400, "invalid_request", "username and password are required");
    return start_login(r, user, pw, ctx->sh->cfg->first_party_client, "", "",
                       ctx->sh->cfg->access_ttl_ms / 1000, 0);
}

int api__grant_password(struct http_request *r, const struct http_form *f,
                        const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str user, pw, scope;
    char sc[TOK_SCOPE_MAX + 1];

    if (api__rate_limited(r, POL_RL_LOGIN_GLOBAL) || api__rate_limited(r, POL_RL_LOGIN) ||
        api__admission_refused(r))
        return HTTP_DONE;
    if (!(c->grants & AUTH_GRANT_PASSWORD))
        return api__oauth_error(r, 400, "unauthorized_client", "this client may not use password");
    int a = api__param(r, f, "username", &user);
    if (a == ERR_INVAL)
        return HTTP_DONE;
    int b = api__param(r, f, "password", &pw);
    if (b == ERR_INVAL)
        return HTTP_DONE;
    if (a || b)
        return api__oauth_error(r, 400, "invalid_request", "username and password are required");
    int rc = api__param(r, f, "scope", &scope);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc == ERR_OK) {
        if (tok_scope_normalize(scope, sc, sizeof(sc)) || !tok_scope_subset(str_c(sc), c->scopes))
            return api__oauth_error(r, 400, "invalid_scope", "scope not allowed for this client");
    } else {
        str_copy(sc, sizeof(sc), c->scopes);
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

    if (rc) {
        api__fail(r, rc, NULL);
    } else if (q->outcome == TOK_ROTATE_SCOPE) {
        api__oauth_error(r, 400, "invalid_scope", "scope beyond the original grant");
    } else if (q->outcome == TOK_ROTATE_INVALID) {
        refuse(r, j->oauth, "invalid_grant", "invalid refresh token");
    } else {
        answer_session(r, q->sub, q->client_id, q->scope, j->aud, j->access_ttl, q->successor);
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
    str_copy(j->q.client_id, sizeof(j->q.client_id), client_id);
    str_copy(j->q.want_scope, sizeof(j->q.want_scope), want_scope);
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
    int cors = api__cors(r, AUTH_ORIGINS_API, "POST");

    if (cors >= 0)
        return cors;
    if (api__rate_limited(r, POL_RL_REFRESH) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str token = api__jstr(r, o, "refresh_token");
    json_decref(o);
    if (!token.p)
        return api__error(r, 400, "invalid_request", "refresh_token is required");
    return start_refresh(r, token, ctx->sh->cfg->first_party_client, "", "",
                         ctx->sh->cfg->access_ttl_ms / 1000, 0);
}

int api__grant_refresh(struct http_request *r, const struct http_form *f,
                       const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str token, scope;
    char sc[TOK_SCOPE_MAX + 1] = "";

    if (!(c->grants & AUTH_GRANT_REFRESH_TOKEN))
        return api__oauth_error(r, 400, "unauthorized_client",
                                "this client may not use refresh_token");
    int rc = api__param(r, f, "refresh_token", &token);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc)
        return api__oauth_error(r, 400, "invalid_request", "refresh_token is required");
    rc = api__param(r, f, "scope", &scope);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc == ERR_OK && tok_scope_normalize(scope, sc, sizeof(sc)))
        return api__oauth_error(r, 400, "invalid_scope", "malformed scope");
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

int api__revoke(struct http_request *r, int oauth, const char *client_id, struct str refresh,
                struct str access)
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
    j->q.now = clock_wall_s();
    j->q.done = revoke_answer;
    str_copy(j->q.client_id, sizeof(j->q.client_id), client_id);
    /* Logout revokes the access token it presents as Bearer, whoever it was issued to
     * (holding it is the proof); RFC 7009 only a token of the client that asks. */
    int rc = access.len ? tok_revocation_access(&j->q, &ctx->tok, access, oauth) : ERR_OK;
    if (rc == ERR_BACKEND) /* cannot tell now: nothing is revoked, come back */
        return api__fail(r, ERR_BACKEND, "cannot check the access token now");
    if (rc == ERR_DENIED)
        return api__oauth_error(r, 400, "unauthorized_client",
                                "the token was issued to another client");
    rc = tok_revoke(&j->q);
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
    struct str access = STR_NULL;
    int cors = api__cors(r, AUTH_ORIGINS_API, "POST");

    if (cors >= 0)
        return cors;
    if (api__rate_limited(r, POL_RL_REVOKE) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str token = api__jstr(r, o, "refresh_token");
    json_decref(o);
    struct str authz = http_header(r, "authorization");
    if (authz.len > 7 && str_eq_nocase((struct str){authz.p, 7}, STR_LIT("Bearer ")))
        access = (struct str){authz.p + 7, authz.len - 7};
    return api__revoke(r, 0, ctx->sh->cfg->first_party_client, token, access);
}
