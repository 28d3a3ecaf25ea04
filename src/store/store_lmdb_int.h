/* SPDX-License-Identifier: MIT */
/*
 * Inside store/: the LMDB backend's handle, shared by store_lmdb.c (tables, the writer
 * thread, the vtable) and store_lmdb_rt.c (refresh records: kept by age, and spent through
 * a log instead of a rewrite in place).
 */
#ifndef STORE_STORE_LMDB_INT_H
#define STORE_STORE_LMDB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <lmdb.h>

#include "core/buf.h"
#include "store/store_int.h"

/* One spending held in memory: the spent record's key (by age), its successor's digest, when
 * it was spent, and its place in the spent log. */
struct sl_spend {
    uint8_t key[STORE_DIGEST];
    uint8_t successor[STORE_DIGEST];
    int64_t at;
    uint64_t seq;
};

/*
 * The spendings not yet folded into their records (store_lmdb_rt.c). Changed only by the
 * holder of a write transaction (LMDB lets one at a time), under the write lock; looked up
 * by any thread under the read lock.
 */
struct sl_memo {
    pthread_rwlock_t lock;
    struct sl_spend *ent; /* in the order of the log */
    size_t n, cap;
    uint32_t *slot; /* open addressing by key: index into ent + 1, 0 for none */
    size_t mask;
    uint64_t hi;      /* the newest spending held: the log's last, or the open transaction's */
    uint64_t base;    /* hi when the open write transaction began (what an abort goes back to) */
    size_t fold_at;   /* held spendings that start a fold */
    size_t fold_cfg;  /* what it is set to (store_lmdb_fold_at); store_fold puts it back */
    uint32_t *fold;   /* writer thread: the fold under way, indexes into ent in key order */
    size_t fold_n;    /* its size (0: no fold under way) */
    size_t fold_done; /* how many of them are folded */
    uint64_t fold_hi; /* the newest spending it folds */
    uint64_t fold_retry_ms;    /* after a fold failed: not before this (monotonic ms) */
    _Atomic uint64_t folds;    /* folds done, for /metrics */
    _Atomic uint64_t failures; /* folds that failed (their transaction did) */
    _Atomic uint64_t changed;  /* records a fold changed (a spending folded twice: once) */
    unsigned replaced;         /* writes refused since data.mdb was found replaced */
};

struct lmdb_store {
    struct store base;
    MDB_env *env;
    MDB_dbi dbi[STORE_T_COUNT];
    MDB_dbi legacy; /* refresh records written before time_key, until none is left */
    _Atomic bool has_legacy;
    MDB_dbi spent; /* the spent log: spendings by sequence number (store_lmdb_rt.c) */
    struct sl_memo memo;
    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work queued or stopping */
    pthread_cond_t cv_idle; /* queue empty and nothing in flight */
    struct store_op *head, *tail;
    unsigned depth;
    int busy;
    int stopping;
    struct store_stats st;
    /* Commits failing (a full disk, an I/O error, the map full): /readyz says so until a
     * commit succeeds again, which the writer tries by itself every PROBE_MS while idle. */
    _Atomic int failing;
    _Atomic uint64_t failing_since_ms;
    uint64_t fail_logged_ms; /* under mu: the failure log is rate-limited */
    unsigned fail_suppressed;
#ifdef FG_TESTING
    _Atomic int fail_commits; /* store_lmdb_fail_commits */
#endif
};

int sl_map_err(int rc);
/* A write transaction begun with sl_rt_begin, ended: committed (an LMDB error if it failed,
 * which test builds can cause: store_lmdb_fail_commits) or aborted; a failed commit and an
 * abort both take the transaction's spendings back out of the memo (sl_rt_abort). */
int sl_commit(struct lmdb_store *s, MDB_txn *txn);
void sl_abort(struct lmdb_store *s, MDB_txn *txn);

/* ---- store_lmdb_rt.c ---- */

/* Opens the old refresh table and the spent log, and replays the log into the memo. */
int sl_rt_open(struct lmdb_store *s, MDB_txn *txn, char *err, size_t cap);
void sl_rt_close(struct lmdb_store *s);
/* Every write transaction: after it begins (the memo takes what other processes logged),
 * and if it is aborted (the memo forgets what it logged). */
int sl_rt_begin(struct lmdb_store *s, MDB_txn *txn);
void sl_rt_abort(struct lmdb_store *s);
/* Inside a write transaction: a record as the writer sees it (spendings merged), a record
 * written, and a record spent (ROTATED at `at`, successor `next`) by a line in the log. */
int sl_rt_get(struct lmdb_store *s, MDB_txn *txn, const uint8_t digest[STORE_DIGEST],
              struct store_refresh *r);
int sl_rt_put(struct lmdb_store *s, MDB_txn *txn, const uint8_t digest[STORE_DIGEST],
              const struct store_refresh *r, unsigned flags);
int sl_rt_spend(struct lmdb_store *s, MDB_txn *txn, const uint8_t digest[STORE_DIGEST], int64_t at,
                const uint8_t next[STORE_DIGEST]);
/* Readers, in a read transaction of their own: a record's encoding, and every record (keys as
 * digests), each as of one snapshot with its spendings merged. */
int sl_rt_read(struct lmdb_store *s, const uint8_t digest[STORE_DIGEST], struct buf *out);
int sl_rt_each(struct lmdb_store *s, MDB_txn *txn, store_each_cb fn, void *ctx);
/* The writer thread, between batches: one step of the fold, if one is due or under way, of
 * at least as many records as the batch before it spent (so the fold keeps up). False when
 * there is nothing to fold. */
bool sl_rt_fold_step(struct lmdb_store *s, size_t at_least);
/* A fold is due (one that failed waits a second before it is tried again). */
bool sl_rt_fold_due(struct lmdb_store *s);
/* store_fold: the writer folds every spending held; this thread waits for it. */
int sl_rt_fold_all(struct store *st, uint64_t *n);
/* /metrics: the spendings held, and the folds done. */
int sl_rt_metrics_text(struct store *st, struct buf *b);

#endif
