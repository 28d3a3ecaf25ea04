/* SPDX-License-Identifier: MIT */
/* Lockout with an injected clock: no test sleeps. */
#include <pthread.h>
#include <stdio.h>

#include "crypto/cr.h"
#include "harness.h"
#include "policy/pol_lockout.h"

static struct pol_lockout_cfg cfg(void)
{
    struct pol_lockout_cfg c = {
        .user = {10, 60, 3600, 900},
        .ip = {50, 60, 3600, 900},
        .pair = {3, 60, 240, 900},
        .entries = 4096,
    };
    return c;
}

static bool attempt(struct pol_lockout *l, const char *u, const char *ip, bool ok, int64_t now,
                    int64_t *retry)
{
    struct pol_attempt a;
    if (pol_lockout_begin(l, str_c(u), str_c(ip), now, &a, retry) != POL_ATTEMPT_OK)
        return false;
    pol_lockout_end(l, &a, ok, now);
    return true;
}

TEST(lock_after_limit_then_expiry_and_doubling)
{
    struct pol_lockout_cfg c = cfg();
    int64_t retry;
    cr_init();
    struct pol_lockout *l = pol_lockout_new(&c);
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, 1000, &retry));
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", false, 1001, &retry));
    ASSERT_EQ_INT(retry, 59);
    ASSERT_EQ_INT(pol_lockout_locked(l, 1001), 1);
    /* the lock is on the pair: ann from elsewhere, and others from this IP, go on */
    ASSERT_TRUE(attempt(l, "ann", "5.6.7.8", true, 1001, &retry));
    ASSERT_TRUE(attempt(l, "bob", "1.2.3.4", true, 1001, &retry));
    /* expires; the next lock lasts twice as long, then the cap */
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, 1060 + i, &retry));
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", false, 1063, &retry));
    ASSERT_EQ_INT(retry, 1062 + 120 - 1063);
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, 1200 + i, &retry));
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", false, 1203, &retry));
    ASSERT_EQ_INT(retry, 1202 + 240 - 1203); /* 4 * 60 = the cap of 240 */
    pol_lockout_free(l);
}

TEST(reservations_count_in_flight_attempts)
{
    struct pol_lockout_cfg c = cfg();
    struct pol_attempt a[10];
    int64_t retry;
    int granted = 0;
    cr_init();
    struct pol_lockout *l = pol_lockout_new(&c);
    int busy = 0;
    for (int i = 0; i < 10; i++) {
        int v = pol_lockout_begin(l, STR_LIT("ann"), STR_LIT("1.2.3.4"), 1000, &a[granted], &retry);
        if (v == POL_ATTEMPT_OK)
            granted++;
        busy += v == POL_ATTEMPT_BUSY;
    }
    ASSERT_EQ_INT(granted, 3); /* pair limit 3, none settled yet */
    /* refused only because attempts are in flight: "busy", never "wrong password" (issue
     * #11 item 9), with a retry hint */
    ASSERT_EQ_INT(busy, 7);
    ASSERT_EQ_INT(retry, 1);
    for (int i = 0; i < granted; i++)
        pol_lockout_end(l, &a[i], false, 1000);
    /* now the failures themselves fill the limit: locked */
    struct pol_attempt b;
    ASSERT_EQ_INT(pol_lockout_begin(l, STR_LIT("ann"), STR_LIT("1.2.3.4"), 1000, &b, &retry),
                  POL_ATTEMPT_LOCKED);
    pol_lockout_free(l);
}

static struct pol_lockout *shared;
static int granted_total;
static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        struct pol_attempt a;
        int64_t retry;
        if (pol_lockout_begin(shared, STR_LIT("victim"), STR_LIT("9.9.9.9"), 5000, &a, &retry) ==
            POL_ATTEMPT_OK) {
            pthread_mutex_lock(&gmu);
            granted_total++;
            pthread_mutex_unlock(&gmu);
            pol_lockout_end(shared, &a, false, 5000);
        }
    }
    return NULL;
}

TEST(parallel_wrong_passwords_never_exceed_the_limit)
{
    struct pol_lockout_cfg c = cfg();
    pthread_t th[8];
    cr_init();
    shared = pol_lockout_new(&c);
    granted_total = 0;
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ_INT(granted_total, 3);
    pol_lockout_free(shared);
}

