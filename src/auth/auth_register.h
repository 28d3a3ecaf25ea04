/* SPDX-License-Identifier: MIT */
/*
 * Open registration (POST /v1/users): a username (normalised: 1-64 of a-z 0-9 . _ - @ +,
 * case-insensitive) and a password (the length and deny-list policy, NIST SP 800-63B), hashed
 * on the worker pool and stored as a new user. A taken name is found before any hash is
 * spent, and the insert re-checks it atomically. event: user.registered.
 *
 * The caller owns the struct (it may live in a request's arena): auth_register answers
 * ERR_INVAL at once (bad says which field, why says why, for the client), ERR_LIMIT (the
 * hash would wait past hash_deadline or the queue is full: retry_ms), or ERR_AGAIN, after
 * which done() runs once on lp's thread with ERR_OK (user), ERR_CONFLICT (the name is
 * taken), ERR_AGAIN (cancelled by shutdown), ERR_NOMEM or ERR_BACKEND.
 */
#ifndef AUTH_AUTH_REGISTER_H
#define AUTH_AUTH_REGISTER_H

#include <stdint.h>

#include "auth/auth_svc.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/str.h"
#include "loop/pool.h"
#include "store/store.h"

struct loop;
struct auth_registration;
typedef void (*auth_registration_cb)(struct auth_registration *q, int rc);

struct auth_registration {
    struct pool_job _pj; /* first */
    /* in */
    const struct auth_svc *svc;
    struct loop *lp;
    struct str user, pw;         /* borrowed until the answer; pw's bytes are wiped */
    const char *email, *display; /* the profile (NULL: none), checked by auth_user_profile */
    char ip[64];                 /* the client's address (events) */
    int64_t now;
    auth_registration_cb done;
    /* out */
    struct auth_user u; /* name and id, once registered */
    const char *bad;    /* ERR_INVAL: "invalid_username" or "invalid_password" */
    const char *why;    /* ERR_INVAL: static text for the client */
    uint64_t retry_ms;  /* ERR_LIMIT */
    /* private */
    struct store_op _op;
    struct buf _rec;
    int _rc, _taken;
};

int auth_register(struct auth_registration *q);

#endif
