/* SPDX-License-Identifier: MIT */
/*
 * Inside store/: the LMDB backend's handle, shared by store_lmdb.c (tables, the writer
 * thread, the vtable), store_lmdb_rt.c (refresh records: kept by age, and spent through
 * a log instead of a rewrite in place) and store_lmdb_runs.c (the spent set's runs).
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

/* A run of spendings kept in key order (store_lmdb_runs.c): its number, and its filter. */
struct sl_run {
    uint64_t no;
    uint64_t *bits; /* 8 words a line */
    size_t lines;
    size_t count;
};

/* One filter of every key the held runs hold, and the run being written's: asked before
 * the runs' own, so that a token in no run costs one line however many runs are held.
 * Sized for SL_RUNS_MAX runs of store_fold_at, let go when no run is held; past its size it
 * only says "maybe" more often. Bits are set while readers read: atomically. */
struct sl_gate {
    _Atomic uint64_t *bits; /* 8 words a line (NULL: none yet, every key may be in a run) */
    size_t lines;
};

enum { FOLD_RECORDS = 1, FOLD_RUN }; /* what a fold step writes (sl_memo's fold_mode) */

#define SL_RUNS_MAX      40                 /* runs held before a fold into the records */
#define SL_RUN_KEY       (8 + STORE_DIGEST) /* a run's number and a record's key */
#define SL_TEXT_(x)      #x
#define SL_TEXT(x)       SL_TEXT_(x)
#define SL_RUNS_MAX_TEXT SL_TEXT(SL_RUNS_MAX) /* (for /metrics' help: "40") */

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
    uint64_t fold_retry_ms; /* after a fold failed: not before this (monotonic ms) */
    /* The runs (store_lmdb_runs.c): written in key order, each with its filter; read under
     * the read lock, changed under the write lock once the commit that changed them is. */
    struct sl_run *runs; /* oldest first */
    size_t nruns;
    size_t in_runs;         /* the spendings they hold (as their filters were built) */
    struct sl_gate gate;    /* every key of the runs, asked first */
    bool runs_always;       /* tests: a run whenever one may be written, however dense */
    size_t runs_max;        /* runs held before a fold into the records (tests: fewer) */
    size_t min_leaves;      /* refresh tables smaller than this fold straight in (tests: any) */
    bool fold_all;          /* store_fold: fold the runs too, whatever their number */
    int fold_mode;          /* the step under way: FOLD_RECORDS or FOLD_RUN (0: none) */
    struct sl_run fold_run; /* FOLD_RUN: the run being written, and its filter */
    uint64_t *fold_nos;     /* FOLD_RECORDS: the runs it folds, and how many */
    size_t fold_nruns;
    size_t fold_per_leaf; /* FOLD_RECORDS: spendings it puts on a leaf, about (1 at least) */
    uint8_t fold_key[STORE_DIGEST]; /* FOLD_RECORDS: the last key folded, once fold_keyed */
    bool fold_keyed;
    _Atomic uint64_t folds;        /* folds done, for /metrics */
    _Atomic uint64_t runs_written; /* runs written, for /metrics */
    _Atomic uint64_t spread_pm;    /* the last fold's spread estimate, per mille (/metrics) */
    _Atomic uint64_t failures;     /* folds that failed (their transaction did) */
    _Atomic uint64_t changed;      /* records a fold changed (a spending folded twice: once) */
    unsigned replaced;             /* writes refused since data.mdb was found replaced */
};

struct lmdb_store {
    struct store base;
    MDB_env *env;
    MDB_dbi dbi[STORE_T_COUNT];
    MDB_dbi legacy; /* refresh records written before time_key, until none is left */
    _Atomic bool has_legacy;
    MDB_dbi spent;        /* the spent log: spendings by sequence number (store_lmdb_rt.c) */
    MDB_dbi runs;         /* the spent set's runs (store_lmdb_runs.c) */
    MDB_dbi fam_revoked;  /* the revoked families' index (store_lmdb_fam.c) */
    bool fam_rebuild;     /* the index is to be rebuilt after the open's transaction */
    unsigned fam_rebuilt; /* 0: not rebuilt at open; else 1 + the lines it changed */
    size_t fam_own_last;  /* the last write transaction this process made (sl_fam_own) */
    bool fam_foreign;     /* another process wrote since the open: no mark at close */
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
    /* The purge's place between its operations (the writer's alone): 0 the legacy table,
     * 1 + t table t; the key it goes on from (none: the table's first) and its slice:
     * records read at most, and the time it may read for once it read PURGE_MIN. */
    unsigned purge_at;
    size_t purge_klen;
    uint8_t purge_key[511];
    size_t purge_scan;
    uint64_t purge_budget_ns;
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

/* ---- the revoked families' index (store_lmdb_fam.c) ---- */

/* At open, in its write transaction: the table, and whether it is to be rebuilt. */
int sl_fam_open(struct lmdb_store *s, MDB_txn *txn, char *err, size_t cap);
/* After the open's commit: the rebuild, if sl_fam_open found it due. */
int sl_fam_rebuild(struct lmdb_store *s, char *err, size_t cap);
/* Every write transaction of this process, just before its commit (under LMDB's writer
 * lock): notes whether another process wrote since this one's last. */
void sl_fam_own(struct lmdb_store *s, MDB_txn *txn);
/* Before the environment closes, the writer stopped: the mark that the index is whole, if no
 * other process wrote since the open. */
void sl_fam_close(struct lmdb_store *s);
/* In a write transaction: is family `id` revoked; mark it revoked; its line gone (purge). */
int sl_fam_revoked(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID],
                   bool *revoked);
