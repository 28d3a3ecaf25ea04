/* SPDX-License-Identifier: MIT */
/*
 * Refresh records on LMDB: kept in the order their tokens were issued, and spent through a
 * log instead of a rewrite in place.
 *
 * By age. A refresh digest begins with its group and, for a token issued with a stamp
 * (token/tok_refresh.h), carries the token's issue time in bytes 2-9. The refresh table keys
 * a record by its digest with those 8 bytes first (time_key), so a new record lands beside
 * the last one, on the B-tree's rightmost leaf, and records of one age sit together (leaves
 * fill up instead of splitting at random). A digest without a stamp (a token from before) is
 * placed at random, as it always was. Records written before this layout stay in the old
 * table ("refresh", s->legacy, keyed by the digest), read after the new one while it holds
 * any; a write moves its record over in the same transaction, and the purge drops the
 * expired ones, until it is empty.
 *
 * The spent log. A rotation writes its new record on the rightmost leaf, but the token it
 * spends may be old: rewritten in place, that is a random leaf of a large tree, and at 10^7
 * records a rotation cost twice what it did at 10^5 (docs/benchmarks.md, "A token of any
 * age"). So a spending (ROTATED, when, the successor: all a rotation changes in the old
 * record) is appended to the log "spent" under a sequence number, in the rotation's
 * transaction, and held in memory by key (the memo, struct sl_memo). Every reader merges
 * it: the writer's view (sl_rt_get) holds every spending the open transaction can see; a
 * reader's (sl_rt_read, sl_rt_each) only those its snapshot holds, by sequence number. When
 * fold_at spendings are held, the writer folds them into their records in key order, a
 * chunk per transaction between batches (several spendings per leaf: a dense fold costs
 * far less than the rewrites it replaces), and in the last chunk deletes them from the log
 * but the newest, so the log's last number never goes back. A fold may be cut short by a
 * crash at any point: a spending merged twice is merged once (the record says ROTATED
 * already), and the log is replayed into the memo when the store opens.
 *
 * Runs. When a fold would rewrite most of a leaf per spending (tokens of every age in a large
 * store), it writes the memo as a sorted run instead (store_lmdb_runs.c), and every SL_RUNS_MAX
 * runs it merges them all with the memo, in key order, into the records: several spendings per leaf
 * it rewrites instead of one. Readers look in the runs after the memo, through their filters; the
 * list of runs changes under the memo's write lock, as the memo does.
 *
 * Several processes may open the store (the CLI; two servers during a restart with
 * listen_shared): every write transaction first takes into the memo what the log holds
 * past it, and a reader whose snapshot holds more than the memo reads that tail itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "metrics/met_text.h"
#include "store/store_lmdb_int.h"
#include "store/store_rec.h"

#define FOLD_AT    200000 /* store_fold_at unless set: spendings held before a fold, ~20 MiB */
#define FOLD_CHUNK 256    /* records folded in one transaction, at least */
#define FOLD_RETRY 1000   /* ms after a failed fold before another */
#define LOG_VAL    (2 * STORE_DIGEST + 8)
#define RUN_CHUNK  2048 /* spendings written to a run in one transaction, at least */
/* A fold goes straight into the records unless it would rewrite more than RUN_SPREAD leaves
 * per spending (estimated from SPREAD_PAIRS neighbours in key order: tokens of every age in a
 * large store), or when the refresh tables have fewer than RUN_MIN_LEAVES leaves (16 MiB:
 * they stay hot). Spendings of recent tokens share their leaves, and a fold of them costs
 * little: a run is worth its writing and its reading only when a fold would rewrite most of
 * a leaf per spending. */
#define RUN_SPREAD     0.5
#define SPREAD_PAIRS   512
#define RUN_MIN_LEAVES 4096

static void time_key(const uint8_t *digest, uint8_t *key)
{
    memcpy(key, digest + 2, 8);
    memcpy(key + 8, digest, 2);
    memcpy(key + 10, digest + 10, STORE_DIGEST - 10);
}

static void digest_of_key(const uint8_t *key, uint8_t *digest)
{
    memcpy(digest, key + 8, 2);
    memcpy(digest + 2, key, 8);
    memcpy(digest + 10, key + 10, STORE_DIGEST - 10);
}

/* The record of `digest` as it lies, in the table by age or else in the old one. */
static int find(struct lmdb_store *s, MDB_txn *txn, const uint8_t *digest, MDB_val *v)
{
    uint8_t tk[STORE_DIGEST];
    MDB_val k = {STORE_DIGEST, tk};
    time_key(digest, tk);
    int rc = mdb_get(txn, s->dbi[STORE_T_REFRESH], &k, v);
    if (rc == MDB_NOTFOUND && atomic_load_explicit(&s->has_legacy, memory_order_relaxed)) {
        k.mv_data = (void *)(uintptr_t)digest;
        rc = mdb_get(txn, s->legacy, &k, v);
    }
    return sl_map_err(rc);
}

/* A spending merged into its record: what a rotation changes in the token it spends. */
static bool merge(struct store_refresh *r, const struct sl_spend *e)
{
    if (r->state == STORE_RT_ROTATED)
        return false; /* (folded already) */
    r->state = STORE_RT_ROTATED;
    r->rotated_at = e->at;
    memcpy(r->successor, e->successor, STORE_DIGEST);
    return true;
}

