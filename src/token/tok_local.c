/* SPDX-License-Identifier: MIT */
/* A loop thread's token state; see tok_local.h. */
#include "token/tok_local.h"

#include <string.h>

#include "core/err.h"
#include "store/store.h"
#include "token/tok_cache.h"

void tok_svc_publish_ring(struct tok_svc *svc, struct tok_ring *fresh)
{
    pthread_mutex_lock(&svc->ring_mu);
    tok_ring_clear(&svc->ring);
    svc->ring = *fresh;
    atomic_fetch_add(&svc->ring_version, 1);
    pthread_mutex_unlock(&svc->ring_mu);
}

int tok_svc_ready(const struct tok_svc *svc, uint64_t *stale_ms)
{
    return store_ready(svc->st, stale_ms);
}

int tok_svc_metrics_text(const struct tok_svc *svc, struct buf *b)
{
    return store_metrics_text(svc->st, b);
}

/* Copies the main thread's key ring if it was reloaded since this thread's copy: memory
 * only, the store is not read. 1 if the thread's ring changed. */
static int ring_take(struct tok_local *t)
{
    struct tok_svc *svc = t->svc;
    struct tok_ring fresh; /* (tok_ring_copy fills it whole) */

    if (atomic_load(&svc->ring_version) == t->ring_version)
        return 0;
    pthread_mutex_lock(&svc->ring_mu);
    uint64_t v = atomic_load(&svc->ring_version);
    int rc = tok_ring_copy(&fresh, &svc->ring);
    pthread_mutex_unlock(&svc->ring_mu);
    if (rc)
        return 0;
    tok_ring_clear(&t->ring);
    t->ring = fresh;
    t->ring_version = v;
    return 1;
}

int tok_local_start(struct tok_local *t, struct tok_svc *svc, struct loop *lp, int64_t now)
{
    memset(t, 0, sizeof(*t));
    t->svc = svc;
    t->lp = lp;
    t->ring_checked = now;
    t->cache = tok_cache_new(svc->cache_entries);
    t->generation = store_generation_recent(svc->st);
    return ring_take(t) ? ERR_OK : ERR_NOMEM;
}

void tok_local_stop(struct tok_local *t)
{
    tok_ring_clear(&t->ring);
    tok_cache_free(t->cache);
    t->cache = NULL;
}

const struct tok_ring *tok_local_ring(struct tok_local *t, int64_t now)
{
    if (now != t->ring_checked) {
        t->ring_checked = now;
        t->generation = store_generation_recent(t->svc->st);
        ring_take(t);
    }
    return &t->ring;
}

int tok_local_kid_unknown(struct tok_local *t)
{
    if (ring_take(t))
        return 1;
    return store_generation_recent(t->svc->st) != t->ring.generation ? 2 : 0;
}

void tok_local__install(struct tok_local *t, struct tok_ring *fresh)
{
    tok_ring_clear(&t->ring);
    t->ring = *fresh;
}
