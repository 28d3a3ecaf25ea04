/* SPDX-License-Identifier: MIT */
/*
 * The authorization code flow's HTTP side (OpenID Connect Core §3.1): the authorization
 * endpoint (GET or POST /oauth2/authorize), the hosted login form's post (POST
 * /oauth2/login), the pages' assets, and the token endpoint's authorization_code grant.
 * The rules are auth_authorize.h's, auth_login.h's and tok_code.h's; here, the pages and the
 * redirects.
 *
 * Nothing is kept between showing the form and its post: the form carries the
 * authorization request in hidden fields, checked again on the post, and a CSRF token bound
 * to the browser by a cookie. Errors that cannot go back to the client (an unknown client,
 * a redirect URI not registered) are pages here; the others go back to the client.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_authorize.h"
#include "auth/auth_signin.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/http.h"
#include "http/http_form.h"
#include "metrics/met.h"
#include "policy/pol_gcra.h"
#include "token/tok_code.h"
#include "token/tok_issue.h"
#include "token/tok_jwt.h"
#include "token/tok_scope.h"
#include "web/web.h"

#define AUTHZ_PAIRS_MAX 32

/* The request's parameters, by name, as auth_authz_params holds them. */
static const struct {
    const char *name;
    size_t off;
} params[] = {
#define P(n)                                                                                       \
    {                                                                                              \
#n, offsetof(struct auth_authz_params, n)                                                  \
    }
    P(response_type), P(client_id), P(redirect_uri),   P(scope),
    P(state),         P(nonce),     P(code_challenge), P(code_challenge_method),
    P(prompt),        P(max_age),   P(login_hint),     P(response_mode),
#undef P
};

struct authz_job {
    struct auth_signin s; /* first */
    struct http_request *r;
    bool posted;
    char csrf_cookie[AUTH_CSRF_LEN + 1]; /* "" when the browser brought one */
    struct http_form form;               /* the login form as posted (for the busy page's retry) */
};

/* ---- pages ----------------------------------------------------------------------------- */

/* A page with the headers every page carries; csp replaces the default policy if set. */
int api__page_csp(struct http_request *r, unsigned status, int p, const struct web_var *v, size_t n,
                  const char *csp)
{
    struct buf b;
    buf_init(&b, 256 * 1024);
    for (const char *const *h = web_headers; *h; h += 2)
        http_add_header(r, h[0], csp && h == web_headers ? csp : h[1]);
    int rc = web_render(&b, web_template((enum web_page)p), v, n);
    if (rc)
        http_respond_error(r, 500, "server_error", NULL);
    else
        http_respond(r, status, "text/html; charset=utf-8", b.p, b.len);
    buf_fini(&b);
    return HTTP_DONE;
}

int api__page(struct http_request *r, unsigned status, int p, const struct web_var *v, size_t n)
{
    return api__page_csp(r, status, p, v, n, NULL);
}

/* The policy of a page whose form leads, through a redirect, to the client's redirect URI:
 * browsers hold the redirect that answers a form to its form-action. */
static void csp_to(const char *redirect_uri, char *csp, size_t cap)
{
    char origin[AUTH_ORIGIN_MAX + 1];
    bool ok = auth_redirect_origin(str_c(redirect_uri), origin, sizeof(origin)) == ERR_OK;
    snprintf(csp, cap,
             "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
             "form-action 'self'%s%s; frame-ancestors 'none'; base-uri 'none'",
             ok ? " " : "", ok ? origin : "");
}

int api__error_page(struct http_request *r, unsigned status, const char *title, const char *msg,
                    const char *code)
{
    struct api_ctx *ctx = r->app;
    const struct web_var v[] = {{"product", ctx->sh->cfg->product_name},
                                {"title", title},
                                {"message", msg},
                                {"code", code}};
    return api__page(r, status, WEB_ERROR, v, sizeof(v) / sizeof(v[0]));
}

