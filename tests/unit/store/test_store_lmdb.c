/* SPDX-License-Identifier: MIT */
/* The LMDB store: table ops, refresh rotation outcomes, group commit, reopen. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "harness.h"
#include "loop/loop.h"
#include "store/store.h"
#include "store/store_rec.h"

static char dir[64];
static struct loop lp;
static int done_count;

static struct store *open_fresh(void)
{
    struct store *st;
    char err[256], cmd[128];
    snprintf(dir, sizeof(dir), "/tmp/fg-store-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return NULL;
    if (store_open_lmdb(dir, 64u << 20, &st, err, sizeof(err)))
        return NULL;
    return st;
}

static void cleanup(struct store *st)
{
    char cmd[128];
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return;
}

static void on_done(struct store_op *op)
{
    (void)op;
    done_count++;
}

static void init_op(struct store_op *op, enum store_op_kind kind)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->on_done = on_done;
    op->now = 1000;
}

static void kv(struct store_op *op, enum store_table t, const char *k, const char *v)
{
    op->table = t;
    op->key_len = strlen(k);
    memcpy(op->key, k, op->key_len);
    op->value = v;
    op->value_len = v ? strlen(v) : 0;
}

TEST(store_put_get_conflict_delete_generation)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct buf b;
    ASSERT_TRUE(st != NULL);
    buf_init(&b, 1 << 20);
    uint64_t g0 = store_generation(st);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", "{\"n\":1}");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_CONFLICT);
    ASSERT_EQ_INT(store_get(st, STORE_T_USERS, "ann", 3, &b, NULL, NULL), 0);
    ASSERT_EQ_MEM(b.p, b.len, "{\"n\":1}", 7);
    ASSERT_TRUE(store_generation(st) == g0 + 1);
    init_op(&op, STORE_OP_REPLACE);
    kv(&op, STORE_T_USERS, "bob", "x");
    ASSERT_EQ_INT(store_exec(st, &op), ERR_NOTFOUND);
    kv(&op, STORE_T_USERS, "ann", "{\"n\":2}");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    init_op(&op, STORE_OP_DELETE);
    kv(&op, STORE_T_USERS, "ann", NULL);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_NOTFOUND);
    ASSERT_EQ_INT(store_get(st, STORE_T_USERS, "ann", 3, &b, NULL, NULL), ERR_NOTFOUND);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_META, "generation", "x"); /* meta is not writable from outside */
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    buf_fini(&b);
    cleanup(st);
}

static void issue(struct store *st, const uint8_t *digest, const char *client, int64_t now)
{
    struct store_op op;
    init_op(&op, STORE_OP_REFRESH_ISSUE);
    op.now = now;
    memcpy(op.digest, digest, STORE_DIGEST);
    memset(op.rt.family, 0xf1, STORE_FAMILY_ID);
    op.rt.issued_at = now;
    op.rt.expires_at = now + 1000;
    op.rt.idle_expires_at = now + 100;
    snprintf(op.rt.sub, sizeof(op.rt.sub), "ann");
    snprintf(op.rt.client_id, sizeof(op.rt.client_id), "%s", client);
    snprintf(op.rt.scope, sizeof(op.rt.scope), "read write");
    store_exec(st, &op);
}

static enum store_rotate_result rotate(struct store *st, const uint8_t *old, const uint8_t *next,
                                       const char *client, int64_t now, struct store_op *op)
{
    init_op(op, STORE_OP_REFRESH_ROTATE);
    op->now = now;
    op->grace_s = 10;
    memcpy(op->old_digest, old, STORE_DIGEST);
    memcpy(op->digest, next, STORE_DIGEST);
    snprintf(op->rt.client_id, sizeof(op->rt.client_id), "%s", client);
    op->rt.idle_expires_at = now + 100;
    if (store_exec(st, op))
        return 0;
    return op->rotate_result;
}

