/* SPDX-License-Identifier: MIT */
/* Key rotation: the new key signs from its start, the old one until then; two rotations in
 * one second still leave exactly one newest key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
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
    if (cr_init() || system(cmd) != 0 || store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)))
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

static const char *signer_of(struct store *st, enum tok_alg alg, int64_t now, char *out)
{
    struct tok_ring r = {0};
    out[0] = '\0';
    if (tok_ring_load(&r, st) == ERR_OK) {
        const struct tok_ring_key *k = tok_ring_signer(&r, alg, now);
        if (k)
            snprintf(out, TOK_KID_MAX + 1, "%s", k->k.kid);
    }
    tok_ring_clear(&r);
    return out;
}

static const char *signer(struct store *st, int64_t now, char *out)
{
    return signer_of(st, TOK_ALG_EDDSA, now, out);
}

TEST(rotation_in_the_same_second_still_switches)
{
    struct store *st = fresh();
    char kid1[TOK_KID_MAX + 1], kid2[TOK_KID_MAX + 1], s[TOK_KID_MAX + 1];
    int64_t from = 0;
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(tok_keys_ensure(st, 1000), 0);
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

/* The record of kid, as the store holds it. */
static int raw_record(struct store *st, const char *kid, struct buf *b)
{
    return store_get(st, STORE_T_KEYS, kid, strlen(kid), b, NULL, NULL);
}

static const struct tok_ring_key *the_signer;

static const struct tok_key *lookup_one(void *ctx, struct str kid)
{
    (void)ctx;
    return str_eq(kid, str_c(the_signer->k.kid)) ? &the_signer->k : NULL;
}

/* The ring's signer at now signs a token that its public half verifies. */
static int signs_and_verifies(struct store *st, enum tok_alg alg, int64_t now)
{
    struct tok_ring r = {0};
    struct buf b;
    char payload[64];
    size_t n;
    int ok = 0;
    if (tok_ring_load(&r, st) == ERR_OK && tok_ring_signer(&r, alg, now)) {
        the_signer = tok_ring_signer(&r, alg, now);
        buf_init(&b, 8192);
        ok = tok_jws_sign(&the_signer->k, "at+jwt", "{}", 2, &b) == ERR_OK &&
             tok_jws_verify((struct str){b.p, b.len}, lookup_one, NULL, payload, sizeof(payload),
                            &n, NULL) == ERR_OK;
        buf_fini(&b);
    }
    tok_ring_clear(&r);
    return ok;
}

/* Private keys are sealed under a key derived from the server key: a copy of the store alone
 * (an LMDB file, a Redis dump) holds no signing key; records in the clear (written before)
 * are refused until resealed on the operator's word; another server key, or a record moved to
 * another kid, does not open. */
TEST(private_keys_are_sealed_under_the_server_key)
{
    static const uint8_t key_a[CR_HASH_KEY_LEN] = {1, 2, 3}, key_b[CR_HASH_KEY_LEN] = {9};
    struct store *st = fresh();
    char kid1[TOK_KID_MAX + 1], kid2[TOK_KID_MAX + 1], s[TOK_KID_MAX + 1];
    struct buf rec, rec2;
    ASSERT_TRUE(st != NULL);
    buf_init(&rec, 1 << 16);
    buf_init(&rec2, 1 << 16);
    tok_keys_seal_with(NULL); /* an old store: the first key in the clear */
    ASSERT_EQ_INT(tok_keys_ensure(st, 1000), 0);
    signer(st, 1000, kid1);
    ASSERT_EQ_INT(raw_record(st, kid1, &rec), 0);
    ASSERT_TRUE(memmem(rec.p, rec.len, "\"sk\":", 5) != NULL);
    tok_keys_seal_with(key_a);
    /* a record in the clear is refused while sealing (it could have been planted by
     * whoever can write to the store: issue #11 item 13), until the operator reseals */
    struct tok_ring r0 = {0};
    ASSERT_EQ_INT(tok_ring_load(&r0, st), ERR_DENIED);
    ASSERT_EQ_INT(r0.n, 0);
    ASSERT_EQ_INT(tok_keys_ensure(st, 1000), ERR_DENIED);
    unsigned resealed;
    ASSERT_EQ_INT(tok_keys_reseal(st, &resealed), 0);
    ASSERT_EQ_INT(resealed, 3); /* (a key of each algorithm) */
    ASSERT_EQ_INT(tok_keys_reseal(st, &resealed), 0);
    ASSERT_EQ_INT(resealed, 0); /* once */
    ASSERT_EQ_INT(tok_keys_ensure(st, 1000), 0);
    ASSERT_EQ_INT(raw_record(st, kid1, &rec), 0);
    ASSERT_TRUE(memmem(rec.p, rec.len, "\"sk\":", 5) == NULL);
    ASSERT_TRUE(memmem(rec.p, rec.len, "\"sk_sealed\":", 12) != NULL);
    ASSERT_TRUE(signs_and_verifies(st, TOK_ALG_EDDSA, 1000));
    ASSERT_EQ_STR(signer(st, 1000, s), kid1);
    /* new keys, of every algorithm, are written sealed and load again */
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_ES256, 1000, 0, 3600, kid2, NULL), 0);
    ASSERT_EQ_INT(raw_record(st, kid2, &rec2), 0);
    ASSERT_TRUE(memmem(rec2.p, rec2.len, "PRIVATE KEY", 11) == NULL);
    ASSERT_TRUE(memmem(rec2.p, rec2.len, "\"sk_sealed\":", 12) != NULL);
    ASSERT_TRUE(signs_and_verifies(st, TOK_ALG_ES256, 1001));
    ASSERT_TRUE(signs_and_verifies(st, TOK_ALG_RS256, 1001));
    ASSERT_EQ_STR(signer_of(st, TOK_ALG_ES256, 1001, s), kid2);
    /* a record moved under another kid does not open (the kid is associated data) */
    ASSERT_EQ_INT(store_exec_kv(st, STORE_OP_REPLACE, STORE_T_KEYS, kid2, rec.p, rec.len), 0);
    struct tok_ring r = {0};
    ASSERT_EQ_INT(tok_ring_load(&r, st), ERR_INVAL);
    tok_ring_clear(&r);
    ASSERT_EQ_INT(store_exec_kv(st, STORE_OP_REPLACE, STORE_T_KEYS, kid2, rec2.p, rec2.len), 0);
    ASSERT_EQ_INT(tok_ring_load(&r, st), 0);
    tok_ring_clear(&r);
    /* another server key opens nothing */
    tok_keys_seal_with(key_b);
    ASSERT_EQ_INT(tok_ring_load(&r, st), ERR_INVAL);
    tok_ring_clear(&r);
    tok_keys_seal_with(NULL);
    ASSERT_EQ_INT(tok_ring_load(&r, st), ERR_INVAL);
    tok_ring_clear(&r);
    buf_fini(&rec);
    buf_fini(&rec2);
    done(st);
}

