/* SPDX-License-Identifier: MIT */
/* Metric shards: statuses outside the map count as "other", out-of-range routes as route 0,
 * a latency past the last bound lands in +Inf, and the sum adds every shard. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "metrics/met.h"

TEST(met_slots_routes_buckets_and_sums)
{
    ASSERT_EQ_INT(met_status_slot(418), MET_S_OTHER);
    ASSERT_EQ_INT(met_slot_status(MET_S_OTHER), 0);
    ASSERT_EQ_INT(met_slot_status(met_status_slot(503)), 503);
    struct met_shard *a = met_shard_new(), *b = met_shard_new();
    ASSERT_TRUE(a && b);
    met_request(a, 7, 200, 1000);                /* 1 us: the first bucket */
    met_request(a, MET_ROUTES_MAX + 5, 418, 10); /* no such route: route 0, "other" */
    met_request(b, 7, 200, UINT64_C(1) << 50);   /* past every bound: +Inf */
    static struct met_shard sum;
    memset(&sum, 0, sizeof(sum));
    met_sum(&sum);
    ASSERT_TRUE(sum.req[7][met_status_slot(200)] >= 2);
    ASSERT_TRUE(sum.req[0][MET_S_OTHER] >= 1);
    ASSERT_TRUE(sum.lat[7][0][0] >= 1); /* (class 2xx) */
    ASSERT_TRUE(sum.lat[7][0][MET_LAT_BUCKETS - 1] >= 1);
    ASSERT_TRUE(sum.lat[0][2][0] >= 1); /* the 418: class 4xx, apart from the 200s */
    ASSERT_TRUE(met_lat_any(&sum, 7, 0) >= 1);
    ASSERT_TRUE(met_lat_bounds[0] > 0 && met_lat_bounds[MET_LAT_BUCKETS - 2] > met_lat_bounds[0]);
}
