/* SPDX-License-Identifier: MIT */
/*
 * Grows a floodgate data directory by N live refresh tokens, for the growth benchmark
 * (bench/growth.py): each a login's family (a family record and its first token, as
 * /v1/auth/login stores them, for the first-party client, a user of its own) issued now,
 * through the same group-commit writer as the server, under the directory's server key, so
 * that the server refreshes them. A uniform sample of the tokens issued by this run is
 * appended to SAMPLE_FILE (one per line), in random order: the tokens a benchmark presents
 * are spread over the whole store, not only the newest, and come back in no order of age.
 * The directory must hold a store and a key already (`floodgate --data-dir DIR user add
 * ...` makes both); the server must not be running.
 *
 * Usage: seed_refresh DIR N SAMPLE SAMPLE_FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_client.h"
#include "core/clock.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "loop/loop.h"
#include "store/store.h"
#include "seed.h"
#include "token/tok_refresh.h"

#define BATCH 4096


int main(int argc, char **argv)
{
    static struct store_op ops[BATCH];
    static uint8_t key[CR_HASH_KEY_LEN];
    struct store *st;
    char err[256], path[512];

    if (argc != 5) {
        fprintf(stderr, "usage: seed_refresh DIR N SAMPLE SAMPLE_FILE\n");
        return 2;
    }
    unsigned long n = strtoul(argv[2], NULL, 10), want = strtoul(argv[3], NULL, 10);
    cr_init();
    snprintf(path, sizeof(path), "%s/secret.key", argv[1]);
    if (auth_key_load(path, key, err, sizeof(err)) ||
        store_open_lmdb(argv[1], 64ull << 30, 0, &st, err, sizeof(err))) {
        fprintf(stderr, "seed_refresh: %s\n", err);
        return 1;
    }
    char (*sample)[TOK_REFRESH_LEN + 1] = calloc(want ? want : 1, sizeof(*sample));
    if (!sample)
        return 1;
    loop_init(&seed_lp, 0);
    uint32_t salt;
    cr_random(&salt, sizeof(salt)); /* (users of one run differ from another run's) */
    int64_t now = clock_wall_s();
    double t0 = (double)clock_mono_ns() / 1e9;
    for (unsigned long base = 0; base < n; base += BATCH) {
        unsigned long k = n - base < BATCH ? n - base : BATCH;
        unsigned long target = seed_done + k;
        for (unsigned long i = 0; i < k; i++) {
            struct store_op *op = &ops[i];
            char tok[TOK_REFRESH_LEN + 1];
            memset(op, 0, sizeof(*op));
            op->kind = STORE_OP_REFRESH_ISSUE;
            op->on_done = seed_on_done;
            op->now = now;
            snprintf(op->rt.sub, sizeof(op->rt.sub), "s%08x%013lu", salt, base + i);
            unsigned group = store_group_of(op->rt.sub);
            tok_refresh_new(group, clock_wall_us(), tok);
            tok_refresh_digest(key, str_c(tok), op->digest);
            store_family_new(group, op->rt.family);
            op->rt.issued_at = now;
            op->rt.expires_at = now + 30 * 86400;
            op->rt.idle_expires_at = now + 7 * 86400;
            snprintf(op->rt.client_id, sizeof(op->rt.client_id), "first-party");
            /* reservoir sampling: every token of the run equally likely in the sample */
            unsigned long seen = base + i;
            if (seen < want) {
                memcpy(sample[seen], tok, sizeof(tok));
            } else if (want) {
                uint64_t r;
                cr_random(&r, sizeof(r));
                if (r % (seen + 1) < want)
                    memcpy(sample[r % (seen + 1)], tok, sizeof(tok));
            }
            if (store_submit(st, &seed_lp, op) != ERR_AGAIN)
                return fprintf(stderr, "seed_refresh: the store refused a write\n"), 1;
        }
        seed_wait(target);
    }
    double took = (double)clock_mono_ns() / 1e9 - t0;
    store_close(st);
    /* in random order: reservoir sampling leaves a slot it never replaced holding the token
     * issued at that place, so the file would present the sample half in the order it was
     * issued, and a fold's spendings would crowd onto the leaves of the oldest records */
    unsigned long m = want < n ? want : n;
    for (unsigned long i = m; i > 1; i--) {
        uint64_t r;
        char t[TOK_REFRESH_LEN + 1];
        cr_random(&r, sizeof(r));
        unsigned long j = (unsigned long)(r % i);
        memcpy(t, sample[i - 1], sizeof(t));
        memcpy(sample[i - 1], sample[j], sizeof(t));
        memcpy(sample[j], t, sizeof(t));
    }
    FILE *f = fopen(argv[4], "a");
    for (unsigned long i = 0; f && i < m; i++)
        fprintf(f, "%s\n", sample[i]);
    if (!f || fclose(f))
        return fprintf(stderr, "seed_refresh: cannot write %s\n", argv[4]), 1;
    printf("seeded %lu tokens (%lu failed) in %.1f s = %.0f/s\n", n, seed_failed, took,
           (double)n / took);
    return seed_failed ? 1 : 0;
}
