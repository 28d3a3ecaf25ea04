/* SPDX-License-Identifier: MIT */
/* Authorization codes; see tok_code.h. */
#include "token/tok_code.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "event/ev.h"
#include "json/json.h"
#include "token/tok_cache.h"
#include "token/tok_keys.h"

/* ---- PKCE (RFC 7636 §4) ---------------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bool tok_pkce_challenge_ok(struct str c)
{
    uint8_t raw[33];
    size_t n;
    return c.len == TOK_CHALLENGE_LEN && cr_b64url_decode(c.p, c.len, raw, sizeof(raw), &n) == 0 &&
           n == 32;
}

bool tok_pkce_ok(struct str v, const char *challenge)
{
    uint8_t h[32];
    char want[TOK_CHALLENGE_LEN + 1];

    if (v.len < 43 || v.len > 128 || strlen(challenge) != TOK_CHALLENGE_LEN)
        return false;
    for (size_t i = 0; i < v.len; i++)
        if (!unreserved((unsigned char)v.p[i]))
            return false;
    cr_sha256(h, v.p, v.len);
    cr_b64url_encode(h, sizeof(h), want, sizeof(want));
    return cr_eq(want, challenge, TOK_CHALLENGE_LEN);
}

/* ---- the record ------------------------------------------------------------------------ */

static int digest_of(const uint8_t *key, struct str code, uint8_t out[CR_HASH_LEN])
{
    uint8_t raw[33], msg[8 + TOK_CODE_LEN];
    size_t n;

    if (code.len != TOK_CODE_LEN || cr_b64url_decode(code.p, code.len, raw, sizeof(raw), &n) ||
        n != 32)
        return ERR_INVAL;
    memcpy(msg, "code\n", 5);
    memcpy(msg + 5, code.p, code.len);
    cr_keyed_hash(out, key, msg, 5 + code.len);
    cr_wipe(msg, sizeof(msg));
    return ERR_OK;
}

int tok_code_grant_json(const struct tok_code_grant *g, struct buf *b)
{
    char fam[2 * STORE_FAMILY_ID + 1] = "";
    json_t *o;

    if (g->has_family)
        hex_encode(g->family, STORE_FAMILY_ID, fam);
    o = json_pack("{ss ss ss ss ss ss sI sI sb ss ss sI ss ss}", "client_id", g->client_id,
                  "redirect_uri", g->redirect_uri, "challenge", g->challenge, "nonce", g->nonce,
                  "sub", g->sub, "scope", g->scope, "auth_time", (json_int_t)g->auth_time, "gen",
                  (json_int_t)g->gen, "used", g->used, "family", fam, "jti", g->jti, "jti_exp",
                  (json_int_t)g->jti_exp, "sid", g->sid, "session", g->session);
    int rc = o ? json_append(b, o) : ERR_NOMEM;
    json_decref(o);
    return rc;
}

int tok_code_grant_parse(const char *json, size_t n, struct tok_code_grant *g)
{
    char fam[2 * STORE_FAMILY_ID + 1];
    json_t *o = json_loadb(json, n, JSON_REJECT_DUPLICATES, NULL);

    memset(g, 0, sizeof(*g));
    int rc = !o || json_copy_str(o, "client_id", g->client_id, sizeof(g->client_id)) ||
                     json_copy_str(o, "redirect_uri", g->redirect_uri, sizeof(g->redirect_uri)) ||
                     json_copy_str(o, "challenge", g->challenge, sizeof(g->challenge)) ||
                     json_copy_str(o, "nonce", g->nonce, sizeof(g->nonce)) ||
                     json_copy_str(o, "sub", g->sub, sizeof(g->sub)) ||
                     json_copy_str(o, "scope", g->scope, sizeof(g->scope)) ||
                     json_copy_str(o, "family", fam, sizeof(fam)) ||
                     json_copy_str(o, "jti", g->jti, sizeof(g->jti)) ||
                     json_copy_str(o, "sid", g->sid, sizeof(g->sid)) ||
                     json_copy_str(o, "session", g->session, sizeof(g->session))
                 ? ERR_INVAL
                 : ERR_OK;
    if (rc == ERR_OK) {
        g->auth_time = json_integer_value(json_object_get(o, "auth_time"));
        g->gen = (uint64_t)json_integer_value(json_object_get(o, "gen"));
        g->used = json_is_true(json_object_get(o, "used"));
        g->jti_exp = json_integer_value(json_object_get(o, "jti_exp"));
        g->has_family = fam[0] != '\0';
        if (g->has_family && hex_decode(fam, g->family, STORE_FAMILY_ID))
            rc = ERR_INVAL;
    }
    json_decref(o);
    return rc;
}

