/* SPDX-License-Identifier: MIT */
/*
 * String views: a pointer and a length, never NUL-terminated by contract. Parsed HTTP
 * fields are views into a connection's read buffer (as in picohttpparser); a view is valid
 * only as long as the memory it points into, which its producer documents.
 */
#ifndef CORE_STR_H
#define CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct str {
    const char *p;
    size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})
#define STR_NULL   ((struct str){NULL, 0})

/* Parses a decimal unsigned integer that fills the whole view; no sign, no spaces. */
int str_to_u64(struct str s, uint64_t *out);

/* ASCII case-insensitive equality of p[0..n) and q[0..n); str_eq_nocase's loop. */
bool str_same_nocase(const char *p, const char *q, size_t n);

/* Whether no byte of p[0..n) has its high bit set, in time that depends on n alone (it may
 * run over a secret). The guard in front of libsodium 1.0.18's base64 decoders, which take
 * every byte from 0x80 up for the alphabet's last character (crypto/cr.c). */
bool str_ascii(const char *p, size_t n);

/* Writes `v` in decimal at `dst` (room for 20 bytes) and returns the length. */
size_t str_utoa(char *dst, uint64_t v);

static inline struct str str_c(const char *s)
{
    return (struct str){s, strlen(s)};
}

static inline bool str_eq(struct str a, struct str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ASCII case-insensitive equality (HTTP field names, tokens). Inline so that the length
 * test, where most comparisons of header names end, costs no call. */
static inline bool str_eq_nocase(struct str a, struct str b)
{
    return a.len == b.len && str_same_nocase(a.p, b.p, a.len);
}

/* Word-at-a-time byte tests on eight bytes read by str_word: they answer "is there such a
 * byte" exactly (not which one); a caller that needs the place walks that word byte by
 * byte. */
#define STR_WORD_ONES 0x0101010101010101ull
static inline uint64_t str_word(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}
/* A byte below n (n at most 0x80): only such a byte borrows in x - n..; bytes from 0x80 up
 * are masked out by ~x. */
static inline bool str_word_has_below(uint64_t x, unsigned n)
{
    return ((x - STR_WORD_ONES * n) & ~x & STR_WORD_ONES * 0x80) != 0;
}
/* A byte equal to c: a zero byte of x ^ c.. */
static inline bool str_word_has(uint64_t x, unsigned char c)
{
    uint64_t d = x ^ (STR_WORD_ONES * c);
    return ((d - STR_WORD_ONES) & ~d & STR_WORD_ONES * 0x80) != 0;
}

/* Eats the literal lit[0..n) at *p (end bounds the input): true with *p moved past it, or
 * false with *p as it was. STR_EAT takes n from sizeof, so it accepts only a string literal
 * (a pointer there is a compile error, not a wrong length). The recognisers of the bytes
 * floodgate itself wrote (token/tok_jws.c's header, token/tok_jwt.c's claims) are made of
 * these. */
static inline bool str_eat(const char **p, const char *end, const char *lit, size_t n)
{
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}
#define STR_EAT(p, end, lit) str_eat(p, end, "" lit "", sizeof(lit) - 1)

/* Copies the NUL-terminated src into dst[cap], cut to fit, always terminated: snprintf's
 * "%s" without the format machinery (a few hundred instructions on hot paths). */
static inline void str_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* FNV-1a, 32 bits: a table slot for keys that are random already (client ids); never for
 * keys an attacker chooses (those want a keyed hash). */
static inline uint32_t str_fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

#endif
