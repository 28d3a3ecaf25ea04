/* SPDX-License-Identifier: MIT */
/* The rate limits in force: tightened by mode and by credential stuffing only where the
 * rule says, divided among instances, and their refusals announced once per interval. */
#include "core/err.h"
#include "harness.h"
#include "policy/pol_limits.h"

TEST(rules_follow_the_mode_and_stuffing_where_they_say)
{
    struct pol_state st;
    struct pol_limits l;
    struct pol_gcra *t = pol_gcra_new(1024);
    const struct pol_limit_spec specs[3] = {
        {8, 1, 8, true, true, true},    /* like per-IP logins */
        {8, 1, 8, false, false, false}, /* like token requests */
        {0, 1, 1, true, true, false},   /* off */
    };
    const unsigned div[POL_MODES] = {1, 1, 2, 4};
    pol_state_init(&st, POL_MODES);
    pol_limits_init(&l, t, &st, specs, 3, div, 8, NULL, false);
    ASSERT_EQ_INT((int)pol_limits_rule(&l, 0)->burst, 8);
    atomic_store(&st.mode, POL_SHED);
    ASSERT_EQ_INT((int)pol_limits_rule(&l, 0)->burst, 2); /* 8 / 4 */
    ASSERT_EQ_INT((int)pol_limits_rule(&l, 1)->burst, 8); /* not by mode */
    atomic_store(&st.mode, POL_NORMAL);
    atomic_store(&st.stuffing, 1);
    ASSERT_EQ_INT((int)pol_limits_rule(&l, 0)->burst, 1); /* at least 8: 8 / 8 */
    ASSERT_EQ_INT((int)pol_limits_rule(&l, 1)->burst, 8);
    atomic_store(&st.stuffing, 0);
    /* a burst of 8, then refused; the rule that is off allows everything */
    struct pol_gcra_result res;
    uint64_t now = 1000000000000ull;
    for (int i = 0; i < 8; i++) {
        pol_limits_take(&l, 0, STR_LIT("10.0.0.1"), now, &res);
        ASSERT_TRUE(res.allowed);
    }
    pol_limits_take(&l, 0, STR_LIT("10.0.0.1"), now, &res);
    ASSERT_TRUE(!res.allowed);
    ASSERT_TRUE(res.retry_ns > 0);
    for (int i = 0; i < 100; i++) {
        pol_limits_take(&l, 2, STR_LIT("10.0.0.1"), now, &res);
        ASSERT_TRUE(res.allowed);
    }
    pol_gcra_free(t);
}

TEST(refusals_are_announced_once_per_interval)
{
    uint32_t prev;
    ASSERT_TRUE(pol_limits_event_due(3, STR_LIT("k"), 100, &prev));
    ASSERT_EQ_INT((int)prev, 0);
    ASSERT_TRUE(!pol_limits_event_due(3, STR_LIT("k"), 101, &prev));
    ASSERT_TRUE(!pol_limits_event_due(3, STR_LIT("k"), 109, &prev));
    ASSERT_TRUE(pol_limits_event_due(4, STR_LIT("k"), 109, &prev)); /* another rule */
    ASSERT_TRUE(pol_limits_event_due(3, STR_LIT("k"), 110, &prev)); /* the next interval */
    ASSERT_EQ_INT((int)prev, 3);                                    /* what the last one saw */
}
