/* SPDX-License-Identifier: MIT */
/* GCRA over a bounded striped table; see pol_gcra.h. */
#include "policy/pol_gcra.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "core/mem.h"

#define STRIPES 64
#define PROBE   8

struct entry {
    uint64_t h;   /* 0 = empty */
    uint64_t tat; /* ns */
};

struct stripe {
    pthread_mutex_t mu;
    struct entry *e;
};

struct pol_gcra {
    unsigned per_stripe;
    uint8_t key[crypto_shorthash_siphash24_KEYBYTES];
    struct stripe s[STRIPES];
};

void pol_gcra_rule_init(struct pol_gcra_rule *r, unsigned count, unsigned per_s, unsigned burst)
{
    memset(r, 0, sizeof(*r));
    if (!count)
        return;
    r->interval_ns = (uint64_t)per_s * 1000000000u / count;
    r->burst = burst ? burst : 1;
    r->tolerance_ns = r->interval_ns * (r->burst - 1);
}

void pol_gcra_rule_share(const struct pol_gcra_rule *r, unsigned n, struct pol_gcra_rule *out)
{
    *out = *r;
    if (!r->interval_ns || n <= 1)
        return;
    out->interval_ns = r->interval_ns * n;
    out->burst = r->burst / n ? r->burst / n : 1;
    out->tolerance_ns = out->interval_ns * (out->burst - 1);
}

struct pol_gcra *pol_gcra_new(unsigned entries)
{
    struct pol_gcra *g = xcalloc(1, sizeof(*g));
    g->per_stripe = entries / STRIPES > PROBE ? entries / STRIPES : PROBE;
    randombytes_buf(g->key, sizeof(g->key));
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&g->s[i].mu, NULL);
        g->s[i].e = xcalloc(g->per_stripe, sizeof(struct entry));
    }
    return g;
}

void pol_gcra_free(struct pol_gcra *g)
{
    if (!g)
        return;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_destroy(&g->s[i].mu);
        mem_free(g->s[i].e);
    }
    mem_free(g);
}

void pol_gcra_take(struct pol_gcra *g, unsigned rule_id, const struct pol_gcra_rule *r,
                   struct str key, uint64_t now_ns, struct pol_gcra_result *out)
{
    uint8_t buf[4 + 256];
    uint64_t h;
    size_t n = key.len < 256 ? key.len : 256;

    memcpy(buf, &rule_id, 4);
    memcpy(buf + 4, key.p, n);
    crypto_shorthash_siphash24((unsigned char *)&h, buf, 4 + n, g->key);
    h = h ? h : 1;
    struct stripe *s = &g->s[h % STRIPES];
    unsigned start = (unsigned)((h >> 8) % g->per_stripe);

    pthread_mutex_lock(&s->mu);
    struct entry *e = NULL, *victim = NULL;
    bool victim_free = false;
    for (unsigned i = 0; i < PROBE; i++) {
        struct entry *c = &s->e[(start + i) % g->per_stripe];
        if (c->h == h) {
            e = c;
            break;
        }
        /* An empty or fully recovered entry holds nothing: take the first such. Otherwise
         * the one that recovers soonest. */
        bool c_free = !c->h || c->tat <= now_ns;
        if (c_free && !victim_free) {
            victim = c;
            victim_free = true;
        } else if (!victim_free && (!victim || c->tat < victim->tat)) {
            victim = c;
        }
    }
    if (!e) {
        e = victim;
        e->h = h;
        e->tat = now_ns;
    }
    uint64_t tat = e->tat > now_ns ? e->tat : now_ns;
    if (tat - now_ns > r->tolerance_ns) {
        out->allowed = false;
        out->remaining = 0;
        out->retry_ns = tat - now_ns - r->tolerance_ns;
        out->reset_ns = tat - now_ns;
    } else {
        e->tat = tat + r->interval_ns;
        uint64_t debt = e->tat - now_ns;
        out->allowed = true;
        out->remaining =
            debt > r->tolerance_ns + r->interval_ns
                ? 0
                : (unsigned)((r->tolerance_ns + r->interval_ns - debt) / r->interval_ns);
        out->retry_ns = 0;
        out->reset_ns = debt;
    }
    pthread_mutex_unlock(&s->mu);
}