/* A key record that is not one this code wrote (malformed, of an unknown kind, a key of the
 * wrong length, a sealed key that does not open) makes the ring refuse to load: never a
 * ring without it, never a key half read. Retired keys leave the JWKS. */
TEST(malformed_key_records_are_refused)
{
    static const uint8_t server_key[CR_HASH_KEY_LEN] = {7};
    struct store *st = fresh();
    ASSERT_TRUE(st != NULL);
    tok_keys_seal_with(NULL);
    static const char *const bad[] = {
        "not json",
        "{\"alg\":\"HS256\",\"pk\":\"AAAA\",\"sk\":\"AAAA\"}",
        "{\"pk\":\"AAAA\",\"sk\":\"AAAA\"}",
        "{\"alg\":\"EdDSA\",\"sk\":\"AAAA\"}",
        "{\"alg\":\"EdDSA\",\"pk\":\"AAAA\"}",
        "{\"alg\":\"EdDSA\",\"pk\":\"!!!!\",\"sk\":\"AAAA\"}",
        "{\"alg\":\"EdDSA\",\"pk\":\"AAAA\",\"sk\":\"AAAA\"}",
        "{\"alg\":\"EdDSA\",\"pk\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"sk\":"
        "\"AAAA\"}",
        "{\"alg\":\"EdDSA\",\"pk\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"sk_sealed\":\"AAAA\"}",
        "{\"alg\":\"ES256\"}",
        "{\"alg\":\"ES256\",\"sk_pem\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE "
        "KEY-----\\n\"}",
        "{\"alg\":\"RS256\",\"sk_sealed\":\"!!\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tok_keys_seal_with(strstr(bad[i], "sk_sealed") ? server_key : NULL);
        store_exec_kv(st, STORE_OP_DELETE, STORE_T_KEYS, "k1", NULL, 0);
        ASSERT_EQ_INT(
            store_exec_kv(st, STORE_OP_PUT_NEW, STORE_T_KEYS, "k1", bad[i], strlen(bad[i])), 0);
        struct tok_ring r = {0};
        if (tok_ring_load(&r, st) == ERR_OK || r.n != 0)
            harness_fail(__FILE__, __LINE__, "loaded: %s", bad[i]);
        tok_ring_clear(&r);
    }
    ASSERT_EQ_INT(store_exec_kv(st, STORE_OP_DELETE, STORE_T_KEYS, "k1", NULL, 0), 0);
    /* a key past its retirement is neither a signer nor published */
    tok_keys_seal_with(NULL);
    char kid1[TOK_KID_MAX + 1], kid2[TOK_KID_MAX + 1];
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_EDDSA, 1000, 0, 10, kid1, NULL), 0);
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_EDDSA, 1001, 0, 10, kid2, NULL), 0);
    struct tok_ring r = {0};
    struct buf jwks;
    buf_init(&jwks, 4096);
    ASSERT_EQ_INT(tok_ring_load(&r, st), 0);
    ASSERT_EQ_INT(tok_ring_jwks(&r, 1002, &jwks), 0);
    ASSERT_TRUE(memmem(jwks.p, jwks.len, kid1, strlen(kid1)) != NULL);
    buf_reset(&jwks);
    ASSERT_EQ_INT(tok_ring_jwks(&r, 1000000, &jwks), 0);
    ASSERT_TRUE(memmem(jwks.p, jwks.len, kid1, strlen(kid1)) == NULL);
    ASSERT_TRUE(tok_ring_find(&r, str_c(kid1), 1000000) == NULL);
    buf_fini(&jwks);
    tok_ring_clear(&r);
    done(st);
}

