/* SPDX-License-Identifier: MIT */
/*
 * OAuth 2.0 endpoints: token (RFC 6749 §4.4 client credentials; refresh and password come
 * with the user store), introspection (RFC 7662), revocation (RFC 7009), the gateway check
 * /v1/auth/verify, JWKS and discovery (RFC 8414). Errors follow RFC 6749 §5.2. Every answer
 * that carries a token has Cache-Control: no-store. Client authentication is
 * auth_client_auth.h's (the same work for an unknown id).
 */

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_authorize.h"
#include "auth/auth_client.h"
#include "auth/auth_client_auth.h"
#include "auth/auth_origins.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "http/http.h"
#include "http/http_form.h"
#include "json/json.h"
#include "policy/pol_clientip.h"
#include "token/tok_introspect.h"
#include "token/tok_issue.h"
#include "token/tok_keys.h"
#include "token/tok_revoke.h"
#include "token/tok_scope.h"
#include "token/tok_verify.h"

#define FORM_PAIRS_MAX 32

/* ---- per-thread context -------------------------------------------------------------- */

int api_ctx_start(struct api_ctx *ctx)
{
    ctx->clients = auth_client_cache_new(256);
    ctx->authz = auth_authz_cache_new(16);
    return tok_local_start(&ctx->tok, &ctx->sh->tok, ctx->lp, clock_wall_s());
}

void api_ctx_stop(struct api_ctx *ctx)
{
    tok_local_stop(&ctx->tok);
    auth_client_cache_free(ctx->clients);
    ctx->clients = NULL;
    auth_authz_cache_free(ctx->authz);
    ctx->authz = NULL;
}

/* ---- request helpers ------------------------------------------------------------------ */

void api__no_store(struct http_request *r)
{
    http_add_header(r, "Cache-Control", "no-store");
    http_add_header(r, "Pragma", "no-cache");
}

int api__oauth_error(struct http_request *r, unsigned status, const char *code, const char *desc)
{
    api__no_store(r);
    return api__error(r, status, code, desc);
}

int api__read_form(struct http_request *r, struct http_form *f)
{
    if (!http_content_type_is(r, "application/x-www-form-urlencoded")) {
        api__oauth_error(r, 400, "invalid_request",
                         "the body must be application/x-www-form-urlencoded");
        return ERR_INVAL;
    }
    int rc = http_form_parse(r->body, FORM_PAIRS_MAX, r->arena, f);
    if (rc) {
        api__oauth_error(r, 400, "invalid_request",
                         rc == ERR_LIMIT ? "too many parameters" : "malformed form body");
        return ERR_INVAL;
    }
    return ERR_OK;
}

void api__peer_ip(const struct http_request *r, char *out, size_t cap)
{
    struct api_ctx *ctx = r->app;
    pol_client_ip(ctx->sh->proxies, r->peer, http_header(r, "x-forwarded-for"),
                  http_header(r, "forwarded"), out, cap);
}

void api__peer_key(const struct http_request *r, char *out, size_t cap)
{
    struct api_ctx *ctx = r->app;
    char ip[64];
    api__peer_ip(r, ip, sizeof(ip));
    pol_ip_key(ip, ctx->sh->cfg->ipv4_prefix, ctx->sh->cfg->ipv6_prefix, out, cap);
}

struct str api__jstr(struct http_request *r, json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return STR_NULL;
    char *p = arena_strndup(r->arena, json_string_value(v), json_string_length(v));
    return p ? (struct str){p, json_string_length(v)} : STR_NULL;
}

int api__token_param(struct http_request *r, const struct http_form *f, struct str *token)
{
    int rc = api__param(r, f, "token", token);
    if (rc == ERR_NOTFOUND)
        api__oauth_error(r, 400, "invalid_request", "token is required");
    return rc;
}

int api__read_json(struct http_request *r, json_t **out)
{
    char err[160];

    if (!http_content_type_is(r, "application/json")) {
        http_respond_error(r, 415, "unsupported_media_type", "the body must be application/json");
        return ERR_INVAL;
    }
    if (json_parse_object(r->body, out, err, sizeof(err))) {
        http_respond_error(r, 400, "invalid_request", err);
        return ERR_INVAL;
    }
    return ERR_OK;
}

