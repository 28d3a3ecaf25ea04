/* SPDX-License-Identifier: MIT */
/* Shard registry and summing. The registry is append-only and written before loops start. */
#include "metrics/met.h"

#include <string.h>

#include "core/mem.h"

#define MAX_SHARDS 512

/* Published with release stores: a scraper on another loop may read the table while the
 * main thread is still registering shards (loops start one by one). */
static _Atomic(struct met_shard *) shards[MAX_SHARDS];
static _Atomic unsigned nshards;

const double met_lat_bounds[MET_LAT_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* The same bounds in nanoseconds, so the hot path compares integers. */
static const uint64_t lat_bounds_ns[MET_LAT_BUCKETS - 1] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

static const unsigned status_codes[] = {
#define MET_X(code) code,
    MET_STATUS_MAP(MET_X)
#undef MET_X
};

struct met_shard *met_shard_new(void)
{
    unsigned i = atomic_fetch_add(&nshards, 1);
    if (i >= MAX_SHARDS)
        return NULL;
    struct met_shard *s = xcalloc(1, sizeof(struct met_shard));
    atomic_store_explicit(&shards[i], s, memory_order_release);
    return s;
}

unsigned met_status_slot(unsigned status)
{
    for (unsigned i = 0; i < MET_S_OTHER; i++)
        if (status_codes[i] == status)
            return i;
    return MET_S_OTHER;
}

unsigned met_slot_status(unsigned slot)
{
    return slot < MET_S_OTHER ? status_codes[slot] : 0;
}

void met_request(struct met_shard *s, unsigned route, unsigned status, uint64_t dur_ns)
{
    unsigned b = 0;

    if (route >= MET_ROUTES_MAX)
        route = 0;
    met_add(&s->req[route][met_status_slot(status)], 1);
    while (b < MET_LAT_BUCKETS - 1 && dur_ns > lat_bounds_ns[b])
        b++;
    unsigned c = status < 300 ? 0 : status < 400 ? 1 : status < 500 ? 2 : 3;
    met_add(&s->lat[route][c][b], 1);
    met_add(&s->lat_sum_us[route][c], dur_ns / 1000);
}

static void sum_array(_Atomic uint64_t *dst, _Atomic uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += atomic_load_explicit(&src[i], memory_order_relaxed);
}

void met_sum(struct met_shard *out)
{
    unsigned n = atomic_load(&nshards);

    memset(out, 0, sizeof(*out));
    if (n > MAX_SHARDS)
        n = MAX_SHARDS;
    for (unsigned i = 0; i < n; i++) {
        struct met_shard *s = atomic_load_explicit(&shards[i], memory_order_acquire);
        if (!s)
            continue;
        /* The shard is an array of counters; sum it as one. */
        sum_array((_Atomic uint64_t *)(void *)out, (_Atomic uint64_t *)(void *)s,
                  sizeof(*s) / sizeof(uint64_t));
    }
}
