/* SPDX-License-Identifier: MIT */
/*
 * Issuing an access token: its lifetime (the client's or the default, longer under load by
 * the policy's factor up to a cap, never shortened by it, then cut by a random jitter of up
 * to jitter_s so that a crowd logged in together does not refresh together; at least 10 s),
 * its audience (RFC 9068 §2.2: the request's, else the client's default, else
 * default_aud), the signed JWT, and the token endpoint's JSON answer (RFC 6749 §5.1) with
 * the refresh token, the scope and the ID token when there are. event: token.issued. Any
 * thread.
 */
#ifndef TOKEN_TOK_ISSUE_H
#define TOKEN_TOK_ISSUE_H

#include <stdint.h>

#include "core/buf.h"
#include "token/tok_jwt.h"
#include "token/tok_keys.h"

struct tok_issue {
    int64_t ttl_s;           /* the lifetime asked for */
    int64_t factor;          /* the policy's factor now (1: none) */
    int64_t ttl_max_s;       /* ... up to this */
    int64_t jitter_s;        /* up to this much shorter, at random (0: none) */
    const char *default_aud; /* aud when cl has none */
    const char *refresh;     /* a refresh token for the answer, or NULL */
    const struct tok_id *id; /* with an ID token (OpenID Connect), or NULL */
    enum tok_alg alg;        /* the access token's signature */
};

/* The lifetime an access token gets (see above). */
int64_t tok_issue_ttl(const struct tok_issue *o);

/* Signs cl (jti, times and a missing aud filled) with the ring's current key and writes the
 * JSON answer into body. ERR_OK, or the error (no signing key, no room). */
int tok_issue_answer(const struct tok_ring *ring, const char *issuer, int64_t now,
                     struct tok_claims *cl, const struct tok_issue *o, struct buf *body);

#endif
