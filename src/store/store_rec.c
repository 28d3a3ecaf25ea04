/* SPDX-License-Identifier: MIT */
/* Record encodings; see store_rec.h. */
#include "store/store_rec.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static uint8_t *put64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
    return p + 8;
}

static int64_t get64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return (int64_t)u;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    p[0] = (uint8_t)(n & 0xff);
    p[1] = (uint8_t)(n >> 8);
    memcpy(p + 2, s, n);
    return p + 2 + n;
}

size_t store_refresh_encode(const struct store_refresh *r, uint8_t *out)
{
    size_t sl = strnlen(r->sub, STORE_SUB_MAX + 1);
    size_t cl = strnlen(r->client_id, STORE_CLIENT_MAX + 1);
    size_t ol = strnlen(r->scope, STORE_SCOPE_MAX + 1);
    uint8_t *p = out;

    if (sl > STORE_SUB_MAX || cl > STORE_CLIENT_MAX || ol > STORE_SCOPE_MAX)
        return 0;
    *p++ = STORE_REC_REFRESH_V2;
    *p++ = r->state;
    memcpy(p, r->family, STORE_FAMILY_ID);
    p += STORE_FAMILY_ID;
    memcpy(p, r->successor, STORE_DIGEST);
    p += STORE_DIGEST;
    p = put64(p, r->issued_at);
    p = put64(p, r->expires_at);
    p = put64(p, r->idle_expires_at);
    p = put64(p, r->rotated_at);
    p = put64(p, (int64_t)r->gen);
    p = put_str(p, r->sub, sl);
    p = put_str(p, r->client_id, cl);
    p = put_str(p, r->scope, ol);
    return (size_t)(p - out);
}

static int get_str(const uint8_t **p, const uint8_t *end, char *dst, size_t max)
{
    if (end - *p < 2)
        return ERR_INVAL;
    size_t n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
    *p += 2;
    if (n > max || (size_t)(end - *p) < n)
        return ERR_INVAL;
    if (memchr(*p, '\0', n)) /* (read as C strings: a NUL would cut one, "ann\0x" as "ann") */
        return ERR_INVAL;
    memcpy(dst, *p, n);
    dst[n] = '\0';
    *p += n;
    return ERR_OK;
}

int store_refresh_decode(const uint8_t *p, size_t n, struct store_refresh *r)
{
    const uint8_t *end = p + n;
    const size_t fixed = 2 + STORE_FAMILY_ID + STORE_DIGEST + 32;

    if (n < fixed || (p[0] != STORE_REC_VERSION && p[0] != STORE_REC_REFRESH_V2))
        return ERR_INVAL;
    bool v2 = p[0] == STORE_REC_REFRESH_V2;
    if (v2 && n < fixed + 8)
        return ERR_INVAL;
    r->state = p[1];
    p += 2;
    memcpy(r->family, p, STORE_FAMILY_ID);
    p += STORE_FAMILY_ID;
    memcpy(r->successor, p, STORE_DIGEST);
    p += STORE_DIGEST;
    r->issued_at = get64(p);
    r->expires_at = get64(p + 8);
    r->idle_expires_at = get64(p + 16);
    r->rotated_at = get64(p + 24);
    p += 32;
    r->gen = 0;
    if (v2) {
        r->gen = (uint64_t)get64(p);
        p += 8;
    }
    if (get_str(&p, end, r->sub, STORE_SUB_MAX) ||
        get_str(&p, end, r->client_id, STORE_CLIENT_MAX) ||
        get_str(&p, end, r->scope, STORE_SCOPE_MAX) || p != end)
        return ERR_INVAL;
    return ERR_OK;
}

size_t store_sessions_encode(uint64_t gen, char out[STORE_SESSIONS_ENC_MAX])
{
    return (size_t)snprintf(out, STORE_SESSIONS_ENC_MAX, "%llu", (unsigned long long)gen);
}

int store_sessions_decode(const void *p, size_t n, uint64_t *gen)
{
    const char *s = p;
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return ERR_INVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *gen = v;
    return ERR_OK;
}

void store_family_encode(const struct store_family *f, uint8_t out[STORE_FAMILY_ENC])
{
    out[0] = STORE_REC_VERSION;
    out[1] = f->revoked;
    put64(out + 2, f->expires_at);
    put64(out + 10, f->revoked_at);
}

int store_family_decode(const uint8_t *p, size_t n, struct store_family *f)
{
    if (n != STORE_FAMILY_ENC || p[0] != STORE_REC_VERSION)
        return ERR_INVAL;
    f->revoked = p[1];
    f->expires_at = get64(p + 2);
    f->revoked_at = get64(p + 10);
    return ERR_OK;
}
