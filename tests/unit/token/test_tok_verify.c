/* SPDX-License-Identifier: MIT */
/* Access-token verification without HTTP (#12 item 1): a token of ours is active until it
 * expires or is revoked, a forged or foreign one never; the cache answers only while no
 * revocation was heard; a token signed by a key rotated in since the thread's copy is
 * found. On the embedded store, whose reads complete at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"
#include "loop/pool.h"
#include "store/store.h"
#include "token/tok_cache.h"
#include "token/tok_revoke.h"
#include "token/tok_verify.h"

static struct store *st;
static struct tok_svc svc;
static struct tok_local t;
static struct fx F;

static void never(struct tok_verification *q, int rc)
{
    (void)q;
    (void)rc;
    harness_fail(__FILE__, __LINE__, "the embedded store reads at once");
}

static void setup(void)
{
    ASSERT_EQ_INT(fx_open(&F, "verify-test"), 0);
    st = F.st;
    memset(&svc, 0, sizeof(svc));
    ASSERT_EQ_INT(fx_keys(&F, &svc.ring), 0);
    svc.st = st;
    svc.issuer = "https://id.test";
    svc.leeway_s = 5;
    svc.cache_entries = 64;
    pthread_mutex_init(&svc.ring_mu, NULL);
    atomic_store(&svc.ring_version, 1);
    ASSERT_EQ_INT(tok_local_start(&t, &svc, NULL, 1000), 0);
}

static void teardown(void)
{
    tok_local_stop(&t);
    tok_ring_clear(&svc.ring);
    pthread_mutex_destroy(&svc.ring_mu);
    fx_close(&F);
}

/* A token for sub "ann" issued at `now` for ttl seconds, into out. */
static void issue(int64_t now, int64_t ttl, char *out, size_t cap, char jti[TOK_JTI_LEN + 1])
{
    struct tok_claims cl;
    struct buf b;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "ann");
    snprintf(cl.client_id, sizeof(cl.client_id), "app");
    snprintf(cl.aud, sizeof(cl.aud), "api");
    buf_init(&b, 8192);
    ASSERT_EQ_INT(
        tok_jwt_issue(tok_local_ring(&t, now), TOK_ALG_EDDSA, svc.issuer, now, ttl, &cl, &b), 0);
    ASSERT_TRUE(b.len < cap);
    memcpy(out, b.p, b.len);
    out[b.len] = '\0';
    snprintf(jti, TOK_JTI_LEN + 1, "%s", cl.jti);
    buf_fini(&b);
}

static int verify(const char *token, int64_t now, struct tok_claims *cl)
{
    struct tok_verification q;
    memset(&q, 0, sizeof(q));
    q.t = &t;
    q.token = str_c(token);
    q.now = now;
    q.done = never;
    int rc = tok_verify(&q);
    if (cl)
        *cl = q.cl;
    return rc;
}

static void exec_done(struct store_op *op)
{
    (void)op;
}

