/* SPDX-License-Identifier: MIT */
/*
 * Client authentication (RFC 6749 §2.3.1): is this client_id / client_secret pair one of
 * our clients? The same work whether the client exists or not: an unknown id still costs
 * one keyed digest and one constant-time compare, so ids cannot be probed by timing. The
 * thread's client cache answers for a client read since the store generation last moved;
 * a cached record that refuses the secret is read again first (a secret rotated a moment
 * ago works at once), without blocking the loop: at once on the embedded store, later on
 * lp's thread on Redis.
 *
 * A public client (c.public_client: a single-page or native app) is identified by its id
 * alone, presented without a secret; the caller decides what it may do (the grants it is
 * registered for, no introspection).
 *
 * The caller owns the struct (it may live in a request's arena): auth_client_check answers
 * ERR_OK (c is the client), ERR_DENIED (no such client, or not this secret: one answer),
 * ERR_BACKEND (the store failed: say 503, never "denied"), or ERR_AGAIN, after which done()
 * runs once on lp's thread with one of the others.
 */
#ifndef AUTH_AUTH_CLIENT_AUTH_H
#define AUTH_AUTH_CLIENT_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_client.h"
#include "auth/auth_svc.h"
#include "core/buf.h"
#include "core/str.h"
#include "crypto/cr.h"
#include "store/store.h"

struct loop;
struct auth_client_check;
typedef void (*auth_client_check_cb)(struct auth_client_check *q, int rc);

struct auth_client_check {
    struct store_op _op; /* first */
    /* in */
    const struct auth_svc *svc;
    struct loop *lp;
    struct auth_client_cache *cache; /* the thread's */
    uint64_t gen;                    /* the store generation the cache is valid for */
    struct str id, secret;           /* borrowed until the answer */
    auth_client_check_cb done;
    /* out */
    struct auth_client c;
    const char *reason; /* ERR_DENIED: why, for the log (static; the client is never told) */
    /* private */
    uint8_t _digest[CR_HASH_LEN];
    bool _has_secret;
    struct buf _b;
};

int auth_client_check(struct auth_client_check *q);

#endif
