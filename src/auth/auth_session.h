/* SPDX-License-Identifier: MIT */
/*
 * Browser sessions (single sign-on at the hosted login page): a person who signed in once
 * is not asked again by the next application that sends them to us, until the session
 * ends. The browser holds a random 256-bit token in an HttpOnly cookie; the store holds
 * only its keyed digest, in an expiring record (STORE_T_SSO, on every instance sharing the
 * store) with the user, the time of the sign-in and the user's sessions generation then.
 *
 * A session ends after session_idle unused (each use moves its end, up to) session_ttl
 * after its sign-in, at logout, and when its user's sessions generation moves on (the user
 * disabled, deleted, or given a new password: the same rule that ends refresh families,
 * store.h). A session that cannot be read is no session (the person signs in again); only
 * a failed write is an error.
 *
 * The caller owns the structs (they may live in a request's arena) and fills the inputs;
 * the operations answer ERR_AGAIN (done() runs once later on lp's thread) or a final code
 * at once: ERR_OK, ERR_BACKEND, ERR_LIMIT (the write queue is full).
 */
#ifndef AUTH_AUTH_SESSION_H
#define AUTH_AUTH_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_svc.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"

#define AUTH_SESSION_LEN      43 /* the cookie's value */
#define AUTH_SID_LEN          22 /* a public name for the session (the ID token's sid) */
#define AUTH_SESSION_FAMILIES 16 /* refresh families a session remembers (for logout) */
#define AUTH_SESSION_KEY_HEX  64 /* its record's key, in hex (what a code names) */

struct auth_session {
    char sub[AUTH_USER_ID_LEN + 1];
    char name[AUTH_USERNAME_MAX + 1];
    char sid[AUTH_SID_LEN + 1];
    int64_t auth_time; /* the sign-in */
    uint64_t gen;      /* the user's sessions generation then */
    int64_t expires_at;
    unsigned nfam; /* the refresh families started from it (logout revokes them) */
    uint8_t fam[AUTH_SESSION_FAMILIES][STORE_FAMILY_ID];
};

struct auth_session_start;
typedef void (*auth_session_start_cb)(struct auth_session_start *q, int rc);

struct auth_session_start {
    struct store_op _op; /* first */
    /* in */
    const struct auth_svc *svc;
    struct loop *lp;
    struct auth_session s; /* sub, name, auth_time, gen */
    int64_t now;
    auth_session_start_cb done;
    /* out */
    char token[AUTH_SESSION_LEN + 1]; /* for the cookie */
    char key_hex[AUTH_SESSION_KEY_HEX + 1];
    /* private */
    struct buf _b;
};

/* A new session for q->s, durable before done(); s.sid and s.expires_at are filled. */
int auth_session_start(struct auth_session_start *q);

struct auth_session_find;
typedef void (*auth_session_find_cb)(struct auth_session_find *q, int rc);

struct auth_session_find {
    struct store_op _op; /* first */
    /* in */
    const struct auth_svc *svc;
    struct loop *lp;
    struct str token; /* the cookie's value, borrowed until the answer */
    int64_t now;
    auth_session_find_cb done;
    /* out */
    bool found;
    struct auth_session s;
    char key_hex[AUTH_SESSION_KEY_HEX + 1];
    /* private */
    int _step;
    uint8_t _digest[32];
    struct buf _b, _new;
};

/* Whether token names a live session (found, s); its end moved on if it was used. */
int auth_session_find(struct auth_session_find *q);

/* Remembers that refresh family `family` started from the session whose record key_hex
 * names (a code's redemption), so that its logout ends the family too. A session gone
 * meanwhile is ERR_OK; the family is kept by a compare-and-swap, retried on a race. */
struct auth_session_note;
typedef void (*auth_session_note_cb)(struct auth_session_note *q, int rc);
struct auth_session_note {
    struct store_op _op; /* first */
    const struct auth_svc *svc;
    struct loop *lp;
    char key_hex[AUTH_SESSION_KEY_HEX + 1];
    uint8_t family[STORE_FAMILY_ID];
    int64_t now;
    auth_session_note_cb done;
    /* private */
    int _step, _tries;
    uint8_t _key[32];
    struct buf _b, _new;
};
int auth_session_note_family(struct auth_session_note *q);

/* Logout: the session token names ends, and every refresh family started from it is
 * revoked. ERR_OK whether there was one or not; ERR_BACKEND if a write failed. */
struct auth_session_logout;
typedef void (*auth_session_logout_cb)(struct auth_session_logout *q, int rc);
struct auth_session_logout {
    struct auth_session_find _find; /* first */
    const struct auth_svc *svc;
    struct loop *lp;
    struct str token;
    int64_t now;
    auth_session_logout_cb done;
    /* out */
    bool ended;
    char sub[AUTH_USER_ID_LEN + 1];
    /* private */
    struct auth_session_logout_op {
        struct store_op op;
        struct auth_session_logout *q;
    } _ops[AUTH_SESSION_FAMILIES + 1];
    int _pending, _failed;
};
int auth_session_logout(struct auth_session_logout *q);

/* Ends the session token names (logout). ERR_OK whether it was there or not. Blocking-free:
 * q is a store_op owned by the caller; done runs once (on lp's thread) unless the answer is
 * at once. */
struct auth_session_end {
    struct store_op _op; /* first */
    void (*done)(struct auth_session_end *q, int rc);
};
int auth_session_end(struct auth_session_end *q, const struct auth_svc *svc, struct loop *lp,
                     struct str token, int64_t now);

#endif
