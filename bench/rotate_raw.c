/* SPDX-License-Identifier: MIT */
/*
 * The reference for the durable refresh benchmark: what one refresh rotation costs LMDB
 * itself, with no HTTP, no tokens and no floodgate code. A pool of live records circulates
 * as bench/refresh.lua's tokens do: each rotation reads the oldest live record, inserts its
 * successor under a new key and rewrites the old one (marked rotated), and B rotations share
 * one write transaction committed with LMDB's full durability (no NOSYNC, no NOMETASYNC: a
 * data sync and a synchronous meta-page write per commit), as floodgate's group commit does.
 * The store starts with PREFILL rotated records (the history a live service keeps to detect
 * reuse), inserted unsynced before the clock starts.
 *
 * Two key layouts, measured in the same run on fresh stores:
 *   random   a key is 32 bytes of digest (floodgate's refresh keys today)
 *   ordered  a key begins with a counter that grows with each issued record (big-endian),
 *            so new records land on the B-tree's rightmost leaf and recent ones sit together
 *
 * With ROTATE_RAW_NOMETASYNC=1 in the environment, the timed commits leave out the meta
 * page's own sync (MDB_NOMETASYNC: the data is synced, the meta page written after it is
 * not, until the next commit's sync): what that second sync of each commit costs. Such a
 * commit is not durable on its own; a store would have to hold its answers until the next.
 *
 * Usage: rotate_raw DIR ROTATIONS BATCH PREFILL
 *                   [RECORD_BYTES [anyage|overlay[=FOLD_AT]|runs[=FOLD_AT[,RUNS]]]]
 * Prints per layout: rotations/s, process CPU-µs per rotation (user + system, getrusage,
 * and each apart), minor page faults per rotation (first touches of the map), bytes written
 * per commit and the file's size. The timed phase's start and end go to stderr, so that a
 * profiler can attach to it alone (bench/rotate_prof.sh).
 *
 * With the word "anyage" after RECORD_BYTES: the ordered layout only, PREFILL live records,
 * and each rotation spends one drawn at random from all of them (issue #16 item 6's costly
 * case: a token of any age), two ways on two fresh stores of the same records:
 *   in place   the old record is rewritten, marked spent (floodgate's layout today)
 *   spent log  the old record stays as it is; its spending is appended to a second table,
 *              keyed by a growing counter (the layout item 6 names: what it would save on
 *              the write side, before any cost of reading or folding that log)
 *
 * With the word "overlay" instead: in place, then the spent log made something a store could
 * use. A counter finds no token, so the spending is kept in a second table keyed as the
 * record is (a small tree, written at random but hot), and every rotation looks the token up
 * there too, as a store must before it rotates. Three ways:
 *   overlay    the second table grows through the timed phase: the surge's cost, its fold
 *              left for after the surge
 *   folded     every FOLD_AT spendings (8192, or "overlay=FOLD_AT"), they are folded into
 *              the records (rewritten in place, in key order, FOLD_CHUNK per synced commit)
 *              and removed from the second table, inside the timed phase: the cost over a
 *              surge and its aftermath. The more spendings a fold holds, the more of them
 *              share a leaf of the records' tree, and the fewer pages each one rewrites.
 *   memo       the spent log as it is (appended under a counter), and the spendings not yet
 *              folded also held in memory, a hash set of at most FOLD_AT keys (what a store
 *              would rebuild from the log when it opens): the lookup costs no page. Every
 *              FOLD_AT spendings they are sorted and folded as above, and the log emptied.
 *
 * With the word "runs[=FOLD_AT[,RUNS]]" instead (200000 and 10 if left out): memo as above,
 * then the same with the spent set kept as sorted runs, on two fresh stores. Here a spent
 * record's successor takes its place among the live ones drawn, so PREFILL live records stay
 * however many rotations run (as through the server), and ROTATIONS may exceed PREFILL.
 *   runs       every FOLD_AT spendings, the memo is sorted and written as a run: a table
 *              keyed by the run's number and the record's key, filled in key order on its
 *              rightmost leaf (RUN_CHUNK per synced commit), the log emptied in the last
 *              commit. Each run has a filter in memory (10 bits a spending: blocked, one
 *              64-byte line a key), and a rotation asks each run's filter and reads the run
 *              only if the filter says it may hold the token. When RUNS runs are held and the
 *              memo is full again, all of them and the memo are merged in key order and folded
 *              into the records (FOLD_CHUNK per synced commit): RUNS + 1 times the spendings
 *              of a memo's fold on the same leaves. ROTATE_RAW_NOBLOOM=1 reads every run,
 *              no filter. ROTATE_RAW_GATE=1 asks one filter of every held run's keys first
 *              (sized for RUNS runs, emptied with them), and the runs' own filters only when
 *              it says a key may be in one: one line a rotation however many runs are held.
 *              ROTATE_RAW_RUNSONLY=1 leaves out the memo's measurement.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>
#include <sodium.h>

#define POOL       256
#define KEY        32
#define FOLD_AT    8192 /* folded: spendings held before they are folded, unless given */
#define FOLD_CHUNK 1024 /* folded: spendings folded per commit */

