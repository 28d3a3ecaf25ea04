/* SPDX-License-Identifier: MIT */
/*
 * Direct-mapped cache: slot = hash(token) mod n; a colliding insert replaces. The slot keeps
 * a 128-bit SipHash of the token (keyed per process with a random key, so neither the slot
 * index nor a collision can be steered from outside) and compares it in constant time.
 * SipHash costs a fraction of BLAKE2b on a 400-byte token, and this runs on every check.
 */
#include "token/tok_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/mem.h"
#include "crypto/cr.h"

#define TAG_LEN crypto_shorthash_siphashx24_BYTES

#define RING 1024 /* publications a thread may fall behind before it drops everything */

struct slot {
    uint8_t digest[TAG_LEN];
    uint64_t epoch;
    int used;
    struct tok_claims cl;
};

struct tok_cache {
    unsigned n;
    uint8_t key[crypto_shorthash_siphashx24_KEYBYTES];
    uint64_t seen; /* publications applied to this cache */
    uint64_t *jh;  /* per slot, keyed hash of its jti: a dense array, scanned on revocation */
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

/*
 * Publications: a ring of the last RING revoked jti hashes and a counter. A writer stores
 * its hash, then advances the counter (release); a reader applies the entries between what
 * it saw and the counter (acquire), and if it fell more than the ring behind meanwhile (the
 * entries it read may have been overwritten) it drops every entry instead. Writers are
 * serialised by a mutex (revocations are rare); readers take no lock.
 */
static _Atomic uint64_t ring[RING];
static _Atomic uint64_t pub_seq;
static pthread_mutex_t pub_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t jti_key[crypto_shorthash_siphashx24_KEYBYTES];
static pthread_once_t jti_once = PTHREAD_ONCE_INIT;

static void jti_key_init(void)
{
    cr_random(jti_key, sizeof(jti_key));
}

static uint64_t jti_hash(const char *jti, size_t len)
{
    uint8_t d[crypto_shorthash_siphashx24_BYTES];
    uint64_t h;
    pthread_once(&jti_once, jti_key_init);
    crypto_shorthash_siphashx24(d, (const unsigned char *)jti, len, jti_key);
    memcpy(&h, d, sizeof(h));
    return h | 1; /* 0 is "no jti" */
}

/*
 * The known revocations: open addressing on the jti hash, linear probing, expiry per entry.
 * A full table first drops what expired; if still full it evicts the quarter that expires
 * first and remembers until when a forgotten token could live (forgot_until), so
 * tok_revoked_known answers -1 ("cannot tell") instead of a false "not revoked".
 */
struct known {
    uint64_t h; /* 0: empty */
    int64_t exp;
};
static struct known *known;
static unsigned known_n;
static int64_t forgot_until;
static pthread_mutex_t known_mu = PTHREAD_MUTEX_INITIALIZER;

/* The slot of h in the table: where it is, or the empty one where it would go. */
static unsigned known_slot(uint64_t h)
{
    unsigned k = (unsigned)(h % TOK_REVOKED_KNOWN_MAX);
    while (known[k].h && known[k].h != h)
        k = (k + 1) % TOK_REVOKED_KNOWN_MAX;
    return k;
}

static void known_sweep(int64_t now)
{
    /* rebuild without the expired: probing chains stay intact */
    struct known *old = known;
    known = xcalloc(TOK_REVOKED_KNOWN_MAX, sizeof(*known));
    known_n = 0;
    for (unsigned i = 0; i < TOK_REVOKED_KNOWN_MAX; i++) {
        if (!old[i].h || old[i].exp <= now)
            continue;
        known[known_slot(old[i].h)] = old[i];
        known_n++;
    }
    mem_free(old);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Forgets the quarter of the entries that expire first (one rebuild per quarter of the
 * table, not one per insert), remembering until when one of them could still be alive. */
static void known_evict_quarter(void)
{
    int64_t *exps = xcalloc(known_n, sizeof(*exps));
    unsigned n = 0;
    for (unsigned i = 0; i < TOK_REVOKED_KNOWN_MAX; i++)
        if (known[i].h)
            exps[n++] = known[i].exp;
    qsort(exps, n, sizeof(*exps), cmp_i64);
    int64_t cut = exps[n / 4];
    mem_free(exps);
    for (unsigned i = 0; i < TOK_REVOKED_KNOWN_MAX; i++)
        if (known[i].h && known[i].exp <= cut)
            known[i].exp = INT64_MIN; /* swept as expired next */
    if (cut > forgot_until)
        forgot_until = cut;
}

static void remember(uint64_t h, int64_t exp, int64_t now)
{
    pthread_mutex_lock(&known_mu);
    if (!known)
        known = xcalloc(TOK_REVOKED_KNOWN_MAX, sizeof(*known));
    unsigned k = known_slot(h);
    if (known[k].h == h) {
        if (exp > known[k].exp)
            known[k].exp = exp;
        goto out;
    }
    if (known_n + 1 >= TOK_REVOKED_KNOWN_MAX * 3 / 4) { /* keep probes short */
        known_sweep(now);
        while (known_n + 1 >= TOK_REVOKED_KNOWN_MAX * 3 / 4) {
            known_evict_quarter();
            known_sweep(now);
        }
        k = known_slot(h);
    }
    known[k].h = h;
    known[k].exp = exp;
    known_n++;
out:
    pthread_mutex_unlock(&known_mu);
}

void tok_revoked_remember(const char *jti, size_t len, int64_t exp, int64_t now)
{
    remember(jti_hash(jti, len), exp, now);
}

void tok_revoked_publish(const char *jti, size_t len, int64_t exp, int64_t now)
{
    uint64_t h = jti_hash(jti, len);
    pthread_mutex_lock(&pub_mu);
    uint64_t s = atomic_load_explicit(&pub_seq, memory_order_relaxed);
    atomic_store_explicit(&ring[s % RING], h, memory_order_relaxed);
    atomic_store_explicit(&pub_seq, s + 1, memory_order_release);
    pthread_mutex_unlock(&pub_mu);
    remember(h, exp, now);
}

int tok_revoked_known(const char *jti, size_t len, int64_t now)
{
    uint64_t h = jti_hash(jti, len);
    int rc = 0;
    pthread_mutex_lock(&known_mu);
    if (known) {
        unsigned k = known_slot(h);
        if (known[k].h == h && known[k].exp > now)
            rc = 1;
    }
    if (!rc && forgot_until > now)
        rc = -1;
    pthread_mutex_unlock(&known_mu);
    return rc;
}

void tok_revoked_reset(void)
{
    pthread_mutex_lock(&known_mu);
    mem_free(known);
    known = NULL;
    known_n = 0;
    forgot_until = 0;
    pthread_mutex_unlock(&known_mu);
}

uint64_t tok_revoked_seq(void)
{
    return atomic_load_explicit(&pub_seq, memory_order_acquire);
}

/* Applies what was published since this cache last looked: one pass over the slots for any
 * number of new revocations. */
static void sync_revoked(struct tok_cache *c)
{
    uint64_t end = atomic_load_explicit(&pub_seq, memory_order_acquire);
    uint64_t hs[64];
    unsigned k = 0;

    if (end == c->seen)
        return;
    int all = end - c->seen > RING / 2 || end - c->seen > 64;
    for (uint64_t i = c->seen; !all && i < end; i++)
        hs[k++] = atomic_load_explicit(&ring[i % RING], memory_order_relaxed);
    /* overwritten while we read? then we cannot trust what we read */
    if (atomic_load_explicit(&pub_seq, memory_order_acquire) - c->seen > RING / 2)
        all = 1;
    for (unsigned i = 0; i < c->n; i++) {
        if (!c->jh[i])
            continue;
        for (unsigned j = 0; j < k && !all; j++)
            if (c->jh[i] == hs[j]) {
                c->slots[i].used = 0;
                c->jh[i] = 0;
            }
        if (all) {
            c->slots[i].used = 0;
            c->jh[i] = 0;
        }
    }
    c->seen = end;
}

struct tok_cache *tok_cache_new(unsigned slots)
{
    struct tok_cache *c = xcalloc(1, sizeof(*c));
    c->n = slots ? slots : 1;
    c->slots = xcalloc(c->n, sizeof(struct slot));
    c->jh = xcalloc(c->n, sizeof(uint64_t));
    cr_random(c->key, sizeof(c->key));
    c->seen = tok_revoked_seq();
    return c;
}

void tok_cache_free(struct tok_cache *c)
{
    if (!c)
        return;
    mem_free(c->slots);
    mem_free(c->jh);
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

    sync_revoked(c);
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
    c->jh[s - c->slots] = jti_hash(cl->jti, strlen(cl->jti));
    s->used = 1;
}

void tok_cache_put_checked(struct tok_cache *c, struct str token, const struct tok_claims *cl,
                           uint64_t epoch, uint64_t seq)
{
    if (tok_revoked_seq() == seq) /* no revocation overtook the check */
        tok_cache_put(c, token, cl, epoch);
}

void tok_cache_drop(struct tok_cache *c, struct str token)
{
    uint8_t d[TAG_LEN];
    struct slot *s = find(c, token, d);

    if (s->used && cr_eq(s->digest, d, sizeof(d)))
        s->used = 0;
}
