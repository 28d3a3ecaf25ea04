/* SPDX-License-Identifier: MIT */
/*
 * The embedded store on LMDB.
 *
 * Writes: every write from every loop thread goes to one writer thread, which takes all
 * queued operations, applies them in one write transaction, commits once (one fsync for the
 * whole batch: group commit) and only then posts each completion to its loop. So an answer
 * that depends on a write is sent only after the write is durable, and throughput is bounded
 * by fsyncs per second times the batch size, not by fsyncs alone (one commit per write tops
 * out near 800/s on this disk). Operations check before they write, so a logical failure
 * leaves nothing behind; a backend failure aborts the batch.
 *
 * Not MDB_WRITEMAP: measured on this machine it saved nothing visible above the noise of
 * the durable-refresh benchmark, and it makes data.mdb appear as large as the map size.
 *
 * Reads: run on the caller's thread in a short read-only transaction (MDB_NOTLS, so a
 * thread may hold one per call); they never wait behind the writer (MVCC).
 *
 * Refresh records are kept in the order their tokens were issued, and a rotation marks the
 * token it spends in a log instead of rewriting its record: store_lmdb_rt.c.
 *
 * Durability: no NOSYNC, no NOMETASYNC, no MAPASYNC: a committed transaction is synced
 * before the commit returns and survives kill -9 and power loss. The CLI opens the same directory;
 * LMDB's lock file serialises writers across processes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "store/store_lmdb_int.h"
#include "store/store_rec.h"

#define QUEUE_MAX   65536  /* queued writes before ERR_LIMIT */
#define BATCH_MAX   4096   /* operations in one commit */
#define PURGE_LIMIT 10000  /* deletions in one purge operation */
#define PURGE_SCAN  100000 /* records one purge operation reads, at most (30 ms idle at 10^7) */
/* and for at most this long once it has read PURGE_MIN (one slice under load took 696 ms
 * where the server shared its core; the write lock is held meanwhile) */
#define PURGE_BUDGET_NS 10000000ull
#define PURGE_MIN       256

#define PROBE_MS       1000
#define FAIL_LOG_EVERY 10000 /* one log line per 10 s of failures, with the count */

static const char *const table_names[STORE_T_COUNT] = {
    [STORE_T_USERS] = "users",       [STORE_T_CLIENTS] = "clients",
    [STORE_T_KEYS] = "keys",         [STORE_T_REFRESH] = "refresh_t",
    [STORE_T_FAMILIES] = "families", [STORE_T_REVOKED] = "revoked",
    [STORE_T_META] = "meta",         [STORE_T_EVENTS] = "events",
    [STORE_T_SESSIONS] = "sessions", [STORE_T_CODES] = "codes",
    [STORE_T_SSO] = "sso",           [STORE_T_CONSENTS] = "consents",
    [STORE_T_SUBS] = "subs",
};

static struct lmdb_store *L(struct store *st)
{
    return (struct lmdb_store *)(void *)st;
}

int sl_map_err(int rc)
{
    switch (rc) {
    case 0:
        return ERR_OK;
    case MDB_NOTFOUND:
        return ERR_NOTFOUND;
    case MDB_KEYEXIST:
        return ERR_CONFLICT;
    case MDB_MAP_FULL:
        return ERR_LIMIT;
    default:
        return ERR_BACKEND;
    }
}

/* ---- operations, applied inside a write transaction ------------------------------------ */

static int bump_generation(struct lmdb_store *s, MDB_txn *txn)
{
    MDB_val k = {10, (void *)(uintptr_t) "generation"}, v;
    uint64_t g = 0;

    if (mdb_get(txn, s->dbi[STORE_T_META], &k, &v) == 0 && v.mv_size == sizeof(g))
        memcpy(&g, v.mv_data, sizeof(g));
    g++;
    v.mv_size = sizeof(g);
    v.mv_data = &g;
    return sl_map_err(mdb_put(txn, s->dbi[STORE_T_META], &k, &v, 0));
}

static bool bumps(enum store_table t)
{
    return t == STORE_T_CLIENTS || t == STORE_T_KEYS || t == STORE_T_EVENTS;
}

static int put_family(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID],
                      const struct store_family *f)
{
    uint8_t enc[STORE_FAMILY_ENC];
    MDB_val k = {STORE_FAMILY_ID, (void *)(uintptr_t)id}, v = {sizeof(enc), enc};

    store_family_encode(f, enc);
    return sl_map_err(mdb_put(txn, s->dbi[STORE_T_FAMILIES], &k, &v, 0));
}