/* how a token of any age is spent (0: not that benchmark, a pool of recent ones) */
enum spend { IN_PLACE = 1, SPENT_LOG, OVERLAY, FOLDED, MEMO, RUNS };

#define RUNS_MAX   64   /* runs: the most runs a store may hold */
#define RUN_CHUNK  8192 /* runs: spendings written to a run per commit */
#define BLOOM_BITS 10   /* runs: a run's filter, bits per spending */

static long fold_at = FOLD_AT; /* folded: spendings held before they are folded */
static int runs_max = 10;      /* runs: runs held before they are folded */
static int no_bloom;           /* runs: every run looked up, no filter (ROTATE_RAW_NOBLOOM) */
static int circulate;          /* runs: a spent record's successor takes its place in the draw */
static int use_gate;           /* runs: one filter of every held run's keys, asked first
                                * (ROTATE_RAW_GATE) */

/* runs: a filter of one run's keys, blocked (all of a key's bits in one 64-byte line) */
struct bloom {
    uint64_t *bits; /* 8 words a line */
    size_t lines;
};

struct run {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_dbi spent; /* anyage, spent log: the second table */
    int anyage;    /* 0, or an enum spend */
    uint8_t *keys; /* anyage: every live record's key, PREFILL x KEY */
    uint8_t *gone; /* anyage: which have been spent */
    long live;     /* anyage: PREFILL */
    uint64_t spent_seq;
    long held;      /* overlay: spendings in the second table */
    long folded;    /* folded: spendings folded into the records */
    int folds;      /* folded: commits that folded */
    uint8_t *memo;  /* memo: the spendings not yet folded, a hash set of keys in memory */
    size_t mask;    /* memo: its slots - 1 */
    uint8_t *order; /* memo: the same keys as they came, to be sorted for the fold */
    int ordered;
    MDB_dbi runs;                  /* runs: the table of runs, keyed by run and record key */
    int nruns;                     /* runs: how many it holds */
    struct bloom bloom[RUNS_MAX];  /* runs: each run's filter */
    struct bloom gate;             /* runs, ROTATE_RAW_GATE: every held run's keys */
    long probes, run_gets;         /* runs: filters asked, and runs then looked up */
    uint64_t seq;
    uint8_t pool[POOL][KEY];
    unsigned head;
    size_t rec;
};

static void die(const char *what, int rc)
{
    fprintf(stderr, "rotate_raw: %s: %s\n", what, mdb_strerror(rc));
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The process's CPU so far, user and kernel (µs), and its minor page faults (a page of the
 * map touched for the first time, already in the page cache). */
struct use {
    double user, sys;
    long minflt;
};

