/* SPDX-License-Identifier: MIT */
/*
 * ES256 (ECDSA P-256 + SHA-256) and RS256 (RSASSA-PKCS1-v1_5 + SHA-256, 2048-bit) keys via
 * OpenSSL 3, for deployments whose verifiers cannot do EdDSA. Signatures are in JWS form
 * (RFC 7518 §3.3, §3.4): ES256 is R || S, 64 bytes, not DER. Private keys travel as PKCS#8
 * PEM. A key is immutable after creation and may be used from several threads at once
 * (OpenSSL 3 allows concurrent signing with one EVP_PKEY and separate contexts).
 */
#ifndef CRYPTO_CR_PKEY_H
#define CRYPTO_CR_PKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct cr_pkey;

enum cr_pkey_alg { CR_ES256 = 1, CR_RS256 = 2 };

#define CR_PKEY_SIG_MAX 512 /* RSA-4096 would fit; RSA-2048 is 256 */

/* New random key. ERR_NOMEM/ERR_IO. */
int cr_pkey_generate(enum cr_pkey_alg alg, struct cr_pkey **out);
/* From a PKCS#8 PEM private key of the given algorithm. ERR_INVAL if it is not one. */
int cr_pkey_from_pem(enum cr_pkey_alg alg, const char *pem, size_t n, struct cr_pkey **out);
void cr_pkey_free(struct cr_pkey *k);
/* An independent copy of k (for another thread), or NULL if out of memory. */
struct cr_pkey *cr_pkey_dup(const struct cr_pkey *k);
/* Appends the PKCS#8 PEM of the private key. */
int cr_pkey_to_pem(const struct cr_pkey *k, struct buf *out);

/* Signs msg; *siglen <= CR_PKEY_SIG_MAX. */
int cr_pkey_sign(const struct cr_pkey *k, const void *msg, size_t n, uint8_t *sig, size_t *siglen);
bool cr_pkey_verify(const struct cr_pkey *k, const void *msg, size_t n, const uint8_t *sig,
                    size_t siglen);

/* Appends the public JWK members after "kty": for ES256
 * "EC","crv":"P-256","x":..,"y":.., for RS256 "RSA","n":..,"e":.. (base64url). */
int cr_pkey_jwk(const struct cr_pkey *k, struct buf *out);

#endif
