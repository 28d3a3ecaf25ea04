/* SPDX-License-Identifier: MIT */
/*
 * Revocation (RFC 7009, POST /v1/auth/logout): a refresh token's whole family, an access
 * token (by its jti, until it would have expired), or both at once. A refresh token that is
 * unknown, malformed or another client's revokes nothing and is not an error (RFC 7009
 * §2.1-2.2). A revoked access token is published to every thread's verification cache here
 * and, through the store, to every instance. Durable before the answer: the revocations are
 * in the store (group commit) when done() runs.
 *
 * The caller owns the struct (it may live in a request's arena) and fills the inputs;
 * tok_revoke answers ERR_OK (done at once, or nothing to do), ERR_BACKEND (a read or write
 * failed, or the write queue was full: the revocation may not be stored, say 503), or
 * ERR_AGAIN, after which done() runs once on lp's thread with ERR_OK or ERR_BACKEND.
 * Events: token.revoked ("refresh_family", "access").
 */
#ifndef TOKEN_TOK_REVOKE_H
#define TOKEN_TOK_REVOKE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"
#include "token/tok_jwt.h"
#include "token/tok_svc.h"

struct loop;
struct tok_cache;

struct tok_revocation;
typedef void (*tok_revocation_cb)(struct tok_revocation *q, int rc);

struct tok_revocation {
    struct store_op _read; /* the refresh token's record: its family and client */
    /* in */
    const struct tok_svc *svc;
    struct loop *lp;
    struct tok_cache *cache; /* this thread's: the access token leaves it at once */
    struct str refresh;      /* a refresh token to end with its family; {NULL, 0}: none */
    char client_id[STORE_CLIENT_MAX + 1]; /* ... if it is this client's */
    struct str access;                    /* an access token (verified by the caller) ... */
    char jti[TOK_JTI_LEN + 1];            /* ... its jti ("": none) */
    int64_t jti_exp;                      /* ... remembered until then */
    int64_t now;
    tok_revocation_cb done;
    /* out */
    bool family_revoked, access_revoked;
    /* private */
    struct store_op _family, _jti;
    struct buf _b;
    int _pending, _failed;
};

int tok_revoke(struct tok_revocation *q);

/* The access token to revoke, presented as `access`: if it is ours, unexpired and well
 * signed (whether revoked already does not matter), q->access, jti and jti_exp are set for
 * tok_revoke. ERR_OK; ERR_NOTFOUND: not one of ours, or expired (nothing to revoke: not
 * an error, RFC 7009 §2.2); ERR_DENIED: issued to another client than q->client_id, when
 * same_client (RFC 7009 §2.1); ERR_BACKEND: cannot tell now (answer 503, change nothing).
 * Loop thread (t is its own). */
struct tok_local;
int tok_revocation_access(struct tok_revocation *q, struct tok_local *t, struct str access,
                          bool same_client);

/* Ours told apart exactly: a refresh token has no dots, an access token is a JWT. */
bool tok_is_refresh_token(struct str token);

#endif