static int get_family(struct lmdb_store *s, MDB_txn *txn, const uint8_t id[STORE_FAMILY_ID],
                      struct store_family *f)
{
    MDB_val k = {STORE_FAMILY_ID, (void *)(uintptr_t)id}, v;
    int rc = sl_map_err(mdb_get(txn, s->dbi[STORE_T_FAMILIES], &k, &v));
    return rc ? rc : store_family_decode(v.mv_data, v.mv_size, f);
}

/* The sessions generation of user `sub` (0 if it never moved). */
static int get_sessions(struct lmdb_store *s, MDB_txn *txn, const char *sub, uint64_t *gen)
{
    MDB_val k = {strlen(sub), (void *)(uintptr_t)sub}, v;

    *gen = 0;
    int rc = sl_map_err(mdb_get(txn, s->dbi[STORE_T_SESSIONS], &k, &v));
    if (rc == ERR_NOTFOUND)
        return ERR_OK;
    return rc ? rc : store_sessions_decode(v.mv_data, v.mv_size, gen);
}

static int put_sessions(struct lmdb_store *s, MDB_txn *txn, const char *sub, uint64_t gen)
{
    char tmp[STORE_SESSIONS_ENC_MAX];
    MDB_val k = {strlen(sub), (void *)(uintptr_t)sub}, v = {store_sessions_encode(gen, tmp), tmp};
    return sl_map_err(mdb_put(txn, s->dbi[STORE_T_SESSIONS], &k, &v, 0));
}

/* REPLACE and DELETE with op->expect: ERR_CONFLICT unless the value is exactly that. */
static int check_expect(struct lmdb_store *s, MDB_txn *txn, const struct store_op *op, MDB_val *k)
{
    MDB_val old;
    int rc = sl_map_err(mdb_get(txn, s->dbi[op->table], k, &old));
    if (rc || !op->expect)
        return rc;
    if (old.mv_size != op->expect_len || memcmp(old.mv_data, op->expect, old.mv_size) != 0)
        return ERR_CONFLICT;
    return ERR_OK;
}

/*
 * Refresh rotation with reuse detection (RFC 9700 §4.14.2). The caller passes the digest of
 * the presented token, the digest of its successor, the client that presented it (a token
 * is only valid for the client it was issued to, RFC 6749 §6) and the idle lifetime.
 */
static int apply_rotate(struct lmdb_store *s, MDB_txn *txn, struct store_op *op)
{
    struct store_refresh old, next;
    struct store_family fam;
    int64_t now = op->now;
    bool revoked;

    op->rotate_result = STORE_ROTATE_INVALID;
    int rc = sl_rt_get(s, txn, op->old_digest, &old);
    if (rc == ERR_NOTFOUND)
        return ERR_OK;
    if (rc)
        return rc;
    if (strcmp(old.client_id, op->rt.client_id) != 0)
        return ERR_OK; /* another client's token: invalid, and nothing changes */
    uint64_t gen;
    rc = get_sessions(s, txn, old.sub, &gen);
    if (rc)
        return rc == ERR_INVAL ? ERR_BACKEND : rc;
    if (gen > old.gen)
        return ERR_OK; /* the user's sessions ended after this family began: store.h (a
                        * family never carries a later one here: the two move together) */
    /* The family: revoked if its index says so (store_lmdb_fam.c: not its record, a page
     * of its own), expired when the record is (its expiry is the family's, copied down). */
    rc = sl_fam_revoked(s, txn, old.family, &revoked);
    if (rc)
        return rc;
    if (revoked || now >= old.expires_at)
        return ERR_OK;
    if (old.state == STORE_RT_ROTATED) {
        struct store_refresh succ;
        bool succ_live =
            sl_rt_get(s, txn, old.successor, &succ) == ERR_OK && succ.state == STORE_RT_LIVE;
        if (op->grace_s > 0 && now - old.rotated_at <= op->grace_s && succ_live) {
            /* The honest race: the answer to a rotation was lost and the client retried.
             * The successor is derived from the presented token (the caller recomputes
             * it), so it is answered again instead of revoking the family. */
            op->rotate_result = STORE_ROTATE_GRACE;
            memcpy(op->digest, old.successor, STORE_DIGEST);
            op->rt = succ;
            return ERR_OK;
        }
        rc = get_family(s, txn, old.family, &fam);
        if (rc)
            return rc == ERR_NOTFOUND ? ERR_OK : rc; /* (purged: invalid, as it expired) */
        fam.revoked = 1;
        fam.revoked_at = now;
        op->rotate_result = STORE_ROTATE_REUSED;
        op->rt = old;
        rc = put_family(s, txn, old.family, &fam);
        return rc ? rc : sl_fam_mark(s, txn, old.family, fam.expires_at);
    }
    if (now >= old.idle_expires_at || now >= old.expires_at)
        return ERR_OK;
    next = old;
    next.state = STORE_RT_LIVE;
    memset(next.successor, 0, sizeof(next.successor));
    next.issued_at = now;
    next.rotated_at = 0;
    next.idle_expires_at =
        op->rt.idle_expires_at < old.expires_at ? op->rt.idle_expires_at : old.expires_at;
    rc = sl_rt_put(s, txn, op->digest, &next, MDB_NOOVERWRITE);
    if (rc)
        return rc;
    /* The spent token is marked in the log, not rewritten where it lies (store_lmdb_rt.c) */
    rc = sl_rt_spend(s, txn, op->old_digest, now, op->digest);
    if (rc)
        return rc;
    op->rotate_result = STORE_ROTATED;
    op->rt = next;
    return ERR_OK;
}

