/* SPDX-License-Identifier: MIT */
/*
 * JWS compact serialization (RFC 7515) for JWTs. Signing and verification only; claims are
 * checked in tok_jwt. The verifier takes the algorithm from the key found by kid, never from
 * the token's header, and requires the header's alg to equal it: "alg":"none", an HS*
 * token made with a public key as the HMAC secret, or any algorithm switch is rejected
 * (the classic JWT attacks). Tokens longer than TOK_JWS_MAX are rejected before decoding.
 * Any thread; no shared state.
 */
#ifndef TOKEN_TOK_JWS_H
#define TOKEN_TOK_JWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "crypto/cr.h"
#include "crypto/cr_pkey.h"

#define TOK_JWS_MAX     8192 /* bytes of a compact token we accept at all */
#define TOK_KID_MAX     32
#define TOK_PAYLOAD_MAX 6144 /* decoded payload */

enum tok_alg {
    TOK_ALG_NONE = 0, /* never accepted */
    TOK_ALG_EDDSA,
    TOK_ALG_ES256,
    TOK_ALG_RS256,
};

struct tok_key {
    char kid[TOK_KID_MAX + 1];
    enum tok_alg alg;
    uint8_t pk[CR_ED25519_PK];
    uint8_t *sk; /* EdDSA: CR_ED25519_SK bytes in sodium_malloc memory; NULL: verify only */
    struct cr_pkey *pkey; /* ES256, RS256: the key pair (OpenSSL) */
};

/* Finds the key for `kid` (kid.p NULL when the header has none). Returns NULL if unknown. */
typedef const struct tok_key *(*tok_key_lookup_cb)(void *ctx, struct str kid);

/* "EdDSA", "ES256", "RS256"; NULL for none. */
const char *tok_alg_name(enum tok_alg alg);
/* The reverse; TOK_ALG_NONE for anything else. */
enum tok_alg tok_alg_parse(const char *name);

struct buf;

/* Appends header.payload.signature to `out`. The header is {"alg":..,"typ":typ,"kid":..}
 * (typ omitted when NULL). ERR_INVAL if the key cannot sign, ERR_LIMIT/ERR_NOMEM from out. */
int tok_jws_sign(const struct tok_key *k, const char *typ, const void *payload, size_t n,
                 struct buf *out);

/* Verifies `token` and copies its decoded payload into payload[cap] (NUL-terminated).
 * ERR_INVAL for any malformed, unsigned or wrongly-signed token, ERR_NOTFOUND for a kid
 * the lookup does not know, ERR_LIMIT for one over TOK_JWS_MAX or whose payload does not
 * fit. *typ_out (may be NULL) gets the header's typ, at most 31 bytes, "" if absent. */
int tok_jws_verify(struct str token, tok_key_lookup_cb lookup, void *ctx, char *payload, size_t cap,
                   size_t *payload_len, char typ_out[32]);

/* True when header[n] (decoded) is byte for byte one that tok_jws_sign writes, with plain
 * strings: *alg, *typ (STR_NULL if absent) and *kid point into it. A JSON parser reads the
 * same values from it; false means "parse it". Exposed for its tests and fuzz target. */
bool tok_jws_own_header(const char *header, size_t n, struct str *alg, struct str *typ,
                        struct str *kid);

#endif
