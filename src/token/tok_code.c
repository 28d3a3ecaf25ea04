/* SPDX-License-Identifier: MIT */
/* Authorization codes; see tok_code.h. */
#include "token/tok_code.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/pack.h"
#include "crypto/cr.h"
#include "event/ev.h"
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

/* ---- what a code carries --------------------------------------------------------------- */

#define CODE_V1    1
#define USE_V1     1
#define SESSION_ID 32 /* a session record's key (its hex is the grant's `session`) */

static const char code_ad[] = "floodgate authorization code v1";

/* The key codes are sealed under: derived from the server key, for this purpose alone
 * (each thread keeps the last one it derived: the server key does not change while it
 * runs). */
static void code_key(const struct tok_svc *svc, uint8_t key[CR_SEAL_KEY_LEN])
{
    static const char ctx[] = "floodgate code seal v1";
    static _Thread_local bool set;
    static _Thread_local uint8_t from[CR_HASH_KEY_LEN], derived[CR_SEAL_KEY_LEN];
    if (!set || !cr_eq(from, svc->key, CR_HASH_KEY_LEN)) {
        cr_keyed_hash(derived, svc->key, ctx, sizeof(ctx) - 1);
        memcpy(from, svc->key, CR_HASH_KEY_LEN);
        set = true;
    }
    memcpy(key, derived, CR_SEAL_KEY_LEN);
}

static void redirect_digest(const char *uri, size_t n, uint8_t out[16])
{
    uint8_t h[32];
    cr_sha256(h, uri, n);
    memcpy(out, h, 16);
}

int tok_code_grant_pack(const struct tok_code_grant *g, uint8_t *out, size_t cap, size_t *n)
{
    struct pack_w w = pack_writer(out, cap);
    uint8_t v = CODE_V1, challenge[33], rd[16], session[SESSION_ID], has_session;
    size_t cn;

    if (strlen(g->challenge) != TOK_CHALLENGE_LEN ||
        cr_b64url_decode(g->challenge, TOK_CHALLENGE_LEN, challenge, sizeof(challenge), &cn) ||
        cn != 32)
        return ERR_INVAL;
    has_session = g->session[0] != '\0';
    if (has_session &&
        (strlen(g->session) != 2 * SESSION_ID || hex_decode(g->session, session, SESSION_ID)))
        return ERR_INVAL;
    redirect_digest(g->redirect_uri, strlen(g->redirect_uri), rd);
    pack_u8(&w, v);
    pack_u64(&w, (uint64_t)g->expires_at);
    pack_u64(&w, (uint64_t)g->auth_time);
    pack_u64(&w, g->gen);
    pack_put(&w, challenge, 32);
    pack_put(&w, rd, sizeof(rd));
    pack_put(&w, &has_session, 1);
    if (has_session)
        pack_put(&w, session, SESSION_ID);
    pack_str(&w, g->client_id, STORE_CLIENT_MAX, false);
    pack_str(&w, g->sub, STORE_SUB_MAX, false);
    pack_str(&w, g->sid, sizeof(g->sid) - 1, false);
    pack_str(&w, g->scope, TOK_SCOPE_MAX, true);
    pack_str(&w, g->nonce, TOK_NONCE_MAX, false);
    *n = w.n;
    return w.bad ? ERR_INVAL : ERR_OK;
}

int tok_code_grant_unpack(const uint8_t *p, size_t n, struct tok_code_grant *g,
                          uint8_t redirect_digest_out[16])
{
    struct pack_r r = pack_reader(p, n);
    uint8_t v, challenge[32], session[SESSION_ID], has_session;

    memset(g, 0, sizeof(*g));
    unpack_get(&r, &v, 1);
    g->expires_at = (int64_t)unpack_u64(&r);
    g->auth_time = (int64_t)unpack_u64(&r);
    g->gen = unpack_u64(&r);
    unpack_get(&r, challenge, 32);
    unpack_get(&r, redirect_digest_out, 16);
    unpack_get(&r, &has_session, 1);
    if (has_session == 1)
        unpack_get(&r, session, SESSION_ID);
    unpack_str(&r, g->client_id, sizeof(g->client_id), false);
    unpack_str(&r, g->sub, sizeof(g->sub), false);
    unpack_str(&r, g->sid, sizeof(g->sid), false);
    unpack_str(&r, g->scope, sizeof(g->scope), true);
    unpack_str(&r, g->nonce, sizeof(g->nonce), false);
    if (!unpack_done(&r) || v != CODE_V1 || has_session > 1) {
        memset(g, 0, sizeof(*g));
        return ERR_INVAL;
    }
    cr_b64url_encode(challenge, 32, g->challenge, sizeof(g->challenge));
    if (has_session)
        hex_encode(session, SESSION_ID, g->session);
    return ERR_OK;
}