/* ---- the memo: a hash of the held spendings, by key ---------------------------------- */

static size_t slot_of(const struct sl_memo *m, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key + 16, sizeof(h)); /* (a keyed digest's bytes: already uniform) */
    return (size_t)(h ^ (h >> 31)) & m->mask;
}

static void index_one(struct sl_memo *m, size_t i)
{
    size_t h = slot_of(m, m->ent[i].key);
    while (m->slot[h])
        h = (h + 1) & m->mask;
    m->slot[h] = (uint32_t)i + 1;
}

static void rebuild(struct sl_memo *m)
{
    size_t want = 1024;
    while (want < 4 * m->n)
        want *= 2;
    if (want != m->mask + 1) {
        mem_free(m->slot);
        m->slot = xcalloc(want, sizeof(*m->slot));
        m->mask = want - 1;
    } else {
        memset(m->slot, 0, want * sizeof(*m->slot));
    }
    for (size_t i = 0; i < m->n; i++)
        index_one(m, i);
}

static void add(struct sl_memo *m, const struct sl_spend *e)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->ent = xrealloc(m->ent, m->cap * sizeof(*m->ent));
    }
    m->ent[m->n++] = *e;
    if (2 * m->n > m->mask + 1)
        rebuild(m);
    else
        index_one(m, m->n - 1);
}

/* The spending of `key` numbered at most `upto` (the caller holds the lock). */
static bool lookup(const struct sl_memo *m, const uint8_t *key, uint64_t upto, struct sl_spend *out)
{
    if (!m->n)
        return false;
    for (size_t h = slot_of(m, key); m->slot[h]; h = (h + 1) & m->mask) {
        const struct sl_spend *e = &m->ent[m->slot[h] - 1];
        if (e->seq <= upto && cr_eq(e->key, key, STORE_DIGEST)) {
            *out = *e;
            return true;
        }
    }
    return false;
}

static void memo_init(struct sl_memo *m)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* (a rotation waits for no stream of introspections) */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&m->lock, &a);
    pthread_rwlockattr_destroy(&a);
    m->fold_at = m->fold_cfg = FOLD_AT;
    m->min_leaves = RUN_MIN_LEAVES;
    m->runs_max = SL_RUNS_MAX;
    rebuild(m);
}

static void memo_fini(struct sl_memo *m)
{
    mem_free(m->ent);
    mem_free(m->slot);
    mem_free(m->fold);
}

/* ---- the log: spendings by sequence number, big-endian ------------------------------- */

static void seq_put(uint64_t seq, uint8_t k[8])
{
    for (int i = 7; i >= 0; i--, seq >>= 8)
        k[i] = (uint8_t)seq;
}

static uint64_t seq_get(const uint8_t k[8])
{
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = seq << 8 | k[i];
    return seq;
}

static int decode(const MDB_val *k, const MDB_val *v, struct sl_spend *e)
{
    if (k->mv_size != 8 || v->mv_size != LOG_VAL)
        return ERR_BACKEND; /* (nothing else writes there) */
    const uint8_t *p = v->mv_data;
    memcpy(e->key, p, STORE_DIGEST);
    memcpy(e->successor, p + STORE_DIGEST, STORE_DIGEST);
    memcpy(&e->at, p + 2 * STORE_DIGEST, 8);
    e->seq = seq_get(k->mv_data);
    return ERR_OK;
}

/* The log's last number in txn's view (0 when it is empty). */
static int log_last(MDB_txn *txn, MDB_dbi dbi, uint64_t *seq)
{
    MDB_cursor *c;
    MDB_val k, v;
    *seq = 0;
    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8)
        *seq = seq_get(k.mv_data);
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? ERR_OK : ERR_BACKEND;
}

/*
 * Every spending numbered after `after` and at most `upto`, in order: into m, or with m NULL
 * the one of `key` into *found (*hit true when there is one).
 */
static int log_read(MDB_txn *txn, MDB_dbi dbi, uint64_t after, uint64_t upto, struct sl_memo *m,
                    const uint8_t *key, struct sl_spend *found, bool *hit)
{
    MDB_cursor *c;
    uint8_t kb[8];
    struct sl_spend e;
    seq_put(after + 1, kb);
    MDB_val k = {8, kb}, v;

    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    int rc = ERR_OK, mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; mrc == 0 && rc == ERR_OK; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if ((rc = decode(&k, &v, &e)) || e.seq > upto)
            break;
        if (m) {
            add(m, &e);
            m->hi = e.seq;
        } else if (cr_eq(e.key, key, STORE_DIGEST)) {
            *found = e;
            *hit = true;
        }
    }
    mdb_cursor_close(c);
    return rc ? rc : (mrc == 0 || mrc == MDB_NOTFOUND) ? ERR_OK : ERR_BACKEND;
}

/* ---- opening, and every write transaction ------------------------------------------- */