TEST(success_clears_user_not_ip_and_window_forgets)
{
    struct pol_lockout_cfg c = cfg();
    int64_t retry;
    c.ip.attempts = 4;
    cr_init();
    struct pol_lockout *l = pol_lockout_new(&c);
    ASSERT_TRUE(attempt(l, "ann", "1.1.1.1", false, 100, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.1.1.1", false, 100, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.1.1.1", true, 100, &retry));  /* clears ann and the pair */
    ASSERT_TRUE(attempt(l, "bob", "1.1.1.1", false, 100, &retry)); /* IP: 3 failures */
    ASSERT_TRUE(attempt(l, "cat", "1.1.1.1", false, 100, &retry)); /* IP: 4: locked */
    ASSERT_TRUE(!attempt(l, "dan", "1.1.1.1", true, 101, &retry));
    /* failures older than the window are forgotten */
    ASSERT_TRUE(attempt(l, "eve", "2.2.2.2", false, 100, &retry));
    ASSERT_TRUE(attempt(l, "eve", "2.2.2.2", false, 100, &retry));
    ASSERT_TRUE(attempt(l, "eve", "2.2.2.2", false, 2000, &retry)); /* would be the 3rd */
    ASSERT_TRUE(attempt(l, "eve", "2.2.2.2", true, 2000, &retry));
    pol_lockout_unlock_user(l, STR_LIT("nobody"));
    /* unlock clears the user's pairs too */
    for (int i = 0; i < 3; i++)
        attempt(l, "fay", "3.3.3.3", false, 3000, &retry);
    ASSERT_TRUE(!attempt(l, "fay", "3.3.3.3", true, 3001, &retry));
    pol_lockout_unlock_user(l, STR_LIT("fay"));
    ASSERT_TRUE(attempt(l, "fay", "3.3.3.3", true, 3001, &retry));
    pol_lockout_free(l);
}

TEST(locks_survive_a_flood_of_other_keys)
{
    struct pol_lockout_cfg c = cfg();
    int64_t retry;
    char ip[32];
    c.entries = 1024;
    cr_init();
    struct pol_lockout *l = pol_lockout_new(&c);
    for (int i = 0; i < 3; i++)
        attempt(l, "victim", "6.6.6.6", false, 100, &retry);
    ASSERT_TRUE(!attempt(l, "victim", "6.6.6.6", false, 101, &retry));
    for (int i = 0; i < 100000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        attempt(l, "someone", ip, true, 102, &retry);
    }
    ASSERT_TRUE(!attempt(l, "victim", "6.6.6.6", false, 103, &retry));
    pol_lockout_free(l);
}

TEST(progressive_delay_before_the_lock)
{
    struct pol_lockout_cfg c = cfg();
    int64_t retry, t = 5000;
    cr_init();
    c.pair = (struct pol_lockout_rule){6, 60, 3600, 900, 2, 1}; /* delays from the 2nd failure */
    struct pol_lockout *l = pol_lockout_new(&c);
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t, &retry)); /* the first is free */
    /* second failure: 1 s */
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", true, t, &retry)); /* even the right password */
    ASSERT_EQ_INT(retry, 1);
    ASSERT_TRUE(attempt(l, "bob", "1.2.3.4", true, t, &retry)); /* per pair only */
    ASSERT_TRUE(attempt(l, "ann", "5.6.7.8", true, t, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t + 1, &retry)); /* third failure: 2 s */
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", false, t + 2, &retry));
    ASSERT_EQ_INT(retry, 1);
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t + 3, &retry)); /* fourth: 4 s */
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", false, t + 6, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t + 7, &retry)); /* fifth: 8 s */
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", false, t + 14, &retry));
    ASSERT_EQ_INT(retry, 1);
    ASSERT_EQ_INT(pol_lockout_locked(l, t + 14), 0);                  /* a delay is not a lock */
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t + 15, &retry)); /* sixth: the lock */
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", true, t + 16, &retry));
    ASSERT_EQ_INT(retry, 59);
    ASSERT_EQ_INT(pol_lockout_locked(l, t + 16), 1);
    /* after the lock, a success clears the delay too */
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t + 80, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t + 80, &retry));
    ASSERT_TRUE(!attempt(l, "ann", "1.2.3.4", true, t + 80, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", true, t + 81, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", false, t + 81, &retry));
    ASSERT_TRUE(attempt(l, "ann", "1.2.3.4", true, t + 81, &retry)); /* counting anew */
    /* the delay never exceeds the lock's base */
    c.pair = (struct pol_lockout_rule){50, 5, 3600, 900, 1, 4};
    struct pol_lockout *m = pol_lockout_new(&c);
    ASSERT_TRUE(attempt(m, "cy", "9.9.9.9", false, t, &retry));
    ASSERT_TRUE(!attempt(m, "cy", "9.9.9.9", false, t, &retry));
    ASSERT_EQ_INT(retry, 4);
    ASSERT_TRUE(attempt(m, "cy", "9.9.9.9", false, t + 4, &retry)); /* 8 s, capped at 5 */
    ASSERT_TRUE(!attempt(m, "cy", "9.9.9.9", false, t + 8, &retry));
    ASSERT_EQ_INT(retry, 1);
    pol_lockout_free(l);
    pol_lockout_free(m);
}
