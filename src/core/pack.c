/* SPDX-License-Identifier: MIT */
/* Small binary records; see pack.h. */
#include "core/pack.h"

#include <string.h>

void pack_put(struct pack_w *w, const void *v, size_t n)
{
    if (w->bad || n > w->cap - w->n) {
        w->bad = true;
        return;
    }
    memcpy(w->p + w->n, v, n);
    w->n += n;
}

void pack_u8(struct pack_w *w, uint8_t v)
{
    pack_put(w, &v, 1);
}

void pack_u64(struct pack_w *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    pack_put(w, b, 8);
}

void pack_str(struct pack_w *w, const char *s, size_t max, bool wide)
{
    size_t n = strlen(s);
    uint8_t len[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
    if (n > max || n > (wide ? 0xffffu : 0xffu)) {
        w->bad = true;
        return;
    }
    pack_put(w, len, wide ? 2 : 1);
    pack_put(w, s, n);
}

void unpack_get(struct pack_r *r, void *v, size_t n)
{
    if (r->bad || n > r->n - r->at) {
        r->bad = true;
        memset(v, 0, n);
        return;
    }
    memcpy(v, r->p + r->at, n);
    r->at += n;
}

uint8_t unpack_u8(struct pack_r *r)
{
    uint8_t v;
    unpack_get(r, &v, 1);
    return v;
}

uint64_t unpack_u64(struct pack_r *r)
{
    uint8_t b[8];
    uint64_t v = 0;
    unpack_get(r, b, 8);
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

void unpack_str(struct pack_r *r, char *out, size_t cap, bool wide)
{
    uint8_t len[2] = {0, 0};
    unpack_get(r, len, wide ? 2 : 1);
    size_t n = (size_t)len[0] | (size_t)len[1] << 8;
    out[0] = '\0';
    if (r->bad || n >= cap) {
        r->bad = true;
        return;
    }
    unpack_get(r, out, n);
    out[r->bad ? 0 : n] = '\0';
    if (!r->bad && memchr(out, '\0', n))
        r->bad = true;
}