/* 503 as a page, with Retry-After. */
int api__busy_page(struct http_request *r, uint64_t retry_s)
{
    api__retry_after(r, retry_s);
    return api__error_page(r, 503, "Busy right now",
                           "The service is busy. Please try again in a few seconds.",
                           "temporarily_unavailable");
}

bool api__https(const struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    return strncmp(ctx->sh->issuer, "https://", 8) == 0;
}

/* __Host-: only over https, for this host, for every path (RFC 6265bis §4.1.3.2) */
const char *api__csrf_cookie(const struct http_request *r)
{
    return api__https(r) ? "__Host-fg_csrf" : "fg_csrf";
}

const char *api__session_cookie(const struct http_request *r)
{
    return api__https(r) ? "__Host-fg_session" : "fg_session";
}

/* "1" when the operator gave a logo (the templates' {{#logo}} section), else "". */
static const char *logo_on(void)
{
    size_t n;
    const char *type;
    return web_logo(&n, &type) ? "1" : "";
}

/* The login form for q's request, with an error message if any. */
static int login_page(struct authz_job *j, unsigned status, const char *error, const char *user)
{
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    const struct auth_authz_params *p = &j->s.q.p;
    char token[AUTH_CSRF_LEN + 1], cookie[256], login_hint[AUTH_USERNAME_MAX + 1] = "";
    struct str have;
    struct buf hidden;

    /* The browser's CSRF cookie, or a new one */
    if (http_cookie_get(http_header(r, "cookie"), api__csrf_cookie(r), &have) ||
        have.len != AUTH_CSRF_LEN) {
        auth_csrf_new(j->csrf_cookie);
        have = str_c(j->csrf_cookie);
        snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Lax%s",
                 api__csrf_cookie(r), j->csrf_cookie,
                 api__csrf_cookie(r)[0] == '_' ? "; Secure" : "");
        http_add_header(r, "Set-Cookie", cookie);
    }
    auth_csrf_token(ctx->sh->auth.key, have, token);
    buf_init(&hidden, 64 * 1024);
    int rc = web_hidden(&hidden, "csrf", token);
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]) && !rc; i++) {
        const struct str *v = (const struct str *)(const void *)((const char *)p + params[i].off);
        if (v->p) /* (arena copies from the form parser: NUL-terminated) */
            rc = web_hidden(&hidden, params[i].name, v->p);
    }
    if (!rc)
        rc = buf_append(&hidden, "", 1); /* (a C string for the template) */
    if (p->login_hint.p && p->login_hint.len < sizeof(login_hint))
        str_copy(login_hint, sizeof(login_hint), p->login_hint.p);
    const char *name = user ? user : login_hint;
    const struct web_var v[] = {
        {"product", ctx->sh->cfg->product_name}, {"logo", logo_on()},
        {"client", j->s.q.client.name},          {"error", error},
        {"hidden", rc ? "" : hidden.p},          {"username", name},
        {"focus_user", name[0] ? "" : "1"},      {"focus_password", name[0] ? "1" : ""},
    };
    char csp[AUTH_ORIGIN_MAX + 200];
    csp_to(p->redirect_uri.p, csp, sizeof(csp));
    api__page_csp(r, rc ? 500 : status, WEB_LOGIN, v, sizeof(v) / sizeof(v[0]), csp);
    buf_fini(&hidden);
    return HTTP_DONE;
}

/* The answer goes back to the client: a redirect (query) or a self-posting form
 * (form_post), with iss (RFC 9207) and state. */
