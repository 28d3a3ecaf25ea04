/* SPDX-License-Identifier: MIT */
/* The Redis store: operations into commands, replies into results. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "core/log.h"
#include "crypto/cr.h"
#include "redis/redis_slot.h"
#include "store/store_rec.h"
#include "store/store_redis_int.h"

/* ---- commands: one builder for both connection kinds ------------------------------------ */

const char *const sr_tags[STORE_T_COUNT] = {
    [STORE_T_USERS] = "u:",    [STORE_T_CLIENTS] = "c:",    [STORE_T_KEYS] = "k:",
    [STORE_T_REFRESH] = "rt:", [STORE_T_FAMILIES] = "fam:", [STORE_T_REVOKED] = "jti:",
    [STORE_T_META] = "",       [STORE_T_EVENTS] = "ev:",    [STORE_T_SESSIONS] = "sess:",
    [STORE_T_CODES] = "code:", [STORE_T_SSO] = "sso:",      [STORE_T_CONSENTS] = "cons:",
    [STORE_T_SUBS] = "sub:",
};

/* Lower-case hex of n bytes and a NUL: out holds 2n + 1. */
void sr_hex(const uint8_t *p, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, p, n);
}

int sr_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return ERR_INVAL;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = s[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return ERR_INVAL;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return ERR_OK;
}

static void arg(struct cmd *c, const void *p, size_t n)
{
    c->argv[c->argc] = p;
    c->lens[c->argc++] = n;
}

void sr_arg_s(struct cmd *c, const char *p)
{
    arg(c, p, strlen(p));
}

static void arg_i(struct cmd *c, int64_t v)
{
    char *p = c->nums[c->nnums++]; /* at most 6 numbers per command (issue and deadline) */
    snprintf(p, sizeof(c->nums[0]), "%" PRId64, v);
    sr_arg_s(c, p);
}

/* The hash tag of a key on a cluster (docs/internals/STORE.md): a user's refresh tokens,
 * families and sessions generation share their group's ("{gNNNN}"), the tables servers
 * cache share "{cfg}" with their index and the generation, so each write is one slot; other
 * keys are placed by their whole name. "" on one Redis. */
static void tag_of(const struct redis_store *s, enum store_table t, const void *k, size_t klen,
                   char out[8])
{
    out[0] = '\0';
    if (!s->cluster)
        return;
    if (t == STORE_T_REFRESH || t == STORE_T_FAMILIES)
        snprintf(out, 8, "{g%04x}", klen >= 2 ? store_group_in(k) : 0);
    else if (t == STORE_T_SESSIONS) {
        char sub[STORE_SUB_MAX + 1];
        snprintf(sub, sizeof(sub), "%.*s", (int)(klen < STORE_SUB_MAX ? klen : STORE_SUB_MAX),
                 (const char *)k);
        snprintf(out, 8, "{g%04x}", store_group_of(sub));
    } else if (sr_bumps(t))
        snprintf(out, 8, "{cfg}");
}

/* PREFIX + table + tag + key; binary keys of the refresh tables become hex. Its length. */
size_t sr_key_of(const struct redis_store *s, char *out, enum store_table t, const void *k,
                 size_t klen)
{
    char tag[8];
    tag_of(s, t, k, klen, tag);
    size_t n = (size_t)snprintf(out, PREFIX_MAX + 16, "%s%s%s", s->prefix, sr_tags[t], tag);
    if (t == STORE_T_REFRESH || t == STORE_T_FAMILIES) {
        sr_hex(k, klen, out + n);
        return n + 2 * klen;
    }
    memcpy(out + n, k, klen);
    out[n + klen] = '\0';
    return n + klen;
}

/* The index set of a small table: PREFIX"idx:u" (on a cluster PREFIX"idx:{cfg}c": the
 * cached tables only; users are listed by SCAN there, their index would be one slot). */
void sr_idx_key(const struct redis_store *s, char *out, size_t cap, enum store_table t)
{
    snprintf(out, cap, "%sidx:%s%.*s", s->prefix, s->cluster ? "{cfg}" : "",
             (int)strlen(sr_tags[t]) - 1, sr_tags[t]);
}

/* The tables servers cache (and reload when the generation moves). */
bool sr_bumps(enum store_table t)
{
    return t == STORE_T_CLIENTS || t == STORE_T_KEYS || t == STORE_T_EVENTS;
}

/* The small tables, listed through an index set instead of SCAN (see sr_idx_key). */
bool sr_indexed(enum store_table t)
{
    return t == STORE_T_USERS || sr_bumps(t);
}

