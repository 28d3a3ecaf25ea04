/* SPDX-License-Identifier: MIT */
/*
 * Grows a floodgate data directory by N users, PREFIX0 .. PREFIX<N-1>, for the growth
 * benchmark (bench/growth.py): each a user record and its index entry (id -> name) as
 * `floodgate user add` writes them, all with
 * one password hashed once (Argon2id with the server's default parameters: hashing a
 * million passwords would take this machine a day; a login still hashes in full), written
 * through the same group-commit writer as the server. The directory must hold a store
 * already (`floodgate --data-dir DIR user add ...` makes one); the server must not be
 * running.
 *
 * Usage: seed_users DIR N PREFIX PASSWORD
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_password.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "loop/loop.h"
#include "store/store.h"
#include "seed.h"

#define BATCH 4096


int main(int argc, char **argv)
{
    static struct store_op ops[BATCH], index_ops[BATCH];
    static struct buf recs[BATCH];
    static char names[BATCH][AUTH_USERNAME_MAX + 1];
    struct auth_pw_params pp = {19456, 2, 1}; /* (the configuration's defaults) */
    struct auth_user u;
    struct store *st;
    char err[256], phc[AUTH_PHC_MAX];

    if (argc != 5) {
        fprintf(stderr, "usage: seed_users DIR N PREFIX PASSWORD\n");
        return 2;
    }
    unsigned long n = strtoul(argv[2], NULL, 10);
    cr_init();
    if (auth_pw_hash(&pp, argv[4], strlen(argv[4]), phc, sizeof(phc)) ||
        store_open_lmdb(argv[1], 64ull << 30, 0, &st, err, sizeof(err))) {
        fprintf(stderr, "seed_users: cannot hash or open the store %s\n", argv[1]);
        return 1;
    }
    loop_init(&seed_lp, 0);
    for (int i = 0; i < BATCH; i++)
        buf_init(&recs[i], 4096);
    int64_t now = clock_wall_s();
    double t0 = (double)clock_mono_ns() / 1e9;
    for (unsigned long base = 0; base < n; base += BATCH) {
        unsigned long k = n - base < BATCH ? n - base : BATCH;
        unsigned long target = seed_done + 2 * k;
        for (unsigned long i = 0; i < k; i++) {
            char name[AUTH_USERNAME_MAX + 1];
            snprintf(name, sizeof(name), "%s%lu", argv[3], base + i);
            auth_user_init(&u, name, phc, now);
            buf_reset(&recs[i]);
            struct store_op *x = &index_ops[i];
            memset(x, 0, sizeof(*x));
            x->kind = STORE_OP_PUT_NEW;
            x->on_done = seed_on_done;
            x->table = STORE_T_SUBS;
            x->key_len = strlen(u.id);
            memcpy(x->key, u.id, x->key_len);
            memcpy(names[i], u.name, sizeof(names[i]));
            x->value = names[i];
            x->value_len = strlen(names[i]);
            if (auth_user_op(&ops[i], STORE_OP_PUT_NEW, &u, &recs[i], seed_on_done) ||
                store_submit(st, &seed_lp, &ops[i]) != ERR_AGAIN || store_submit(st, &seed_lp, x) != ERR_AGAIN)
                return fprintf(stderr, "seed_users: the store refused a write\n"), 1;
        }
        seed_wait(target);
    }
    double took = (double)clock_mono_ns() / 1e9 - t0;
    store_close(st);
    printf("seeded %lu users (%lu failed) in %.1f s = %.0f/s\n", n, seed_failed, took,
           (double)n / took);
    return seed_failed ? 1 : 0;
}