/* Every algorithm has its signer (access tokens in one, ID tokens in another, a client's in a
 * third): ensure makes the missing ones, a rotation renews them all from one instant, one
 * algorithm's rotation leaves the others signing, and a ring that would not load once more
 * is not written to. */
TEST(the_ring_holds_a_signer_for_every_algorithm)
{
    static const enum tok_alg algs[] = {TOK_ALG_EDDSA, TOK_ALG_ES256, TOK_ALG_RS256};
    struct store *st = fresh();
    char kid[TOK_KID_MAX + 1], before[3][TOK_KID_MAX + 1], s[TOK_KID_MAX + 1];
    struct tok_key_rotation rot;
    struct tok_key_policy kp = {TOK_ALG_EDDSA, 60, 5, TOK_ALG_RS256};
    ASSERT_TRUE(st != NULL);
    tok_keys_seal_with(NULL);
    /* a store from before: one EdDSA key; ensure adds the two others, active at once */
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_EDDSA, 1000, 0, 3600, kid, NULL), 0);
    ASSERT_EQ_INT(tok_keys_ensure(st, 1000), 0);
    ASSERT_EQ_STR(signer(st, 1000, s), kid);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_TRUE(signer_of(st, algs[i], 1000, before[i])[0] != '\0');
        ASSERT_TRUE(signs_and_verifies(st, algs[i], 1000));
    }
    ASSERT_EQ_INT(tok_keys_ensure(st, 1000), 0); /* (once) */
    struct tok_ring r = {0};
    ASSERT_EQ_INT(tok_ring_load(&r, st), 0);
    ASSERT_EQ_INT(r.n, 3);
    tok_ring_clear(&r);
    /* one algorithm's rotation: the others keep their signers, never retired by it */
    ASSERT_EQ_INT(tok_keys_rotate(st, TOK_ALG_ES256, 1000, 0, 3600, kid, NULL), 0);
    ASSERT_EQ_STR(signer_of(st, TOK_ALG_ES256, 1001, s), kid);
    ASSERT_EQ_STR(signer_of(st, TOK_ALG_RS256, 1001, s), before[2]);
    ASSERT_EQ_STR(signer_of(st, TOK_ALG_RS256, 100000, s), before[2]);
    /* all at once, by the policy: one start, and the old keys sign until then */
    ASSERT_EQ_INT(tok_keys_rotate_by(st, &kp, 2000, &rot), 0);
    ASSERT_EQ_INT(rot.n, 3);
    ASSERT_TRUE(rot.from == 2060);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_EQ_STR(signer_of(st, algs[i], 2060, s), tok_key_rotation_kid(&rot, algs[i]));
        ASSERT_TRUE(strcmp(signer_of(st, algs[i], 2059, s), tok_key_rotation_kid(&rot, algs[i])));
    }
    /* discovery names the ID-token algorithms, the server's default first */
    struct buf d;
    buf_init(&d, 8192);
    ASSERT_EQ_INT(tok_ring_load(&r, st), 0);
    ASSERT_EQ_INT(tok_discovery_json(&d, "https://i", &r, TOK_ALG_EDDSA, TOK_ALG_ES256, false), 0);
    ASSERT_TRUE(memmem(d.p, d.len,
                       "\"id_token_signing_alg_values_supported\":[\"ES256\",\"RS256\",\"EdDSA\"]",
                       62) != NULL);
    ASSERT_TRUE(memmem(d.p, d.len, "\"access_token_signing_alg_values_supported\":[\"EdDSA\"]",
                       52) != NULL);
    tok_ring_clear(&r);
    buf_fini(&d);
    /* rotations until the ring is full: the last is refused whole, and the ring still loads */
    int rc = ERR_OK;
    for (int64_t t = 3000; rc == ERR_OK && t < 3100; t++)
        rc = tok_keys_rotate_by(st, &kp, t, &rot);
    ASSERT_EQ_INT(rc, ERR_LIMIT);
    ASSERT_EQ_INT(rot.n, 0);
    ASSERT_EQ_INT(tok_ring_load(&r, st), 0);
    ASSERT_TRUE(r.n <= TOK_RING_MAX && r.n + TOK_ALG_N > TOK_RING_MAX);
    tok_ring_clear(&r);
    done(st);
}
