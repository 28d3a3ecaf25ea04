/* SPDX-License-Identifier: MIT */
/* Thin wrappers over libsodium, kept in one place so that every caller gets the strict forms
 * (constant-time compare, canonical base64url, verification that rejects malleable
 * signatures) without repeating the flags. */
#include "crypto/cr.h"

#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "core/str.h"

int cr_init(void)
{
    return sodium_init() < 0 ? ERR_IO : ERR_OK;
}

void cr_random(void *buf, size_t n)
{
    randombytes_buf(buf, n);
}

/* Each thread's bytes from getrandom, taken from the end and wiped as they are handed out,
 * so no byte is given twice. (floodgate never forks, which would copy them.) */
#define ID_POOL 512
static __thread uint8_t id_pool[ID_POOL];
static __thread size_t id_left;

void cr_random_id(void *buf, size_t n)
{
    if (n > ID_POOL / 4) {
        randombytes_buf(buf, n);
        return;
    }
    if (id_left < n) {
        randombytes_buf(id_pool, sizeof(id_pool));
        id_left = sizeof(id_pool);
    }
    id_left -= n;
    memcpy(buf, id_pool + id_left, n);
    sodium_memzero(id_pool + id_left, n);
}

bool cr_eq(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

void cr_wipe(void *p, size_t n)
{
#if defined(__SANITIZE_ADDRESS__) || defined(FG_TESTING)
    /* In test builds, an instrumented loop: sodium_memzero is in uninstrumented libsodium,
     * so ASan would not see a wipe of freed memory (one such bug was found this way). The
     * volatile store keeps the compiler from dropping it. */
    volatile unsigned char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
#else
    sodium_memzero(p, n);
#endif
}

size_t cr_b64url_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
}

