/* SPDX-License-Identifier: MIT */
/* Growable buffer; doubling growth bounded by the cap given at init. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/str.h"

void buf_init(struct buf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void buf_fini(struct buf *b)
{
    mem_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return ERR_OK;
    if (n > b->max - b->len)
        return ERR_LIMIT;
    size_t want = b->len + n;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    char *p = mem_realloc(b->p, cap);
    if (!p)
        return ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return ERR_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return ERR_OK;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return ERR_INVAL;
    if ((size_t)n < sizeof(small))
        return buf_append(b, small, (size_t)n);
    int rc = buf_reserve(b, (size_t)n + 1);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return ERR_OK;
}

/* The length of s's first part that JSON takes as it is: no byte below 0x20, no '"', no
 * '\\', no DEL. Eight bytes at a time (core/str.h); a word that has one is walked byte by
 * byte. */
static size_t json_plain_len(const char *s, size_t n)
{
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x = str_word(s + i);
        if (str_word_has_below(x, 0x20) || str_word_has(x, '"') || str_word_has(x, '\\') ||
            str_word_has(x, 0x7f))
            break;
    }
    while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' && s[i] != 0x7f)
        i++;
    return i;
}

int buf_json_escape(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t plain = json_plain_len(s, n); /* the common case: nothing to escape, one copy */
    if (plain == n)
        return buf_append(b, s, n);
    /* Worst case every byte becomes \u00XX: reserve once instead of per byte. */
    int rc = buf_reserve(b, n * 6);
    if (rc)
        return rc;
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    b->len = (size_t)(o - b->p);
    return ERR_OK;
}

int buf_put_json_str(struct buf *b, const char *head, size_t hn, const char *v, size_t vn)
{
    int rc = buf_reserve(b, hn + vn + 1);
    if (rc)
        return rc;
    memcpy(b->p + b->len, head, hn);
    b->len += hn;
    rc = buf_json_escape(b, v, vn);
    if (!rc && b->len == b->cap) /* (escaping took the room of the closing quote) */
        rc = buf_reserve(b, 1);
    if (rc)
        return rc;
    b->p[b->len++] = '"';
    return ERR_OK;
}

/* Two digits per division (its pair from a table): introspection's answer writes two times
 * on every call. */
int buf_put_i64(struct buf *b, int64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930"
                                   "31323334353637383940414243444546474849505152535455565758596061"
                                   "62636465666768697071727374757677787980818283848586878889909192"
                                   "93949596979899";
    char tmp[24], *e = tmp + sizeof(tmp), *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        p -= 2;
        memcpy(p, pairs + d, 2);
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, pairs + u * 2, 2);
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(e - p));
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void buf_shrink(struct buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep)
        buf_fini(b);
}
