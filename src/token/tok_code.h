/* SPDX-License-Identifier: MIT */
/*
 * Authorization codes (RFC 6749 §4.1, with PKCE, RFC 7636; OpenID Connect Core §3.1). A code
 * carries what it stands for (the client, a digest of the redirect URI, the PKCE challenge,
 * the nonce, the user, the scope, the session), sealed under a key derived from the server
 * key (XChaCha20-Poly1305: nobody can read it or make one), so issuing one writes nothing:
 * the redirect that answers a signed-in browser costs no store write and no fsync, and a
 * code outlives a crash of the server that issued it (any instance with the server key
 * redeems it). Its one use is what is stored:
 *
 *   - redeemed by the client it was issued to, with the same redirect URI and the verifier
 *     whose S256 is the challenge, before it expires: the refresh family starts (if one is
 *     asked), then a record of the use is created under the code's keyed digest
 *     (STORE_T_CODES, until the code expires), naming the family and the access token's jti
 *     about to be issued; a create that finds the record already there means another use
 *     came first;
 *   - presented again (its use recorded): refused, and what the first use issued is revoked
 *     (the family and the access token; RFC 6749 §4.1.2, RFC 9700 §4.2.4), and the family
 *     this presentation started too;
 *   - anything else (not ours, expired, another client, another redirect URI, a wrong or
 *     missing verifier): refused, and the code is left as it was (unless it was used: then
 *     as above).
 *
 * The outcome for every refusal is TOK_CODE_INVALID (invalid_grant): a caller cannot tell
 * a used code from an unknown one. The caller owns the structs (they may live in a
 * request's arena) and fills the inputs; tok_code_redeem answers ERR_AGAIN (done() runs
 * once on lp's thread with the final code) or a final code at once: ERR_OK (see outcome),
 * ERR_BACKEND (the store failed: say 503; a use is recorded only by its last write, so a
 * code whose redemption failed can be redeemed again), ERR_LIMIT (the write queue is full),
 * ERR_NOMEM.
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

#define TOK_CODE_MAX      2300 /* the longest code: sealed, base64url (most are ~350) */
#define TOK_CODE_TTL_S    60   /* the default lifetime of a code */
#define TOK_URI_MAX       512  /* a redirect URI (auth_client_web.h's bound) */
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
    /* once redeemed (redirect_uri is not in the code, only its digest: "" then) */
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

/* Seals g into a new code (g->expires_at: now + TOK_CODE_TTL_S if 0). ERR_OK, or ERR_INVAL
 * for a grant no code can carry (a challenge that is not S256's, a session key not hex).
 * Writes nothing: see above. Any thread. */
int tok_code_issue(const struct tok_svc *svc, struct tok_code_grant *g, int64_t now,
                   char code[TOK_CODE_MAX + 1]);

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
    bool _started; /* this presentation's family started */
    uint8_t _own[STORE_FAMILY_ID];
    struct buf _b, _new;
    struct tok_family _fam;
    struct store_op _jti_op, _own_op;
};

int tok_code_redeem(struct tok_code_redemption *q);

/* What a code carries, and back (for tests and the fuzzer): the grant's bytes, and the grant
 * from them (ERR_INVAL if they are not a grant; redirect_uri comes back as its digest). */
#define TOK_GRANT_MAX (TOK_CODE_MAX * 3 / 4)
int tok_code_grant_pack(const struct tok_code_grant *g, uint8_t *out, size_t cap, size_t *n);
int tok_code_grant_unpack(const uint8_t *p, size_t n, struct tok_code_grant *g,
                          uint8_t redirect_digest[16]);

#endif
