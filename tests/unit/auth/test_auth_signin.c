/* SPDX-License-Identifier: MIT */
/* The sign-in at the authorization endpoint without HTTP (#12 item 1, for #13's flow): the
 * form when no session answers, single sign-on when one does (unless prompt=login or
 * max_age), the one answer for a failed password, consent for a third party (asked, denied,
 * allowed and remembered, asked again for prompt=consent), prompt=none's errors, and the
 * code's redemption noting its refresh family on the session. On the embedded store with a
 * real loop and worker A.pool. */
#include <stdio.h>
#include <string.h>

#include "auth/auth_client.h"
#include "auth/auth_client_web.h"
#include "auth/auth_signin.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"
#include "loop/loop.h"
#include "token/tok_svc.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {5};
static const char verifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char challenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
static const struct auth_pw_params pp = {64, 1, 1}; /* small: a unit test's hash */
static struct fx F;
static struct fx_auth A;
static char own[AUTH_CLIENT_ID_MAX + 1], third[AUTH_CLIENT_ID_MAX + 1];
static int answers, last_rc;
static const int64_t T0 = 10000;

static void on_signin(struct auth_signin *s, int rc)
{
    (void)s;
    answers++;
    last_rc = rc;
}

static void on_exchange(struct auth_code_exchange *x, int rc)
{
    (void)x;
    answers++;
    last_rc = rc;
}

static void client(bool first_party, char *id)
{
    struct auth_client c;
    struct auth_client_web w;
    char secret[AUTH_SECRET_LEN + 1];
    const char *why;
    memset(&c, 0, sizeof(c));
    memset(&w, 0, sizeof(w));
    snprintf(c.name, sizeof(c.name), first_party ? "own" : "third");
    snprintf(c.scopes, sizeof(c.scopes), "read");
    c.grants = AUTH_GRANT_AUTHORIZATION_CODE | AUTH_GRANT_REFRESH_TOKEN;
    c.first_party = first_party;
    ASSERT_EQ_INT(
        auth_client_web_add(&w, AUTH_WEB_REDIRECT, STR_LIT("https://app.example/cb"), &why), 0);
    ASSERT_EQ_INT(auth_client_create(F.st, key, &c, &w, 1000, secret), 0);
    snprintf(id, AUTH_CLIENT_ID_MAX + 1, "%s", c.id);
}

static void setup(void)
{
    struct auth_user u;
    char phc[AUTH_PHC_MAX];
    ASSERT_EQ_INT(fx_open(&F, "signin-test"), 0);
    ASSERT_EQ_INT(fx_auth_open(&A, &F, key, &pp, 100), 0);
    A.tok.refresh_ttl_s = 100000;
    A.tok.refresh_idle_s = 100000;
    A.svc.session_idle_s = 3600;
    A.svc.session_ttl_s = 86400;
    ASSERT_EQ_INT(auth_pw_hash(&pp, "correct horse", 13, phc, sizeof(phc)), 0);
    auth_user_init(&u, "ann", phc, 1000);
    ASSERT_EQ_INT(auth_user_put(F.st, &u, false), 0);
    client(true, own);
    client(false, third);
}

static void teardown(void)
{
    fx_auth_close(&A, &F);
    fx_close(&F);
}

/* A good request of client id, to be changed by the caller before sign_in. */
static void request(struct auth_signin *s, const char *id, enum auth_signin_step step)
{
    memset(s, 0, sizeof(*s));
    s->q.svc = &A.svc;
    s->q.lp = &F.lp;
    s->q.p.response_type = STR_LIT("code");
    s->q.p.client_id = str_c(id);
    s->q.p.redirect_uri = STR_LIT("https://app.example/cb");
    s->q.p.scope = STR_LIT("openid offline_access read");
    s->q.p.nonce = STR_LIT("n-1");
    s->q.p.code_challenge = str_c(challenge);
    s->q.p.code_challenge_method = STR_LIT("S256");
    s->step = step;
    s->now = T0;
    s->done = on_signin;
    snprintf(s->ip, sizeof(s->ip), "192.0.2.1");
    snprintf(s->ip_key, sizeof(s->ip_key), "192.0.2.1");
}

