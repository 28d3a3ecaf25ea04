/* SPDX-License-Identifier: MIT */
/*
 * The sign-in at the authorization endpoint, step by step (auth_signin.h). Each step
 * either answers at once (returning the final code up the chain) or waits (ERR_AGAIN), and
 * its callback takes the chain up again; finish() is where every path ends.
 */
#include "auth/auth_signin.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "token/tok_svc.h"

/* The answer: given back to the caller at once (rc), or through done() when the chain had
 * waited. Returns rc, or ERR_AGAIN when done() ran (the caller's call already returned). */
static int finish(struct auth_signin *s, int rc, bool waited)
{
    if (waited) {
        s->done(s, rc);
        return ERR_AGAIN;
    }
    return rc;
}

static int refused(struct auth_signin *s, const char *error, const char *why, bool waited)
{
    s->outcome = AUTH_SIGNIN_REFUSED;
    s->error = error;
    s->why = why;
    return finish(s, ERR_OK, waited);
}

static int form(struct auth_signin *s, enum auth_signin_form f, bool waited)
{
    s->outcome = AUTH_SIGNIN_FORM;
    s->form = f;
    return finish(s, ERR_OK, waited);
}

/* The code for who, sealed (tok_code.h). */
static int issue_code(struct auth_signin *s, bool waited)
{
    struct tok_code_grant g;

    memset(&g, 0, sizeof(g));
    snprintf(g.client_id, sizeof(g.client_id), "%s", s->q.client.id);
    snprintf(g.redirect_uri, sizeof(g.redirect_uri), "%s", s->q.p.redirect_uri.p);
    snprintf(g.challenge, sizeof(g.challenge), "%s", s->q.p.code_challenge.p);
    snprintf(g.nonce, sizeof(g.nonce), "%s", s->q.p.nonce.p ? s->q.p.nonce.p : "");
    snprintf(g.sub, sizeof(g.sub), "%s", s->_who.sub);
    snprintf(g.scope, sizeof(g.scope), "%s", s->q.scope);
    snprintf(g.sid, sizeof(g.sid), "%s", s->_who.sid);
    snprintf(g.session, sizeof(g.session), "%s", s->_who.session);
    g.auth_time = s->_who.auth_time;
    g.gen = s->_who.gen;
    int rc = tok_code_issue(s->q.svc->tok, &g, s->now, s->code);
    cr_wipe(&g, sizeof(g));
    if (rc) /* (a grant no code can carry: the request's sizes were checked before) */
        return finish(s, ERR_BACKEND, waited);
    s->outcome = AUTH_SIGNIN_CODE;
    return finish(s, ERR_OK, waited);
}

static int consented(struct auth_signin *s, int rc, bool waited)
{
    if (rc)
        return finish(s, rc, waited);
    if (s->step == AUTH_SIGNIN_CONSENT || s->_consent.granted)
        return issue_code(s, waited);
    if (s->q.prompt_none)
        return refused(s, "consent_required", "the user must allow this application", waited);
    s->outcome = AUTH_SIGNIN_ASK;
    return finish(s, ERR_OK, waited);
}

static void on_consent(struct auth_consent *c, int rc)
{
    consented(CONTAINER_OF(c, struct auth_signin, _consent), rc, true);
}

/* Who is known (_who): a first-party client gets its code; a third party the person's
 * consent first. */
static int for_user(struct auth_signin *s, bool waited)
{
    if (s->q.client.first_party)
        return issue_code(s, waited);
    if (s->step == AUTH_SIGNIN_CONSENT && !str_eq(s->decision, STR_LIT("allow")))
        return refused(s, "access_denied", "the user did not allow it", waited);
    if (s->step != AUTH_SIGNIN_CONSENT && s->q.prompt_consent) {
        if (s->q.prompt_none)
            return refused(s, "consent_required", "prompt=consent", waited);
        s->outcome = AUTH_SIGNIN_ASK;
        return finish(s, ERR_OK, waited);
    }
    struct auth_consent *c = &s->_consent;
    memset(c, 0, sizeof(*c));
    c->svc = s->q.svc;
    c->lp = s->q.lp;
    c->now = s->now;
    c->done = on_consent;
    snprintf(c->sub, sizeof(c->sub), "%s", s->_who.sub);
    snprintf(c->client_id, sizeof(c->client_id), "%s", s->q.client.id);
    snprintf(c->scope, sizeof(c->scope), "%s", s->q.scope);
    int rc = s->step == AUTH_SIGNIN_CONSENT ? auth_consent_grant(c) : auth_consent_check(c);
    return rc == ERR_AGAIN ? ERR_AGAIN : consented(s, rc, waited);
}

