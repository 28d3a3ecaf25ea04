/* SPDX-License-Identifier: MIT */
/* Browser sessions; see auth_session.h. */
#include "auth/auth_session.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/hex.h"
#include "core/mem.h"
#include "core/pack.h"
#include "crypto/cr.h"
#include "json/json.h"
#include "store/store_rec.h"

static int digest_of(const uint8_t *key, struct str token, uint8_t out[32])
{
    uint8_t raw[33], msg[4 + AUTH_SESSION_LEN];
    size_t n;

    if (token.len != AUTH_SESSION_LEN ||
        cr_b64url_decode(token.p, token.len, raw, sizeof(raw), &n) || n != 32)
        return ERR_INVAL;
    memcpy(msg, "sso\n", 4);
    memcpy(msg + 4, token.p, token.len);
    cr_keyed_hash(out, key, msg, 4 + token.len);
    return ERR_OK;
}

static int64_t end_of(const struct auth_svc *svc, const struct auth_session *s, int64_t now)
{
    int64_t idle = now + svc->session_idle_s, abs = s->auth_time + svc->session_ttl_s;
    return idle < abs ? idle : abs;
}

/* The record: binary (SESSION_V1 first), which costs a fraction of JSON on the redirect
 * that a live session answers; records an earlier version wrote in JSON are still read. */
#define SESSION_V1 1

static int record_of(const struct auth_session *s, struct buf *out)
{
    uint8_t p[3 + AUTH_USER_ID_LEN + AUTH_USERNAME_MAX + AUTH_SID_LEN + 16 + 1 +
              AUTH_SESSION_FAMILIES * STORE_FAMILY_ID + 1];
    struct pack_w w = pack_writer(p, sizeof(p));
    pack_u8(&w, SESSION_V1);
    pack_str(&w, s->sub, AUTH_USER_ID_LEN, false);
    pack_str(&w, s->name, AUTH_USERNAME_MAX, false);
    pack_str(&w, s->sid, AUTH_SID_LEN, false);
    pack_u64(&w, (uint64_t)s->auth_time);
    pack_u64(&w, s->gen);
    pack_u8(&w, (uint8_t)s->nfam);
    for (unsigned i = 0; i < s->nfam && i < AUTH_SESSION_FAMILIES; i++)
        pack_put(&w, s->fam[i], STORE_FAMILY_ID);
    return w.bad ? ERR_INVAL : store_exp_wrap(s->expires_at, p, w.n, out);
}

static int parse_json(const char *p, size_t pn, struct auth_session *s)
{
    json_t *o = json_loadb(p, pn, JSON_REJECT_DUPLICATES, NULL);
    int rc = !o || json_copy_str(o, "sub", s->sub, sizeof(s->sub)) ||
                     json_copy_str(o, "name", s->name, sizeof(s->name)) ||
                     json_copy_str(o, "sid", s->sid, sizeof(s->sid))
                 ? ERR_INVAL
                 : ERR_OK;
    if (rc == ERR_OK) {
        s->auth_time = json_integer_value(json_object_get(o, "auth_time"));
        s->gen = (uint64_t)json_integer_value(json_object_get(o, "gen"));
        json_t *fam = json_object_get(o, "fam"), *f;
        size_t i;
        json_array_foreach(fam, i, f)
        {
            if (s->nfam < AUTH_SESSION_FAMILIES &&
                hex_decode(json_string_value(f), s->fam[s->nfam], STORE_FAMILY_ID) == ERR_OK)
                s->nfam++;
        }
    }
    json_decref(o);
    return rc;
}

