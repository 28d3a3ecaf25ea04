/* SPDX-License-Identifier: MIT */
#include "rehearse/rh_hist.h"

#include <math.h>
#include <string.h>

void rh_hist_reset(struct rh_hist *h)
{
    memset(h, 0, sizeof(*h));
}

unsigned rh_hist_index(uint64_t us)
{
    if (us >= RH_HIST_MAX_US)
        us = RH_HIST_MAX_US - 1;
    if (us < RH_HIST_LINEAR)
        return (unsigned)us;
    /* us in [2^k, 2^(k+1)) with k >= 7: shift so the top 7 bits remain, 64..127. */
    unsigned k = 63u - (unsigned)__builtin_clzll(us);
    unsigned shift = k - 6;
    return RH_HIST_LINEAR + (k - 7) * RH_HIST_SUB + (unsigned)((us >> shift) - RH_HIST_SUB);
}

uint64_t rh_hist_upper(unsigned idx)
{
    if (idx < RH_HIST_LINEAR)
        return idx;
    unsigned i = idx - RH_HIST_LINEAR;
    unsigned k = 7 + i / RH_HIST_SUB, shift = k - 6;
    uint64_t lo = (uint64_t)(RH_HIST_SUB + i % RH_HIST_SUB) << shift;
    return lo + (UINT64_C(1) << shift) - 1;
}

void rh_hist_record(struct rh_hist *h, uint64_t us)
{
    h->count[rh_hist_index(us)]++;
    if (h->n == 0 || us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
    h->n++;
    h->sum_us += us;
}

void rh_hist_merge(struct rh_hist *to, const struct rh_hist *from)
{
    if (from->n == 0)
        return;
    for (unsigned i = 0; i < RH_HIST_BUCKETS; i++)
        to->count[i] += from->count[i];
    if (to->n == 0 || from->min_us < to->min_us)
        to->min_us = from->min_us;
    if (from->max_us > to->max_us)
        to->max_us = from->max_us;
    to->n += from->n;
    to->sum_us += from->sum_us;
}

uint64_t rh_hist_quantile(const struct rh_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    if (q <= 0)
        return h->min_us;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < RH_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            uint64_t up = rh_hist_upper(i);
            return up < h->max_us ? up : h->max_us;
        }
    }
    return h->max_us;
}
