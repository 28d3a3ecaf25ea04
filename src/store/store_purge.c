/* SPDX-License-Identifier: MIT */
/* The purge of expired records, paced: a pass every interval, a slice a call (store.h). */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

static void purge_noop(struct store_op *op)
{
    (void)op;
}

void store_purge_init(struct store_purge *p, int64_t now)
{
    memset(p, 0, sizeof(*p));
    p->last = now;
}

bool store_purge_step(struct store_purge *p, struct store *st, int64_t interval, int64_t now)
{
    struct store_op op;

    if (!p->on) {
        if (now - p->last < interval)
            return false;
        p->on = true;
        p->began = now;
        p->purged = 0;
        p->slices = 0;
    }
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_PURGE;
    op.on_done = purge_noop;
    op.now = now;
    op.purge_first = p->slices == 0;
    int rc = store_exec(st, &op);
    p->slices++;
    if (rc == ERR_OK)
        p->purged += op.purged;
    if (rc == ERR_OK && op.purge_more)
        return true;
    /* Done, or a slice failed: the pass ends here, and the next one, an interval later,
     * reads the tables from their start again (what a failed slice left is still there). */
    char n[24], k[16], s[24];
    snprintf(n, sizeof(n), "%llu", (unsigned long long)p->purged);
    snprintf(k, sizeof(k), "%u", p->slices);
    snprintf(s, sizeof(s), "%lld", (long long)(now - p->began));
    if (rc == ERR_OK)
        log_kv(LOG_INFO, "purged expired records", "count", n, "slices", k, "seconds", s, LOG_END);
    else
        log_kv(LOG_WARN, "purge of expired records stopped", "error", err_str(rc), "count", n,
               "slices", k, LOG_END);
    p->on = false;
    p->last = now;
    return false;
}