void sr_read_cmd(const struct redis_store *s, enum store_table t, const char *key, size_t klen,
                 struct cmd *c);

/* When a write sent now must have run by, in Redis's clock: half the timeout after which
 * the request is answered 503, so that an answer from a write that did run has the other
 * half to arrive before that. */
static int64_t deadline_of(const struct redis_store *s)
{
    return clock_wall_ms() + atomic_load(&s->clock_offset_ms) + (int64_t)(s->timeout_ms / 2);
}

static int build_op(const struct redis_store *s, const struct store_op *op, struct cmd *c);

int sr_build(const struct redis_store *s, const struct store_op *op, struct cmd *c)
{
    int rc = build_op(s, op, c);
    if (rc == ERR_OK && op->kind != STORE_OP_GET)
        arg_i(c, deadline_of(s)); /* the script's last argument: see late() */
    c->slot = redis_key_slot(c->keys[0], strlen(c->keys[0]));
    return rc;
}

/* On a cluster, a user's change in two steps (r_exec): the second, its sessions generation
 * raised to op->sess_gen. */
void sr_build_sessions(const struct redis_store *s, const struct store_op *op, struct cmd *c)
{
    memset(c, 0, sizeof(*c));
    sr_arg_s(c, "EVALSHA");
    sr_arg_s(c, s->sha);
    sr_arg_s(c, "1");
    arg(c, c->keys[0],
        sr_key_of(s, c->keys[0], STORE_T_SESSIONS, op->sess_sub, strlen(op->sess_sub)));
    sr_arg_s(c, "sessmax");
    arg_i(c, (int64_t)op->sess_gen);
    arg_i(c, deadline_of(s));
    c->slot = redis_key_slot(c->keys[0], strlen(c->keys[0]));
}

