/* SPDX-License-Identifier: MIT */
/*
 * The authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1, with PKCE):
 * is it one we may answer, and where may the answer go? Checked when the login page is
 * shown and again when its form is posted (the form carries the request; nothing is kept
 * between the two).
 *
 * Verdicts, in the order RFC 6749 §4.1.2.1 requires:
 *   AUTH_AUTHZ_NO_REDIRECT: an unknown client, or a redirect URI missing or not registered
 *     for it. The user gets an error page and is never sent anywhere: a redirect there
 *     would make us an open redirector.
 *   AUTH_AUTHZ_REDIRECT_ERROR: anything else wrong (error, why): the error goes back to the
 *     client's redirect URI, with state and iss.
 *   AUTH_AUTHZ_OK: the request stands (scope normalised; flags for prompt and max_age).
 *
 * The rules: response_type "code" only (no implicit, no hybrid); response_mode "query" or
 * "form_post"; PKCE with S256 for every client ("plain" refused); the client registered
 * for authorization_code; scopes among the client's, plus OpenID Connect's own (openid,
 * profile, email, offline_access); no scope asked: the client's; prompt among none, login,
 * consent, select_account (none alone); max_age a number of seconds; nonce at most 255
 * bytes, state at most 1024. Whether a browser session answers (prompt, max_age) is the
 * caller's next step (auth_session.h).
 *
 * For a logout (q->logout), only the client and its post-logout redirect URI are checked:
 * AUTH_AUTHZ_OK (none asked, or one registered) or AUTH_AUTHZ_NO_REDIRECT.
 *
 * The client's record (with its URIs) comes from the thread's cache when one is given
 * (cache, gen: the store generation it must have been read at; the token endpoint's rule,
 * so a client changed or deleted is read again within the generation's sample, a second),
 * else from the store, and a read fills the cache.
 *
 * The caller owns the struct (it may live in a request's arena) and fills the inputs;
 * auth_authorize_check answers ERR_OK (see verdict), ERR_BACKEND (the store failed: 503),
 * or ERR_AGAIN, after which done() runs once on lp's thread with one of those.
 */
#ifndef AUTH_AUTH_AUTHORIZE_H
#define AUTH_AUTH_AUTHORIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_client.h"
#include "auth/auth_client_web.h"
#include "auth/auth_svc.h"
#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"
#include "token/tok_scope.h"

#define AUTH_STATE_MAX 1024

/* The request's parameters as received ({NULL, 0}: absent). */
struct auth_authz_params {
    struct str response_type, client_id, redirect_uri, scope, state, nonce, code_challenge,
        code_challenge_method, prompt, max_age, login_hint, response_mode;
};

enum auth_authz_verdict { AUTH_AUTHZ_OK, AUTH_AUTHZ_NO_REDIRECT, AUTH_AUTHZ_REDIRECT_ERROR };

struct auth_authorize;
typedef void (*auth_authorize_cb)(struct auth_authorize *q, int rc);

struct auth_authorize {
    struct store_op _op; /* first */
    /* in */
    const struct auth_svc *svc;
    struct loop *lp;
    struct auth_authz_params p; /* borrowed until the answer */
    bool logout; /* a logout's: p.redirect_uri is a post-logout URI ({NULL, 0}: none) */
    struct auth_authz_cache *cache; /* the thread's, or NULL */
    uint64_t gen;                   /* the store generation the cache is valid for */
    auth_authorize_cb done;
    /* out */
    enum auth_authz_verdict verdict;
    const char *error, *why; /* for the error page or the redirect (static strings) */
    struct auth_client client;
    struct auth_client_web web;
    char scope[TOK_SCOPE_MAX + 1]; /* normalised */
    bool form_post;                /* response_mode=form_post */
    bool prompt_none, prompt_login, prompt_consent;
    int64_t max_age; /* -1: none */
    /* private */
    struct buf _b;
};

int auth_authorize_check(struct auth_authorize *q);

/* A thread's cache of client records with their URIs (one owner thread; no lock). */
struct auth_authz_cache;
struct auth_authz_cache *auth_authz_cache_new(unsigned slots);
void auth_authz_cache_free(struct auth_authz_cache *c);

/* Where the answer goes, for a redirect (response_mode query): the redirect URI with the
 * parameters added (after '?' or '&'), each percent-encoded: code, state, iss; or error,
 * error_description, state, iss. NULL values are left out. */
int auth_authorize_redirect(struct buf *out, const char *redirect_uri, const char *const *names,
                            const char *const *values, size_t n);

/* The login form's CSRF defence (a token bound to the browser): a random cookie, and in the
 * form a keyed digest of it; a post whose token is not the digest of its own cookie is
 * refused. */
#define AUTH_CSRF_LEN 43
void auth_csrf_new(char cookie[AUTH_CSRF_LEN + 1]);
void auth_csrf_token(const uint8_t *key, struct str cookie, char token[AUTH_CSRF_LEN + 1]);
bool auth_csrf_ok(const uint8_t *key, struct str cookie, struct str token);

#endif
