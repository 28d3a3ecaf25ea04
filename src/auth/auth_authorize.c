/* SPDX-License-Identifier: MIT */
/* The authorization request's checks; see auth_authorize.h. */
#include "auth/auth_authorize.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "token/tok_code.h"

static const char *const oidc_scopes = "openid profile email offline_access";

static int refuse(struct auth_authorize *q, enum auth_authz_verdict v, const char *error,
                  const char *why)
{
    q->verdict = v;
    q->error = error;
    q->why = why;
    return ERR_OK;
}

/* prompt (OpenID Connect Core §3.1.2.1): space-separated; "none" only alone. */
static int prompt_of(struct auth_authorize *q)
{
    struct str p = q->p.prompt;
    size_t i = 0;
    unsigned n = 0;

    while (i < p.len) {
        while (i < p.len && p.p[i] == ' ')
            i++;
        size_t s = i;
        while (i < p.len && p.p[i] != ' ')
            i++;
        struct str w = {p.p + s, i - s};
        if (!w.len)
            continue;
        n++;
        if (str_eq(w, STR_LIT("none")))
            q->prompt_none = true;
        else if (str_eq(w, STR_LIT("login")))
            q->prompt_login = true;
        else if (str_eq(w, STR_LIT("consent")))
            q->prompt_consent = true;
        else if (!str_eq(w, STR_LIT("select_account")))
            return ERR_INVAL;
    }
    return q->prompt_none && n > 1 ? ERR_INVAL : ERR_OK;
}

/* The scope asked, normalised, within what the client may have. */
static int scope_of(struct auth_authorize *q)
{
    char asked[TOK_SCOPE_MAX + 1], one[TOK_SCOPE_MAX + 1];

    if (!q->p.scope.p) {
        snprintf(q->scope, sizeof(q->scope), "%s", q->client.scopes);
        return ERR_OK;
    }
    if (tok_scope_normalize(q->p.scope, asked, sizeof(asked)))
        return ERR_INVAL;
    for (const char *s = asked; *s;) {
        size_t n = strcspn(s, " ");
        snprintf(one, sizeof(one), "%.*s", (int)n, s);
        if (!tok_scope_subset(str_c(one), oidc_scopes) &&
            !tok_scope_subset(str_c(one), q->client.scopes))
            return ERR_INVAL;
        s += n + (s[n] == ' ');
    }
    snprintf(q->scope, sizeof(q->scope), "%s", asked);
    return ERR_OK;
}

/* The client is known and the redirect URI is its own: the rest is told to the client. */
static int check_request(struct auth_authorize *q)
{
    const struct auth_authz_params *p = &q->p;
    const char *rerr = "invalid_request";

    q->max_age = -1;
    if (!(q->client.grants & AUTH_GRANT_AUTHORIZATION_CODE))
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, "unauthorized_client",
                      "this client may not use the authorization code flow");
    if (p->response_mode.p && !str_eq(p->response_mode, STR_LIT("query")) &&
        !str_eq(p->response_mode, STR_LIT("form_post")))
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, rerr, "response_mode is query or form_post");
    q->form_post = p->response_mode.p && str_eq(p->response_mode, STR_LIT("form_post"));
    if (!p->response_type.p || !str_eq(p->response_type, STR_LIT("code")))
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, "unsupported_response_type",
                      "response_type is code");
    if (p->code_challenge_method.p && !str_eq(p->code_challenge_method, STR_LIT("S256")))
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, rerr,
                      "code_challenge_method is S256 (plain is refused)");
    if (!p->code_challenge.p || !tok_pkce_challenge_ok(p->code_challenge))
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, rerr,
                      "code_challenge (PKCE, S256: 43 base64url characters) is required");
    if (scope_of(q))
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, "invalid_scope",
                      "scope not allowed for this client");
    if (p->nonce.len > TOK_NONCE_MAX || p->state.len > AUTH_STATE_MAX)
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, rerr, "nonce or state too long");
    if (prompt_of(q))
        return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, rerr,
                      "prompt is none, login, consent or select_account (none alone)");
    if (p->max_age.p) {
        uint64_t v;
        if (str_to_u64(p->max_age, &v) || v > INT32_MAX)
            return refuse(q, AUTH_AUTHZ_REDIRECT_ERROR, rerr, "max_age is a number of seconds");
        q->max_age = (int64_t)v;
    }
    return refuse(q, AUTH_AUTHZ_OK, NULL, NULL);
}

