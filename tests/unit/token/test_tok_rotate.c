/* SPDX-License-Identifier: MIT */
/* Refresh rotation without HTTP (#12 item 1): a family started, rotated, answered again in
 * the grace window, reused (revoked), refused for another client or a wider scope, on the
 * embedded store driven by a real loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"
#include "loop/loop.h"
#include "loop/pool.h"
#include "store/store.h"
#include "token/tok_introspect.h"
#include "token/tok_rotate.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {7};
static struct loop lp;
static struct store *st;
static struct tok_svc svc;
static int answers, last_rc;
static char dir[64];

static void on_answer(struct tok_rotation *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static void on_family(struct tok_family *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

/* Runs the loop until the operation answered; its final code. */
static int wait_answer(int rc)
{
    if (rc != ERR_AGAIN)
        return rc;
    while (answers == 0)
        uv_run(&lp.uv, UV_RUN_ONCE);
    return last_rc;
}

static void setup(void)
{
    char cmd[96], err[256];
    snprintf(dir, sizeof(dir), "/tmp/fg-rot-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    memset(&svc, 0, sizeof(svc));
    svc.st = st;
    svc.key = key;
    svc.refresh_ttl_s = 1000;
    svc.refresh_idle_s = 100;
    svc.refresh_grace_s = 5;
}

static void teardown(void)
{
    char cmd[96];
    store_loop_release(st, &lp);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(system(cmd), 0);
}

static void start_family(struct tok_family *f, const char *scope, int64_t now)
{
    memset(f, 0, sizeof(*f));
    f->svc = &svc;
    f->lp = &lp;
    f->done = on_family;
    f->now = now;
    snprintf(f->sub, sizeof(f->sub), "u-ann");
    snprintf(f->client_id, sizeof(f->client_id), "app");
    snprintf(f->scope, sizeof(f->scope), "%s", scope);
    answers = 0;
    ASSERT_EQ_INT(wait_answer(tok_family_start(f)), ERR_OK);
}

/* Rotates `token` for `client` asking `scope` at `now`; q holds the outputs. */
static int rotate(struct tok_rotation *q, const char *token, const char *client, const char *scope,
                  int64_t now)
{
    memset(q, 0, sizeof(*q));
    q->svc = &svc;
    q->lp = &lp;
    q->token = str_c(token);
    q->now = now;
    q->done = on_answer;
    snprintf(q->client_id, sizeof(q->client_id), "%s", client);
    snprintf(q->want_scope, sizeof(q->want_scope), "%s", scope);
    answers = 0;
    return wait_answer(tok_rotate(q));
}

static void never(struct tok_rt_introspection *q, int rc)
{
    (void)q;
    (void)rc;
    harness_fail(__FILE__, __LINE__, "the embedded store reads at once");
}

static bool active(const char *token, int64_t now)
{
    struct tok_rt_introspection q;
    memset(&q, 0, sizeof(q));
    q.st = st;
    q.now = now;
    q.done = never;
    snprintf(q.client_id, sizeof(q.client_id), "app");
    return tok_rt_introspect(&q, key, str_c(token)) == ERR_OK && q.active;
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
    tok_refresh_new(stranger);
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
        uv_run(&lp.uv, UV_RUN_NOWAIT);
        usleep(10000);
    }
    ASSERT_TRUE(!active(b, 1100));
    pool_drain(pool);
    uv_run(&lp.uv, UV_RUN_NOWAIT);
    pool_free(pool);
    teardown();
}