/* The grant wrapped with its expiry, as the store keeps it. */
static int record_of(const struct tok_code_grant *g, struct buf *out)
{
    struct buf json;
    buf_init(&json, 8192);
    int rc = tok_code_grant_json(g, &json);
    if (rc == ERR_OK)
        rc = store_exp_wrap(g->expires_at, json.p, json.len, out);
    buf_fini(&json);
    return rc;
}

/* ---- issue ----------------------------------------------------------------------------- */

static void on_issued(struct store_op *op)
{
    struct tok_code_issue *q = (struct tok_code_issue *)(void *)op;
    buf_fini(&q->_b);
    if (op->status)
        cr_wipe(q->code, sizeof(q->code));
    q->done(q, op->status == ERR_OK ? ERR_OK : ERR_BACKEND);
}

int tok_code_issue(struct tok_code_issue *q)
{
    struct store_op *op = &q->_op;
    uint8_t raw[32];

    memset(op, 0, sizeof(*op));
    if (!q->grant.expires_at)
        q->grant.expires_at = q->now + TOK_CODE_TTL_S;
    cr_random(raw, sizeof(raw));
    cr_b64url_encode(raw, sizeof(raw), q->code, sizeof(q->code));
    cr_wipe(raw, sizeof(raw));
    digest_of(q->svc->key, str_c(q->code), op->key);
    op->key_len = CR_HASH_LEN;
    buf_init(&q->_b, 16384);
    int rc = record_of(&q->grant, &q->_b);
    if (rc) {
        buf_fini(&q->_b);
        return ERR_NOMEM;
    }
    op->kind = STORE_OP_PUT_NEW;
    op->table = STORE_T_CODES;
    op->value = q->_b.p;
    op->value_len = q->_b.len;
    op->now = q->now;
    op->on_done = on_issued;
    rc = store_submit(q->svc->st, q->lp, op);
    if (rc != ERR_AGAIN)
        buf_fini(&q->_b);
    return rc == ERR_AGAIN ? ERR_AGAIN : ERR_LIMIT;
}

/* ---- redeem ---------------------------------------------------------------------------- */

enum { STEP_READ, STEP_MARK, STEP_FAMILY, STEP_REVOKE };

static void finish(struct tok_code_redemption *q, int rc, bool deferred)
{
    buf_fini(&q->_b);
    buf_fini(&q->_new);
    if (rc || q->outcome != TOK_CODE_OK)
        cr_wipe(q->refresh_token, sizeof(q->refresh_token));
    if (deferred)
        q->done(q, rc);
}

static void code_event(const struct tok_code_redemption *q, const char *what)
{
    struct ev e;
    if (!ev_wanted(EV_TOKEN_REUSE_DETECTED))
        return;
    ev_begin(&e, EV_TOKEN_REUSE_DETECTED);
    ev_str(&e, "client_id", q->client_id);
    ev_user(&e, q->grant.sub);
    ev_str(&e, "token", what);
    ev_publish(&e);
}

static void on_revoked(struct store_op *op);

/* A used code presented again: what its use issued ends (the family and the access
 * token), then the refusal. */