static int parse(const char *v, size_t n, struct auth_session *s)
{
    const char *p;
    size_t pn;
    memset(s, 0, sizeof(*s));
    if (store_exp_unwrap(v, n, &s->expires_at, &p, &pn) || pn == 0)
        return ERR_INVAL;
    if (p[0] == '{')
        return parse_json(p, pn, s);
    struct pack_r r = pack_reader(p, pn);
    uint8_t version = unpack_u8(&r);
    unpack_str(&r, s->sub, sizeof(s->sub), false);
    unpack_str(&r, s->name, sizeof(s->name), false);
    unpack_str(&r, s->sid, sizeof(s->sid), false);
    s->auth_time = (int64_t)unpack_u64(&r);
    s->gen = unpack_u64(&r);
    s->nfam = unpack_u8(&r);
    if (s->nfam > AUTH_SESSION_FAMILIES)
        return ERR_INVAL;
    for (unsigned i = 0; i < s->nfam; i++)
        unpack_get(&r, s->fam[i], STORE_FAMILY_ID);
    return unpack_done(&r) && version == SESSION_V1 ? ERR_OK : ERR_INVAL;
}

/* ---- start ----------------------------------------------------------------------------- */

static void on_started(struct store_op *op)
{
    struct auth_session_start *q = (struct auth_session_start *)(void *)op;
    buf_fini(&q->_b);
    if (op->status)
        cr_wipe(q->token, sizeof(q->token));
    q->done(q, op->status ? ERR_BACKEND : ERR_OK);
}

int auth_session_start(struct auth_session_start *q)
{
    struct store_op *op = &q->_op;
    uint8_t raw[32];

    memset(op, 0, sizeof(*op));
    cr_random(raw, sizeof(raw));
    cr_b64url_encode(raw, sizeof(raw), q->token, sizeof(q->token));
    cr_random(raw, 16);
    cr_b64url_encode(raw, 16, q->s.sid, sizeof(q->s.sid));
    cr_wipe(raw, sizeof(raw));
    q->s.expires_at = end_of(q->svc, &q->s, q->now);
    digest_of(q->svc->key, str_c(q->token), op->key);
    op->key_len = 32;
    hex_encode(op->key, 32, q->key_hex);
    buf_init(&q->_b, 4096);
    if (record_of(&q->s, &q->_b)) {
        buf_fini(&q->_b);
        return ERR_NOMEM;
    }
    op->kind = STORE_OP_PUT_NEW;
    op->table = STORE_T_SSO;
    op->value = q->_b.p;
    op->value_len = q->_b.len;
    op->now = q->now;
    op->on_done = on_started;
    if (store_submit(q->svc->st, q->lp, op) == ERR_AGAIN)
        return ERR_AGAIN;
    buf_fini(&q->_b);
    return ERR_LIMIT;
}

/* ---- find ------------------------------------------------------------------------------ */

enum { FIND_RECORD, FIND_GEN, FIND_MOVE };

static int found(struct auth_session_find *q, bool yes, bool deferred)
{
    q->found = yes;
    buf_fini(&q->_b);
    buf_fini(&q->_new);
    if (deferred)
        q->done(q, ERR_OK);
    return ERR_OK;
}

static void on_op(struct store_op *op);

/* The user's generation is the session's: its end moves on if it is half gone. */
static int gen_read(struct auth_session_find *q, int status, bool deferred)
{
    uint64_t gen = 0;
    if (status == ERR_OK && store_sessions_decode(q->_b.p, q->_b.len, &gen))
        status = ERR_INVAL;
    if ((status != ERR_OK && status != ERR_NOTFOUND) || gen != q->s.gen)
        return found(q, false, deferred);
    int64_t end = end_of(q->svc, &q->s, q->now);
    if (q->s.expires_at - q->now > (int64_t)q->svc->session_idle_s / 2 || end <= q->s.expires_at)
        return found(q, true, deferred);
    /* (a REPLACE: a session ended meanwhile is not brought back) */
    q->s.expires_at = end;
    if (record_of(&q->s, &q->_new))
        return found(q, true, deferred);
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.kind = STORE_OP_REPLACE;
    q->_op.table = STORE_T_SSO;
    memcpy(q->_op.key, q->_digest, 32);
    q->_op.key_len = 32;
    q->_op.value = q->_new.p;
    q->_op.value_len = q->_new.len;
    q->_op.now = q->now;
    q->_op.on_done = on_op;
    q->_step = FIND_MOVE;
    if (store_submit(q->svc->st, q->lp, &q->_op) == ERR_AGAIN)
        return ERR_AGAIN;
    return found(q, true, deferred); /* (its end stays: a later use moves it) */
}