/* ERR_OK (found), ERR_NOTFOUND (absent), or ERR_INVAL after answering 400 (repeated). */
int api__param(struct http_request *r, const struct http_form *f, const char *name, struct str *v)
{
    int rc = http_form_get(f, name, v);
    if (rc == ERR_CONFLICT) {
        char msg[96];
        snprintf(msg, sizeof(msg), "parameter %s is repeated", name);
        api__oauth_error(r, 400, "invalid_request", msg);
        return ERR_INVAL;
    }
    return rc;
}

static void invalid_client(struct http_request *r)
{
    http_add_header(r, "WWW-Authenticate", "Basic realm=\"floodgate\"");
    api__oauth_error(r, 401, "invalid_client", "client authentication failed");
}

/* A client being authenticated: what the rest of the handler needs once it is. */
struct client_job {
    struct auth_client_check q; /* first */
    struct http_request *r;
    struct http_form f;
    api__client_next next;
    struct str basic; /* the Basic credentials as sent ({NULL, 0}: client_secret_post) */
};

static int client_decided(struct client_job *j, int rc)
{
    if (rc == ERR_DENIED) {
        char ip[64], id[72];
        api__peer_ip(j->r, ip, sizeof(ip));
        snprintf(id, sizeof(id), "%.*s", (int)(j->q.id.len < 64 ? j->q.id.len : 64), j->q.id.p);
        log_kv(LOG_INFO, "client authentication failed", "client_id", id, "ip", ip, "reason",
               j->q.reason, LOG_END);
        invalid_client(j->r);
        return HTTP_DONE;
    }
    if (rc)
        return api__fail(j->r, ERR_BACKEND, NULL);
    if (j->basic.len) {
        struct api_ctx *ctx = j->r->app;
        auth_client_cache_put_cred(ctx->clients, j->q.gen, j->basic, j->q.c.id);
    }
    return j->next(j->r, &j->f, &j->q.c);
}

static void client_checked(struct auth_client_check *q, int rc)
{
    client_decided((struct client_job *)(void *)q, rc); /* (answered, or the handler went on) */
}

/*
 * RFC 6749 §2.3.1: client_secret_basic (id and secret form-urlencoded inside Basic
 * credentials) or client_secret_post, never both. The decision is auth/'s
 * (auth_client_check); a client not in this thread's cache is read without blocking.
 */