static int revoke_issued(struct tok_code_redemption *q, bool deferred)
{
    const struct tok_code_grant *g = &q->grant;
    log_kv(LOG_WARN, "authorization code used twice: what it issued is revoked", "client_id",
           q->client_id, LOG_END);
    code_event(q, "authorization_code");
    q->outcome = TOK_CODE_INVALID;
    q->_step = STEP_REVOKE;
    q->_pending = 1; /* (the guard against answering before the last write) */
    if (g->has_family) {
        memset(&q->_op, 0, sizeof(q->_op));
        q->_op.kind = STORE_OP_FAMILY_REVOKE;
        memcpy(q->_op.rt.family, g->family, STORE_FAMILY_ID);
        q->_op.now = q->now;
        q->_op.on_done = on_revoked;
        if (store_submit(q->svc->st, q->lp, &q->_op) == ERR_AGAIN)
            q->_pending++;
        else
            q->_failed = 1;
    }
    if (g->jti[0] && g->jti_exp > q->now) {
        memset(&q->_jti_op, 0, sizeof(q->_jti_op));
        q->_jti_op.kind = STORE_OP_JTI_REVOKE;
        q->_jti_op.table = STORE_T_REVOKED;
        q->_jti_op.key_len = strlen(g->jti);
        memcpy(q->_jti_op.key, g->jti, q->_jti_op.key_len);
        q->_jti_op.jti_expires_at = g->jti_exp;
        q->_jti_op.now = q->now;
        q->_jti_op.on_done = on_revoked;
        if (store_submit(q->svc->st, q->lp, &q->_jti_op) == ERR_AGAIN)
            q->_pending++;
        else
            q->_failed = 1;
    }
    if (--q->_pending > 0)
        return ERR_AGAIN;
    int rc = q->_failed ? ERR_BACKEND : ERR_OK;
    finish(q, rc, deferred);
    return rc;
}

static void on_revoked(struct store_op *op)
{
    struct tok_code_redemption *q = op->kind == STORE_OP_JTI_REVOKE
                                        ? CONTAINER_OF(op, struct tok_code_redemption, _jti_op)
                                        : (struct tok_code_redemption *)(void *)op;
    if (op->status)
        q->_failed = 1;
    else if (op->kind == STORE_OP_JTI_REVOKE) /* durable: every thread's cache drops it */
        tok_revoked_publish(q->grant.jti, strlen(q->grant.jti), q->grant.jti_exp, q->now);
    if (--q->_pending > 0)
        return;
    finish(q, q->_failed ? ERR_BACKEND : ERR_OK, true);
}

static void on_family(struct tok_family *f, int rc)
{
    struct tok_code_redemption *q = CONTAINER_OF(f, struct tok_code_redemption, _fam);
    if (rc == ERR_OK)
        memcpy(q->refresh_token, f->token, sizeof(q->refresh_token));
    cr_wipe(f->token, sizeof(f->token));
    finish(q, rc ? ERR_BACKEND : ERR_OK, true);
}

/* The code is ours now: the family it named starts (if any). */
static int marked(struct tok_code_redemption *q, int status, bool deferred)
{
    if (status == ERR_CONFLICT || status == ERR_NOTFOUND) { /* another redemption won */
        q->outcome = TOK_CODE_INVALID;
        finish(q, ERR_OK, deferred);
        return ERR_OK;
    }
    if (status) {
        finish(q, ERR_BACKEND, deferred);
        return ERR_BACKEND;
    }
    q->outcome = TOK_CODE_OK;
    if (!q->refresh) {
        finish(q, ERR_OK, deferred);
        return ERR_OK;
    }
    struct tok_family *f = &q->_fam;
    memset(f, 0, sizeof(*f));
    f->svc = q->svc;
    f->lp = q->lp;
    snprintf(f->sub, sizeof(f->sub), "%s", q->grant.sub);
    snprintf(f->client_id, sizeof(f->client_id), "%s", q->grant.client_id);
    snprintf(f->scope, sizeof(f->scope), "%s", q->grant.scope);
    f->gen = q->grant.gen;
    f->now = q->now;
    f->done = on_family;
    f->preset = true;
    memcpy(f->family, q->grant.family, STORE_FAMILY_ID);
    q->_step = STEP_FAMILY;
    if (tok_family_start(f) == ERR_AGAIN)
        return ERR_AGAIN;
    finish(q, ERR_LIMIT, deferred);
    return ERR_LIMIT;
}

