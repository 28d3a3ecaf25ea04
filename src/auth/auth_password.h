/* SPDX-License-Identifier: MIT */
/*
 * Password hashing. New hashes are Argon2id (libargon2) as PHC strings
 * ($argon2id$v=19$m=..,t=..,p=..$salt$hash). Verification also accepts hashes imported from
 * other systems, bcrypt ($2a$/$2b$/$2y$, via libxcrypt) and PBKDF2-SHA256 (passlib's
 * $pbkdf2-sha256$ and Django's pbkdf2_sha256$ forms, via OpenSSL), and reports that they
 * need rehashing, as it does for Argon2id hashes with outdated parameters.
 *
 * CPU and memory heavy: call from a worker thread, where Argon2 uses the thread's
 * pre-faulted scratch buffer (pool_scratch) instead of faulting in fresh pages per hash.
 * Called elsewhere (the CLI), it allocates normally. Stored parameters are bounded before use
 * (m <= 1 GiB, t <= 64, p <= 16), so a planted hash cannot make one verification take minutes.
 */
#ifndef AUTH_AUTH_PASSWORD_H
#define AUTH_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_PHC_MAX      256
#define AUTH_PASSWORD_MIN 8    /* bytes, NIST SP 800-63B §5.1.1.2 */
#define AUTH_PASSWORD_MAX 1024 /* bytes: bounds the hashing input */

struct auth_pw_params {
    uint32_t m_kib; /* memory, KiB (OWASP: 19456) */
    uint32_t t;     /* passes (OWASP: 2) */
    uint32_t p;     /* lanes (OWASP: 1) */
};

/* Hashes pw into a PHC string (phc, cap >= AUTH_PHC_MAX). ERR_NOMEM, ERR_INVAL. */
int auth_pw_hash(const struct auth_pw_params *pp, const char *pw, size_t n, char *phc, size_t cap);

/* Verifies pw against a stored hash. ERR_OK with *ok and *rehash set; ERR_INVAL if the hash
 * is malformed or of an unknown kind (then *ok is false). *rehash is true when the hash is
 * not Argon2id with exactly `current` parameters. Constant-time comparison. */
int auth_pw_verify(const char *stored, const char *pw, size_t n,
                   const struct auth_pw_params *current, bool *ok, bool *rehash);

/* Burns the time of one verification with `current` parameters, for unknown users: the
 * same parse, hash and compare as auth_pw_verify of an Argon2id hash. */
void auth_pw_dummy(const struct auth_pw_params *current, const char *pw, size_t n);

/* Argon2id PHC parsing (exposed for tests and the fuzzer). */
struct auth_phc {
    uint32_t m_kib, t, p, version;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t hash[64];
    size_t hash_len;
};
int auth_phc_parse(const char *s, struct auth_phc *out);

#endif
