/* SPDX-License-Identifier: MIT */
/*
 * How many distinct items (client addresses) were seen in an interval: linear counting
 * over a fixed 4,096-bit bitmap (512 bytes) under a per-process random hash key. Adding is
 * one keyed hash and, the first time a bit is set, one atomic OR; reading estimates
 * n = -m ln(zero bits / m) and clears the bitmap for the next interval. Good to a few
 * percent up to a few thousand items, then saturates (reported as about 34,000): it answers
 * "failed logins from one address or from many", not an exact census. Any thread.
 */
#ifndef POLICY_POL_DISTINCT_H
#define POLICY_POL_DISTINCT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/str.h"

#define POL_DISTINCT_BITS 4096

struct pol_distinct {
    _Atomic uint64_t w[POL_DISTINCT_BITS / 64];
    uint8_t key[16];
};

/* Zeroes the bitmap and draws the key (cr_init first). */
void pol_distinct_init(struct pol_distinct *d);
void pol_distinct_add(struct pol_distinct *d, struct str item);
/* The estimate since the last take, and a fresh interval. Items added while it runs may
 * count in either interval. */
double pol_distinct_take(struct pol_distinct *d);

#endif
