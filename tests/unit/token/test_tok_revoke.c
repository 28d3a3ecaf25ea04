/* SPDX-License-Identifier: MIT */
/* Revocation without HTTP (#12 item 1): a refresh family ends only for its own client, an
 * access token is remembered as revoked and leaves the cache, both at once, durably; a
 * stranger's token revokes nothing and is not an error. Embedded store, real loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"
#include "loop/loop.h"
#include "token/tok_cache.h"
#include "token/tok_introspect.h"
#include "token/tok_revoke.h"
#include "token/tok_rotate.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {5};
static struct loop lp;
static struct store *st;
static struct tok_svc svc;
static int answers, last_rc;
static char dir[64];

static void on_revoked(struct tok_revocation *q, int rc)
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
    snprintf(dir, sizeof(dir), "/tmp/fg-revoke-test-%d", (int)getpid());
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

static void family(char out[TOK_REFRESH_LEN + 1])
{
    struct tok_family f;
    memset(&f, 0, sizeof(f));
    f.svc = &svc;
    f.lp = &lp;
    f.done = on_family;
    f.now = 1000;
    snprintf(f.sub, sizeof(f.sub), "u-ann");
    snprintf(f.client_id, sizeof(f.client_id), "app");
    answers = 0;
    ASSERT_EQ_INT(wait_answer(tok_family_start(&f)), 0);
    memcpy(out, f.token, TOK_REFRESH_LEN + 1);
}

static void nothing(struct tok_rt_introspection *q, int rc)
{
    (void)q;
    (void)rc;
}

static bool active(const char *token)
{
    struct tok_rt_introspection q;
    memset(&q, 0, sizeof(q));
    q.st = st;
    q.now = 1001;
    q.done = nothing;
    snprintf(q.client_id, sizeof(q.client_id), "app");
    return tok_rt_introspect(&q, key, str_c(token)) == ERR_OK && q.active;
}

static int do_revoke(struct tok_revocation *q, const char *refresh, const char *client,
                     const char *jti)
{
    memset(q, 0, sizeof(*q));
    q->svc = &svc;
    q->lp = &lp;
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
    ASSERT_TRUE(active(a));
    tok_refresh_new(stranger);
    ASSERT_EQ_INT(do_revoke(&q, stranger, "app", ""), ERR_OK); /* unknown: not an error */
    ASSERT_TRUE(!q.family_revoked);
    ASSERT_EQ_INT(do_revoke(&q, "garbage", "app", ""), ERR_OK);
    ASSERT_EQ_INT(do_revoke(&q, a, "app", ""), ERR_OK);
    ASSERT_TRUE(q.family_revoked);
    ASSERT_TRUE(!active(a));
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
    ASSERT_TRUE(!active(a));
    ASSERT_EQ_INT(tok_revoked_known(jti, strlen(jti), 1001), 1); /* this process knows */
    buf_init(&b, 64);
    ASSERT_EQ_INT(store_get(st, STORE_T_REVOKED, jti, strlen(jti), &b, NULL, NULL), 0); /* stored */
    buf_fini(&b);
    tok_cache_free(cache);
    teardown();
}
