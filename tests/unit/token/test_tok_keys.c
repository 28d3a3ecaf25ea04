/* SPDX-License-Identifier: MIT */
/* Key rotation: the new key signs from its start, the old one until then; two rotations in
 * one second still leave exactly one newest key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"
#include "store/store.h"
#include "token/tok_keys.h"

static char dir[64];

static struct store *fresh(void)
{
    struct store *st;
    char err[256], cmd[96];
    snprintf(dir, sizeof(dir), "/tmp/fg-keys-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (cr_init() || system(cmd) != 0 || store_open_lmdb(dir, 16u << 20, &st, err, sizeof(err)))
        return NULL;
    return st;
}

static void done(struct store *st)
{
    char cmd[96];
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return;
}

static const char *signer(struct store *st, int64_t now, char *out)
{
    struct tok_ring r = {0};
    out[0] = '\0';
    if (tok_ring_load(&r, st) == ERR_OK) {
        const struct tok_ring_key *k = tok_ring_signer(&r, now);
        if (k)
            snprintf(out, TOK_KID_MAX + 1, "%s", k->k.kid);
    }
    tok_ring_clear(&r);
    return out;
}

TEST(rotation_in_the_same_second_still_switches)
{
    struct store *st = fresh();
    char kid1[TOK_KID_MAX + 1], kid2[TOK_KID_MAX + 1], s[TOK_KID_MAX + 1];
    int64_t from = 0;
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(tok_keys_ensure(st, TOK_ALG_EDDSA, 1000), 0);
    signer(st, 1000, kid1);
    ASSERT_TRUE(kid1[0] != '\0');
    /* published at once, in the second the first key started: it starts a second later */
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_EDDSA, 1000, 0, 3600, kid2, &from), 0);
    ASSERT_TRUE(from == 1001);
    ASSERT_EQ_STR(signer(st, 1000, s), kid1);
    ASSERT_EQ_STR(signer(st, 1001, s), kid2);
    /* with time ahead: now + publish_ahead */
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_EDDSA, 2000, 60, 3600, kid1, &from), 0);
    ASSERT_TRUE(from == 2060);
    ASSERT_EQ_STR(signer(st, 2059, s), kid2);
    ASSERT_EQ_STR(signer(st, 2060, s), kid1);
    done(st);
}