int sl_rt_open(struct lmdb_store *s, MDB_txn *txn, char *err, size_t cap)
{
    MDB_stat ms;
    int rc;

    memo_init(&s->memo);
    if ((rc = mdb_dbi_open(txn, "refresh", MDB_CREATE, &s->legacy)) ||
        (rc = mdb_stat(txn, s->legacy, &ms))) {
        snprintf(err, cap, "store table refresh: %s", mdb_strerror(rc));
        return ERR_IO;
    }
    if ((rc = mdb_dbi_open(txn, "spent", MDB_CREATE, &s->spent))) {
        snprintf(err, cap, "store table spent: %s", mdb_strerror(rc));
        return ERR_IO;
    }
    if ((rc = mdb_dbi_open(txn, "spent_runs", MDB_CREATE, &s->runs))) {
        snprintf(err, cap, "store table spent_runs: %s", mdb_strerror(rc));
        return ERR_IO;
    }
    atomic_store(&s->has_legacy, ms.ms_entries > 0);
    if (log_read(txn, s->spent, 0, UINT64_MAX, &s->memo, NULL, NULL, NULL)) {
        snprintf(err, cap, "store table spent: a record is damaged: restore it from a backup");
        return ERR_IO;
    }
    if (sl_runs_load(&s->memo, txn, s->runs, 0)) {
        snprintf(err, cap,
                 "store table spent_runs: a record is damaged: restore it from a "
                 "backup");
        return ERR_IO;
    }
    return ERR_OK;
}

void sl_rt_close(struct lmdb_store *s)
{
    pthread_rwlock_destroy(&s->memo.lock);
    memo_fini(&s->memo);
    sl_runs_free(&s->memo.runs, &s->memo.nruns);
    mem_free(s->memo.fold_run.bits);
    sl_gate_free(&s->memo);
    mem_free(s->memo.fold_nos);
}

/* The newest run m holds (its own, or another process's it loaded), and with `writing` the
 * one it is writing too (the caller holds the lock). */
static uint64_t newest_run(const struct sl_memo *m, bool writing)
{
    uint64_t no = writing && m->fold_mode == FOLD_RUN ? m->fold_run.no : 0;
    for (size_t i = 0; i < m->nruns; i++)
        if (m->runs[i].no > no)
            no = m->runs[i].no;
    return no;
}

int sl_rt_begin(struct lmdb_store *s, MDB_txn *txn)
{
    struct sl_memo *m = &s->memo;
    uint64_t last;
    int rc = log_last(txn, s->spent, &last);

    pthread_rwlock_wrlock(&m->lock);
    if (rc == ERR_OK && last < m->hi) {
        /* The log's last number never goes back: another store was put in this one's place
         * while it was open. Nothing is written until it is opened again. */
        if (!m->replaced++)
            log_kv(LOG_ERROR, "store: data.mdb was replaced while in use: restart floodgate",
                   LOG_END);
        rc = ERR_BACKEND;
    }
    if (rc == ERR_OK && last > m->hi) /* another process spent some */
        rc = log_read(txn, s->spent, m->hi, last, m, NULL, NULL, NULL);
    uint64_t first, newest;
    if (rc == ERR_OK && (rc = sl_runs_last(txn, s->runs, &first, &newest)) == ERR_OK) {
        /* another process wrote runs (of spendings it may have taken out of the log before
         * this one read them), or folded them into the records */
        sl_runs_drop_below(m, first);
        if (newest > newest_run(m, true))
            rc = sl_runs_load(m, txn, s->runs, newest_run(m, true));
    }
    m->base = m->hi;
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

void sl_rt_abort(struct lmdb_store *s)
{
    struct sl_memo *m = &s->memo;
    pthread_rwlock_wrlock(&m->lock);
    size_t n = m->n;
    while (n && m->ent[n - 1].seq > m->base)
        n--;
    if (n != m->n) {
        m->n = n;
        rebuild(m);
    }
    m->hi = m->base;
    pthread_rwlock_unlock(&m->lock);
}

/* ---- the writer's view ------------------------------------------------------------------ */

int sl_rt_get(struct lmdb_store *s, MDB_txn *txn, const uint8_t digest[STORE_DIGEST],
              struct store_refresh *r)
{
    MDB_val v;
    uint8_t key[STORE_DIGEST];
    struct sl_spend e;
    int rc = find(s, txn, digest, &v);
    if (rc || (rc = store_refresh_decode(v.mv_data, v.mv_size, r)))
        return rc;
    time_key(digest, key);
    pthread_rwlock_rdlock(&s->memo.lock);
    bool hit = lookup(&s->memo, key, UINT64_MAX, &e);
    if (!hit)
        rc = sl_runs_lookup(&s->memo, txn, s->runs, key, &e, &hit);
    pthread_rwlock_unlock(&s->memo.lock);
    if (hit)
        merge(r, &e);
    return rc;
}

int sl_rt_put(struct lmdb_store *s, MDB_txn *txn, const uint8_t digest[STORE_DIGEST],
              const struct store_refresh *r, unsigned flags)
{
    uint8_t enc[STORE_REFRESH_ENC_MAX], tk[STORE_DIGEST];
    size_t n = store_refresh_encode(r, enc);
    MDB_val k = {STORE_DIGEST, (void *)(uintptr_t)digest}, v;
    int rc;

    if (!n)
        return ERR_INVAL;
    if (atomic_load_explicit(&s->has_legacy, memory_order_relaxed)) {
        rc = mdb_get(txn, s->legacy, &k, &v);
        if (rc == 0 && (flags & MDB_NOOVERWRITE))
            return ERR_CONFLICT;
        if (rc == 0)
            rc = mdb_del(txn, s->legacy, &k, NULL); /* moved to the table by age */
        if (rc && rc != MDB_NOTFOUND)
            return sl_map_err(rc);
    }
    time_key(digest, tk);
    k.mv_data = tk;
    v.mv_size = n;
    v.mv_data = enc;
    return sl_map_err(mdb_put(txn, s->dbi[STORE_T_REFRESH], &k, &v, flags));
}

int sl_rt_spend(struct lmdb_store *s, MDB_txn *txn, const uint8_t digest[STORE_DIGEST], int64_t at,
                const uint8_t next[STORE_DIGEST])
{
    struct sl_memo *m = &s->memo;
    struct sl_spend e = {.at = at, .seq = m->hi + 1}; /* (only this transaction moves hi) */
    uint8_t val[LOG_VAL], kb[8];
    MDB_val k = {8, kb}, v = {LOG_VAL, val};

    time_key(digest, e.key);
    memcpy(e.successor, next, STORE_DIGEST);
    memcpy(val, e.key, STORE_DIGEST);
    memcpy(val + STORE_DIGEST, next, STORE_DIGEST);
    memcpy(val + 2 * STORE_DIGEST, &at, 8);
    seq_put(e.seq, kb);
    int rc = sl_map_err(mdb_put(txn, s->spent, &k, &v, MDB_APPEND));
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&m->lock);
    add(m, &e);
    m->hi = e.seq;
    pthread_rwlock_unlock(&m->lock);
    return ERR_OK;
}