int api__client_auth(struct http_request *r, const struct http_form *f, api__client_next next)
{
    struct api_ctx *ctx = r->app;
    struct str authz = http_header(r, "authorization");
    struct str id = STR_NULL, secret = STR_NULL, tmp, basic = STR_NULL;

    if (authz.len > 6 && str_eq_nocase((struct str){authz.p, 6}, STR_LIT("Basic "))) {
        int prc = api__param(r, f, "client_secret", &tmp);
        if (prc == ERR_OK)
            api__oauth_error(r, 400, "invalid_request", "use one client authentication method");
        if (prc != ERR_NOTFOUND)
            return HTTP_DONE;
        /* The same header as a moment ago (a gateway's or a service's every call): its
         * client, without decoding and digesting the secret again. */
        tok_local_ring(&ctx->tok, clock_wall_s());
        struct auth_client *c = api__alloc(r, sizeof(*c));
        if (!c)
            return HTTP_DONE;
        if (auth_client_cache_find_cred(ctx->clients, ctx->tok.generation, authz, c) == ERR_OK)
            return next(r, f, c);
        basic = authz;
        if (http_basic_credentials((struct str){authz.p + 6, authz.len - 6}, r->arena, &id,
                                   &secret)) {
            invalid_client(r);
            return HTTP_DONE;
        }
    } else if (api__param(r, f, "client_id", &id) == ERR_INVAL ||
               api__param(r, f, "client_secret", &secret) == ERR_INVAL) {
        return HTTP_DONE;
    }
    struct client_job *j = api__alloc(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->f = *f;
    j->next = next;
    j->basic = basic;
    j->q.svc = &ctx->sh->auth;
    j->q.lp = ctx->lp;
    j->q.cache = ctx->clients;
    tok_local_ring(&ctx->tok, clock_wall_s()); /* (samples the store generation once a second) */
    j->q.gen = ctx->tok.generation;
    j->q.id = id;
    j->q.secret = secret;
    j->q.done = client_checked;
    int rc = auth_client_check(&j->q);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    return client_decided(j, rc);
}

/* ---- token endpoint ------------------------------------------------------------------- */

static int grant_client_credentials(struct http_request *r, const struct http_form *f,
                                    const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    const struct cfg *cfg = ctx->sh->cfg;
    struct tok_claims cl;
    struct str scope, aud;
    if (!(c->grants & AUTH_GRANT_CLIENT_CREDENTIALS))
        return api__oauth_error(r, 400, "unauthorized_client",
                                "this client may not use client_credentials");
    memset(&cl, 0, sizeof(cl));
    int rc = api__param(r, f, "scope", &scope);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (auth_client_scope(c, rc == ERR_OK ? &scope : NULL, cl.scope, sizeof(cl.scope)))
        return api__oauth_error(r, 400, "invalid_scope", "scope not allowed for this client");
    /* RFC 8707 resource indicator, or the widespread "audience" parameter. */
    rc = api__param(r, f, "resource", &aud);
    if (rc == ERR_NOTFOUND)
        rc = api__param(r, f, "audience", &aud);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (auth_client_audience(c, rc == ERR_OK ? &aud : NULL, cl.aud, sizeof(cl.aud)))
        return api__oauth_error(r, 400, "invalid_target", "audience not allowed for this client");
    /* RFC 9068 §2.2: with no user, the subject is the client. */
    str_copy(cl.sub, sizeof(cl.sub), c->id);
    str_copy(cl.client_id, sizeof(cl.client_id), c->id);
    api__answer_tokens(r, &cl, c->access_ttl ? c->access_ttl : cfg->access_ttl_ms / 1000, NULL,
                       NULL);
    return HTTP_DONE;
}

void api__answer_tokens(struct http_request *r, struct tok_claims *cl, int64_t ttl,
                        const char *refresh, const struct tok_id *id)
{
    struct api_ctx *ctx = r->app;
    const struct cfg *cfg = ctx->sh->cfg;
    int64_t now = clock_wall_s();
    int mode = atomic_load(&ctx->sh->pol.mode);
    struct tok_issue o = {
        .ttl_s = ttl,
        .factor = mode > 0 && mode < 4 ? cfg->pol_ttl_factor[mode] : 1,
        .ttl_max_s = cfg->pol_ttl_max_s,
        .jitter_s = cfg->access_ttl_jitter_ms / 1000,
        .default_aud = ctx->sh->default_aud,
        .refresh = refresh,
        .id = id,
        .alg = ctx->sh->tok.keys.alg,
    };
    struct buf body;

    buf_init(&body, 20000);
    int rc = tok_issue_answer(tok_local_ring(&ctx->tok, now), ctx->sh->issuer, now, cl, &o, &body);
    if (rc) {
        log_kv(LOG_ERROR, "cannot issue an access token", "error", err_str(rc), LOG_END);
        api__oauth_error(r, 500, "server_error", NULL);
    } else {
        api__no_store(r);
        http_respond(r, 200, "application/json", body.p, body.len);
    }
    buf_fini(&body);
}

static int token_authed(struct http_request *r, const struct http_form *f,
                        const struct auth_client *c);

int api_token(struct http_request *r)
{
    struct http_form f;
    struct str grant;
    int cors = api__cors(r, AUTH_ORIGINS_CLIENTS, "POST");

    if (cors >= 0)
        return cors;
    if (api__rate_limited(r, POL_RL_TOKEN_GLOBAL) || api__rate_limited(r, POL_RL_TOKEN) ||
        api__read_form(r, &f))
        return HTTP_DONE;
    int rc = api__param(r, &f, "grant_type", &grant);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc == ERR_NOTFOUND)
        return api__oauth_error(r, 400, "invalid_request", "grant_type is required");
    return api__client_auth(r, &f, token_authed);
}

