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
 * Usage: rotate_raw DIR ROTATIONS BATCH PREFILL [RECORD_BYTES]
 * Prints per layout: rotations/s, process CPU-µs per rotation (user + system, getrusage),
 * bytes written per commit and the file's size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>
#include <sodium.h>

#define POOL 256
#define KEY  32

struct run {
    MDB_env *env;
    MDB_dbi dbi;
    int ordered;
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

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
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

static void one_rotation(struct run *r, MDB_txn *txn)
{
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

static void measure(const char *dir, int ordered, long rotations, int batch, long prefill,
                    size_t rec)
{
    struct run *r = calloc(1, sizeof(*r));
    MDB_txn *txn;
    MDB_stat st;
    char path[600];
    int rc;

    r->ordered = ordered;
    r->rec = rec;
    snprintf(path, sizeof(path), "%s/%s", dir, ordered ? "ordered" : "random");
    mkdir(path, 0700);
    if ((rc = mdb_env_create(&r->env)) || (rc = mdb_env_set_mapsize(r->env, 64UL << 30)) ||
        (rc = mdb_env_open(r->env, path, MDB_NOTLS, 0600)))
        die("open", rc);
    /* the history, unsynced and untimed (a real store built it over weeks) */
    mdb_env_set_flags(r->env, MDB_NOSYNC, 1);
    for (long done = 0; done < prefill + POOL;) {
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) ||
            (rc = mdb_dbi_open(txn, NULL, 0, &r->dbi)))
            die("begin", rc);
        for (long i = 0; i < 100000 && done < prefill + POOL; i++, done++) {
            uint8_t k[KEY];
            new_key(r, k);
            put(r, txn, k, done < prefill ? 2 : 1, 0);
            if (done >= prefill)
                memcpy(r->pool[done - prefill], k, KEY);
        }
        if ((rc = mdb_txn_commit(txn)))
            die("commit", rc);
    }
    mdb_env_set_flags(r->env, MDB_NOSYNC, 0);
    mdb_env_sync(r->env, 1);

    long commits = 0;
    long w0 = wchar();
    double t0 = now(), c0 = cpu_us();
    for (long done = 0; done < rotations; commits++) {
        if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)))
            die("begin", rc);
        for (int i = 0; i < batch && done < rotations; i++, done++)
            one_rotation(r, txn);
        if ((rc = mdb_txn_commit(txn)))
            die("commit", rc);
    }
    double secs = now() - t0, cpu = cpu_us() - c0;
    long written = wchar() - w0;
    MDB_envinfo ei;
    mdb_env_info(r->env, &ei);
    mdb_env_stat(r->env, &st);
    printf("%-8s prefill %ld batch %d: %ld rotations in %.2f s = %.0f/s, %.2f CPU-us/rotation, "
           "%ld commits, %.1f KiB written per commit, depth %u, %.1f MiB\n",
           ordered ? "ordered" : "random", prefill, batch, rotations, secs,
           (double)rotations / secs, cpu / (double)rotations, commits,
           (double)written / 1024.0 / (double)commits, st.ms_depth,
           (double)(ei.me_last_pgno + 1) * st.ms_psize / 1048576.0);
    fflush(stdout);
    mdb_env_close(r->env);
    free(r);
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: rotate_raw DIR ROTATIONS BATCH PREFILL [RECORD_BYTES]\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    long rotations = atol(argv[2]), prefill = atol(argv[4]);
    int batch = atoi(argv[3]);
    size_t rec = argc == 6 ? (size_t)atol(argv[5]) : 160;
    if (rotations <= 0 || batch <= 0 || prefill < 0 || rec < 1 || rec > 1024) {
        fprintf(stderr, "rotate_raw: bad arguments\n");
        return 2;
    }
    measure(argv[1], 0, rotations, batch, prefill, rec);
    measure(argv[1], 1, rotations, batch, prefill, rec);
    return 0;
}
