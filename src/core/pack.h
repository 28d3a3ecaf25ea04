/* SPDX-License-Identifier: MIT */
/*
 * Small binary records: fixed-width integers (little-endian) and strings with their length
 * first (one byte, or two for the wide ones). A writer into a caller's array and a reader
 * of untrusted bytes: both remember the first fault (no room, a length past the end or past
 * the field's room, a NUL inside a string) and go on doing nothing, so a record is written
 * or read in straight-line code and checked once at its end. Used for what floodgate seals
 * or stores for itself (authorization codes, browser sessions), where JSON would cost more
 * than the work around it.
 */
#ifndef CORE_PACK_H
#define CORE_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pack_w {
    uint8_t *p;
    size_t n, cap;
    bool bad;
};

struct pack_r {
    const uint8_t *p;
    size_t n, at;
    bool bad;
};

static inline struct pack_w pack_writer(uint8_t *p, size_t cap)
{
    return (struct pack_w){p, 0, cap, false};
}

static inline struct pack_r pack_reader(const void *p, size_t n)
{
    return (struct pack_r){(const uint8_t *)p, n, 0, false};
}

void pack_put(struct pack_w *w, const void *v, size_t n);
void pack_u8(struct pack_w *w, uint8_t v);
void pack_u64(struct pack_w *w, uint64_t v);
/* s with its length first (one byte; wide: two); longer than max: a fault. */
void pack_str(struct pack_w *w, const char *s, size_t max, bool wide);

/* Faults (and zeroes v) if fewer than n bytes are left. */
void unpack_get(struct pack_r *r, void *v, size_t n);
uint8_t unpack_u8(struct pack_r *r);
uint64_t unpack_u64(struct pack_r *r);
/* Into out[cap] with its NUL; a length that does not fit, or a NUL inside: a fault. */
void unpack_str(struct pack_r *r, char *out, size_t cap, bool wide);
/* Whether every byte was read, without a fault. */
static inline bool unpack_done(const struct pack_r *r)
{
    return !r->bad && r->at == r->n;
}

#endif