static struct use use_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (struct use){(double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec,
                        (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec,
                        ru.ru_minflt};
}

/* bytes this process has written (write, pwrite), from /proc/self/io */
static long wchar(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "wchar: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static void new_key(struct run *r, uint8_t k[KEY])
{
    randombytes_buf(k, KEY);
    if (r->ordered) {
        uint64_t s = ++r->seq;
        for (int i = 0; i < 8; i++)
            k[i] = (uint8_t)(s >> (56 - 8 * i));
    }
}

static void put(struct run *r, MDB_txn *txn, const uint8_t k[KEY], uint8_t state, unsigned flags)
{
    uint8_t v[1024];
    memset(v, 0x42, r->rec);
    v[0] = state;
    MDB_val mk = {KEY, (void *)(uintptr_t)k}, mv = {r->rec, v};
    int rc = mdb_put(txn, r->dbi, &mk, &mv, flags);
    if (rc)
        die("put", rc);
}

/* a fold: the record of `key` read, then rewritten marked spent */
static void fold_one(struct run *r, MDB_txn *txn, const uint8_t key[KEY])
{
    MDB_val rk = {KEY, (void *)(uintptr_t)key}, rv;
    int rc = mdb_get(txn, r->dbi, &rk, &rv);
    if (rc)
        die("fold get", rc);
    put(r, txn, key, 2, 0);
}

/* memo: a spending looked up in memory (a miss, as nearly always), then held there */
static void memo_add(struct run *r, const uint8_t k[KEY])
{
    static const uint8_t empty[KEY];
    uint64_t h;
    memcpy(&h, k + 8, sizeof(h)); /* (random bytes: the counter is in the first 8) */
    for (size_t i = (size_t)h & r->mask;; i = (i + 1) & r->mask) {
        uint8_t *slot = r->memo + i * KEY;
        if (memcmp(slot, k, KEY) == 0)
            die("memo: spent twice", MDB_KEYEXIST);
        if (memcmp(slot, empty, KEY) == 0) {
            memcpy(slot, k, KEY);
            break;
        }
    }
    memcpy(r->order + r->held * KEY, k, KEY);
    r->held++;
}

static int by_key(const void *a, const void *b)
{
    return memcmp(a, b, KEY);
}

/* memo: the spendings held in memory, sorted and moved into their records, FOLD_CHUNK per
 * synced commit; the last commit also empties the log, whose entries are all folded then */
static void memo_fold(struct run *r)
{
    qsort(r->order, (size_t)r->held, KEY, by_key);
    for (long at = 0; at < r->held;) {
        MDB_txn *txn;
        int rc;
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)))
            die("fold", rc);
        for (int i = 0; i < FOLD_CHUNK && at < r->held; i++, at++, r->folded++)
            fold_one(r, txn, r->order + at * KEY);
        if (at == r->held && (rc = mdb_drop(txn, r->spent, 0)))
            die("fold drop", rc);
        if ((rc = mdb_txn_commit(txn)))
            die("fold commit", rc);
        r->folds++;
    }
    memset(r->memo, 0, (r->mask + 1) * KEY);
    r->held = 0;
}

/* runs: the key's line and its 7 bits (the key's bytes past the counter are random) */
static uint64_t *bloom_line(const struct bloom *b, const uint8_t k[KEY], unsigned bit[7])
{
    uint64_t h1, h2;
    memcpy(&h1, k + 8, sizeof(h1));
    memcpy(&h2, k + 16, sizeof(h2));
    for (int i = 0; i < 7; i++)
        bit[i] = (unsigned)(h2 >> (9 * i)) & 511;
    return b->bits + (h1 % b->lines) * 8;
}

static void bloom_add(struct bloom *b, const uint8_t k[KEY])
{
    unsigned bit[7];
    uint64_t *w = bloom_line(b, k, bit);
    for (int i = 0; i < 7; i++)
        w[bit[i] >> 6] |= 1ULL << (bit[i] & 63);
}

static int bloom_maybe(const struct bloom *b, const uint8_t k[KEY])
{
    unsigned bit[7];
    const uint64_t *w = bloom_line(b, k, bit);
    for (int i = 0; i < 7; i++)
        if (!(w[bit[i] >> 6] & (1ULL << (bit[i] & 63))))
            return 0;
    return 1;
}

