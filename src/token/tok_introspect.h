/* SPDX-License-Identifier: MIT */
/*
 * Is a refresh token active (RFC 7662 for refresh tokens)? The same rule a rotation applies,
 * stated for reading: the token is ours (its keyed digest is on record), issued to the
 * asking client, live (not spent), before its idle and absolute expiry, its family not
 * revoked and not expired, and its user's sessions generation unchanged since the family
 * began. So introspection never calls active what a refresh would refuse.
 *
 * Three store reads (record, family, sessions), each completing at once (LMDB) or later on
 * lp's thread (Redis). The caller owns the struct (it may live in a request's arena) and
 * fills the inputs; tok_rt_introspect answers ERR_OK (done: see active / rt), an error
 * (the store failed: the caller must not say "inactive"), or ERR_AGAIN, after which done()
 * runs once on lp's thread with the final code.
 */
#ifndef TOKEN_TOK_INTROSPECT_H
#define TOKEN_TOK_INTROSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"
#include "crypto/cr.h"
#include "store/store.h"

struct loop;
struct tok_rt_introspection;
typedef void (*tok_rt_introspect_cb)(struct tok_rt_introspection *q, int rc);

struct tok_rt_introspection {
    struct store_op _op; /* first */
    /* in */
    struct store *st;
    struct loop *lp;
    char client_id[STORE_CLIENT_MAX + 1];
    int64_t now;
    tok_rt_introspect_cb done;
    /* out (once the answer is ERR_OK) */
    bool active;
    struct store_refresh rt; /* the record, when active */
    /* private */
    int _step;
    struct buf _b;
};

int tok_rt_introspect(struct tok_rt_introspection *q, const uint8_t key[CR_HASH_KEY_LEN],
                      struct str token);

/* Who asks (RFC 7662 §4: the server decides what each client may learn): a client may
 * introspect the tokens issued to it and those whose audience is its client_id (a resource
 * server checking tokens meant for it); any token only with the introspection permission.
 * Others are told {"active":false}, as if the token were unknown. */
struct tok_claims;
struct tok_introspector {
    char id[STORE_CLIENT_MAX + 1];
    bool any;
};
bool tok_may_introspect(const struct tok_introspector *who, const struct tok_claims *cl);

/* The answers (RFC 7662 §2.2) for an access token and for a refresh token: {"active":false}
 * unless active (then cl or rt says the rest). */
int tok_introspection_json(struct buf *b, const char *issuer, bool active,
                           const struct tok_claims *cl);
int tok_rt_introspection_json(struct buf *b, const char *issuer, bool active,
                              const struct store_refresh *rt);

#endif