TEST(verification_follows_signature_time_and_revocation)
{
    char tok[4096], jti[TOK_JTI_LEN + 1];
    struct tok_claims cl;
    setup();
    issue(1000, 60, tok, sizeof(tok), jti);
    ASSERT_EQ_INT(verify(tok, 1001, &cl), ERR_OK);
    ASSERT_EQ_STR(cl.sub, "ann");
    ASSERT_EQ_STR(cl.jti, jti);
    ASSERT_EQ_INT(verify(tok, 1001, NULL), ERR_OK);                 /* from the cache now */
    ASSERT_EQ_INT(verify(tok, 1000 + 60 + 5 + 1, NULL), ERR_INVAL); /* expired past leeway */
    /* forged: one character of the signature changed */
    char bad[4096];
    snprintf(bad, sizeof(bad), "%s", tok);
    size_t n = strlen(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    ASSERT_EQ_INT(verify(bad, 1001, NULL), ERR_INVAL);
    ASSERT_EQ_INT(verify("not.a.jwt", 1001, NULL), ERR_INVAL);
    /* another issuer's: refused */
    svc.issuer = "https://other.test";
    ASSERT_EQ_INT(verify(bad, 1001, NULL), ERR_INVAL);
    svc.issuer = "https://id.test";
    ASSERT_EQ_INT(verify(tok, 1001, NULL), ERR_OK); /* (cached again: the expiry dropped it) */
    /* revoked in the store (by another instance: this process heard nothing), while its
     * cache entry is fresh: the cache answers until a revocation is published... */
    struct store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_JTI_REVOKE;
    op.on_done = exec_done;
    op.now = 1002;
    op.key_len = strlen(jti);
    memcpy(op.key, jti, op.key_len);
    op.jti_expires_at = 1000 + 60 + 5;
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(verify(tok, 1003, NULL), ERR_OK);
    tok_revoked_publish(jti, strlen(jti), op.jti_expires_at, 1002); /* ... as it is here */
    ASSERT_EQ_INT(verify(tok, 1003, NULL), ERR_INVAL);
    /* and a token whose revocation is only in the store is refused on its first check */
    char tok2[4096], jti2[TOK_JTI_LEN + 1];
    issue(1000, 60, tok2, sizeof(tok2), jti2);
    op.key_len = strlen(jti2);
    memcpy(op.key, jti2, op.key_len);
    ASSERT_EQ_INT(store_exec(st, &op), 0);
    ASSERT_EQ_INT(verify(tok2, 1003, NULL), ERR_INVAL);
    /* signature only (for revoking): valid, whether revoked or not */
    ASSERT_EQ_INT(tok_verify_signed(&t, str_c(tok2), 1003, &cl), ERR_OK);
    ASSERT_EQ_STR(cl.jti, jti2);
    ASSERT_EQ_INT(tok_verify_signed(&t, str_c(bad), 1003, &cl), ERR_INVAL);
    teardown();
}

/* What a presented access token revokes (RFC 7009 §2.1-2.2): ours and live, for the client
 * it was issued to (or for anyone, at logout); a foreign or expired one, nothing. */
TEST(a_presented_access_token_is_revoked_only_when_it_is_ours)
{
    char tok[4096], jti[TOK_JTI_LEN + 1];
    struct tok_revocation q;
    setup();
    issue(1000, 60, tok, sizeof(tok), jti);
    memset(&q, 0, sizeof(q));
    q.svc = &svc;
    q.now = 1001;
    snprintf(q.client_id, sizeof(q.client_id), "someone-else");
    ASSERT_EQ_INT(tok_revocation_access(&q, &t, str_c(tok), true), ERR_DENIED);
    ASSERT_TRUE(q.access.p == NULL && q.jti[0] == '\0');
    ASSERT_EQ_INT(tok_revocation_access(&q, &t, str_c(tok), false), ERR_OK); /* logout */
    snprintf(q.client_id, sizeof(q.client_id), "app");
    memset(q.jti, 0, sizeof(q.jti));
    ASSERT_EQ_INT(tok_revocation_access(&q, &t, str_c(tok), true), ERR_OK);
    ASSERT_EQ_STR(q.jti, jti);
    ASSERT_EQ_INT(q.jti_exp, 1000 + 60 + 5); /* remembered until it would have expired */
    ASSERT_TRUE(!tok_is_refresh_token(str_c(tok)) && tok_is_refresh_token(STR_LIT("abc")));
    ASSERT_TRUE(!tok_is_refresh_token(STR_NULL));
    q.now = 1000 + 60 + 5 + 1;
    ASSERT_EQ_INT(tok_revocation_access(&q, &t, str_c(tok), true), ERR_NOTFOUND); /* expired */
    q.now = 1001;
    ASSERT_EQ_INT(tok_revocation_access(&q, &t, STR_LIT("not.a.jwt"), true), ERR_NOTFOUND);
    teardown();
}

static int resumed, resumed_rc[4];

static void on_resumed(struct tok_verification *q, int rc)
{
    (void)q;
    resumed_rc[resumed++ % 4] = rc;
}

TEST(a_key_rotated_in_since_the_threads_copy_is_read_on_the_pool)
{
    char tok[4096], kid[TOK_KID_MAX + 1];
    int64_t from;
    struct pool *pool;
    setup();
    ASSERT_EQ_INT(pool_new(1, 16, 0, &pool), 0);
    svc.pool = pool;
    tok_local_stop(&t);
    ASSERT_EQ_INT(tok_local_start(&t, &svc, &F.lp, 1000), 0); /* on the fixture's loop */
    /* another instance rotates: a new key, signing from now */
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_EDDSA, 1000, 0, 86400, kid, &from), 0);
    struct tok_ring other = {0};
    ASSERT_EQ_INT(tok_ring_load(&other, st), 0);
    struct tok_claims cl;
    struct buf b;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "ann");
    buf_init(&b, 8192);
    ASSERT_EQ_INT(tok_jwt_issue(&other, TOK_ALG_EDDSA, svc.issuer, from, 60, &cl, &b),
                  0); /* signed there */
    snprintf(tok, sizeof(tok), "%.*s", (int)b.len, b.p);
    buf_fini(&b);
    tok_ring_clear(&other);
    /* this thread does not hold the key, and the store has moved past its ring: a revocation
     * cannot tell yet (503, nothing revoked), never "not ours" */
    ASSERT_EQ_INT(tok_verify_signed(&t, str_c(tok), from, &cl), ERR_BACKEND);
    /* three verifications wait for one read of the ring on the pool, then all pass */
    struct tok_verification q[3];
    resumed = 0;
    for (int i = 0; i < 3; i++) {
        memset(&q[i], 0, sizeof(q[i]));
        q[i].t = &t;
        q[i].token = str_c(tok);
        q[i].now = from;
        q[i].done = on_resumed;
        ASSERT_EQ_INT(tok_verify(&q[i]), ERR_AGAIN);
    }
    ASSERT_TRUE(t.reloading);
    fx_wait(&F, &resumed, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(resumed_rc[i], ERR_OK);
    ASSERT_TRUE(!t.reloading);
    ASSERT_EQ_INT(tok_verify_signed(&t, str_c(tok), from, &cl), ERR_OK); /* held now */
    pool_drain(pool);
    pool_free(pool);
    teardown();
}
