/* SPDX-License-Identifier: MIT */
/*
 * Per-thread metric shards, summed when /metrics is scraped. Each loop thread owns one shard
 * and is its only writer, so a bump is a relaxed load and store (no locked instruction);
 * the scraper reads every shard with relaxed loads and may see a sum a few requests old,
 * which Prometheus tolerates. Shards are registered before the loops start and live until
 * the process ends.
 */
#ifndef METRICS_MET_H
#define METRICS_MET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MET_ROUTES_MAX  64 /* route ids, 0 = no route matched */
#define MET_LAT_BUCKETS 17 /* 16 bounds + Inf */
#define MET_CLASSES     4  /* latency by status class: 1xx-2xx, 3xx, 4xx, 5xx */
#define MET_RL_RULES    16 /* rate-limit rules counted apart (the caller's numbering) */

struct buf;

/* Status codes counted individually; anything else is "other". */
/* clang-format off */
#define MET_STATUS_MAP(X) \
    X(200) X(201) X(204) X(301) X(302) X(304) X(400) X(401) X(403) X(404) X(405) X(408) \
    X(409) X(413) X(414) X(415) X(417) X(422) X(429) X(431) X(500) X(501) X(503) X(505)

enum {
#define MET_X(code) MET_S_##code,
    MET_STATUS_MAP(MET_X)
#undef MET_X
    MET_S_OTHER,
    MET_S_COUNT
};
/* clang-format on */

struct met_shard {
    _Atomic uint64_t req[MET_ROUTES_MAX][MET_S_COUNT];
    /* by status class, so that fast refusals do not hide slow successes */
    _Atomic uint64_t lat[MET_ROUTES_MAX][MET_CLASSES][MET_LAT_BUCKETS];
    _Atomic uint64_t lat_sum_us[MET_ROUTES_MAX][MET_CLASSES];
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t conn_accepted;
    _Atomic uint64_t conn_closed;
    _Atomic uint64_t conn_rejected;              /* over max_connections */
    _Atomic uint64_t conn_timed_out;             /* header/body/idle/write timeouts */
    _Atomic uint64_t bad_requests;               /* protocol errors answered 4xx and closed */
    _Atomic uint64_t pool_rejected;              /* worker queue full: 503 */
    _Atomic uint64_t rate_limited[MET_RL_RULES]; /* answered 429, by rule */
};

/* Requests of route r in latency bucket k, whatever their status. */
static inline uint64_t met_lat_any(const struct met_shard *m, unsigned r, unsigned k)
{
    uint64_t v = 0;
    for (unsigned c = 0; c < MET_CLASSES; c++)
        v += atomic_load_explicit(&m->lat[r][c][k], memory_order_relaxed);
    return v;
}

/* Single-writer increment: a plain load and store, no locked instruction. */
static inline void met_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Allocates and registers a zeroed shard. Main thread, before loops start. */
struct met_shard *met_shard_new(void);

/* Records one request on `s` (owner thread only). */
void met_request(struct met_shard *s, unsigned route, unsigned status, uint64_t dur_ns);

/* Upper bounds of the latency buckets, in seconds, for exposition. */
extern const double met_lat_bounds[MET_LAT_BUCKETS - 1];

/* Sums all shards into `out` (any thread). */
void met_sum(struct met_shard *out);

/* Maps a status code to its counter slot, and back (MET_S_OTHER -> 0). */
unsigned met_status_slot(unsigned status);
unsigned met_slot_status(unsigned slot);

#endif