/* ---- the thread's cache --------------------------------------------------------------- */

struct authz_slot {
    uint64_t generation; /* 0: empty */
    struct auth_client client;
    struct auth_client_web web;
};

struct auth_authz_cache {
    unsigned n;
    struct authz_slot *slots;
};

struct auth_authz_cache *auth_authz_cache_new(unsigned slots)
{
    struct auth_authz_cache *c = xcalloc(1, sizeof(*c));
    c->n = slots ? slots : 1;
    c->slots = xcalloc(c->n, sizeof(struct authz_slot));
    return c;
}

void auth_authz_cache_free(struct auth_authz_cache *c)
{
    if (!c)
        return;
    mem_free(c->slots);
    mem_free(c);
}

static struct authz_slot *slot_of(const struct auth_authorize *q)
{
    return &q->cache->slots[str_fnv1a(q->p.client_id.p, q->p.client_id.len) % q->cache->n];
}

/* The lists' used rows only: a client has a few URIs, the struct room for 24. */
static void web_copy(struct auth_client_web *to, const struct auth_client_web *from)
{
    memcpy(to->n, from->n, sizeof(to->n));
    for (unsigned i = 0; i < from->n[AUTH_WEB_REDIRECT]; i++)
        memcpy(to->redirect[i], from->redirect[i], strlen(from->redirect[i]) + 1);
    for (unsigned i = 0; i < from->n[AUTH_WEB_LOGOUT]; i++)
        memcpy(to->logout[i], from->logout[i], strlen(from->logout[i]) + 1);
    for (unsigned i = 0; i < from->n[AUTH_WEB_ORIGIN]; i++)
        memcpy(to->origin[i], from->origin[i], strlen(from->origin[i]) + 1);
}

static bool cache_find(struct auth_authorize *q)
{
    if (!q->cache || !q->gen)
        return false;
    const struct authz_slot *s = slot_of(q);
    if (s->generation != q->gen || !str_eq(q->p.client_id, str_c(s->client.id)))
        return false;
    q->client = s->client;
    web_copy(&q->web, &s->web);
    return true;
}

static void cache_put(struct auth_authorize *q, int rc)
{
    if (!q->cache || !q->gen)
        return;
    struct authz_slot *s = slot_of(q);
    if (rc == ERR_OK) {
        s->client = q->client;
        web_copy(&s->web, &q->web);
        s->generation = q->gen;
    } else if (rc == ERR_NOTFOUND && str_eq(q->p.client_id, str_c(s->client.id))) {
        s->generation = 0; /* deleted: drop the stale copy */
    }
}

/* ---- the checks -------------------------------------------------------------------------- */

/* The client's record is known (rc ERR_OK) or not: the verdict. */
static int decided(struct auth_authorize *q, int rc)
{
    if (rc == ERR_NOTFOUND)
        return refuse(q, AUTH_AUTHZ_NO_REDIRECT, "invalid_client", "unknown client");
    if (rc)
        return ERR_BACKEND;
    if (q->logout)
        return !q->p.redirect_uri.p || auth_client_web_logout_ok(&q->web, q->p.redirect_uri)
                   ? refuse(q, AUTH_AUTHZ_OK, NULL, NULL)
                   : refuse(q, AUTH_AUTHZ_NO_REDIRECT, "invalid_request",
                            "the post_logout_redirect_uri is not registered for this client");
    if (!q->p.redirect_uri.p || !auth_client_web_redirect_ok(&q->web, q->p.redirect_uri))
        return refuse(q, AUTH_AUTHZ_NO_REDIRECT, "invalid_request",
                      "the redirect_uri is missing or not registered for this client");
    return check_request(q);
}