static void run_key(uint8_t out[8 + KEY], int run, const uint8_t k[KEY])
{
    memset(out, 0, 7);
    out[7] = (uint8_t)run;
    memcpy(out + 8, k, KEY);
}

/* runs: is the token spent in a run? A filter first, then the run itself if it may be. */
static void runs_lookup(struct run *r, MDB_txn *txn, const uint8_t k[KEY])
{
    if (use_gate && r->nruns && (r->probes++, !bloom_maybe(&r->gate, k)))
        return;
    for (int i = r->nruns - 1; i >= 0; i--) {
        r->probes++;
        if (!no_bloom && !bloom_maybe(&r->bloom[i], k))
            continue;
        r->run_gets++;
        uint8_t rk[8 + KEY];
        run_key(rk, i, k);
        MDB_val mk = {sizeof(rk), rk}, mv;
        int rc = mdb_get(txn, r->runs, &mk, &mv);
        if (rc != MDB_NOTFOUND)
            die("run get", rc ? rc : MDB_KEYEXIST);
    }
}

/* runs: the memo, sorted, written as the next run, RUN_CHUNK per synced commit, in key
 * order (each entry on the table's rightmost leaf); the last commit empties the log */
static void memo_to_run(struct run *r)
{
    struct bloom *b = &r->bloom[r->nruns];
    qsort(r->order, (size_t)r->held, KEY, by_key);
    b->lines = ((size_t)r->held * BLOOM_BITS + 511) / 512;
    b->bits = calloc(b->lines, 64);
    if (!b->bits)
        die("bloom", ENOMEM);
    if (use_gate && !r->gate.bits) {
        r->gate.lines = ((size_t)runs_max * (size_t)fold_at * BLOOM_BITS + 511) / 512;
        if (!(r->gate.bits = calloc(r->gate.lines, 64)))
            die("gate", ENOMEM);
    }
    for (long at = 0; at < r->held;) {
        MDB_txn *txn;
        int rc;
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)))
            die("run", rc);
        for (int i = 0; i < RUN_CHUNK && at < r->held; i++, at++) {
            const uint8_t *k = r->order + at * KEY;
            uint8_t rk[8 + KEY], v[KEY + 8] = {0}; /* (its successor and when: zero here) */
            run_key(rk, r->nruns, k);
            MDB_val mk = {sizeof(rk), rk}, mv = {sizeof(v), v};
            if ((rc = mdb_put(txn, r->runs, &mk, &mv, MDB_APPEND)))
                die("run put", rc);
            bloom_add(b, k);
            if (use_gate)
                bloom_add(&r->gate, k);
        }
        if (at == r->held && (rc = mdb_drop(txn, r->spent, 0)))
            die("run drop", rc);
        if ((rc = mdb_txn_commit(txn)))
            die("run commit", rc);
        r->folds++;
    }
    r->nruns++;
    memset(r->memo, 0, (r->mask + 1) * KEY);
    r->held = 0;
}

/* runs: every run and the memo merged in key order and folded into their records,
 * FOLD_CHUNK per synced commit; the last commit empties the runs and the log. Each run is
 * read through a cursor from where the last commit left it. */
