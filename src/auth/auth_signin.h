/* SPDX-License-Identifier: MIT */
/*
 * The sign-in at the authorization endpoint (OpenID Connect Core §3.1.2): from an
 * authorization request to what answers it. The steps, each its own module's rule:
 *
 *   1. the request is checked (auth_authorize_check);
 *   2. who it is for: the browser's session (auth_session_find), unless prompt=login asks
 *      for a sign-in or max_age says the last one is too old; or, for a posted login form,
 *      the password (auth_login, under the login rules) and then a new session
 *      (auth_session_start), durable before the code;
 *   3. a third-party client needs the person's consent (auth_consent_check; asked once per
 *      scope, again for prompt=consent); a consent form's "allow" is remembered first
 *      (auth_consent_grant); a first-party client needs none;
 *   4. the code (tok_code_issue: sealed, not stored; nothing waits for a write).
 *
 * The HTTP side reads the request, the cookies and the CSRF token, and shows the outcome:
 *   AUTH_SIGNIN_NOT_VALID: an error page (q.why): there is nowhere safe to send the answer;
 *   AUTH_SIGNIN_REFUSED: error and why go back to the client (login_required,
 *     consent_required, access_denied, or the request's own error);
 *   AUTH_SIGNIN_FORM: the login form, new or again after a failure (form);
 *   AUTH_SIGNIN_ASK: the consent page;
 *   AUTH_SIGNIN_CODE: the code goes back to the client.
 * A session this sign-in started is in session_token (the browser's cookie) whatever the
 * outcome: the person did sign in.
 *
 * The caller owns the struct (it may live in a request's arena) and fills q's inputs (all
 * but done) and the step's; auth_signin answers ERR_OK (see outcome), ERR_LIMIT (the hash
 * would wait too long: come back in retry_ms), ERR_BACKEND (a store failed: nothing was
 * decided) or ERR_AGAIN, after which done() runs once on q.lp's thread with one of those.
 */
#ifndef AUTH_AUTH_SIGNIN_H
#define AUTH_AUTH_SIGNIN_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_authorize.h"
#include "auth/auth_consent.h"
#include "auth/auth_login.h"
#include "auth/auth_session.h"
#include "core/str.h"
#include "token/tok_code.h"

enum auth_signin_step {
    AUTH_SIGNIN_SHOW,    /* the request as the client sent it */
    AUTH_SIGNIN_LOGIN,   /* the login form posted: user, pw */
    AUTH_SIGNIN_CONSENT, /* the consent form posted: decision; the session says who */
};

enum auth_signin_outcome {
    AUTH_SIGNIN_NOT_VALID,
    AUTH_SIGNIN_REFUSED,
    AUTH_SIGNIN_FORM,
    AUTH_SIGNIN_ASK,
    AUTH_SIGNIN_CODE,
};

enum auth_signin_form {
    AUTH_SIGNIN_FORM_NEW,     /* no session answers: sign in */
    AUTH_SIGNIN_FORM_FAILED,  /* the one answer for a wrong name, password, or a lockout */
    AUTH_SIGNIN_FORM_LIMITED, /* too many attempts: again after retry_ms */
};

struct auth_signin;
typedef void (*auth_signin_cb)(struct auth_signin *s, int rc);

struct auth_signin {
    struct auth_authorize q; /* first: the request (inputs: the caller's) */
    /* in */
    enum auth_signin_step step;
    struct str session;      /* the session cookie's value ({NULL, 0}: none); borrowed */
    struct str user, pw;     /* LOGIN; borrowed until the answer; pw's bytes are wiped */
    struct str decision;     /* CONSENT: "allow", or a refusal */
    char ip[64], ip_key[64]; /* LOGIN: the client's address and its rules' key */
    struct pol_gcra_rule rl_ip, rl_user; /* LOGIN: the login rules in force */
    int64_t now;
    auth_signin_cb done;
    /* out */
    enum auth_signin_outcome outcome;
    const char *error, *why; /* REFUSED (static strings; NOT_VALID: q.error, q.why) */
    enum auth_signin_form form;
    uint64_t retry_ms; /* FORM_LIMITED, or ERR_LIMIT */
    char code[TOK_CODE_MAX + 1];
    char session_token[AUTH_SESSION_LEN + 1]; /* a session started here ("": none) */
    /* private */
    struct {
        char sub[AUTH_USER_ID_LEN + 1], sid[AUTH_SID_LEN + 1], session[AUTH_SESSION_KEY_HEX + 1];
        int64_t auth_time;
        uint64_t gen;
    } _who;
    union {
        struct auth_session_find find;
        struct auth_login login;
        struct auth_session_start start;
    } _u;
    struct auth_consent _consent;
};

int auth_signin(struct auth_signin *s);

/* The token endpoint's side of the flow (grant_type=authorization_code): the code redeemed
 * (tok_code_redeem: PKCE, the redirect URI, once only), and a refresh family it starts
 * noted on the browser session it came from, so that the session's logout ends it too (a
 * family that would outlive its logout is not answered: ERR_BACKEND). The caller fills q's
 * inputs (all but done) and svc; the answers are tok_code_redeem's. */
struct auth_code_exchange;
typedef void (*auth_code_exchange_cb)(struct auth_code_exchange *x, int rc);

struct auth_code_exchange {
    struct tok_code_redemption q; /* first */
    const struct auth_svc *svc;
    auth_code_exchange_cb done;
    /* private */
    struct auth_session_note _note;
};

int auth_code_exchange(struct auth_code_exchange *x);

#endif
