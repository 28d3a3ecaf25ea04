/* SPDX-License-Identifier: MIT */
/*
 * What an administrator does to accounts and clients, one way for the admin API (on a
 * worker) and the CLI: blocking store calls, each with its audit event and log line.
 * Passwords are checked by the caller against the policy (auth_password_policy) and wiped
 * here once hashed. svc->lockout may be NULL (the CLI: no table of its own to clear).
 */
#ifndef AUTH_AUTH_ADMIN_H
#define AUTH_AUTH_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_client.h"
#include "auth/auth_svc.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"

/* A new user `name` (normalised) with password pw (hashed with svc->pp) or an imported hash
 * (auth_admin_user_import: ERR_INVAL for a kind we cannot verify, which would lock the user
 * out). ERR_OK (u filled), ERR_CONFLICT (taken), ERR_NOMEM, ERR_BACKEND. */
int auth_admin_user_add(const struct auth_svc *svc, const char *name, struct str pw, int64_t now,
                        const struct auth_user *profile, struct auth_user *u);
int auth_admin_user_import(const struct auth_svc *svc, const char *name, const char *phc,
                           int64_t now, const struct auth_user *profile, struct auth_user *u);
/* auth_user_change, with pw hashed for AUTH_USER_PASSWORD (ignored otherwise). A change that
 * ends the user's sessions says so (user.sessions_revoked); a new password also clears the
 * user's brute-force locks (account.unlocked, "password_changed"). */
int auth_admin_user_change(const struct auth_svc *svc, const char *name, enum auth_user_change what,
                           struct str pw, int64_t now, struct auth_user *u);
/* Clears the user's brute-force locks (auth_unlock_user) and says so (account.unlocked,
 * `how`). */
void auth_admin_unlock(const struct auth_svc *svc, const char *name, const char *how);
/* Pins the adaptive policy's mode (POL_MODES: automatic again) and, if the mode in force
 * changed, says so (policy.mode_changed, `by`, and a log line). */
struct pol_state;
void auth_admin_pin_mode(struct pol_state *pol, int mode, const char *by);
/* A new client (client.created); its secret, shown once, into secret_out. */
int auth_admin_client_create(const struct auth_svc *svc, struct auth_client *c,
                             const struct auth_client_web *w, int64_t now,
                             char secret_out[AUTH_SECRET_LEN + 1]);

/* The kind of a stored hash, for operators tracking a migration (never the hash). */
const char *auth_hash_kind(const char *phc);
/* A user as JSON, without its hash: {"username","id","disabled","created","hash" (kind)}. */
int auth_user_json(struct buf *b, const struct auth_user *u);
/* A client as JSON, without its secret digest; with its lists if w is not NULL; with secret
 * (shown once) if it is neither NULL nor "". */
int auth_client_json(struct buf *b, const struct auth_client *c, const struct auth_client_web *w,
                     const char *secret);
/* Every user (or with clients, every client) as one JSON array; records that cannot be read
 * are skipped rather than hiding the rest. ERR_LIMIT past b's cap. */
int auth_admin_list(struct store *st, bool clients, struct buf *b);
/* Deletes client `id` (its tokens stop working at their next check of the client). */
int auth_admin_client_delete(const struct auth_svc *svc, const char *id);

/* A new client's fields from the admin API's JSON: {"name" (required), "grants", "scopes",
 * "audiences" (each "a b", "a,b" or ["a","b"]; grants default to client_credentials, or to
 * authorization_code and refresh_token with redirect URIs), "access_ttl" (10..86400),
 * "introspection", "first_party" (booleans), "token_endpoint_auth_method" ("none": a public
 * client), "id_token_signed_response_alg", "redirect_uris", "post_logout_redirect_uris",
 * "web_origins" (default: the redirect URIs' origins)}, checked by auth_client_validate.
 * ERR_OK or ERR_INVAL with *why. */
typedef struct json_t json_t;
struct auth_client_web;
int auth_client_from_json(json_t *o, struct auth_client *c, struct auth_client_web *w,
                          const char **why);

#endif