static void who_is(struct auth_signin *s, const struct auth_session *ss, const char *key_hex)
{
    snprintf(s->_who.sub, sizeof(s->_who.sub), "%s", ss->sub);
    snprintf(s->_who.sid, sizeof(s->_who.sid), "%s", ss->sid);
    snprintf(s->_who.session, sizeof(s->_who.session), "%s", key_hex);
    s->_who.auth_time = ss->auth_time;
    s->_who.gen = ss->gen;
}

static int session_started(struct auth_signin *s, int rc, bool waited)
{
    struct auth_session_start *ss = &s->_u.start;
    if (rc)
        return finish(s, rc, waited);
    memcpy(s->session_token, ss->token, sizeof(s->session_token));
    cr_wipe(ss->token, sizeof(ss->token));
    who_is(s, &ss->s, ss->key_hex);
    return for_user(s, waited);
}

static void on_started(struct auth_session_start *ss, int rc)
{
    session_started(CONTAINER_OF(ss, struct auth_signin, _u.start), rc, true);
}

/* The password checked: a new session (durable before the code), or the form again. */
static int logged_in(struct auth_signin *s, int rc, bool waited)
{
    struct auth_login *l = &s->_u.login;
    struct auth_session sess;

    if (rc == ERR_LIMIT)
        s->retry_ms = l->retry_ms;
    if (rc)
        return finish(s, rc, waited);
    if (l->outcome == AUTH_LOGIN_BUSY || l->outcome == AUTH_LOGIN_LIMITED) {
        s->retry_ms = l->retry_ms;
        return form(s, AUTH_SIGNIN_FORM_LIMITED, waited);
    }
    if (l->outcome != AUTH_LOGIN_OK)
        return form(s, AUTH_SIGNIN_FORM_FAILED, waited);
    memset(&sess, 0, sizeof(sess)); /* (the login's outputs, before the union is reused) */
    snprintf(sess.sub, sizeof(sess.sub), "%s", l->sub);
    snprintf(sess.name, sizeof(sess.name), "%s", l->name);
    sess.auth_time = s->now;
    sess.gen = l->gen;
    struct auth_session_start *ss = &s->_u.start;
    memset(ss, 0, sizeof(*ss));
    ss->svc = s->q.svc;
    ss->lp = s->q.lp;
    ss->now = s->now;
    ss->done = on_started;
    ss->s = sess;
    rc = auth_session_start(ss);
    return rc == ERR_AGAIN ? ERR_AGAIN : session_started(s, rc, waited);
}

static void on_login(struct auth_login *l, int rc)
{
    logged_in(CONTAINER_OF(l, struct auth_signin, _u.login), rc, true);
}

static int log_in(struct auth_signin *s, bool waited)
{
    struct auth_login *l = &s->_u.login;
    memset(l, 0, sizeof(*l));
    l->svc = s->q.svc;
    l->lp = s->q.lp;
    l->user = s->user;
    l->pw = s->pw;
    l->refresh = false; /* (the code's redemption starts the family) */
    l->now = s->now;
    l->done = on_login;
    snprintf(l->ip, sizeof(l->ip), "%s", s->ip);
    snprintf(l->ip_key, sizeof(l->ip_key), "%s", s->ip_key);
    snprintf(l->client_id, sizeof(l->client_id), "%s", s->q.client.id);
    snprintf(l->scope, sizeof(l->scope), "%s", s->q.scope);
    l->rl_ip = s->rl_ip;
    l->rl_user = s->rl_user;
    int rc = auth_login(l);
    return rc == ERR_AGAIN ? ERR_AGAIN : logged_in(s, rc, waited);
}

/* Without a session that answers: the form, or for prompt=none login_required. */
static int no_session(struct auth_signin *s, bool waited)
{
    if (s->q.prompt_none)
        return refused(s, "login_required", "the user must sign in", waited);
    return form(s, AUTH_SIGNIN_FORM_NEW, waited);
}

