/* SPDX-License-Identifier: MIT */
/* Inside store/: the backend vtable that store.c dispatches through. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include "store/store.h"

struct store_shared_vt;

struct store_vt {
    void (*close)(struct store *st);
    int (*get)(struct store *st, enum store_table t, const void *key, size_t klen, struct buf *out,
               struct loop *lp, struct store_op *op);
    int (*each)(struct store *st, enum store_table t, store_each_cb fn, void *ctx);
    int (*submit)(struct store *st, struct loop *lp, struct store_op *op);
    int (*exec)(struct store *st, struct store_op *op);
    uint64_t (*generation)(struct store *st);
    uint64_t (*generation_recent)(struct store *st); /* optional: generation */
    void (*stats)(struct store *st, struct store_stats *out);
    int (*usage)(struct store *st, enum store_table t, uint64_t *entries, uint64_t *bytes);
    /* optional (NULL: a local store that cannot fail to answer, documented in store.h) */
    void (*loop_release)(struct store *st, struct loop *lp);
    int (*ready)(struct store *st, uint64_t *stale_ms);
    int (*metrics_text)(struct store *st, struct buf *b); /* optional: the backend's own */
    int (*fold)(struct store *st, uint64_t *n);           /* optional: store_fold */
    /* The store is shared by instances: NULL for a store of one process (LMDB), which then
     * does not pretend to implement any of it (store.c answers as one instance alone). */
    const struct store_shared_vt *shared;
};

/* What only a store shared by several instances does: tell the others (invalidations),
 * take turns (leases), agree (pins), guard logins across instances, count the serving
 * instances. Every slot is required. */
struct store_shared_vt {
    void (*on_invalidate)(struct store *st, store_inval_cb fn, void *arg);
    int (*lease)(struct store *st, const char *name, unsigned ttl_ms);
    int (*pin)(struct store *st, const char *name, const void *val, size_t len);
    int (*guard_begin)(struct store *st, struct store_guard *g, int64_t now_ms, int *verdict);
    unsigned (*guard_end)(struct store *st, struct store_guard *g, int success, int64_t now_ms);
    void (*guard_cancel)(struct store *st, struct store_guard *g);
    void (*guard_unlock)(struct store *st, const char *user_key, const char *msg);
    void (*join)(struct store *st);
    unsigned (*members)(struct store *st);
    int (*console_put)(struct store *st, int64_t now_ms, const char *json, size_t len);
    int (*console_each)(struct store *st, store_console_cb fn, void *ctx);
};

/* Every backend's handle starts with this. */
struct store {
    const struct store_vt *vt;
};

/* Checks an op's fields before it is queued (shared by the backends). */
int store__validate(const struct store_op *op);

#endif
