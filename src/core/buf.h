/* SPDX-License-Identifier: MIT */
/*
 * Growable byte buffer with a hard cap fixed at init (curl's dynbuf rule): growth past `max`
 * fails with ERR_LIMIT, so a client can never make one grow without bound. The struct is
 * embedded by its owner; buf_fini releases the memory. Not thread-safe: one owner.
 */
#ifndef CORE_BUF_H
#define CORE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
};

/* Allocates nothing. */
void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);

/* Makes room for `n` more bytes. ERR_LIMIT past the cap, ERR_NOMEM if allocation fails. */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `s` with JSON string escaping (no surrounding quotes). */
int buf_json_escape(struct buf *b, const char *s, size_t n);
/* Appends head[0..hn), a literal that opens a JSON string (,"sub":"), then v[0..vn) escaped
 * and the closing quote: one reservation when v needs no escape (the usual claim). */
int buf_put_json_str(struct buf *b, const char *head, size_t hn, const char *v, size_t vn);
/* The same with head a string literal (the "" makes anything else a compile error: sizeof
 * a pointer would be silently wrong) and v a C string. */
#define BUF_PUT_JSON_STR(b, head, v) buf_put_json_str(b, "" head, sizeof("" head) - 1, v, strlen(v))
/* v in decimal, without printf (the hot answers' numbers). */
int buf_put_i64(struct buf *b, int64_t v);

/* Forgets the contents, keeps the memory. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

/* Removes the first `n` bytes. */
void buf_consume(struct buf *b, size_t n);

/* Frees the memory if more than `keep` bytes are held and the buffer is empty. */
void buf_shrink(struct buf *b, size_t keep);

#endif