/* ---- readers ------------------------------------------------------------------------ */

/*
 * The lock is held from before the snapshot is taken until the memo is read, so no fold can
 * drop a spending from the memo that this snapshot's record does not hold yet; spendings
 * the snapshot does not hold are numbered past its log's last and skipped.
 */
int sl_rt_read(struct lmdb_store *s, const uint8_t digest[STORE_DIGEST], struct buf *out)
{
    struct sl_memo *m = &s->memo;
    uint8_t key[STORE_DIGEST], enc[STORE_REFRESH_ENC_MAX];
    struct sl_spend e;
    struct store_refresh r;
    bool hit = false;
    uint64_t last = 0;
    MDB_txn *txn;
    MDB_val v;

    time_key(digest, key);
    pthread_rwlock_rdlock(&m->lock);
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) {
        pthread_rwlock_unlock(&m->lock);
        return ERR_BACKEND;
    }
    int rc = find(s, txn, digest, &v);
    if (rc == ERR_OK)
        rc = log_last(txn, s->spent, &last);
    if (rc == ERR_OK && !(hit = lookup(m, key, last, &e)))
        rc = sl_runs_lookup(m, txn, s->runs, key, &e, &hit);
    if (rc == ERR_OK && !hit && last > m->hi) /* another process's, in the log or a run */
        rc = log_read(txn, s->spent, m->hi, last, NULL, key, &e, &hit);
    if (rc == ERR_OK && !hit && last > m->hi)
        rc = sl_runs_unknown_lookup(txn, s->runs, newest_run(m, false), key, &e, &hit);
    pthread_rwlock_unlock(&m->lock);
    if (rc == ERR_OK && hit && store_refresh_decode(v.mv_data, v.mv_size, &r) == ERR_OK &&
        merge(&r, &e)) {
        v.mv_size = store_refresh_encode(&r, enc);
        v.mv_data = enc;
    }
    if (rc == ERR_OK) {
        buf_reset(out);
        rc = buf_append(out, v.mv_data, v.mv_size);
    }
    mdb_txn_abort(txn);
    return rc;
}

static int each_dbi(struct lmdb_store *s, MDB_txn *txn, MDB_dbi dbi, bool by_age,
                    const struct sl_memo *m, store_each_cb fn, void *ctx)
{
    struct sl_runs_scan *sc = NULL;
    struct sl_spend re;
    bool hit, in_run = false;
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t d[STORE_DIGEST], key[STORE_DIGEST], enc[STORE_REFRESH_ENC_MAX];
    struct store_refresh r;
    struct sl_spend e;

    int rc = by_age ? sl_runs_scan_open(&sc, txn, s->runs) : ERR_OK;
    if (rc || mdb_cursor_open(txn, dbi, &c)) {
        sl_runs_scan_close(sc);
        return ERR_BACKEND;
    }
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; mrc == 0 && rc == ERR_OK; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size == STORE_DIGEST) {
            if (by_age)
                digest_of_key(k.mv_data, d);
            else
                memcpy(d, k.mv_data, STORE_DIGEST);
            k.mv_data = d;
            time_key(d, key);
            hit = lookup(m, key, UINT64_MAX, &e);
            in_run = false;
            if (by_age) /* (the records in key order: the runs are read alongside) */
                rc = sl_runs_scan_at(sc, key, &re, &in_run);
            else if (!hit)
                rc = sl_runs_unknown_lookup(txn, s->runs, 0, key, &re, &in_run);
            if (!hit && in_run) {
                e = re;
                hit = true;
            }
            if (rc == ERR_OK && hit && store_refresh_decode(v.mv_data, v.mv_size, &r) == ERR_OK &&
                merge(&r, &e)) {
                v.mv_size = store_refresh_encode(&r, enc);
                v.mv_data = enc;
            }
        }
        if (rc == ERR_OK)
            rc = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    sl_runs_scan_close(sc);
    return rc;
}