static int back_to_client(struct authz_job *j, const char *const *names, const char *const *vals,
                          size_t n)
{
    struct http_request *r = j->r;
    struct buf b;

    buf_init(&b, 16 * 1024);
    if (j->s.q.form_post) {
        struct api_ctx *ctx = r->app;
        int rc = ERR_OK;
        for (size_t i = 0; i < n && !rc; i++)
            if (vals[i])
                rc = web_hidden(&b, names[i], vals[i]);
        if (!rc)
            rc = buf_append(&b, "", 1);
        const struct web_var v[] = {{"product", ctx->sh->cfg->product_name},
                                    {"action", j->s.q.p.redirect_uri.p},
                                    {"hidden", rc ? "" : b.p}};
        char csp[AUTH_ORIGIN_MAX + 200];
        csp_to(j->s.q.p.redirect_uri.p, csp, sizeof(csp));
        if (rc)
            http_respond_error(r, 500, "server_error", NULL);
        else
            api__page_csp(r, 200, WEB_FORM_POST, v, sizeof(v) / sizeof(v[0]), csp);
        buf_fini(&b);
        return HTTP_DONE;
    }
    int rc = auth_authorize_redirect(&b, j->s.q.p.redirect_uri.p, names, vals, n);
    if (!rc)
        rc = buf_append(&b, "", 1);
    if (rc) {
        buf_fini(&b);
        return api__error_page(r, 400, "Sign-in failed", "The answer is too long to send back.",
                               "invalid_request");
    }
    http_add_header(r, "Location", b.p);
    http_add_header(r, "Cache-Control", "no-store");
    http_add_header(r, "Referrer-Policy", "no-referrer");
    http_respond(r, j->posted ? 303 : 302, NULL, "", 0);
    buf_fini(&b);
    return HTTP_DONE;
}

static int redirect_error(struct authz_job *j, const char *error, const char *why)
{
    struct api_ctx *ctx = j->r->app;
    const char *names[] = {"error", "error_description", "state", "iss"};
    const char *vals[] = {error, why, j->s.q.p.state.p, ctx->sh->issuer};
    return back_to_client(j, names, vals, 4);
}

/* The consent page: what the client asks, the person allows or denies (a form bound to the
 * browser, posted to /oauth2/consent). */
static int consent_page(struct authz_job *j)
{
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    const struct auth_authz_params *p = &j->s.q.p;
    char token[AUTH_CSRF_LEN + 1];
    struct str have;
    struct buf hidden, list;

    if (http_cookie_get(http_header(r, "cookie"), api__csrf_cookie(r), &have) ||
        have.len != AUTH_CSRF_LEN)
        return api__error_page(r, 403, "Your sign-in form expired",
                               "Go back to the application and start again.", "csrf");
    auth_csrf_token(ctx->sh->auth.key, have, token);
    buf_init(&hidden, 64 * 1024);
    buf_init(&list, 16 * 1024);
    int rc = web_hidden(&hidden, "csrf", token);
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]) && !rc; i++) {
        const struct str *v = (const struct str *)(const void *)((const char *)p + params[i].off);
        if (v->p)
            rc = web_hidden(&hidden, params[i].name, v->p);
    }
    for (const char *s = j->s.q.scope; *s && !rc;) { /* one item per scope, described if known */
        size_t n = strcspn(s, " ");
        char one[TOK_SCOPE_MAX + 1];
        snprintf(one, sizeof(one), "%.*s", (int)n, s);
        const char *what = auth_scope_description(one);
        rc = buf_puts(&list, "<li>");
        if (!rc)
            rc = web_escape(&list, what[0] ? what : one);
        if (!rc)
            rc = buf_puts(&list, "</li>\n");
        s += n + (s[n] == ' ');
    }
    if (!rc)
        rc = buf_append(&hidden, "", 1);
    if (!rc)
        rc = buf_append(&list, "", 1);
    const struct web_var v[] = {{"product", ctx->sh->cfg->product_name},
                                {"logo", logo_on()},
                                {"client", j->s.q.client.name},
                                {"scopes", rc ? "" : list.p},
                                {"hidden", rc ? "" : hidden.p}};
    char csp[AUTH_ORIGIN_MAX + 200];
    csp_to(p->redirect_uri.p, csp, sizeof(csp));
    api__page_csp(r, rc ? 500 : 200, WEB_CONSENT, v, sizeof(v) / sizeof(v[0]), csp);
    buf_fini(&hidden);
    buf_fini(&list);
    return HTTP_DONE;
}

