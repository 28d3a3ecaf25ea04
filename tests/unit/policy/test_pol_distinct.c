/* SPDX-License-Identifier: MIT */
/* The distinct-address estimate behind the credential-stuffing signal. */
#include <stdio.h>

#include "crypto/cr.h"
#include "harness.h"
#include "policy/pol_distinct.h"

static double feed(struct pol_distinct *d, unsigned distinct, unsigned repeats)
{
    char ip[32];
    for (unsigned r = 0; r < repeats; r++)
        for (unsigned i = 0; i < distinct; i++) {
            int n = snprintf(ip, sizeof(ip), "198.18.%u.%u", i / 256, i % 256);
            pol_distinct_add(d, (struct str){ip, (size_t)n});
        }
    return pol_distinct_take(d);
}

TEST(distinct_estimates_and_resets)
{
    static struct pol_distinct d;
    cr_init();
    pol_distinct_init(&d);
    ASSERT_TRUE(pol_distinct_take(&d) == 0);
    ASSERT_TRUE(feed(&d, 1, 1000) < 1.5); /* one address, however often */
    double e = feed(&d, 50, 3);
    ASSERT_TRUE(e > 45 && e < 55);
    e = feed(&d, 2000, 1);
    ASSERT_TRUE(e > 1800 && e < 2200);
    ASSERT_TRUE(pol_distinct_take(&d) == 0); /* taken: the next interval starts empty */
    e = feed(&d, 200000, 1);                 /* saturates, bounded */
    ASSERT_TRUE(e > 30000 && e < 40000);
}
