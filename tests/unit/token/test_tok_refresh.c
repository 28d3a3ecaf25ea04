/* SPDX-License-Identifier: MIT */
/* Refresh families without HTTP (#12 item 1), on the embedded store driven by a real loop.
 * Rotation: a family started, rotated, answered again in the grace window, reused
 * (revoked), refused for another client or a wider scope. Revocation: below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/clock.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"
#include "loop/loop.h"
#include "loop/pool.h"
#include "store/store.h"
#include "token/tok_cache.h"
#include "token/tok_introspect.h"
#include "token/tok_revoke.h"
#include "token/tok_rotate.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {7};
static struct fx F;
static struct tok_svc svc;
static int answers, last_rc;

static void on_answer(struct tok_rotation *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

/* Runs the loop until the operation answered; its final code. */
static int wait_answer(int rc)
{
    if (rc == ERR_AGAIN)
        fx_wait(&F, &answers, 1);
    return rc == ERR_AGAIN ? last_rc : rc;
}

static void setup(void)
{
    ASSERT_EQ_INT(fx_open(&F, "rot-test"), 0);
    fx_tok_svc(&F, &svc, key);
}

static void teardown(void)
{
    fx_close(&F);
}

static void start_family(struct tok_family *f, const char *scope, int64_t now)
{
    ASSERT_EQ_INT(fx_family(&F, &svc, "u-ann", "app", scope, now, f->token), 0);
}

/* Rotates `token` for `client` asking `scope` at `now`; q holds the outputs. */
static int rotate(struct tok_rotation *q, const char *token, const char *client, const char *scope,
                  int64_t now)
{
    memset(q, 0, sizeof(*q));
    q->svc = &svc;
    q->lp = &F.lp;
    q->token = str_c(token);
    q->now = now;
    q->done = on_answer;
    snprintf(q->client_id, sizeof(q->client_id), "%s", client);
    snprintf(q->want_scope, sizeof(q->want_scope), "%s", scope);
    answers = 0;
    return wait_answer(tok_rotate(q));
}

static bool active(const char *token, int64_t now)
{
    return fx_rt_active(F.st, key, token, "app", now);
}

TEST(rotation_spends_once_answers_again_in_grace_and_revokes_on_reuse)
{
    struct tok_family f;
    struct tok_rotation q;
    char t1[TOK_REFRESH_LEN + 1], t2[TOK_REFRESH_LEN + 1];
    setup();
    start_family(&f, "read write", 1000);
    snprintf(t1, sizeof(t1), "%s", f.token);
    ASSERT_TRUE(active(t1, 1001));
    /* rotated: a successor with the family's user and scope */
    ASSERT_EQ_INT(rotate(&q, t1, "app", "", 1001), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED);
    ASSERT_EQ_STR(q.sub, "u-ann");
    ASSERT_EQ_STR(q.scope, "read write");
    snprintf(t2, sizeof(t2), "%s", q.successor);
    ASSERT_TRUE(!active(t1, 1001));
    ASSERT_TRUE(active(t2, 1001));
    /* the same token within the grace window: the same successor, nothing revoked */
    ASSERT_EQ_INT(rotate(&q, t1, "app", "", 1003), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED_GRACE);
    ASSERT_EQ_STR(q.successor, t2);
    ASSERT_TRUE(active(t2, 1003));
    /* after it: reuse, and the whole family ends */
    ASSERT_EQ_INT(rotate(&q, t1, "app", "", 1010), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATE_INVALID);
    ASSERT_TRUE(q.reused);
    ASSERT_TRUE(!active(t2, 1010));
    ASSERT_EQ_INT(rotate(&q, t2, "app", "", 1011), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATE_INVALID);
    teardown();
}

static void exec_answers(struct store_op *op)
{
    (void)op; /* store_exec answers by its return value */
}

/* A family's first token `token` for u-old, as a release that made it stored it. */
static void put_first(const char *token, int64_t now)
{
    struct store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_REFRESH_ISSUE;
    op.on_done = exec_answers;
    op.now = now;
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(token), op.digest), ERR_OK);
    cr_random(op.rt.family, STORE_FAMILY_ID);
    op.rt.issued_at = now;
    op.rt.expires_at = op.rt.idle_expires_at = now + 4000;
    snprintf(op.rt.sub, sizeof(op.rt.sub), "u-old");
    snprintf(op.rt.client_id, sizeof(op.rt.client_id), "app");
    snprintf(op.rt.scope, sizeof(op.rt.scope), "read");
    ASSERT_EQ_INT(store_exec(F.st, &op), ERR_OK);
}

/* `label` || token keyed with the server key: the rule every release derived digests and
 * successors by, stated here on its own. */