/* ---- the answer ----------------------------------------------------------------------- */

/* A session this sign-in started: its cookie goes with the answer, whichever it is. */
static void set_session_cookie(struct authz_job *j)
{
    if (!j->s.session_token[0])
        return;
    char c[AUTH_SESSION_LEN + 128];
    snprintf(c, sizeof(c), "%s=%s; Path=/; HttpOnly; SameSite=Lax%s", api__session_cookie(j->r),
             j->s.session_token, api__https(j->r) ? "; Secure" : "");
    http_add_header(j->r, "Set-Cookie", c);
    cr_wipe(c, sizeof(c));
    cr_wipe(j->s.session_token, sizeof(j->s.session_token));
}

/* The sign-in's outcome (auth_signin.h) as a page or a redirect. HTTP_DONE. */
static int answer(struct authz_job *j, int rc)
{
    struct auth_signin *s = &j->s;
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;

    if (rc) {
        cr_wipe(s->session_token, sizeof(s->session_token));
        return api__busy_page(r, rc == ERR_LIMIT ? s->retry_ms / 1000 + 1 : 1);
    }
    set_session_cookie(j);
    if (s->outcome == AUTH_SIGNIN_NOT_VALID)
        return api__error_page(r, 400, "This sign-in link is not valid",
                               "The application that sent you here is not set up for it. Go "
                               "back to the application and try again.",
                               s->q.why);
    if (s->outcome == AUTH_SIGNIN_REFUSED)
        return redirect_error(j, s->error, s->why);
    if (s->outcome == AUTH_SIGNIN_ASK)
        return consent_page(j);
    if (s->outcome == AUTH_SIGNIN_CODE) {
        char code[TOK_CODE_MAX + 1]; /* (answering frees the arena, s with it) */
        memcpy(code, s->code, sizeof(code));
        cr_wipe(s->code, sizeof(s->code));
        const char *names[] = {"code", "state", "iss"};
        const char *vals[] = {code, s->q.p.state.p, ctx->sh->issuer};
        back_to_client(j, names, vals, 3);
        cr_wipe(code, sizeof(code));
        return HTTP_DONE;
    }
    if (s->form == AUTH_SIGNIN_FORM_LIMITED) {
        api__retry_after(r, s->retry_ms / 1000 + 1);
        return login_page(j, 429, "Too many sign-in attempts. Please wait a moment and try again.",
                          s->user.p);
    }
    if (s->form == AUTH_SIGNIN_FORM_FAILED)
        return login_page(j, 401, "Invalid username or password.", s->user.p);
    return login_page(j, 200, NULL, NULL);
}

static void signed_in(struct auth_signin *s, int rc)
{
    answer((struct authz_job *)(void *)s, rc);
}

/* The request's parameters from a form (the query, or a posted body); a repeated one is
 * an error page: which of the two would be the request? */
static struct authz_job *start(struct http_request *r, struct str form, enum auth_signin_step step)
{
    bool posted = step != AUTH_SIGNIN_SHOW;
    struct api_ctx *ctx = r->app;
    struct http_form f;
    struct authz_job *j = api__job(r, sizeof(*j));
    struct auth_signin *s;

