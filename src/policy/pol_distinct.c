/* SPDX-License-Identifier: MIT */
#include "policy/pol_distinct.h"

#include <math.h>
#include <string.h>

#include <sodium.h>

#include "crypto/cr.h"

void pol_distinct_init(struct pol_distinct *d)
{
    for (unsigned i = 0; i < POL_DISTINCT_BITS / 64; i++)
        atomic_init(&d->w[i], 0);
    cr_random(d->key, sizeof(d->key));
}

void pol_distinct_add(struct pol_distinct *d, struct str item)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)item.p, item.len, d->key);
    unsigned bit = (unsigned)(h % POL_DISTINCT_BITS);
    uint64_t m = UINT64_C(1) << (bit % 64);
    _Atomic uint64_t *w = &d->w[bit / 64];
    /* read first: under a flood the bit is usually set, and a plain load keeps the cache
     * line shared between threads */
    if (!(atomic_load_explicit(w, memory_order_relaxed) & m))
        atomic_fetch_or_explicit(w, m, memory_order_relaxed);
}

double pol_distinct_take(struct pol_distinct *d)
{
    unsigned zeros = 0;
    for (unsigned i = 0; i < POL_DISTINCT_BITS / 64; i++)
        zeros += 64u - (unsigned)__builtin_popcountll(
                           atomic_exchange_explicit(&d->w[i], 0, memory_order_relaxed));
    if (zeros == 0)
        zeros = 1; /* saturated: report the largest estimate, m ln m */
    return -(double)POL_DISTINCT_BITS * log((double)zeros / POL_DISTINCT_BITS);
}