static int token_authed(struct http_request *r, const struct http_form *f,
                        const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str grant;

    if (api__rate_limited_key(r, POL_RL_TOKEN_CLIENT, str_c(c->id)))
        return HTTP_DONE;
    api__param(r, f, "grant_type", &grant); /* (there, and once: api_token looked) */
    if (str_eq(grant, STR_LIT("client_credentials")))
        return grant_client_credentials(r, f, c);
    if (str_eq(grant, STR_LIT("refresh_token")))
        return api__grant_refresh(r, f, c);
    if (str_eq(grant, STR_LIT("authorization_code")))
        return api__grant_code(r, f, c);
    if (str_eq(grant, STR_LIT("password")) && ctx->sh->cfg->password_grant)
        return api__grant_password(r, f, c);
    return api__oauth_error(r, 400, "unsupported_grant_type",
                            ctx->sh->cfg->password_grant
                                ? "supported: client_credentials, refresh_token, password"
                                : "supported: client_credentials, refresh_token");
}

/* ---- verification --------------------------------------------------------------------- */

struct verify_job {
    struct tok_verification q; /* first */
    struct http_request *r;
    api__verify_answer answer;
    void *arg;
};

static void verified(struct tok_verification *q, int rc)
{
    struct verify_job *j = (struct verify_job *)(void *)q;
    j->answer(j->r, rc, &q->cl, j->arg); /* (answered, or gone on: either way not here) */
}

int api__verify(struct http_request *r, struct str token, api__verify_answer answer, void *arg)
{
    struct api_ctx *ctx = r->app;
    /* The cache or the signature first, on the stack: a job (kilobytes of the arena) only
     * when the revoked list must be asked. The inputs are set; the rest is output (not
     * zeroed: this is the hot path). */
    struct tok_verification q;
    q.t = &ctx->tok;
    q.token = token;
    q.now = clock_wall_s();
    q.done = verified;
    int rc = tok_verify_start(&q);
    if (rc != ERR_AGAIN)
        return answer(r, rc, &q.cl, arg);
    struct verify_job *j = arena_alloc(r->arena, sizeof(*j));
    if (!j)
        return answer(r, ERR_BACKEND, &q.cl, arg);
    j->q = q;
    j->r = r;
    j->answer = answer;
    j->arg = arg;
    rc = tok_verify_finish(&j->q);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC; /* a shared store: the answer comes on this thread */
    return answer(r, rc, &j->q.cl, arg);
}

static int introspect_answer(struct http_request *r, int rc, const struct tok_claims *cl,
                             void *arg);

/* Introspection of a refresh token (RFC 7662 §2.2, token_type_hint=refresh_token, or any
 * token that is not a JWT: ours have no dots): the rule is token/'s (tok_introspect.h);
 * here, only the answer. */
struct rti_job {
    struct tok_rt_introspection q; /* first */
    struct http_request *r;
};

static void rti_answer(struct tok_rt_introspection *q, int rc)
{
    struct http_request *r = ((struct rti_job *)(void *)q)->r;
    struct api_ctx *ctx = r->app;
    struct buf b;
    if (rc) {
        api__fail(r, ERR_BACKEND, "cannot check the token now");
        return;
    }
    api__no_store(r);
    buf_init(&b, 4096);
    rc = tok_rt_introspection_json(&b, ctx->sh->issuer, q->active, &q->rt);
    api__answer_buf(r, rc, &b, NULL, NULL);
}

static int introspect_refresh(struct http_request *r, struct str token, const char *client_id)
{
    struct api_ctx *ctx = r->app;
    struct rti_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->q.st = ctx->sh->store;
    j->q.lp = ctx->lp;
    j->q.now = clock_wall_s();
    j->q.done = rti_answer;
    str_copy(j->q.client_id, sizeof(j->q.client_id), client_id);
    int rc = tok_rt_introspect(&j->q, ctx->sh->tok.key, token);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    rti_answer(&j->q, rc);
    return HTTP_DONE;
}

