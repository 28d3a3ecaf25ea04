/* SPDX-License-Identifier: MIT */
/*
 * Consent: what a person allowed a third-party client (one not first_party) to have, by
 * scope, remembered per user and client (STORE_T_CONSENTS) so that the consent page is
 * shown again only for a scope not yet allowed, or when the client asks (prompt=consent).
 * An administrator withdraws it (auth_consent_revoke); the next authorization asks again.
 *
 * The caller owns the structs (they may live in a request's arena) and fills the inputs;
 * the operations answer ERR_AGAIN (done() runs once later on lp's thread) or a final code:
 * ERR_OK (check: see granted), ERR_BACKEND (the store failed: 503, never "granted").
 */
#ifndef AUTH_AUTH_CONSENT_H
#define AUTH_AUTH_CONSENT_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_client.h"
#include "auth/auth_svc.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "store/store.h"
#include "token/tok_scope.h"

struct auth_consent;
typedef void (*auth_consent_cb)(struct auth_consent *q, int rc);

struct auth_consent {
    struct store_op _op; /* first */
    /* in */
    const struct auth_svc *svc;
    struct loop *lp;
    char sub[AUTH_USER_ID_LEN + 1];
    char client_id[AUTH_CLIENT_ID_MAX + 1];
    char scope[TOK_SCOPE_MAX + 1]; /* asked (check) or allowed (grant) */
    int64_t now;
    auth_consent_cb done;
    /* out (check) */
    bool granted;
    /* private */
    int _step;
    char _key[AUTH_USER_ID_LEN + AUTH_CLIENT_ID_MAX + 2];
    struct buf _b, _new;
};

/* Whether the user allowed every scope of q->scope to the client before. */
int auth_consent_check(struct auth_consent *q);
/* Remembers q->scope as allowed (added to what was), durable before done(). */
int auth_consent_grant(struct auth_consent *q);
/* Withdraws what the user allowed the client. ERR_OK, ERR_NOTFOUND. Blocks (admin). */
int auth_consent_revoke(const struct auth_svc *svc, const char *sub, const char *client_id);

/* What a scope gives, for the consent page ("" for an unknown one: shown as is). */
const char *auth_scope_description(const char *scope);

#endif