/* A scan is rare (ending a user's sessions, the CLI): it reads its snapshot's log into a memo
 * of its own instead of holding the lock for its whole length. */
int sl_rt_each(struct lmdb_store *s, MDB_txn *txn, store_each_cb fn, void *ctx)
{
    struct sl_memo m = {0};

    rebuild(&m);
    int rc = log_read(txn, s->spent, 0, UINT64_MAX, &m, NULL, NULL, NULL);
    if (rc == ERR_OK)
        rc = each_dbi(s, txn, s->dbi[STORE_T_REFRESH], true, &m, fn, ctx);
    if (rc == ERR_OK && atomic_load_explicit(&s->has_legacy, memory_order_relaxed))
        rc = each_dbi(s, txn, s->legacy, false, &m, fn, ctx);
    memo_fini(&m);
    return rc;
}

/* ---- the fold ------------------------------------------------------------------------ */

/* LMDB's order of keys. (An order for a sort, not an equality with a presented value: the
 * lookups above compare in constant time.) */
static int order(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, STORE_DIGEST);
}

static int by_key(const void *a, const void *b, void *arg)
{
    const struct sl_memo *m = arg;
    return order(m->ent[*(const uint32_t *)a].key, m->ent[*(const uint32_t *)b].key);
}

/* Leaves of the refresh tables: how many pages a fold into the records may rewrite. */
static size_t leaves(struct lmdb_store *s, MDB_txn *txn)
{
    MDB_stat a = {0}, b = {0};
    mdb_stat(txn, s->dbi[STORE_T_REFRESH], &a);
    if (atomic_load_explicit(&s->has_legacy, memory_order_relaxed))
        mdb_stat(txn, s->legacy, &b);
    return a.ms_leaf_pages + b.ms_leaf_pages;
}

/*
 * What a fold of the plan straight into the records would rewrite per spending: the share of
 * spendings whose record lies on another leaf than the one before it in key order, from up
 * to SPREAD_PAIRS pairs spread over the plan. (A record's data lies in its leaf's page of
 * the map: nothing of the refresh tables is written yet in this transaction.)
 */
static double spread(struct lmdb_store *s, MDB_txn *txn)
{
    struct sl_memo *m = &s->memo;
    size_t n = m->fold_n, pairs = 0, apart = 0, step;
    MDB_stat st;
    if (n < 2 || mdb_stat(txn, s->dbi[STORE_T_REFRESH], &st))
        return 0;
    step = (n - 1) / SPREAD_PAIRS ? (n - 1) / SPREAD_PAIRS : 1;
    for (size_t i = 0; i + 1 < n && pairs < SPREAD_PAIRS; i += step) {
        uintptr_t page[2];
        bool found = true;
        for (int j = 0; j < 2 && found; j++) {
            uint8_t d[STORE_DIGEST];
            MDB_val v;
            digest_of_key(m->ent[m->fold[i + (size_t)j]].key, d);
            if ((found = find(s, txn, d, &v) == ERR_OK))
                page[j] = (uintptr_t)v.mv_data / st.ms_psize;
        }
        if (found) {
            pairs++;
            apart += page[0] != page[1];
        }
    }
    return pairs ? (double)apart / (double)pairs : 0;
}

/*
 * In the fold's first transaction, after sl_rt_begin (so nothing held is pending): every held
 * spending, in key order, is what this fold moves on. Into the records when they are dense
 * enough there (alone), or with every run when SL_RUNS_MAX runs are held, when store_fold
 * asks or when the store is small; otherwise into a new run.
 */