static int introspect_authed(struct http_request *r, const struct http_form *f,
                             const struct auth_client *c)
{
    struct str token, hint;
    if (c->public_client) { /* (anyone can claim a public id: it proves nothing) */
        invalid_client(r);
        return HTTP_DONE;
    }
    if (api__token_param(r, f, &token))
        return HTTP_DONE;
    int rc = api__param(r, f, "token_type_hint", &hint);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    /* The hint (RFC 7662 §2.1) is honoured by what the token is: ours are told apart
     * exactly (a refresh token has no dots, an access token is a JWT), so a refresh token
     * is found without the hint too, and a wrong hint costs no extra lookup. */
    (void)hint;
    if (tok_is_refresh_token(token))
        return introspect_refresh(r, token, c->id);
    struct tok_introspector *who = arena_alloc(r->arena, sizeof(*who));
    if (!who)
        return api__fail(r, ERR_NOMEM, NULL);
    str_copy(who->id, sizeof(who->id), c->id);
    who->any = c->introspect_any;
    return api__verify(r, token, introspect_answer, who);
}

int api_introspect(struct http_request *r)
{
    struct http_form f;

    if (api__rate_limited(r, POL_RL_VERIFY) || api__read_form(r, &f))
        return HTTP_DONE;
    return api__client_auth(r, &f, introspect_authed);
}

static int introspect_answer(struct http_request *r, int rc, const struct tok_claims *cl, void *arg)
{
    struct api_ctx *ctx = r->app;

    if (rc == ERR_BACKEND)
        return api__fail(r, ERR_BACKEND, "cannot check revocation now");
    api__no_store(r);
    struct buf b;
    buf_init(&b, 8192);
    buf_reserve(&b, 1024); /* (one allocation for the usual answer; it grows if it must) */
    rc = tok_introspection_json(&b, ctx->sh->issuer, !rc && tok_may_introspect(arg, cl), cl);
    return api__answer_buf(r, rc, &b, NULL, NULL);
}

/* GET /v1/auth/verify for gateways (nginx auth_request, Traefik forwardAuth, Envoy
 * ext_authz): 200 with identity headers, 401 with a Bearer challenge (RFC 6750 §3), 403 if a
 * scope required by ?scope= is missing. */
static int verify_answer(struct http_request *r, int rc, const struct tok_claims *cl, void *arg);

#define VERIFY_QUERY_PAIRS 8

/* The gateway's requirements, ?audience= and ?scope= (decoded into the arena; {NULL, 0}:
 * none). */
struct verify_need {
    struct str aud, scope;
};

/* Reads them. An authorization check fails closed: a query that does not parse, has more
 * than VERIFY_QUERY_PAIRS pairs, or names a requirement twice is answered 400 (ERR_INVAL),
 * never read as "no requirement". */
static int verify_query(struct http_request *r, struct str *aud, struct str *scope)
{
    struct http_form q;
    *aud = *scope = STR_NULL;
    if (!r->query.len)
        return ERR_OK;
    if (http_form_parse(r->query, VERIFY_QUERY_PAIRS, r->arena, &q) != ERR_OK) {
        http_respond_error(r, 400, "invalid_request",
                           "the query must be at most 8 well-formed parameters");
        return ERR_INVAL;
    }
    int a = http_form_get(&q, "audience", aud), s = http_form_get(&q, "scope", scope);
    if (a == ERR_CONFLICT || s == ERR_CONFLICT) {
        http_respond_error(r, 400, "invalid_request", "scope and audience may appear once");
        return ERR_INVAL;
    }
    if (a != ERR_OK)
        *aud = STR_NULL;
    if (s != ERR_OK)
        *scope = STR_NULL;
    return ERR_OK;
}

int api_verify(struct http_request *r)
{
    struct str authz = http_header(r, "authorization");
    struct verify_need need, *kept = NULL;

    if (api__rate_limited(r, POL_RL_VERIFY) || verify_query(r, &need.aud, &need.scope))
        return HTTP_DONE;
    if (authz.len <= 7 || !str_eq_nocase((struct str){authz.p, 7}, STR_LIT("Bearer "))) {
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"floodgate\"");
        return api__error(r, 401, "invalid_request", "a Bearer token is required");
    }
    /* (kept for the answer, which may come later: only when there is something to check) */
    if ((need.aud.p || need.scope.p) && (kept = arena_alloc(r->arena, sizeof(*kept))) == NULL)
        return api__fail(r, ERR_NOMEM, NULL);
    if (kept)
        *kept = need;
    return api__verify(r, (struct str){authz.p + 7, authz.len - 7}, verify_answer, kept);
}

