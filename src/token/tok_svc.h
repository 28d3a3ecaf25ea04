/* SPDX-License-Identifier: MIT */
/*
 * What every token operation of a server shares: the store, the worker pool, the server key,
 * the issuer and the lifetimes from the configuration. Filled once before the loop threads
 * start, read-only afterwards (any thread).
 */
#ifndef TOKEN_TOK_SVC_H
#define TOKEN_TOK_SVC_H

#include <stdbool.h>
#include <stdint.h>

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
};

#endif