static int build_op(const struct redis_store *s, const struct store_op *op, struct cmd *c)
{
    size_t n;
    memset(c, 0, sizeof(*c));
    sr_arg_s(c, "EVALSHA");
    sr_arg_s(c, s->sha);
    switch (op->kind) {
    case STORE_OP_PUT_NEW:
    case STORE_OP_REPLACE:
    case STORE_OP_DELETE: {
        int del = op->kind == STORE_OP_DELETE;
        /* on a cluster: the record alone, but for the cached tables (one slot with their
         * index and the generation); the sessions generation is a second step (r_exec) */
        bool alone = s->cluster && !sr_bumps(op->table);
        sr_arg_s(c, alone ? "1" : op->sess_sub[0] && !s->cluster ? "4" : "3");
        n = sr_key_of(s, c->keys[0], op->table, op->key, op->key_len);
        arg(c, c->keys[0], n);
        if (!alone) {
            sr_idx_key(s, c->keys[1], sizeof(c->keys[1]), op->table);
            sr_arg_s(c, c->keys[1]);
            snprintf(c->keys[2], sizeof(c->keys[2]), "%s", s->gen_key);
            sr_arg_s(c, c->keys[2]);
        }
        if (op->sess_sub[0] && !s->cluster)
            arg(c, c->keys[3],
                sr_key_of(s, c->keys[3], STORE_T_SESSIONS, op->sess_sub, strlen(op->sess_sub)));
        sr_arg_s(c, del ? "del" : "put");
        if (!del) {
            sr_arg_s(c, op->kind == STORE_OP_PUT_NEW ? "new" : "replace");
            arg(c, op->value ? op->value : "", op->value_len);
        }
        arg(c, op->key, op->key_len);
        sr_arg_s(c, sr_bumps(op->table) ? "1" : "0");
        arg_i(c, (int64_t)op->sess_gen);
        sr_arg_s(c, op->expect ? "1" : "0");
        arg(c, op->expect ? op->expect : "", op->expect_len);
        if (!del) { /* an expiring record's end, for EXPIREAT (0: none) */
            int64_t exp = 0;
            const char *pl;
            size_t pn;
            if (store_expiring(op->table) &&
                store_exp_unwrap(op->value, op->value_len, &exp, &pl, &pn))
                return ERR_INVAL;
            arg_i(c, exp);
        }
        return ERR_OK;
    }
    case STORE_OP_REFRESH_ISSUE: {
        /* (op->rt as store_submit left it: live, no successor, never rotated) */
        size_t rn = store_refresh_encode(&op->rt, c->rec);
        if (!rn)
            return ERR_INVAL;
        sr_arg_s(c, "3");
        arg(c, c->keys[0], sr_key_of(s, c->keys[0], STORE_T_REFRESH, op->digest, STORE_DIGEST));
        arg(c, c->keys[1],
            sr_key_of(s, c->keys[1], STORE_T_FAMILIES, op->rt.family, STORE_FAMILY_ID));
        arg(c, c->keys[2],
            sr_key_of(s, c->keys[2], STORE_T_SESSIONS, op->rt.sub, strlen(op->rt.sub)));
        sr_arg_s(c, "issue");
        arg_i(c, op->now);
        arg(c, c->rec, rn);
        arg_i(c, op->rt.expires_at);
        arg_i(c, op->rt.idle_expires_at);
        arg_i(c, (int64_t)op->rt.gen);
        return ERR_OK;
    }
    case STORE_OP_REFRESH_ROTATE:
        sr_arg_s(c, "2");
        arg(c, c->keys[0], sr_key_of(s, c->keys[0], STORE_T_REFRESH, op->old_digest, STORE_DIGEST));
        arg(c, c->keys[1], sr_key_of(s, c->keys[1], STORE_T_REFRESH, op->digest, STORE_DIGEST));
        sr_arg_s(c, "rotate");
        arg_i(c, op->now);
        arg_i(c, op->grace_s);
        sr_arg_s(c, op->rt.client_id);
        arg_i(c, op->rt.idle_expires_at);
        sr_arg_s(c, s->prefix);
        arg(c, op->digest, STORE_DIGEST); /* (its key is KEYS[2]; the spent record holds it) */
        tag_of(s, STORE_T_REFRESH, op->old_digest, STORE_DIGEST, c->tag);
        sr_arg_s(c, c->tag); /* (the keys the script names itself are in the token's slot) */
        return ERR_OK;
    case STORE_OP_FAMILY_REVOKE:
        sr_arg_s(c, "1");
        arg(c, c->keys[0],
            sr_key_of(s, c->keys[0], STORE_T_FAMILIES, op->rt.family, STORE_FAMILY_ID));
        sr_arg_s(c, "famrevoke");
        arg_i(c, op->now);
        return ERR_OK;
    case STORE_OP_JTI_REVOKE:
        sr_arg_s(c, "1");
        arg(c, c->keys[0], sr_key_of(s, c->keys[0], STORE_T_REVOKED, op->key, op->key_len));
        sr_arg_s(c, "jti");
        arg_i(c, op->now);
        arg_i(c, op->jti_expires_at);
        snprintf(c->keys[1], sizeof(c->keys[1]), "%sinval", s->prefix);
        sr_arg_s(c, c->keys[1]);
        arg(c, op->key, op->key_len);
        return ERR_OK;
    case STORE_OP_GET: {
        size_t kn = sr_key_of(s, c->keys[0], op->table, op->key, op->key_len);
        sr_read_cmd(s, op->table, c->keys[0], kn, c);
        return ERR_OK;
    }
    case STORE_OP_PURGE:
        break; /* keys expire by themselves: nothing to send */
    }
    return ERR_INVAL;
}

int64_t sr_num(const struct redis_reply *r)
{
    if (!r)
        return 0;
    if (redis_reply_kind(r) == RK_INTEGER)
        return redis_reply_int(r);
    if (redis_reply_kind(r) == RK_STRING)
        return strtoll(redis_reply_str(r, NULL), NULL, 10);
    return 0;
}

/* A string field into dst; one that does not fit is a record this code did not write:
 * refused, never cut (a cut subject would name someone else). */
int sr_str_to(const struct redis_reply *r, char *dst, size_t cap)
{
    size_t n = 0;
    const char *p = r && redis_reply_kind(r) == RK_STRING ? redis_reply_str(r, &n) : "";
    if (n >= cap)
        return ERR_INVAL;
    if (n)
        memcpy(dst, p, n);
    dst[n] = '\0';
    return ERR_OK;
}

/* A refresh record as the script answers it: the bytes of store_refresh_encode (the script
 * reads a hash written before as the same bytes). Checked as every record read is. */
static int refresh_of(const struct redis_reply *r, struct store_refresh *rt)
{
    size_t n;
    if (!r || redis_reply_kind(r) != RK_STRING)
        return ERR_INVAL;
    const char *p = redis_reply_str(r, &n);
    return store_refresh_decode((const uint8_t *)p, n, rt);
}

