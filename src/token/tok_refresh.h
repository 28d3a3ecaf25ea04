/* SPDX-License-Identifier: MIT */
/*
 * Refresh tokens: opaque, 256 random bits as 43 base64url characters. Only a keyed digest is
 * stored. The successor of a token is derived from it with the server key
 * (BLAKE2b(key, "successor" || token)), so that within the grace window the same successor
 * can be answered again without any token ever being stored. Any thread.
 */
#ifndef TOKEN_TOK_REFRESH_H
#define TOKEN_TOK_REFRESH_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "crypto/cr.h"

#define TOK_REFRESH_LEN 43

/* A fresh random token, NUL-terminated. */
void tok_refresh_new(char out[TOK_REFRESH_LEN + 1]);
/* The stored digest of `token`. ERR_INVAL if it is not a well-formed refresh token. */
int tok_refresh_digest(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                       uint8_t out[CR_HASH_LEN]);
/* The successor of `token` (well-formed, checked by the caller), NUL-terminated. */
void tok_refresh_successor(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                           char out[TOK_REFRESH_LEN + 1]);

#endif