static int sign_in(struct auth_signin *s)
{
    answers = 0;
    int rc = auth_signin(s);
    if (rc != ERR_AGAIN)
        return rc;
    fx_wait(&F, &answers, 1);
    return last_rc;
}

/* A posted login form; the password is copied (the sign-in wipes it). */
static int log_in(struct auth_signin *s, const char *id, const char *pw)
{
    static char pwbuf[64];
    request(s, id, AUTH_SIGNIN_LOGIN);
    snprintf(pwbuf, sizeof(pwbuf), "%s", pw);
    s->user = STR_LIT("ann");
    s->pw = str_c(pwbuf);
    return sign_in(s);
}

static int exchange(struct auth_code_exchange *x, const char *code, const char *id)
{
    memset(x, 0, sizeof(*x));
    x->q.svc = &A.tok;
    x->q.lp = &F.lp;
    x->q.code = str_c(code);
    x->q.redirect_uri = STR_LIT("https://app.example/cb");
    x->q.verifier = str_c(verifier);
    x->q.refresh = true;
    x->q.offline_only = true;
    x->q.now = T0 + 1;
    snprintf(x->q.client_id, sizeof(x->q.client_id), "%s", id);
    x->svc = &A.svc;
    x->done = on_exchange;
    answers = 0;
    int rc = auth_code_exchange(x);
    if (rc != ERR_AGAIN)
        return rc;
    fx_wait(&F, &answers, 1);
    return last_rc;
}

/* The session cookie's record, as auth_session_find reads it. */
static bool session(const char *token, struct auth_session *out)
{
    struct auth_session_find f;
    memset(&f, 0, sizeof(f));
    f.svc = &A.svc;
    f.lp = &F.lp;
    f.token = str_c(token);
    f.now = T0 + 2;
    if (auth_session_find(&f) != ERR_OK) /* (the embedded store reads at once) */
        return false;
    *out = f.s;
    return f.found;
}