static void keyed(const char *label, const char *token, uint8_t out[CR_HASH_LEN])
{
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "%s%s", label, token);
    cr_keyed_hash(out, key, msg, (size_t)n);
}

/* A token of 46 characters as made before stamps: the group, then 256 random bits. */
static void unstamped(unsigned group, char out[TOK_REFRESH_LEN + 1])
{
    uint8_t g[2], raw[32];
    store_group_put(g, group);
    cr_random(raw, sizeof(raw));
    cr_b64url_encode(g, 2, out, 4);
    cr_b64url_encode(raw, 32, out + 3, TOK_REFRESH_LEN_V1 + 1);
}

static uint64_t stamp_of(const uint8_t d[STORE_DIGEST])
{
    uint64_t v = 0;
    for (int i = 2; i < 10; i++)
        v = v << 8 | d[i];
    return v;
}

/* A token is stamped with its issue time, which its digest carries in bytes 2-9 (where an
 * ordered store keys it) beside its group; a successor is stamped when it is made. Tokens
 * of 46 characters from before stamps keep their digest (so an upgraded store finds them)
 * and rotate into a stamped successor; a rotation made before stamps answers its
 * unstamped successor again within the grace window. */
TEST(tokens_are_stamped_and_tokens_from_before_stamps_still_rotate)
{
    struct tok_rotation q;
    uint8_t d[STORE_DIGEST], want[STORE_DIGEST];
    char t[TOK_REFRESH_LEN + 1], u[TOK_REFRESH_LEN + 1], s1[TOK_REFRESH_LEN + 1];
    unsigned g = store_group_of("u-old");
    setup();
    tok_refresh_new(g, 0x0102030405060708, t);
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(t), d), ERR_OK);
    ASSERT_TRUE(stamp_of(d) == 0x0102030405060708u);
    ASSERT_EQ_INT((int)store_group_in(d), (int)g);

    /* from before stamps: the digest it always had */
    unstamped(g, u);
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(u), d), ERR_OK);
    keyed("refresh\n", u, want);
    store_group_put(want, g);
    ASSERT_TRUE(memcmp(d, want, sizeof(d)) == 0);
    put_first(u, 1000);
    int64_t before = clock_wall_us();
    ASSERT_EQ_INT(rotate(&q, u, "app", "", 1001), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED);
    snprintf(s1, sizeof(s1), "%s", q.successor);
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(s1), d), ERR_OK);
    ASSERT_EQ_INT((int)store_group_in(d), (int)g);
    ASSERT_TRUE(stamp_of(d) >= (uint64_t)before && stamp_of(d) <= (uint64_t)clock_wall_us());
    ASSERT_EQ_INT(rotate(&q, u, "app", "", 1002), ERR_OK); /* within grace: the same one */
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED_GRACE);
    ASSERT_EQ_STR(q.successor, s1);
    ASSERT_TRUE(active(s1, 1002));

    /* rotated before stamps: its successor was the group and the keyed successor hash */
    char s0[TOK_REFRESH_LEN + 1];
    uint8_t h[CR_HASH_LEN];
    struct store_op op;
    unstamped(g, u);
    put_first(u, 1000);
    keyed("successor\n", u, h);
    memcpy(s0, u, 3);
    cr_b64url_encode(h, sizeof(h), s0 + 3, TOK_REFRESH_LEN_V1 + 1);
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_REFRESH_ROTATE;
    op.on_done = exec_answers;
    op.now = 1001;
    op.grace_s = 5;
    op.rt.idle_expires_at = 1101;
    snprintf(op.rt.client_id, sizeof(op.rt.client_id), "app");
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(u), op.old_digest), ERR_OK);
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(s0), op.digest), ERR_OK);
    ASSERT_EQ_INT(store_exec(F.st, &op), ERR_OK);
    ASSERT_EQ_INT(op.rotate_result, STORE_ROTATED);
    ASSERT_EQ_INT(rotate(&q, u, "app", "", 1002), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED_GRACE);
    ASSERT_EQ_STR(q.successor, s0);
    teardown();
}

/* tok_refresh_successor gives the successor's digest with it, made from the bytes it just
 * encoded: the digest tok_refresh_digest reads from the successor's text, for a stamped
 * token, one from before stamps and one from before groups. */
