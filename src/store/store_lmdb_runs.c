/* SPDX-License-Identifier: MIT */
/*
 * The spent set's runs on LMDB (issue #16 item 6): spendings written in key order, a run
 * at a time, instead of into their records at random.
 *
 * A fold of the memo into a large store writes about one random leaf of the refresh table
 * per spending when the records it touches are of every age. When a fold would rewrite more
 * than half a leaf per spending (store_lmdb_rt.c, spread), the writer writes a run instead:
 * the table "spent_runs", keyed by the run's number (8 bytes, big-endian) and the record's
 * key, each run filled in key order on the table's rightmost leaf. Up to SL_RUNS_MAX runs
 * are held; the fold after them merges every run and the memo in key order into their
 * records, SL_RUNS_MAX + 1 times as many spendings on the same leaves (docs/benchmarks.md,
 * "The spent set as sorted runs"). A dense memo meanwhile folds into its records alone: the
 * runs wait for that fold.
 *
 * A reader looks in a run only if the run's filter says the key may be there: a blocked
 * Bloom filter in memory, 10 bits a spending (all of a key's 7 bits in one 64-byte line),
 * about 1% false positives. With 40 runs, asking each filter would cost a rotation 40 lines;
 * so one more filter, the gate, holds every key of every held run, and the runs' filters
 * are asked only when it says a key may be in one: a token in no run costs one line. Filters
 * are rebuilt from the table when the store opens; they take 1.25 bytes a spending held in
 * runs, and the gate as much again for SL_RUNS_MAX x store_fold_at while any run is held:
 * 20 MiB at most with the defaults.
 */
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "store/store_lmdb_int.h"

#define FILTER_BITS 10 /* bits a spending */
#define RUN_VAL     (STORE_DIGEST + 8)
#define GATE_MIN    65536 /* spendings the gate is sized for, at least (80 KiB) */

/* The first word of key's line in a filter of `lines` lines, and its 7 bits in that line. */
static size_t filter_line(size_t lines, const uint8_t *key, unsigned bit[7])
{
    uint64_t h1, h2;
    /* (bytes 16-31 of a key by age are a keyed digest's: already uniform) */
    memcpy(&h1, key + 16, sizeof(h1));
    memcpy(&h2, key + 24, sizeof(h2));
    for (int i = 0; i < 7; i++)
        bit[i] = (unsigned)(h2 >> (9 * i)) & 511;
    return (size_t)(h1 % lines) * 8;
}

static size_t lines_for(size_t n)
{
    size_t lines = (n * FILTER_BITS + 511) / 512;
    return lines ? lines : 1;
}

void sl_filter_init(struct sl_run *r, size_t n)
{
    r->lines = lines_for(n);
    r->bits = xcalloc(r->lines, 64);
    r->count = 0;
}

void sl_filter_add(struct sl_run *r, const uint8_t *key)
{
    unsigned bit[7];
    uint64_t *w = r->bits + filter_line(r->lines, key, bit);
    for (int i = 0; i < 7; i++)
        w[bit[i] >> 6] |= 1ULL << (bit[i] & 63);
    r->count++;
}

static bool filter_maybe(const struct sl_run *r, const uint8_t *key)
{
    unsigned bit[7];
    const uint64_t *w = r->bits + filter_line(r->lines, key, bit);
    for (int i = 0; i < 7; i++)
        if (!(w[bit[i] >> 6] & (1ULL << (bit[i] & 63))))
            return false;
    return true;
}

void sl_gate_ready(struct sl_memo *m)
{
    if (m->gate.bits)
        return;
    size_t n = SL_RUNS_MAX * m->fold_cfg;
    m->gate.lines = lines_for(n > GATE_MIN ? n : GATE_MIN);
    m->gate.bits = xcalloc(m->gate.lines, 64);
}

void sl_gate_add(struct sl_memo *m, const uint8_t *key)
{
    unsigned bit[7];
    _Atomic uint64_t *w = m->gate.bits + filter_line(m->gate.lines, key, bit);
    for (int i = 0; i < 7; i++)
        atomic_fetch_or_explicit(&w[bit[i] >> 6], 1ULL << (bit[i] & 63), memory_order_relaxed);
}

static bool gate_maybe(const struct sl_gate *g, const uint8_t *key)
{
    unsigned bit[7];
    if (!g->bits)
        return true;
    _Atomic uint64_t *w = g->bits + filter_line(g->lines, key, bit);
    for (int i = 0; i < 7; i++)
        if (!(atomic_load_explicit(&w[bit[i] >> 6], memory_order_relaxed) &
              (1ULL << (bit[i] & 63))))
            return false;
    return true;
}

