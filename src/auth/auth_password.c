/* SPDX-License-Identifier: MIT */
/*
 * Argon2id through argon2_ctx, so that memory comes from the worker's pre-faulted scratch
 * buffer: page faults cost ~10 us per 4 KiB page on this machine, more than the hash itself
 * at 19 MiB (docs/STYLE.md). The PHC string is encoded and parsed here (libargon2 keeps its
 * encoder private); the parser is strict and fuzzed (fuzz/fuzz_phc.c).
 */
#include "auth/auth_password.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "core/err.h"
#include "crypto/cr.h"
#include "loop/pool.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define M_MAX    (1u << 20) /* KiB: 1 GiB */
#define T_MAX    64
#define P_MAX    16

static int scratch_alloc(uint8_t **mem, size_t n)
{
    *mem = pool_scratch(n);
    return *mem ? 0 : -1;
}

static void scratch_free(uint8_t *mem, size_t n)
{
    (void)mem;
    (void)n; /* kept for the next hash on this worker */
}

static int argon2id_raw(uint32_t m, uint32_t t, uint32_t p, const uint8_t *salt, size_t salt_len,
                        const char *pw, size_t n, uint8_t *out, size_t out_len)
{
    argon2_context ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.out = out;
    ctx.outlen = (uint32_t)out_len;
    ctx.pwd = (uint8_t *)(uintptr_t)pw;
    ctx.pwdlen = (uint32_t)n;
    ctx.salt = (uint8_t *)(uintptr_t)salt;
    ctx.saltlen = (uint32_t)salt_len;
    ctx.t_cost = t;
    ctx.m_cost = m;
    ctx.lanes = p;
    ctx.threads = 1; /* one worker, one thread: parallelism comes from the pool */
    ctx.version = ARGON2_VERSION_13;
    /* On a worker thread use its scratch buffer; elsewhere let libargon2 allocate. */
    if (pool_scratch(1)) {
        ctx.allocate_cbk = scratch_alloc;
        ctx.free_cbk = scratch_free;
    }
    return argon2_ctx(&ctx, Argon2_id) == ARGON2_OK ? ERR_OK : ERR_NOMEM;
}

static size_t b64_nopad(const uint8_t *src, size_t n, char *dst, size_t cap)
{
    size_t need = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    if (cap < need)
        return 0;
    sodium_bin2base64(dst, cap, src, n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    return need - 1;
}

int auth_pw_hash(const struct auth_pw_params *pp, const char *pw, size_t n, char *phc, size_t cap)
{
    uint8_t salt[SALT_LEN], hash[HASH_LEN];
    char s64[32], h64[64];

    if (n > AUTH_PASSWORD_MAX || pp->m_kib > M_MAX || pp->t > T_MAX || pp->p > P_MAX)
        return ERR_INVAL;
    cr_random(salt, sizeof(salt));
    int rc = argon2id_raw(pp->m_kib, pp->t, pp->p, salt, sizeof(salt), pw, n, hash, sizeof(hash));
    if (rc)
        return rc;
    b64_nopad(salt, sizeof(salt), s64, sizeof(s64));
    b64_nopad(hash, sizeof(hash), h64, sizeof(h64));
    cr_wipe(hash, sizeof(hash));
    int w = snprintf(phc, cap, "$argon2id$v=19$m=%u,t=%u,p=%u$%s$%s", pp->m_kib, pp->t, pp->p, s64,
                     h64);
    return (w > 0 && (size_t)w < cap) ? ERR_OK : ERR_LIMIT;
}

/* Reads a decimal uint32 up to `stop`; advances *s past it. */
static int read_u32(const char **s, char stop, uint32_t *out)
{
    const char *p = *s;
    uint64_t v = 0;

    if (*p < '0' || *p > '9' || (*p == '0' && p[1] != stop))
        return ERR_INVAL; /* no leading zeros: one spelling per value */
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX)
            return ERR_INVAL;
        p++;
    }
    if (*p != stop)
        return ERR_INVAL;
    *out = (uint32_t)v;
    *s = p + 1;
    return ERR_OK;
}