static int read_done(struct auth_authorize *q, int rc)
{
    if (rc == ERR_OK && auth_client_decode_all(q->p.client_id.p, q->p.client_id.len, q->_b.p,
                                               q->_b.len, &q->client, &q->web))
        rc = ERR_BACKEND; /* a record we cannot read: not "no such client" */
    buf_fini(&q->_b);
    cache_put(q, rc);
    return decided(q, rc);
}

static void on_read(struct store_op *op)
{
    struct auth_authorize *q = (struct auth_authorize *)(void *)op;
    q->done(q, read_done(q, op->status));
}

int auth_authorize_check(struct auth_authorize *q)
{
    memset(&q->_op, 0, sizeof(q->_op));
    q->prompt_none = q->prompt_login = q->prompt_consent = q->form_post = false;
    if (!q->p.client_id.len || q->p.client_id.len > AUTH_CLIENT_ID_MAX)
        return refuse(q, AUTH_AUTHZ_NO_REDIRECT, "invalid_client", "unknown client");
    if (cache_find(q))
        return decided(q, ERR_OK);
    buf_init(&q->_b, 65536);
    q->_op.on_done = on_read;
    int rc = store_get(q->svc->st, STORE_T_CLIENTS, q->p.client_id.p, q->p.client_id.len, &q->_b,
                       q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : read_done(q, rc);
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* s percent-encoded (RFC 3986 §2.1: all but the unreserved), in runs. */
static int pct(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = ERR_OK;
    while (*s && !rc) {
        size_t n = 0;
        while (s[n] && unreserved((unsigned char)s[n]))
            n++;
        if (n) {
            rc = buf_append(b, s, n);
            s += n;
            continue;
        }
        unsigned char c = (unsigned char)*s++;
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        rc = buf_append(b, e, 3);
    }
    return rc;
}

int auth_authorize_redirect(struct buf *out, const char *redirect_uri, const char *const *names,
                            const char *const *values, size_t n)
{
    char sep = strchr(redirect_uri, '?') ? '&' : '?';
    int rc = buf_puts(out, redirect_uri);
    for (size_t i = 0; i < n && !rc; i++) {
        if (!values[i])
            continue;
        rc = buf_append(out, &sep, 1);
        if (!rc)
            rc = buf_puts(out, names[i]);
        if (!rc)
            rc = buf_append(out, "=", 1);
        if (!rc)
            rc = pct(out, values[i]);
        sep = '&';
    }
    return rc;
}

void auth_csrf_new(char cookie[AUTH_CSRF_LEN + 1])
{
    uint8_t raw[32];
    cr_random(raw, sizeof(raw));
    cr_b64url_encode(raw, sizeof(raw), cookie, AUTH_CSRF_LEN + 1);
}

void auth_csrf_token(const uint8_t *key, struct str cookie, char token[AUTH_CSRF_LEN + 1])
{
    uint8_t msg[5 + AUTH_CSRF_LEN], h[CR_HASH_LEN];
    size_t n = cookie.len < AUTH_CSRF_LEN ? cookie.len : AUTH_CSRF_LEN;
    memcpy(msg, "csrf\n", 5);
    memcpy(msg + 5, cookie.p, n);
    cr_keyed_hash(h, key, msg, 5 + n);
    cr_b64url_encode(h, 32, token, AUTH_CSRF_LEN + 1);
}

bool auth_csrf_ok(const uint8_t *key, struct str cookie, struct str token)
{
    char want[AUTH_CSRF_LEN + 1];
    if (cookie.len != AUTH_CSRF_LEN || token.len != AUTH_CSRF_LEN)
        return false;
    auth_csrf_token(key, cookie, want);
    return cr_eq(want, token.p, AUTH_CSRF_LEN);
}
