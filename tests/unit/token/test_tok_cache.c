/* SPDX-License-Identifier: MIT */
/* The verification cache: hits, expiry, and revocations published by jti (only that token's
 * entries go, in every thread's cache) or by epoch (everything is rechecked). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "token/tok_cache.h"

static struct tok_claims claims(const char *jti, int64_t exp)
{
    struct tok_claims cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.jti, sizeof(cl.jti), "%s", jti);
    snprintf(cl.sub, sizeof(cl.sub), "sub-%s", jti);
    cl.exp = exp;
    return cl;
}

TEST(hit_miss_and_expiry)
{
    struct tok_cache *c = tok_cache_new(64);
    struct tok_claims cl = claims("j1", 100), out;
    uint64_t e = tok_revocation_epoch();
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-1"), 10, e, &out), 0);
    tok_cache_put(c, STR_LIT("token-1"), &cl, e);
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-1"), 10, e, &out), 1);
    ASSERT_EQ_STR(out.sub, "sub-j1");
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-2"), 10, e, &out), 0);
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-1"), 100, e, &out), 0); /* at exp: gone */
    tok_cache_free(c);
}

/* Two caches (two loop threads): a publication drops the revoked token in both, and no
 * other entry. */
TEST(revocation_by_jti_drops_only_that_token_everywhere)
{
    struct tok_cache *a = tok_cache_new(4096), *b = tok_cache_new(4096);
    struct tok_claims out;
    uint64_t e = tok_revocation_epoch();
    char tok[32], jti[32];
    for (int i = 0; i < 100; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        snprintf(jti, sizeof(jti), "jti-%d", i);
        struct tok_claims cl = claims(jti, 1000);
        tok_cache_put(a, str_c(tok), &cl, e);
        tok_cache_put(b, str_c(tok), &cl, e);
    }
    /* direct-mapped: a few tokens may have replaced each other; note who is in */
    int in_a[100], in_b[100], r1 = -1, r2 = -1;
    for (int i = 0; i < 100; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        in_a[i] = tok_cache_get(a, str_c(tok), 10, e, &out) == 1;
        in_b[i] = tok_cache_get(b, str_c(tok), 10, e, &out) == 1;
        if (in_a[i] && in_b[i])
            r1 < 0 ? (void)(r1 = i) : (void)(r2 = i);
    }
    ASSERT_TRUE(r1 >= 0 && r2 > r1);
    snprintf(jti, sizeof(jti), "jti-%d", r1);
    tok_revoked_publish(jti, strlen(jti), 0, 0);
    snprintf(jti, sizeof(jti), "jti-%d", r2);
    tok_revoked_publish(jti, strlen(jti), 0, 0);
    for (int i = 0; i < 100; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        int gone = i == r1 || i == r2;
        ASSERT_EQ_INT(tok_cache_get(a, str_c(tok), 10, e, &out) == 1, in_a[i] && !gone);
        ASSERT_EQ_INT(tok_cache_get(b, str_c(tok), 10, e, &out) == 1, in_b[i] && !gone);
    }
    tok_cache_free(a);
    tok_cache_free(b);
}

/* A check that a revocation overtook is not cached; an epoch bump makes entries stale. */
TEST(overtaken_check_is_not_cached_and_epoch_rechecks)
{
    struct tok_cache *c = tok_cache_new(256);
    struct tok_claims cl = claims("j9", 1000), out;
    uint64_t e = tok_revocation_epoch(), seq = tok_revoked_seq();
    tok_revoked_publish("other", 5, 0, 0); /* lands while "j9" is being checked */
    tok_cache_put_checked(c, STR_LIT("token-9"), &cl, e, seq);
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-9"), 10, e, &out), 0);
    seq = tok_revoked_seq();
    tok_cache_put_checked(c, STR_LIT("token-9"), &cl, e, seq);
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-9"), 10, e, &out), 1);
    tok_revocation_bump();
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-9"), 10, tok_revocation_epoch(), &out), 2);
    tok_cache_free(c);
}

/* More publications than a cache can follow one by one: it drops everything (safe). */
TEST(falling_behind_drops_everything)
{
    struct tok_cache *c = tok_cache_new(256);
    struct tok_claims cl = claims("keep", 1000), out;
    uint64_t e = tok_revocation_epoch();
    char jti[32];
    tok_cache_put(c, STR_LIT("token-k"), &cl, e);
    for (int i = 0; i < 2000; i++) {
        snprintf(jti, sizeof(jti), "x-%d", i);
        tok_revoked_publish(jti, strlen(jti), 0, 0);
    }
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-k"), 10, e, &out), 0);
    tok_cache_free(c);
}

/* Publishers on several threads while a reader syncs: no torn state (TSan/ASan), and the
 * reader ends up seeing every publication. */
static void *publisher(void *arg)
{
    char jti[32];
    for (int i = 0; i < 500; i++) {
        snprintf(jti, sizeof(jti), "p%d-%d", (int)(intptr_t)arg, i);
        tok_revoked_publish(jti, strlen(jti), 0, 0);
    }
    return NULL;
}

TEST(concurrent_publications)
{
    struct tok_cache *c = tok_cache_new(1024);
    struct tok_claims cl = claims("p1-499", 1000), out;
    uint64_t e = tok_revocation_epoch();
    pthread_t th[3];
    tok_cache_put(c, STR_LIT("token-last"), &cl, e);
    for (int t = 0; t < 3; t++)
        pthread_create(&th[t], NULL, publisher, (void *)(intptr_t)t);
    for (int i = 0; i < 2000; i++)
        tok_cache_get(c, STR_LIT("token-x"), 10, e, &out);
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    ASSERT_EQ_INT(tok_cache_get(c, STR_LIT("token-last"), 10, e, &out), 0);
    tok_cache_free(c);
}

/* The known revocations (issue #11 item 3): kept until exp, and an overflow makes the table
 * say "cannot tell" while a forgotten token could still be alive, never "not revoked". */
TEST(known_revocations_expire_and_never_forget_silently)
{
    char jti[32];
    tok_revoked_reset();
    ASSERT_EQ_INT(tok_revoked_known("a", 1, 100), 0);
    tok_revoked_remember("a", 1, 200, 100);
    ASSERT_EQ_INT(tok_revoked_known("a", 1, 150), 1);
    ASSERT_EQ_INT(tok_revoked_known("b", 1, 150), 0);
    ASSERT_EQ_INT(tok_revoked_known("a", 1, 200), 0); /* its token has expired: moot */
    tok_revoked_remember("a", 1, 300, 100);           /* heard again: the later exp holds */
    ASSERT_EQ_INT(tok_revoked_known("a", 1, 250), 1);
    /* fill it with live entries: the earliest expiring is forgotten, and until it would
     * have expired an unknown jti cannot be vouched for */
    for (int i = 0; i < TOK_REVOKED_KNOWN_MAX; i++) {
        snprintf(jti, sizeof(jti), "j%d", i);
        tok_revoked_remember(jti, strlen(jti), 1000 + i, 100);
    }
    ASSERT_EQ_INT(tok_revoked_known("zz", 2, 150), -1);
    snprintf(jti, sizeof(jti), "j%d", TOK_REVOKED_KNOWN_MAX - 1);
    ASSERT_EQ_INT(tok_revoked_known(jti, strlen(jti), 150), 1); /* the newest are kept */
    ASSERT_EQ_INT(tok_revoked_known("zz", 2, 1000 + TOK_REVOKED_KNOWN_MAX), 0);
    tok_revoked_reset();
}