static int record_read(struct auth_session_find *q, int status, bool deferred)
{
    if (status || parse(q->_b.p, q->_b.len, &q->s) || q->s.expires_at <= q->now)
        return found(q, false, deferred);
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.on_done = on_op;
    q->_step = FIND_GEN;
    int rc =
        store_get(q->svc->st, STORE_T_SESSIONS, q->s.sub, strlen(q->s.sub), &q->_b, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : gen_read(q, rc, deferred);
}

static void on_op(struct store_op *op)
{
    struct auth_session_find *q = (struct auth_session_find *)(void *)op;
    if (q->_step == FIND_RECORD)
        record_read(q, op->status, true);
    else if (q->_step == FIND_GEN)
        gen_read(q, op->status, true);
    else
        found(q, true, true); /* (moved or not: the session stands) */
}

int auth_session_find(struct auth_session_find *q)
{
    memset(&q->_op, 0, sizeof(q->_op));
    q->found = false;
    buf_init(&q->_b, 4096);
    buf_init(&q->_new, 4096);
    if (digest_of(q->svc->key, q->token, q->_digest))
        return found(q, false, false);
    hex_encode(q->_digest, 32, q->key_hex);
    q->_op.on_done = on_op;
    q->_step = FIND_RECORD;
    int rc = store_get(q->svc->st, STORE_T_SSO, q->_digest, 32, &q->_b, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : record_read(q, rc, false);
}

/* ---- end ------------------------------------------------------------------------------- */

static void on_ended(struct store_op *op)
{
    struct auth_session_end *q = (struct auth_session_end *)(void *)op;
    q->done(q, op->status && op->status != ERR_NOTFOUND ? ERR_BACKEND : ERR_OK);
}

int auth_session_end(struct auth_session_end *q, const struct auth_svc *svc, struct loop *lp,
                     struct str token, int64_t now)
{
    memset(&q->_op, 0, sizeof(q->_op));
    if (digest_of(svc->key, token, q->_op.key))
        return ERR_OK; /* no session of ours: nothing to end */
    q->_op.key_len = 32;
    q->_op.kind = STORE_OP_DELETE;
    q->_op.table = STORE_T_SSO;
    q->_op.now = now;
    q->_op.on_done = on_ended;
    return store_submit(svc->st, lp, &q->_op) == ERR_AGAIN ? ERR_AGAIN : ERR_LIMIT;
}

/* ---- families noted, logout ------------------------------------------------------------ */

static void on_note(struct store_op *op);

static int note_step(struct auth_session_note *q, int status, bool deferred)
{
    struct auth_session s;
    if (q->_step == 1) {                                 /* written, or raced: read again */
        if (status == ERR_CONFLICT && ++q->_tries < 8) { /* (one session, many apps at once) */
            q->_step = 0;
            memset(&q->_op, 0, sizeof(q->_op));
            q->_op.on_done = on_note;
            int rc = store_get(q->svc->st, STORE_T_SSO, q->_key, 32, &q->_b, q->lp, &q->_op);
            if (rc == ERR_AGAIN)
                return ERR_AGAIN;
            status = rc;
        } else {
            status = status && status != ERR_NOTFOUND ? ERR_BACKEND : ERR_OK;
            buf_fini(&q->_b);
            buf_fini(&q->_new);
            if (deferred)
                q->done(q, status);
            return status;
        }
    }
    /* the record read: the family added */
    if (status || parse(q->_b.p, q->_b.len, &s)) {
        int rc = status && status != ERR_NOTFOUND ? ERR_BACKEND : ERR_OK;
        buf_fini(&q->_b);
        buf_fini(&q->_new);
        if (deferred)
            q->done(q, rc);
        return rc;
    }
    if (s.nfam == AUTH_SESSION_FAMILIES) /* (the oldest makes room) */
        memmove(s.fam[0], s.fam[1], (AUTH_SESSION_FAMILIES - 1) * STORE_FAMILY_ID), s.nfam--;
    memcpy(s.fam[s.nfam++], q->family, STORE_FAMILY_ID);
    buf_reset(&q->_new);
    if (record_of(&s, &q->_new))
        return note_step(q, ERR_NOMEM, deferred);
    memset(&q->_op, 0, sizeof(q->_op));
    q->_op.kind = STORE_OP_REPLACE;
    q->_op.table = STORE_T_SSO;
    memcpy(q->_op.key, q->_key, 32);
    q->_op.key_len = 32;
    q->_op.value = q->_new.p;
    q->_op.value_len = q->_new.len;
    q->_op.expect = q->_b.p;
    q->_op.expect_len = q->_b.len;
    q->_op.now = q->now;
    q->_op.on_done = on_note;
    q->_step = 1;
    if (store_submit(q->svc->st, q->lp, &q->_op) == ERR_AGAIN)
        return ERR_AGAIN;
    q->_tries = 3;
    return note_step(q, ERR_BACKEND, deferred);
}

static void on_note(struct store_op *op)
{
    struct auth_session_note *q = (struct auth_session_note *)(void *)op;
    note_step(q, op->status, true);
}

int auth_session_note_family(struct auth_session_note *q)
{
    memset(&q->_op, 0, sizeof(q->_op));
    q->_step = q->_tries = 0;
    buf_init(&q->_b, 4096);
    buf_init(&q->_new, 4096);
    if (hex_decode(q->key_hex, q->_key, 32)) {
        buf_fini(&q->_b);
        buf_fini(&q->_new);
        return ERR_OK; /* no session: nothing to note */
    }
    q->_op.on_done = on_note;
    int rc = store_get(q->svc->st, STORE_T_SSO, q->_key, 32, &q->_b, q->lp, &q->_op);
    return rc == ERR_AGAIN ? ERR_AGAIN : note_step(q, rc, false);
}

static void on_logout_op(struct store_op *op)
{
    struct auth_session_logout *q = CONTAINER_OF(op, struct auth_session_logout_op, op)->q;
    if (op->status && op->status != ERR_NOTFOUND)
        q->_failed = 1;
    if (--q->_pending == 0)
        q->done(q, q->_failed ? ERR_BACKEND : ERR_OK);
}

/* The session found (or not): its families revoked and its record deleted, together. */
static int logout_found(struct auth_session_logout *q, bool deferred)
{
    struct auth_session_find *f = &q->_find;
    if (!f->found) {
        if (deferred)
            q->done(q, ERR_OK);
        return ERR_OK;
    }
    q->ended = true;
    snprintf(q->sub, sizeof(q->sub), "%s", f->s.sub);
    q->_pending = 1;
    for (unsigned i = 0; i <= f->s.nfam; i++) {
        struct store_op *op = &q->_ops[i].op;
        memset(op, 0, sizeof(*op));
        q->_ops[i].q = q;
        op->now = q->now;
        op->on_done = on_logout_op;
        if (i < f->s.nfam) {
            op->kind = STORE_OP_FAMILY_REVOKE;
            memcpy(op->rt.family, f->s.fam[i], STORE_FAMILY_ID);
        } else {
            op->kind = STORE_OP_DELETE;
            op->table = STORE_T_SSO;
            memcpy(op->key, f->_digest, 32);
            op->key_len = 32;
        }
        if (store_submit(q->svc->st, q->lp, op) == ERR_AGAIN)
            q->_pending++;
        else
            q->_failed = 1;
    }
    if (--q->_pending > 0)
        return ERR_AGAIN;
    int rc = q->_failed ? ERR_BACKEND : ERR_OK;
    if (deferred)
        q->done(q, rc);
    return rc;
}

static void on_logout_find(struct auth_session_find *f, int rc)
{
    (void)rc;
    logout_found((struct auth_session_logout *)(void *)f, true);
}

int auth_session_logout(struct auth_session_logout *q)
{
    struct auth_session_find *f = &q->_find;
    memset(f, 0, sizeof(*f));
    q->ended = false;
    q->_pending = q->_failed = 0;
    f->svc = q->svc;
    f->lp = q->lp;
    f->token = q->token;
    f->now = q->now;
    f->done = on_logout_find;
    int rc = auth_session_find(f);
    return rc == ERR_AGAIN ? ERR_AGAIN : logout_found(q, false);
}
