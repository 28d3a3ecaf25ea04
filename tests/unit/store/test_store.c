/* SPDX-License-Identifier: MIT */
/*
 * The store contract: every CONTRACT test runs against both backends, LMDB (a fresh
 * directory) and Redis (a redis-server this test starts on a unix socket, a fresh key
 * prefix per test). Then what only one backend has: LMDB's group commit and purge, Redis's
 * TTLs, invalidation messages and outage behaviour.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <lmdb.h>

#include "core/clock.h"
#include "core/err.h"
#include "fixture.h"
#include "harness.h"
#include "loop/loop.h"
#include "policy/pol_gcra.h"
#include "policy/pol_lockout.h"
#include "store/store.h"
#include "store/store_rec.h"

static char dir[64];
/* Every Redis command's bound. Generous: a loaded machine (CI's, ASan's) can hold a
 * command or the health read past a second, and a store that saw one late answer fails its
 * operations fast until the next read (store_redis_svc.c), which is not what these tests
 * are about; the tests that are (the outage below) do not wait out a timeout. */
#define TEST_TIMEOUT_MS 5000
static struct loop lp;
static int done_count;

/* ---- backends ------------------------------------------------------------------------ */

enum backend { B_LMDB, B_REDIS, B_CLUSTER };
static enum backend backend;
static char sock[64], prefix[32], redis_url[96];
static pid_t redis_pid;
static int prefix_n;

static void redis_stop(void)
{
    fx_redis_stop(&redis_pid, sock);
}

/* Starts redis-server on a unix socket (no port to collide on) and waits until it answers. */
static int redis_start(void)
{
    if (redis_pid > 0)
        return 0;
    snprintf(sock, sizeof(sock), "/tmp/fg-store-test-%d.sock", (int)getpid());
    snprintf(redis_url, sizeof(redis_url), "unix://%s", sock);
    redis_pid = fx_redis_start(sock);
    if (redis_pid < 0)
        return -1;
    static int registered;
    if (!registered++)
        atexit(redis_stop);
    return 0;
}

/* A local cluster of three primaries with a replica each, started once for the tests. */
static struct fx_cluster cluster;
static char cluster_url[128];

static void cluster_stop(void)
{
    fx_cluster_stop(&cluster);
}

static int cluster_start(void)
{
    if (cluster_url[0])
        return 0;
    if (fx_cluster_start(&cluster, 3, 1)) {
        fprintf(stderr, "# a local Redis Cluster did not start\n");
        return -1;
    }
    atexit(cluster_stop);
    snprintf(cluster_url, sizeof(cluster_url), "redis-cluster://127.0.0.1:%d,127.0.0.1:%d",
             cluster.port[0], cluster.port[1]);
    return 0;
}

static const char *url_now(void)
{
    return backend == B_CLUSTER ? cluster_url : redis_url;
}

static struct store *open_fresh(void)
{
    struct store *st;
    char err[256], cmd[128];
    if (backend == B_CLUSTER) {
        if (cluster_start())
            return NULL;
        snprintf(prefix, sizeof(prefix), "t%d:", ++prefix_n);
        if (store_open_redis(cluster_url, prefix, TEST_TIMEOUT_MS, &st, err, sizeof(err))) {
            fprintf(stderr, "# %s\n", err);
            return NULL;
        }
        return st;
    }
    if (backend == B_REDIS) {
        if (redis_start())
            return NULL;
        snprintf(prefix, sizeof(prefix), "t%d:", ++prefix_n); /* a fresh namespace */
        if (store_open_redis(redis_url, prefix, TEST_TIMEOUT_MS, &st, err, sizeof(err))) {
            fprintf(stderr, "# %s\n", err);
            return NULL;
        }
        return st;
    }
    snprintf(dir, sizeof(dir), "/tmp/fg-store-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return NULL;
    if (store_open_lmdb(dir, 64u << 20, 0, &st, err, sizeof(err)))
        return NULL;
    return st;
}

static void cleanup(struct store *st)
{
    char cmd[128];
    store_close(st);
    if (backend != B_LMDB)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return;
}

/* CONTRACT(name) { body }: the body runs once per backend, as name_lmdb and name_redis. */
#define CONTRACT(name)                                                                             \
    static void name(void);                                                                        \
    TEST(name##_lmdb)                                                                              \
    {                                                                                              \
        backend = B_LMDB;                                                                          \
        name();                                                                                    \
    }                                                                                              \
    TEST(name##_redis)                                                                             \
    {                                                                                              \
        backend = B_REDIS;                                                                         \
        name();                                                                                    \
    }                                                                                              \
    TEST(name##_cluster)                                                                           \
    {                                                                                              \
        backend = B_CLUSTER;                                                                       \
        name();                                                                                    \
    }                                                                                              \
    static void name(void)

/* SHARED(name) { body }: what only a shared store does, as name (one Redis) and
 * name_cluster (the rules of the login guard hold when its keys are split across slots). */
#define SHARED(name)                                                                               \
    static void name##_on(void);                                                                   \
    TEST(name)                                                                                     \
    {                                                                                              \
        backend = B_REDIS;                                                                         \
        name##_on();                                                                               \
    }                                                                                              \
    TEST(name##_cluster)                                                                           \
    {                                                                                              \
        backend = B_CLUSTER;                                                                       \
        name##_on();                                                                               \
    }                                                                                              \
    static void name##_on(void)

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

CONTRACT(store_put_get_conflict_delete_generation)
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
    /* users are not cached by the servers: their writes (registrations in a launch) do not
     * move the generation that makes every thread reload its clients and keys */
    ASSERT_TRUE(store_generation(st) == g0);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_CLIENTS, "app", "{}");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_TRUE(store_generation(st) == g0 + 1);
    /* what loop threads poll, without a round trip, follows within a few hundred ms */
    int polls = 0;
    while (store_generation_recent(st) != g0 + 1 && polls++ < 100)
        usleep(10000);
    ASSERT_TRUE(store_generation_recent(st) == g0 + 1);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", "{\"n\":1}");
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

/* A digest of `v` repeated, in the group of subject "ann" (as the tokens of ann are: a
 * cluster keeps a user's tokens, families and sessions generation in one slot). */
static void dig(uint8_t d[STORE_DIGEST], int v)
{
    memset(d, v, STORE_DIGEST);
    store_group_put(d, store_group_of("ann"));
}

/* A family id of `v` repeated, in ann's group. */
static void fam(uint8_t f[STORE_FAMILY_ID], int v)
{
    memset(f, v, STORE_FAMILY_ID);
    store_group_put(f, store_group_of("ann"));
}

/* A new family (id: `family` repeated) for subject "ann": its first token under digest,
 * living `life` seconds in all and `idle` unused, stamped with sessions generation gen. */
static int issue_family(struct store *st, const uint8_t *digest, uint8_t family, int64_t now,
                        int64_t life, int64_t idle, uint64_t gen)
{
    struct store_op op;
    init_op(&op, STORE_OP_REFRESH_ISSUE);
    op.now = now;
    memcpy(op.digest, digest, STORE_DIGEST);
    fam(op.rt.family, family);
    op.rt.issued_at = now;
    op.rt.expires_at = now + life;
    op.rt.idle_expires_at = now + idle;
    op.rt.gen = gen;
    snprintf(op.rt.sub, sizeof(op.rt.sub), "ann");
    snprintf(op.rt.client_id, sizeof(op.rt.client_id), "app");
    snprintf(op.rt.scope, sizeof(op.rt.scope), "read write");
    return store_exec(st, &op);
}

static void issue(struct store *st, const uint8_t *digest, int64_t now)
{
    issue_family(st, digest, 0xf1, now, 1000, 100, 0);
}

static void rotate_op(struct store_op *op, const uint8_t *old, const uint8_t *next,
                      const char *client, int64_t now)
{
    init_op(op, STORE_OP_REFRESH_ROTATE);
    op->now = now;
    op->grace_s = 10;
    memcpy(op->old_digest, old, STORE_DIGEST);
    memcpy(op->digest, next, STORE_DIGEST);
    snprintf(op->rt.client_id, sizeof(op->rt.client_id), "%s", client);
    op->rt.idle_expires_at = now + 100;
}

static enum store_rotate_result rotate(struct store *st, const uint8_t *old, const uint8_t *next,
                                       const char *client, int64_t now, struct store_op *op)
{
    rotate_op(op, old, next, client, now);
    if (store_exec(st, op))
        return 0;
    return op->rotate_result;
}

CONTRACT(refresh_rotation_grace_and_reuse)
{
    struct store *st = open_fresh();
    struct store_op op;
    uint8_t t1[32], t2[32], t3[32], t4[32];
    dig(t1, 1);
    dig(t2, 2);
    dig(t3, 3);
    dig(t4, 4);
    ASSERT_TRUE(st != NULL);
    issue(st, t1, 1000);
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

CONTRACT(refresh_expiry_idle_and_absolute)
{
    struct store *st = open_fresh();
    struct store_op op;
    uint8_t a[32], b[32], c[32];
    dig(a, 0xa);
    dig(b, 0xb);
    dig(c, 0xc);
    ASSERT_TRUE(st != NULL);
    issue(st, a, 1000);
    ASSERT_EQ_INT(rotate(st, a, b, "app", 1100, &op), STORE_ROTATE_INVALID); /* idle passed */
    issue(st, b, 1000);
    ASSERT_EQ_INT(rotate(st, b, c, "app", 2000, &op), STORE_ROTATE_INVALID); /* absolute */
    struct store_op p;
    init_op(&p, STORE_OP_PURGE);
    p.now = 3000;
    ASSERT_EQ_INT(store_exec(st, &p), 0);
    /* LMDB deletes what expired; on Redis the keys carry TTLs (redis_ttls below) */
    ASSERT_TRUE(backend != B_LMDB ? p.purged == 0 : p.purged >= 2);
    cleanup(st);
}

CONTRACT(family_revoke_and_jti)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct buf b;
    uint8_t a[32], n[32];
    dig(a, 0x5);
    dig(n, 0x6);
    ASSERT_TRUE(st != NULL);
    buf_init(&b, 4096);
    issue(st, a, 1000);
    init_op(&op, STORE_OP_FAMILY_REVOKE);
    fam(op.rt.family, 0xf1);
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

/* Ending a user's sessions (store.h, "Sessions"): a family that began under an older
 * generation is refused at its next rotation, grace retries included, and a family begun
 * under the new one works. */
CONTRACT(sessions_generation_ends_families)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct buf b;
    uint8_t a[32], n1[32], n2[32], c[32], d[32];
    dig(a, 0x21);
    dig(n1, 0x22);
    dig(n2, 0x23);
    dig(c, 0x24);
    dig(d, 0x25);
    ASSERT_TRUE(st != NULL);
    buf_init(&b, 4096);
    issue(st, a, 1000); /* generation 0, as every record before sessions */
    ASSERT_EQ_INT(rotate(st, a, n1, "app", 1001, &op), STORE_ROTATED);
    ASSERT_TRUE(op.rt.gen == 0);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann-name", "v1");
    snprintf(op.sess_sub, sizeof(op.sess_sub), "ann");
    op.sess_gen = 1;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_get(st, STORE_T_SESSIONS, "ann", 3, &b, NULL, NULL), 0);
    ASSERT_EQ_MEM(b.p, b.len, "1", 1);
    /* the live successor and a grace retry of its predecessor are both refused */
    ASSERT_EQ_INT(rotate(st, n1, n2, "app", 1002, &op), STORE_ROTATE_INVALID);
    ASSERT_EQ_INT(rotate(st, a, n2, "app", 1002, &op), STORE_ROTATE_INVALID);
    /* a family begun under generation 1 rotates, and its successor keeps the generation */
    ASSERT_EQ_INT(issue_family(st, c, 0xf2, 1003, 1000, 100, 1), 0);
    ASSERT_EQ_INT(rotate(st, c, d, "app", 1004, &op), STORE_ROTATED);
    ASSERT_TRUE(op.rt.gen == 1);
    /* a delete can move it too */
    init_op(&op, STORE_OP_DELETE);
    kv(&op, STORE_T_USERS, "ann-name", NULL);
    snprintf(op.sess_sub, sizeof(op.sess_sub), "ann");
    op.sess_gen = 2;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(rotate(st, d, n2, "app", 1005, &op), STORE_ROTATE_INVALID);
    buf_fini(&b);
    cleanup(st);
}

/* REPLACE and DELETE with expect are compare-and-swaps: a stale expectation changes nothing. */
CONTRACT(replace_and_delete_with_expect)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct buf b;
    ASSERT_TRUE(st != NULL);
    buf_init(&b, 4096);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "bob", "v1");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    init_op(&op, STORE_OP_REPLACE);
    kv(&op, STORE_T_USERS, "bob", "v2");
    op.expect = "v1";
    op.expect_len = 2;
    snprintf(op.sess_sub, sizeof(op.sess_sub), "bob-id");
    op.sess_gen = 7;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    /* the same swap again: the value is no longer v1, nothing is written */
    kv(&op, STORE_T_USERS, "bob", "v3");
    op.sess_gen = 8;
    ASSERT_EQ_INT(store_exec(st, &op), ERR_CONFLICT);
    ASSERT_EQ_INT(store_get(st, STORE_T_USERS, "bob", 3, &b, NULL, NULL), 0);
    ASSERT_EQ_MEM(b.p, b.len, "v2", 2);
    ASSERT_EQ_INT(store_get(st, STORE_T_SESSIONS, "bob-id", 6, &b, NULL, NULL), 0);
    ASSERT_EQ_MEM(b.p, b.len, "7", 1);
    init_op(&op, STORE_OP_DELETE);
    kv(&op, STORE_T_USERS, "bob", NULL);
    op.expect = "v1";
    op.expect_len = 2;
    ASSERT_EQ_INT(store_exec(st, &op), ERR_CONFLICT);
    op.expect = "v2";
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_NOTFOUND);
    /* an expectation on an insert is a caller's mistake */
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "bob", "v1");
    op.expect = "v1";
    op.expect_len = 2;
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    buf_fini(&b);
    cleanup(st);
}