/* The code's grant, if it is a code of ours (ERR_INVAL otherwise). */
static int open_code(const struct tok_svc *svc, struct str code, struct tok_code_grant *g,
                     uint8_t rd[16])
{
    uint8_t sealed[TOK_GRANT_MAX + CR_SEAL_OVERHEAD], plain[TOK_GRANT_MAX], key[CR_SEAL_KEY_LEN];
    size_t n;

    if (code.len > TOK_CODE_MAX || cr_b64url_decode(code.p, code.len, sealed, sizeof(sealed), &n) ||
        n < CR_SEAL_OVERHEAD)
        return ERR_INVAL;
    code_key(svc, key);
    int rc = cr_open(plain, sealed, n, code_ad, sizeof(code_ad) - 1, key);
    if (rc == ERR_OK)
        rc = tok_code_grant_unpack(plain, n - CR_SEAL_OVERHEAD, g, rd);
    cr_wipe(key, sizeof(key));
    cr_wipe(plain, sizeof(plain));
    return rc;
}

/* The store key of a code's use: a keyed digest of the code. */
static void digest_of(const uint8_t *key, struct str code, uint8_t out[CR_HASH_LEN])
{
    static const char tag[] = "code\n";
    uint8_t msg[sizeof(tag) - 1 + TOK_CODE_MAX];
    memcpy(msg, tag, sizeof(tag) - 1);
    memcpy(msg + sizeof(tag) - 1, code.p, code.len);
    cr_keyed_hash(out, key, msg, sizeof(tag) - 1 + code.len);
}

/* ---- issue ----------------------------------------------------------------------------- */

int tok_code_issue(const struct tok_svc *svc, struct tok_code_grant *g, int64_t now,
                   char code[TOK_CODE_MAX + 1])
{
    uint8_t plain[TOK_GRANT_MAX], sealed[TOK_GRANT_MAX + CR_SEAL_OVERHEAD], key[CR_SEAL_KEY_LEN];
    size_t n;

    code[0] = '\0';
    if (!g->expires_at)
        g->expires_at = now + TOK_CODE_TTL_S;
    int rc = tok_code_grant_pack(g, plain, sizeof(plain), &n);
    if (rc == ERR_OK) {
        code_key(svc, key);
        cr_seal(sealed, plain, n, code_ad, sizeof(code_ad) - 1, key);
        cr_wipe(key, sizeof(key));
        if (!cr_b64url_encode(sealed, n + CR_SEAL_OVERHEAD, code, TOK_CODE_MAX + 1))
            rc = ERR_INVAL;
    }
    cr_wipe(plain, sizeof(plain));
    return rc;
}

/* ---- the record of a use --------------------------------------------------------------- */

/* What a use issued: its family (if any) and the access token's jti. */
static int use_record(const struct tok_code_grant *g, struct buf *out)
{
    uint8_t p[2 + STORE_FAMILY_ID + 8 + 1 + TOK_JTI_LEN];
    struct pack_w w = pack_writer(p, sizeof(p));
    uint8_t v = USE_V1, fam = g->has_family;
    pack_put(&w, &v, 1);
    pack_put(&w, &fam, 1);
    pack_put(&w, g->family, STORE_FAMILY_ID);
    pack_u64(&w, (uint64_t)g->jti_exp);
    pack_str(&w, g->jti, TOK_JTI_LEN, false);
    return w.bad ? ERR_INVAL : store_exp_wrap(g->expires_at, p, w.n, out);
}

static int use_parse(const struct buf *b, struct tok_code_grant *g)
{
    const char *payload;
    size_t pn;
    int64_t exp;
    uint8_t v, fam;

    if (store_exp_unwrap(b->p, b->len, &exp, &payload, &pn))
        return ERR_INVAL;
    struct pack_r r = pack_reader(payload, pn);
    unpack_get(&r, &v, 1);
    unpack_get(&r, &fam, 1);
    unpack_get(&r, g->family, STORE_FAMILY_ID);
    g->jti_exp = (int64_t)unpack_u64(&r);
    unpack_str(&r, g->jti, sizeof(g->jti), false);
    g->has_family = fam == 1;
    return !unpack_done(&r) || v != USE_V1 || fam > 1 ? ERR_INVAL : ERR_OK;
}

/* ---- redeem ---------------------------------------------------------------------------- */

