/* SPDX-License-Identifier: MIT */
/*
 * Memory and disk per stored refresh token: issues N login-sized refresh families (a family
 * record and a token record each, as a login does) into a fresh LMDB store through the same
 * group-commit writer as the server, then reports bytes on disk per token and the process's
 * RSS before and after reading every token back once (LMDB pages are mapped, so RSS grows
 * only with what is touched). Usage: store_size DIR N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/clock.h"
#include "crypto/cr.h"
#include "loop/loop.h"
#include "store/store.h"
#include "seed.h"

#define BATCH 4096


static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static void digest_of(unsigned long i, uint8_t out[32])
{
    memset(out, 0, 32);
    memcpy(out, &i, sizeof(i));
    out[31] = 0x5a;
}

int main(int argc, char **argv)
{
    struct store *st;
    char err[256], path[512];
    static struct store_op ops[BATCH];

    if (argc != 3) {
        fprintf(stderr, "usage: store_size DIR N\n");
        return 2;
    }
    unsigned long n = strtoul(argv[2], NULL, 10);
    cr_init();
    if (store_open_lmdb(argv[1], 8ull << 30, 0, &st, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    loop_init(&seed_lp, 0);
    long rss0 = rss_kib();
    double t0 = (double)clock_mono_ns() / 1e9;
    int64_t now = clock_wall_s();
    for (unsigned long base = 0; base < n; base += BATCH) {
        unsigned long k = n - base < BATCH ? n - base : BATCH;
        unsigned long target = seed_done + k;
        for (unsigned long i = 0; i < k; i++) {
            struct store_op *op = &ops[i];
            memset(op, 0, sizeof(*op));
            op->kind = STORE_OP_REFRESH_ISSUE;
            op->on_done = seed_on_done;
            op->now = now;
            digest_of(base + i, op->digest);
            cr_random(op->rt.family, STORE_FAMILY_ID);
            op->rt.issued_at = now;
            op->rt.expires_at = now + 30 * 86400;
            op->rt.idle_expires_at = now + 7 * 86400;
            /* a login's values: a 22-character user id, the first-party client, no scope */
            snprintf(op->rt.sub, sizeof(op->rt.sub), "u%021lu", base + i);
            snprintf(op->rt.client_id, sizeof(op->rt.client_id), "first-party");
            store_submit(st, &seed_lp, op);
        }
        seed_wait(target);
    }
    double took = (double)clock_mono_ns() / 1e9 - t0;
    long rss1 = rss_kib();
    struct buf b;
    buf_init(&b, 4096);
    uint8_t d[32];
    unsigned long found = 0;
    for (unsigned long i = 0; i < n; i++) {
        digest_of(i, d);
        if (store_get(st, STORE_T_REFRESH, d, 32, &b, NULL, NULL) == 0)
            found++;
    }
    long rss2 = rss_kib();
    struct store_stats ss;
    store_get_stats(st, &ss);
    uint64_t entries, bytes;
    store_usage(st, STORE_T_REFRESH, &entries, &bytes);
    store_close(st);
    snprintf(path, sizeof(path), "%s/data.mdb", argv[1]);
    struct stat sb;
    stat(path, &sb);
    printf("tokens=%lu failed=%lu found=%lu commits=%llu max_batch=%llu insert_rate=%.0f/s\n", n,
           seed_failed, found, (unsigned long long)ss.commits, (unsigned long long)ss.max_batch,
           (double)n / took);
    printf("disk: data.mdb %lld bytes used (%lld allocated) = %.1f bytes/token\n",
           (long long)bytes, (long long)sb.st_blocks * 512, (double)bytes / (double)n);
    printf("rss: start %ld KiB, after insert %ld KiB, after reading all %ld KiB = %.1f "
           "bytes/token mapped\n",
           rss0, rss1, rss2, (double)(rss2 - rss0) * 1024 / (double)n);
    return seed_failed ? 1 : 0;
}
