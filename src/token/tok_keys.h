/* SPDX-License-Identifier: MIT */
/*
 * Signing-key ring. Keys live in the store (STORE_T_KEYS, so instances sharing a store share
 * keys); each loop thread holds its own read-only copy, reloaded when the store's generation
 * changes, so signing and verifying take no lock.
 *
 * The ring holds a signer for each algorithm (EdDSA, ES256, RS256): access tokens are signed
 * with signing_alg's, ID tokens with their client's algorithm (RS256 by default, the one every
 * relying party supports), so one ring serves both and the JWKS publishes every key in use.
 *
 * Rotation without downtime: a new key is published (in JWKS) `publish_ahead` seconds before
 * it starts signing, so verifiers that cache JWKS already know it; the key it replaces stops
 * signing then and stays published until `retire_at`, when the last token it signed has
 * expired. An algorithm's signing key is its newest key whose activation time has passed.
 * Private keys are held in sodium_malloc memory (guard pages, no core dumps, wiped on free).
 */
#ifndef TOKEN_TOK_KEYS_H
#define TOKEN_TOK_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "token/tok_jws.h"

struct store;
struct buf;

#define TOK_RING_MAX 48 /* 3 algorithms x (the signers, the retiring, the next) */
#define TOK_ALG_N    3  /* algorithms in the ring: TOK_ALG_EDDSA .. TOK_ALG_RS256 */

struct tok_ring_key {
    struct tok_key k;
    int64_t created_at;
    int64_t active_from; /* signs from here */
    int64_t retire_at;   /* unpublished and deleted from here; 0 = not scheduled */
    bool in_clear;       /* read from a record whose private key was not sealed */
};

struct tok_ring {
    struct tok_ring_key keys[TOK_RING_MAX];
    unsigned n;
    uint64_t generation; /* store generation it was loaded at */
};

/* From now on private keys are written sealed (XChaCha20-Poly1305 under a key derived from
 * the server key, the kid as associated data) and only sealed records are read (a record in
 * the clear fails the load with ERR_DENIED: see tok_keys_reseal); NULL turns it off
 * (records in the clear, as unit tests write them). Main thread, before other threads use
 * keys. */
void tok_keys_seal_with(const uint8_t *server_key);

/* Loads every key from the store into `r` (replacing its contents). ERR_BACKEND, ERR_INVAL (a
 * record that does not decode or open), ERR_DENIED (a record in the clear while sealing). */
int tok_ring_load(struct tok_ring *r, struct store *st);
/* Frees the private keys. */
void tok_ring_clear(struct tok_ring *r);
/* dst = a copy of src with private keys of its own (dst's old contents are not freed), for a
 * thread that signs with it while another reloads src. ERR_NOMEM (dst left empty). */
int tok_ring_copy(struct tok_ring *dst, const struct tok_ring *src);

/* The key to sign with in `alg` at `now`, or NULL if none is active. */
const struct tok_ring_key *tok_ring_signer(const struct tok_ring *r, enum tok_alg alg, int64_t now);
/* The key with that kid that is still published at `now`, or NULL. */
const struct tok_ring_key *tok_ring_find(const struct tok_ring *r, struct str kid, int64_t now);

/* floodgate_signing_key_age_seconds{alg} (the signer's time in use) and
 * floodgate_signing_key_successors{alg} (keys published that sign later), for /metrics. */
int tok_ring_metrics_text(const struct tok_ring *r, int64_t now, struct buf *b);

/* Appends {"keys":[...]} with the public half of every published key (RFC 7517, RFC 8037). */
int tok_ring_jwks(const struct tok_ring *r, int64_t now, struct buf *out);

/* Creates a key of algorithm `alg` that signs from now + publish_ahead and schedules the
 * retirement of that algorithm's current keys at that time + max_token_ttl; deletes keys
 * (of any algorithm) whose retirement has passed. Writes go through store_exec (CLI,
 * start-up, maintenance, admin jobs). kid_out gets the new kid, from_out (if not NULL) when
 * it starts signing: now + publish_ahead, or a second after the newest start of a key of the
 * algorithm if that is later (so that two rotations in one second still leave one newest
 * key). ERR_LIMIT: the ring would not hold another key (too many rotations within a token
 * lifetime); ERR_* from the store. */
int tok_keys_rotate(struct store *st, enum tok_alg alg, int64_t now, int64_t publish_ahead,
                    int64_t max_token_ttl, char kid_out[TOK_KID_MAX + 1], int64_t *from_out);
/* The longest lifetime an access token can have (access_ttl's bound, a client's too). */
#define TOK_ACCESS_TTL_MAX_S 86400
/* How the server signs: access tokens in `alg`, ID tokens in `id_alg` unless their client
 * names another; how long before new keys sign they are published (so caches have them),
 * and the clock leeway verifiers allow. */
struct tok_key_policy {
    enum tok_alg alg;
    int64_t publish_ahead_s;
    int64_t leeway_s;
    enum tok_alg id_alg;
};
/* What one rotation made: a key per algorithm, all signing from `from`. */
struct tok_key_rotation {
    struct {
        enum tok_alg alg;
        char kid[TOK_KID_MAX + 1];
    } keys[TOK_ALG_N];
    unsigned n;
    int64_t from;
};
/* tok_keys_rotate by the server's policy, for every algorithm: the current signers stay
 * published for the longest lifetime their tokens can have (TOK_ACCESS_TTL_MAX_S + leeway).
 * The one rule for the schedule, the admin API and the CLI. On an error, the keys made
 * before it are in `out` (and in the ring). */
int tok_keys_rotate_by(struct store *st, const struct tok_key_policy *kp, int64_t now,
                       struct tok_key_rotation *out);
/* The kid of `alg`'s key in a rotation ("" if none). */
const char *tok_key_rotation_kid(const struct tok_key_rotation *rot, enum tok_alg alg);
/* Says that the keys of `rot` were rotated in, `by` whom ("schedule", "admin_api"):
 * key.rotated and a log line for each. */
void tok_keys_rotated(const struct tok_key_rotation *rot, const char *by);

/* Creates a key (active at once) for each algorithm the store holds none of. ERR_DENIED: a
 * record is in the clear (tok_keys_reseal). */
int tok_keys_ensure(struct store *st, int64_t now);

/* Seals the private keys of records still in the clear (a store from before sealing, once,
 * on the operator's word: the CLI's "key reseal"). *resealed counts them. ERR_INVAL without
 * a server key. */
int tok_keys_reseal(struct store *st, unsigned *resealed);

/* The authorization server's metadata (RFC 8414, OpenID Connect discovery): exactly what
 * works; the ID-token algorithms of the keys published now, the server's default (id_alg)
 * first; access tokens in at_alg. */
int tok_discovery_json(struct buf *b, const char *issuer, const struct tok_ring *r,
                       enum tok_alg at_alg, enum tok_alg id_alg, bool password_grant);
/* The keys for administrators: kid, alg, times, and which ones sign at `now` (never a
 * private part). */
int tok_ring_admin_json(const struct tok_ring *r, int64_t now, struct buf *b);

#endif
