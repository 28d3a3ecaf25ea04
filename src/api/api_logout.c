/* SPDX-License-Identifier: MIT */
/*
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): GET or POST /oauth2/logout,
 * the end_session_endpoint. The post-logout URI must be registered for the client; the
 * browser session ends with every refresh family started from it; without the
 * application's ID token (id_token_hint) the person confirms on a page bound to the
 * browser. The rules are auth_session.h's; here, the pages and the redirect.
 */
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_authorize.h"
#include "auth/auth_session.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "http/http.h"
#include "http/http_form.h"
#include "token/tok_jwt.h"
#include "web/web.h"

struct logout_job {
    struct auth_authorize q; /* first: the client and its post-logout URI */
    struct http_request *r;
    struct str hint, client_id, uri, state, csrf;
    bool hinted; /* the hint is an ID token of ours: the application asked */
    struct auth_session_logout out;
};

static int logout_answer(struct logout_job *j)
{
    struct http_request *r = j->r;
    char c[128];
    snprintf(c, sizeof(c), "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s",
             api__session_cookie(r), api__https(r) ? "; Secure" : "");
    http_add_header(r, "Set-Cookie", c);
    if (!j->uri.p)
        return api__error_page(r, 200, "You are signed out", "You can close this page.", NULL);
    const char *names[] = {"state"};
    const char *vals[] = {j->state.p};
    struct buf b;
    buf_init(&b, 8192);
    int rc = auth_authorize_redirect(&b, j->uri.p, names, vals, 1);
    if (!rc)
        rc = buf_append(&b, "", 1);
    if (rc) {
        buf_fini(&b);
        return api__error_page(r, 200, "You are signed out", "You can close this page.", NULL);
    }
    http_add_header(r, "Location", b.p);
    http_add_header(r, "Cache-Control", "no-store");
    http_respond(r, r->method == HTTP_POST ? 303 : 302, NULL, "", 0);
    buf_fini(&b);
    return HTTP_DONE;
}

static void logged_out(struct auth_session_logout *q, int rc)
{
    struct logout_job *j = CONTAINER_OF(q, struct logout_job, out);
    if (rc)
        api__busy_page(j->r, 1);
    else
        logout_answer(j);
}

/* The session ends (and its refresh families); then back to the application, or a page. */
static int log_out(struct logout_job *j)
{
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    struct str cookie;

    if (http_cookie_get(http_header(r, "cookie"), api__session_cookie(r), &cookie) != ERR_OK)
        return logout_answer(j);
    j->out.svc = &ctx->sh->auth;
    j->out.lp = ctx->lp;
    j->out.token = cookie;
    j->out.now = clock_wall_s();
    j->out.done = logged_out;
    int rc = auth_session_logout(&j->out);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    return rc ? api__busy_page(r, 1) : logout_answer(j);
}

/* Without the application's proof (a hint), the person confirms: a form bound to the
 * browser, so that another site's link cannot sign them out. */
static int confirm_page(struct logout_job *j)
{
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    char token[AUTH_CSRF_LEN + 1], cookie[256];
    struct str have;
    struct buf hidden;

    if (http_cookie_get(http_header(r, "cookie"), api__csrf_cookie(r), &have) ||
        have.len != AUTH_CSRF_LEN) {
        char fresh[AUTH_CSRF_LEN + 1];
        auth_csrf_new(fresh);
        snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Lax%s",
                 api__csrf_cookie(r), fresh, api__https(r) ? "; Secure" : "");
        http_add_header(r, "Set-Cookie", cookie);
        auth_csrf_token(ctx->sh->auth.key, str_c(fresh), token);
    } else {
        auth_csrf_token(ctx->sh->auth.key, have, token);
    }
    buf_init(&hidden, 16 * 1024);
    int rc = web_hidden(&hidden, "csrf", token);
    if (!rc && j->client_id.p)
        rc = web_hidden(&hidden, "client_id", j->client_id.p);
    if (!rc && j->uri.p)
        rc = web_hidden(&hidden, "post_logout_redirect_uri", j->uri.p);
    if (!rc && j->state.p)
        rc = web_hidden(&hidden, "state", j->state.p);
    if (!rc)
        rc = buf_append(&hidden, "", 1);
    const struct web_var v[] = {{"product", ctx->sh->cfg->product_name},
                                {"hidden", rc ? "" : hidden.p}};
    api__page(r, rc ? 500 : 200, WEB_LOGOUT, v, sizeof(v) / sizeof(v[0]));
    buf_fini(&hidden);
    return HTTP_DONE;
}