enum { STEP_CHECK, STEP_FAMILY, STEP_MARK, STEP_USED, STEP_REVOKE };

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
static void on_own_revoked(struct store_op *op);
static void on_jti_revoked(struct store_op *op);

static void revoke_family(struct tok_code_redemption *q, struct store_op *op,
                          const uint8_t family[STORE_FAMILY_ID], void (*done)(struct store_op *))
{
    memset(op, 0, sizeof(*op));
    op->kind = STORE_OP_FAMILY_REVOKE;
    memcpy(op->rt.family, family, STORE_FAMILY_ID);
    op->now = q->now;
    op->on_done = done;
    if (store_submit(q->svc->st, q->lp, op) == ERR_AGAIN)
        q->_pending++;
    else
        q->_failed = 1;
}

/* A used code presented again: what its use issued ends (the family and the access token),
 * and the family this presentation started, then the refusal. */
static int revoke_issued(struct tok_code_redemption *q, bool deferred)
{
    const struct tok_code_grant *g = &q->grant;
    log_kv(LOG_WARN, "authorization code used twice: what it issued is revoked", "client_id",
           q->client_id, LOG_END);
    code_event(q, "authorization_code");
    q->outcome = TOK_CODE_INVALID;
    q->_step = STEP_REVOKE;
    q->_pending = 1; /* (the guard against answering before the last write) */
    if (g->has_family)
        revoke_family(q, &q->_op, g->family, on_revoked);
    if (q->_started)
        revoke_family(q, &q->_own_op, q->_own, on_own_revoked);
    if (g->jti[0] && g->jti_exp > q->now) {
        memset(&q->_jti_op, 0, sizeof(q->_jti_op));
        q->_jti_op.kind = STORE_OP_JTI_REVOKE;
        q->_jti_op.table = STORE_T_REVOKED;
        q->_jti_op.key_len = strlen(g->jti);
        memcpy(q->_jti_op.key, g->jti, q->_jti_op.key_len);
        q->_jti_op.jti_expires_at = g->jti_exp;
        q->_jti_op.now = q->now;
        q->_jti_op.on_done = on_jti_revoked;
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

static void revoked(struct tok_code_redemption *q, const struct store_op *op)
{
    if (op->status)
        q->_failed = 1;
    if (--q->_pending > 0)
        return;
    finish(q, q->_failed ? ERR_BACKEND : ERR_OK, true);
}

static void on_revoked(struct store_op *op)
{
    revoked((struct tok_code_redemption *)(void *)op, op);
}

static void on_own_revoked(struct store_op *op)
{
    revoked(CONTAINER_OF(op, struct tok_code_redemption, _own_op), op);
}

static void on_jti_revoked(struct store_op *op)
{
    struct tok_code_redemption *q = CONTAINER_OF(op, struct tok_code_redemption, _jti_op);
    if (!op->status) /* durable: every thread's cache drops it */
        tok_revoked_publish(q->grant.jti, strlen(q->grant.jti), q->grant.jti_exp, q->now);
    revoked(q, op);
}

static void on_op(struct store_op *op);

/* Reads the record of the code's use (STEP_CHECK: for a presentation that is wrong anyway;
 * STEP_USED: after another use came first). */
static int read_use(struct tok_code_redemption *q, int step, bool deferred);

/* The record of the use read: a use came first (revoke what it issued) or none did. */
static int use_read(struct tok_code_redemption *q, int status, bool deferred)
{
    if (status && status != ERR_NOTFOUND) {
        finish(q, ERR_BACKEND, deferred);
        return ERR_BACKEND;
    }
    q->outcome = TOK_CODE_INVALID;
    q->grant.has_family = false;
    q->grant.jti[0] = '\0';
    if (status == ERR_NOTFOUND || use_parse(&q->_b, &q->grant)) {
        if (q->_started) /* (its use's record expired meanwhile: ours goes all the same) */
            return revoke_issued(q, deferred);
        finish(q, ERR_OK, deferred);
        return ERR_OK;
    }
    return revoke_issued(q, deferred);
}

static int read_use(struct tok_code_redemption *q, int step, bool deferred)
{
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.on_done = on_op;
    q->_step = step;
    buf_reset(&q->_b);
    int rc = store_get(q->svc->st, STORE_T_CODES, q->_digest, CR_HASH_LEN, &q->_b, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : use_read(q, rc, deferred);
}

/* The use is recorded (it is ours), or another came first. */
static int marked(struct tok_code_redemption *q, int status, bool deferred)
{
    if (status == ERR_CONFLICT)
        return read_use(q, STEP_USED, deferred);
    if (status) {
        finish(q, ERR_BACKEND, deferred);
        return ERR_BACKEND;
    }
    q->outcome = TOK_CODE_OK;
    finish(q, ERR_OK, deferred);
    return ERR_OK;
}

/* Records the use, naming what is about to be issued: the last write of a redemption. */
static int mark(struct tok_code_redemption *q, bool deferred)
{
    if (use_record(&q->grant, &q->_new)) {
        finish(q, ERR_NOMEM, deferred);
        return ERR_NOMEM;
    }
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.kind = STORE_OP_PUT_NEW;
    q->_op.table = STORE_T_CODES;
    memcpy(q->_op.key, q->_digest, CR_HASH_LEN);
    q->_op.key_len = CR_HASH_LEN;
    q->_op.value = q->_new.p;
    q->_op.value_len = q->_new.len;
    q->_op.now = q->now;
    q->_op.on_done = on_op;
    q->_step = STEP_MARK;
    if (store_submit(q->svc->st, q->lp, &q->_op) == ERR_AGAIN)
        return ERR_AGAIN;
    finish(q, ERR_LIMIT, deferred);
    return ERR_LIMIT;
}

static void on_family(struct tok_family *f, int rc)
{
    struct tok_code_redemption *q = CONTAINER_OF(f, struct tok_code_redemption, _fam);
    if (rc) {
        cr_wipe(f->token, sizeof(f->token));
        finish(q, ERR_BACKEND, true);
        return;
    }
    memcpy(q->refresh_token, f->token, sizeof(q->refresh_token));
    cr_wipe(f->token, sizeof(f->token));
    q->_started = true;
    memcpy(q->_own, q->grant.family, STORE_FAMILY_ID);
    mark(q, true);
}

static void on_op(struct store_op *op)
{
    struct tok_code_redemption *q = (struct tok_code_redemption *)(void *)op;
    if (q->_step == STEP_MARK)
        marked(q, op->status, true);
    else
        use_read(q, op->status, true);
}

int tok_code_redeem(struct tok_code_redemption *q)
{
    struct tok_code_grant *g = &q->grant;
    uint8_t rd[16], want[16];

    memset(&q->_op, 0, sizeof(q->_op));
    q->outcome = TOK_CODE_INVALID;
    q->refresh_token[0] = '\0';
    q->_step = STEP_CHECK;
    q->_pending = q->_failed = 0;
    q->_started = false;
    buf_init(&q->_b, 256);
    buf_init(&q->_new, 256);
    /* not a code of ours, expired, or another client's: refused, nothing read */
    if (open_code(q->svc, q->code, g, rd) || g->expires_at <= q->now ||
        strcmp(g->client_id, q->client_id) != 0) {
        memset(g, 0, sizeof(*g));
        finish(q, ERR_OK, false);
        return ERR_OK;
    }
    digest_of(q->svc->key, q->code, q->_digest);
    redirect_digest(q->redirect_uri.p ? q->redirect_uri.p : "", q->redirect_uri.len, want);
    if (!cr_eq(rd, want, sizeof(rd)) || !tok_pkce_ok(q->verifier, g->challenge))
        return read_use(q, STEP_CHECK, false); /* (refused; if it was used, as a reuse) */
    /* What this use will issue, named before it is issued. */
    uint8_t rnd[16];
    if (q->offline_only && !tok_scope_subset(STR_LIT("offline_access"), g->scope))
        q->refresh = false;
    g->has_family = q->refresh;
    if (q->refresh)
        store_family_new(store_group_of(g->sub), g->family);
    cr_random(rnd, sizeof(rnd));
    cr_b64url_encode(rnd, sizeof(rnd), g->jti, sizeof(g->jti));
    g->jti_exp = q->now + TOK_ACCESS_TTL_MAX_S + q->svc->leeway_s;
    if (!q->refresh)
        return mark(q, false);
    /* The family first, then the record of the use: a record always names a family that
     * exists, so a second use can always revoke it. */
    struct tok_family *f = &q->_fam;
    memset(f, 0, sizeof(*f));
    f->svc = q->svc;
    f->lp = q->lp;
    str_copy(f->sub, sizeof(f->sub), g->sub);
    str_copy(f->client_id, sizeof(f->client_id), g->client_id);
    str_copy(f->scope, sizeof(f->scope), g->scope);
    f->gen = g->gen;
    f->now = q->now;
    f->done = on_family;
    f->preset = true;
    memcpy(f->family, g->family, STORE_FAMILY_ID);
    q->_step = STEP_FAMILY;
    if (tok_family_start(f) == ERR_AGAIN)
        return ERR_AGAIN;
    finish(q, ERR_LIMIT, false);
    return ERR_LIMIT;
}
