/* SPDX-License-Identifier: MIT */
/*
 * One administrator's action as a value: what the admin API queues on the worker pool (a
 * request filled on the loop thread, run on a worker, answered from its result). The
 * work is auth_admin.h's, policy's announced events and token's key rotation; this is the
 * one place that says which action does what, and what it answers.
 */
#ifndef AUTH_AUTH_ADMIN_OP_H
#define AUTH_AUTH_ADMIN_OP_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_client.h"
#include "auth/auth_client_web.h"
#include "auth/auth_svc.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/str.h"
#include "policy/pol_announce.h"

enum auth_admin_action {
    AUTH_ADMIN_USER_ADD,    /* name, secret: a password (checked against the policy) */
    AUTH_ADMIN_USER_IMPORT, /* name, secret: a PHC hash */
    AUTH_ADMIN_USER_PASSWD, /* name, secret */
    AUTH_ADMIN_USER_DISABLE,
    AUTH_ADMIN_USER_ENABLE,
    AUTH_ADMIN_USER_DELETE,
    AUTH_ADMIN_USER_UNLOCK,
    AUTH_ADMIN_CONSENT_REVOKE, /* name (the user), client_id */
    AUTH_ADMIN_CLIENT_ADD,     /* client */
    AUTH_ADMIN_CLIENT_SECRET,
    AUTH_ADMIN_CLIENT_DELETE,
    AUTH_ADMIN_KEY_ROTATE,
    AUTH_ADMIN_EVENT_ADD, /* event */
    AUTH_ADMIN_EVENT_DELETE,
    AUTH_ADMIN_LIST_USERS, /* into list */
    AUTH_ADMIN_LIST_CLIENTS,
    AUTH_ADMIN_LIST_EVENTS,
};

struct auth_admin_op {
    enum auth_admin_action action;
    char name[AUTH_USERNAME_MAX + 1];       /* a user name (normalised), a client or event id */
    struct str secret;                      /* a password or an imported hash, wiped once used */
    char client_id[AUTH_CLIENT_ID_MAX + 1]; /* AUTH_ADMIN_CONSENT_REVOKE */
    struct auth_user profile;               /* AUTH_ADMIN_USER_ADD, _IMPORT: email, display */
    struct auth_client client;
    struct auth_client_web web; /* AUTH_ADMIN_CLIENT_ADD: its browser-facing lists */
    struct {
        char name[POL_ANNOUNCE_NAME_MAX + 1];
        int64_t at, duration;
        double expect;
    } event;
    /* the result */
    int rc;         /* ERR_OK, ERR_INVAL (see auth_admin_op_why), ERR_NOTFOUND, ERR_CONFLICT, ... */
    bool created;   /* something new was made (for the answer's status) */
    struct buf out; /* the answer's JSON object (it may hold a secret: wiped and freed by
                     * auth_admin_op_fini) */
    struct buf list; /* the lists' JSON array (the caller frees it) */
};

/* Runs `op` (blocking: hashing, the store's writes). On a worker, or in the CLI. */
void auth_admin_op_run(const struct auth_svc *svc, struct auth_admin_op *op, int64_t now);

/* Wipes and frees the answer. */
void auth_admin_op_fini(struct auth_admin_op *op);

/* What was wrong with an ERR_INVAL or ERR_LIMIT result, for the answer; NULL for others. */
const char *auth_admin_op_why(const struct auth_admin_op *op);

#endif