static void runs_fold(struct run *r)
{
    uint8_t next[RUNS_MAX][KEY]; /* each run's next key not yet folded */
    int more[RUNS_MAX];
    long mat = 0; /* the memo's next */
    qsort(r->order, (size_t)r->held, KEY, by_key);
    for (int i = 0; i < r->nruns; i++) {
        memset(next[i], 0, KEY);
        more[i] = 1;
    }
    for (int last = 0; !last;) {
        MDB_txn *txn;
        MDB_cursor *c[RUNS_MAX];
        int rc;
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)))
            die("fold", rc);
        for (int i = 0; i < r->nruns; i++) {
            uint8_t rk[8 + KEY];
            MDB_val mk = {sizeof(rk), rk}, mv;
            run_key(rk, i, next[i]);
            if ((rc = mdb_cursor_open(txn, r->runs, &c[i])))
                die("fold cursor", rc);
            if (more[i]) {
                rc = mdb_cursor_get(c[i], &mk, &mv, MDB_SET_RANGE);
                if (rc && rc != MDB_NOTFOUND)
                    die("fold seek", rc);
                more[i] = !rc && ((uint8_t *)mk.mv_data)[7] == i;
                if (more[i])
                    memcpy(next[i], (uint8_t *)mk.mv_data + 8, KEY);
            }
        }
        int n = 0;
        for (; n < FOLD_CHUNK; n++) {
            int best = -1; /* a run, or r->nruns for the memo */
            const uint8_t *bk = NULL;
            for (int i = 0; i < r->nruns; i++)
                if (more[i] && (!bk || memcmp(next[i], bk, KEY) < 0))
                    bk = next[best = i];
            if (mat < r->held && (!bk || memcmp(r->order + mat * KEY, bk, KEY) < 0))
                bk = r->order + (mat * KEY), best = r->nruns;
            if (best < 0)
                break;
            uint8_t key[KEY];
            memcpy(key, bk, KEY);
            if (best == r->nruns) {
                mat++;
            } else {
                MDB_val mk, mv;
                rc = mdb_cursor_get(c[best], &mk, &mv, MDB_NEXT);
                if (rc && rc != MDB_NOTFOUND)
                    die("fold next", rc);
                more[best] = !rc && ((uint8_t *)mk.mv_data)[7] == best;
                if (more[best])
                    memcpy(next[best], (uint8_t *)mk.mv_data + 8, KEY);
            }
            fold_one(r, txn, key);
            r->folded++;
        }
        for (int i = 0; i < r->nruns; i++)
            mdb_cursor_close(c[i]);
        last = n < FOLD_CHUNK;
        if (last && ((rc = mdb_drop(txn, r->runs, 0)) || (rc = mdb_drop(txn, r->spent, 0))))
            die("fold drop", rc);
        if ((rc = mdb_txn_commit(txn)))
            die("fold commit", rc);
        r->folds++;
    }
    for (int i = 0; i < r->nruns; i++) {
        free(r->bloom[i].bits);
        r->bloom[i].bits = NULL;
    }
    if (r->gate.bits)
        memset(r->gate.bits, 0, r->gate.lines * 64);
    r->nruns = 0;
    memset(r->memo, 0, (r->mask + 1) * KEY);
    r->held = 0;
}

/* anyage: a live record drawn at random from all of them, spent one of the two ways */
static void one_spend(struct run *r, MDB_txn *txn)
{
    long at;
    do
        at = (long)randombytes_uniform((uint32_t)r->live);
    while (r->gone[at]);
    r->gone[at] = !circulate;
    uint8_t *old = r->keys + at * KEY, next[KEY], spent[KEY];
    MDB_val mk = {KEY, old}, mv;
    int rc = mdb_get(txn, r->dbi, &mk, &mv);
    if (rc)
        die("get", rc);
    new_key(r, next);
    if (circulate) { /* (the successor is live in its place: PREFILL live records stay) */
        memcpy(spent, old, KEY);
        memcpy(old, next, KEY);
        old = spent;
    }
    put(r, txn, next, 1, MDB_NOOVERWRITE | MDB_APPEND);
    if (r->anyage == IN_PLACE) {
        put(r, txn, old, 2, 0);
        return;
    }
    if (r->anyage == OVERLAY || r->anyage == FOLDED) {
        /* a store must know the token is not spent already: the second table is looked at
         * (a miss here, as in nearly every honest rotation), then given the spending */
        MDB_val ok = {KEY, old}, ov;
        rc = mdb_get(txn, r->spent, &ok, &ov);
        if (rc != MDB_NOTFOUND)
            die("overlay get", rc ? rc : MDB_KEYEXIST);
        uint8_t sv[KEY + 8] = {0};
        memcpy(sv, next, KEY); /* its successor, and (zero here) when */
        ov.mv_size = sizeof(sv);
        ov.mv_data = sv;
        if ((rc = mdb_put(txn, r->spent, &ok, &ov, MDB_NOOVERWRITE)))
            die("overlay put", rc);
        r->held++;
        return;
    }
    if (r->anyage == MEMO || r->anyage == RUNS)
        memo_add(r, old);
    if (r->anyage == RUNS)
        runs_lookup(r, txn, old);
    uint8_t sk[8], sv[KEY + 8] = {0};
    uint64_t n = ++r->spent_seq;
    for (int i = 0; i < 8; i++)
        sk[i] = (uint8_t)(n >> (56 - 8 * i));
    memcpy(sv, old, KEY); /* which record, and (zero here) when */
    MDB_val lk = {sizeof(sk), sk}, lv = {sizeof(sv), sv};
    if ((rc = mdb_put(txn, r->spent, &lk, &lv, MDB_APPEND)))
        die("log", rc);
}

