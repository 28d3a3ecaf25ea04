/* SPDX-License-Identifier: MIT */
/*
 * The revoked families' index on LMDB (issue #16 item 6): the table "families_revoked",
 * family id -> the family's absolute expiry, a line for every family in "families" that is
 * revoked, and for no other.
 *
 * A rotation asks it instead of reading the family's record. In a store of 10^7 families
 * that record lies on a random leaf of a 650 MB table, a page not in the processor's caches:
 * with the token's own record, two such pages a rotation, 40% of the writer's time on CPU
 * (docs/benchmarks.md, "One cold page a rotation"). The index holds only the revoked
 * families until they expire: a few leaves, which stay cached. The family's expiry needs no
 * read either: the token's record carries it (copied down at issue, kept by each rotation).
 *
 * This code keeps the index in the transaction that changes the family: a revocation
 * (reuse, FAMILY_REVOKE) writes both, the purge deletes both. A writer that does not (a
 * floodgate from before the index) would leave a revoked family out, and its tokens would
 * rotate. So when a process that keeps the index closes the store, it notes its last
 * transaction's number in "meta" (MARK); at open, unless that is still the store's last
 * transaction, the index is rebuilt from the families. The families are read in a read
 * transaction (no writer held), then what differs is written in one short write
 * transaction: 3 s at 10^7 families. A crash, a backup restored, an older binary's writes, the
 * CLI or a second server writing meanwhile: each is a rebuild at the next open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store_lmdb_int.h"
#include "store/store_rec.h"

#define MARK "families_revoked"

struct fam_id {
    uint8_t id[STORE_FAMILY_ID];
};

static MDB_val mark_key(void)
{
    return (MDB_val){sizeof(MARK) - 1, (void *)(uintptr_t)MARK};
}

/* The number of the last transaction before `txn` that a process keeping the index closed
 * the store after, or 0. */
static uint64_t mark_get(struct lmdb_store *s, MDB_txn *txn)
{
    MDB_val k = mark_key(), v;
    uint64_t n = 0;
    if (mdb_get(txn, s->dbi[STORE_T_META], &k, &v) == 0 && v.mv_size == sizeof(n))
        memcpy(&n, v.mv_data, sizeof(n));
    return n;
}

static int mark_put(struct lmdb_store *s, MDB_txn *txn)
{
    uint64_t n = mdb_txn_id(txn);
    MDB_val k = mark_key(), v = {sizeof(n), &n};
    return mdb_put(txn, s->dbi[STORE_T_META], &k, &v, 0);
}

int sl_fam_open(struct lmdb_store *s, MDB_txn *txn, char *err, size_t cap)
{
    int rc = mdb_dbi_open(txn, "families_revoked", MDB_CREATE, &s->fam_revoked);
    if (rc) {
        snprintf(err, cap, "store table families_revoked: %s", mdb_strerror(rc));
        return ERR_IO;
    }
    /* (a write transaction's number is the last one's plus one) */
    s->fam_rebuild = mark_get(s, txn) != mdb_txn_id(txn) - 1;
    s->fam_own_last = mdb_txn_id(txn);
    return ERR_OK;
}

/* (A transaction that wrote nothing commits without a number of its own: the next one gets
 * the same. So only a gap says another process committed in between.) */
void sl_fam_own(struct lmdb_store *s, MDB_txn *txn)
{
    size_t id = mdb_txn_id(txn);
    if (id > s->fam_own_last + 1)
        s->fam_foreign = true;
    s->fam_own_last = id;
}

/* A family's record read as the index sees it: revoked, and until when. A record that does
 * not decode counts as revoked for ever (fail closed: the purge never deletes it either). */
static bool revoked_rec(const MDB_val *v, int64_t *expires_at)
{
    struct store_family f;
    if (store_family_decode(v->mv_data, v->mv_size, &f)) {
        *expires_at = INT64_MAX;
        return true;
    }
    *expires_at = f.expires_at;
    return f.revoked != 0;
}

/* Every revoked family in a read snapshot, into *out (*n of them). */
static int collect(struct lmdb_store *s, struct fam_id **out, size_t *n)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return ERR_BACKEND;
    if (mdb_cursor_open(txn, s->dbi[STORE_T_FAMILIES], &c)) {
        mdb_txn_abort(txn);
        return ERR_BACKEND;
    }
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        int64_t exp;
        if (k.mv_size != STORE_FAMILY_ID || !revoked_rec(&v, &exp))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        memcpy((*out)[(*n)++].id, k.mv_data, STORE_FAMILY_ID);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return mrc == MDB_NOTFOUND ? ERR_OK : ERR_BACKEND;
}

/* Is family `k` revoked (until *exp), as this transaction sees its record: 1 yes, 0 no (not
 * there, or not revoked), or an LMDB error as a negative. */
