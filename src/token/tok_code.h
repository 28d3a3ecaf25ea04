/* SPDX-License-Identifier: MIT */
/*
 * Authorization codes (RFC 6749 §4.1, with PKCE, RFC 7636; OpenID Connect Core §3.1): a
 * random 256-bit code, stored only as its keyed digest in an expiring record
 * (STORE_T_CODES) with what it stands for: the client, the redirect URI, the PKCE
 * challenge, the nonce, the user and the scope. One use:
 *
 *   - redeemed by the client it was issued to, with the same redirect URI and the verifier
 *     whose S256 is the challenge, before it expires: the record is marked used by a
 *     compare-and-swap (so two redemptions cannot both succeed), naming the refresh family
 *     and the access token's jti about to be issued; only then does the family start;
 *   - presented again after its use: refused, and what the first use issued is revoked
 *     (the family and the access token; RFC 6749 §4.1.2, RFC 9700 §4.2.4);
 *   - anything else (unknown, expired, another client, another redirect URI, a wrong or
 *     missing verifier): refused, and the code is left as it was.
 *
 * The outcome for every refusal is TOK_CODE_INVALID (invalid_grant): a caller cannot tell
 * a used code from an unknown one. The caller owns the structs (they may live in a
 * request's arena) and fills the inputs; the operations answer ERR_AGAIN (done() runs once
 * on lp's thread with the final code) or a final code at once: ERR_OK (see outcome),
 * ERR_BACKEND (the store failed: say 503, nothing was used), ERR_LIMIT (the write queue is
 * full), ERR_NOMEM.
 */
#ifndef TOKEN_TOK_CODE_H
#define TOKEN_TOK_CODE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"
#include "token/tok_jwt.h"
#include "token/tok_rotate.h"
#include "token/tok_scope.h"
#include "token/tok_svc.h"

#define TOK_CODE_LEN      43  /* 32 random bytes, base64url */
#define TOK_CODE_TTL_S    60  /* the default lifetime of a code */
#define TOK_URI_MAX       512 /* a redirect URI (auth_client_web.h's bound) */
#define TOK_NONCE_MAX     255
#define TOK_CHALLENGE_LEN 43 /* base64url of a SHA-256 */

/* What a code stands for. */
struct tok_code_grant {
    char client_id[STORE_CLIENT_MAX + 1];
    char redirect_uri[TOK_URI_MAX + 1];
    char challenge[TOK_CHALLENGE_LEN + 1]; /* S256 of the verifier */
    char nonce[TOK_NONCE_MAX + 1];         /* "": none */
    char sub[STORE_SUB_MAX + 1];
    char scope[TOK_SCOPE_MAX + 1];
    int64_t auth_time; /* when the user authenticated */
    char sid[32];      /* the browser session ("": none), for the ID token */
    char session[65];  /* its record's key (hex): its logout ends what the code starts */
    uint64_t gen;      /* the user's sessions generation then (the refresh family's) */
    int64_t expires_at;
    /* once used */
    bool used;
    bool has_family;
    uint8_t family[STORE_FAMILY_ID];
    char jti[TOK_JTI_LEN + 1];
    int64_t jti_exp;
};

/* Whether `v` is a PKCE verifier (43-128 of A-Z a-z 0-9 - . _ ~) whose S256 is
 * `challenge`; compared in constant time. */
bool tok_pkce_ok(struct str verifier, const char *challenge);
/* Whether `c` is a well-formed S256 challenge (43 base64url characters). */
bool tok_pkce_challenge_ok(struct str c);

struct tok_code_issue;
typedef void (*tok_code_issue_cb)(struct tok_code_issue *q, int rc);

struct tok_code_issue {
    struct store_op _op; /* first */
    /* in */
    const struct tok_svc *svc;
    struct loop *lp;
    struct tok_code_grant grant; /* (expires_at: now + TOK_CODE_TTL_S if 0) */
    int64_t now;
    tok_code_issue_cb done;
    /* out */
    char code[TOK_CODE_LEN + 1];
    /* private */
    struct buf _b;
};

/* Stores a new code for q->grant, durable before done(). */
int tok_code_issue(struct tok_code_issue *q);

enum tok_code_outcome { TOK_CODE_OK, TOK_CODE_INVALID };

struct tok_code_redemption;
typedef void (*tok_code_redemption_cb)(struct tok_code_redemption *q, int rc);

struct tok_code_redemption {
    struct store_op _op; /* first */
    /* in */
    const struct tok_svc *svc;
    struct loop *lp;
    struct tok_cache *cache; /* this thread's: a revoked access token leaves it at once */
    struct str code, redirect_uri, verifier; /* borrowed until the answer */
    char client_id[STORE_CLIENT_MAX + 1];
    bool refresh;      /* start a refresh family for the grant... */
    bool offline_only; /* ... only if its scope has offline_access */
    int64_t now;
    tok_code_redemption_cb done;
    /* out (outcome TOK_CODE_OK) */
    enum tok_code_outcome outcome;
    struct tok_code_grant grant;             /* with jti: the access token's to issue */
    char refresh_token[TOK_REFRESH_LEN + 1]; /* "" unless refresh */
    /* private */
    int _step, _pending, _failed;
    uint8_t _digest[CR_HASH_LEN];
    struct buf _b, _new;
    struct tok_family _fam;
    struct store_op _jti_op;
};

int tok_code_redeem(struct tok_code_redemption *q);

/* A grant as the record's JSON payload, and back (ERR_INVAL if malformed; expires_at is the
 * record's wrapper's, not the JSON's: 0 after parsing). */
int tok_code_grant_json(const struct tok_code_grant *g, struct buf *b);
int tok_code_grant_parse(const char *json, size_t n, struct tok_code_grant *g);

#endif