void sl_gate_free(struct sl_memo *m)
{
    mem_free((void *)(uintptr_t)m->gate.bits);
    m->gate.bits = NULL;
    m->gate.lines = 0;
}

size_t sl_filter_bytes(const struct sl_memo *m)
{
    size_t n = m->gate.lines * 64;
    for (size_t i = 0; i < m->nruns; i++)
        n += m->runs[i].lines * 64;
    return n;
}

void sl_runs_free(struct sl_run **runs, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        mem_free((*runs)[i].bits);
    mem_free(*runs);
    *runs = NULL;
    *n = 0;
}

/* ---- the table ------------------------------------------------------------------------ */

void sl_run_key(uint64_t no, const uint8_t *key, uint8_t out[SL_RUN_KEY])
{
    for (int i = 7; i >= 0; i--, no >>= 8)
        out[i] = (uint8_t)no;
    memcpy(out + 8, key, STORE_DIGEST);
}

uint64_t sl_run_no(const MDB_val *k)
{
    uint64_t no = 0;
    for (int i = 0; i < 8; i++)
        no = no << 8 | ((const uint8_t *)k->mv_data)[i];
    return no;
}

int sl_run_decode(const MDB_val *k, const MDB_val *v, struct sl_spend *e)
{
    if (k->mv_size != SL_RUN_KEY || v->mv_size != RUN_VAL)
        return ERR_BACKEND; /* (nothing else writes there) */
    memcpy(e->key, (const uint8_t *)k->mv_data + 8, STORE_DIGEST);
    memcpy(e->successor, v->mv_data, STORE_DIGEST);
    memcpy(&e->at, (const uint8_t *)v->mv_data + STORE_DIGEST, 8);
    e->seq = 0; /* (older than every spending the memo holds) */
    return ERR_OK;
}

int sl_run_put(MDB_txn *txn, MDB_dbi dbi, uint64_t no, const struct sl_spend *e)
{
    uint8_t kb[SL_RUN_KEY], vb[RUN_VAL];
    MDB_val k = {SL_RUN_KEY, kb}, v = {RUN_VAL, vb};
    sl_run_key(no, e->key, kb);
    memcpy(vb, e->successor, STORE_DIGEST);
    memcpy(vb + STORE_DIGEST, &e->at, 8);
    int rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) /* (another process wrote a run after this one began) */
        rc = mdb_put(txn, dbi, &k, &v, 0);
    return sl_map_err(rc);
}

/* The spending of `key` in run `no`, as txn sees it. */
static int run_get(MDB_txn *txn, MDB_dbi dbi, uint64_t no, const uint8_t *key, struct sl_spend *e,
                   bool *hit)
{
    uint8_t kb[SL_RUN_KEY];
    MDB_val k = {SL_RUN_KEY, kb}, v;
    sl_run_key(no, key, kb);
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ERR_OK;
    if (rc || (rc = sl_run_decode(&k, &v, e)))
        return rc ? sl_map_err(rc) : ERR_BACKEND;
    *hit = true;
    return ERR_OK;
}

int sl_runs_lookup(const struct sl_memo *m, MDB_txn *txn, MDB_dbi dbi, const uint8_t *key,
                   struct sl_spend *e, bool *hit)
{
    int rc = ERR_OK;
    if (!m->nruns || !gate_maybe(&m->gate, key))
        return ERR_OK;
    for (size_t i = m->nruns; i-- > 0 && rc == ERR_OK && !*hit;)
        if (filter_maybe(&m->runs[i], key))
            rc = run_get(txn, dbi, m->runs[i].no, key, e, hit);
    return rc;
}

/* The first run numbered above `after` in txn's view: *no, or 0 when there is none. */
static int next_run(MDB_cursor *c, uint64_t after, uint64_t *no)
{
    static const uint8_t zero[STORE_DIGEST];
    uint8_t kb[SL_RUN_KEY];
    MDB_val k = {SL_RUN_KEY, kb}, v;
    *no = 0;
    if (after == UINT64_MAX)
        return ERR_OK;
    sl_run_key(after + 1, zero, kb);
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        return ERR_OK;
    if (rc || k.mv_size != SL_RUN_KEY)
        return ERR_BACKEND;
    *no = sl_run_no(&k);
    return ERR_OK;
}