/* Deletes from `dbi` (holding table t's records) what expired by `now`, from the purge's
 * place on, up to the limits: so that a purge never holds the writer for long, however large
 * the tables (reading two of 10^7 records each whole stopped every write for 4 s). *end:
 * the table is done; else the purge's place is the first record it did not read. */
static int purge_dbi(struct lmdb_store *s, MDB_txn *txn, MDB_dbi dbi, enum store_table t,
                     int64_t now, uint64_t deadline, uint64_t *n, size_t *seen, bool *end)
{
    MDB_cursor *c;
    MDB_val k = {s->purge_klen, s->purge_key}, v;

    if (mdb_cursor_open(txn, dbi, &c))
        return ERR_BACKEND;
    int rc = mdb_cursor_get(c, &k, &v, s->purge_klen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && *n < PURGE_LIMIT && *seen < s->purge_scan &&
           (*seen < PURGE_MIN || *seen % PURGE_MIN || clock_mono_ns() < deadline)) {
        int64_t exp = INT64_MAX;
        (*seen)++;
        if (t == STORE_T_REFRESH) {
            struct store_refresh r;
            if (store_refresh_decode(v.mv_data, v.mv_size, &r) == 0)
                exp = r.expires_at; /* rotated ones stay to detect reuse until then */
        } else if (t == STORE_T_FAMILIES) {
            struct store_family f = {0}; /* (one that does not decode: not expiring, kept) */
            if (store_family_decode(v.mv_data, v.mv_size, &f) == 0)
                exp = f.expires_at;
            if (exp <= now && f.revoked && k.mv_size == STORE_FAMILY_ID) {
                /* (its line in the index goes with it; the key copied first: a write to
                 * another table may move the page it points into) */
                uint8_t id[STORE_FAMILY_ID];
                memcpy(id, k.mv_data, sizeof(id));
                int rc2 = sl_fam_unmark(s, txn, id);
                if (rc2) {
                    mdb_cursor_close(c);
                    return rc2;
                }
            }
        } else if (t == STORE_T_REVOKED && v.mv_size == sizeof(int64_t)) {
            memcpy(&exp, v.mv_data, sizeof(exp));
        } else if (t != STORE_T_REVOKED) {
            const char *pl;
            size_t pn;
            if (store_exp_unwrap(v.mv_data, v.mv_size, &exp, &pl, &pn))
                exp = 0; /* (not one of ours: nothing can read it) */
        }
        if (exp <= now) {
            mdb_cursor_del(c, 0);
            (*n)++;
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    *end = rc != 0 || k.mv_size > sizeof(s->purge_key);
    s->purge_klen = *end ? 0 : k.mv_size;
    if (!*end)
        memcpy(s->purge_key, k.mv_data, k.mv_size);
    mdb_cursor_close(c);
    return ERR_OK;
}

/* One slice of the purge: the tables that expire, in turn, from where the last slice
 * stopped, or from their start for a pass's first. (A slice whose commit fails has moved
 * the place on all the same: what it read is read again by the next pass, which begins at
 * the start.) */
static int apply_purge(struct lmdb_store *s, MDB_txn *txn, struct store_op *op)
{
    uint64_t n = 0, deadline = clock_mono_ns() + s->purge_budget_ns;
    size_t seen = 0;
    int rc = ERR_OK;

    if (op->purge_first) {
        s->purge_at = 0;
        s->purge_klen = 0;
    }

    while (rc == ERR_OK && s->purge_at <= STORE_T_COUNT && n < PURGE_LIMIT &&
           seen < s->purge_scan && (seen < PURGE_MIN || clock_mono_ns() < deadline)) {
        bool end = true;
        int t = (int)s->purge_at - 1;
        if (t < 0 && atomic_load_explicit(&s->has_legacy, memory_order_relaxed))
            rc = purge_dbi(s, txn, s->legacy, STORE_T_REFRESH, op->now, deadline, &n, &seen, &end);
        else if (t >= STORE_T_REFRESH &&
                 (t <= STORE_T_REVOKED || store_expiring((enum store_table)t)))
            rc = purge_dbi(s, txn, s->dbi[t], (enum store_table)t, op->now, deadline, &n, &seen,
                           &end);
        if (end)
            s->purge_at++;
    }
    op->purged = n;
    op->purge_more = rc == ERR_OK && s->purge_at <= STORE_T_COUNT;
    if (!op->purge_more) {
        s->purge_at = 0;
        s->purge_klen = 0;
    }
    return rc;
}

static int apply(struct lmdb_store *s, MDB_txn *txn, struct store_op *op)
{
    MDB_val k = {op->key_len, op->key}, v = {op->value_len, (void *)(uintptr_t)op->value};
    int rc;

    if (op->table == STORE_T_REFRESH &&
        (op->kind == STORE_OP_PUT_NEW || op->kind == STORE_OP_REPLACE ||
         op->kind == STORE_OP_DELETE))
        return ERR_INVAL; /* refresh records change only by their own operations (time_key) */
    switch (op->kind) {
    case STORE_OP_PUT_NEW:
    case STORE_OP_REPLACE:
        if (op->kind == STORE_OP_REPLACE && (rc = check_expect(s, txn, op, &k)))
            return rc;
        rc = sl_map_err(mdb_put(txn, s->dbi[op->table], &k, &v,
                                op->kind == STORE_OP_PUT_NEW ? MDB_NOOVERWRITE : 0));
        if (rc == ERR_OK && op->sess_sub[0])
            rc = put_sessions(s, txn, op->sess_sub, op->sess_gen);
        return (rc == ERR_OK && bumps(op->table)) ? bump_generation(s, txn) : rc;
    case STORE_OP_DELETE:
        if ((rc = check_expect(s, txn, op, &k)))
            return rc;
        rc = sl_map_err(mdb_del(txn, s->dbi[op->table], &k, NULL));
        if (rc == ERR_OK && op->sess_sub[0])
            rc = put_sessions(s, txn, op->sess_sub, op->sess_gen);
        return (rc == ERR_OK && bumps(op->table)) ? bump_generation(s, txn) : rc;
    case STORE_OP_REFRESH_ISSUE: {
        struct store_family f = {0, op->rt.expires_at, 0};
        struct store_refresh tmp; /* (op->rt as store_submit left it: live, unrotated) */
        rc = sl_rt_get(s, txn, op->digest, &tmp);
        if (rc != ERR_NOTFOUND)
            return rc == ERR_OK ? ERR_CONFLICT : rc;
        rc = put_family(s, txn, op->rt.family, &f);
        return rc ? rc : sl_rt_put(s, txn, op->digest, &op->rt, 0);
    }
    case STORE_OP_REFRESH_ROTATE:
        return apply_rotate(s, txn, op);
    case STORE_OP_FAMILY_REVOKE: {
        struct store_family f;
        rc = get_family(s, txn, op->rt.family, &f);
        if (rc)
            return rc;
        if (!f.revoked) {
            f.revoked = 1;
            f.revoked_at = op->now;
            rc = put_family(s, txn, op->rt.family, &f);
            if (rc == ERR_OK)
                rc = sl_fam_mark(s, txn, op->rt.family, f.expires_at);
        }
        return rc;
    }
    case STORE_OP_JTI_REVOKE: {
        MDB_val e = {sizeof(int64_t), &op->jti_expires_at};
        return sl_map_err(mdb_put(txn, s->dbi[STORE_T_REVOKED], &k, &e, 0));
    }
    case STORE_OP_PURGE:
        return apply_purge(s, txn, op);
    case STORE_OP_GET:
        break;
    }
    return ERR_INVAL;
}

/* Logical failures (conflict, not found, invalid) are found before an operation's first
 * write, so they leave nothing behind and the batch goes on. Anything else is the backend
 * failing mid-write: the whole batch is aborted and every operation in it fails. */
static bool is_backend_failure(int rc)
{
    return rc == ERR_BACKEND || rc == ERR_LIMIT || rc == ERR_NOMEM || rc == ERR_IO;
}

/* ---- writer thread -------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    return clock_mono_ns() / 1000000u;
}

/* A commit (or a batch) failed with `why`: readiness drops, and the cause is logged, at most
 * once per FAIL_LOG_EVERY with the number of failures in between (a full disk under load
 * would otherwise log hundreds of lines a second, none saying why). */
/* What an LMDB error means for the operator. */
static const char *cause(int mrc)
{
    return mrc == MDB_MAP_FULL ? "the store is full: raise store_map_size (MDB_MAP_FULL)"
                               : mdb_strerror(mrc);
}

/* The same for an operation's ERR_* (map_err made MDB_MAP_FULL ERR_LIMIT). */
static const char *op_cause(int rc)
{
    return rc == ERR_LIMIT ? cause(MDB_MAP_FULL) : err_str(rc);
}

static void commit_failed(struct lmdb_store *s, const char *why)
{
    uint64_t now = mono_ms();
    char n[16];
    if (!atomic_exchange(&s->failing, 1))
        atomic_store(&s->failing_since_ms, now);
    pthread_mutex_lock(&s->mu);
    bool quiet = s->fail_logged_ms && now - s->fail_logged_ms < FAIL_LOG_EVERY;
    if (quiet) {
        s->fail_suppressed++;
    } else {
        snprintf(n, sizeof(n), "%u", s->fail_suppressed);
        s->fail_logged_ms = now;
        s->fail_suppressed = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (!quiet)
        log_kv(LOG_ERROR,
               "store commit failed: writes answer 503 and /readyz is 503 until it works", "error",
               why, "failures_not_logged", n, LOG_END);
}

static void commit_worked(struct lmdb_store *s)
{
    if (atomic_exchange(&s->failing, 0)) {
        log_kv(LOG_INFO, "store commits work again", LOG_END);
        pthread_mutex_lock(&s->mu);
        s->fail_logged_ms = 0;
        s->fail_suppressed = 0;
        pthread_mutex_unlock(&s->mu);
    }
}

/* While commits fail and nothing else is queued: one small write, to learn when they work
 * again (the balancer has taken us out of service: no request will try). */
static void probe(struct lmdb_store *s)
{
    MDB_txn *txn;
    MDB_val k = {5, (void *)(uintptr_t) "probe"}, v;
    uint64_t now = mono_ms();
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        v.mv_size = sizeof(now);
        v.mv_data = &now;
        rc = mdb_put(txn, s->dbi[STORE_T_META], &k, &v, 0);
        sl_fam_own(s, txn);
        rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    }
    if (rc)
        commit_failed(s, cause(rc));
    else
        commit_worked(s);
}

/* The end of a write transaction begun with sl_rt_begin, and of the memo's changes with it:
 * committed, or (failing) forgotten. Test builds can make the next commits fail, as a full
 * disk would: store_lmdb_fail_commits. */
int sl_commit(struct lmdb_store *s, MDB_txn *txn)
{
    int mrc;
#ifdef FG_TESTING
    if (atomic_load(&s->fail_commits) > 0) {
        atomic_fetch_sub(&s->fail_commits, 1);
        mdb_txn_abort(txn);
        mrc = EIO;
    } else
#endif
    {
        sl_fam_own(s, txn);
        mrc = mdb_txn_commit(txn);
    }
    if (mrc)
        sl_rt_abort(s);
    return mrc;
}

void sl_abort(struct lmdb_store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    sl_rt_abort(s);
}

static void run_done(struct loop_task *t)
{
    struct store_op *op = (struct store_op *)(void *)t;
    op->on_done(op);
}

static void *writer_main(void *arg)
{
    struct lmdb_store *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) {
            pthread_mutex_unlock(&s->mu);
            bool folded = sl_rt_fold_step(s, 0); /* idle: the fold goes on, if one is due */
            pthread_mutex_lock(&s->mu);
            if (folded || s->head || s->stopping)
                continue; /* (work queued meanwhile was signalled to no one: look again) */
            if (!atomic_load(&s->failing) && !sl_rt_fold_due(s)) {
                pthread_cond_wait(&s->cv, &s->mu);
                continue;
            }
            /* (commits failing, or a fold due that failed: both tried again in a second) */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += PROBE_MS / 1000;
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT && !s->head &&
                !s->stopping && atomic_load(&s->failing)) {
                pthread_mutex_unlock(&s->mu);
                probe(s);
                pthread_mutex_lock(&s->mu);
            }
        }
        if (!s->head)
            break;
        /* Take everything queued (up to BATCH_MAX): this is the group. */
        struct store_op *batch = s->head, *last = s->head;
        unsigned n = 1;
        while (last->_next && n < BATCH_MAX) {
            last = last->_next;
            n++;
        }
        s->head = last->_next;
        if (!s->head)
            s->tail = NULL;
        last->_next = NULL;
        s->depth -= n;
        s->busy = 1;
        pthread_mutex_unlock(&s->mu);

        MDB_txn *txn;
        uint64_t t0 = clock_mono_ns();
        int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
        int rc = mrc ? ERR_BACKEND : sl_rt_begin(s, txn);
        for (struct store_op *op = batch; op && !rc; op = op->_next) {
            op->status = apply(s, txn, op);
            if (is_backend_failure(op->status))
                rc = op->status;
        }
        MDB_stat ls;
        bool legacy_gone = !mrc && atomic_load(&s->has_legacy) &&
                           mdb_stat(txn, s->legacy, &ls) == 0 && ls.ms_entries == 0;
        if (mrc) {
            commit_failed(s, cause(mrc));
        } else if (rc == ERR_OK && (mrc = sl_commit(s, txn)) != 0) {
            rc = ERR_BACKEND;
            commit_failed(s, cause(mrc)); /* e.g. "No space left on device" */
        } else if (rc) {
            sl_abort(s, txn);
            commit_failed(s, op_cause(rc));
        } else {
            commit_worked(s);
            if (legacy_gone)
                atomic_store(&s->has_legacy, false); /* (nothing writes there again) */
        }
        uint64_t took = clock_mono_ns() - t0;
        pthread_mutex_lock(&s->mu);
        s->st.commits++;
        s->st.ops += n;
        s->st.commit_ns += took;
        if (n > s->st.max_batch)
            s->st.max_batch = n;
        pthread_mutex_unlock(&s->mu);

        /* Durable now (or failed as a whole): answer. */
        for (struct store_op *op = batch, *next; op; op = next) {
            next = op->_next;
            if (rc)
                op->status = rc;
            op->_task.on_run = run_done;
            loop_post_owed(op->_loop, &op->_task);
        }
        sl_rt_fold_step(s, n); /* (under load, a chunk of the fold between batches) */
        pthread_mutex_lock(&s->mu);
        s->busy = 0;
        if (!s->head)
            pthread_cond_broadcast(&s->cv_idle);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- vtable --------------------------------------------------------------------------- */

static int l_submit(struct store *st, struct loop *lp, struct store_op *op)
{
    struct lmdb_store *s = L(st);
    int rc = ERR_AGAIN;

    op->_next = NULL;
    op->_loop = lp;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        rc = ERR_BACKEND;
    } else if (s->depth >= QUEUE_MAX) {
        rc = ERR_LIMIT;
    } else {
        loop_owe(lp); /* (its loop stays open until the answer is back) */
        QUEUE_APPEND(s->head, s->tail, op, _next);
        s->depth++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int l_ready(struct store *st, uint64_t *stale_ms)
{
    struct lmdb_store *s = L(st);
    int failing = atomic_load(&s->failing);
    if (stale_ms)
        *stale_ms = failing ? mono_ms() - atomic_load(&s->failing_since_ms) : 0;
    return !failing;
}

static int l_exec(struct store *st, struct store_op *op)
{
    struct lmdb_store *s = L(st);
    MDB_txn *txn;

    int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrc) {
        commit_failed(s, cause(mrc));
        return op->status = ERR_BACKEND;
    }
    op->status = sl_rt_begin(s, txn);
    if (op->status == ERR_OK)
        op->status = apply(s, txn, op);
    if (op->status == ERR_OK) {
        if ((mrc = sl_commit(s, txn))) {
            op->status = ERR_BACKEND;
            commit_failed(s, cause(mrc));
        } else {
            commit_worked(s);
        }
    } else {
        sl_abort(s, txn);
        if (is_backend_failure(op->status))
            commit_failed(s, op_cause(op->status));
    }
    return op->status;
}

static int l_get(struct store *st, enum store_table t, const void *key, size_t klen,
                 struct buf *out, struct loop *lp, struct store_op *op)
{
    struct lmdb_store *s = L(st);
    MDB_txn *txn;
    MDB_val k = {klen, (void *)(uintptr_t)key}, v;

    (void)lp;
    (void)op;
    if (t == STORE_T_REFRESH && klen == STORE_DIGEST)
        return sl_rt_read(s, key, out); /* (with its spending, if it was spent) */
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return ERR_BACKEND;
    int rc = sl_map_err(mdb_get(txn, s->dbi[t], &k, &v));
    if (rc == ERR_OK) {
        buf_reset(out);
        rc = buf_append(out, v.mv_data, v.mv_size);
    }
    mdb_txn_abort(txn);
    return rc;
}

static int l_each(struct store *st, enum store_table t, store_each_cb fn, void *ctx)
{
    struct lmdb_store *s = L(st);
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return ERR_BACKEND;
    int rc = ERR_OK;
    if (t == STORE_T_REFRESH) {
        rc = sl_rt_each(s, txn, fn, ctx); /* (keys as digests, spendings merged) */
    } else if (mdb_cursor_open(txn, s->dbi[t], &c)) {
        rc = ERR_BACKEND;
    } else {
        int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        for (; mrc == 0 && rc == ERR_OK; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
            rc = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return rc;
}

static uint64_t l_generation(struct store *st)
{
    struct lmdb_store *s = L(st);
    MDB_txn *txn;
    MDB_val k = {10, (void *)(uintptr_t) "generation"}, v;
    uint64_t g = 0;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return 0;
    if (mdb_get(txn, s->dbi[STORE_T_META], &k, &v) == 0 && v.mv_size == sizeof(g))
        memcpy(&g, v.mv_data, sizeof(g));
    mdb_txn_abort(txn);
    return g;
}

static void l_stats(struct store *st, struct store_stats *out)
{
    struct lmdb_store *s = L(st);
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->queue_depth = s->depth;
    pthread_mutex_unlock(&s->mu);
}

static int l_usage(struct store *st, enum store_table t, uint64_t *entries, uint64_t *bytes)
{
    struct lmdb_store *s = L(st);
    MDB_txn *txn;
    MDB_stat ms;
    MDB_envinfo ei;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return ERR_BACKEND;
    uint64_t n = 0;
    int rc = mdb_stat(txn, s->dbi[t], &ms);
    if (rc == 0)
        n = ms.ms_entries;
    if (rc == 0 && t == STORE_T_REFRESH && (rc = mdb_stat(txn, s->legacy, &ms)) == 0)
        n += ms.ms_entries; /* (the psize below is the same for every table) */
    mdb_txn_abort(txn);
    if (rc || mdb_env_info(s->env, &ei))
        return ERR_BACKEND;
    *entries = n;
    *bytes = (uint64_t)(ei.me_last_pgno + 1) * ms.ms_psize;
    return ERR_OK;
}

static void l_close(struct store *st)
{
    struct lmdb_store *s = L(st);

    pthread_mutex_lock(&s->mu);
    while (s->head || s->busy)
        pthread_cond_wait(&s->cv_idle, &s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    sl_fam_close(s);
    mdb_env_close(s->env);
    sl_rt_close(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->cv_idle);
    mem_free(s);
}

static const struct store_vt lmdb_vt = {
    .close = l_close,
    .get = l_get,
    .each = l_each,
    .submit = l_submit,
    .exec = l_exec,
    .generation = l_generation,
    .stats = l_stats,
    .usage = l_usage,
    .ready = l_ready,
    .metrics_text = sl_rt_metrics_text,
    .fold = sl_rt_fold_all,
};

#ifdef FG_TESTING
int store_lmdb_put_aged(struct store *st, const uint8_t digest[STORE_DIGEST],
                        const struct store_refresh *r)
{
    struct lmdb_store *s = L(st);
    uint8_t enc[STORE_REFRESH_ENC_MAX];
    MDB_val k = {STORE_DIGEST, (void *)(uintptr_t)digest}, v = {store_refresh_encode(r, enc), enc};
    MDB_txn *txn;

    if (!v.mv_size || mdb_txn_begin(s->env, NULL, 0, &txn))
        return ERR_BACKEND;
    int rc = mdb_put(txn, s->legacy, &k, &v, 0);
    sl_fam_own(s, txn);
    rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    if (!rc)
        atomic_store(&s->has_legacy, true);
    return sl_map_err(rc);
}

void store_lmdb_fail_commits(struct store *st, int n)
{
    atomic_store(&L(st)->fail_commits, n);
}

void store_lmdb_purge_scan(struct store *st, size_t n)
{
    L(st)->purge_scan = n ? n : PURGE_SCAN; /* (read by the writer after store_exec's lock) */
}

void store_lmdb_purge_budget(struct store *st, int64_t ns)
{
    L(st)->purge_budget_ns = ns >= 0 ? (uint64_t)ns : PURGE_BUDGET_NS;
}

long sl_entries(struct lmdb_store *s, MDB_dbi dbi)
{
    MDB_txn *txn;
    MDB_stat ms;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return -1;
    int rc = mdb_stat(txn, dbi, &ms);
    mdb_txn_abort(txn);
    return rc ? -1 : (long)ms.ms_entries;
}

long store_lmdb_aged_left(struct store *st)
{
    return sl_entries(L(st), L(st)->legacy);
}
#endif

/* -1 if the file is missing; its size otherwise. */
static long long file_size(const char *dir, const char *name)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int store_open_lmdb(const char *dir, size_t map_size, unsigned flags, struct store **out, char *err,
                    size_t cap)
{
    struct lmdb_store *s = xcalloc(1, sizeof(*s));
    MDB_txn *txn = NULL;
    int rc;

    s->base.vt = &lmdb_vt;
    s->purge_scan = PURGE_SCAN;
    s->purge_budget_ns = PURGE_BUDGET_NS;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, cap, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    /* A store that was there and is now empty (a failed restore, a zeroed file) would start
     * as a new one: every user and client silently gone. LMDB never leaves data.mdb empty
     * once it has opened it, and its lock file stays beside it; a server key alone may have
     * been put there ahead of a first start. */
    long long data = file_size(dir, "data.mdb");
    if (!(flags & STORE_OPEN_INIT) &&
        (data == 0 || (data < 0 && file_size(dir, "lock.mdb") >= 0))) {
        snprintf(err, cap,
                 "%s/data.mdb is %s, but this directory has held a store%s: refusing to start "
                 "empty. Restore data.mdb, or start anew with --init-store",
                 dir, data < 0 ? "missing" : "empty", data < 0 ? " (lock.mdb is there)" : "");
        goto fail;
    }
    if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_maxdbs(s->env, STORE_T_COUNT + 4)) ||
        (rc = mdb_env_set_mapsize(s->env, map_size)) ||
        (rc = mdb_env_set_maxreaders(s->env, 512)) ||
        (rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600))) {
        snprintf(err, cap, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    /* Before any page beyond the two meta pages is touched: the file must hold every page
     * the newest meta counts, or the first read past its end is SIGBUS, not an error. */
    MDB_envinfo info;
    MDB_stat ms;
    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &ms) == 0) {
        long long need = ((long long)info.me_last_pgno + 1) * (long long)ms.ms_psize;
        data = file_size(dir, "data.mdb");
        if (data < need) {
            snprintf(err, cap,
                     "%s/data.mdb is truncated: %lld bytes, its header counts %lld: restore it "
                     "from a backup",
                     dir, data, need);
            goto fail;
        }
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn))) {
        snprintf(err, cap, "store: %s", mdb_strerror(rc));
        goto fail;
    }
    for (int t = 0; t < STORE_T_COUNT; t++) {
        if (!table_names[t]) { /* (a table without a name would be LMDB's main database) */
            snprintf(err, cap, "store table %d has no name", t);
            goto fail;
        }
        if ((rc = mdb_dbi_open(txn, table_names[t], MDB_CREATE, &s->dbi[t]))) {
            snprintf(err, cap, "store table %s: %s", table_names[t], mdb_strerror(rc));
            goto fail;
        }
    }
    if (sl_rt_open(s, txn, err, cap) || sl_fam_open(s, txn, err, cap))
        goto fail;
    if ((rc = mdb_txn_commit(txn))) {
        txn = NULL;
        snprintf(err, cap, "store: %s", mdb_strerror(rc));
        goto fail;
    }
    txn = NULL;
    if (sl_fam_rebuild(s, err, cap))
        goto fail;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->cv_idle, NULL);
    if (pthread_create(&s->writer, NULL, writer_main, s)) {
        snprintf(err, cap, "cannot start the store writer thread");
        goto fail;
    }
    pthread_setname_np(s->writer, "fg-store");
    *out = &s->base;
    return ERR_OK;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (s->env)
        mdb_env_close(s->env);
    if (s->memo.slot)
        sl_rt_close(s);
    mem_free(s);
    return ERR_IO;
}
