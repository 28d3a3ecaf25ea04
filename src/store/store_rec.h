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
void store_family_encode(const struct store_family *f, uint8_t out[STORE_FAMILY_ENC]);
int store_family_decode(const uint8_t *p, size_t n, struct store_family *f);

#endif