int sl_runs_unknown_lookup(MDB_txn *txn, MDB_dbi dbi, uint64_t after, const uint8_t *key,
                           struct sl_spend *e, bool *hit)
{
    MDB_cursor *c;
    uint64_t no = after;
    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    int rc;
    while ((rc = next_run(c, no, &no)) == ERR_OK && no && !*hit)
        rc = run_get(txn, dbi, no, key, e, hit);
    mdb_cursor_close(c);
    return rc;
}

int sl_runs_list(MDB_txn *txn, MDB_dbi dbi, uint64_t *nos, size_t cap, size_t *n)
{
    MDB_cursor *c;
    uint64_t no = 0;
    *n = 0;
    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    int rc;
    while ((rc = next_run(c, no, &no)) == ERR_OK && no && *n < cap)
        nos[(*n)++] = no;
    mdb_cursor_close(c);
    return rc;
}

int sl_runs_last(MDB_txn *txn, MDB_dbi dbi, uint64_t *first, uint64_t *last)
{
    MDB_cursor *c;
    MDB_val k, v;
    *first = *last = 0;
    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    if (rc == 0 && k.mv_size == SL_RUN_KEY) {
        *first = sl_run_no(&k);
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
        if (rc == 0 && k.mv_size == SL_RUN_KEY)
            *last = sl_run_no(&k);
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? ERR_OK : ERR_BACKEND;
}

/* Run `no`'s spendings counted, then added to a filter sized for them and to m's gate
 * (r->bits NULL on a failure). */
static int load_one(struct sl_memo *m, MDB_txn *txn, MDB_dbi dbi, uint64_t no, struct sl_run *r)
{
    struct sl_run_cur c;
    size_t n = 0;
    int rc = sl_run_cur_open(&c, txn, dbi, no, NULL);

    for (; rc == ERR_OK && c.more; rc = sl_run_cur_next(&c))
        n++;
    sl_run_cur_close(&c);
    if (rc)
        return rc;
    sl_filter_init(r, n);
    r->no = no;
    sl_gate_ready(m);
    rc = sl_run_cur_open(&c, txn, dbi, no, NULL);
    for (; rc == ERR_OK && c.more; rc = sl_run_cur_next(&c)) {
        sl_filter_add(r, c.e.key);
        sl_gate_add(m, c.e.key);
    }
    sl_run_cur_close(&c);
    if (rc) {
        mem_free(r->bits);
        r->bits = NULL;
    }
    return rc;
}

int sl_runs_load(struct sl_memo *m, MDB_txn *txn, MDB_dbi dbi, uint64_t after)
{
    MDB_cursor *c;
    uint64_t no = after;
    int rc;

    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    while ((rc = next_run(c, no, &no)) == ERR_OK && no) {
        struct sl_run r = {0};
        if ((rc = load_one(m, txn, dbi, no, &r)))
            break;
        m->runs = xrealloc(m->runs, (m->nruns + 1) * sizeof(*m->runs));
        m->runs[m->nruns++] = r;
        m->in_runs += r.count;
    }
    mdb_cursor_close(c);
    return rc;
}

void sl_runs_drop_below(struct sl_memo *m, uint64_t first)
{
    size_t k = 0;
    for (size_t i = 0; i < m->nruns; i++) {
        if (first && m->runs[i].no >= first) {
            m->runs[k++] = m->runs[i];
            continue;
        }
        m->in_runs -= m->runs[i].count;
        mem_free(m->runs[i].bits);
    }
    m->nruns = k;
    if (!m->nruns && m->fold_mode != FOLD_RUN)
        sl_gate_free(m); /* (empty again: its false positives go with it) */
}

/* ---- a cursor on one run, and a scan of the records in key order with every run --------- */

static int cur_at(struct sl_run_cur *r, MDB_cursor_op op)
{
    MDB_val k = {SL_RUN_KEY, r->kb}, v;
    int rc = mdb_cursor_get(r->c, &k, &v, op);
    r->more = rc == 0 && k.mv_size == SL_RUN_KEY && sl_run_no(&k) == r->no;
    if (rc && rc != MDB_NOTFOUND)
        return ERR_BACKEND;
    return r->more ? sl_run_decode(&k, &v, &r->e) : ERR_OK;
}

int sl_run_cur_open(struct sl_run_cur *r, MDB_txn *txn, MDB_dbi dbi, uint64_t no,
                    const uint8_t *from)
{
    static const uint8_t zero[STORE_DIGEST];
    r->no = no;
    r->more = false;
    if (mdb_cursor_open(txn, dbi, &r->c)) {
        r->c = NULL;
        return ERR_BACKEND;
    }
    sl_run_key(no, from ? from : zero, r->kb);
    return cur_at(r, MDB_SET_RANGE);
}

int sl_run_cur_next(struct sl_run_cur *r)
{
    return cur_at(r, MDB_NEXT);
}

void sl_run_cur_close(struct sl_run_cur *r)
{
    if (r->c)
        mdb_cursor_close(r->c);
    r->c = NULL;
}

#define SCAN_MAX (4 * SL_RUNS_MAX) /* (more runs than this are read by lookups) */

struct sl_runs_scan {
    MDB_txn *txn;
    MDB_dbi dbi;
    struct sl_run_cur r[SCAN_MAX];
    size_t n;
    uint64_t after; /* runs past the ones scanned: looked up one key at a time */
};

int sl_runs_scan_open(struct sl_runs_scan **out, MDB_txn *txn, MDB_dbi dbi)
{
    struct sl_runs_scan *sc = xcalloc(1, sizeof(*sc));
    uint64_t nos[SCAN_MAX];
    int rc = sl_runs_list(txn, dbi, nos, SCAN_MAX, &sc->n);

    sc->txn = txn;
    sc->dbi = dbi;
    sc->after = sc->n == SCAN_MAX ? nos[SCAN_MAX - 1] : UINT64_MAX;
    for (size_t i = 0; rc == ERR_OK && i < sc->n; i++)
        rc = sl_run_cur_open(&sc->r[i], txn, dbi, nos[i], NULL);
    *out = sc;
    return rc;
}

/* LMDB's order of keys (for a merge; the equality below is in constant time). */
static int order(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, STORE_DIGEST);
}

