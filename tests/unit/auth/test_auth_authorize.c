/* SPDX-License-Identifier: MIT */
/* The authorization request's checks without HTTP (#13 item 2): the order of RFC 6749
 * §4.1.2.1 (a client or redirect URI that cannot be trusted is never redirected to), then
 * every rule told back to the client; the logout's variant; the redirect's encoding; the
 * CSRF token bound to a cookie. On the embedded store, whose reads complete at once. */
#include <stdio.h>
#include <string.h>

#include "auth/auth_authorize.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {8};
static const char challenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
static struct fx F;
static struct auth_svc svc;
static char cid[AUTH_CLIENT_ID_MAX + 1];

static void never(struct auth_authorize *q, int rc)
{
    (void)q;
    (void)rc;
    harness_fail(__FILE__, __LINE__, "the embedded store reads at once");
}

/* q for a good request of the test's client, to be spoiled by the caller. */
static void good(struct auth_authorize *q)
{
    memset(q, 0, sizeof(*q));
    q->svc = &svc;
    q->lp = &F.lp;
    q->done = never;
    q->p.response_type = STR_LIT("code");
    q->p.client_id = str_c(cid);
    q->p.redirect_uri = STR_LIT("https://app.example/cb");
    q->p.scope = STR_LIT("openid  read");
    q->p.code_challenge = str_c(challenge);
    q->p.code_challenge_method = STR_LIT("S256");
}

static void expect(struct auth_authorize *q, enum auth_authz_verdict v, const char *error)
{
    ASSERT_EQ_INT(auth_authorize_check(q), ERR_OK);
    ASSERT_EQ_INT(q->verdict, v);
    if (error)
        ASSERT_EQ_STR(q->error, error);
}