TEST(refresh_rotation_grace_and_reuse)
{
    struct store *st = open_fresh();
    struct store_op op;
    uint8_t t1[32], t2[32], t3[32], t4[32];
    memset(t1, 1, 32);
    memset(t2, 2, 32);
    memset(t3, 3, 32);
    memset(t4, 4, 32);
    ASSERT_TRUE(st != NULL);
    issue(st, t1, "app", 1000);
    /* another client cannot use (or burn) it */
    ASSERT_EQ_INT(rotate(st, t1, t2, "evil", 1001, &op), STORE_ROTATE_INVALID);
    ASSERT_EQ_INT(rotate(st, t1, t2, "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_STR(op.rt.sub, "ann");
    ASSERT_EQ_STR(op.rt.scope, "read write");
    ASSERT_TRUE(op.rt.expires_at == 2000);
    /* retry of t1 within the grace window: the same successor, nothing revoked */
    ASSERT_EQ_INT(rotate(st, t1, t3, "app", 1005, &op), STORE_ROTATE_GRACE);
    ASSERT_EQ_MEM(op.digest, 32, t2, 32);
    /* t2 is still usable */
    ASSERT_EQ_INT(rotate(st, t2, t3, "app", 1006, &op), STORE_ROTATED);
    /* t1 again, after its successor moved on: reuse, the family is revoked */
    ASSERT_EQ_INT(rotate(st, t1, t4, "app", 1007, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT(rotate(st, t3, t4, "app", 1008, &op), STORE_ROTATE_INVALID);
    ASSERT_EQ_INT(rotate(st, t4, t1, "app", 1008, &op), STORE_ROTATE_INVALID);
    cleanup(st);
}

TEST(refresh_expiry_idle_and_absolute)
{
    struct store *st = open_fresh();
    struct store_op op;
    uint8_t a[32], b[32], c[32];
    memset(a, 0xa, 32);
    memset(b, 0xb, 32);
    memset(c, 0xc, 32);
    ASSERT_TRUE(st != NULL);
    issue(st, a, "app", 1000);
    ASSERT_EQ_INT(rotate(st, a, b, "app", 1100, &op), STORE_ROTATE_INVALID); /* idle passed */
    issue(st, b, "app", 1000);
    ASSERT_EQ_INT(rotate(st, b, c, "app", 2000, &op), STORE_ROTATE_INVALID); /* absolute */
    struct store_op p;
    init_op(&p, STORE_OP_PURGE);
    p.now = 3000;
    ASSERT_EQ_INT(store_exec(st, &p), 0);
    ASSERT_TRUE(p.purged >= 2);
    cleanup(st);
}

TEST(family_revoke_and_jti)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct buf b;
    uint8_t a[32], n[32];
    memset(a, 0x5, 32);
    memset(n, 0x6, 32);
    ASSERT_TRUE(st != NULL);
    buf_init(&b, 4096);
    issue(st, a, "app", 1000);
    init_op(&op, STORE_OP_FAMILY_REVOKE);
    memset(op.rt.family, 0xf1, STORE_FAMILY_ID);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(rotate(st, a, n, "app", 1001, &op), STORE_ROTATE_INVALID);
    init_op(&op, STORE_OP_JTI_REVOKE);
    kv(&op, STORE_T_REVOKED, "jti-1", NULL);
    op.jti_expires_at = 5000;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_get(st, STORE_T_REVOKED, "jti-1", 5, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(b.len, 8);
    buf_fini(&b);
    cleanup(st);
}

/* Writers on several threads, completions on one loop: every op completes once, durably
 * (visible after reopen), and commits carry more than one op (group commit). */
#define NTHREADS 4
#define PER      300
static struct store *gst;
static struct store_op ops[NTHREADS][PER];
static char vals[NTHREADS][PER][16];

static void *submitter(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER; i++) {
        struct store_op *op = &ops[t][i];
        char k[32];
        init_op(op, STORE_OP_PUT_NEW);
        snprintf(k, sizeof(k), "c-%d-%d", t, i);
        snprintf(vals[t][i], sizeof(vals[t][i]), "v%d", i);
        kv(op, STORE_T_CLIENTS, k, vals[t][i]);
        while (store_submit(gst, &lp, op) == ERR_LIMIT)
            usleep(100);
    }
    return NULL;
}

TEST(group_commit_from_many_threads)
{
    pthread_t th[NTHREADS];
    struct store_stats s;
    gst = open_fresh();
    ASSERT_TRUE(gst != NULL);
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    done_count = 0;
    for (int t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, submitter, (void *)(intptr_t)t);
    while (done_count < NTHREADS * PER)
        uv_run(&lp.uv, UV_RUN_ONCE);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < NTHREADS; t++)
        for (int i = 0; i < PER; i++)
            ASSERT_EQ_INT(ops[t][i].status, 0);
    store_get_stats(gst, &s);
    ASSERT_TRUE(s.ops == NTHREADS * PER);
    ASSERT_TRUE(s.commits < s.ops); /* batched */
    ASSERT_TRUE(s.max_batch > 1);
    uint64_t entries, bytes;
    ASSERT_EQ_INT(store_usage(gst, STORE_T_CLIENTS, &entries, &bytes), 0);
    ASSERT_TRUE(entries == NTHREADS * PER);
    /* reopen: everything acknowledged is there */
    char err[128];
    store_close(gst);
    ASSERT_EQ_INT(store_open_lmdb(dir, 64u << 20, &gst, err, sizeof(err)), 0);
    ASSERT_EQ_INT(store_usage(gst, STORE_T_CLIENTS, &entries, &bytes), 0);
    ASSERT_TRUE(entries == NTHREADS * PER);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    cleanup(gst);
}

TEST(refresh_record_encoding_rejects_truncation)
{
    struct store_refresh r = {0}, d;
    uint8_t enc[STORE_REFRESH_ENC_MAX];
    snprintf(r.sub, sizeof(r.sub), "user-1");
    snprintf(r.client_id, sizeof(r.client_id), "c");
    snprintf(r.scope, sizeof(r.scope), "a b");
    r.expires_at = -5;
    size_t n = store_refresh_encode(&r, enc);
    ASSERT_TRUE(n > 0);
    ASSERT_EQ_INT(store_refresh_decode(enc, n, &d), 0);
    ASSERT_EQ_STR(d.sub, "user-1");
    ASSERT_TRUE(d.expires_at == -5);
    for (size_t k = 0; k < n; k++)
        ASSERT_EQ_INT(store_refresh_decode(enc, k, &d), ERR_INVAL);
}