static int logout_checked(struct logout_job *j, int rc)
{
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    struct str cookie = STR_NULL;

    if (rc)
        return api__busy_page(r, 1);
    if (j->q.verdict != AUTH_AUTHZ_OK)
        return api__error_page(r, 400, "This sign-out link is not valid",
                               "The application that sent you here is not set up for it.",
                               j->q.why);
    if (j->hinted)
        return log_out(j);
    http_cookie_get(http_header(r, "cookie"), api__csrf_cookie(r), &cookie);
    if (r->method == HTTP_POST && auth_csrf_ok(ctx->sh->auth.key, cookie, j->csrf))
        return log_out(j); /* confirmed */
    return confirm_page(j);
}

static void logout_client_checked(struct auth_authorize *q, int rc)
{
    logout_checked((struct logout_job *)(void *)q, rc);
}

/* GET or POST /oauth2/logout: id_token_hint, client_id, post_logout_redirect_uri, state. */
int api_authorize_logout(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    struct http_form f;
    char sub[129], aud[129], sid[32];

    if (r->method == HTTP_POST && !http_content_type_is(r, "application/x-www-form-urlencoded"))
        return api__error_page(r, 415, "Sign-out failed", "The request could not be read.",
                               "invalid_request");
    struct logout_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    if (http_form_parse(r->method == HTTP_POST ? r->body : r->query, 16, r->arena, &f) ||
        http_form_get(&f, "id_token_hint", &j->hint) == ERR_CONFLICT ||
        http_form_get(&f, "client_id", &j->client_id) == ERR_CONFLICT ||
        http_form_get(&f, "post_logout_redirect_uri", &j->uri) == ERR_CONFLICT ||
        http_form_get(&f, "state", &j->state) == ERR_CONFLICT ||
        http_form_get(&f, "csrf", &j->csrf) == ERR_CONFLICT)
        return api__error_page(r, 400, "This sign-out link is not valid",
                               "The request could not be read.", "invalid_request");
    if (j->hint.p) {
        int64_t now = clock_wall_s();
        if (tok_id_token_hint(tok_local_ring(&ctx->tok, now), ctx->sh->issuer, now, j->hint, sub,
                              aud, sid))
            return api__error_page(r, 400, "This sign-out link is not valid",
                                   "The application's sign-out request could not be checked.",
                                   "invalid_request");
        if (j->client_id.p && !str_eq(j->client_id, str_c(aud)))
            return api__error_page(r, 400, "This sign-out link is not valid",
                                   "The request names two applications.", "invalid_request");
        j->hinted = true;
        char *a = arena_alloc(r->arena, strlen(aud) + 1);
        if (!a)
            return api__fail(r, ERR_NOMEM, NULL);
        memcpy(a, aud, strlen(aud) + 1);
        j->client_id = str_c(a);
    }
    if (j->uri.p && !j->client_id.p)
        return api__error_page(
            r, 400, "This sign-out link is not valid",
            "A post_logout_redirect_uri needs the client_id or an id_token_hint.",
            "invalid_request");
    if (!j->client_id.p) { /* nothing to check: no application to return to */
        j->q.verdict = AUTH_AUTHZ_OK;
        return logout_checked(j, ERR_OK);
    }
    j->q.svc = &ctx->sh->auth;
    j->q.lp = ctx->lp;
    j->q.logout = true;
    j->q.cache = ctx->authz;
    tok_local_ring(&ctx->tok, clock_wall_s()); /* (samples the store generation once a second) */
    j->q.gen = ctx->tok.generation;
    j->q.p.client_id = j->client_id;
    j->q.p.redirect_uri = j->uri;
    j->q.done = logout_client_checked;
    int rc = auth_authorize_check(&j->q);
    return rc == ERR_AGAIN ? HTTP_ASYNC : logout_checked(j, rc);
}
