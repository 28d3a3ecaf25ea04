/* SPDX-License-Identifier: MIT */
/*
 * Password login (POST /v1/auth/login, the password grant, the hosted login form): the
 * brute-force guard, the hash, the rehash and a new refresh family, as one operation.
 *
 *   1. On the loop thread: the lockout reserves an attempt for the username as typed and
 *      the client's address (pol_lockout.h); a locked key fails at once, without a hash;
 *      keys full of attempts in flight are "busy" (the password is never called wrong).
 *   2. On a worker: the user's record, the shared guard (a store shared by instances
 *      counts attempts and login rates exactly, across them), and the hash: against the
 *      record, or against a dummy for an unknown user (the same work, the same answer), an
 *      outdated hash upgraded while the password is at hand.
 *   3. Back on the loop thread: the attempt is settled, events are published, and on
 *      success a refresh family starts; its write and the rehash go into the same group
 *      commit, and the answer waits for both.
 *
 * A wrong password, an unknown user, a disabled user and a locked key are the same
 * outcome (AUTH_LOGIN_FAILED); only the audit events say which. The caller owns the struct
 * (it may live in a request's arena) and fills the inputs; auth_login answers ERR_AGAIN
 * (done() runs once later on lp's thread) or an answer at once (done() does not run).
 * Final codes: ERR_OK (see outcome), ERR_LIMIT (the hash would wait past hash_deadline or
 * the queue is full: retry_ms says when to come back), ERR_AGAIN (cancelled by shutdown),
 * ERR_BACKEND (the store failed). The password's bytes are wiped once hashed.
 */
#ifndef AUTH_AUTH_LOGIN_H
#define AUTH_AUTH_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_svc.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/str.h"
#include "loop/pool.h"
#include "policy/pol_gcra.h"
#include "policy/pol_lockout.h"
#include "store/store.h"
#include "token/tok_rotate.h"

struct loop;

enum auth_login_outcome {
    AUTH_LOGIN_OK,      /* sub (and refresh) set */
    AUTH_LOGIN_FAILED,  /* the one answer for every failure that checked or locked */
    AUTH_LOGIN_BUSY,    /* other attempts in flight fill a limit: come back in retry_ms */
    AUTH_LOGIN_LIMITED, /* the shared guard's login rate: come back in retry_ms */
};

struct auth_login;
typedef void (*auth_login_cb)(struct auth_login *q, int rc);

struct auth_login {
    struct pool_job _pj; /* first: the pool hands back this pointer */
    /* in */
    const struct auth_svc *svc;
    struct loop *lp;
    struct str user, pw; /* borrowed until the answer; pw's bytes are wiped */
    char ip[64];         /* the client's address (events) */
    char ip_key[64];     /* the key per-IP rules count it under (pol_ip_key) */
    char client_id[STORE_CLIENT_MAX + 1];
    char scope[TOK_SCOPE_MAX + 1];       /* of the refresh family */
    bool refresh;                        /* start a refresh family on success */
    struct pol_gcra_rule rl_ip, rl_user; /* login rate rules in force (the shared guard) */
    int64_t now;
    auth_login_cb done;
    /* out */
    enum auth_login_outcome outcome;
    char sub[AUTH_USER_ID_LEN + 1];
    char name[AUTH_USERNAME_MAX + 1]; /* the username, normalised */
    uint64_t gen; /* the user's sessions generation, read with the password checked */
    char refresh_token[TOK_REFRESH_LEN + 1];
    uint64_t retry_ms;
    /* private */
    struct pol_attempt _att;
    struct store_guard _guard;
    struct tok_family _fam;
    struct store_op _op_user;
    char _name[AUTH_USERNAME_MAX + 1];
    bool _lookup, _found, _ok, _rehash;
    int _store_rc, _refused, _pending, _failed;
    unsigned _shared_locked;
    struct auth_user _u;
    char _orig[AUTH_PHC_MAX + 512]; /* the record as read: the rehash replaces only it */
    size_t _orig_len;
    char _newphc[AUTH_PHC_MAX];
    struct buf _rec;
};

int auth_login(struct auth_login *q);

/* The key the lockout and the per-user rate limit count a login under: the normalised
 * username (also written to name), or for a name that cannot exist its first 128 bytes as
 * typed (name is then ""). */
struct str auth_login_key(struct str user, char name[AUTH_USERNAME_MAX + 1]);

/* Clears a username's brute-force locks here and, on a shared store, on every instance.
 * May block for a store round trip (admin actions, off the loop threads). */
void auth_unlock_user(const struct auth_svc *svc, const char *name);

#endif
