/* SPDX-License-Identifier: MIT */
/*
 * Refresh tokens: opaque. A token is its user's group (store.h: where a sharded store keeps
 * the user's tokens; 2 bytes as 3 base64url characters) and 256 bits (43 characters), 46
 * characters in all. Only a keyed digest is stored, whose first two bytes are the group,
 * so the store can place the record without seeing the token.
 *
 * The 256 bits begin with the token's stamp: when it was issued, in microseconds since the
 * epoch (64 bits, big-endian; the group's top bit says a token is stamped), then 192 secret
 * bits. The digest carries the stamp in its bytes 2-9, so a store that orders its keys by
 * it (LMDB: store_lmdb.c) writes each new record beside the last one instead of at a random
 * place in a B-tree that grows with every token kept. The stamp says only when the token
 * was issued, as the access token's `iat` does.
 *
 * The successor of a token keeps its group and is stamped when it is made; its secret bits
 * are derived from the token with the server key (BLAKE2b(key, "successor" || token)), so
 * that within the grace window the same successor can be answered again, from the stamp
 * its stored digest kept, without any token ever being stored.
 *
 * Read as well: tokens of 46 characters from before stamps (the group's top bit clear: 256
 * random bits, the digest the keyed hash with the group in front), whose successor is
 * stamped; and tokens from before groups (43 characters, no group), whose digest is the
 * keyed hash alone and whose successor is of their kind. Any thread.
 */
#ifndef TOKEN_TOK_REFRESH_H
#define TOKEN_TOK_REFRESH_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "crypto/cr.h"

#define TOK_REFRESH_LEN    46 /* issued now: group (3) and stamp and secret (43) */
#define TOK_REFRESH_LEN_V1 43 /* issued before groups: random only */

/* A fresh token of `group` (below STORE_GROUPS) stamped `stamp_us` (clock_wall_us()),
 * NUL-terminated. */
void tok_refresh_new(unsigned group, int64_t stamp_us, char out[TOK_REFRESH_LEN + 1]);
/* The stored digest of `token`. ERR_INVAL if it is not a well-formed refresh token. */
int tok_refresh_digest(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                       uint8_t out[CR_HASH_LEN]);
/* The successor of `token` (well-formed, checked by the caller) stamped `stamp_us`,
 * NUL-terminated, and its stored digest (tok_refresh_digest's of `out`). */
void tok_refresh_successor(const uint8_t key[CR_HASH_KEY_LEN], struct str token, int64_t stamp_us,
                           char out[TOK_REFRESH_LEN + 1], uint8_t digest[CR_HASH_LEN]);
/* The successor of `token` already made, whose stored digest is `digest` (a rotation
 * answered again): ERR_OK, or ERR_INVAL if no successor of `token` has that digest. */
int tok_refresh_successor_of(const uint8_t key[CR_HASH_KEY_LEN], struct str token,
                             const uint8_t digest[CR_HASH_LEN], char out[TOK_REFRESH_LEN + 1]);

#endif
