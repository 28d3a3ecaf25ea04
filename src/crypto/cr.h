/* SPDX-License-Identifier: MIT */
/*
 * Crypto primitives, all from libsodium: the OS CSPRNG, constant-time comparison, strict
 * base64url (RFC 4648 §5, no padding), keyed BLAKE2b for secrets that are random (client
 * secrets, refresh tokens: no slow hash needed, a leak of the store reveals nothing
 * usable), and Ed25519. The prefix is cr_ because crypto_ is libsodium's.
 * cr_init must run once, on the main thread, before anything else here; all other calls
 * are safe on any thread.
 */
#ifndef CRYPTO_CR_H
#define CRYPTO_CR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_ED25519_PK   32
#define CR_ED25519_SK   64
#define CR_ED25519_SEED 32
#define CR_ED25519_SIG  64
#define CR_HASH_LEN     32 /* keyed digests of random secrets */
#define CR_HASH_KEY_LEN 32

/* ERR_IO if libsodium cannot start (no entropy source). */
int cr_init(void);

/* Fills `buf` with `n` bytes from the OS CSPRNG (getrandom). Never fails once cr_init ran. */
void cr_random(void *buf, size_t n);
/* The same for identifiers that are not secrets (a JWT's jti, a lifetime's jitter): bytes
 * from getrandom too, fetched 512 at a time per thread, so one system call serves many
 * tokens. Never for a secret (a refresh token, a key, a code): the thread holds bytes
 * it has not yet handed out. */
void cr_random_id(void *buf, size_t n);

/* Constant-time equality of two n-byte buffers (sodium_memcmp). Security-sensitive: use it
 * for every comparison of secrets, digests of secrets and MACs. */
bool cr_eq(const void *a, const void *b, size_t n);

/* Overwrites `n` bytes so that the compiler cannot drop the store. */
void cr_wipe(void *p, size_t n);

/* Encoded length of n bytes in base64url without padding. */
size_t cr_b64url_len(size_t n);
/* Writes the encoding of src[0..n) and a NUL into dst (cap bytes); returns the length, or
 * 0 if cap is too small. */
size_t cr_b64url_encode(const void *src, size_t n, char *dst, size_t cap);
/* The same for bytes anyone may read (a JWT's header, claims and signature), by a table of
 * character pairs, six bytes to eight characters: several times faster, not constant-time,
 * so never for a secret. dst needs CR_B64_PUBLIC_CAP(n) bytes (a padded length: callers
 * size their buffers by it); 0 if cap is smaller. */
#define CR_B64_PUBLIC_CAP(n) (((n) + 2) / 3 * 4 + 1)
size_t cr_b64url_encode_public(const void *src, size_t n, char *dst, size_t cap);
/* Strict decode: only the URL-safe alphabet, no padding, no whitespace, unused bits zero.
 * ERR_INVAL on any other input, ERR_LIMIT if it does not fit in cap. */
int cr_b64url_decode(const char *src, size_t n, void *dst, size_t cap, size_t *out_len);
/* The same answers for bytes anyone may read (a JWT's parts), by a lookup table: several
 * times faster, not constant-time (its time depends on where the input is invalid and on
 * table lookups by value), so never for a secret. */
int cr_b64url_decode_public(const char *src, size_t n, void *dst, size_t cap, size_t *out_len);

/* Standard base64 with padding (RFC 4648 §4), as HTTP Basic credentials use. */
int cr_b64_decode(const char *src, size_t n, void *dst, size_t cap, size_t *out_len);

/* out = BLAKE2b-256 keyed with key[CR_HASH_KEY_LEN] over msg. */
void cr_keyed_hash(uint8_t out[CR_HASH_LEN], const uint8_t *key, const void *msg, size_t n);
/* SHA-256 and SHA-512 (PKCE's S256, OpenID Connect's at_hash). */
void cr_sha256(uint8_t out[32], const void *msg, size_t n);
void cr_sha512(uint8_t out[64], const void *msg, size_t n);

/* Authenticated encryption (XChaCha20-Poly1305, libsodium's IETF construction) for what we
 * hand out and must get back unaltered and unread: out = nonce (24 bytes: a keyed hash of
 * a per-thread counter under a key drawn once from the CSPRNG; never repeated) ||
 * ciphertext || tag (16), so CR_SEAL_OVERHEAD bytes more than the plaintext. `ad` is
 * authenticated, not encrypted (say what the bytes are for, so one purpose's sealed bytes do
 * not open as another's). cr_open: ERR_INVAL unless sealed by cr_seal with this key and ad. */
#define CR_SEAL_KEY_LEN  32
#define CR_SEAL_OVERHEAD 40
void cr_seal(uint8_t *out, const void *plain, size_t n, const void *ad, size_t adn,
             const uint8_t key[CR_SEAL_KEY_LEN]);
int cr_open(uint8_t *plain, const uint8_t *sealed, size_t n, const void *ad, size_t adn,
            const uint8_t key[CR_SEAL_KEY_LEN]);

/* Ed25519 (RFC 8032). The secret key is 64 bytes (seed || public key, libsodium's form). */
void cr_ed25519_keypair(uint8_t pk[CR_ED25519_PK], uint8_t sk[CR_ED25519_SK]);
void cr_ed25519_from_seed(const uint8_t seed[CR_ED25519_SEED], uint8_t pk[CR_ED25519_PK],
                          uint8_t sk[CR_ED25519_SK]);
void cr_ed25519_sign(uint8_t sig[CR_ED25519_SIG], const void *msg, size_t n,
                     const uint8_t sk[CR_ED25519_SK]);
bool cr_ed25519_verify(const uint8_t sig[CR_ED25519_SIG], const void *msg, size_t n,
                       const uint8_t pk[CR_ED25519_PK]);

#endif
