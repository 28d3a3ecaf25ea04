/* SPDX-License-Identifier: MIT */
/*
 * Refresh tokens: opaque. A token is its user's group (store.h: where a sharded store keeps
 * the user's tokens; 2 bytes as 3 base64url characters) and 256 random bits (43 characters),
 * 46 characters in all. Only a keyed digest is stored, whose first two bytes are the group,
 * so the store can place the record without seeing the token. The successor of a token is
 * derived from it with the server key (BLAKE2b(key, "successor" || token)) and keeps its
 * group, so that within the grace window the same successor can be answered again without
 * any token ever being stored.
 *
 * Tokens issued before groups (43 characters, no group) are still read: their digest is the
 * keyed hash alone, and their successor is of their kind. Any thread.
 */
#ifndef TOKEN_TOK_REFRESH_H
#define TOKEN_TOK_REFRESH_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "crypto/cr.h"

#define TOK_REFRESH_LEN    46 /* issued now: group (3) and random (43) */
#define TOK_REFRESH_LEN_V1 43 /* issued before groups: random only */

/* A fresh random token of `group` (below STORE_GROUPS), NUL-terminated. */
void tok_refresh_new(unsigned group, char out[TOK_REFRESH_LEN + 1]);
/* The stored digest of `token`. ERR_INVAL if it is not a well-formed refresh token. */
int tok_refresh_digest(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                       uint8_t out[CR_HASH_LEN]);
/* The successor of `token` (well-formed, checked by the caller), NUL-terminated. */
void tok_refresh_successor(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                           char out[TOK_REFRESH_LEN + 1]);

#endif
