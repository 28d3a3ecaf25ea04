/* SPDX-License-Identifier: MIT */
/*
 * Binary encodings of the hot records (refresh tokens, families, revoked ids), shared by the
 * backends. Layout: a version byte, fixed fields little-endian, then length-prefixed
 * strings; about 90 bytes plus the strings, instead of the 1.4 KB of the struct. Decoding
 * checks every length against the record size. Any thread.
 */
#ifndef STORE_STORE_REC_H
#define STORE_STORE_REC_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_REC_VERSION     1 /* families; refresh records written before sessions */
#define STORE_REC_REFRESH_V2  2 /* refresh records with the sessions generation */
#define STORE_REFRESH_ENC_MAX (104 + STORE_SUB_MAX + STORE_CLIENT_MAX + STORE_SCOPE_MAX)
#define STORE_FAMILY_ENC      (1 + 1 + 8 + 8)

/* Returns the encoded length (<= STORE_REFRESH_ENC_MAX), 0 if a string is too long. Writes
 * version 2; decodes 1 (generation 0) and 2. */
size_t store_refresh_encode(const struct store_refresh *r, uint8_t *out);
int store_refresh_decode(const uint8_t *p, size_t n, struct store_refresh *r);
/* A user's sessions generation as STORE_T_SESSIONS holds it on both backends: decimal text
 * (Redis's scripts compare it as a string). encode returns the length written into out;
 * decode accepts digits only, 1 to 20 of them, and no overflow. */
#define STORE_SESSIONS_ENC_MAX 24
size_t store_sessions_encode(uint64_t gen, char out[STORE_SESSIONS_ENC_MAX]);
int store_sessions_decode(const void *p, size_t n, uint64_t *gen);
void store_family_encode(const struct store_family *f, uint8_t out[STORE_FAMILY_ENC]);
int store_family_decode(const uint8_t *p, size_t n, struct store_family *f);

#endif
