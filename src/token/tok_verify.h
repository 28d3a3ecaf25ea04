/* SPDX-License-Identifier: MIT */
/*
 * Is an access token active? For introspection (RFC 7662) and the gateways' verify: ours
 * (our issuer, a key we publish, a good signature), within its times (with leeway), and not
 * revoked. The thread's cache answers for a token it has checked since the last revocation
 * it heard of; otherwise the signature is checked and the revoked list asked (a store
 * read: at once on the embedded store, later on lp's thread on Redis).
 *
 * Fails closed: when the revoked list cannot be read, a revocation this process knows of
 * still refuses the token, and otherwise the answer is ERR_BACKEND (say 503, never
 * "inactive" nor "active"), unless the operator chose signature-only answers within
 * stale_ms (tok_svc.stale_unchecked). A shared store silent for longer than stale_ms: every
 * answer is ERR_BACKEND.
 *
 * The caller owns the struct (it may live in a request's arena): tok_verify answers
 * ERR_OK (active: cl), ERR_INVAL (not), ERR_BACKEND, or ERR_AGAIN, after which done() runs
 * once on the thread with one of the others.
 */
#ifndef TOKEN_TOK_VERIFY_H
#define TOKEN_TOK_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"
#include "token/tok_jwt.h"
#include "token/tok_local.h"

struct tok_verification;
typedef void (*tok_verification_cb)(struct tok_verification *q, int rc);

struct tok_verification {
    struct store_op _op; /* first */
    /* in */
    struct tok_local *t;
    struct str token; /* borrowed until the answer */
    int64_t now;
    tok_verification_cb done;
    /* out */
    struct tok_claims cl;
    /* private */
    uint64_t _epoch, _seq;
    int _store_up;
    bool _need_keys, _reloaded;     /* the ring must be read first; it was, once */
    struct tok_verification *_next; /* among those waiting for the ring */
    struct buf _b;
};

int tok_verify(struct tok_verification *q);
/* tok_verify in two steps, for a caller that keeps q on its stack until it knows it must
 * wait: start answers from the cache or the signature, or ERR_AGAIN: then q is moved where
 * it can wait (a copy is fine) and finish asks the revoked list (q->cl is filled), or first
 * has the key ring read on the worker pool (a key rotated in by another instance within the
 * last second), answering as tok_verify does. */
int tok_verify_start(struct tok_verification *q);
int tok_verify_finish(struct tok_verification *q);

/* The signature and times only, without asking the revoked list: for revoking a token
 * (revoking one again is harmless, and not asking costs no round trip). ERR_OK (cl filled),
 * ERR_INVAL, or ERR_BACKEND past stale_ms or when the key ring must be read first (a
 * moment: the caller answers 503 and changes nothing, never "not ours"). */
int tok_verify_signed(struct tok_local *t, struct str token, int64_t now, struct tok_claims *cl);

#endif
