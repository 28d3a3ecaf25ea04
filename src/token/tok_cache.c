/* SPDX-License-Identifier: MIT */
/*
 * Direct-mapped cache: slot = hash(token) mod n; a colliding insert replaces. The slot keeps
 * a 128-bit SipHash of the token (keyed per process with a random key, so neither the slot
 * index nor a collision can be steered from outside) and compares it in constant time.
 * SipHash costs a fraction of BLAKE2b on a 400-byte token, and this runs on every check.
 */
#include "token/tok_cache.h"

#include <stdatomic.h>
#include <string.h>

#include <sodium.h>

#include "core/mem.h"
#include "crypto/cr.h"

#define TAG_LEN crypto_shorthash_siphashx24_BYTES

struct slot {
    uint8_t digest[TAG_LEN];
    uint64_t epoch;
    int used;
    struct tok_claims cl;
};

struct tok_cache {
    unsigned n;
    uint8_t key[crypto_shorthash_siphashx24_KEYBYTES];
    struct slot *slots;
};

static _Atomic uint64_t revocation_epoch = 1;

uint64_t tok_revocation_epoch(void)
{
    return atomic_load_explicit(&revocation_epoch, memory_order_acquire);
}

void tok_revocation_bump(void)
{
    atomic_fetch_add_explicit(&revocation_epoch, 1, memory_order_acq_rel);
}

struct tok_cache *tok_cache_new(unsigned slots)
{
    struct tok_cache *c = xcalloc(1, sizeof(*c));
    c->n = slots ? slots : 1;
    c->slots = xcalloc(c->n, sizeof(struct slot));
    cr_random(c->key, sizeof(c->key));
    return c;
}

void tok_cache_free(struct tok_cache *c)
{
    if (!c)
        return;
    mem_free(c->slots);
    mem_free(c);
}

static struct slot *find(struct tok_cache *c, struct str token, uint8_t d[TAG_LEN])
{
    uint64_t h;
    crypto_shorthash_siphashx24(d, (const unsigned char *)token.p, token.len, c->key);
    memcpy(&h, d, sizeof(h));
    return &c->slots[h % c->n];
}

int tok_cache_get(struct tok_cache *c, struct str token, int64_t now, uint64_t epoch,
                  struct tok_claims *out)
{
    uint8_t d[TAG_LEN];
    struct slot *s = find(c, token, d);

    if (!s->used || !cr_eq(s->digest, d, sizeof(d)))
        return 0;
    if (now >= s->cl.exp) {
        s->used = 0;
        return 0;
    }
    *out = s->cl;
    return s->epoch == epoch ? 1 : 2;
}

void tok_cache_put(struct tok_cache *c, struct str token, const struct tok_claims *cl,
                   uint64_t epoch)
{
    uint8_t d[TAG_LEN];
    struct slot *s = find(c, token, d);

    memcpy(s->digest, d, sizeof(d));
    s->cl = *cl;
    s->epoch = epoch;
    s->used = 1;
}

void tok_cache_drop(struct tok_cache *c, struct str token)
{
    uint8_t d[TAG_LEN];
    struct slot *s = find(c, token, d);

    if (s->used && cr_eq(s->digest, d, sizeof(d)))
        s->used = 0;
}
