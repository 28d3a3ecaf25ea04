/* SPDX-License-Identifier: MIT */
/* Striped, bounded lockout table; see pol_lockout.h. */
#include "policy/pol_lockout.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "core/mem.h"

#define STRIPES 64
#define PROBE   8

enum { K_USER, K_IP, K_PAIR };

struct entry {
    uint64_t h;     /* 0 = empty */
    uint64_t owner; /* pair entries: the username's key, so an unlock can find them */
    uint32_t failures;
    uint16_t inflight;
    uint8_t locks;
    uint8_t kind;
    int64_t locked_until;
    int64_t delayed_until; /* progressive delay: no attempt before this */
    int64_t last;
};

struct stripe {
    pthread_mutex_t mu;
    struct entry *e;
};

struct pol_lockout {
    struct pol_lockout_cfg cfg;
    unsigned per_stripe;
    uint8_t key[crypto_shorthash_siphash24_KEYBYTES];
    struct stripe s[STRIPES];
};

struct pol_lockout *pol_lockout_new(const struct pol_lockout_cfg *cfg)
{
    struct pol_lockout *l = xcalloc(1, sizeof(*l));
    l->cfg = *cfg;
    l->per_stripe = cfg->entries / STRIPES > PROBE ? cfg->entries / STRIPES : PROBE;
    randombytes_buf(l->key, sizeof(l->key));
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&l->s[i].mu, NULL);
        l->s[i].e = xcalloc(l->per_stripe, sizeof(struct entry));
    }
    return l;
}

void pol_lockout_free(struct pol_lockout *l)
{
    if (!l)
        return;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_destroy(&l->s[i].mu);
        mem_free(l->s[i].e);
    }
    mem_free(l);
}

static uint64_t hash_key(const struct pol_lockout *l, int kind, struct str a, struct str b)
{
    crypto_generichash_state st; /* BLAKE2b over "kind|a|b", truncated to 64 bits */
    uint8_t out[16];
    uint8_t k = (uint8_t)kind, sep = 0;
    uint64_t h;

    crypto_generichash_init(&st, l->key, sizeof(l->key), sizeof(out));
    crypto_generichash_update(&st, &k, 1);
    crypto_generichash_update(&st, (const uint8_t *)a.p, a.len);
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, (const uint8_t *)b.p, b.len);
    crypto_generichash_final(&st, out, sizeof(out));
    memcpy(&h, out, sizeof(h));
    return h ? h : 1;
}

static const struct pol_lockout_rule *rule(const struct pol_lockout *l, int kind)
{
    return kind == K_USER ? &l->cfg.user : kind == K_IP ? &l->cfg.ip : &l->cfg.pair;
}

/* Finds or creates the entry for h in its stripe (locked by the caller). */
static struct entry *slot(struct pol_lockout *l, struct stripe *s, uint64_t h, int kind,
                          int64_t now, bool create)
{
    unsigned start = (unsigned)((h >> 8) % l->per_stripe);
    struct entry *victim = NULL;

    for (unsigned i = 0; i < PROBE; i++) {
        struct entry *e = &s->e[(start + i) % l->per_stripe];
        if (e->h == h)
            return e;
        if (!create)
            continue;
        if (!e->h) {
            victim = e;
            break;
        }
        /* Least valuable: nothing in flight, then not locked, then fewest failures, then
         * oldest. */
        bool e_locked = e->locked_until > now, v_locked = victim && victim->locked_until > now;
        if (e->inflight)
            continue;
        if (!victim || (v_locked && !e_locked) ||
            (v_locked == e_locked && (e->failures < victim->failures ||
                                      (e->failures == victim->failures && e->last < victim->last))))
            victim = e;
    }
    if (!create || !victim)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    victim->h = h;
    victim->kind = (uint8_t)kind;
    victim->last = now;
    return victim;
}

static struct stripe *stripe_of(struct pol_lockout *l, uint64_t h)
{
    return &l->s[h % STRIPES];
}

static void forget_old(const struct pol_lockout_rule *r, struct entry *e, int64_t now)
{
    if (e->failures && r->window_s && now - e->last > r->window_s && e->locked_until <= now)
        e->failures = 0;
}

/* The verdict on one key's entry at now, stale failures forgotten first (stripe locked):
 * LOCKED by a lock, a delay or its recorded failures (*retry_s raised to the lock's end),
 * BUSY when only the attempts in flight fill its limit, else OK. */
static int judge(const struct pol_lockout_rule *r, struct entry *e, int64_t now, int64_t *retry_s)
{
    forget_old(r, e, now);
    int64_t until = e->locked_until > e->delayed_until ? e->locked_until : e->delayed_until;
    if (until > now) {
        if (until - now > *retry_s)
            *retry_s = until - now;
        return POL_ATTEMPT_LOCKED;
    }
    if (e->failures >= r->attempts)
        return POL_ATTEMPT_LOCKED;
    /* The limit is reached only counting attempts still in flight: those may all succeed.
     * Refused (so parallel guesses can never exceed the limit), but not as a wrong
     * password. */
    if (e->failures + e->inflight >= r->attempts)
        return POL_ATTEMPT_BUSY;
    return POL_ATTEMPT_OK;
}

/* Whether the key of hash h is locked (judge), without reserving anything (after a BUSY,
 * so that a locked key still answers LOCKED). */
static bool refused_by_failures(struct pol_lockout *l, uint64_t h, int kind, int64_t now,
                                int64_t *retry_s)
{
    const struct pol_lockout_rule *r = rule(l, kind);
    bool refused = false;
    if (!r->attempts)
        return false;
    struct stripe *s = stripe_of(l, h);
    pthread_mutex_lock(&s->mu);
    struct entry *e = slot(l, s, h, kind, now, false);
    if (e)
        refused = judge(r, e, now, retry_s) == POL_ATTEMPT_LOCKED;
    pthread_mutex_unlock(&s->mu);
    return refused;
}