static void on_op(struct store_op *op);

/* The record is read: decide, and either refuse, revoke, or mark it used. */
static int read_done(struct tok_code_redemption *q, int status, bool deferred)
{
    struct tok_code_grant *g = &q->grant;
    const char *payload;
    size_t pn;
    int64_t exp;

    if (status && status != ERR_NOTFOUND) {
        finish(q, ERR_BACKEND, deferred);
        return ERR_BACKEND;
    }
    q->outcome = TOK_CODE_INVALID;
    if (status == ERR_NOTFOUND || store_exp_unwrap(q->_b.p, q->_b.len, &exp, &payload, &pn) ||
        exp <= q->now || tok_code_grant_parse(payload, pn, g)) {
        finish(q, ERR_OK, deferred);
        return ERR_OK;
    }
    g->expires_at = exp;                           /* (the record's wrapper has it, not its JSON) */
    if (strcmp(g->client_id, q->client_id) != 0) { /* not yours: left as it was */
        finish(q, ERR_OK, deferred);
        return ERR_OK;
    }
    if (g->used)
        return revoke_issued(q, deferred);
    if (!str_eq(q->redirect_uri, str_c(g->redirect_uri)) ||
        !tok_pkce_ok(q->verifier, g->challenge)) {
        finish(q, ERR_OK, deferred);
        return ERR_OK;
    }
    /* Mark it used, naming what is about to be issued, in one compare-and-swap. */
    uint8_t rnd[16];
    if (q->offline_only && !tok_scope_subset(STR_LIT("offline_access"), g->scope))
        q->refresh = false;
    g->used = true;
    g->has_family = q->refresh;
    if (q->refresh)
        cr_random(g->family, STORE_FAMILY_ID);
    cr_random(rnd, sizeof(rnd));
    cr_b64url_encode(rnd, sizeof(rnd), g->jti, sizeof(g->jti));
    g->jti_exp = q->now + TOK_ACCESS_TTL_MAX_S + q->svc->leeway_s;
    if (record_of(g, &q->_new)) {
        finish(q, ERR_NOMEM, deferred);
        return ERR_NOMEM;
    }
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.kind = STORE_OP_REPLACE;
    q->_op.table = STORE_T_CODES;
    memcpy(q->_op.key, q->_digest, CR_HASH_LEN);
    q->_op.key_len = CR_HASH_LEN;
    q->_op.value = q->_new.p;
    q->_op.value_len = q->_new.len;
    q->_op.expect = q->_b.p;
    q->_op.expect_len = q->_b.len;
    q->_op.now = q->now;
    q->_op.on_done = on_op;
    q->_step = STEP_MARK;
    if (store_submit(q->svc->st, q->lp, &q->_op) == ERR_AGAIN)
        return ERR_AGAIN;
    finish(q, ERR_LIMIT, deferred);
    return ERR_LIMIT;
}

static void on_op(struct store_op *op)
{
    struct tok_code_redemption *q = (struct tok_code_redemption *)(void *)op;
    if (q->_step == STEP_READ)
        read_done(q, op->status, true);
    else if (q->_step == STEP_MARK)
        marked(q, op->status, true);
    else
        on_revoked(op);
}

int tok_code_redeem(struct tok_code_redemption *q)
{
    memset(&q->_op, 0, sizeof(q->_op));
    q->outcome = TOK_CODE_INVALID;
    q->refresh_token[0] = '\0';
    q->_step = STEP_READ;
    q->_pending = q->_failed = 0;
    buf_init(&q->_b, 16384);
    buf_init(&q->_new, 16384);
    memset(&q->grant, 0, sizeof(q->grant));
    if (digest_of(q->svc->key, q->code, q->_digest)) {
        finish(q, ERR_OK, false); /* not a code of ours at all */
        return ERR_OK;
    }
    q->_op.on_done = on_op;
    int rc = store_get(q->svc->st, STORE_T_CODES, q->_digest, CR_HASH_LEN, &q->_b, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : read_done(q, rc, false);
}