static long long redis_int(const char *fmt, const char *arg);

/* Records that end by themselves (authorization codes, #13): the expiry travels in the
 * value; a compare-and-swap marks one used exactly once; past the end the record is gone
 * (LMDB: at the next purge; Redis: the key's EXPIREAT), and nothing indexes it. */
CONTRACT(expiring_records_end_by_themselves)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct buf v1, v2, gone, b;
    int64_t now = (int64_t)time(NULL), exp;
    const char *pl;
    size_t pn;
    ASSERT_TRUE(st != NULL);
    buf_init(&v1, 4096);
    buf_init(&v2, 4096);
    buf_init(&gone, 4096);
    buf_init(&b, 4096);
    ASSERT_EQ_INT(store_exp_wrap(now + 600, "{\"used\":false}", 14, &v1), 0);
    ASSERT_EQ_INT(store_exp_wrap(now + 600, "{\"used\":true}", 13, &v2), 0);
    ASSERT_EQ_INT(store_exp_wrap(now - 10, "{}", 2, &gone), 0);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_CODES, "c1", NULL);
    op.value = v1.p;
    op.value_len = v1.len;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_CONFLICT);
    ASSERT_EQ_INT(store_get(st, STORE_T_CODES, "c1", 2, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(store_exp_unwrap(b.p, b.len, &exp, &pl, &pn), 0);
    ASSERT_EQ_INT(exp, now + 600);
    ASSERT_EQ_MEM(pl, pn, "{\"used\":false}", 14);
    /* used once: the swap from the unused record succeeds once */
    init_op(&op, STORE_OP_REPLACE);
    kv(&op, STORE_T_CODES, "c1", NULL);
    op.value = v2.p;
    op.value_len = v2.len;
    op.expect = v1.p;
    op.expect_len = v1.len;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_CONFLICT);
    if (backend == B_REDIS) {
        char key[128];
        snprintf(key, sizeof(key), "%scode:c1", prefix);
        long long t = redis_int("TTL %s", key);
        ASSERT_TRUE(t > 590 && t <= 600); /* (kept by the swap) */
        snprintf(key, sizeof(key), "%sidx:code", prefix);
        ASSERT_EQ_INT((int)redis_int("EXISTS %s", key), 0); /* not indexed */
    }
    /* one already over */
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_CODES, "c2", NULL);
    op.value = gone.p;
    op.value_len = gone.len;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    if (backend == B_LMDB) {
        init_op(&op, STORE_OP_PURGE);
        op.now = now;
        ASSERT_EQ_INT(store_exec(st, &op), 0);
    }
    ASSERT_EQ_INT(store_get(st, STORE_T_CODES, "c2", 2, &b, NULL, NULL), ERR_NOTFOUND);
    ASSERT_EQ_INT(store_get(st, STORE_T_CODES, "c1", 2, &b, NULL, NULL), 0); /* not yet */
    ASSERT_EQ_INT(store_exp_unwrap("short", 5, &exp, &pl, &pn), ERR_INVAL);
    buf_fini(&v1);
    buf_fini(&v2);
    buf_fini(&gone);
    buf_fini(&b);
    cleanup(st);
}

/* The absolute lifetime holds on its own: an idle expiry past it does not extend the family
 * (issue #11 item 20: the idle check refused every earlier case first). */
CONTRACT(refresh_absolute_lifetime_beats_idle)
{
    struct store *st = open_fresh();
    struct store_op op;
    uint8_t a[32], b2[32], c[32];
    dig(a, 0x31);
    dig(b2, 0x32);
    dig(c, 0x33);
    ASSERT_TRUE(st != NULL);
    /* idle 8000 s: longer than the family's 500, so the absolute limit must win */
    ASSERT_EQ_INT(issue_family(st, a, 0xf3, 1000, 500, 8000, 0), 0);
    ASSERT_EQ_INT(rotate(st, a, b2, "app", 1499, &op), STORE_ROTATED);
    ASSERT_TRUE(op.rt.idle_expires_at <= 1500); /* the successor's idle expiry is capped */
    ASSERT_EQ_INT(rotate(st, b2, c, "app", 1500, &op), STORE_ROTATE_INVALID);
    cleanup(st);
}

struct seen {
    int n;
    int found[2];
};

static int on_refresh(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct seen *sn = ctx;
    struct store_refresh r;
    const uint8_t *k = key;
    if (klen != STORE_DIGEST || store_refresh_decode(val, vlen, &r) || strcmp(r.sub, "ann"))
        return ERR_INVAL;
    if (k[2] == 0x71 || k[2] == 0x72) /* (bytes 0 and 1: the group) */
        sn->found[k[2] - 0x71]++;
    sn->n++;
    return ERR_OK;
}

static int on_user(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct seen *sn = ctx;
    (void)val;
    if (klen == 3 && strncmp((const char *)key, "ann", 3) == 0 && vlen == 2)
        sn->found[0]++;
    sn->n++;
    return ERR_OK;
}

/* Listing: every record of a table, with its key as written (digests as bytes). */
CONTRACT(each_lists_users_and_refresh_tokens)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct seen sn = {0};
    uint8_t a[32], b[32];
    ASSERT_TRUE(st != NULL);
    dig(a, 0x71);
    dig(b, 0x72);
    issue(st, a, 1000);
    issue(st, b, 1000);
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_refresh, &sn), 0);
    ASSERT_EQ_INT(sn.n, 2);
    ASSERT_TRUE(sn.found[0] == 1 && sn.found[1] == 1);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", "{}");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "bob", "{}");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    init_op(&op, STORE_OP_DELETE);
    kv(&op, STORE_T_USERS, "bob", NULL);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    memset(&sn, 0, sizeof(sn));
    ASSERT_EQ_INT(store_each(st, STORE_T_USERS, on_user, &sn), 0);
    ASSERT_EQ_INT(sn.n, 1);
    ASSERT_EQ_INT(sn.found[0], 1);
    uint64_t entries, bytes;
    ASSERT_EQ_INT(store_usage(st, STORE_T_USERS, &entries, &bytes), 0);
    ASSERT_TRUE(entries == 1);
    cleanup(st);
}

static struct buf async_out;

/* A read with an op: done at once (LMDB) or later on the loop (Redis); same answers. */
static int get_on_loop(struct store *st, const char *key, struct store_op *op)
{
    memset(op, 0, sizeof(*op));
    op->on_done = on_done;
    done_count = 0;
    int rc = store_get(st, STORE_T_USERS, key, strlen(key), &async_out, &lp, op);
    if (rc != ERR_AGAIN)
        return rc;
    while (done_count < 1)
        uv_run(&lp.uv, UV_RUN_ONCE);
    return op->status;
}

CONTRACT(get_with_an_op)
{
    struct store *st = open_fresh();
    struct store_op op;
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    buf_init(&async_out, 4096);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", "{\"n\":2}");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(get_on_loop(st, "ann", &op), 0);
    ASSERT_EQ_MEM(async_out.p, async_out.len, "{\"n\":2}", 7);
    ASSERT_EQ_INT(get_on_loop(st, "nobody", &op), ERR_NOTFOUND);
    buf_fini(&async_out);
    store_loop_release(st, &lp);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
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

CONTRACT(group_commit_from_many_threads)
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
    if (backend == B_LMDB) {
        ASSERT_TRUE(s.commits < s.ops); /* batched */
        ASSERT_TRUE(s.max_batch > 1);
    }
    uint64_t entries, bytes;
    ASSERT_EQ_INT(store_usage(gst, STORE_T_CLIENTS, &entries, &bytes), 0);
    ASSERT_TRUE(entries == NTHREADS * PER);
    /* reopen: everything acknowledged is there */
    char err[128];
    store_loop_release(gst, &lp);
    store_close(gst);
    if (backend != B_LMDB)
        ASSERT_EQ_INT(store_open_redis(url_now(), prefix, TEST_TIMEOUT_MS, &gst, err, sizeof(err)),
                      0);
    else
        ASSERT_EQ_INT(store_open_lmdb(dir, 64u << 20, 0, &gst, err, sizeof(err)), 0);
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
    r.gen = 42;
    size_t n = store_refresh_encode(&r, enc);
    ASSERT_TRUE(n > 0);
    ASSERT_EQ_INT(store_refresh_decode(enc, n, &d), 0);
    ASSERT_EQ_STR(d.sub, "user-1");
    ASSERT_TRUE(d.expires_at == -5);
    ASSERT_TRUE(d.gen == 42);
    /* a version-1 record (written before sessions generations) reads as generation 0 */
    uint8_t v1[STORE_REFRESH_ENC_MAX];
    size_t fixed = 2 + STORE_FAMILY_ID + STORE_DIGEST + 32;
    memcpy(v1, enc, fixed);
    memcpy(v1 + fixed, enc + fixed + 8, n - fixed - 8);
    v1[0] = 1;
    ASSERT_EQ_INT(store_refresh_decode(v1, n - 8, &d), 0);
    ASSERT_TRUE(d.gen == 0);
    ASSERT_EQ_STR(d.scope, "a b");
    for (size_t k = 0; k < n; k++)
        ASSERT_EQ_INT(store_refresh_decode(enc, k, &d), ERR_INVAL);
    /* a NUL inside a string is refused, never read as a shorter one ("user-1" as "user") */
    size_t at = fixed + 8 + 2 + 4;
    ASSERT_TRUE(enc[at] == '-');
    enc[at] = '\0';
    ASSERT_EQ_INT(store_refresh_decode(enc, n, &d), ERR_INVAL);
}

/* ---- Redis only ---------------------------------------------------------------------- */

static long long redis_int(const char *fmt, const char *arg)
{
    redisContext *c = redisConnectUnix(sock);
    long long v = -99;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, fmt, arg);
        if (r && r->type == REDIS_REPLY_INTEGER)
            v = r->integer;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return v;
}

/* Keys expire with what they hold: a live token at its idle expiry, a rotated one and the
 * family at the absolute expiry (reuse is detected until then), a revoked id at its exp. */
