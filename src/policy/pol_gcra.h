/* SPDX-License-Identifier: MIT */
/*
 * Rate limiting with GCRA (generic cell rate algorithm): one number per key, the
 * theoretical arrival time (TAT). A request at `now` is allowed while TAT - now <= tau,
 * and then moves TAT on by one emission interval T; `count` per `per_s` with bursts of
 * `burst` gives T = per_s / count and tau = T * (burst - 1). No timers, no buckets to refill.
 *
 * Keys (rule id + client IP, client id, ...) are kept as keyed 64-bit hashes in a fixed
 * table of mutex-striped parts shared by all loop threads, so memory is bounded under a
 * flood of distinct keys: a key whose TAT has passed holds nothing and is overwritten
 * first, otherwise the one closest to recovery. Time is passed in. Any thread.
 */
#ifndef POLICY_POL_GCRA_H
#define POLICY_POL_GCRA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"

struct pol_gcra;

struct pol_gcra_rule {
    uint64_t interval_ns;  /* T */
    uint64_t tolerance_ns; /* tau */
    unsigned burst;
};

/* Fills a rule for `count` per `per_s` seconds with bursts of `burst`. count 0: off. */
void pol_gcra_rule_init(struct pol_gcra_rule *r, unsigned count, unsigned per_s, unsigned burst);

/* out = r's share on one of n instances dividing it: 1/n of the rate and of the burst (at
 * least one). r off: out off. */
void pol_gcra_rule_share(const struct pol_gcra_rule *r, unsigned n, struct pol_gcra_rule *out);

struct pol_gcra *pol_gcra_new(unsigned entries);
void pol_gcra_free(struct pol_gcra *g);

struct pol_gcra_result {
    bool allowed;
    unsigned remaining; /* requests that would pass right now */
    uint64_t retry_ns;  /* when refused: until the next one would pass */
    uint64_t reset_ns;  /* until the full burst is available again */
};

/* Takes one request for (rule_id, key) at now_ns under rule r (must be on). */
void pol_gcra_take(struct pol_gcra *g, unsigned rule_id, const struct pol_gcra_rule *r,
                   struct str key, uint64_t now_ns, struct pol_gcra_result *out);

#endif
