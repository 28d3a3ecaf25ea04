/* SPDX-License-Identifier: MIT */
/*
 * Refresh-token rotation (the refresh_token grant, POST /v1/auth/refresh) and the start of a
 * refresh family (a login). The rules are the store's atomic ROTATE (docs/internals/
 * TOKENS.md): a live token of the asking client, within its idle and absolute expiry, its
 * family not revoked and its user's sessions generation unchanged, is spent and its
 * successor stored, in one step; the same token again within the grace window answers the
 * same successor; later, it is reuse, and its family is revoked (with every session of the
 * user when reuse_revokes_all). A narrower scope asked for (RFC 6749 §6) is checked against
 * the family's before anything is written, so a refusal leaves the token unspent.
 *
 * The caller owns the struct (it may live in a request's arena) and fills the inputs; the
 * operation answers ERR_AGAIN and later runs done() once on lp's thread, or answers at once
 * without calling done(). The final code is ERR_OK (see the outputs), ERR_BACKEND (the
 * store failed or did not answer: say 503, never "invalid") or ERR_LIMIT (the write queue
 * is full: 503). Events: token.refreshed, token.reuse_detected, token.revoked.
 */
#ifndef TOKEN_TOK_ROTATE_H
#define TOKEN_TOK_ROTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"
#include "token/tok_refresh.h"
#include "token/tok_scope.h"
#include "token/tok_svc.h"

struct loop;

enum tok_rotate_outcome {
    TOK_ROTATED,        /* successor issued */
    TOK_ROTATED_GRACE,  /* the same successor as a moment ago (a retried request) */
    TOK_ROTATE_INVALID, /* unknown, spent (reuse), expired, revoked, another client's */
    TOK_ROTATE_SCOPE,   /* a scope beyond the family's grant: nothing written */
};

struct tok_rotation;
typedef void (*tok_rotation_cb)(struct tok_rotation *q, int rc);

struct tok_rotation {
    struct store_op _op; /* first */
    /* in */
    const struct tok_svc *svc;
    struct loop *lp;
    struct str token; /* borrowed until the answer */
    char client_id[STORE_CLIENT_MAX + 1];
    char want_scope[TOK_SCOPE_MAX + 1]; /* normalised narrower scope, or "" for the family's */
    char ip[64];                        /* the client's address, for events ("": none) */
    int64_t now;
    tok_rotation_cb done;
    /* out, with ERR_OK */
    enum tok_rotate_outcome outcome;
    bool reused;                   /* the token had been spent: its family is revoked */
    char sub[STORE_SUB_MAX + 1];   /* the family's user (rotated) */
    char scope[TOK_SCOPE_MAX + 1]; /* the new access token's scope (rotated) */
    char successor[TOK_REFRESH_LEN + 1];
    /* private */
    struct store_op _read;
    struct buf _b;
};

int tok_rotate(struct tok_rotation *q);
/* floodgate_refresh_rotations_total{result}: every rotation's outcome so far (any thread). */
int tok_rotate_metrics_text(struct buf *b);

/* Starting a refresh family for `sub` (a login): a fresh token, stored durably as the first
 * of a new family, carrying the user's sessions generation `gen` as read with the checked
 * password (a password change since then ends it). */
struct tok_family;
typedef void (*tok_family_cb)(struct tok_family *q, int rc);

struct tok_family {
    struct store_op _op; /* first */
    /* in */
    const struct tok_svc *svc;
    struct loop *lp;
    char sub[STORE_SUB_MAX + 1];
    char client_id[STORE_CLIENT_MAX + 1];
    char scope[TOK_SCOPE_MAX + 1];
    uint64_t gen;
    int64_t now;
    tok_family_cb done;
    bool preset;                     /* the family id is chosen already (an authorization */
    uint8_t family[STORE_FAMILY_ID]; /* code names it before it starts), else random */
    /* out */
    char token[TOK_REFRESH_LEN + 1];
};

/* Queues the family's first token: ERR_AGAIN (done runs once durable, with ERR_OK or
 * ERR_BACKEND) or ERR_LIMIT (the queue is full; done will not run). */
int tok_family_start(struct tok_family *q);

#endif
