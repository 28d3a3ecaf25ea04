/* SPDX-License-Identifier: MIT */
/*
 * What a client that logs people in through a browser registers beyond struct auth_client:
 * its redirect URIs, the URIs it may be sent back to after logout, and the web origins its
 * pages call us from (CORS). Kept apart from struct auth_client, which the token endpoint's
 * hot path copies into every thread's cache: these lists are kilobytes and only the
 * authorization endpoint, logout and CORS read them. They live in the same store record
 * (the client's JSON), so a client is still one record, written at once.
 *
 * Redirect URIs are compared as exact strings (RFC 9700 §4.1.3: no patterns, no
 * wildcards), with one exception RFC 8252 §7.3 requires: a native app's loopback URI
 * (http://127.0.0.1 or http://[::1]) matches on any port. What may be registered:
 * https://..., http:// only on a loopback host (127.0.0.1, [::1], localhost), or a native
 * app's private-use scheme with a dot in it (com.example.app:/callback, RFC 8252 §7.1);
 * never a fragment, whitespace, quotes, angle brackets or a backslash; at most
 * AUTH_URI_MAX bytes. Any thread.
 */
#ifndef AUTH_AUTH_CLIENT_WEB_H
#define AUTH_AUTH_CLIENT_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

struct buf;
typedef struct json_t json_t;

#define AUTH_URI_MAX    512
#define AUTH_URIS_MAX   8
#define AUTH_ORIGIN_MAX 256

enum auth_web_list { AUTH_WEB_REDIRECT, AUTH_WEB_LOGOUT, AUTH_WEB_ORIGIN, AUTH_WEB_LISTS };

struct auth_client_web {
    unsigned n[AUTH_WEB_LISTS];
    char redirect[AUTH_URIS_MAX][AUTH_URI_MAX + 1];
    char logout[AUTH_URIS_MAX][AUTH_URI_MAX + 1];
    char origin[AUTH_URIS_MAX][AUTH_ORIGIN_MAX + 1];
};

/* Whether `uri` may be registered as a redirect (or post-logout) URI. ERR_OK, or ERR_INVAL
 * with *why. */
int auth_redirect_uri_check(struct str uri, const char **why);

/* Adds each item of `list` (separated by commas or spaces) to list `which`: URIs checked as
 * above, origins as scheme://host[:port] of https (or http on loopback). ERR_OK, or
 * ERR_INVAL with *why (nothing is added then). */
int auth_client_web_add(struct auth_client_web *w, enum auth_web_list which, struct str list,
                        const char **why);

/* Fills the origins from the redirect URIs (each https or loopback http one's
 * scheme://host[:port]) when none were given. */
void auth_client_web_default_origins(struct auth_client_web *w);

/* The lists as JSON members, appended to b with a leading comma:
 * ,"redirect_uris":[..],"post_logout_redirect_uris":[..],"web_origins":[..]. */
int auth_client_web_json(const struct auth_client_web *w, struct buf *b);
/* The lists from a JSON object with those members (each an array of strings, or a string
 * of items separated by commas or spaces; absent: empty), checked as auth_client_web_add.
 * ERR_OK, or ERR_INVAL with *why. */
int auth_client_web_from_json(json_t *o, struct auth_client_web *w, const char **why);

/* Where a redirect to `uri` goes, as a CSP source (the login form's form-action must allow
 * the redirect that follows it): scheme://host[:port] for http(s), "scheme:" for a native
 * app's. ERR_INVAL for anything else. */
int auth_redirect_origin(struct str uri, char *out, size_t cap);

/* Whether `uri` is one of the registered redirect URIs (exactly; any port for a loopback
 * IP), or of the post-logout ones (exactly). */
bool auth_client_web_redirect_ok(const struct auth_client_web *w, struct str uri);
bool auth_client_web_logout_ok(const struct auth_client_web *w, struct str uri);
/* Whether a request's Origin header names one of the client's web origins. */
bool auth_client_web_origin_ok(const struct auth_client_web *w, struct str origin);

#endif