    if (!j)
        return NULL;
    s = &j->s;
    if (http_form_parse(form, AUTHZ_PAIRS_MAX, r->arena, &f)) {
        api__error_page(r, 400, "This sign-in link is not valid", "The request could not be read.",
                        "invalid_request");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        struct str *v = (struct str *)(void *)((char *)&s->q.p + params[i].off);
        if (http_form_get(&f, params[i].name, v) == ERR_CONFLICT) {
            api__error_page(r, 400, "This sign-in link is not valid",
                            "A parameter of the request is repeated.", "invalid_request");
            return NULL;
        }
    }
    j->form = f;
    if (posted) {
        if (r->body.len) /* (the password's copy that matters is the form's, wiped once hashed) */
            cr_wipe((void *)(uintptr_t)r->body.p, r->body.len);
        http_form_get(&f, "username", &s->user);
        http_form_get(&f, "password", &s->pw);
        http_form_get(&f, "decision", &s->decision);
        struct str cookie = STR_NULL, token = STR_NULL;
        http_cookie_get(http_header(r, "cookie"), api__csrf_cookie(r), &cookie);
        http_form_get(&f, "csrf", &token);
        if (!auth_csrf_ok(ctx->sh->auth.key, cookie, token)) {
            api__error_page(r, 403, "Your sign-in form expired",
                            "Go back to the application and start again.", "csrf");
            return NULL;
        }
        if (step == AUTH_SIGNIN_LOGIN && (!s->user.p || !s->pw.p)) {
            api__error_page(r, 400, "Sign-in failed", "The username and password are required.",
                            "invalid_request");
            return NULL;
        }
    }
    j->r = r;
    j->posted = posted;
    s->step = step;
    s->q.svc = &ctx->sh->auth;
    s->q.lp = ctx->lp;
    s->q.cache = ctx->authz;
    s->now = clock_wall_s();
    tok_local_ring(&ctx->tok, s->now); /* (samples the store generation once a second) */
    s->q.gen = ctx->tok.generation;
    if (http_cookie_get(http_header(r, "cookie"), api__session_cookie(r), &s->session))
        s->session = STR_NULL;
    api__peer_ip(r, s->ip, sizeof(s->ip));
    api__peer_key(r, s->ip_key, sizeof(s->ip_key));
    api__login_rules(r, &s->rl_ip, &s->rl_user);
    s->done = signed_in;
    return j;
}

static int run(struct authz_job *j)
{
    if (!j)
        return HTTP_DONE;
    int rc = auth_signin(&j->s);
    return rc == ERR_AGAIN ? HTTP_ASYNC : answer(j, rc);
}

/* GET /oauth2/authorize?..., or POST with the same as a form (OpenID Connect Core
 * §3.1.2.1). Showing the form costs no hash and no write: it never waits behind logins. */
int api_authorize(struct http_request *r)
{
    if (r->method == HTTP_POST && !http_content_type_is(r, "application/x-www-form-urlencoded"))
        return api__error_page(r, 415, "This sign-in link is not valid",
                               "The request could not be read.", "invalid_request");
    return run(start(r, r->method == HTTP_POST ? r->body : r->query, AUTH_SIGNIN_SHOW));
}

/* The form again, posted by itself after retry_ms: a login shed (503) or over a rate limit
 * (429). */
static int retry_page(struct authz_job *j, unsigned status, uint64_t retry_ms)
{
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    char ra[24];
    struct buf hidden;
    uint64_t s = retry_ms / 1000 + 1;

    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)s);
    http_add_header(r, "Retry-After", ra);
    buf_init(&hidden, 64 * 1024);
    int rc = ERR_OK;
    for (size_t i = 0; i < j->form.n && !rc; i++)
        rc = web_hidden(&hidden, j->form.pairs[i].name.p, j->form.pairs[i].value.p);
    if (!rc)
        rc = buf_append(&hidden, "", 1);
    const struct web_var v[] = {
        {"product", ctx->sh->cfg->product_name},
        {"message", status == 503 ? "Many people are signing in at once."
                                  : "There have been many sign-in attempts from here."},
        {"retry", ra},
        {"hidden", rc ? "" : hidden.p},
    };
    if (j->s.pw.p) /* (the form's copy: the page has its own) */
        cr_wipe((void *)(uintptr_t)j->s.pw.p, j->s.pw.len);
    api__page(r, rc ? 500 : status, WEB_BUSY, v, sizeof(v) / sizeof(v[0]));
    if (hidden.p)
        cr_wipe(hidden.p, hidden.cap); /* (it held the password) */
    buf_fini(&hidden);
    return HTTP_DONE;
}