/* The script's answer into op->status (and the rotation's outputs). */
int sr_decode(struct store_op *op, const struct redis_reply *r)
{
    if (!r)
        return op->status = ERR_BACKEND;
    enum redis_kind k = redis_reply_kind(r);
    if (op->kind == STORE_OP_GET)
        return op->status = k == RK_ERROR ? ERR_BACKEND : sr_value_into(op->table, r, op->_out);
    if (k == RK_ERROR) {
        const char *e = redis_reply_str(r, NULL);
        if (strncmp(e, "CONFLICT ", 9) == 0)
            return op->status = ERR_CONFLICT;
        if (strncmp(e, "LATE ", 5) == 0) /* ran past its deadline: nothing written */
            return op->status = ERR_BACKEND;
        if (strncmp(e, "NOTFOUND ", 9) == 0)
            return op->status = ERR_NOTFOUND;
        log_kv(LOG_WARN, "redis store: command refused", "error", e, LOG_END);
        return op->status = ERR_BACKEND;
    }
    if (op->kind != STORE_OP_REFRESH_ROTATE)
        return op->status = k == RK_INTEGER ? ERR_OK : ERR_BACKEND;
    if (k != RK_ARRAY || redis_reply_count(r) < 1)
        return op->status = ERR_BACKEND;
    op->rotate_result = (enum store_rotate_result)sr_num(redis_reply_at(r, 0));
    if (op->rotate_result < STORE_ROTATED || op->rotate_result > STORE_ROTATE_INVALID)
        return op->status = ERR_BACKEND;
    if (op->rotate_result == STORE_ROTATE_INVALID)
        return op->status = ERR_OK;
    if (redis_reply_count(r) != 3 || refresh_of(redis_reply_at(r, 2), &op->rt))
        return op->status = ERR_BACKEND;
    if (op->rotate_result == STORE_ROTATE_GRACE) {
        const struct redis_reply *d = redis_reply_at(r, 1);
        size_t dn = 0;
        const char *dp = redis_reply_kind(d) == RK_STRING ? redis_reply_str(d, &dn) : NULL;
        if (dn != STORE_DIGEST)
            return op->status = ERR_BACKEND;
        memcpy(op->digest, dp, STORE_DIGEST);
    }
    return op->status = ERR_OK;
}

int sr_value_into(enum store_table t, const struct redis_reply *r, struct buf *out)
{
    enum redis_kind k = redis_reply_kind(r);
    size_t n;

    buf_reset(out);
    if (t == STORE_T_REFRESH) { /* (the script's "rget": the record's bytes, or nil) */
        struct store_refresh rt;
        if (k == RK_NIL)
            return ERR_NOTFOUND;
        if (refresh_of(r, &rt))
            return ERR_BACKEND;
        const char *p = redis_reply_str(r, &n);
        return buf_append(out, p, n);
    }
    if (t == STORE_T_FAMILIES) {
        struct store_family f;
        uint8_t enc[STORE_FAMILY_ENC];
        const struct redis_reply *e = redis_reply_at(r, 1);
        if (k != RK_ARRAY || redis_reply_count(r) != 3 || !e || redis_reply_kind(e) != RK_STRING)
            return ERR_NOTFOUND;
        f.revoked = sr_num(redis_reply_at(r, 0)) == 1;
        f.expires_at = sr_num(e);
        f.revoked_at = sr_num(redis_reply_at(r, 2));
        store_family_encode(&f, enc);
        return buf_append(out, enc, sizeof(enc));
    }
    if (k == RK_NIL)
        return ERR_NOTFOUND;
    if (k != RK_STRING)
        return ERR_BACKEND;
    const char *p = redis_reply_str(r, &n);
    if (t == STORE_T_REVOKED) {
        int64_t exp = strtoll(p, NULL, 10);
        return buf_append(out, &exp, sizeof(exp));
    }
    return buf_append(out, p, n);
}

/* The read command of one record into c (key in c->keys[0]). A refresh record is read by
 * the script, which reads one written before (a hash) as the same bytes. */
void sr_read_cmd(const struct redis_store *s, enum store_table t, const char *key, size_t klen,
                 struct cmd *c)
{
    c->argc = 0;
    c->slot = redis_key_slot(key, klen);
    if (t == STORE_T_REFRESH) {
        sr_arg_s(c, "EVALSHA");
        sr_arg_s(c, s->sha);
        sr_arg_s(c, "1");
        arg(c, key, klen);
        sr_arg_s(c, "rget");
    } else if (t == STORE_T_FAMILIES) {
        static const char *const ff[] = {"r", "e", "t"};
        sr_arg_s(c, "HMGET");
        arg(c, key, klen);
        for (size_t i = 0; i < 3; i++)
            sr_arg_s(c, ff[i]);
    } else {
        sr_arg_s(c, "GET");
        arg(c, key, klen);
    }
}