static int revoked_now(struct lmdb_store *s, MDB_txn *txn, MDB_val *k, int64_t *exp)
{
    MDB_val v;
    int rc = mdb_get(txn, s->dbi[STORE_T_FAMILIES], k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : -abs(rc);
    return revoked_rec(&v, exp);
}

/* In the write transaction: the lines the snapshot found missing from the index (each
 * checked again: it may have been purged since), and the index's lines whose family is no
 * longer revoked or there. */
static int fix(struct lmdb_store *s, MDB_txn *txn, const struct fam_id *l, size_t n, size_t *added,
               size_t *dropped)
{
    MDB_cursor *c;
    MDB_val k, v;
    int64_t exp;
    int mrc = 0, r;

    for (size_t i = 0; i < n && mrc == 0; i++) {
        k = (MDB_val){STORE_FAMILY_ID, (void *)(uintptr_t)l[i].id};
        if ((r = mdb_get(txn, s->fam_revoked, &k, &v)) != MDB_NOTFOUND) {
            mrc = r; /* (there already, or an error) */
            continue;
        }
        if ((r = revoked_now(s, txn, &k, &exp)) <= 0) {
            mrc = -r;
            continue;
        }
        v = (MDB_val){sizeof(exp), &exp};
        if ((mrc = mdb_put(txn, s->fam_revoked, &k, &v, 0)) == 0)
            (*added)++;
    }
    if (mrc || (mrc = mdb_cursor_open(txn, s->fam_revoked, &c)))
        return mrc;
    int g = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (g == 0 && mrc == 0) {
        if ((r = revoked_now(s, txn, &k, &exp)) < 0)
            mrc = -r;
        else if (r == 0 && (mrc = mdb_cursor_del(c, 0)) == 0)
            (*dropped)++;
        g = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* (after a delete: the line after it) */
    }
    mdb_cursor_close(c);
    return mrc ? mrc : (g == MDB_NOTFOUND ? 0 : g);
}

int sl_fam_rebuild(struct lmdb_store *s, char *err, size_t cap)
{
    struct fam_id *l;
    size_t n, added = 0, dropped = 0;
    MDB_txn *txn;

    if (!s->fam_rebuild)
        return ERR_OK;
    int rc = collect(s, &l, &n);
    int mrc = rc ? 0 : mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == ERR_OK && mrc == 0) {
        sl_fam_own(s, txn);
        mrc = fix(s, txn, l, n, &added, &dropped);
        if (mrc == 0)
            mrc = mark_put(s, txn);
        mrc = mrc ? (mdb_txn_abort(txn), mrc) : mdb_txn_commit(txn);
    }
    mem_free(l);
    if (rc || mrc) {
        snprintf(err, cap, "store table families_revoked: cannot rebuild it: %s",
                 mrc ? mdb_strerror(mrc) : "cannot read the families");
        return ERR_IO;
    }
    s->fam_rebuilt = (unsigned)(added + dropped) + 1;
    if (added + dropped) { /* (an older binary's revocations, or its purge) */
        char na[24], nd[24];
        snprintf(na, sizeof(na), "%zu", added);
        snprintf(nd, sizeof(nd), "%zu", dropped);
        log_kv(LOG_WARN, "store: revoked refresh families indexed at open", "added", na, "dropped",
               nd, LOG_END);
    }
    return ERR_OK;
}

void sl_fam_close(struct lmdb_store *s)
{
    MDB_txn *txn;

    if (mdb_txn_begin(s->env, NULL, 0, &txn))
        return;
    sl_fam_own(s, txn);
    if (s->fam_foreign || mark_get(s, txn) == mdb_txn_id(txn) - 1 || mark_put(s, txn))
        mdb_txn_abort(txn); /* (another writer: the next open rebuilds; nothing since: done) */
    else
        (void)mdb_txn_commit(txn); /* (failing, the next open rebuilds: no harm) */
}

int sl_fam_revoked(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID],
                   bool *revoked)
{
    MDB_val k = {STORE_FAMILY_ID, (void *)(uintptr_t)id}, v;
    int rc = mdb_get(txn, s->fam_revoked, &k, &v);
    *revoked = rc == 0;
    return rc == MDB_NOTFOUND ? ERR_OK : sl_map_err(rc);
}

int sl_fam_mark(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID],
                int64_t expires_at)
{
    MDB_val k = {STORE_FAMILY_ID, (void *)(uintptr_t)id}, v = {sizeof(expires_at), &expires_at};
    return sl_map_err(mdb_put(txn, s->fam_revoked, &k, &v, 0));
}

int sl_fam_unmark(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID])
{
    MDB_val k = {STORE_FAMILY_ID, (void *)(uintptr_t)id};
    int rc = mdb_del(txn, s->fam_revoked, &k, NULL);
    return rc == MDB_NOTFOUND ? ERR_OK : sl_map_err(rc);
}

#ifdef FG_TESTING

long store_lmdb_fam_rebuilt(struct store *st)
{
    return (long)((struct lmdb_store *)(void *)st)->fam_rebuilt;
}

long store_lmdb_fam_lines(struct store *st)
{
    struct lmdb_store *s = (struct lmdb_store *)(void *)st;
    return sl_entries(s, s->fam_revoked);
}

#endif