size_t cr_b64url_encode(const void *src, size_t n, char *dst, size_t cap)
{
    size_t need = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (cap < need)
        return 0;
    sodium_bin2base64(dst, cap, src, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return need - 1;
}

/* Every pair of base64url characters, 64 x 64: a 12-bit group's two characters at
 * b64_pairs[2 * group], so that six bytes become eight characters by four lookups. */
/* clang-format off */
#define B64_ROW(c) \
    c "A" c "B" c "C" c "D" c "E" c "F" c "G" c "H" \
    c "I" c "J" c "K" c "L" c "M" c "N" c "O" c "P" \
    c "Q" c "R" c "S" c "T" c "U" c "V" c "W" c "X" \
    c "Y" c "Z" c "a" c "b" c "c" c "d" c "e" c "f" \
    c "g" c "h" c "i" c "j" c "k" c "l" c "m" c "n" \
    c "o" c "p" c "q" c "r" c "s" c "t" c "u" c "v" \
    c "w" c "x" c "y" c "z" c "0" c "1" c "2" c "3" \
    c "4" c "5" c "6" c "7" c "8" c "9" c "-" c "_"
static const char b64_pairs[] =
    B64_ROW("A") B64_ROW("B") B64_ROW("C") B64_ROW("D") B64_ROW("E") B64_ROW("F") B64_ROW("G")
    B64_ROW("H") B64_ROW("I") B64_ROW("J") B64_ROW("K") B64_ROW("L") B64_ROW("M") B64_ROW("N")
    B64_ROW("O") B64_ROW("P") B64_ROW("Q") B64_ROW("R") B64_ROW("S") B64_ROW("T") B64_ROW("U")
    B64_ROW("V") B64_ROW("W") B64_ROW("X") B64_ROW("Y") B64_ROW("Z") B64_ROW("a") B64_ROW("b")
    B64_ROW("c") B64_ROW("d") B64_ROW("e") B64_ROW("f") B64_ROW("g") B64_ROW("h") B64_ROW("i")
    B64_ROW("j") B64_ROW("k") B64_ROW("l") B64_ROW("m") B64_ROW("n") B64_ROW("o") B64_ROW("p")
    B64_ROW("q") B64_ROW("r") B64_ROW("s") B64_ROW("t") B64_ROW("u") B64_ROW("v") B64_ROW("w")
    B64_ROW("x") B64_ROW("y") B64_ROW("z") B64_ROW("0") B64_ROW("1") B64_ROW("2") B64_ROW("3")
    B64_ROW("4") B64_ROW("5") B64_ROW("6") B64_ROW("7") B64_ROW("8") B64_ROW("9") B64_ROW("-")
    B64_ROW("_");
/* clang-format on */
#undef B64_ROW
_Static_assert(sizeof(b64_pairs) == 2 * 64 * 64 + 1, "every pair of characters, and a NUL");

/* p[0..8) as a big-endian number: p[0] in the top byte */
static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t x = str_word((const char *)p);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

size_t cr_b64url_encode_public(const void *src, size_t n, char *dst, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *s = src;
    char *d = dst;
    size_t i = 0;

    if (cap < CR_B64_PUBLIC_CAP(n) || n > INT32_MAX / 2)
        return 0;
    for (; i + 8 <= n; i += 6, d += 8) { /* (eight bytes read, the first six used) */
        uint64_t x = load_be64(s + i);
        memcpy(d, b64_pairs + 2 * (x >> 52), 2);
        memcpy(d + 2, b64_pairs + 2 * (x >> 40 & 0xfff), 2);
        memcpy(d + 4, b64_pairs + 2 * (x >> 28 & 0xfff), 2);
        memcpy(d + 6, b64_pairs + 2 * (x >> 16 & 0xfff), 2);
    }
    for (; i + 3 <= n; i += 3, d += 4) {
        uint32_t x = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        memcpy(d, b64_pairs + 2 * (x >> 12), 2);
        memcpy(d + 2, b64_pairs + 2 * (x & 0xfff), 2);
    }
    if (n - i == 1) {
        d[0] = abc[s[i] >> 2];
        d[1] = abc[(s[i] & 3) << 4];
        d += 2;
    } else if (n - i == 2) {
        d[0] = abc[s[i] >> 2];
        d[1] = abc[(s[i] & 3) << 4 | s[i + 1] >> 4];
        d[2] = abc[(s[i + 1] & 15) << 2];
        d += 3;
    }
    *d = '\0';
    return (size_t)(d - dst);
}

/* The decoded length of n base64url characters without padding (n % 4 != 1). */
static size_t b64url_decoded_len(size_t n)
{
    return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

int cr_b64url_decode(const char *src, size_t n, void *dst, size_t cap, size_t *out_len)
{
    const char *end = NULL;
    size_t len = 0;

    /* Decoded size is at most 3/4 of the input: refuse before decoding if it cannot fit.
     * libsodium 1.0.18 (Debian 12) takes every byte from 0x80 up for '_': "a_b" and
     * "a\x80b" decoded alike, and where a token's use is keyed by its string (an
     * authorization code's) that made a second use of one code. */
    if (b64url_decoded_len(n) > cap)
        return ERR_LIMIT;
    if (n % 4 == 1 || !str_ascii(src, n))
        return ERR_INVAL;
    if (sodium_base642bin(dst, cap, src, n, NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != src + n)
        return ERR_INVAL;
    *out_len = len;
    return ERR_OK;
}

/* Each URL-safe character's value plus one; 0 for a byte outside the alphabet. */
static const uint8_t b64url_plus1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

int cr_b64url_decode_public(const char *src, size_t n, void *dst, size_t cap, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)src;
    uint8_t *d = dst;
    size_t out = b64url_decoded_len(n);
    uint32_t acc = 0;
    unsigned bits = 0;

    /* the same answers as cr_b64url_decode, in the same order of checks */
    if (out > cap)
        return ERR_LIMIT;
    if (n % 4 == 1)
        return ERR_INVAL;
    size_t i = 0;
    /* four characters, three bytes at a time (unsigned: an invalid one is 0 - 1, > 63) */
    for (; i + 4 <= n; i += 4, d += 3) {
        unsigned a = b64url_plus1[s[i]] - 1u, b = b64url_plus1[s[i + 1]] - 1u;
        unsigned c = b64url_plus1[s[i + 2]] - 1u, e = b64url_plus1[s[i + 3]] - 1u;
        if ((a | b | c | e) > 63)
            return ERR_INVAL;
        uint32_t x = a << 18 | b << 12 | c << 6 | e;
        d[0] = (uint8_t)(x >> 16);
        d[1] = (uint8_t)(x >> 8);
        d[2] = (uint8_t)x;
    }
    for (; i < n; i++) { /* the last two or three */
        unsigned v = b64url_plus1[s[i]];
        if (!v)
            return ERR_INVAL;
        acc = (acc << 6) | (v - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *d++ = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc) /* the unused low bits of the last character must be zero */
        return ERR_INVAL;
    *out_len = out;
    return ERR_OK;
}

int cr_b64_decode(const char *src, size_t n, void *dst, size_t cap, size_t *out_len)
{
    const char *end = NULL;
    size_t len = 0;

    if (n / 4 * 3 > cap + 2)
        return ERR_LIMIT;
    if (!str_ascii(src, n)) /* (libsodium takes bytes from 0x80 up for '/') */
        return ERR_INVAL;
    if (sodium_base642bin(dst, cap, src, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        end != src + n)
        return ERR_INVAL;
    *out_len = len;
    return ERR_OK;
}

void cr_sha256(uint8_t out[32], const void *msg, size_t n)
{
    crypto_hash_sha256(out, msg, n);
}

_Static_assert(CR_SEAL_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "seal key");
_Static_assert(CR_SEAL_OVERHEAD == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                       crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "seal overhead");

void cr_seal(uint8_t *out, const void *plain, size_t n, const void *ad, size_t adn,
             const uint8_t key[CR_SEAL_KEY_LEN])
{
    enum { NONCE = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES };
    /* A nonce must never repeat under a key. Each thread's is a keyed hash of a counter
     * under a key it drew once: unique, with no system call per seal, and it says nothing
     * about how many seals came before (a bare counter would). */
    static _Thread_local uint8_t nkey[CR_HASH_KEY_LEN];
    static _Thread_local uint64_t count;
    uint8_t h[CR_HASH_LEN];
    unsigned long long clen;
    if (count == 0)
        cr_random(nkey, sizeof(nkey));
    count++;
    cr_keyed_hash(h, nkey, &count, sizeof(count));
    memcpy(out, h, NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE, &clen, plain, n, ad, adn, NULL, out,
                                               key);
}

int cr_open(uint8_t *plain, const uint8_t *sealed, size_t n, const void *ad, size_t adn,
            const uint8_t key[CR_SEAL_KEY_LEN])
{
    enum { NONCE = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES };
    if (n < CR_SEAL_OVERHEAD ||
        crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sealed + NONCE, n - NONCE, ad,
                                                   adn, sealed, key))
        return ERR_INVAL;
    return ERR_OK;
}

void cr_sha512(uint8_t out[64], const void *msg, size_t n)
{
    crypto_hash_sha512(out, msg, n);
}

void cr_keyed_hash(uint8_t out[CR_HASH_LEN], const uint8_t *key, const void *msg, size_t n)
{
    crypto_generichash(out, CR_HASH_LEN, msg, n, key, CR_HASH_KEY_LEN);
}

void cr_ed25519_keypair(uint8_t pk[CR_ED25519_PK], uint8_t sk[CR_ED25519_SK])
{
    crypto_sign_ed25519_keypair(pk, sk);
}

void cr_ed25519_from_seed(const uint8_t seed[CR_ED25519_SEED], uint8_t pk[CR_ED25519_PK],
                          uint8_t sk[CR_ED25519_SK])
{
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
}

void cr_ed25519_sign(uint8_t sig[CR_ED25519_SIG], const void *msg, size_t n,
                     const uint8_t sk[CR_ED25519_SK])
{
    crypto_sign_ed25519_detached(sig, NULL, msg, n, sk);
}

bool cr_ed25519_verify(const uint8_t sig[CR_ED25519_SIG], const void *msg, size_t n,
                       const uint8_t pk[CR_ED25519_PK])
{
    return crypto_sign_ed25519_verify_detached(sig, msg, n, pk) == 0;
}