TEST(a_successor_comes_with_its_own_digest)
{
    char t[3][TOK_REFRESH_LEN + 1], succ[TOK_REFRESH_LEN + 1];
    uint8_t given[CR_HASH_LEN], read[CR_HASH_LEN], raw[32];
    tok_refresh_new(store_group_of("u-a"), 0x0006123456789abc, t[0]);
    unstamped(store_group_of("u-b"), t[1]);
    cr_random(raw, sizeof(raw));
    cr_b64url_encode(raw, sizeof(raw), t[2], TOK_REFRESH_LEN_V1 + 1);
    for (int i = 0; i < 3; i++) {
        memset(given, 0, sizeof(given));
        tok_refresh_successor(key, str_c(t[i]), 0x0006123456789abd + i, succ, given);
        ASSERT_EQ_INT((int)strlen(succ), i < 2 ? TOK_REFRESH_LEN : TOK_REFRESH_LEN_V1);
        ASSERT_EQ_INT(tok_refresh_digest(key, str_c(succ), read), ERR_OK);
        ASSERT_EQ_MEM(given, sizeof(given), read, sizeof(read));
        if (i < 2)
            ASSERT_TRUE(stamp_of(given) == (uint64_t)0x0006123456789abd + (uint64_t)i);
    }
}

/* A token carries its user's group, as its digest, its successor's and its family's do (a
 * sharded store keeps them on one shard); a token issued before groups (43 characters) is
 * still rotated, into a successor of its kind. */
TEST(tokens_carry_their_users_group_and_tokens_from_before_groups_still_rotate)
{
    struct tok_family f;
    struct tok_rotation q;
    uint8_t d[STORE_DIGEST];
    unsigned g = store_group_of("u-ann");
    setup();
    start_family(&f, "read", 1000);
    ASSERT_EQ_INT((int)strlen(f.token), TOK_REFRESH_LEN);
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(f.token), d), ERR_OK);
    ASSERT_EQ_INT((int)store_group_in(d), (int)g);
    ASSERT_EQ_INT(rotate(&q, f.token, "app", "", 1001), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED);
    ASSERT_TRUE(strncmp(q.successor, f.token, 3) == 0); /* (the group, not a secret) */
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(q.successor), d), ERR_OK);
    ASSERT_EQ_INT((int)store_group_in(d), (int)g);
    /* a group past the last is not a token */
    char bad[TOK_REFRESH_LEN + 1];
    snprintf(bad, sizeof(bad), "__8%s", f.token + 3);
    ASSERT_EQ_INT(tok_refresh_digest(key, str_c(bad), d), ERR_INVAL);

    /* a token of before: 43 characters, its record stored under the plain keyed digest */
    char old[TOK_REFRESH_LEN + 1];
    snprintf(old, sizeof(old), "%s", f.token + 3);
    put_first(old, 1000);
    ASSERT_EQ_INT(rotate(&q, old, "app", "", 1001), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED);
    ASSERT_EQ_STR(q.sub, "u-old");
    ASSERT_EQ_INT((int)strlen(q.successor), TOK_REFRESH_LEN_V1);
    ASSERT_TRUE(active(q.successor, 1001));
    ASSERT_TRUE(!active(old, 1001));
    teardown();
}

TEST(rotation_refuses_other_clients_wider_scopes_and_strangers_without_spending)
{
    struct tok_family f;
    struct tok_rotation q;
    char t1[TOK_REFRESH_LEN + 1], stranger[TOK_REFRESH_LEN + 1];
    setup();
    start_family(&f, "read write", 1000);
    snprintf(t1, sizeof(t1), "%s", f.token);
    ASSERT_EQ_INT(rotate(&q, t1, "other", "", 1001), ERR_OK); /* another client's */
    ASSERT_EQ_INT(q.outcome, TOK_ROTATE_INVALID);
    ASSERT_TRUE(!q.reused);
    ASSERT_EQ_INT(rotate(&q, t1, "app", "read admin", 1001), ERR_OK); /* beyond the grant */
    ASSERT_EQ_INT(q.outcome, TOK_ROTATE_SCOPE);
    ASSERT_TRUE(active(t1, 1001)); /* neither spent it */
    ASSERT_EQ_INT(rotate(&q, "not-a-token", "app", "", 1001), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATE_INVALID);
    tok_refresh_new(7, 1000000, stranger);
    ASSERT_EQ_INT(rotate(&q, stranger, "app", "read", 1001), ERR_OK); /* unknown, scoped */
    ASSERT_EQ_INT(q.outcome, TOK_ROTATE_INVALID);
    /* a narrower scope is granted for this access token; the family keeps its own */
    ASSERT_EQ_INT(rotate(&q, t1, "app", "read", 1002), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATED);
    ASSERT_EQ_STR(q.scope, "read");
    snprintf(t1, sizeof(t1), "%s", q.successor);
    ASSERT_EQ_INT(rotate(&q, t1, "app", "", 1003), ERR_OK);
    ASSERT_EQ_STR(q.scope, "read write");
    /* past the idle lifetime: expired */
    snprintf(t1, sizeof(t1), "%s", q.successor);
    ASSERT_EQ_INT(rotate(&q, t1, "app", "", 1003 + 101), ERR_OK);
    ASSERT_EQ_INT(q.outcome, TOK_ROTATE_INVALID);
    teardown();
}

