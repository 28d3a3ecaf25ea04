/* SPDX-License-Identifier: MIT */
/* The rehearsal tool's latency histogram: bucket bounds, error bound, quantiles, merge. */
#include <stdlib.h>

#include "harness.h"
#include "rehearse/rh_hist.h"

TEST(rh_hist_buckets_are_contiguous_and_tight)
{
    /* Every value lands in a bucket whose upper bound is >= the value and within 1/64. */
    uint64_t prev_up = 0;
    for (unsigned i = 0; i < RH_HIST_BUCKETS; i++) {
        uint64_t up = rh_hist_upper(i);
        if (i > 0)
            ASSERT_TRUE(up > prev_up);
        ASSERT_EQ_INT(rh_hist_index(up), i);
        if (i > 0)
            ASSERT_EQ_INT(rh_hist_index(prev_up + 1), i);
        prev_up = up;
    }
    ASSERT_EQ_INT(prev_up, RH_HIST_MAX_US - 1);
    for (uint64_t v = 1; v < RH_HIST_MAX_US; v = v * 3 + 7) {
        uint64_t up = rh_hist_upper(rh_hist_index(v));
        ASSERT_TRUE(up >= v);
        ASSERT_TRUE((double)(up - v) <= (double)v / 64.0);
    }
    /* clamped, not out of bounds */
    ASSERT_EQ_INT(rh_hist_index(UINT64_MAX), RH_HIST_BUCKETS - 1);
}

TEST(rh_hist_quantiles)
{
    struct rh_hist *h = malloc(sizeof(*h));
    rh_hist_reset(h);
    ASSERT_EQ_INT(rh_hist_quantile(h, 0.99), 0);
    for (uint64_t v = 1; v <= 10000; v++)
        rh_hist_record(h, v);
    ASSERT_EQ_INT(h->n, 10000);
    ASSERT_EQ_INT(h->min_us, 1);
    ASSERT_EQ_INT(h->max_us, 10000);
    ASSERT_EQ_INT(h->sum_us, 10000ull * 10001 / 2);
    uint64_t p50 = rh_hist_quantile(h, 0.5), p99 = rh_hist_quantile(h, 0.99);
    ASSERT_TRUE(p50 >= 5000 && p50 <= 5000 + 5000 / 64);
    ASSERT_TRUE(p99 >= 9900 && p99 <= 9900 + 9900 / 64);
    ASSERT_EQ_INT(rh_hist_quantile(h, 1.0), 10000); /* never above the true max */
    ASSERT_EQ_INT(rh_hist_quantile(h, 0.0), 1);
    /* exact in the linear range */
    rh_hist_reset(h);
    for (int i = 0; i < 99; i++)
        rh_hist_record(h, 42);
    rh_hist_record(h, 3000000);
    ASSERT_EQ_INT(rh_hist_quantile(h, 0.99), 42);
    ASSERT_EQ_INT(rh_hist_quantile(h, 0.999), 3000000);
    free(h);
}

TEST(rh_hist_merge_equals_recording_both)
{
    struct rh_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *c = malloc(sizeof(*c));
    rh_hist_reset(a);
    rh_hist_reset(b);
    rh_hist_reset(c);
    for (uint64_t v = 10; v < 100000; v += 97) {
        rh_hist_record((v & 1) ? a : b, v);
        rh_hist_record(c, v);
    }
    rh_hist_merge(a, b);
    ASSERT_EQ_INT(a->n, c->n);
    ASSERT_EQ_INT(a->sum_us, c->sum_us);
    ASSERT_EQ_INT(a->min_us, c->min_us);
    ASSERT_EQ_INT(a->max_us, c->max_us);
    for (double q = 0.1; q < 1.0; q += 0.1)
        ASSERT_EQ_INT(rh_hist_quantile(a, q), rh_hist_quantile(c, q));
    free(a);
    free(b);
    free(c);
}
