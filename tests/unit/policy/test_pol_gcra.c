/* SPDX-License-Identifier: MIT */
/* GCRA with an injected clock. */
#include <stdio.h>

#include "crypto/cr.h"
#include "harness.h"
#include "policy/pol_gcra.h"

#define S 1000000000ull

TEST(gcra_burst_then_steady_rate)
{
    struct pol_gcra_rule r;
    struct pol_gcra_result res;
    cr_init();
    struct pol_gcra *g = pol_gcra_new(4096);
    pol_gcra_rule_init(&r, 10, 1, 20); /* 10/s, burst 20 */
    uint64_t t = 1000 * S;
    for (int i = 0; i < 20; i++) {
        pol_gcra_take(g, 1, &r, STR_LIT("1.2.3.4"), t, &res);
        ASSERT_TRUE(res.allowed);
        ASSERT_EQ_INT(res.remaining, 19 - i);
    }
    pol_gcra_take(g, 1, &r, STR_LIT("1.2.3.4"), t, &res);
    ASSERT_TRUE(!res.allowed);
    ASSERT_EQ_INT(res.retry_ns, S / 10); /* one emission interval */
    ASSERT_EQ_INT(res.reset_ns, 2 * S);  /* the whole burst back after 2 s */
    /* other keys and other rules are independent */
    pol_gcra_take(g, 1, &r, STR_LIT("5.6.7.8"), t, &res);
    ASSERT_TRUE(res.allowed);
    pol_gcra_take(g, 2, &r, STR_LIT("1.2.3.4"), t, &res);
    ASSERT_TRUE(res.allowed);
    /* after 100 ms exactly one more passes */
    pol_gcra_take(g, 1, &r, STR_LIT("1.2.3.4"), t + S / 10, &res);
    ASSERT_TRUE(res.allowed);
    pol_gcra_take(g, 1, &r, STR_LIT("1.2.3.4"), t + S / 10, &res);
    ASSERT_TRUE(!res.allowed);
    /* a steady 10/s passes forever */
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        pol_gcra_take(g, 1, &r, STR_LIT("1.2.3.4"), t + S / 10 + (uint64_t)(i + 1) * S / 10, &res);
        ok += res.allowed;
    }
    ASSERT_EQ_INT(ok, 100);
    pol_gcra_free(g);
}

/* A limit split among n instances: each allows 1/n of the rate and of the burst, so n of
 * them together allow the whole (and at least one each). */
TEST(gcra_rule_share_among_instances)
{
    struct pol_gcra_rule r, part;
    struct pol_gcra_result res;
    struct pol_gcra *g = pol_gcra_new(4096);
    pol_gcra_rule_init(&r, 10, 1, 20); /* 10/s, burst 20 */
    pol_gcra_rule_share(&r, 1, &part);
    ASSERT_EQ_INT(part.interval_ns, r.interval_ns);
    ASSERT_EQ_INT(part.burst, 20);
    pol_gcra_rule_share(&r, 4, &part);
    ASSERT_EQ_INT(part.interval_ns, 4 * r.interval_ns);
    ASSERT_EQ_INT(part.burst, 5);
    uint64_t t = 1000 * S;
    int ok = 0;
    for (int i = 0; i < 30; i++) {
        pol_gcra_take(g, 1, &part, STR_LIT("k"), t, &res);
        ok += res.allowed;
    }
    ASSERT_EQ_INT(ok, 5); /* a quarter of the burst */
    ok = 0;
    for (int i = 1; i <= 100; i++) { /* 10 s at the whole rate: a quarter passes */
        pol_gcra_take(g, 1, &part, STR_LIT("k"), t + (uint64_t)i * S / 10, &res);
        ok += res.allowed;
    }
    ASSERT_EQ_INT(ok, 25);
    pol_gcra_rule_init(&r, 3, 60, 3); /* 3 a minute among 5: one each, every 100 s */
    pol_gcra_rule_share(&r, 5, &part);
    ASSERT_EQ_INT(part.burst, 1);
    ASSERT_EQ_INT(part.interval_ns, 100 * S);
    ASSERT_EQ_INT(part.tolerance_ns, 0);
    pol_gcra_rule_init(&r, 0, 1, 1); /* off stays off */
    pol_gcra_rule_share(&r, 3, &part);
    ASSERT_EQ_INT(part.interval_ns, 0);
    pol_gcra_free(g);
}

TEST(gcra_memory_bounded_under_a_flood)
{
    struct pol_gcra_rule r;
    struct pol_gcra_result res;
    char ip[32];
    cr_init();
    struct pol_gcra *g = pol_gcra_new(1024);
    pol_gcra_rule_init(&r, 1, 1, 1);
    /* 200,000 distinct keys into 1,024 slots: no growth, no crash, every new key passes
     * once (its state was evicted or new) */
    int allowed = 0;
    for (int i = 0; i < 200000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        pol_gcra_take(g, 1, &r, str_c(ip), 1000 * S, &res);
        allowed += res.allowed;
    }
    ASSERT_EQ_INT(allowed, 200000);
    pol_gcra_free(g);
}

TEST(gcra_rule_off_and_minutes)
{
    struct pol_gcra_rule r;
    pol_gcra_rule_init(&r, 0, 1, 5);
    ASSERT_EQ_INT(r.interval_ns, 0);
    pol_gcra_rule_init(&r, 6, 60, 1); /* 6 per minute, no burst */
    ASSERT_EQ_INT(r.interval_ns, 10 * S);
    ASSERT_EQ_INT(r.tolerance_ns, 0);
}