TEST(redis_ttls)
{
    struct store *st;
    struct store_op op;
    uint8_t a[32], b[32];
    char key[128];
    backend = B_REDIS;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    memset(a, 0xa1, sizeof(a)); /* (one Redis: no group needed) */
    memset(b, 0xb2, sizeof(b));
    issue(st, a, 1000); /* idle 100 s, absolute 1000 s */
    snprintf(key, sizeof(key), "%srt:%s", prefix,
             "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
    long long t = redis_int("TTL %s", key);
    ASSERT_TRUE(t > 90 && t <= 100);
    ASSERT_EQ_INT(rotate(st, a, b, "app", 1010, &op), STORE_ROTATED);
    t = redis_int("TTL %s", key); /* rotated: kept until the absolute expiry */
    ASSERT_TRUE(t > 980 && t <= 990);
    uint8_t f[STORE_FAMILY_ID];
    char fhex[2 * STORE_FAMILY_ID + 1];
    fam(f, 0xf1); /* (its first two bytes the group: one id on every backend) */
    for (int i = 0; i < STORE_FAMILY_ID; i++)
        snprintf(fhex + 2 * i, 3, "%02x", f[i]);
    snprintf(key, sizeof(key), "%sfam:%s", prefix, fhex);
    t = redis_int("TTL %s", key);
    ASSERT_TRUE(t > 990 && t <= 1000);
    init_op(&op, STORE_OP_JTI_REVOKE);
    kv(&op, STORE_T_REVOKED, "jti-9", NULL);
    op.now = 1000;
    op.jti_expires_at = 1300;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    snprintf(key, sizeof(key), "%sjti:jti-9", prefix);
    t = redis_int("TTL %s", key);
    ASSERT_TRUE(t > 290 && t <= 300);
    cleanup(st);
}

/* The Redis key of a refresh token's record on one Redis (no group tag). */
static void redis_rt_key(char *key, size_t cap, const uint8_t *digest)
{
    int k = snprintf(key, cap, "%srt:", prefix);
    for (int i = 0; i < STORE_DIGEST; i++)
        k += snprintf(key + k, cap - (size_t)k, "%02x", digest[i]);
}

/* A refresh record as the store wrote it before its records were strings: a hash of 11
 * fields (f s n i e d r u c o g, the digests in hex, the times in seconds), expiring. */
static void redis_legacy_refresh(const uint8_t *digest, int state, const uint8_t *succ,
                                 const char *gen)
{
    char key[160], f[2 * STORE_FAMILY_ID + 1], n[2 * STORE_DIGEST + 1] = "";
    uint8_t fm[STORE_FAMILY_ID];
    fam(fm, 0xf1);
    redis_rt_key(key, sizeof(key), digest);
    for (int i = 0; i < STORE_FAMILY_ID; i++)
        snprintf(f + 2 * i, 3, "%02x", fm[i]);
    for (int i = 0; succ && i < STORE_DIGEST; i++)
        snprintf(n + 2 * i, 3, "%02x", succ[i]);
    redisContext *c = redisConnectUnix(sock);
    ASSERT_TRUE(c && !c->err);
    redisReply *r = redisCommand(c,
                                 "HSET %s f %s s %d n %s i 1000 e 2000 d 1100 r %s u ann "
                                 "c app o %s",
                                 key, f, state, n, state == 2 ? "1005" : "0", "read write");
    ASSERT_TRUE(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    if (gen)
        freeReplyObject(redisCommand(c, "HSET %s g %s", key, gen));
    freeReplyObject(redisCommand(c, "EXPIRE %s 1000", key));
    redisFree(c);
}

/* Records written as hashes before are read, listed and rotated as the strings written now
 * (an upgrade signs no one out); the record a rotation rewrites becomes a string. */
TEST(redis_reads_and_rotates_refresh_records_written_as_hashes)
{
    struct store *st;
    struct store_op op;
    struct store_refresh r;
    struct seen sn = {0};
    struct buf b;
    uint8_t x[32], old[32], next[32], spent[32], other[32];
    backend = B_REDIS;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    dig(x, 0x71);
    dig(old, 0x72);
    dig(next, 0x74);
    dig(spent, 0x75);
    dig(other, 0x76);
    ASSERT_EQ_INT(issue_family(st, x, 0xf1, 1000, 1000, 100, 0), 0); /* the family */
    redis_legacy_refresh(old, 1, NULL, NULL);                        /* before generations */
    redis_legacy_refresh(spent, 2, other, "0");
    buf_init(&b, 256);
    ASSERT_EQ_INT(store_get(st, STORE_T_REFRESH, old, 32, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(store_refresh_decode((const uint8_t *)b.p, b.len, &r), 0);
    uint8_t fm[STORE_FAMILY_ID];
    fam(fm, 0xf1);
    ASSERT_TRUE(memcmp(r.family, fm, sizeof(fm)) == 0);
    ASSERT_EQ_INT(r.state, STORE_RT_LIVE);
    ASSERT_TRUE(r.issued_at == 1000 && r.expires_at == 2000 && r.idle_expires_at == 1100);
    ASSERT_TRUE(r.rotated_at == 0 && r.gen == 0);
    ASSERT_EQ_STR(r.sub, "ann");
    ASSERT_EQ_STR(r.client_id, "app");
    ASSERT_EQ_STR(r.scope, "read write");
    ASSERT_EQ_INT(store_get(st, STORE_T_REFRESH, spent, 32, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(store_refresh_decode((const uint8_t *)b.p, b.len, &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_TRUE(memcmp(r.successor, other, 32) == 0 && r.rotated_at == 1005);
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_refresh, &sn), 0);
    ASSERT_EQ_INT(sn.n, 3); /* x (a string), old and spent (hashes) */
    ASSERT_TRUE(sn.found[0] == 1 && sn.found[1] == 1);
    /* rotated: the old record is a string now, spent, naming its successor */
    ASSERT_EQ_INT(rotate(st, old, next, "app", 1010, &op), STORE_ROTATED);
    ASSERT_EQ_STR(op.rt.scope, "read write");
    ASSERT_EQ_INT(op.rt.expires_at, 2000);
    ASSERT_EQ_INT(store_get(st, STORE_T_REFRESH, old, 32, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(store_refresh_decode((const uint8_t *)b.p, b.len, &r), 0);
    ASSERT_TRUE(r.state == STORE_RT_ROTATED && memcmp(r.successor, next, 32) == 0);
    ASSERT_EQ_INT(r.rotated_at, 1010);
    char key[160];
    redis_rt_key(key, sizeof(key), old);
    ASSERT_EQ_INT((int)redis_int("STRLEN %s", key), (int)b.len);
    /* within the grace window: the successor again; the legacy spent one past it: reuse */
    ASSERT_EQ_INT(rotate(st, old, other, "app", 1015, &op), STORE_ROTATE_GRACE);
    ASSERT_TRUE(memcmp(op.digest, next, 32) == 0);
    ASSERT_EQ_INT(rotate(st, spent, other, "app", 1050, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT(rotate(st, next, other, "app", 1051, &op), STORE_ROTATE_INVALID);
    buf_fini(&b);
    cleanup(st);
}

static _Atomic int inval_count, inval_all;
static char inval_last[64];

static void on_inval(void *arg, const char *msg, size_t len)
{
    (void)arg;
    if (len == 1 && msg[0] == '*') {
        atomic_fetch_add(&inval_all, 1);
        return;
    }
    snprintf(inval_last, sizeof(inval_last), "%.*s", (int)len, msg);
    atomic_fetch_add(&inval_count, 1);
}

static int wait_for(_Atomic int *v, int want, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (atomic_load(v) >= want)
            return 1;
        usleep(1000);
    }
    return 0;
}

/* A revocation reaches every instance's subscriber (here: a second store on the same
 * Redis and prefix), within 100 ms. */
/* On a cluster a rotation reads its family and its user's sessions generation from keys it
 * finds in the token's record, which Redis cannot check while their slot moves: a live
 * token whose family is not there is a slot in motion, answered as a store failure (a 503,
 * after the retries), never as an invalid token. */
TEST(a_live_token_without_its_family_is_a_slot_in_motion_on_a_cluster)
{
    struct store *st;
    struct store_op op;
    uint8_t t1[32], t2[32], f[STORE_FAMILY_ID];
    char key[128], cmd[256], hex[2 * STORE_FAMILY_ID + 1];
    backend = B_CLUSTER;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    dig(t1, 0x31);
    dig(t2, 0x32);
    issue(st, t1, 1000);
    fam(f, 0xf1);
    for (int i = 0; i < STORE_FAMILY_ID; i++)
        snprintf(hex + 2 * i, 3, "%02x", f[i]);
    snprintf(key, sizeof(key), "%sfam:{g%04x}%s", prefix, store_group_of("ann"), hex);
    snprintf(cmd, sizeof(cmd), "redis-cli -c -p %d DEL '%s'", cluster.port[0], key);
    char out[64];
    ASSERT_EQ_INT(fx_sh(cmd, out, sizeof(out)), 0);
    ASSERT_TRUE(strncmp(out, "1", 1) == 0); /* (it was there) */
    init_op(&op, STORE_OP_REFRESH_ROTATE);
    op.now = 1001;
    memcpy(op.old_digest, t1, STORE_DIGEST);
    memcpy(op.digest, t2, STORE_DIGEST);
    snprintf(op.rt.client_id, sizeof(op.rt.client_id), "app");
    op.rt.idle_expires_at = 1100;
    ASSERT_EQ_INT(store_exec(st, &op), ERR_BACKEND);
    cleanup(st);
}

SHARED(redis_revocation_is_published)
{
    struct store *st;
    struct store_op op;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    atomic_store(&inval_count, 0);
    atomic_store(&inval_all, 0);
    store_on_invalidate(st, on_inval, NULL);
    /* the subscription is up once the service thread flushed caches after subscribing */
    ASSERT_TRUE(wait_for(&inval_all, 1, 3000));
    init_op(&op, STORE_OP_JTI_REVOKE);
    kv(&op, STORE_T_REVOKED, "jti-pub", NULL);
    op.now = 1000;
    op.jti_expires_at = 1300;
    uint64_t t0 = (uint64_t)clock();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_TRUE(wait_for(&inval_count, 1, 1000));
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)t0;
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    ASSERT_TRUE(ms < 100);
    ASSERT_EQ_STR(inval_last, "jti-pub");
    cleanup(st);
}

/* Leases: one holder at a time. Pins: every instance must agree. */
TEST(redis_lease_and_pin)
{
    struct store *st;
    backend = B_REDIS;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(store_lease(st, "rotate", 60000), 0);
    ASSERT_EQ_INT(store_lease(st, "rotate", 60000), 0); /* ours: renewed */
    char key[96];
    snprintf(key, sizeof(key), "%slease:rotate", prefix);
    redisContext *c = redisConnectUnix(sock);
    ASSERT_TRUE(c && !c->err);
    freeReplyObject(redisCommand(c, "SET %s other-instance", key));
    redisFree(c);
    ASSERT_EQ_INT(store_lease(st, "rotate", 60000), ERR_CONFLICT);
    ASSERT_EQ_INT(store_pin(st, "key", "abc", 3), 0);
    ASSERT_EQ_INT(store_pin(st, "key", "abc", 3), 0);
    ASSERT_EQ_INT(store_pin(st, "key", "abd", 3), ERR_CONFLICT);
    cleanup(st);
}

/* Serving instances count each other: a beat a second in PREFIX"members", by Redis's clock;
 * one that stopped beating is dropped, one that closes leaves at once. */
TEST(redis_members)
{
    struct store *st;
    char key[96];
    backend = B_REDIS;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(store_members(st), 1);
    snprintf(key, sizeof(key), "%smembers", prefix);
    redisContext *c = redisConnectUnix(sock);
    ASSERT_TRUE(c && !c->err);
    redisReply *t = redisCommand(c, "TIME");
    ASSERT_TRUE(t && t->type == REDIS_REPLY_ARRAY && t->elements == 2);
    long long now_ms = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    /* another live instance, and one whose last beat lapsed */
    freeReplyObject(
        redisCommand(c, "ZADD %s %lld other %lld gone", key, now_ms + 60000, now_ms - 1));
    ASSERT_EQ_INT(store_members(st), 1); /* the CLI and tests do not join: no beat */
    store_join(st);
    int n = 0;
    for (int i = 0; i < 300 && (n = (int)store_members(st)) != 2; i++)
        usleep(10000);
    ASSERT_EQ_INT(n, 2); /* us and "other"; "gone" dropped */
    ASSERT_EQ_INT(redis_int("ZCARD %s", key), 2);
    store_close(st);
    ASSERT_EQ_INT(redis_int("ZCARD %s", key), 1); /* we left */
    redisFree(c);
}

/* The shared login guard: an attempt reserved by an instance that then died (kill -9 while
 * hashing) is never settled; it must not keep counting against the user for the whole
 * lockout window, which every new attempt extends. */
TEST(redis_guard_reservation_of_a_dead_instance_lapses)
{
    struct store *st;
    struct store_guard g, g2, g3;
    int v = -1;
    backend = B_REDIS;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    memset(&g, 0, sizeof(g));
    snprintf(g.key[0], sizeof(g.key[0]), "%032x", 0xdead); /* user */
    snprintf(g.key[1], sizeof(g.key[1]), "%032x", 0xbeef); /* ip (off) */
    snprintf(g.key[2], sizeof(g.key[2]), "%032x", 0xf00d); /* pair (off) */
    snprintf(g.rl_key[0], sizeof(g.rl_key[0]), "login:x");
    snprintf(g.rl_key[1], sizeof(g.rl_key[1]), "login-user:x");
    g.lock[0] = (struct store_guard_rule){1, 1000, 10000, 600000}; /* one attempt at a time */
    int64_t now = 1000000000;
    g2 = g;
    g3 = g;
    ASSERT_EQ_INT(store_guard_begin(st, &g, now, &v), 0);
    ASSERT_EQ_INT(v, STORE_GUARD_OK); /* reserved, and its instance dies: never settled */
    ASSERT_EQ_INT(store_guard_begin(st, &g2, now + 5000, &v), 0);
    ASSERT_EQ_INT(v, STORE_GUARD_BUSY); /* in flight: counts, but is not a failure */
    ASSERT_TRUE(g2.retry_ms > 0);
    ASSERT_EQ_INT(store_guard_begin(st, &g3, now + 61000, &v), 0);
    ASSERT_EQ_INT(v, STORE_GUARD_OK); /* a minute without a new attempt: it lapsed */
    store_guard_end(st, &g3, 1, now + 61100);
    cleanup(st);
}

/* ---- one rule, two implementations (#12 item 2) ---------------------------------------
 * On a shared store the brute-force lockout and the login rates are decided inside Redis's
 * script (atomic across instances); alone, by policy/pol_lockout.c and pol_gcra.c. The same
 * steps go through both and must get the same verdicts: a change to one that is not made to
 * the other fails here. */

struct gstep {
    int64_t t;        /* seconds */
    const char *user; /* as typed */
    const char *ip;
    char act;        /* 'F' fail, 'S' succeed, 'H' hold (begun, settled by a later 'E'), 'E' */
    int verdict;     /* expected: POL_ATTEMPT_* (= STORE_GUARD_OK, _LOCKED, _BUSY) */
    unsigned locked; /* expected POL_LOCKED_* of the settlement */
};

static void guard_of(struct store_guard *g, const char *user, const char *ip)
{
    static const struct store_guard_rule rules[3] = {
        {3, 60000, 240000, 600000}, /* user: 3 failures, 60 s doubling to 240 s, 600 s window */
        {5, 60000, 240000, 600000}, /* ip */
        {2, 60000, 240000, 600000}, /* pair */
    };
    memset(g, 0, sizeof(*g));
    snprintf(g->key[0], sizeof(g->key[0]), "u-%s", user);
    snprintf(g->key[1], sizeof(g->key[1]), "i-%s", ip);
    snprintf(g->key[2], sizeof(g->key[2]), "p-%s-%s", user, ip);
    snprintf(g->rl_key[0], sizeof(g->rl_key[0]), "login:%s", ip);
    snprintf(g->rl_key[1], sizeof(g->rl_key[1]), "login-user:%s", user);
    memcpy(g->lock, rules, sizeof(rules));
}

SHARED(lockout_rules_agree_in_c_and_in_redis)
{
    static const struct gstep steps[] = {
        {0, "ann", "1", 'F', 0, 0},
        {1, "ann", "1", 'F', 0, 4}, /* the pair's second failure locks the pair */
        {2, "ann", "1", 'S', 1, 0}, /* locked: refused before any hash */
        {3, "ann", "2", 'F', 0, 1}, /* the user's third failure locks the user */
        {4, "ann", "3", 'S', 1, 0},
        {65, "ann", "3", 'S', 0, 0}, /* the lock (60 s) is over; a success clears */
        {66, "bob", "1", 'F', 0, 0},
        {67, "bob", "1", 'F', 0, 4},
        {68, "cat", "1", 'F', 0, 2}, /* the address's fifth failure locks the address */
        {69, "dan", "1", 'S', 1, 0},
        {130, "dan", "1", 'F', 0, 0},
        {131, "ann", "4", 'F', 0, 0},
        {132, "ann", "5", 'F', 0, 0},
        {133, "ann", "6", 'F', 0, 1}, /* the user's second lock: 120 s */
        {200, "ann", "7", 'S', 1, 0},
        {254, "ann", "7", 'S', 0, 0},
        {1000, "eve", "8", 'F', 0, 0},
        {1700, "eve", "9", 'F', 0, 0}, /* 700 s later: the first failure is forgotten */
        {1701, "eve", "10", 'F', 0, 0},
        {1702, "eve", "11", 'F', 0, 1},
        {2000, "fay", "12", 'H', 0, 0}, /* three attempts in flight fill the user's limit */
        {2000, "fay", "13", 'H', 0, 0},
        {2000, "fay", "14", 'H', 0, 0},
        {2000, "fay", "15", 'S', 2, 0}, /* busy: never called a wrong password */
        {2001, "fay", "12", 'E', 0, 0},
        {2001, "fay", "13", 'E', 0, 0},
        {2001, "fay", "14", 'E', 0, 1}, /* settled as failures: the third locks */
        {2002, "fay", "16", 'S', 1, 0},
    };
    struct pol_lockout_cfg lc = {.user = {3, 60, 240, 600, 0, 0},
                                 .ip = {5, 60, 240, 600, 0, 0},
                                 .pair = {2, 60, 240, 600, 0, 0},
                                 .entries = 4096};
    struct pol_lockout *l = pol_lockout_new(&lc);
    struct pol_attempt held_c[8];
    struct store_guard held_r[8];
    int nheld = 0;
    const int64_t base_ms = 1700000000000;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct gstep *x = &steps[i];
        struct pol_attempt a;
        struct store_guard g;
        int64_t retry;
        int vr = -1;
        char where[64];
        snprintf(where, sizeof(where), "step %zu (t=%lld %s@%s)", i, (long long)x->t, x->user,
                 x->ip);
        if (x->act == 'E') { /* settle the oldest held attempt as a failure */
            unsigned lc_ = pol_lockout_end(l, &held_c[0], false, x->t);
            unsigned lr = store_guard_end(st, &held_r[0], 0, base_ms + x->t * 1000);
            memmove(held_c, held_c + 1, (size_t)--nheld * sizeof(held_c[0]));
            memmove(held_r, held_r + 1, (size_t)nheld * sizeof(held_r[0]));
            if (lc_ != x->locked || lr != x->locked)
                harness_fail(__FILE__, __LINE__, "%s", where);
            continue;
        }
        int vc = pol_lockout_begin(l, str_c(x->user), str_c(x->ip), x->t, &a, &retry);
        guard_of(&g, x->user, x->ip);
        ASSERT_EQ_INT(store_guard_begin(st, &g, base_ms + x->t * 1000, &vr), 0);
        vr = vr == STORE_GUARD_BUSY ? POL_ATTEMPT_BUSY : vr; /* (LIMITED cannot happen here) */
        if (vc != x->verdict || vr != x->verdict) {
            fprintf(stderr, "# %s: C %d, Redis %d, expected %d\n", where, vc, vr, x->verdict);
            harness_fail(__FILE__, __LINE__, "%s", where);
        }
        if (vc != POL_ATTEMPT_OK)
            continue;
        if (x->act == 'H') {
            held_c[nheld] = a;
            held_r[nheld++] = g;
            continue;
        }
        unsigned lc_ = pol_lockout_end(l, &a, x->act == 'S', x->t);
        unsigned lr = store_guard_end(st, &g, x->act == 'S', base_ms + x->t * 1000);
        if (lc_ != x->locked || lr != x->locked) {
            fprintf(stderr, "# %s: locked C %u, Redis %u, expected %u\n", where, lc_, lr,
                    x->locked);
            harness_fail(__FILE__, __LINE__, "%s", where);
        }
    }
    pol_lockout_free(l);
    cleanup(st);
}

SHARED(login_rate_rules_agree_in_c_and_in_redis)
{
    /* 1 a second with bursts of 3 (GCRA): the same arrivals, the same refusals, the same
     * time to wait */
    static const int64_t at_ms[] = {0,    0,    0,    0,    500,  999,  1000, 1001,
                                    2500, 2600, 9000, 9000, 9000, 9000, 9100};
    struct pol_gcra_rule ru;
    pol_gcra_rule_init(&ru, 1, 1, 3);
    struct pol_gcra *c = pol_gcra_new(1024);
    const int64_t base_ms = 1700000000000;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    for (size_t i = 0; i < sizeof(at_ms) / sizeof(at_ms[0]); i++) {
        struct pol_gcra_result res;
        struct store_guard g;
        int vr = -1;
        char where[48];
        snprintf(where, sizeof(where), "arrival %zu at %lld ms", i, (long long)at_ms[i]);
        pol_gcra_take(c, 0, &ru, STR_LIT("10.0.0.1"), (uint64_t)(base_ms + at_ms[i]) * 1000000u,
                      &res);
        guard_of(&g, "ann", "10.0.0.1");
        memset(g.lock, 0, sizeof(g.lock)); /* the lockout off: the rate alone */
        g.rl_interval_ms[0] = ru.interval_ns / 1000000u;
        g.rl_tau_ms[0] = ru.tolerance_ns / 1000000u;
        ASSERT_EQ_INT(store_guard_begin(st, &g, base_ms + at_ms[i], &vr), 0);
        bool redis_allowed = vr == STORE_GUARD_OK;
        if (res.allowed != redis_allowed) {
            fprintf(stderr, "# %s: C %s, Redis %s\n", where, res.allowed ? "allowed" : "refused",
                    redis_allowed ? "allowed" : "refused");
            harness_fail(__FILE__, __LINE__, "%s", where);
        }
        if (!res.allowed && (int64_t)(res.retry_ns / 1000000u) != g.retry_ms) {
            fprintf(stderr, "# %s: retry C %llu ms, Redis %lld ms\n", where,
                    (unsigned long long)(res.retry_ns / 1000000u), (long long)g.retry_ms);
            harness_fail(__FILE__, __LINE__, "%s", where);
        }
        if (redis_allowed)
            store_guard_end(st, &g, 1, base_ms + at_ms[i]);
    }
    pol_gcra_free(c);
    cleanup(st);
}

static void on_done_status(struct store_op *op)
{
    (void)op;
    done_count++;
}

/* Submits a PUT_NEW of user `name` from the test's loop and runs the loop until it is done;
 * op->status is the result. */
static int put_on_loop(struct store *st, struct store_op *op, const char *name)
{
    init_op(op, STORE_OP_PUT_NEW);
    op->on_done = on_done_status;
    kv(op, STORE_T_USERS, name, "{}");
    done_count = 0;
    int rc = store_submit(st, &lp, op);
    while (rc == ERR_AGAIN && done_count < 1)
        uv_run(&lp.uv, UV_RUN_ONCE);
    return rc;
}

/* Redis goes away: the store says so, reads and writes fail fast (ERR_BACKEND, never a
 * false "not found"), and everything works again when it is back, without a reopen. */
TEST(redis_outage_and_recovery)
{
    struct store *st;
    struct store_op op;
    struct buf b;
    struct timespec t0, t1;
    backend = B_REDIS;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    buf_init(&b, 4096);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", "{}");
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(store_ready(st, NULL), 1);
    redis_stop();
    int ready = 1;
    for (int i = 0; i < 200 && ready; i++, usleep(10000))
        ready = store_ready(st, NULL);
    ASSERT_EQ_INT(ready, 0);
    uint64_t stale = 0;
    store_ready(st, &stale);
    ASSERT_TRUE(stale > 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_EQ_INT(store_get(st, STORE_T_USERS, "ann", 3, &b, NULL, NULL), ERR_BACKEND);
    ASSERT_EQ_INT(store_get(st, STORE_T_REVOKED, "j", 1, &b, NULL, NULL), ERR_BACKEND);
    ASSERT_EQ_INT(put_on_loop(st, &op, "bob"), ERR_AGAIN);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT_EQ_INT(op.status, ERR_BACKEND);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    ASSERT_TRUE(ms < 200); /* fast, not a timeout per call */
    ASSERT_EQ_INT(redis_start(), 0);
    for (int i = 0; i < 500 && !ready; i++, usleep(10000))
        ready = store_ready(st, NULL);
    ASSERT_EQ_INT(ready, 1);
    /* the data died with that redis-server (no persistence here); the store works again */
    ASSERT_EQ_INT(put_on_loop(st, &op, "bob"), ERR_AGAIN);
    ASSERT_EQ_INT(op.status, 0);
    ASSERT_EQ_INT(store_get(st, STORE_T_USERS, "bob", 3, &b, NULL, NULL), 0);
    buf_fini(&b);
    store_loop_release(st, &lp);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    cleanup(st);
}

/* A Redis 6 ACL user, given in the address: right password opens, wrong one is refused. */
TEST(redis_acl_user)
{
    struct store *st;
    char url[160], err[256];
    backend = B_REDIS;
    ASSERT_EQ_INT(redis_start(), 0);
    redisContext *c = redisConnectUnix(sock);
    ASSERT_TRUE(c && !c->err);
    freeReplyObject(redisCommand(c, "ACL SETUSER fgacl on >right-pw ~* &* +@all"));
    redisFree(c);
    snprintf(url, sizeof(url), "unix://%s?user=fgacl&password=wrong-pw", sock);
    ASSERT_EQ_INT(store_open_redis(url, "acl:", 1000, &st, err, sizeof(err)), ERR_BACKEND);
    ASSERT_TRUE(strstr(err, "WRONGPASS") != NULL);
    snprintf(url, sizeof(url), "unix://%s?user=fgacl&password=right-pw", sock);
    ASSERT_EQ_INT(store_open_redis(url, "acl:", 1000, &st, err, sizeof(err)), 0);
    ASSERT_EQ_INT(store_pin(st, "x", "1", 1), 0);
    cleanup(st);
}

/* Malformed operations are refused before any backend sees them, with no callback (issue
 * #11 item 22: the shared checks had never run), and the small accessors answer. */
CONTRACT(malformed_ops_are_refused_at_once)
{
    struct store *st = open_fresh();
    struct store_op op;
    struct buf b;
    uint64_t entries, bytes;
    struct store_stats stats;
    char long_key[STORE_KEY_MAX + 2];
    ASSERT_TRUE(st != NULL);
    buf_init(&b, 64);
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    ASSERT_EQ_INT(store_exec_kv(st, STORE_OP_PUT_NEW, STORE_T_USERS, long_key, "v", 1), ERR_INVAL);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", "v");
    op.on_done = NULL; /* nobody to tell */
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", NULL);
    op.value_len = 3; /* a length without bytes */
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    init_op(&op, STORE_OP_REPLACE);
    kv(&op, STORE_T_USERS, "ann", "v");
    op.expect_len = 2; /* a length without an expectation */
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    init_op(&op, STORE_OP_PUT_NEW);
    kv(&op, STORE_T_USERS, "ann", "v");
    memset(op.sess_sub, 's', sizeof(op.sess_sub)); /* not terminated */
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    init_op(&op, STORE_OP_DELETE);
    kv(&op, STORE_T_USERS, "", NULL); /* no key */
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    init_op(&op, STORE_OP_JTI_REVOKE);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL); /* no jti */
    init_op(&op, STORE_OP_GET);                    /* reads are made by store_get, not submitted */
    kv(&op, STORE_T_USERS, "ann", NULL);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_INVAL);
    ASSERT_EQ_INT(store_get(st, STORE_T_COUNT, "k", 1, &b, NULL, NULL), ERR_INVAL);
    ASSERT_EQ_INT(store_get(st, STORE_T_USERS, "", 0, &b, NULL, NULL), ERR_INVAL);
    ASSERT_EQ_INT(store_each(st, STORE_T_COUNT, NULL, NULL), ERR_INVAL);
    ASSERT_EQ_INT(store_usage(st, STORE_T_COUNT, &entries, &bytes), ERR_INVAL);
    ASSERT_EQ_INT(store_usage(st, STORE_T_USERS, &entries, &bytes), 0);
    store_get_stats(st, &stats);
    uint64_t stale = 99;
    ASSERT_TRUE(store_ready(st, &stale));
    ASSERT_TRUE(stale == 0);
    ASSERT_TRUE(store_members(st) >= 1);
    buf_fini(&b);
    cleanup(st);
}

/* An LMDB directory that cannot be made, and a data.mdb that is not a store. */
TEST(lmdb_open_refusals)
{
    struct store *st;
    char err[512], tmp[] = "/tmp/fg-lmdb-XXXXXX", path[96];
    ASSERT_TRUE(mkdtemp(tmp) != NULL);
    snprintf(path, sizeof(path), "%s/file", tmp);
    FILE *f = fopen(path, "w");
    fclose(f);
    snprintf(path, sizeof(path), "%s/file/sub", tmp);
    ASSERT_EQ_INT(store_open_lmdb(path, 1 << 20, 0, &st, err, sizeof(err)), ERR_IO);
    ASSERT_TRUE(strstr(err, "cannot create") != NULL);
    snprintf(path, sizeof(path), "%s/data.mdb", tmp);
    f = fopen(path, "w");
    for (int i = 0; i < 4096; i++)
        fputs("not an lmdb file ", f);
    fclose(f);
    ASSERT_EQ_INT(store_open_lmdb(tmp, 1 << 20, 0, &st, err, sizeof(err)), ERR_IO);
    ASSERT_TRUE(strstr(err, "cannot open the store") != NULL);
    unlink(path);
    snprintf(path, sizeof(path), "%s/file", tmp);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", tmp);
    unlink(path);
    rmdir(tmp);
}

/* ---- refresh records by age (LMDB) ---- */

/* Folds every spending held (store_lmdb_rt.c) and waits until the writer has: 0 when the
 * memo is empty within 10 s. */
static int fold_now(struct store *st)
{
    store_lmdb_fold_at(st, 1);
    for (int i = 0; i < 1000 && store_lmdb_spent_held(st) > 0; i++)
        usleep(10000);
    store_lmdb_fold_at(st, 1000000);
    return store_lmdb_spent_held(st) == 0 ? 0 : -1;
}

/* A digest in `group` stamped `stamp` (bytes 2-9, big-endian, as token/tok_refresh.h
 * puts a token's issue time), the rest `v` repeated. */
static void stamped(uint8_t d[STORE_DIGEST], unsigned group, uint64_t stamp, int v)
{
    memset(d, v, STORE_DIGEST);
    store_group_put(d, group);
    for (int i = 0; i < 8; i++)
        d[2 + i] = (uint8_t)(stamp >> (56 - 8 * i));
}

struct in_order {
    int n;
    uint8_t d[4][STORE_DIGEST];
};

static int on_in_order(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct in_order *o = ctx;
    (void)val;
    (void)vlen;
    if (klen != STORE_DIGEST || o->n == 4)
        return ERR_INVAL;
    memcpy(o->d[o->n++], key, STORE_DIGEST);
    return ERR_OK;
}

/* Records lie in the order their tokens were issued, whatever their groups (a rotation
 * writes beside the last one instead of at a random place), and are listed by their own
 * digests. */
TEST(lmdb_keeps_refresh_records_in_the_order_of_their_stamps)
{
    struct store *st;
    struct in_order o = {0};
    uint8_t a[32], b[32], c[32];
    backend = B_LMDB;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    stamped(c, 100, 3000000, 0x33); /* issued last, in a middle group */
    stamped(a, 9000, 1000000, 0x11);
    stamped(b, 5, 2000000, 0x22);
    issue(st, c, 1000);
    issue(st, a, 1000);
    issue(st, b, 1000);
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_in_order, &o), 0);
    ASSERT_EQ_INT(o.n, 3);
    ASSERT_TRUE(memcmp(o.d[0], a, 32) == 0); /* by stamp, not by group (5, 100, 9000) */
    ASSERT_TRUE(memcmp(o.d[1], b, 32) == 0);
    ASSERT_TRUE(memcmp(o.d[2], c, 32) == 0);
    cleanup(st);
}

/* A store written before records were kept by age: its records are read, rotate (moved to
 * the table by age in the same step, so nothing is there twice), are listed and purged, and
 * what a rotation did survives a restart. */
TEST(lmdb_reads_and_moves_refresh_records_from_before_age_order)
{
    struct store *st;
    struct store_op op;
    struct store_refresh r;
    struct seen sn = {0};
    struct buf b;
    char err[256];
    uint8_t x[32], old[32], gone[32], next[32];
    backend = B_LMDB;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    dig(x, 0x71);
    dig(old, 0x72);
    dig(gone, 0x73);
    stamped(next, store_group_of("ann"), 5000000, 0x74);
    ASSERT_EQ_INT(issue_family(st, x, 0xf1, 1000, 1000, 100, 0), 0); /* the family */
    memset(&r, 0, sizeof(r));
    fam(r.family, 0xf1);
    r.state = STORE_RT_LIVE;
    r.issued_at = 1000;
    r.expires_at = 2000;
    r.idle_expires_at = 1100;
    snprintf(r.sub, sizeof(r.sub), "ann");
    snprintf(r.client_id, sizeof(r.client_id), "app");
    snprintf(r.scope, sizeof(r.scope), "read write");
    ASSERT_EQ_INT(store_lmdb_put_aged(st, old, &r), 0);
    r.expires_at = r.idle_expires_at = 1001;
    ASSERT_EQ_INT(store_lmdb_put_aged(st, gone, &r), 0);
    ASSERT_EQ_INT((int)store_lmdb_aged_left(st), 2);
    buf_init(&b, 256);
    ASSERT_EQ_INT(store_get(st, STORE_T_REFRESH, old, 32, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_refresh, &sn), 0);
    ASSERT_EQ_INT(sn.n, 3);
    ASSERT_TRUE(sn.found[0] == 1 && sn.found[1] == 1);
    /* rotated: its successor by age; the spent one stays where it is until the spent log
     * is folded (below) */
    ASSERT_EQ_INT(rotate(st, old, next, "app", 1010, &op), STORE_ROTATED);
    ASSERT_EQ_INT((int)store_lmdb_aged_left(st), 2);
    /* purged: the expired one goes */
    init_op(&op, STORE_OP_PURGE);
    op.now = 1500;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT((int)store_lmdb_aged_left(st), 1);
    store_close(st);
    ASSERT_EQ_INT(store_open_lmdb(dir, 64u << 20, 0, &st, err, sizeof(err)), 0);
    memset(&sn, 0, sizeof(sn));
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_refresh, &sn), 0);
    ASSERT_EQ_INT(sn.n, 3); /* x, old (spent) and next: none twice, the expired gone */
    ASSERT_EQ_INT(store_get(st, STORE_T_REFRESH, old, 32, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(store_refresh_decode((const uint8_t *)b.p, b.len, &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    /* the spent one again, past the grace window: reuse, as for any record */
    ASSERT_EQ_INT(rotate(st, old, x, "app", 1050, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT(store_get(st, STORE_T_REFRESH, gone, 32, &b, NULL, NULL), ERR_NOTFOUND);
    /* folded: moved, spent, and the old table is empty */
    ASSERT_EQ_INT(fold_now(st), 0);
    ASSERT_EQ_INT((int)store_lmdb_aged_left(st), 0);
    ASSERT_EQ_INT(store_get(st, STORE_T_REFRESH, old, 32, &b, NULL, NULL), 0);
    ASSERT_EQ_INT(store_refresh_decode((const uint8_t *)b.p, b.len, &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_MEM(r.successor, 32, next, 32);
    buf_fini(&b);
    cleanup(st);
}

/* ---- the spent log (LMDB) ---- */

struct spent_seen {
    int n, rotated;
};

static int on_spent(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct spent_seen *sn = ctx;
    struct store_refresh r;
    (void)key;
    if (klen != STORE_DIGEST || store_refresh_decode(val, vlen, &r))
        return ERR_INVAL;
    sn->n++;
    sn->rotated += r.state == STORE_RT_ROTATED;
    return ERR_OK;
}

/* The state and successor of a refresh record as a reader sees it. */
static int read_rt(struct store *st, const uint8_t *d, struct store_refresh *r)
{
    struct buf b;
    buf_init(&b, 1024);
    int rc = store_get(st, STORE_T_REFRESH, d, STORE_DIGEST, &b, NULL, NULL);
    if (rc == ERR_OK)
        rc = store_refresh_decode((const uint8_t *)b.p, b.len, r);
    buf_fini(&b);
    return rc;
}

/* Tokens t[0..count) issued, a family each (family0 + i), and digests n[i] for their
 * successors: t[i] of tv + i repeated, n[i] of nv + i. 0, or the first failure. */
static int issue_tokens(struct store *st, uint8_t (*t)[32], uint8_t (*n)[32], int count, int tv,
                        int nv, int family0)
{
    int rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        dig(t[i], tv + i);
        dig(n[i], nv + i);
        rc = issue_family(st, t[i], (uint8_t)(family0 + i), 1000, 1000, 100, 0);
    }
    return rc;
}

/* Token d, as a reader sees it: spent, with successor next. */
static bool reads_spent(struct store *st, const uint8_t *d, const uint8_t *next)
{
    struct store_refresh r;
    return read_rt(st, d, &r) == 0 && r.state == STORE_RT_ROTATED &&
           memcmp(r.successor, next, 32) == 0;
}

/* A rotation marks the token it spends in a log and in memory, not in its record: every
 * reader sees it spent all the same, before and after the log is replayed on opening and
 * folded into the records, and the reuse rules hold through each step. */
TEST(lmdb_spends_through_a_log_replayed_and_folded)
{
    struct store *st;
    struct store_op op;
    struct store_refresh r;
    struct spent_seen sn = {0};
    char err[256];
    uint8_t t[8][32], n[8][32], m[32];
    backend = B_LMDB;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    store_lmdb_fold_at(st, 1000000);
    ASSERT_EQ_INT(issue_tokens(st, t, n, 8, 0x40, 0x50, 0xa0), 0);
    dig(m, 0x60);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(rotate(st, t[i], n[i], "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 5);
    ASSERT_EQ_INT(read_rt(st, t[0], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_TRUE(r.rotated_at == 1001);
    ASSERT_EQ_MEM(r.successor, 32, n[0], 32);
    ASSERT_EQ_INT(read_rt(st, t[5], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_LIVE);
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_spent, &sn), 0);
    ASSERT_EQ_INT(sn.n, 13);
    ASSERT_EQ_INT(sn.rotated, 5);
    /* the grace retry finds the successor through the memo */
    ASSERT_EQ_INT(rotate(st, t[0], m, "app", 1002, &op), STORE_ROTATE_GRACE);
    ASSERT_EQ_MEM(op.digest, 32, n[0], 32);
    /* replayed when the store opens again */
    store_close(st);
    ASSERT_EQ_INT(store_open_lmdb(dir, 64u << 20, 0, &st, err, sizeof(err)), 0);
    store_lmdb_fold_at(st, 1000000);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 5);
    ASSERT_EQ_INT(read_rt(st, t[1], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_MEM(r.successor, 32, n[1], 32);
    ASSERT_EQ_INT(rotate(st, n[1], m, "app", 1003, &op), STORE_ROTATED);
    /* t1's successor moved on: t1 again is reuse, and its family is revoked */
    ASSERT_EQ_INT(rotate(st, t[1], n[7], "app", 1004, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT(rotate(st, m, n[7], "app", 1004, &op), STORE_ROTATE_INVALID);
    /* folded into the records: the same answers */
    ASSERT_EQ_INT(fold_now(st), 0);
    ASSERT_EQ_INT(read_rt(st, t[2], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_TRUE(r.rotated_at == 1001);
    ASSERT_EQ_MEM(r.successor, 32, n[2], 32);
    ASSERT_EQ_INT(read_rt(st, n[1], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_MEM(r.successor, 32, m, 32);
    memset(&sn, 0, sizeof(sn));
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_spent, &sn), 0);
    ASSERT_EQ_INT(sn.n, 14);
    ASSERT_EQ_INT(sn.rotated, 6);
    ASSERT_EQ_INT(rotate(st, t[2], m, "app", 1003, &op), STORE_ROTATE_GRACE);
    ASSERT_EQ_MEM(op.digest, 32, n[2], 32);
    ASSERT_EQ_INT(rotate(st, t[3], m, "app", 1020, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT(rotate(st, n[3], m, "app", 1020, &op), STORE_ROTATE_INVALID);
    /* after a fold, a spending and a reopening go on as before */
    ASSERT_EQ_INT(rotate(st, t[6], n[6], "app", 1021, &op), STORE_ROTATED);
    store_close(st);
    ASSERT_EQ_INT(store_open_lmdb(dir, 64u << 20, 0, &st, err, sizeof(err)), 0);
    ASSERT_EQ_INT(read_rt(st, t[6], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_MEM(r.successor, 32, n[6], 32);
    ASSERT_EQ_INT(rotate(st, t[6], m, "app", 1040, &op), STORE_ROTATE_REUSED);
    cleanup(st);
}

/* store_fold (`floodgate store fold`): a fold whose commit fails is an error and changes
 * nothing (its records still read spent, through the memo); tried again a second later, it
 * folds them all, and a fold with nothing left folds none. */
TEST(lmdb_store_fold_fails_whole_and_works_again)
{
    struct store_op op;
    struct store_refresh r;
    uint64_t n;
    uint8_t t[3][32], nx[3][32];
    backend = B_LMDB;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    for (int i = 0; i < 3; i++) {
        dig(t[i], 0x30 + i);
        dig(nx[i], 0x38 + i);
        ASSERT_EQ_INT(issue_family(st, t[i], (uint8_t)(0xd0 + i), 1000, 1000, 100, 0), 0);
        ASSERT_EQ_INT(rotate(st, t[i], nx[i], "app", 1001, &op), STORE_ROTATED);
    }
    store_lmdb_fail_commits(st, 1);
    ASSERT_EQ_INT(store_fold(st, &n), ERR_BACKEND);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 3);
    ASSERT_EQ_INT(read_rt(st, t[1], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    usleep(1100 * 1000); /* (a failed fold is tried again after a second) */
    ASSERT_EQ_INT(store_fold(st, &n), 0);
    ASSERT_TRUE(n == 3);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 0);
    ASSERT_EQ_INT(read_rt(st, t[2], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_MEM(r.successor, 32, nx[2], 32);
    ASSERT_EQ_INT(store_fold(st, &n), 0);
    ASSERT_TRUE(n == 0);
    /* a fold due that failed, on an idle store: the writer tries again by itself */
    uint8_t again[32];
    dig(again, 0x3f);
    ASSERT_EQ_INT(rotate(st, nx[0], again, "app", 1002, &op), STORE_ROTATED);
    store_lmdb_fail_commits(st, 1);
    store_lmdb_fold_at(st, 1);
    for (int i = 0; i < 500 && store_lmdb_spent_held(st) > 0; i++)
        usleep(10000);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 0);
    cleanup(st);
}

/* Wakes the writer (store_exec ran the rotations on this thread, so no batch ended in the
 * writer, which folds between batches) with a fold at 2 held, and waits until it holds
 * `want` runs and `held` spendings in all: 0, or -1 after 5 s. Then no fold is due until
 * the next call (1,000,000 held), so the writer, still looking for work, cannot take up the
 * rotations the test makes next before the test means it to. */
static int wait_runs(struct store *st, long want, long held)
{
    store_lmdb_fold_at(st, 2);
    for (int i = 0; i < 500; i++) {
        if (store_lmdb_spent_runs(st) == want && store_lmdb_spent_held(st) == held) {
            store_lmdb_fold_at(st, 1000000);
            return 0;
        }
        usleep(10000);
    }
    fprintf(stderr, "# %ld runs, %ld held\n", store_lmdb_spent_runs(st), store_lmdb_spent_held(st));
    return -1;
}

/* One purge pass at 2000, operation after operation: how many said it goes on (-1: one failed,
 * deleted more than `most`, or the pass did not end), and what they deleted in *total. */
static int purge_pass(struct store *st, uint64_t most, uint64_t *total)
{
    struct store_op op;
    int more = 0;
    *total = 0;
    do {
        init_op(&op, STORE_OP_PURGE);
        op.now = 2000;
        if (store_exec(st, &op) || op.purged > most)
            return -1;
        *total += op.purged;
    } while (op.purge_more && ++more < 100);
    return op.purge_more ? -1 : more;
}

/* Eight families for the purge tests, their 16 records read 3 an operation: the even ones
 * expire at 1100, the odd ones at 9000. */
static int eight_families(struct store *st)
{
    uint8_t d[STORE_DIGEST];
    for (int i = 0; i < 8; i++) {
        dig(d, 0x20 + i);
        if (issue_family(st, d, (uint8_t)(0x40 + i), 1000, i % 2 ? 8000 : 100, 8000, 0))
            return -1;
    }
    store_lmdb_purge_scan(st, 3);
    return 0;
}

/* After a pass over eight_families: the odd ones' 4 refresh records and 4 families, no more. */
static bool odd_families_left(struct store *st)
{
    uint64_t rt, fams, bytes;
    return store_usage(st, STORE_T_REFRESH, &rt, &bytes) == 0 &&
           store_usage(st, STORE_T_FAMILIES, &fams, &bytes) == 0 && rt == 4 && fams == 4;
}

/* The purge reads at most a slice of the tables an operation and goes on where the last
 * stopped, so that it never holds the writer for long: a pass of several operations deletes
 * what expired, and only that. */
TEST(lmdb_purges_in_slices)
{
    struct store_op op;
    uint64_t total = 0;
    int slices = 0;
    backend = B_LMDB;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(eight_families(st), 0);
    slices = purge_pass(st, 3, &total); /* (deleted: at most what it read) */
    ASSERT_TRUE(slices >= 5);           /* 16 records, 3 a slice */
    ASSERT_EQ_INT((int)total, 8);       /* 4 refresh records and their 4 families */
    ASSERT_TRUE(odd_families_left(st));
    store_lmdb_purge_scan(st, 0); /* the default: one operation, a whole pass, nothing left */
    init_op(&op, STORE_OP_PURGE);
    op.now = 2000;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_TRUE(op.purged == 0 && !op.purge_more);
    cleanup(st);
}

/* A slice also stops on the clock once it has read 256 records (at a multiple of 256): with
 * no time at all, 600 records and their 600 families go in five slices (256; 256; 88 and
 * 168; 256; 176 and the rest), and the pass still deletes exactly the expired ones. */
TEST(lmdb_purge_slice_stops_on_the_clock)
{
    struct store_op op;
    uint64_t rt, fams, bytes, total = 0;
    backend = B_LMDB;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    for (int i = 0; i < 600; i++) { /* one in three expires at 1100 */
        init_op(&op, STORE_OP_REFRESH_ISSUE);
        op.now = 1000;
        dig(op.digest, 0x33);
        fam(op.rt.family, 0x44);
        op.digest[2] = op.rt.family[2] = (uint8_t)(i >> 8);
        op.digest[3] = op.rt.family[3] = (uint8_t)i;
        op.rt.issued_at = 1000;
        op.rt.expires_at = i % 3 ? 9000 : 1100;
        op.rt.idle_expires_at = 9000;
        snprintf(op.rt.sub, sizeof(op.rt.sub), "ann");
        snprintf(op.rt.client_id, sizeof(op.rt.client_id), "app");
        ASSERT_EQ_INT(store_exec(st, &op), 0);
    }
    store_lmdb_purge_budget(st, 0);
    ASSERT_EQ_INT(purge_pass(st, 256, &total), 4); /* (five operations: four said "more") */
    ASSERT_EQ_INT((int)total, 400);
    ASSERT_EQ_INT(store_usage(st, STORE_T_REFRESH, &rt, &bytes), 0);
    ASSERT_EQ_INT(store_usage(st, STORE_T_FAMILIES, &fams, &bytes), 0);
    ASSERT_TRUE(rt == 400 && fams == 400);
    store_lmdb_purge_budget(st, -1);
    cleanup(st);
}

/* The server's pacing of those slices (store_purge_step, called each second by main.c): no
 * pass before its interval, then a slice a call until the store says it is done, the count
 * kept across slices, and the next pass an interval after the end of this one. */
TEST(purge_paced_by_interval)
{
    struct store_purge p;
    uint64_t rt, bytes;
    unsigned calls = 1;
    backend = B_LMDB;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(eight_families(st), 0);
    store_purge_init(&p, 1500);
    ASSERT_TRUE(!store_purge_step(&p, st, 600, 2099) && !p.on && p.slices == 0);
    ASSERT_EQ_INT(store_usage(st, STORE_T_REFRESH, &rt, &bytes), 0);
    ASSERT_TRUE(rt == 8); /* (not due: nothing read, nothing deleted) */
    while (store_purge_step(&p, st, 600, 2100 + calls) && calls < 100)
        calls++;
    ASSERT_TRUE(!p.on && calls >= 5 && p.slices == calls); /* 16 records, 3 a slice */
    ASSERT_TRUE(p.purged == 8 && p.last == 2100 + calls);
    ASSERT_TRUE(odd_families_left(st));
    ASSERT_TRUE(!store_purge_step(&p, st, 600, p.last + 599) && p.slices == calls);
    store_lmdb_purge_scan(st, 0);
    ASSERT_TRUE(!store_purge_step(&p, st, 600, p.last + 600)); /* due: one slice, all of it */
    ASSERT_TRUE(p.slices == 1 && p.purged == 0);
    cleanup(st);
}

/* A slice whose commit fails ends its pass, and the next pass reads the tables from their
 * start: the records the failed slice read (and did not delete) are deleted then. */
TEST(purge_after_a_failed_slice_begins_at_the_start)
{
    struct store_purge p;
    unsigned calls = 0;
    backend = B_LMDB;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(eight_families(st), 0);
    store_purge_init(&p, 0);
    ASSERT_TRUE(store_purge_step(&p, st, 600, 2000)); /* the first slice: 3 records read */
    store_lmdb_fail_commits(st, 1);
    ASSERT_TRUE(!store_purge_step(&p, st, 600, 2001) && !p.on); /* the second: not committed */
    while (store_purge_step(&p, st, 600, 2601 + calls) && calls < 100)
        calls++;
    ASSERT_TRUE(!p.on && p.slices >= 5 && p.slices == calls + 1); /* (16 records, 3 a slice) */
    ASSERT_TRUE(odd_families_left(st));
    cleanup(st);
}

/* Runs (issue #16 item 6; store_lmdb_runs.c): each fold of the memo written as a sorted run
 * instead of into the records, the tenth followed by a fold of all of them into the
 * records. Every reader sees a token spent in a run as spent, with its successor and when,
 * before and after the store is opened again and the runs are folded; the grace and reuse
 * rules hold through each step; a run whose commit fails is tried again and loses nothing. */
TEST(lmdb_spends_through_runs_reloaded_and_folded)
{
    struct store *st;
    struct store_op op;
    struct store_refresh r;
    struct spent_seen sn = {0};
    char err[256];
    uint8_t t[24][32], n[24][32], m[32];
    backend = B_LMDB;
    st = open_fresh();
    ASSERT_TRUE(st != NULL);
    store_lmdb_runs_always(st, true);
    store_lmdb_runs_max(st, 10);     /* (40 unless set) */
    store_lmdb_fold_at(st, 1000000); /* (wait_runs folds when the test means it to) */
    ASSERT_EQ_INT(issue_tokens(st, t, n, 24, 0x10, 0x30, 0x80), 0);
    dig(m, 0x60);
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ_INT(rotate(st, t[i], n[i], "app", 1001, &op), STORE_ROTATED);
        if (i % 2)
            ASSERT_EQ_INT(wait_runs(st, (i + 1) / 2, i + 1), 0);
    }
    for (int i = 0; i < 6; i++) {
        ASSERT_TRUE(reads_spent(st, t[i], n[i]));
        ASSERT_EQ_INT(read_rt(st, t[i], &r), 0);
        ASSERT_TRUE(r.rotated_at == 1001);
    }
    ASSERT_EQ_INT(read_rt(st, t[6], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_LIVE);
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_spent, &sn), 0);
    ASSERT_EQ_INT(sn.n, 30);
    ASSERT_EQ_INT(sn.rotated, 6);
    /* the grace retry finds the successor in a run */
    ASSERT_EQ_INT(rotate(st, t[0], m, "app", 1002, &op), STORE_ROTATE_GRACE);
    ASSERT_EQ_MEM(op.digest, 32, n[0], 32);
    /* a run whose commit fails: the memo keeps its spendings until it works */
    ASSERT_EQ_INT(rotate(st, t[6], n[6], "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_INT(rotate(st, t[7], n[7], "app", 1001, &op), STORE_ROTATED);
    store_lmdb_fail_commits(st, 1);
    store_lmdb_fold_at(st, 2);
    usleep(200 * 1000);
    ASSERT_EQ_INT((int)store_lmdb_spent_runs(st), 3);
    ASSERT_EQ_INT(read_rt(st, t[7], &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_INT(wait_runs(st, 4, 8), 0); /* (tried again a second later) */
    /* the runs are read again when the store opens */
    store_close(st);
    ASSERT_EQ_INT(store_open_lmdb(dir, 64u << 20, 0, &st, err, sizeof(err)), 0);
    store_lmdb_runs_always(st, true);
    store_lmdb_runs_max(st, 10);
    store_lmdb_fold_at(st, 1000000);
    ASSERT_EQ_INT((int)store_lmdb_spent_runs(st), 4);
    ASSERT_TRUE(store_lmdb_filter_bytes(st) > 4 * 64); /* (each run's and the gate's) */
    /* (and the log's newest line, kept so that its number never goes back, is read into the
     * memo again: a second copy of a run's last spending, merged once) */
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 9);
    ASSERT_TRUE(reads_spent(st, t[1], n[1]));
    ASSERT_EQ_INT(rotate(st, n[1], m, "app", 1003, &op), STORE_ROTATED);
    /* t1's successor moved on: t1 again is reuse, and its family is revoked */
    ASSERT_EQ_INT(rotate(st, t[1], n[23], "app", 1004, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT(rotate(st, m, n[23], "app", 1004, &op), STORE_ROTATE_INVALID);
    /* runs 5 to 10, then a fold of all ten and the memo into the records */
    for (int i = 8; i < 20; i++) {
        ASSERT_EQ_INT(rotate(st, t[i], n[i], "app", 1005, &op), STORE_ROTATED);
        if (i % 2 == 0)
            ASSERT_EQ_INT(wait_runs(st, 5 + (i - 8) / 2, 11 + (i - 8)), 0);
    }
    ASSERT_EQ_INT((int)store_lmdb_spent_runs(st), 10);
    ASSERT_EQ_INT(rotate(st, t[20], n[20], "app", 1005, &op), STORE_ROTATED);
    ASSERT_EQ_INT(wait_runs(st, 0, 0), 0);
    for (int i = 2; i < 21; i++)
        ASSERT_TRUE(reads_spent(st, t[i], n[i]));
    memset(&sn, 0, sizeof(sn));
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_spent, &sn), 0);
    ASSERT_EQ_INT(sn.n, 46);
    ASSERT_EQ_INT(sn.rotated, 22);
    ASSERT_EQ_INT(rotate(st, t[3], m, "app", 1020, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT(rotate(st, n[3], m, "app", 1020, &op), STORE_ROTATE_INVALID);
    /* store_fold folds a run too, whatever the number of runs */
    ASSERT_EQ_INT(rotate(st, t[21], n[21], "app", 1021, &op), STORE_ROTATED);
    ASSERT_EQ_INT(rotate(st, t[22], n[22], "app", 1021, &op), STORE_ROTATED);
    ASSERT_EQ_INT(wait_runs(st, 1, 2), 0);
    uint64_t folded;
    ASSERT_EQ_INT(store_fold(st, &folded), 0);
    ASSERT_TRUE(folded == 2);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 0);
    ASSERT_EQ_INT((int)store_lmdb_spent_runs(st), 0);
    ASSERT_EQ_INT((int)store_lmdb_filter_bytes(st), 0); /* (the gate goes with the last run) */
    ASSERT_TRUE(reads_spent(st, t[22], n[22]));
    cleanup(st);
}

/* Which way a fold goes: spendings of tokens issued one after another share their leaves
 * and fold straight into the records; as many tokens of every age would each rewrite a leaf
 * of its own, and are written as a run instead. (Without the floor below which a store is
 * small enough to fold into always: store_lmdb_runs_min_leaves.) */
TEST(lmdb_a_fold_of_tokens_of_every_age_becomes_a_run)
{
    static uint8_t t[1200][32], n[1200][32];
    struct store_op op;
    unsigned g = store_group_of("ann");
    backend = B_LMDB;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    store_lmdb_runs_min_leaves(st, 0);
    store_lmdb_fold_at(st, 1000000);
    for (int i = 0; i < 1200; i++) {
        stamped(t[i], g, 1000000 + (uint64_t)i, 0x44);
        stamped(n[i], g, 5000000 + (uint64_t)i, 0x45);
        ASSERT_EQ_INT(issue_family(st, t[i], 0xe1, 1000, 1000, 100, 0), 0);
    }
    for (int i = 1150; i < 1182; i++) /* 32 issued one after another */
        ASSERT_EQ_INT(rotate(st, t[i], n[i], "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_INT(wait_runs(st, 0, 0), 0);
    long dense = store_lmdb_fold_spread(st); /* (what /metrics shows) */
    ASSERT_TRUE(dense <= 500);
    for (int i = 0; i < 32; i++) /* 32 of every age, 35 records apart */
        ASSERT_EQ_INT(rotate(st, t[35 * i], n[35 * i], "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_INT(wait_runs(st, 1, 32), 0);
    ASSERT_TRUE(store_lmdb_fold_spread(st) > 500);
    ASSERT_TRUE(reads_spent(st, t[1160], n[1160]));
    ASSERT_TRUE(reads_spent(st, t[35 * 20], n[35 * 20]));
    /* dense again: the memo folds into its records alone, and the run stays for the fold of
     * all (taken along, it would rewrite a leaf for each of its spendings now) */
    for (int i = 1100; i < 1132; i++)
        ASSERT_EQ_INT(rotate(st, t[i], n[i], "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_INT(wait_runs(st, 1, 32), 0);
    ASSERT_TRUE(store_lmdb_fold_spread(st) <= 500);
    ASSERT_TRUE(reads_spent(st, t[1101], n[1101]));
    ASSERT_TRUE(reads_spent(st, t[35 * 20], n[35 * 20]));
    cleanup(st);
}

/* A fresh LMDB store where ann's family `family` began at 1000 with token a; b and c are
 * digests for what comes next (v, v + 1 and v + 2 repeated). NULL if it did not work. */
static struct store *lmdb_one_family(uint8_t a[32], uint8_t b[32], uint8_t c[32], int v,
                                     uint8_t family)
{
    backend = B_LMDB;
    struct store *st = open_fresh();
    dig(a, v);
    dig(b, v + 1);
    dig(c, v + 2);
    if (st && issue_family(st, a, family, 1000, 1000, 100, 0)) {
        cleanup(st);
        return NULL;
    }
    return st;
}

/* A rotation whose commit fails spent nothing: the memo forgets what it logged, the token is
 * still live, and it rotates once commits work again. */
TEST(lmdb_a_failed_commit_leaves_no_spending_behind)
{
    struct store_op op;
    struct store_refresh r;
    uint8_t a[32], b[32], c[32];
    struct store *st = lmdb_one_family(a, b, c, 0x61, 0xb1);
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(rotate(st, a, c, "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 1);
    store_lmdb_fail_commits(st, 1);
    rotate_op(&op, c, b, "app", 1002);
    ASSERT_EQ_INT(store_exec(st, &op), ERR_BACKEND);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 1);
    ASSERT_EQ_INT(read_rt(st, c, &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_LIVE);
    ASSERT_EQ_INT(read_rt(st, b, &r), ERR_NOTFOUND);
    /* the same through the writer thread, whose batch is aborted as a whole */
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    store_lmdb_fail_commits(st, 1);
    op.on_done = on_done_status;
    done_count = 0;
    ASSERT_EQ_INT(store_submit(st, &lp, &op), ERR_AGAIN);
    while (done_count < 1)
        uv_run(&lp.uv, UV_RUN_ONCE);
    ASSERT_EQ_INT(op.status, ERR_BACKEND);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 1);
    ASSERT_EQ_INT(read_rt(st, c, &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_LIVE);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    ASSERT_EQ_INT(rotate(st, c, b, "app", 1003, &op), STORE_ROTATED);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 2);
    ASSERT_EQ_INT(read_rt(st, c, &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_MEM(r.successor, 32, b, 32);
    cleanup(st);
}

/* Readers on other threads while rotations spend and folds run every 128 spendings: a token a
 * reader once saw spent is never seen live again, and always with its own successor (a
 * fold that let a spending go before a reader's snapshot held its record would show it
 * live). */
#define RACE_N 1200
static struct store *race_st;
static uint8_t race_old[RACE_N][32], race_next[RACE_N][32];
static _Atomic int race_stop, race_bad, race_reads;

static void race_digest(uint8_t d[32], int i, int v)
{
    memset(d, v, 32);
    store_group_put(d, store_group_of("ann"));
    memcpy(d + 4, &i, sizeof(i));
    memcpy(d + 16, &i, sizeof(i));
}

static void *race_reader(void *arg)
{
    static _Thread_local unsigned char seen[RACE_N];
    unsigned x = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    struct store_refresh r;
    memset(seen, 0, sizeof(seen));
    while (!atomic_load(&race_stop)) {
        x = x * 1103515245u + 12345u;
        int i = (int)((x >> 8) % RACE_N);
        if (read_rt(race_st, race_old[i], &r)) {
            atomic_fetch_add(&race_bad, 1);
            continue;
        }
        if (r.state == STORE_RT_ROTATED) {
            seen[i] = 1;
            if (memcmp(r.successor, race_next[i], 32) != 0)
                atomic_fetch_add(&race_bad, 1);
        } else if (seen[i]) {
            atomic_fetch_add(&race_bad, 1);
        }
        atomic_fetch_add(&race_reads, 1);
    }
    return NULL;
}

/* The race below, with folds into the records (as a small store's always are) or with runs
 * (a run each fold, and every tenth of them a fold of all into the records). */
static void readers_race(bool runs, size_t fold_at)
{
    struct store_op op;
    struct spent_seen sn = {0};
    pthread_t th[2];
    backend = B_LMDB;
    race_st = open_fresh();
    ASSERT_TRUE(race_st != NULL);
    atomic_store(&race_stop, 0);
    atomic_store(&race_bad, 0);
    atomic_store(&race_reads, 0);
    store_lmdb_runs_always(race_st, runs);
    store_lmdb_runs_max(race_st, 10);
    store_lmdb_fold_at(race_st, fold_at);
    for (int i = 0; i < RACE_N; i++) {
        race_digest(race_old[i], i, 0x70);
        race_digest(race_next[i], i, 0x71);
    }
    for (int i = 0; i < RACE_N; i++)
        ASSERT_EQ_INT(issue_family(race_st, race_old[i], 0xc1, 1000, 1000, 100, 0), 0);
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    for (long t = 0; t < 2; t++)
        ASSERT_EQ_INT(pthread_create(&th[t], NULL, race_reader, (void *)t), 0);
    for (int i = 0; i < RACE_N; i++) {
        rotate_op(&op, race_old[i], race_next[i], "app", 1001);
        op.on_done = on_done_status;
        done_count = 0;
        ASSERT_EQ_INT(store_submit(race_st, &lp, &op), ERR_AGAIN);
        while (done_count < 1)
            uv_run(&lp.uv, UV_RUN_ONCE);
        ASSERT_EQ_INT(op.status, 0);
        ASSERT_EQ_INT(op.rotate_result, STORE_ROTATED);
    }
    atomic_store(&race_stop, 1);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    ASSERT_EQ_INT(atomic_load(&race_bad), 0);
    ASSERT_TRUE(atomic_load(&race_reads) > RACE_N);
    ASSERT_TRUE(store_lmdb_spent_held(race_st) < RACE_N); /* (folds ran) */
    if (runs)
        ASSERT_TRUE(store_lmdb_spent_runs(race_st) > 0); /* (and runs were written after) */
    ASSERT_EQ_INT(store_each(race_st, STORE_T_REFRESH, on_spent, &sn), 0);
    ASSERT_EQ_INT(sn.n, 2 * RACE_N);
    ASSERT_EQ_INT(sn.rotated, RACE_N);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    cleanup(race_st);
}

TEST(lmdb_readers_never_see_a_spent_token_live_again)
{
    readers_race(false, 128);
}

/* 64 a fold: 18 of them in the race, so runs are written, read, and folded all together
 * (at 10 runs) while the readers read. */
TEST(lmdb_readers_never_see_a_spent_token_live_again_with_runs)
{
    readers_race(true, 64);
}

/* One write at a time, each submitted as the last one's answer arrives: the moment the
 * writer looks for work between two of them (and for a fold to run) loses none. A lost
 * wake-up hangs: each answer is given 10 s. */
TEST(lmdb_writes_one_after_another_are_never_left_waiting)
{
    struct store_op op;
    char name[32];
    backend = B_LMDB;
    struct store *st = open_fresh();
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "one-%d", i);
        init_op(&op, STORE_OP_PUT_NEW);
        op.on_done = on_done_status;
        kv(&op, STORE_T_USERS, name, "{}");
        done_count = 0;
        ASSERT_EQ_INT(store_submit(st, &lp, &op), ERR_AGAIN);
        uint64_t t0 = clock_mono_ns();
        while (done_count < 1 && clock_mono_ns() - t0 < 10000000000ull)
            uv_run(&lp.uv, UV_RUN_NOWAIT);
        ASSERT_EQ_INT(done_count, 1);
        ASSERT_EQ_INT(op.status, 0);
    }
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    cleanup(st);
}

/* Another process on the same directory (the CLI; a second server during a restart with
 * listen_shared) spends a token: a reader here sees it spent before this process writes
 * anything, and a rotation here follows the reuse rules with it. */
TEST(lmdb_a_spending_by_another_process_is_seen)
{
    struct store_op op;
    struct store_refresh r;
    uint8_t a[32], b[32], c[32];
    struct store *st = lmdb_one_family(a, b, c, 0x63, 0xb2);
    ASSERT_TRUE(st != NULL);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        struct store *other;
        char err[256];
        int code = store_open_lmdb(dir, 64u << 20, 0, &other, err, sizeof(err)) ? 2 : 0;
        if (!code)
            code = rotate(other, a, b, "app", 1001, &op) == STORE_ROTATED ? 0 : 3;
        if (!code || code == 3)
            store_close(other);
        _exit(code);
    }
    int status;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 0); /* (nothing written here yet) */
    ASSERT_EQ_INT(read_rt(st, a, &r), 0);
    ASSERT_EQ_INT(r.state, STORE_RT_ROTATED);
    ASSERT_EQ_MEM(r.successor, 32, b, 32);
    ASSERT_EQ_INT(rotate(st, a, c, "app", 1002, &op), STORE_ROTATE_GRACE);
    ASSERT_EQ_MEM(op.digest, 32, b, 32);
    ASSERT_EQ_INT((int)store_lmdb_spent_held(st), 1);
    ASSERT_EQ_INT(rotate(st, b, c, "app", 1003, &op), STORE_ROTATED);
    ASSERT_EQ_INT(rotate(st, a, c, "app", 1030, &op), STORE_ROTATE_REUSED);
    cleanup(st);
}

/* Another process writes a run of spendings (and so takes them out of the log) before this
 * one has read them: a reader here finds them in that run, and the writer here loads the run
 * before it rotates. */
TEST(lmdb_a_run_written_by_another_process_is_seen)
{
    struct store_op op;
    uint8_t a[32], b[32], c[32], x[32], y[32];
    struct store *st = lmdb_one_family(a, b, c, 0x73, 0xb3);
    ASSERT_TRUE(st != NULL);
    dig(x, 0x77);
    dig(y, 0x78);
    ASSERT_EQ_INT(issue_family(st, x, 0xb4, 1000, 1000, 100, 0), 0);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        struct store *other;
        char err[256];
        int code = store_open_lmdb(dir, 64u << 20, 0, &other, err, sizeof(err)) ? 2 : 0;
        if (code)
            _exit(code);
        store_lmdb_runs_always(other, true);
        if (rotate(other, a, b, "app", 1001, &op) != STORE_ROTATED ||
            rotate(other, x, y, "app", 1001, &op) != STORE_ROTATED)
            code = 3;
        store_lmdb_fold_at(other, 1);
        for (int i = 0; !code && i < 500 && store_lmdb_spent_runs(other) != 1; i++)
            usleep(10000);
        if (!code && store_lmdb_spent_runs(other) != 1)
            code = 4;
        store_close(other);
        _exit(code);
    }
    int status;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ_INT((int)store_lmdb_spent_runs(st), 0); /* (nothing written here yet) */
    ASSERT_TRUE(reads_spent(st, a, b));               /* (only x's line is left in the log) */
    struct spent_seen sn = {0};
    ASSERT_EQ_INT(store_each(st, STORE_T_REFRESH, on_spent, &sn), 0);
    ASSERT_EQ_INT(sn.rotated, 2);
    ASSERT_EQ_INT(rotate(st, a, c, "app", 1002, &op), STORE_ROTATE_GRACE);
    ASSERT_EQ_MEM(op.digest, 32, b, 32);
    ASSERT_EQ_INT((int)store_lmdb_spent_runs(st), 1);
    ASSERT_EQ_INT(rotate(st, b, c, "app", 1003, &op), STORE_ROTATED);
    ASSERT_EQ_INT(rotate(st, a, c, "app", 1030, &op), STORE_ROTATE_REUSED);
    cleanup(st);
}

/* The revoked families' index (store_lmdb_fam.c): a rotation asks it, not the family's record;
 * a revocation and a reuse each write a line, and the purge deletes it with its family. */
TEST(lmdb_revocations_are_read_from_the_families_index)
{
    struct store_op op;
    uint64_t purged;
    uint8_t a[32], b[32], c[32], d[32], e[32];
    struct store *st = lmdb_one_family(a, b, c, 0x71, 0xc1);
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT((int)store_lmdb_fam_rebuilt(st), 0); /* (a new store: nothing to rebuild) */
    ASSERT_EQ_INT((int)store_lmdb_fam_lines(st), 0);
    init_op(&op, STORE_OP_FAMILY_REVOKE);
    fam(op.rt.family, 0xc1);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT((int)store_lmdb_fam_lines(st), 1);
    ASSERT_EQ_INT(rotate(st, a, b, "app", 1001, &op), STORE_ROTATE_INVALID);
    /* a reuse revokes its family: a second line, and the successor is refused */
    dig(d, 0x75);
    ASSERT_EQ_INT(issue_family(st, c, 0xc2, 1000, 1000, 100, 0), 0);
    ASSERT_EQ_INT(rotate(st, c, d, "app", 1001, &op), STORE_ROTATED);
    ASSERT_EQ_INT(rotate(st, c, b, "app", 1050, &op), STORE_ROTATE_REUSED);
    ASSERT_EQ_INT((int)store_lmdb_fam_lines(st), 2);
    ASSERT_EQ_INT(rotate(st, d, b, "app", 1051, &op), STORE_ROTATE_INVALID);
    /* a third, revoked, that lives past the purge's time (2000) */
    dig(e, 0x76);
    ASSERT_EQ_INT(issue_family(st, e, 0xc3, 1000, 8000, 8000, 0), 0);
    init_op(&op, STORE_OP_FAMILY_REVOKE);
    fam(op.rt.family, 0xc3);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT((int)store_lmdb_fam_lines(st), 3);
    ASSERT_TRUE(purge_pass(st, 100, &purged) >= 0);
    ASSERT_EQ_INT((int)store_lmdb_fam_lines(st), 1);
    ASSERT_EQ_INT(rotate(st, e, b, "app", 1060, &op), STORE_ROTATE_INVALID);
    cleanup(st);
}

/* What a writer that does not keep the index (a floodgate from before it) does to family f:
 * its record marked revoked, or deleted. With `mark`, the writer also says the index is whole
 * (as this code does when it closes the store). */
static int older_writer(const uint8_t f[STORE_FAMILY_ID], bool drop, bool mark)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi fams, meta;
    MDB_val k = {STORE_FAMILY_ID, (void *)(uintptr_t)f}, v;
    uint8_t rec[STORE_FAMILY_ENC];
    struct store_family fr;
    int rc = mdb_env_create(&env);
    if (rc)
        return rc;
    if ((rc = mdb_env_set_maxdbs(env, 32)) || (rc = mdb_env_open(env, dir, MDB_NOTLS, 0600)) ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn))) {
        mdb_env_close(env);
        return rc;
    }
    rc = mdb_dbi_open(txn, "families", 0, &fams);
    if (rc == 0 && drop) {
        rc = mdb_del(txn, fams, &k, NULL);
    } else if (rc == 0 && (rc = mdb_get(txn, fams, &k, &v)) == 0 &&
               (rc = store_family_decode(v.mv_data, v.mv_size, &fr)) == 0) {
        fr.revoked = 1;
        store_family_encode(&fr, rec);
        v = (MDB_val){sizeof(rec), rec};
        rc = mdb_put(txn, fams, &k, &v, 0);
    }
    if (rc == 0 && mark && (rc = mdb_dbi_open(txn, "meta", 0, &meta)) == 0) {
        uint64_t id = mdb_txn_id(txn);
        MDB_val mk = {16, (void *)(uintptr_t) "families_revoked"}, mv = {sizeof(id), &id};
        rc = mdb_put(txn, meta, &mk, &mv, 0);
    }
    rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    mdb_env_close(env);
    return rc;
}

static struct store *reopen(void)
{
    struct store *st = NULL;
    char err[256];
    if (store_open_lmdb(dir, 64u << 20, 0, &st, err, sizeof(err)))
        fprintf(stderr, "# %s\n", err);
    return st;
}

/* A family revoked by a writer that does not keep the index is indexed when the store next
 * opens, and a line whose family such a writer deleted is dropped: unless the store's last
 * transaction is the one this code marked when it closed, with no other writer since its open
 * (a writer while it runs is seen at its close: it leaves no mark). */
TEST(lmdb_the_families_index_is_rebuilt_after_another_writer)
{
    struct store_op op;
    uint8_t a[32], b[32], c[32], d[32], f[STORE_FAMILY_ID];
    struct store *st = lmdb_one_family(a, b, c, 0x81, 0xd1);
    ASSERT_TRUE(st != NULL);
    dig(d, 0x85);
    fam(f, 0xd1);
    store_close(st);
    ASSERT_TRUE((st = reopen()) != NULL); /* closed by this code: whole */
    ASSERT_EQ_INT((int)store_lmdb_fam_rebuilt(st), 0);
    store_close(st);
    /* (the rotation reads the index alone: a revocation it was not told of goes unseen) */
    ASSERT_EQ_INT(older_writer(f, false, true), 0);
    ASSERT_TRUE((st = reopen()) != NULL);
    ASSERT_EQ_INT((int)store_lmdb_fam_rebuilt(st), 0);
    ASSERT_EQ_INT(rotate(st, a, b, "app", 1001, &op), STORE_ROTATED);
    /* another process writes while this one runs: not seen before the next open */
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0)
        _exit(older_writer(f, false, false) ? 2 : 0);
    int status;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ_INT(rotate(st, b, c, "app", 1002, &op), STORE_ROTATED);
    store_close(st);
    ASSERT_TRUE((st = reopen()) != NULL);
    ASSERT_EQ_INT((int)store_lmdb_fam_rebuilt(st), 2); /* one line added */
    ASSERT_EQ_INT((int)store_lmdb_fam_lines(st), 1);
    ASSERT_EQ_INT(rotate(st, c, d, "app", 1003, &op), STORE_ROTATE_INVALID);
    store_close(st);
    ASSERT_TRUE((st = reopen()) != NULL);
    ASSERT_EQ_INT((int)store_lmdb_fam_rebuilt(st), 0);
    store_close(st);
    ASSERT_EQ_INT(older_writer(f, true, false), 0);
    ASSERT_TRUE((st = reopen()) != NULL);
    ASSERT_EQ_INT((int)store_lmdb_fam_rebuilt(st), 2); /* one line dropped */
    ASSERT_EQ_INT((int)store_lmdb_fam_lines(st), 0);
    cleanup(st);
}

/* #12 item 6: a blocking store call made on a loop thread aborts a test build (a Redis
 * command there would stall every connection of that loop); off a loop thread it runs. */
static struct store *blk_st;

static void blocking_read(struct loop_task *t)
{
    (void)t;
    struct buf b;
    buf_init(&b, 64);
    store_get(blk_st, STORE_T_USERS, "ann", 3, &b, NULL, NULL); /* aborts here */
    buf_fini(&b);
    _exit(0);
}

TEST(blocking_store_call_on_a_loop_thread_aborts)
{
    char err[256], tmp[] = "/tmp/fg-blk-XXXXXX", cmd[64];
    ASSERT_TRUE(mkdtemp(tmp) != NULL);
    ASSERT_EQ_INT(store_open_lmdb(tmp, 1 << 20, 0, &blk_st, err, sizeof(err)), 0);
    struct buf b;
    buf_init(&b, 64);
    ASSERT_EQ_INT(store_get(blk_st, STORE_T_USERS, "ann", 3, &b, NULL, NULL), ERR_NOTFOUND);
    buf_fini(&b);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        static struct loop l;
        static struct loop_task t = {.on_run = blocking_read};
        signal(SIGABRT, SIG_DFL);
        if (loop_init(&l, 0))
            _exit(3);
        loop_post(&l, &t);
        loop_run(&l);
        _exit(2); /* the task never ran */
    }
    int status = 0;
    ASSERT_TRUE(waitpid(pid, &status, 0) == pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    store_close(blk_st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    ASSERT_EQ_INT(system(cmd), 0);
}