TEST(rotation_reuse_with_revoke_all_ends_every_family_of_the_user)
{
    struct tok_family f1, f2;
    struct tok_rotation q;
    struct pool *pool;
    char a[TOK_REFRESH_LEN + 1], b[TOK_REFRESH_LEN + 1];
    setup();
    ASSERT_EQ_INT(pool_new(1, 16, 0, &pool), 0);
    svc.pool = pool;
    svc.reuse_revokes_all = true;
    start_family(&f1, "read", 1000);
    start_family(&f2, "read", 1000); /* the same user on a second device */
    snprintf(a, sizeof(a), "%s", f1.token);
    snprintf(b, sizeof(b), "%s", f2.token);
    ASSERT_EQ_INT(rotate(&q, a, "app", "", 1001), ERR_OK);
    ASSERT_EQ_INT(rotate(&q, a, "app", "", 1100), ERR_OK); /* reuse */
    ASSERT_TRUE(q.reused);
    for (int i = 0; i < 500 && active(b, 1100); i++) { /* the scan runs on the pool */
        uv_run(&F.lp.uv, UV_RUN_NOWAIT);
        usleep(10000);
    }
    ASSERT_TRUE(!active(b, 1100));
    pool_drain(pool);
    uv_run(&F.lp.uv, UV_RUN_NOWAIT);
    pool_free(pool);
    teardown();
}

/* ---- revocation: a refresh family ends only for its own client, an access token is
 * remembered as revoked and leaves the cache, both at once, durably; a stranger's token
 * revokes nothing and is not an error ---- */

static void on_revoked(struct tok_revocation *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static void family(char out[TOK_REFRESH_LEN + 1])
{
    ASSERT_EQ_INT(fx_family(&F, &svc, "u-ann", "app", "", 1000, out), 0);
}

static int do_revoke(struct tok_revocation *q, const char *refresh, const char *client,
                     const char *jti)
{
    memset(q, 0, sizeof(*q));
    q->svc = &svc;
    q->lp = &F.lp;
    q->refresh = refresh ? str_c(refresh) : STR_NULL;
    q->now = 1001;
    q->done = on_revoked;
    snprintf(q->client_id, sizeof(q->client_id), "%s", client);
    snprintf(q->jti, sizeof(q->jti), "%s", jti);
    q->jti_exp = 2000;
    answers = 0;
    return wait_answer(tok_revoke(q));
}

TEST(a_family_ends_only_for_its_own_client)
{
    struct tok_revocation q;
    char a[TOK_REFRESH_LEN + 1], stranger[TOK_REFRESH_LEN + 1];
    setup();
    family(a);
    ASSERT_EQ_INT(do_revoke(&q, a, "other", ""), ERR_OK); /* another client's: nothing */
    ASSERT_TRUE(!q.family_revoked);
    ASSERT_TRUE(active(a, 1001));
    tok_refresh_new(7, 1000000, stranger);
    ASSERT_EQ_INT(do_revoke(&q, stranger, "app", ""), ERR_OK); /* unknown: not an error */
    ASSERT_TRUE(!q.family_revoked);
    ASSERT_EQ_INT(do_revoke(&q, "garbage", "app", ""), ERR_OK);
    ASSERT_EQ_INT(do_revoke(&q, a, "app", ""), ERR_OK);
    ASSERT_TRUE(q.family_revoked);
    ASSERT_TRUE(!active(a, 1001));
    teardown();
}

TEST(an_access_token_and_a_family_at_once_durably)
{
    struct tok_revocation q;
    struct buf b;
    char a[TOK_REFRESH_LEN + 1];
    const char *jti = "J123456789012345678901";
    setup();
    struct tok_cache *cache = tok_cache_new(16); /* (also sizes what the process remembers) */
    family(a);
    ASSERT_EQ_INT(tok_revoked_known(jti, strlen(jti), 1001), 0);
    ASSERT_EQ_INT(do_revoke(&q, a, "app", jti), ERR_OK);
    ASSERT_TRUE(q.family_revoked);
    ASSERT_TRUE(q.access_revoked);
    ASSERT_TRUE(!active(a, 1001));
    ASSERT_EQ_INT(tok_revoked_known(jti, strlen(jti), 1001), 1); /* this process knows */
    buf_init(&b, 64);
    ASSERT_EQ_INT(store_get(F.st, STORE_T_REVOKED, jti, strlen(jti), &b, NULL, NULL),
                  0); /* stored */
    buf_fini(&b);
    tok_cache_free(cache);
    teardown();
}
