/* SPDX-License-Identifier: MIT */
/* Form and percent decoding. Every read is bounded by the input view's length. */
#include "http/http_form.h"

#include <string.h>

#include <sodium.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/str.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int http_pct_decode(struct str in, int plus_is_space, char *dst, size_t *out_len)
{
    size_t o = 0;

    /* Most values have nothing to decode (a token is base64url and dots): then a copy, in a
     * few vector passes, not a branch per byte. */
    if (!in.len || (!memchr(in.p, '%', in.len) && !(plus_is_space && memchr(in.p, '+', in.len)) &&
                    !memchr(in.p, 0, in.len))) {
        if (in.len)
            memcpy(dst, in.p, in.len);
        *out_len = in.len;
        return ERR_OK;
    }

    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c == '%') {
            if (in.len - i < 3)
                return ERR_INVAL;
            int hi = hexval((unsigned char)in.p[i + 1]);
            int lo = hexval((unsigned char)in.p[i + 2]);
            if (hi < 0 || lo < 0)
                return ERR_INVAL;
            c = (unsigned char)(hi << 4 | lo);
            if (c == 0)
                return ERR_INVAL;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            return ERR_INVAL;
        }
        dst[o++] = (char)c;
    }
    *out_len = o;
    return ERR_OK;
}

static int decode_into(struct arena *a, const char *p, size_t n, struct str *out)
{
    char *dst = arena_alloc(a, n + 1);
    size_t len;

    if (!dst)
        return ERR_NOMEM;
    int rc = http_pct_decode((struct str){p, n}, 1, dst, &len);
    if (rc)
        return rc;
    dst[len] = '\0';
    *out = (struct str){dst, len};
    return ERR_OK;
}

int http_form_parse(struct str in, size_t max_pairs, struct arena *a, struct http_form *out)
{
    size_t count = 0;

    out->pairs = NULL;
    out->n = 0;
    /* Count first, so the pairs array is one allocation of the exact size. */
    for (size_t i = 0; i < in.len;) {
        const char *amp = memchr(in.p + i, '&', in.len - i);
        size_t seg = amp ? (size_t)(amp - (in.p + i)) : in.len - i;
        if (seg)
            count++;
        i += seg + 1;
    }
    if (count > max_pairs)
        return ERR_LIMIT;
    if (count == 0)
        return ERR_OK;
    struct http_form_pair *pairs = arena_alloc(a, count * sizeof(*pairs));
    if (!pairs)
        return ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < in.len;) {
        const char *s = in.p + i;
        const char *amp = memchr(s, '&', in.len - i);
        size_t seg = amp ? (size_t)(amp - s) : in.len - i;
        i += seg + 1;
        if (!seg)
            continue;
        const char *eq = memchr(s, '=', seg);
        size_t nlen = eq ? (size_t)(eq - s) : seg;
        int rc = decode_into(a, s, nlen, &pairs[n].name);
        if (rc)
            return rc;
        rc = eq ? decode_into(a, eq + 1, seg - nlen - 1, &pairs[n].value)
                : decode_into(a, s, 0, &pairs[n].value);
        if (rc)
            return rc;
        n++;
    }
    out->pairs = pairs;
    out->n = n;
    return ERR_OK;
}

int http_form_get(const struct http_form *f, const char *name, struct str *value)
{
    struct str want = str_c(name);
    int found = 0;

    for (size_t i = 0; i < f->n; i++) {
        if (!str_eq(f->pairs[i].name, want))
            continue;
        if (found)
            return ERR_CONFLICT;
        *value = f->pairs[i].value;
        found = 1;
    }
    return found ? ERR_OK : ERR_NOTFOUND;
}

int http_basic_credentials(struct str b64, struct arena *a, struct str *id, struct str *secret)
{
    char raw[512];
    const char *end = NULL;
    size_t n = 0, il, sl;

    /* (str_ascii: libsodium 1.0.18 takes bytes from 0x80 up for '/') */
    if (b64.len > sizeof(raw) / 3 * 4 || !str_ascii(b64.p, b64.len) ||
        sodium_base642bin((unsigned char *)raw, sizeof(raw), b64.p, b64.len, NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64.p + b64.len)
        return ERR_INVAL;
    const char *colon = memchr(raw, 0, n) ? NULL : memchr(raw, ':', n);
    size_t idn = colon ? (size_t)(colon - raw) : 0, sn = colon ? n - idn - 1 : 0;
    char *idd = colon ? arena_alloc(a, idn + 1) : NULL, *sd = colon ? arena_alloc(a, sn + 1) : NULL;
    int rc = !colon        ? ERR_INVAL
             : !idd || !sd ? ERR_NOMEM
             : http_pct_decode((struct str){raw, idn}, 1, idd, &il) ||
                     http_pct_decode((struct str){colon + 1, sn}, 1, sd, &sl)
                 ? ERR_INVAL
                 : ERR_OK;
    sodium_memzero(raw, sizeof(raw));
    if (rc == ERR_OK) {
        idd[il] = sd[sl] = '\0';
        *id = (struct str){idd, il};
        *secret = (struct str){sd, sl};
    }
    return rc;
}

int http_cookie_get(struct str h, const char *name, struct str *value)
{
    size_t nl = strlen(name), i = 0;
    int found = 0;

    while (i < h.len) {
        while (i < h.len && (h.p[i] == ' ' || h.p[i] == ';' || h.p[i] == '\t'))
            i++;
        size_t s = i;
        while (i < h.len && h.p[i] != ';')
            i++;
        const char *eq = memchr(h.p + s, '=', i - s);
        if (!eq || (size_t)(eq - (h.p + s)) != nl || memcmp(h.p + s, name, nl) != 0)
            continue;
        size_t vs = (size_t)(eq - h.p) + 1, ve = i;
        while (ve > vs && (h.p[ve - 1] == ' ' || h.p[ve - 1] == '\t'))
            ve--;
        if (found++)
            return ERR_CONFLICT;
        *value = (struct str){h.p + vs, ve - vs};
    }
    return found ? ERR_OK : ERR_NOTFOUND;
}