static int read_b64(const char **s, char stop, uint8_t *out, size_t cap, size_t *len)
{
    const char *p = *s;
    const char *e = stop ? strchr(p, stop) : p + strlen(p);
    const char *end = NULL;

    if (!e || e == p)
        return ERR_INVAL;
    if (sodium_base642bin(out, cap, p, (size_t)(e - p), NULL, len, &end,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
        end != e)
        return ERR_INVAL;
    *s = stop ? e + 1 : e;
    return ERR_OK;
}

int auth_phc_parse(const char *s, struct auth_phc *o)
{
    static const char prefix[] = "$argon2id$v=";

    memset(o, 0, sizeof(*o));
    if (strlen(s) >= AUTH_PHC_MAX || strncmp(s, prefix, sizeof(prefix) - 1) != 0)
        return ERR_INVAL;
    s += sizeof(prefix) - 1;
    if (read_u32(&s, '$', &o->version) || o->version != ARGON2_VERSION_13)
        return ERR_INVAL;
    if (strncmp(s, "m=", 2) != 0)
        return ERR_INVAL;
    s += 2;
    if (read_u32(&s, ',', &o->m_kib) || strncmp(s, "t=", 2) != 0)
        return ERR_INVAL;
    s += 2;
    if (read_u32(&s, ',', &o->t) || strncmp(s, "p=", 2) != 0)
        return ERR_INVAL;
    s += 2;
    if (read_u32(&s, '$', &o->p))
        return ERR_INVAL;
    if (o->t < 1 || o->t > T_MAX || o->p < 1 || o->p > P_MAX || o->m_kib < 8 * o->p ||
        o->m_kib > M_MAX)
        return ERR_INVAL;
    if (read_b64(&s, '$', o->salt, sizeof(o->salt), &o->salt_len) || o->salt_len < 8)
        return ERR_INVAL;
    if (read_b64(&s, 0, o->hash, sizeof(o->hash), &o->hash_len) || o->hash_len < 16)
        return ERR_INVAL;
    return ERR_OK;
}

static int verify_argon2id(const char *stored, const char *pw, size_t n,
                           const struct auth_pw_params *cur, bool *ok, bool *rehash)
{
    struct auth_phc h;
    uint8_t out[64];

    if (auth_phc_parse(stored, &h))
        return ERR_INVAL;
    int rc = argon2id_raw(h.m_kib, h.t, h.p, h.salt, h.salt_len, pw, n, out, h.hash_len);
    if (rc)
        return rc;
    *ok = cr_eq(out, h.hash, h.hash_len);
    cr_wipe(out, sizeof(out));
    *rehash = h.m_kib != cur->m_kib || h.t != cur->t || h.p != cur->p || h.hash_len != HASH_LEN;
    return ERR_OK;
}

/* bcrypt through libxcrypt: crypt_r recomputes the hash string from the stored setting. */
static int verify_bcrypt(const char *stored, const char *pw, size_t n, bool *ok)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char pwz[AUTH_PASSWORD_MAX + 1];

    if (!cd)
        return ERR_NOMEM;
    memcpy(pwz, pw, n);
    pwz[n] = '\0';
    /* bcrypt reads at most 72 bytes and stops at a NUL; a NUL inside would make two
     * different passwords equal, so refuse them. */
    const char *out = memchr(pw, 0, n) ? NULL : crypt_r(pwz, stored, cd);
    size_t len = strlen(stored);
    *ok = out && out[0] == '$' && strlen(out) == len && cr_eq(out, stored, len);
    cr_wipe(pwz, sizeof(pwz));
    cr_wipe(cd, sizeof(*cd));
    free(cd);
    return ERR_OK;
}

/* $pbkdf2-sha256$ROUNDS$SALT$HASH (passlib: "adapted" base64, '.' for '+', no padding) and
 * pbkdf2_sha256$ROUNDS$SALT$HASH (Django: salt as text, hash standard base64). */