TEST(the_request_is_checked_in_the_order_that_keeps_redirects_safe)
{
    struct auth_authorize q;
    struct auth_client c;
    struct auth_client_web w;
    char secret[AUTH_SECRET_LEN + 1];
    const char *why;
    ASSERT_EQ_INT(fx_open(&F, "authorize-test"), 0);
    memset(&svc, 0, sizeof(svc));
    svc.st = F.st;
    svc.key = key;
    memset(&c, 0, sizeof(c));
    memset(&w, 0, sizeof(w));
    snprintf(c.name, sizeof(c.name), "app");
    snprintf(c.scopes, sizeof(c.scopes), "read");
    c.grants = AUTH_GRANT_AUTHORIZATION_CODE;
    ASSERT_EQ_INT(
        auth_client_web_add(&w, AUTH_WEB_REDIRECT, STR_LIT("https://app.example/cb"), &why), 0);
    ASSERT_EQ_INT(
        auth_client_web_add(&w, AUTH_WEB_LOGOUT, STR_LIT("https://app.example/bye"), &why), 0);
    ASSERT_EQ_INT(auth_client_create(F.st, key, &c, &w, 1000, secret), 0);
    snprintf(cid, sizeof(cid), "%s", c.id);

    good(&q);
    expect(&q, AUTH_AUTHZ_OK, NULL);
    ASSERT_EQ_STR(q.scope, "openid read");
    ASSERT_TRUE(!q.form_post && q.max_age == -1);
    /* never redirected to: an unknown client, a redirect URI not registered or absent */
    good(&q);
    q.p.client_id = STR_LIT("nobody");
    q.p.response_type = STR_LIT("token"); /* (also wrong: the client comes first) */
    expect(&q, AUTH_AUTHZ_NO_REDIRECT, "invalid_client");
    good(&q);
    q.p.redirect_uri = STR_LIT("https://app.example/cb?x=1");
    expect(&q, AUTH_AUTHZ_NO_REDIRECT, "invalid_request");
    good(&q);
    q.p.redirect_uri = STR_NULL;
    expect(&q, AUTH_AUTHZ_NO_REDIRECT, NULL);
    /* told to the client */
    static const struct {
        const char *what, *value, *error;
    } back[] = {
        {"response_type", "token", "unsupported_response_type"},
        {"code_challenge_method", "plain", "invalid_request"},
        {"code_challenge", "short", "invalid_request"},
        {"scope", "openid admin", "invalid_scope"},
        {"response_mode", "fragment", "invalid_request"},
        {"prompt", "none login", "invalid_request"},
        {"prompt", "sometimes", "invalid_request"},
        {"max_age", "-1", "invalid_request"},
    };
    for (size_t i = 0; i < sizeof(back) / sizeof(back[0]); i++) {
        good(&q);
        struct str v = str_c(back[i].value);
        if (strcmp(back[i].what, "response_type") == 0)
            q.p.response_type = v;
        else if (strcmp(back[i].what, "code_challenge_method") == 0)
            q.p.code_challenge_method = v;
        else if (strcmp(back[i].what, "code_challenge") == 0)
            q.p.code_challenge = v;
        else if (strcmp(back[i].what, "scope") == 0)
            q.p.scope = v;
        else if (strcmp(back[i].what, "response_mode") == 0)
            q.p.response_mode = v;
        else if (strcmp(back[i].what, "prompt") == 0)
            q.p.prompt = v;
        else
            q.p.max_age = v;
        expect(&q, AUTH_AUTHZ_REDIRECT_ERROR, back[i].error);
    }
    good(&q);
    q.p.code_challenge = STR_NULL; /* PKCE for every client */
    expect(&q, AUTH_AUTHZ_REDIRECT_ERROR, "invalid_request");
    /* what the caller decides next: flags */
    good(&q);
    q.p.prompt = STR_LIT("login consent");
    q.p.max_age = STR_LIT("300");
    q.p.response_mode = STR_LIT("form_post");
    q.p.scope = STR_NULL; /* the client's own */
    expect(&q, AUTH_AUTHZ_OK, NULL);
    ASSERT_TRUE(q.prompt_login && q.prompt_consent && !q.prompt_none && q.form_post);
    ASSERT_EQ_INT(q.max_age, 300);
    ASSERT_EQ_STR(q.scope, "read");
    /* a logout: only the client and its post-logout URI */
    good(&q);
    q.logout = true;
    q.p.redirect_uri = STR_LIT("https://app.example/bye");
    q.p.response_type = STR_NULL;
    expect(&q, AUTH_AUTHZ_OK, NULL);
    q.p.redirect_uri = STR_LIT("https://app.example/cb"); /* a redirect URI is not one */
    expect(&q, AUTH_AUTHZ_NO_REDIRECT, NULL);
    fx_close(&F);
}

TEST(the_redirect_is_encoded_and_the_csrf_token_bound_to_its_cookie)
{
    struct buf b;
    const char *names[] = {"code", "state", "iss", "none"};
    const char *vals[] = {"c-1", "a b&c=d", "https://id.example", NULL};
    buf_init(&b, 4096);
    ASSERT_EQ_INT(auth_authorize_redirect(&b, "https://app.example/cb?x=1", names, vals, 4), 0);
    buf_append(&b, "", 1);
    ASSERT_EQ_STR(b.p, "https://app.example/cb?x=1&code=c-1&state=a%20b%26c%3Dd"
                       "&iss=https%3A%2F%2Fid.example");
    buf_fini(&b);
    char cookie[AUTH_CSRF_LEN + 1], other[AUTH_CSRF_LEN + 1], token[AUTH_CSRF_LEN + 1];
    ASSERT_EQ_INT(cr_init(), 0);
    auth_csrf_new(cookie);
    auth_csrf_new(other);
    auth_csrf_token(key, str_c(cookie), token);
    ASSERT_TRUE(auth_csrf_ok(key, str_c(cookie), str_c(token)));
    ASSERT_TRUE(!auth_csrf_ok(key, str_c(other), str_c(token))); /* another browser's */
    ASSERT_TRUE(!auth_csrf_ok(key, STR_NULL, str_c(token)));
    ASSERT_TRUE(!auth_csrf_ok(key, str_c(cookie), STR_LIT("forged")));
}