static int fold_plan(struct lmdb_store *s, MDB_txn *txn)
{
    struct sl_memo *m = &s->memo;
    uint64_t first, last;
    pthread_rwlock_rdlock(&m->lock);
    m->fold = xmalloc((m->n ? m->n : 1) * sizeof(*m->fold));
    for (size_t i = 0; i < m->n; i++)
        m->fold[i] = (uint32_t)i;
    qsort_r(m->fold, m->n, sizeof(*m->fold), by_key, m);
    m->fold_n = m->n;
    m->fold_hi = m->hi;
    m->fold_done = 0;
    m->fold_keyed = false;
    size_t lv = leaves(s, txn);
    /* the runs go into the records with the fold of all, or in a store that is small (again):
     * a dense memo in a large store folds alone, and the runs wait for the fold of all.
     * Taken along, a few runs of tokens of every age would rewrite most of the leaves for a
     * fraction of the spendings that fold puts on them: at 10^7, 4 runs with a dense memo
     * held the rate at half for 30 s (docs/benchmarks.md, "The commit's sync sets the rate") */
    bool with_runs =
        m->fold_all || m->nruns >= m->runs_max || (!m->runs_always && lv < m->min_leaves);
    bool records = with_runs;
    if (!records && !m->runs_always) {
        double sp = spread(s, txn);
        atomic_store(&m->spread_pm, (uint64_t)(sp * 1000 + 0.5));
        records = sp <= RUN_SPREAD;
    }
    size_t all = m->fold_n + (with_runs ? m->in_runs : 0);
    pthread_rwlock_unlock(&m->lock);
    /* a fold into the records puts about this many spendings on a leaf: its chunks grow with
     * it, so that each commit still rewrites about FOLD_CHUNK leaves */
    m->fold_per_leaf = records && lv ? all / lv : 1;
    m->fold_per_leaf = m->fold_per_leaf ? m->fold_per_leaf : 1;
    int rc;
    if (records) {
        m->fold_nos = xmalloc(4 * SL_RUNS_MAX * sizeof(*m->fold_nos));
        m->fold_nruns = 0;
        rc = with_runs ? sl_runs_list(txn, s->runs, m->fold_nos, 4 * SL_RUNS_MAX, &m->fold_nruns)
                       : ERR_OK;
    } else if ((rc = sl_runs_last(txn, s->runs, &first, &last)) == ERR_OK) {
        sl_filter_init(&m->fold_run, m->fold_n);
        m->fold_run.no = last + 1;
    }
    pthread_rwlock_wrlock(&m->lock); /* (sl_rt_begin on another thread reads it) */
    m->fold_mode = records ? FOLD_RECORDS : FOLD_RUN;
    if (!records)
        sl_gate_ready(m);
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

/* A spending merged into its record, as the rotation that spent it would have. */
static int fold_one(struct lmdb_store *s, MDB_txn *txn, const struct sl_spend *e, size_t *changed)
{
    struct store_refresh r;
    uint8_t d[STORE_DIGEST];
    MDB_val v;

    digest_of_key(e->key, d);
    int rc = find(s, txn, d, &v);
    if (rc == ERR_NOTFOUND)
        return ERR_OK; /* purged since (it expired) */
    if (rc)
        return rc;
    if (store_refresh_decode(v.mv_data, v.mv_size, &r) || !merge(&r, e))
        return ERR_OK; /* (a record no one can read stays as it is) */
    (*changed)++;
    return sl_rt_put(s, txn, d, &r, 0);
}

static struct sl_spend held_at(struct sl_memo *m, size_t i)
{
    pthread_rwlock_rdlock(&m->lock);
    struct sl_spend e = m->ent[m->fold[i]];
    pthread_rwlock_unlock(&m->lock);
    return e;
}

/* FOLD_RUN: the next chunk of held spendings written to the run, in key order. */
static int fold_run_step(struct lmdb_store *s, MDB_txn *txn, size_t end)
{
    struct sl_memo *m = &s->memo;
    int rc = ERR_OK;
    for (size_t i = m->fold_done; rc == ERR_OK && i < end; i++) {
        struct sl_spend e = held_at(m, i);
        if ((rc = sl_run_put(txn, s->runs, m->fold_run.no, &e)) == ERR_OK) {
            sl_filter_add(&m->fold_run, e.key); /* (a failure frees the whole filter) */
            sl_gate_add(m, e.key);              /* (and leaves the gate a superset) */
        }
    }
    return rc;
}

/* A run of FOLD_RECORDS's merge, read from where the chunk before left it. */
static int src_open(struct lmdb_store *s, MDB_txn *txn, uint64_t no, struct sl_run_cur *r)
{
    struct sl_memo *m = &s->memo;
    int rc = sl_run_cur_open(r, txn, s->runs, no, m->fold_keyed ? m->fold_key : NULL);
    if (rc == ERR_OK && r->more && m->fold_keyed && order(r->e.key, m->fold_key) == 0)
        rc = sl_run_cur_next(r); /* (folded by the chunk before) */
    return rc;
}

/*
 * FOLD_RECORDS: the next `chunk` spendings, at least, of every run and the memo merged in key
 * order, folded into their records and taken out of their runs. *left: some remain. A key in
 * more than one place (a run another process wrote of spendings this one held too) is folded
 * from all of them in one chunk, so that none of its lines is left behind.
 */
static int fold_records_step(struct lmdb_store *s, MDB_txn *txn, size_t chunk, size_t *changed,
                             size_t *done, bool *left)
{
    struct sl_memo *m = &s->memo;
    size_t nr = m->fold_nruns, count = 0, ndel = 0;
    struct sl_run_cur *r = xcalloc(nr ? nr : 1, sizeof(*r));
    uint8_t(*del)[SL_RUN_KEY] = NULL;
    size_t cap = 0;
    int rc = ERR_OK;

    for (size_t j = 0; rc == ERR_OK && j < nr; j++)
        rc = src_open(s, txn, m->fold_nos[j], &r[j]);
    for (*done = m->fold_done; rc == ERR_OK;) {
        struct sl_spend best = {0};
        int from = -1; /* a run, or nr for the memo */
        for (size_t j = 0; j < nr; j++)
            if (r[j].more && (from < 0 || order(r[j].e.key, best.key) < 0)) {
                from = (int)j;
                best = r[j].e;
            }
        if (*done < m->fold_n) {
            struct sl_spend e = held_at(m, *done);
            if (from < 0 || order(e.key, best.key) < 0) {
                from = (int)nr;
                best = e;
            }
        }
        if (from < 0 || (count >= chunk && order(best.key, m->fold_key) != 0))
            break;
        if (from == (int)nr) {
            (*done)++;
        } else {
            if (ndel == cap)
                del = xrealloc(del, (cap = cap ? 2 * cap : 256) * sizeof(*del));
            sl_run_key(m->fold_nos[from], best.key, del[ndel++]);
            rc = sl_run_cur_next(&r[from]);
        }
        if (rc == ERR_OK)
            rc = fold_one(s, txn, &best, changed);
        memcpy(m->fold_key, best.key, STORE_DIGEST); /* (a failed chunk ends the fold) */
        m->fold_keyed = true;
        count++;
    }
    *left = *done < m->fold_n;
    for (size_t j = 0; j < nr; j++) {
        *left = *left || r[j].more;
        sl_run_cur_close(&r[j]);
    }
    for (size_t i = 0; rc == ERR_OK && i < ndel; i++) {
        MDB_val k = {SL_RUN_KEY, del[i]};
        int mrc = mdb_del(txn, s->runs, &k, NULL);
        rc = mrc == 0 || mrc == MDB_NOTFOUND ? ERR_OK : sl_map_err(mrc);
    }
    mem_free(del);
    mem_free(r);
    return rc;
}

/* The log but its spendings after `hi` and `hi` itself (its number is the log's last). */
static int log_trim(MDB_txn *txn, MDB_dbi dbi, uint64_t hi)
{
    MDB_cursor *c;
    MDB_val k, v;
    int mrc;

    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    while ((mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8 &&
           seq_get(k.mv_data) < hi)
        if ((mrc = mdb_cursor_del(c, 0)))
            break;
    mdb_cursor_close(c);
    return mrc == 0 || mrc == MDB_NOTFOUND ? ERR_OK : sl_map_err(mrc);
}

static void fold_end(struct sl_memo *m, int rc)
{
    mem_free(m->fold);
    m->fold = NULL;
    m->fold_n = 0;
    mem_free(m->fold_run.bits);
    m->fold_run.bits = NULL;
    mem_free(m->fold_nos);
    m->fold_nos = NULL;
    m->fold_nruns = 0;
    pthread_rwlock_wrlock(&m->lock);
    m->fold_mode = 0;
    pthread_rwlock_unlock(&m->lock);
    if (rc) {
        atomic_fetch_add(&m->failures, 1);
        m->fold_retry_ms = clock_mono_ns() / 1000000u + FOLD_RETRY;
        log_kv(LOG_WARN, "store: folding spent refresh tokens failed; it will be tried again",
               "error", err_str(rc), LOG_END);
    }
}

/* How many spendings are held now: in memory, and (with runs) in the runs as well. */
static size_t held(struct sl_memo *m, bool runs)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t n = m->n + (runs ? m->in_runs : 0);
    pthread_rwlock_unlock(&m->lock);
    return n;
}

bool sl_rt_fold_due(struct lmdb_store *s)
{
    pthread_rwlock_rdlock(&s->memo.lock);
    bool due = s->memo.n >= s->memo.fold_at || (s->memo.fold_all && s->memo.nruns > 0);
    pthread_rwlock_unlock(&s->memo.lock);
    return due;
}

/* The step's commit is durable: the memo lets go of what this fold moved, and the runs it
 * folded go, or the run it wrote joins them. */
static void fold_done(struct sl_memo *m)
{
    pthread_rwlock_wrlock(&m->lock);
    size_t k = 0;
    while (k < m->n && m->ent[k].seq <= m->fold_hi)
        k++;
    memmove(m->ent, m->ent + k, (m->n - k) * sizeof(*m->ent));
    m->n -= k;
    rebuild(m);
    if (m->fold_mode == FOLD_RUN) {
        m->runs = xrealloc(m->runs, (m->nruns + 1) * sizeof(*m->runs));
        m->runs[m->nruns++] = m->fold_run;
        m->in_runs += m->fold_run.count;
        m->fold_run.bits = NULL;
    } else {
        uint64_t top = 0;
        for (size_t j = 0; j < m->fold_nruns; j++)
            top = m->fold_nos[j] > top ? m->fold_nos[j] : top;
        sl_runs_drop_below(m, top + 1);
    }
    pthread_rwlock_unlock(&m->lock);
    if (m->fold_mode == FOLD_RECORDS)
        atomic_fetch_add(&m->folds, 1);
    else
        atomic_fetch_add(&m->runs_written, 1);
    fold_end(m, ERR_OK);
}

bool sl_rt_fold_step(struct lmdb_store *s, size_t at_least)
{
    struct sl_memo *m = &s->memo;
    MDB_txn *txn;

    if (!m->fold_mode && (!sl_rt_fold_due(s) || clock_mono_ns() / 1000000u < m->fold_retry_ms))
        return false;
    if (mdb_txn_begin(s->env, NULL, 0, &txn)) {
        fold_end(m, ERR_BACKEND);
        return false;
    }
    int rc = sl_rt_begin(s, txn);
    if (rc == ERR_OK && !m->fold_mode)
        rc = fold_plan(s, txn);
    size_t changed = 0, done = m->fold_done;
    bool left = false;
    if (rc == ERR_OK && m->fold_mode == FOLD_RUN) {
        size_t chunk = at_least > RUN_CHUNK ? at_least : RUN_CHUNK;
        done = done + chunk < m->fold_n ? done + chunk : m->fold_n;
        rc = fold_run_step(s, txn, done);
        left = done < m->fold_n;
    } else if (rc == ERR_OK) {
        size_t chunk = FOLD_CHUNK * m->fold_per_leaf;
        rc = fold_records_step(s, txn, at_least > chunk ? at_least : chunk, &changed, &done, &left);
    }
    if (rc == ERR_OK && !left)
        rc = log_trim(txn, s->spent, m->fold_hi);
    if (rc)
        sl_abort(s, txn);
    else if (sl_commit(s, txn))
        rc = ERR_BACKEND;
    if (rc) {
        fold_end(m, rc);
        return false;
    }
    m->fold_done = done;
    atomic_fetch_add(&m->changed, changed);
    if (!left)
        fold_done(m);
    return true;
}

/* The writer thread owns the fold: it is asked to fold at 1 held, woken, and waited for.
 * n = 0: back to the setting (store_lmdb_fold_at); with `set`, n becomes the setting. `all`:
 * every run is folded into the records too. */
static void fold_at(struct lmdb_store *s, size_t n, bool set, bool all)
{
    pthread_rwlock_wrlock(&s->memo.lock);
    if (set)
        s->memo.fold_cfg = n;
    s->memo.fold_at = n ? n : s->memo.fold_cfg;
    s->memo.fold_all = all;
    pthread_rwlock_unlock(&s->memo.lock);
    pthread_mutex_lock(&s->mu); /* (an idle writer looks again) */
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int sl_rt_fold_all(struct store *st, uint64_t *n)
{
    struct lmdb_store *s = (struct lmdb_store *)(void *)st;
    struct sl_memo *m = &s->memo;
    uint64_t failed = atomic_load(&m->failures), before = atomic_load(&m->changed);
    if (!held(m, true))
        return ERR_OK;
    fold_at(s, 1, false, true);
    struct timespec ten_ms = {0, 10000000};
    while (held(m, true) > 0 && atomic_load(&m->failures) == failed)
        nanosleep(&ten_ms, NULL);
    fold_at(s, 0, false, false);
    *n = atomic_load(&m->changed) - before; /* (the newest line stays in the log: folded) */
    return held(m, true) == 0 ? ERR_OK : ERR_BACKEND;
}

int sl_rt_metrics_text(struct store *st, struct buf *b)
{
    struct sl_memo *m = &((struct lmdb_store *)(void *)st)->memo;
    pthread_rwlock_rdlock(&m->lock);
    size_t runs = m->nruns, in_runs = m->in_runs, filters = sl_filter_bytes(m);
    pthread_rwlock_unlock(&m->lock);
    int rc = met_text_gauge(b, "floodgate_store_spent_held",
                            "LMDB: spent refresh tokens held in memory (about 100 bytes each) "
                            "until the next fold, at store_fold_at.",
                            (double)held(m, false));
    rc |= met_text_gauge(b, "floodgate_store_spent_runs",
                         "LMDB: runs of spent refresh tokens kept in key order on disk, each "
                         "with a filter in memory, until a fold into their records.",
                         (double)runs);
    rc |= met_text_gauge(b, "floodgate_store_spent_in_runs",
                         "LMDB: spent refresh tokens in those runs.", (double)in_runs);
    rc |=
        met_text_gauge(b, "floodgate_store_spent_filter_bytes",
                       "LMDB: memory of the runs' filters (1.25 bytes a spending in a run) "
                       "and of the one asked before them (1.25 bytes for each of " SL_RUNS_MAX_TEXT
                       " times store_fold_at, while any run is held).",
                       (double)filters);
    rc |= met_text_counter(b, "floodgate_store_spent_runs_written_total",
                           "LMDB: runs written, each from the spendings held.",
                           atomic_load(&m->runs_written));
    rc |= met_text_gauge(b, "floodgate_store_fold_spread",
                         "LMDB: the last estimate of the share of a fold's spendings whose "
                         "records lie on a leaf of their own; above 0.5 a fold writes a run.",
                         (double)atomic_load(&m->spread_pm) / 1000);
    return rc | met_text_counter(b, "floodgate_store_folds_total",
                                 "LMDB: folds of the spent log and runs into the refresh "
                                 "records.",
                                 atomic_load(&m->folds));
}

void store_lmdb_fold_at(struct store *st, size_t n)
{
    fold_at((struct lmdb_store *)(void *)st, n, true, false);
}

#ifdef FG_TESTING

long store_lmdb_spent_held(struct store *st)
{
    return (long)held(&((struct lmdb_store *)(void *)st)->memo, true);
}

long store_lmdb_fold_spread(struct store *st)
{
    return (long)atomic_load(&((struct lmdb_store *)(void *)st)->memo.spread_pm);
}

#endif