/* A session answers unless max_age says its sign-in is too old (OpenID Connect Core
 * §3.1.2.1); consent given answers to the session that asked it. A session that cannot be
 * read is none. */
static int session_found(struct auth_signin *s, int rc, bool waited)
{
    struct auth_session_find *f = &s->_u.find;
    if (rc || !f->found ||
        (s->step != AUTH_SIGNIN_CONSENT && s->q.max_age >= 0 &&
         s->now - f->s.auth_time > s->q.max_age))
        return no_session(s, waited);
    who_is(s, &f->s, f->key_hex);
    return for_user(s, waited);
}

static void on_session(struct auth_session_find *f, int rc)
{
    session_found(CONTAINER_OF(f, struct auth_signin, _u.find), rc, true);
}

static int with_session(struct auth_signin *s, bool waited)
{
    if ((s->q.prompt_login && s->step != AUTH_SIGNIN_CONSENT) || !s->session.p)
        return no_session(s, waited);
    struct auth_session_find *f = &s->_u.find;
    memset(f, 0, sizeof(*f));
    f->svc = s->q.svc;
    f->lp = s->q.lp;
    f->token = s->session;
    f->now = s->now;
    f->done = on_session;
    int rc = auth_session_find(f);
    return rc == ERR_AGAIN ? ERR_AGAIN : session_found(s, rc, waited);
}

static int checked(struct auth_signin *s, int rc, bool waited)
{
    if (rc)
        return finish(s, rc, waited);
    if (s->q.verdict == AUTH_AUTHZ_NO_REDIRECT) {
        s->outcome = AUTH_SIGNIN_NOT_VALID;
        return finish(s, ERR_OK, waited);
    }
    if (s->q.verdict == AUTH_AUTHZ_REDIRECT_ERROR)
        return refused(s, s->q.error, s->q.why, waited);
    return s->step == AUTH_SIGNIN_LOGIN ? log_in(s, waited) : with_session(s, waited);
}

static void on_checked(struct auth_authorize *q, int rc)
{
    checked((struct auth_signin *)(void *)q, rc, true);
}

int auth_signin(struct auth_signin *s)
{
    s->outcome = AUTH_SIGNIN_NOT_VALID;
    s->error = s->why = NULL;
    s->form = AUTH_SIGNIN_FORM_NEW;
    s->retry_ms = 0;
    s->code[0] = s->session_token[0] = '\0';
    s->q.done = on_checked;
    int rc = auth_authorize_check(&s->q);
    return rc == ERR_AGAIN ? ERR_AGAIN : checked(s, rc, false);
}

/* ---- the code's redemption ----------------------------------------------------------- */

static void noted(struct auth_session_note *n, int rc)
{
    struct auth_code_exchange *x = CONTAINER_OF(n, struct auth_code_exchange, _note);
    x->done(x, rc ? ERR_BACKEND : ERR_OK);
}

static int redeemed(struct auth_code_exchange *x, int rc, bool waited)
{
    struct tok_code_redemption *q = &x->q;
    if (!rc && q->outcome == TOK_CODE_OK && q->refresh_token[0] && q->grant.session[0]) {
        struct auth_session_note *n = &x->_note;
        memset(n, 0, sizeof(*n));
        n->svc = x->svc;
        n->lp = q->lp;
        n->now = q->now;
        n->done = noted;
        snprintf(n->key_hex, sizeof(n->key_hex), "%s", q->grant.session);
        memcpy(n->family, q->grant.family, STORE_FAMILY_ID);
        rc = auth_session_note_family(n);
        if (rc == ERR_AGAIN)
            return ERR_AGAIN;
        if (rc)
            rc = ERR_BACKEND;
    }
    if (waited) {
        x->done(x, rc);
        return ERR_AGAIN;
    }
    return rc;
}

static void on_redeemed(struct tok_code_redemption *q, int rc)
{
    redeemed((struct auth_code_exchange *)(void *)q, rc, true);
}

int auth_code_exchange(struct auth_code_exchange *x)
{
    x->q.done = on_redeemed;
    int rc = tok_code_redeem(&x->q);
    return rc == ERR_AGAIN ? ERR_AGAIN : redeemed(x, rc, false);
}