static int verify_answer(struct http_request *r, int rc, const struct tok_claims *cl, void *arg)
{
    const struct verify_need *need = arg; /* NULL: no requirement */
    if (rc == ERR_BACKEND)
        return api__fail(r, ERR_NOMEM, NULL);
    if (rc)
        return api__bearer_refused(r, 401, "invalid_token", NULL);
    /* ?audience=api: the token must be meant for this resource (RFC 9068 §4); a token for
     * another audience is invalid here, not merely under-scoped. */
    if (need && need->aud.p && !str_eq(need->aud, str_c(cl->aud)))
        return api__bearer_refused(r, 401, "invalid_token", "wrong audience");
    if (need && need->scope.p && !tok_scope_subset(need->scope, cl->scope))
        return api__bearer_refused(r, 403, "insufficient_scope", NULL);
    http_add_header(r, "X-Auth-Subject", cl->sub);
    http_add_header(r, "X-Auth-Client-Id", cl->client_id);
    if (cl->scope[0])
        http_add_header(r, "X-Auth-Scope", cl->scope);
    if (cl->aud[0])
        http_add_header(r, "X-Auth-Audience", cl->aud);
    http_add_header(r, "Cache-Control", "no-store");
    http_respond(r, 200, NULL, "", 0);
    return HTTP_DONE;
}

/* ---- revocation ----------------------------------------------------------------------- */

static int revoke_authed(struct http_request *r, const struct http_form *f,
                         const struct auth_client *c);

int api_revoke(struct http_request *r)
{
    struct http_form f;
    int cors = api__cors(r, AUTH_ORIGINS_CLIENTS, "POST");

    if (cors >= 0)
        return cors;
    if (api__rate_limited(r, POL_RL_REVOKE) || api__read_form(r, &f))
        return HTTP_DONE;
    return api__client_auth(r, &f, revoke_authed);
}

static int revoke_authed(struct http_request *r, const struct http_form *f,
                         const struct auth_client *c)
{
    struct str token;

    if (api__rate_limited_key(r, POL_RL_REVOKE_CLIENT, str_c(c->id)) ||
        api__token_param(r, f, &token))
        return HTTP_DONE;
    if (tok_is_refresh_token(token))
        return api__revoke(r, 1, c->id, token, STR_NULL);
    return api__revoke(r, 1, c->id, STR_NULL, token);
}

/* ---- keys and discovery --------------------------------------------------------------- */

int api_jwks(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    int64_t now = clock_wall_s();
    struct buf b;
    char cc[64];

    buf_init(&b, 65536);
    /* Caches must refetch well within the publish-ahead time, or a new key could sign
     * before a verifier knows it. */
    unsigned ahead = ctx->sh->cfg->key_publish_ahead_ms / 1000;
    snprintf(cc, sizeof(cc), "public, max-age=%u", ahead / 2 < 300 ? ahead / 2 : 300);
    http_add_header(r, "Access-Control-Allow-Origin", "*"); /* public, read from any page */
    return api__answer_buf(r, tok_ring_jwks(tok_local_ring(&ctx->tok, now), now, &b), &b, NULL, cc);
}

int api_discovery(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    struct buf b;

    buf_init(&b, 8192);
    int rc = tok_discovery_json(&b, ctx->sh->issuer, tok_local_ring(&ctx->tok, clock_wall_s()),
                                ctx->sh->tok.keys.alg, ctx->sh->tok.keys.id_alg,
                                ctx->sh->cfg->password_grant);
    http_add_header(r, "Access-Control-Allow-Origin", "*"); /* public, read from any page */
    return api__answer_buf(r, rc, &b, NULL, "public, max-age=300");
}
