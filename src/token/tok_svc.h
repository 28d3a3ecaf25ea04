/* SPDX-License-Identifier: MIT */
/*
 * What every token operation of a server shares: the store, the worker pool, the server key,
 * the issuer and the lifetimes from the configuration, and the key ring as the main thread
 * last read it. Filled once before the loop threads start; read-only afterwards, but for
 * the ring, which is replaced under ring_mu (tok_svc_publish_ring).
 */
#ifndef TOKEN_TOK_SVC_H
#define TOKEN_TOK_SVC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "token/tok_keys.h"

struct pool;
struct store;

struct tok_svc {
    struct store *st;
    struct pool *pool;  /* background work (the reaction to a reused refresh token) */
    const uint8_t *key; /* CR_HASH_KEY_LEN bytes: refresh-token digests and successors */
    const char *issuer;
    int64_t leeway_s;
    int64_t refresh_ttl_s;   /* a refresh family's absolute lifetime */
    int64_t refresh_idle_s;  /* a refresh token's lifetime unused */
    int64_t refresh_grace_s; /* a spent token answers its successor again within this */
    bool reuse_revokes_all;  /* a reused token ends every session of its user */
    /* A shared store that stopped answering: tokens are verified from the cache and their
     * signature for stale_ms, then not at all (503); with stale_unchecked, a token whose
     * revocation cannot be checked within stale_ms is taken on its signature. */
    uint64_t stale_ms;
    bool stale_unchecked;
    unsigned cache_entries;     /* each loop thread's verification cache */
    struct tok_key_policy keys; /* how new signing keys are made */
    /* The key ring as the main thread last read it from the store: loop threads copy it
     * (tok_local.h) instead of reading the store themselves. */
    pthread_mutex_t ring_mu;
    struct tok_ring ring;
    _Atomic uint64_t ring_version; /* bumped at every reload */
};

/* The main thread's ring is replaced by `fresh` (taken over), for the loop threads to copy. */
void tok_svc_publish_ring(struct tok_svc *svc, struct tok_ring *fresh);
/* Whether tokens can be served: the store answers (1), or not (0; *stale_ms: for how long,
 * if not NULL). For /readyz. */
int tok_svc_ready(const struct tok_svc *svc, uint64_t *stale_ms);
/* The store's families for /metrics (store_metrics_text). */
struct buf;
int tok_svc_metrics_text(const struct tok_svc *svc, struct buf *b);

#endif