/* The same limits and admission control as /v1/auth/login, answered with a page: 0, or the
 * ms to come back after (*status 429 or 503). */
static uint64_t login_refused(struct authz_job *j, unsigned *status)
{
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    struct pol_gcra_result res;
    char name[AUTH_USERNAME_MAX + 1];
    uint64_t ms;

    *status = 429;
    if (api__rate_take_ip(r, POL_RL_LOGIN_GLOBAL, &res) ||
        api__rate_take_ip(r, POL_RL_LOGIN, &res) ||
        api__rate_take(r, POL_RL_LOGIN_USER, auth_login_key(j->s.user, name), &res))
        return res.retry_ns / 1000000u + 1;
    *status = 503;
    if ((ms = auth_svc_over_deadline(&ctx->sh->auth)) != 0) {
        met_add(&ctx->met->pool_rejected, 1);
        return ms;
    }
    return api__inflight_take(r, API_IF_LOGIN) ? 1000 : 0;
}

/* POST /oauth2/login: the hosted form, under the same rate limits and admission control as
 * /v1/auth/login; refused, it comes back by itself (retry_page). */
int api_authorize_login(struct http_request *r)
{
    unsigned status;

    if (!http_content_type_is(r, "application/x-www-form-urlencoded"))
        return api__error_page(r, 415, "Sign-in failed", "The form could not be read.",
                               "invalid_request");
    struct authz_job *j = start(r, r->body, AUTH_SIGNIN_LOGIN);
    if (!j)
        return HTTP_DONE;
    uint64_t retry_ms = login_refused(j, &status);
    return retry_ms ? retry_page(j, status, retry_ms) : run(j);
}

/* POST /oauth2/consent: allow or deny, from the consent page; the session says who. */
int api_authorize_consent(struct http_request *r)
{
    if (!http_content_type_is(r, "application/x-www-form-urlencoded"))
        return api__error_page(r, 415, "Sign-in failed", "The form could not be read.",
                               "invalid_request");
    return run(start(r, r->body, AUTH_SIGNIN_CONSENT));
}

/* GET /oauth2/assets/{name}: the pages' stylesheet and script, from memory. */
int api_authorize_asset(struct http_request *r)
{
    char name[32];
    if (r->nparams != 1 || r->params[0].len >= sizeof(name))
        return api__error(r, 404, "not_found", NULL);
    snprintf(name, sizeof(name), "%.*s", (int)r->params[0].len, r->params[0].p);
    if (strcmp(name, "logo") == 0) { /* the operator's (logo_file) */
        size_t n;
        const char *type;
        const void *img = web_logo(&n, &type);
        if (!img)
            return api__error(r, 404, "not_found", NULL);
        http_add_header(r, "Cache-Control", "public, max-age=3600");
        http_add_header(r, "X-Content-Type-Options", "nosniff");
        http_add_header(r, "Content-Security-Policy",
                        "default-src 'none'; style-src 'unsafe-inline'");
        http_respond(r, 200, type, img, n);
        return HTTP_DONE;
    }
    bool css = strcmp(name, "style.css") == 0;
    const char *body = css ? web_stylesheet() : web_script(name);
    if (!body)
        return api__error(r, 404, "not_found", NULL);
    http_add_header(r, "Cache-Control", "public, max-age=3600");
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    http_respond(r, 200, css ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8", body,
                 strlen(body));
    return HTTP_DONE;
}

/* ---- the token endpoint: grant_type=authorization_code --------------------------------- */

struct code_job {
    struct auth_code_exchange x; /* first */
    struct http_request *r;
    int64_t access_ttl;
    enum tok_alg id_alg; /* the client's ID-token signature */
    char aud[sizeof(((struct tok_claims *)0)->aud)];
};

