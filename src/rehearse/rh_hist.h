/* SPDX-License-Identifier: MIT */
/*
 * Latency histogram, HDR-style: exact below 128 µs, then 64 linear sub-buckets per power of
 * two, so any recorded value is reported within 1/64 (1.6 %) above its true value, from 1 µs
 * to 2^32 µs (71 minutes; larger values are clamped). Fixed size (14 KiB), no allocation:
 * recording is an index computation and an increment. One owner (not thread-safe).
 */
#ifndef REHEARSE_RH_HIST_H
#define REHEARSE_RH_HIST_H

#include <stdint.h>

#define RH_HIST_LINEAR  128
#define RH_HIST_SUB     64
#define RH_HIST_MAX_US  (UINT64_C(1) << 32)
#define RH_HIST_BUCKETS (RH_HIST_LINEAR + (32 - 7) * RH_HIST_SUB)

struct rh_hist {
    uint64_t n;
    uint64_t sum_us;
    uint64_t max_us;
    uint64_t min_us;
    uint32_t count[RH_HIST_BUCKETS];
};

void rh_hist_reset(struct rh_hist *h);
void rh_hist_record(struct rh_hist *h, uint64_t us);
/* Adds every value of `from` into `to`. */
void rh_hist_merge(struct rh_hist *to, const struct rh_hist *from);
/* The smallest recorded-bucket upper bound at or below which a fraction q (0..1) of the
 * values lie, never above the true maximum; 0 when empty. */
uint64_t rh_hist_quantile(const struct rh_hist *h, double q);

/* Bucket index of a value and the highest value that bucket holds (exposed for tests). */
unsigned rh_hist_index(uint64_t us);
uint64_t rh_hist_upper(unsigned idx);

#endif