TEST(a_login_signs_in_once_and_the_session_answers_the_next_request)
{
    struct auth_signin s;
    struct auth_code_exchange x;
    struct auth_session sess;
    char cookie[AUTH_SESSION_LEN + 1];

    setup();
    /* no session: the form; prompt=none: login_required, back to the client */
    request(&s, own, AUTH_SIGNIN_SHOW);
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_FORM);
    ASSERT_EQ_INT(s.form, AUTH_SIGNIN_FORM_NEW);
    request(&s, own, AUTH_SIGNIN_SHOW);
    s.q.p.prompt = STR_LIT("none");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_REFUSED);
    ASSERT_EQ_STR(s.error, "login_required");
    /* the request's own errors: a page, or back to the client */
    request(&s, "nobody", AUTH_SIGNIN_SHOW);
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_NOT_VALID);
    request(&s, own, AUTH_SIGNIN_LOGIN);
    s.q.p.scope = STR_LIT("openid admin");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_REFUSED);
    ASSERT_EQ_STR(s.error, "invalid_scope");
    /* a wrong password: the form again, no session, no code */
    ASSERT_EQ_INT(log_in(&s, own, "wrong horse"), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_FORM);
    ASSERT_EQ_INT(s.form, AUTH_SIGNIN_FORM_FAILED);
    ASSERT_TRUE(!s.session_token[0] && !s.code[0]);
    /* the right one, for the operator's own client: a session and the code at once */
    ASSERT_EQ_INT(log_in(&s, own, "correct horse"), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_CODE);
    ASSERT_TRUE(s.code[0] && strlen(s.session_token) == AUTH_SESSION_LEN);
    snprintf(cookie, sizeof(cookie), "%s", s.session_token);
    ASSERT_TRUE(session(cookie, &sess));
    ASSERT_EQ_INT(sess.auth_time, T0);
    ASSERT_EQ_INT(sess.nfam, 0);
    /* the code is for ann's session; its redemption notes the family on it (for logout) */
    char code[TOK_CODE_MAX + 1];
    snprintf(code, sizeof(code), "%s", s.code);
    ASSERT_EQ_INT(exchange(&x, code, own), ERR_OK);
    ASSERT_EQ_INT(x.q.outcome, TOK_CODE_OK);
    ASSERT_EQ_STR(x.q.grant.sub, sess.sub);
    ASSERT_EQ_STR(x.q.grant.sid, sess.sid);
    ASSERT_EQ_STR(x.q.grant.nonce, "n-1");
    ASSERT_TRUE(x.q.refresh_token[0] != '\0');
    ASSERT_TRUE(session(cookie, &sess));
    ASSERT_EQ_INT(sess.nfam, 1);
    ASSERT_TRUE(memcmp(sess.fam[0], x.q.grant.family, STORE_FAMILY_ID) == 0);
    ASSERT_EQ_INT(exchange(&x, code, own), ERR_OK); /* once only */
    ASSERT_EQ_INT(x.q.outcome, TOK_CODE_INVALID);
    /* single sign-on: the session answers without the form... */
    request(&s, own, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    s.now = T0 + 100;
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_CODE);
    ASSERT_TRUE(!s.session_token[0]); /* (no new session) */
    /* ...unless prompt=login, or max_age finds the sign-in too old */
    request(&s, own, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    s.q.p.prompt = STR_LIT("login");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_FORM);
    request(&s, own, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    s.q.p.max_age = STR_LIT("60");
    s.now = T0 + 100;
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_FORM);
    s.q.p.max_age = STR_LIT("600");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_CODE);
    /* a cookie that names no session is none */
    request(&s, own, AUTH_SIGNIN_SHOW);
    s.session = STR_LIT("not-a-session");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_FORM);
    teardown();
}

TEST(a_third_party_client_gets_the_persons_consent_first)
{
    struct auth_signin s;
    char cookie[AUTH_SESSION_LEN + 1];

    setup();
    ASSERT_EQ_INT(log_in(&s, third, "correct horse"), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_ASK); /* signed in, but asked first */
    ASSERT_TRUE(strlen(s.session_token) == AUTH_SESSION_LEN && !s.code[0]);
    snprintf(cookie, sizeof(cookie), "%s", s.session_token);
    /* prompt=none cannot ask */
    request(&s, third, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    s.q.p.prompt = STR_LIT("none");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_REFUSED);
    ASSERT_EQ_STR(s.error, "consent_required");
    /* denied: access_denied, and nothing remembered */
    request(&s, third, AUTH_SIGNIN_CONSENT);
    s.session = str_c(cookie);
    s.decision = STR_LIT("deny");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_REFUSED);
    ASSERT_EQ_STR(s.error, "access_denied");
    request(&s, third, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_ASK);
    /* consent needs the session that asked: without it, the form */
    request(&s, third, AUTH_SIGNIN_CONSENT);
    s.decision = STR_LIT("allow");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_FORM);
    /* allowed: the code, and the next request is not asked again... */
    request(&s, third, AUTH_SIGNIN_CONSENT);
    s.session = str_c(cookie);
    s.decision = STR_LIT("allow");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_CODE);
    request(&s, third, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_CODE);
    /* ...unless it asks (prompt=consent), or asks for more than was allowed */
    request(&s, third, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    s.q.p.prompt = STR_LIT("consent");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_ASK);
    request(&s, third, AUTH_SIGNIN_SHOW);
    s.session = str_c(cookie);
    s.q.p.scope = STR_LIT("openid offline_access read email");
    ASSERT_EQ_INT(sign_in(&s), ERR_OK);
    ASSERT_EQ_INT(s.outcome, AUTH_SIGNIN_ASK);
    teardown();
}
