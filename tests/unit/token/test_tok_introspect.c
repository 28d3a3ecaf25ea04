/* SPDX-License-Identifier: MIT */
/* Refresh-token introspection without HTTP (#12 item 1): active exactly while a rotation
 * would accept the token, on the embedded store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"
#include "store/store.h"
#include "store/store_rec.h"
#include "token/tok_introspect.h"
#include "token/tok_jwt.h"
#include "token/tok_refresh.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {42};

static void never(struct tok_rt_introspection *q, int rc)
{
    (void)q;
    (void)rc;
    harness_fail(__FILE__, __LINE__, "the embedded store completes at once");
}

/* ERR_OK and active, ERR_OK and inactive, or the error. */
static int ask(struct store *st, const char *token, const char *client, int64_t now, bool *active)
{
    struct tok_rt_introspection q;
    memset(&q, 0, sizeof(q));
    q.st = st;
    q.now = now;
    q.done = never;
    snprintf(q.client_id, sizeof(q.client_id), "%s", client);
    int rc = tok_rt_introspect(&q, key, str_c(token));
    *active = q.active;
    if (q.active && strcmp(q.rt.sub, "ann") != 0)
        harness_fail(__FILE__, __LINE__, "active, but not ann's record");
    return rc;
}

static void exec_done(struct store_op *op)
{
    (void)op;
}

static int issue(struct store *st, const char *token, uint8_t family, int64_t now, uint64_t gen)
{
    struct store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_REFRESH_ISSUE;
    op.on_done = exec_done;
    op.now = now;
    if (tok_refresh_digest(key, str_c(token), op.digest))
        return ERR_INVAL;
    memset(op.rt.family, family, STORE_FAMILY_ID);
    op.rt.issued_at = now;
    op.rt.expires_at = now + 1000;
    op.rt.idle_expires_at = now + 100;
    op.rt.gen = gen;
    snprintf(op.rt.sub, sizeof(op.rt.sub), "ann");
    snprintf(op.rt.client_id, sizeof(op.rt.client_id), "app");
    return store_exec(st, &op);
}

TEST(refresh_introspection_follows_the_rotation_rule)
{
    char dir[64], cmd[96], err[256], t1[TOK_REFRESH_LEN + 1], t2[TOK_REFRESH_LEN + 1];
    struct store *st;
    bool active;
    snprintf(dir, sizeof(dir), "/tmp/fg-rti-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    tok_refresh_new(1, 1000000, t1);
    tok_refresh_new(2, 1000000, t2);
    ASSERT_EQ_INT(issue(st, t1, 0xa1, 1000, 0), 0);
    /* live, its client, in time: active */
    ASSERT_EQ_INT(ask(st, t1, "app", 1001, &active), 0);
    ASSERT_TRUE(active);
    /* another client, past the idle expiry, unknown, not ours at all: inactive */
    ASSERT_EQ_INT(ask(st, t1, "other", 1001, &active), 0);
    ASSERT_TRUE(!active);
    ASSERT_EQ_INT(ask(st, t1, "app", 1100, &active), 0);
    ASSERT_TRUE(!active);
    ASSERT_EQ_INT(ask(st, t2, "app", 1001, &active), 0);
    ASSERT_TRUE(!active);
    ASSERT_EQ_INT(ask(st, "not.a.refresh.token", "app", 1001, &active), 0);
    ASSERT_TRUE(!active);
    /* the user's sessions ended after the family began: inactive */
    char gen[STORE_SESSIONS_ENC_MAX];
    size_t n = store_sessions_encode(1, gen);
    ASSERT_EQ_INT(store_exec_kv(st, STORE_OP_PUT_NEW, STORE_T_SESSIONS, "ann", gen, n), 0);
    ASSERT_EQ_INT(ask(st, t1, "app", 1001, &active), 0);
    ASSERT_TRUE(!active);
    /* a family begun at that generation is active; revoked, it is not */
    ASSERT_EQ_INT(issue(st, t2, 0xa2, 1000, 1), 0);
    ASSERT_EQ_INT(ask(st, t2, "app", 1001, &active), 0);
    ASSERT_TRUE(active);
    struct store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_FAMILY_REVOKE;
    op.on_done = exec_done;
    op.now = 1002;
    memset(op.rt.family, 0xa2, STORE_FAMILY_ID);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(ask(st, t2, "app", 1003, &active), 0);
    ASSERT_TRUE(!active);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}

/* The answer is written in place, the literal parts with their lengths known: at every
 * length of a claim (so every place where the buffer grows, from its first 256 bytes) and
 * with characters to escape at its end or throughout (where the closing quote may find no
 * room), jansson reads back exactly the claims; a buffer too small for the answer refuses
 * it whole. Fails (ASan) without put_claim_lit's room check for the closing quote. */
TEST(introspection_answer_reads_back_at_every_length)
{
    static struct tok_claims cl;
    static const char iss[] = "https://i\"\\\xc3\xa9";
    for (size_t n = 1; n < sizeof(cl.scope) - 1; n++) {
        for (int esc = 0; esc < 4; esc++) {
            memset(&cl, 0, sizeof(cl));
            memset(cl.scope, 'a', n);
            if (esc == 1)
                cl.scope[n - 1] = '"'; /* \" */
            else if (esc == 2)
                cl.scope[n - 1] = 1; /* \u0001 */
            else if (esc == 3)       /* all of it \u0001: the most room escaping takes */
                memset(cl.scope, 1, n);
            snprintf(cl.sub, sizeof(cl.sub), "%.*s", (int)(n % 128), cl.scope);
            snprintf(cl.client_id, sizeof(cl.client_id), "c");
            snprintf(cl.aud, sizeof(cl.aud), "https://api");
            snprintf(cl.jti, sizeof(cl.jti), "j");
            cl.exp = 2000000000;
            cl.iat = -1;
            struct buf b;
            buf_init(&b, 8192);
            ASSERT_EQ_INT(tok_introspection_json(&b, iss, true, &cl), ERR_OK);
            json_error_t jerr;
            json_t *j = json_loadb(b.p, b.len, 0, &jerr);
            ASSERT_TRUE(j != NULL);
            ASSERT_TRUE(json_is_true(json_object_get(j, "active")));
            ASSERT_EQ_STR(json_string_value(json_object_get(j, "scope")), cl.scope);
            ASSERT_EQ_STR(json_string_value(json_object_get(j, "iss")), iss);
            ASSERT_EQ_INT(json_object_get(j, "sub") != NULL, cl.sub[0] != 0);
            if (cl.sub[0])
                ASSERT_EQ_STR(json_string_value(json_object_get(j, "sub")), cl.sub);
            ASSERT_EQ_STR(json_string_value(json_object_get(j, "client_id")), "c");
            ASSERT_EQ_STR(json_string_value(json_object_get(j, "aud")), "https://api");
            ASSERT_EQ_STR(json_string_value(json_object_get(j, "jti")), "j");
            ASSERT_TRUE(json_integer_value(json_object_get(j, "exp")) == 2000000000);
            ASSERT_TRUE(json_integer_value(json_object_get(j, "iat")) == -1);
            ASSERT_EQ_INT((int)json_object_size(j), 9 + (cl.sub[0] != 0));
            json_decref(j);
            /* one byte short of the answer: refused, never cut */
            struct buf small;
            size_t whole = b.len;
            buf_init(&small, whole - 1);
            ASSERT_EQ_INT(tok_introspection_json(&small, iss, true, &cl), ERR_LIMIT);
            buf_fini(&small);
            buf_fini(&b);
        }
    }
}