/* folded: the spendings held, moved into their records in key order, FOLD_CHUNK per commit
 * (each synced, as every commit here); each record is rewritten marked spent */
static void fold(struct run *r)
{
    while (r->held > 0) {
        MDB_txn *txn;
        MDB_cursor *c;
        MDB_val k, v;
        int rc;
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) ||
            (rc = mdb_cursor_open(txn, r->spent, &c)))
            die("fold", rc);
        for (int i = 0; i < FOLD_CHUNK && r->held > 0; i++, r->held--, r->folded++) {
            uint8_t key[KEY];
            if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)))
                die("fold first", rc);
            memcpy(key, k.mv_data, KEY); /* (the cursor's page changes under the put) */
            fold_one(r, txn, key);
            if ((rc = mdb_cursor_del(c, 0)))
                die("fold del", rc);
        }
        mdb_cursor_close(c);
        if ((rc = mdb_txn_commit(txn)))
            die("fold commit", rc);
        r->folds++;
    }
}

static void one_rotation(struct run *r, MDB_txn *txn)
{
    if (r->anyage) {
        one_spend(r, txn);
        return;
    }
    uint8_t *old = r->pool[r->head], next[KEY];
    MDB_val mk = {KEY, old}, mv;
    int rc = mdb_get(txn, r->dbi, &mk, &mv);
    if (rc)
        die("get", rc);
    new_key(r, next);
    put(r, txn, next, 1, MDB_NOOVERWRITE);
    put(r, txn, old, 2, 0);
    memcpy(old, next, KEY);
    r->head = (r->head + 1) % POOL;
}

static const char *layout_name(const struct run *r)
{
    static const char *names[] = {"random",  "ordered", "in-place", "spent-log",
                                  "overlay", "folded",  "memo",     "runs"};
    return names[r->anyage ? 1 + r->anyage : r->ordered];
}