int sl_fam_mark(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID],
                int64_t expires_at);
int sl_fam_unmark(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID]);
#ifdef FG_TESTING
/* Test builds: the entries of table dbi, as of now (-1: unreadable). */
long sl_entries(struct lmdb_store *s, MDB_dbi dbi);
#endif

/* ---- store_lmdb_runs.c ---- */

/* A filter for n spendings; a key added to it. */
void sl_filter_init(struct sl_run *r, size_t n);
void sl_filter_add(struct sl_run *r, const uint8_t *key);
/* The gate made ready for a run (the caller holds m's write lock), a key added to it (by the
 * writer, while readers may ask it), and let go if no run is held or being written. */
void sl_gate_ready(struct sl_memo *m);
void sl_gate_add(struct sl_memo *m, const uint8_t *key);
void sl_gate_free(struct sl_memo *m);
/* Bytes of the filters in memory: the runs', and the gate's (the caller holds m's lock). */
size_t sl_filter_bytes(const struct sl_memo *m);
void sl_runs_free(struct sl_run **runs, size_t *n);
/* A key of the runs' table, the run number of one, a line decoded (seq 0), a line written. */
void sl_run_key(uint64_t no, const uint8_t *key, uint8_t out[SL_RUN_KEY]);
uint64_t sl_run_no(const MDB_val *k);
int sl_run_decode(const MDB_val *k, const MDB_val *v, struct sl_spend *e);
int sl_run_put(MDB_txn *txn, MDB_dbi dbi, uint64_t no, const struct sl_spend *e);
/* The spending of `key` in m's runs (the caller holds m's lock), or in the runs txn sees
 * numbered after `after` (another process's, without filters): *hit when there is one. */
int sl_runs_lookup(const struct sl_memo *m, MDB_txn *txn, MDB_dbi dbi, const uint8_t *key,
                   struct sl_spend *e, bool *hit);
int sl_runs_unknown_lookup(MDB_txn *txn, MDB_dbi dbi, uint64_t after, const uint8_t *key,
                           struct sl_spend *e, bool *hit);
/* The numbers of the runs txn sees (at most cap); the first and last (0, 0: none). */
int sl_runs_list(MDB_txn *txn, MDB_dbi dbi, uint64_t *nos, size_t cap, size_t *n);
int sl_runs_last(MDB_txn *txn, MDB_dbi dbi, uint64_t *first, uint64_t *last);
/* Every run txn sees numbered after `after`, added to m with its filter (write lock held);
 * m's runs numbered below `first` let go (0: all of them). */
int sl_runs_load(struct sl_memo *m, MDB_txn *txn, MDB_dbi dbi, uint64_t after);
void sl_runs_drop_below(struct sl_memo *m, uint64_t first);
/* A cursor on run `no`: at its first spending from key `from` on (NULL: its first), then at
 * each next; `more` while it is on one. */
struct sl_run_cur {
    MDB_cursor *c;
    uint64_t no;
    bool more;
    struct sl_spend e;
    uint8_t kb[SL_RUN_KEY];
};
int sl_run_cur_open(struct sl_run_cur *r, MDB_txn *txn, MDB_dbi dbi, uint64_t no,
                    const uint8_t *from);
int sl_run_cur_next(struct sl_run_cur *r);
void sl_run_cur_close(struct sl_run_cur *r);
/* A scan of the records by age: the spending of each key in txn's runs, keys asked in
 * increasing order (sl_runs_scan_at). */
struct sl_runs_scan;
int sl_runs_scan_open(struct sl_runs_scan **sc, MDB_txn *txn, MDB_dbi dbi);
int sl_runs_scan_at(struct sl_runs_scan *sc, const uint8_t *key, struct sl_spend *e, bool *hit);
void sl_runs_scan_close(struct sl_runs_scan *sc);

#endif