static void redeemed(struct auth_code_exchange *x, int rc)
{
    struct code_job *j = (struct code_job *)(void *)x;
    struct tok_code_redemption *q = &x->q;
    struct http_request *r = j->r;
    struct tok_claims cl;

    if (rc) {
        api__fail(r, rc == ERR_LIMIT ? ERR_AGAIN : ERR_BACKEND, NULL);
        return;
    }
    if (q->outcome != TOK_CODE_OK) {
        api__oauth_error(r, 400, "invalid_grant", "invalid authorization code");
        return;
    }
    memset(&cl, 0, sizeof(cl));
    str_copy(cl.sub, sizeof(cl.sub), q->grant.sub);
    str_copy(cl.client_id, sizeof(cl.client_id), q->grant.client_id);
    str_copy(cl.scope, sizeof(cl.scope), q->grant.scope);
    str_copy(cl.jti, sizeof(cl.jti), q->grant.jti); /* the one the code names */
    str_copy(cl.aud, sizeof(cl.aud), j->aud);
    char nonce[TOK_NONCE_MAX + 1], refresh[TOK_REFRESH_LEN + 1];
    /* Answering frees the arena, q with it: what the answer needs is copied out first. */
    str_copy(nonce, sizeof(nonce), q->grant.nonce);
    memcpy(refresh, q->refresh_token, sizeof(refresh));
    cr_wipe(q->refresh_token, sizeof(q->refresh_token));
    char sid[sizeof(q->grant.sid)];
    str_copy(sid, sizeof(sid), q->grant.sid);
    struct tok_id id = {
        .alg = j->id_alg, .nonce = nonce, .auth_time = q->grant.auth_time, .sid = sid};
    bool oidc = tok_scope_subset(STR_LIT("openid"), q->grant.scope);
    api__answer_tokens(r, &cl, j->access_ttl, refresh[0] ? refresh : NULL, oidc ? &id : NULL);
    cr_wipe(refresh, sizeof(refresh));
}

int api__grant_code(struct http_request *r, const struct http_form *f, const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str code, uri, verifier;

    if (!(c->grants & AUTH_GRANT_AUTHORIZATION_CODE))
        return api__oauth_error(r, 400, "unauthorized_client",
                                "this client may not use authorization_code");
    int a = api__param(r, f, "code", &code),
        b = a == ERR_INVAL ? a : api__param(r, f, "redirect_uri", &uri),
        v = b == ERR_INVAL ? b : api__param(r, f, "code_verifier", &verifier);
    if (a == ERR_INVAL || b == ERR_INVAL || v == ERR_INVAL)
        return HTTP_DONE;
    if (a || b || v)
        return api__oauth_error(r, 400, "invalid_request",
                                "code, redirect_uri and code_verifier are required");
    struct code_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->access_ttl = c->access_ttl ? c->access_ttl : ctx->sh->cfg->access_ttl_ms / 1000;
    auth_client_audience(c, NULL, j->aud, sizeof(j->aud)); /* (the client's default) */
    j->id_alg = c->id_token_alg ? (enum tok_alg)c->id_token_alg : ctx->sh->tok.keys.id_alg;
    struct tok_code_redemption *q = &j->x.q;
    q->svc = &ctx->sh->tok;
    q->lp = ctx->lp;
    q->cache = ctx->tok.cache;
    q->code = code;
    q->redirect_uri = uri;
    q->verifier = verifier;
    /* a refresh token: for the operator's own app, or when offline access was granted */
    q->refresh = (c->grants & AUTH_GRANT_REFRESH_TOKEN) != 0;
    q->offline_only = !c->first_party;
    q->now = clock_wall_s();
    str_copy(q->client_id, sizeof(q->client_id), c->id);
    j->x.svc = &ctx->sh->auth;
    j->x.done = redeemed;
    int rc = auth_code_exchange(&j->x);
    if (rc == ERR_AGAIN)
        return HTTP_ASYNC;
    redeemed(&j->x, rc);
    return HTTP_DONE;
}
