/* SPDX-License-Identifier: MIT */
/*
 * Users: a stable random id (the token subject, so a rename never re-points tokens), a
 * normalised username (the store key), a password hash, and flags.
 *
 * Username rule (documented in README): ASCII only; letters are lower-cased; allowed are
 * a-z 0-9 and . _ - @ +; 1 to 64 bytes after normalisation. So "Ann" and "ann" are one user,
 * and no two spellings (Unicode confusables, case) can name the same account.
 * Password policy, NIST SP 800-63B §5.1.1.2: 8 to 1024 bytes, any characters, no
 * composition rules, and not in the optional deny list. Any thread.
 */
#ifndef AUTH_AUTH_USER_H
#define AUTH_AUTH_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_password.h"
#include "core/str.h"
#include "store/store.h"

struct buf;
struct store;

#define AUTH_USERNAME_MAX 64
#define AUTH_USER_ID_LEN  22
#define AUTH_EMAIL_MAX    254
#define AUTH_DISPLAY_MAX  128

struct auth_user {
    char name[AUTH_USERNAME_MAX + 1];
    char id[AUTH_USER_ID_LEN + 1];
    char phc[AUTH_PHC_MAX];
    bool disabled;
    int64_t created_at;
    int64_t password_changed_at;
    uint64_t sessions; /* sessions generation: moves when every session ends (store.h) */
    /* a profile, for OpenID Connect's UserInfo (optional; "" when unset) */
    char email[AUTH_EMAIL_MAX + 1];
    bool email_verified;
    char display[AUTH_DISPLAY_MAX + 1]; /* the person's name ("name") */
};

/* The profile's fields from a request (registration, the admin API, the CLI): an email of
 * 3-254 characters with one '@' and no spaces or control characters; a name of 1-128
 * printable characters. ERR_OK (absent ones left as they are) or ERR_INVAL with *why. */
int auth_user_profile(struct auth_user *u, const char *email, const char *display,
                      const char **why);

/* The index from a user's id (the tokens' sub) to the username, for UserInfo: written after
 * the user, removed with it; a reader checks the user's id (an index entry left by a crash
 * in between names no one). Blocks (admin, CLI, start-up). */
int auth_user_index(struct store *st, const struct auth_user *u, bool remove);
/* The user whose id is sub (UserInfo), without blocking: the index, then the record, whose
 * id must be sub (an index entry a crash left names no one). The caller owns the struct and
 * fills the inputs; ERR_AGAIN (done() runs once later on lp's thread), or at once: ERR_OK
 * (found says), ERR_BACKEND. */
struct auth_user_lookup;
typedef void (*auth_user_lookup_cb)(struct auth_user_lookup *q, int rc);
struct auth_user_lookup {
    struct store_op _op; /* first */
    struct store *st;
    struct loop *lp;
    char sub[AUTH_USER_ID_LEN + 1];
    auth_user_lookup_cb done;
    /* out */
    bool found; /* and enabled */
    struct auth_user u;
    /* private */
    int _step;
    char _name[AUTH_USERNAME_MAX + 1];
    struct buf _buf;
};
int auth_user_lookup(struct auth_user_lookup *q);

/* Start-up: entries for users that have none (stores from before the index). Reads the
 * users first, then writes their entries in groups (a pass holds at most 32 MiB of them;
 * more take another pass): bounded memory, a commit per few thousand users, and the store's
 * file grows by what the entries need. Blocks (start-up). */
int auth_user_index_backfill(struct store *st, unsigned *added);
#ifdef FG_TESTING
/* The most bytes of (id, name) pairs one pass of the backfill holds (0: the default). */
void auth_user_backfill_pass(size_t bytes);
#endif

/* Normalises per the rule above into out[AUTH_USERNAME_MAX + 1]. ERR_INVAL if not allowed. */
int auth_username_normalize(struct str in, char *out);

/* A loaded deny list: one password per line, compared exactly. */
struct auth_denylist;
int auth_denylist_load(const char *path, struct auth_denylist **out, char *err, size_t cap);
void auth_denylist_free(struct auth_denylist *d);
/* ERR_OK, or ERR_INVAL with a reason for the client in *why (static text). */
int auth_password_policy(struct str pw, const struct auth_denylist *d, const char **why);

int auth_user_encode(const struct auth_user *u, struct buf *out);
int auth_user_decode(const char *name, size_t nlen, const char *json, size_t n,
                     struct auth_user *u);
/* Reads user `name` (already normalised). ERR_NOTFOUND, ERR_BACKEND. */
int auth_user_get(struct store *st, const char *name, struct auth_user *u);
/* auth_user_get, and the record's bytes as stored into raw (for a compare-and-swap). */
int auth_user_get_raw(struct store *st, const char *name, struct auth_user *u, struct buf *raw);

/* What an administrator does to an account. Disabling, deleting and setting a password end
 * every session of the user: in the same atomic write as the record, the user's sessions
 * generation moves, and from then on no refresh token of a family that began before it can
 * be rotated, on any instance (store.h, "Sessions"). Enabling does not bring them back. */
enum auth_user_change { AUTH_USER_DISABLE, AUTH_USER_ENABLE, AUTH_USER_PASSWORD, AUTH_USER_DELETE };

/* Applies `what` to user `name` (phc: the new hash, for AUTH_USER_PASSWORD) as a
 * compare-and-swap of its record, retried if another writer changed it in between, so
 * neither change is lost. u gets the record as written (as it was, for a delete).
 * ERR_OK, ERR_NOTFOUND, ERR_BACKEND, ERR_CONFLICT (lost the race too often). Blocks on the
 * store: a worker or the CLI. */
int auth_user_change(struct store *st, const char *name, enum auth_user_change what,
                     const char *phc, int64_t now, struct auth_user *u);
/* 1 if `what` ends every session of the user. */
bool auth_user_change_ends_sessions(enum auth_user_change what);

/* Writes u under its name: a new user (ERR_CONFLICT if the name is taken) or, with
 * `replace`, an existing one (ERR_NOTFOUND if gone). Blocks on the store's write. */
int auth_user_put(struct store *st, const struct auth_user *u, bool replace);
/* Prepares u's record as an asynchronous write (store_submit): op (zeroed first) gets the
 * kind, the users table, the name as key, on_done, and the value encoded into rec, which
 * must live until on_done. ERR_OK, or the encoding's error. */
int auth_user_op(struct store_op *op, enum store_op_kind kind, const struct auth_user *u,
                 struct buf *rec, void (*on_done)(struct store_op *op));
/* Fills id and times for a new user with hash `phc`. */
void auth_user_init(struct auth_user *u, const char *name, const char *phc, int64_t now);

#endif
