/* SPDX-License-Identifier: MIT */
/*
 * Access tokens: JWTs in the RFC 9068 profile (typ "at+jwt"; iss, sub, aud, exp, iat, jti,
 * client_id, scope), signed by the ring's current key, and their verification: signature by
 * kid, typ, iss, exp/nbf/iat with a leeway, then the claims the caller needs. Any thread.
 */
#ifndef TOKEN_TOK_JWT_H
#define TOKEN_TOK_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "token/tok_keys.h"

struct buf;

#define TOK_JTI_LEN 22 /* 128 random bits, base64url */

struct tok_claims {
    char sub[129];
    char client_id[129];
    char scope[1025];
    char aud[257]; /* first audience */
    char jti[TOK_JTI_LEN + 1];
    int64_t iat;
    int64_t exp;
};

/* What an ID token says beyond its access token's claims (OpenID Connect Core §2), and how
 * it is signed. */
struct tok_id {
    enum tok_alg alg;  /* its client's, else the server's id_token_signing_alg */
    const char *nonce; /* the authorization request's; NULL or "": none */
    int64_t auth_time; /* when the user authenticated */
    const char *sid;   /* the browser session; NULL: none */
};

/* Issues an ID token for the user cl->sub and the client cl->client_id (its aud and azp),
 * signed by the ring's signer for id->alg, with at_hash of `access_token` (the left half of its
 * SHA-256 for RS256 and ES256, of its SHA-512 for EdDSA); appends it to out. */
int tok_id_token_issue(const struct tok_ring *r, const char *issuer, int64_t now, int64_t ttl,
                       const struct tok_claims *cl, const struct tok_id *id,
                       struct str access_token, struct buf *out);

/* An ID token we issued, presented back as logout's id_token_hint (OpenID Connect
 * RP-Initiated Logout §2): our signature and issuer, typ JWT; its expiry does not matter
 * (a hint may be old). sub, aud (the client) and sid ("" if none) are copied out.
 * ERR_OK, ERR_INVAL, or ERR_NOTFOUND (a key this thread does not hold: refuse). */
int tok_id_token_hint(const struct tok_ring *r, const char *issuer, int64_t now, struct str token,
                      char sub[128 + 1], char aud[128 + 1], char sid[32]);

/* Issues an access token for `c` (jti is generated unless set, iat = now, exp = now + ttl) signed
 * by the ring's signer for `alg`; appends it to out. ERR_NOTFOUND if no key is active. */
int tok_jwt_issue(const struct tok_ring *r, enum tok_alg alg, const char *issuer, int64_t now,
                  int64_t ttl, struct tok_claims *c, struct buf *out);

/* Tokens claiming to expire further ahead than this are refused: we never issue one (the
 * longest access_ttl, with every policy factor, is far shorter). */
#define TOK_EXP_HORIZON_S (400 * 86400)

/* An access token's claims as read from its payload: views into the payload (or into
 * jansson's tree), before any check. A view's p is NULL when the claim is absent. */
struct tok_claim_views {
    struct str iss, sub, aud, jti, client_id, scope;
    int64_t exp, iat, nbf;
    bool has_nbf;
};

/* True when payload[0..n) is byte for byte a claims object as tok_jwt_issue writes it:
 * {"iss":..,"sub":..[,"aud":..],"exp":..,"iat":..,"jti":..,"client_id":..[,"scope":..]}
 * with strings of printable ASCII other than '"' and '\\' (so the bytes are the value) and
 * times of 1 to 18 digits without a leading zero; then v holds what jansson would read. Any
 * other payload is false, and goes to jansson (fuzz_jwt holds the two to the same answers):
 * about 39,000 instructions of jansson saved on every verification-cache miss. */
bool tok_jwt_own_claims(const char *payload, size_t n, struct tok_claim_views *v);

/* Verifies `token` at `now` for `issuer`, filling c. exp is exact (valid while now < exp);
 * leeway seconds are allowed on nbf and iat (another clock's skew).
 * ERR_INVAL for anything not valid, ERR_NOTFOUND for a kid the ring does not hold, ERR_LIMIT
 * for an oversized token. */
int tok_jwt_verify(const struct tok_ring *r, const char *issuer, int64_t now, int64_t leeway,
                   struct str token, struct tok_claims *c);

#endif