static void measure(const char *dir, int ordered, int anyage, long rotations, int batch,
                    long prefill, size_t rec)
{
    struct run *r = calloc(1, sizeof(*r));
    MDB_txn *txn;
    MDB_stat st;
    char path[600];
    int rc;

    r->ordered = ordered;
    r->anyage = anyage;
    r->rec = rec;
    snprintf(path, sizeof(path), "%s/%s", dir, layout_name(r));
    mkdir(path, 0700);
    if ((rc = mdb_env_create(&r->env)) || (rc = mdb_env_set_mapsize(r->env, 64UL << 30)) ||
        (rc = mdb_env_set_maxdbs(r->env, 3)) || (rc = mdb_env_open(r->env, path, MDB_NOTLS, 0600)))
        die("open", rc);
    if (anyage) {
        r->live = prefill;
        r->keys = malloc((size_t)prefill * KEY);
        r->gone = calloc((size_t)prefill, 1);
        if (!r->keys || !r->gone || (!circulate && prefill < 2 * rotations)) {
            fprintf(stderr, "rotate_raw: anyage needs PREFILL >= 2 x ROTATIONS, and memory\n");
            exit(2);
        }
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) ||
            (rc = mdb_dbi_open(txn, "spent", MDB_CREATE, &r->spent)) ||
            (rc = mdb_dbi_open(txn, "runs", MDB_CREATE, &r->runs)) || (rc = mdb_txn_commit(txn)))
            die("spent", rc);
    }
    if (anyage == MEMO || anyage == RUNS) {
        size_t slots = 1;
        while (slots < 2 * ((size_t)fold_at + (size_t)batch)) /* (a fold follows a commit) */
            slots <<= 1;
        r->mask = slots - 1;
        r->memo = calloc(slots, KEY);
        r->order = malloc(((size_t)fold_at + (size_t)batch) * KEY);
        if (!r->memo || !r->order)
            die("memo", ENOMEM);
    }
    /* the history, unsynced and untimed (a real store built it over weeks) */
    mdb_env_set_flags(r->env, MDB_NOSYNC, 1);
    for (long done = 0; done < prefill + POOL;) {
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) ||
            (rc = mdb_dbi_open(txn, anyage ? "records" : NULL, anyage ? MDB_CREATE : 0, &r->dbi)))
            die("begin", rc);
        for (long i = 0; i < 100000 && done < prefill + POOL; i++, done++) {
            uint8_t k[KEY];
            new_key(r, k);
            put(r, txn, k, done < prefill && !anyage ? 2 : 1, anyage ? MDB_APPEND : 0);
            if (anyage && done < prefill)
                memcpy(r->keys + done * KEY, k, KEY);
            else if (done >= prefill)
                memcpy(r->pool[done - prefill], k, KEY);
        }
        if ((rc = mdb_txn_commit(txn)))
            die("commit", rc);
    }
    mdb_env_set_flags(r->env, MDB_NOSYNC, 0);
    if (getenv("ROTATE_RAW_NOMETASYNC")) /* (what the meta page's own sync costs: not durable) */
        mdb_env_set_flags(r->env, MDB_NOMETASYNC, 1);
    mdb_env_sync(r->env, 1);

    long commits = 0;
    long w0 = wchar();
    /* (on stderr, for a profiler to attach to the timed phase alone: bench/rotate_prof.sh) */
    fprintf(stderr, "rotate_raw: %s timed phase begins\n", layout_name(r));
    struct use u0 = use_now();
    double t0 = now();
    for (long done = 0; done < rotations; commits++) {
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)))
            die("begin", rc);
        for (int i = 0; i < batch && done < rotations; i++, done++)
            one_rotation(r, txn);
        if ((rc = mdb_txn_commit(txn)))
            die("commit", rc);
        if (anyage == FOLDED && r->held >= fold_at)
            fold(r);
        if (anyage == MEMO && r->held >= fold_at)
            memo_fold(r);
        if (anyage == RUNS && r->held >= fold_at) {
            if (r->nruns == runs_max)
                runs_fold(r);
            else
                memo_to_run(r);
        }
    }
    double secs = now() - t0;
    struct use u1 = use_now();
    fprintf(stderr, "rotate_raw: %s timed phase ends\n", layout_name(r));
    double cpu = u1.user - u0.user + u1.sys - u0.sys;
    long written = wchar() - w0;
    MDB_envinfo ei;
    mdb_env_info(r->env, &ei);
    MDB_stat os = {0};
    if ((rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn)) || (rc = mdb_stat(txn, r->dbi, &st)) ||
        (anyage >= OVERLAY && (rc = mdb_stat(txn, r->spent, &os))))
        die("stat", rc);
    mdb_txn_abort(txn);
    printf("%-9s prefill %ld batch %d: %ld rotations in %.2f s = %.0f/s, %.2f CPU-us/rotation "
           "(user %.2f, kernel %.2f), %.2f minor faults/rotation, %ld commits, %.1f KiB written "
           "per commit, depth %u, %.1f MiB\n",
           layout_name(r), prefill, batch, rotations, secs, (double)rotations / secs,
           cpu / (double)rotations, (u1.user - u0.user) / (double)rotations,
           (u1.sys - u0.sys) / (double)rotations,
           (double)(u1.minflt - u0.minflt) / (double)rotations, commits,
           (double)written / 1024.0 / (double)commits, st.ms_depth,
           (double)(ei.me_last_pgno + 1) * st.ms_psize / 1048576.0);
    if (anyage >= OVERLAY)
        printf("%-9s second table at the end: %zu spendings held, depth %u; %ld folded in %d "
               "commits\n",
               layout_name(r), os.ms_entries, os.ms_depth, r->folded, r->folds);
    if (anyage == RUNS) {
        size_t bytes = 0;
        for (int i = 0; i < r->nruns; i++)
            bytes += r->bloom[i].lines * 64;
        bytes += r->gate.lines * 64;
        printf("%-9s %d runs held (of %d), their filters %.1f KiB; %.2f filters asked and %.3f "
               "runs read per rotation%s\n",
               layout_name(r), r->nruns, runs_max, (double)bytes / 1024.0,
               (double)r->probes / (double)rotations, (double)r->run_gets / (double)rotations,
               no_bloom ? " (no filters)" : use_gate ? " (a gate first)" : "");
        for (int i = 0; i < r->nruns; i++)
            free(r->bloom[i].bits);
    }
    fflush(stdout);
    mdb_env_close(r->env);
    free(r->gate.bits);
    free(r->keys);
    free(r->memo);
    free(r->order);
    free(r->gone);
    free(r);
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 7 ||
        (argc == 7 && strcmp(argv[6], "anyage") != 0 && strncmp(argv[6], "overlay", 7) != 0 &&
         strncmp(argv[6], "runs", 4) != 0)) {
        fprintf(stderr, "usage: rotate_raw DIR ROTATIONS BATCH PREFILL [RECORD_BYTES "
                        "[anyage|overlay[=FOLD_AT]|runs[=FOLD_AT[,RUNS]]]]\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    long rotations = atol(argv[2]), prefill = atol(argv[4]);
    int batch = atoi(argv[3]);
    size_t rec = argc >= 6 ? (size_t)atol(argv[5]) : 160;
    if (rotations <= 0 || batch <= 0 || prefill < 0 || rec < 1 || rec > 1024) {
        fprintf(stderr, "rotate_raw: bad arguments\n");
        return 2;
    }
    if (argc == 7) {
        const char *w = argv[6];
        enum spend last = SPENT_LOG;
        if (strncmp(w, "overlay", 7) == 0) {
            last = MEMO;
            if (w[7] == '=')
                fold_at = atol(w + 8);
            if (fold_at < 1 || (w[7] != '=' && w[7] != '\0')) {
                fprintf(stderr, "rotate_raw: overlay=FOLD_AT: a positive count\n");
                return 2;
            }
        }
        if (strncmp(w, "runs", 4) == 0) {
            char *end = argv[6] + 4;
            if (*end == '=')
                fold_at = strtol(end + 1, &end, 10);
            if (*end == ',')
                runs_max = (int)strtol(end + 1, &end, 10);
            if (*end || fold_at < 1 || runs_max < 1 || runs_max >= RUNS_MAX) {
                fprintf(stderr, "rotate_raw: runs=FOLD_AT,RUNS: positive counts, RUNS below %d\n",
                        RUNS_MAX);
                return 2;
            }
            no_bloom = getenv("ROTATE_RAW_NOBLOOM") != NULL;
            circulate = 1;
            use_gate = getenv("ROTATE_RAW_GATE") != NULL;
            if (!getenv("ROTATE_RAW_RUNSONLY"))
                measure(argv[1], 1, MEMO, rotations, batch, prefill, rec);
            measure(argv[1], 1, RUNS, rotations, batch, prefill, rec);
            return 0;
        }
        measure(argv[1], 1, IN_PLACE, rotations, batch, prefill, rec);
        for (int how = last == MEMO ? OVERLAY : SPENT_LOG; how <= (int)last; how++)
            measure(argv[1], 1, how, rotations, batch, prefill, rec);
        return 0;
    }
    measure(argv[1], 0, 0, rotations, batch, prefill, rec);
    measure(argv[1], 1, 0, rotations, batch, prefill, rec);
    return 0;
}
