/* SPDX-License-Identifier: MIT */
/*
 * CORS (a browser app on another origin calling the token endpoint, UserInfo, revocation or
 * the JSON API): which origins may read our answers. For the OAuth endpoints, the web
 * origins the clients registered (auth_client_web.h: by default their redirect URIs'
 * origins); for the JSON API, the operator's list (cors_origins). The clients' set is read
 * from the store at start and again whenever clients change (the store generation), on the
 * main thread; any thread asks. Never "*": these answers carry tokens.
 */
#ifndef AUTH_AUTH_ORIGINS_H
#define AUTH_AUTH_ORIGINS_H

#include <stdbool.h>

#include "core/str.h"

struct store;

enum auth_origins_kind { AUTH_ORIGINS_CLIENTS, AUTH_ORIGINS_API };

/* The clients' origins, read again (blocking: the main thread). ERR_OK or the store's
 * error (the set in force stays). */
int auth_origins_reload(struct store *st);
/* The operator's list for the JSON API: origins separated by commas or spaces, each
 * scheme://host[:port]. ERR_OK or ERR_INVAL with *why. Main thread, before the loops. */
int auth_origins_configure(const char *list, const char **why);
bool auth_origins_allowed(enum auth_origins_kind kind, struct str origin);
void auth_origins_free(void);

#endif