static int verify_pbkdf2(const char *stored, const char *pw, size_t n, bool *ok)
{
    uint8_t salt[128], hash[64], out[64];
    size_t salt_len, hash_len;
    uint32_t rounds;
    const char *s;
    char tmp[AUTH_PHC_MAX];
    int django = strncmp(stored, "pbkdf2_sha256$", 14) == 0;

    if (strlen(stored) >= sizeof(tmp))
        return ERR_INVAL;
    s = stored + (django ? 14 : 15);
    if (read_u32(&s, '$', &rounds) || rounds < 1000 || rounds > 10000000)
        return ERR_INVAL;
    const char *d = strchr(s, '$');
    if (!d)
        return ERR_INVAL;
    if (django) {
        salt_len = (size_t)(d - s);
        if (salt_len == 0 || salt_len > sizeof(salt))
            return ERR_INVAL;
        memcpy(salt, s, salt_len);
        const char *h = d + 1, *end = NULL;
        if (sodium_base642bin(hash, sizeof(hash), h, strlen(h), NULL, &hash_len, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            *end || hash_len < 16)
            return ERR_INVAL;
    } else {
        /* passlib's alphabet swaps '+' for '.'; map back, then decode as standard. */
        snprintf(tmp, sizeof(tmp), "%s", s);
        for (char *p = tmp; *p; p++)
            if (*p == '.')
                *p = '+';
        const char *p = tmp;
        if (read_b64(&p, '$', salt, sizeof(salt), &salt_len) ||
            read_b64(&p, 0, hash, sizeof(hash), &hash_len) || hash_len < 16)
            return ERR_INVAL;
    }
    if (PKCS5_PBKDF2_HMAC(pw, (int)n, salt, (int)salt_len, (int)rounds, EVP_sha256(), (int)hash_len,
                          out) != 1)
        return ERR_NOMEM;
    *ok = cr_eq(out, hash, hash_len);
    cr_wipe(out, sizeof(out));
    return ERR_OK;
}

int auth_pw_verify(const char *stored, const char *pw, size_t n,
                   const struct auth_pw_params *current, bool *ok, bool *rehash)
{
    *ok = false;
    *rehash = true;
    if (n > AUTH_PASSWORD_MAX)
        return ERR_INVAL;
    if (strncmp(stored, "$argon2id$", 10) == 0)
        return verify_argon2id(stored, pw, n, current, ok, rehash);
    if ((strncmp(stored, "$2a$", 4) == 0 || strncmp(stored, "$2b$", 4) == 0 ||
         strncmp(stored, "$2y$", 4) == 0) &&
        strlen(stored) == 60)
        return verify_bcrypt(stored, pw, n, ok);
    if (strncmp(stored, "$pbkdf2-sha256$", 15) == 0 || strncmp(stored, "pbkdf2_sha256$", 14) == 0)
        return verify_pbkdf2(stored, pw, n, ok);
    return ERR_INVAL;
}

/* Security-sensitive (user enumeration): an unknown user's login must cost what a known
 * user's wrong password costs, step for step. So the dummy is a real PHC string of the
 * current parameters (a fixed salt, a hash nothing matches), parsed and verified by the
 * same code as a stored one, down to the constant-time compare. */
void auth_pw_dummy(const struct auth_pw_params *current, const char *pw, size_t n)
{
    static const uint8_t salt[SALT_LEN] = {0x66, 0x6c, 0x6f, 0x6f, 0x64, 0x67, 0x61, 0x74, 0x65};
    static const uint8_t hash[HASH_LEN] = {0x64, 0x75, 0x6d, 0x6d, 0x79};
    char s64[32], h64[64], phc[AUTH_PHC_MAX];
    bool ok, rehash;

    if (n > AUTH_PASSWORD_MAX)
        n = AUTH_PASSWORD_MAX;
    b64_nopad(salt, sizeof(salt), s64, sizeof(s64));
    b64_nopad(hash, sizeof(hash), h64, sizeof(h64));
    snprintf(phc, sizeof(phc), "$argon2id$v=19$m=%u,t=%u,p=%u$%s$%s", current->m_kib, current->t,
             current->p, s64, h64);
    verify_argon2id(phc, pw, n, current, &ok, &rehash);
}