int pol_lockout_begin(struct pol_lockout *l, struct str user, struct str ip, int64_t now,
                      struct pol_attempt *a, int64_t *retry_s)
{
    uint64_t hs[3] = {hash_key(l, K_USER, user, STR_NULL), hash_key(l, K_IP, ip, STR_NULL),
                      hash_key(l, K_PAIR, user, ip)};
    int kinds[3] = {K_USER, K_IP, K_PAIR};

    a->n = 0;
    *retry_s = 0;
    /* Reserve key by key; on refusal, give back what was reserved. Stripes are taken one
     * at a time (never two at once), so there is no lock order to get wrong. */
    for (int i = 0; i < 3; i++) {
        const struct pol_lockout_rule *r = rule(l, kinds[i]);
        if (!r->attempts)
            continue;
        struct stripe *s = stripe_of(l, hs[i]);
        pthread_mutex_lock(&s->mu);
        struct entry *e = slot(l, s, hs[i], kinds[i], now, true);
        /* (no entry: every one in reach is in flight, and none is forgotten to make room) */
        int verdict = e ? judge(r, e, now, retry_s) : POL_ATTEMPT_BUSY;
        if (verdict == POL_ATTEMPT_OK) {
            e->inflight++;
            e->last = now;
            if (kinds[i] == K_PAIR)
                e->owner = hs[0];
        }
        pthread_mutex_unlock(&s->mu);
        if (verdict != POL_ATTEMPT_OK) {
            struct pol_attempt undo = *a;
            for (int k = 0; k < undo.n; k++) {
                struct stripe *us = stripe_of(l, undo.keys[k]);
                pthread_mutex_lock(&us->mu);
                struct entry *ue = slot(l, us, undo.keys[k], 0, now, false);
                if (ue && ue->inflight)
                    ue->inflight--;
                pthread_mutex_unlock(&us->mu);
            }
            a->n = 0;
            for (int k = i + 1; verdict == POL_ATTEMPT_BUSY && k < 3; k++)
                if (refused_by_failures(l, hs[k], kinds[k], now, retry_s))
                    verdict = POL_ATTEMPT_LOCKED;
            if (verdict == POL_ATTEMPT_BUSY)
                *retry_s = 1;
            return verdict;
        }
        a->keys[a->n++] = hs[i];
    }
    return POL_ATTEMPT_OK;
}

unsigned pol_lockout_end(struct pol_lockout *l, struct pol_attempt *a, bool success, int64_t now)
{
    unsigned locked = 0;
    for (int i = 0; i < a->n; i++) {
        struct stripe *s = stripe_of(l, a->keys[i]);
        pthread_mutex_lock(&s->mu);
        struct entry *e = slot(l, s, a->keys[i], 0, now, false);
        if (e) {
            const struct pol_lockout_rule *r = rule(l, e->kind);
            if (e->inflight)
                e->inflight--;
            if (success) {
                if (e->kind != K_IP) {
                    e->failures = 0;
                    e->delayed_until = 0;
                }
            } else if (++e->failures >= r->attempts) {
                int64_t d = r->base_s;
                for (unsigned k = 0; k < e->locks && d < r->max_s; k++)
                    d *= 2;
                e->locked_until = now + (d < r->max_s ? d : r->max_s);
                e->locks = e->locks < 255 ? (uint8_t)(e->locks + 1) : 255;
                e->failures = 0;
                locked |= 1u << e->kind;
            } else if (r->delay_s && e->failures >= r->delay_after) {
                /* progressive delay before the lock: delay_s, then doubling, never longer
                 * than the lock itself would be */
                int64_t d = r->delay_s;
                for (unsigned k = r->delay_after; k < e->failures && d < r->base_s; k++)
                    d *= 2;
                e->delayed_until = now + (d < r->base_s ? d : r->base_s);
            }
            e->last = now;
        }
        pthread_mutex_unlock(&s->mu);
    }
    a->n = 0;
    return locked;
}

void pol_lockout_cancel(struct pol_lockout *l, struct pol_attempt *a, int64_t now)
{
    for (int i = 0; i < a->n; i++) {
        struct stripe *s = stripe_of(l, a->keys[i]);
        pthread_mutex_lock(&s->mu);
        struct entry *e = slot(l, s, a->keys[i], 0, now, false);
        if (e && e->inflight)
            e->inflight--;
        pthread_mutex_unlock(&s->mu);
    }
    a->n = 0;
}

void pol_lockout_unlock_user(struct pol_lockout *l, struct str user)
{
    uint64_t h = hash_key(l, K_USER, user, STR_NULL);

    /* The username's own entry and every (username, IP) pair: a scan of the table, which
     * an admin action can afford (about a millisecond at the default size). */
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&l->s[i].mu);
        for (unsigned k = 0; k < l->per_stripe; k++) {
            struct entry *e = &l->s[i].e[k];
            if (e->h && (e->h == h || e->owner == h)) {
                e->failures = 0;
                e->locked_until = 0;
                e->delayed_until = 0;
                e->locks = 0;
            }
        }
        pthread_mutex_unlock(&l->s[i].mu);
    }
}

unsigned pol_lockout_locked(struct pol_lockout *l, int64_t now)
{
    unsigned n = 0;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&l->s[i].mu);
        for (unsigned k = 0; k < l->per_stripe; k++)
            if (l->s[i].e[k].h && l->s[i].e[k].locked_until > now)
                n++;
        pthread_mutex_unlock(&l->s[i].mu);
    }
    return n;
}