int sl_runs_scan_at(struct sl_runs_scan *sc, const uint8_t *key, struct sl_spend *e, bool *hit)
{
    int rc = ERR_OK;
    *hit = false;
    for (size_t i = 0; rc == ERR_OK && i < sc->n; i++) {
        struct sl_run_cur *r = &sc->r[i];
        while (rc == ERR_OK && r->more && order(r->e.key, key) < 0)
            rc = sl_run_cur_next(r);
        if (rc == ERR_OK && r->more && !*hit && cr_eq(r->e.key, key, STORE_DIGEST)) {
            *e = r->e;
            *hit = true;
        }
    }
    if (rc == ERR_OK && !*hit && sc->after != UINT64_MAX)
        rc = sl_runs_unknown_lookup(sc->txn, sc->dbi, sc->after, key, e, hit);
    return rc;
}

void sl_runs_scan_close(struct sl_runs_scan *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->n; i++)
        sl_run_cur_close(&sc->r[i]);
    mem_free(sc);
}

#ifdef FG_TESTING

long store_lmdb_spent_runs(struct store *st)
{
    struct sl_memo *m = &((struct lmdb_store *)(void *)st)->memo;
    pthread_rwlock_rdlock(&m->lock);
    long n = (long)m->nruns;
    pthread_rwlock_unlock(&m->lock);
    return n;
}

long store_lmdb_filter_bytes(struct store *st)
{
    struct sl_memo *m = &((struct lmdb_store *)(void *)st)->memo;
    pthread_rwlock_rdlock(&m->lock);
    long n = (long)sl_filter_bytes(m);
    pthread_rwlock_unlock(&m->lock);
    return n;
}

void store_lmdb_runs_always(struct store *st, bool on)
{
    struct sl_memo *m = &((struct lmdb_store *)(void *)st)->memo;
    pthread_rwlock_wrlock(&m->lock);
    m->runs_always = on;
    pthread_rwlock_unlock(&m->lock);
}

void store_lmdb_runs_max(struct store *st, size_t n)
{
    struct sl_memo *m = &((struct lmdb_store *)(void *)st)->memo;
    pthread_rwlock_wrlock(&m->lock);
    m->runs_max = n ? n : SL_RUNS_MAX;
    pthread_rwlock_unlock(&m->lock);
}

void store_lmdb_runs_min_leaves(struct store *st, size_t n)
{
    struct sl_memo *m = &((struct lmdb_store *)(void *)st)->memo;
    pthread_rwlock_wrlock(&m->lock);
    m->min_leaves = n;
    pthread_rwlock_unlock(&m->lock);
}
#endif
