/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: form and percent decoding. Beyond the sanitizers: a decoded field never holds
 * a NUL and is never longer than its encoding, names found by http_form_get are the ones
 * parsed, and decoding is the inverse of a strict re-encoding. The same bytes as Basic
 * credentials: an id and a secret without NULs, terminated, no longer than the input; as a
 * Cookie header: a value inside the input, never spanning a ';'.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "http/http_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reencode_check(struct str v, struct arena *a)
{
    static const char hex[] = "0123456789ABCDEF";
    char *enc = arena_alloc(a, v.len * 3 + 1);
    size_t n = 0;
    if (!enc)
        return;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        enc[n++] = '%';
        enc[n++] = hex[c >> 4];
        enc[n++] = hex[c & 15];
    }
    char *dec = arena_alloc(a, n + 1);
    size_t dn;
    if (!dec)
        return;
    if (http_pct_decode((struct str){enc, n}, 0, dec, &dn) || dn != v.len ||
        memcmp(dec, v.p, dn) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a;
    struct http_form f;
    struct str in = {(const char *)data, size};

    arena_init(&a, 1024, 1 << 20);
    /* The whole input as one value: with nothing to decode ('%', '+', NUL), itself. */
    char *whole = arena_alloc(&a, size + 1);
    size_t wn;
    int wrc = whole ? http_pct_decode(in, 1, whole, &wn) : ERR_NOMEM;
    bool plain = !memchr(data, '%', size) && !memchr(data, '+', size) && !memchr(data, 0, size);
    if (plain && (wrc != ERR_OK || wn != size || (size && memcmp(whole, data, size) != 0)))
        abort();
    if (wrc == ERR_OK && (wn > size || memchr(whole, 0, wn)))
        abort();
    int rc = http_form_parse(in, 64, &a, &f);
    if (rc == ERR_OK) {
        for (size_t i = 0; i < f.n; i++) {
            struct str nm = f.pairs[i].name, v = f.pairs[i].value, got;
            if (nm.len > size || v.len > size || memchr(nm.p, 0, nm.len) || memchr(v.p, 0, v.len))
                abort();
            if (nm.p[nm.len] != 0 || v.p[v.len] != 0)
                abort();
            int g = http_form_get(&f, nm.p, &got);
            if (g != ERR_OK && g != ERR_CONFLICT)
                abort();
            reencode_check(v, &a);
        }
    } else if (rc != ERR_INVAL && rc != ERR_LIMIT && rc != ERR_NOMEM) {
        abort();
    }
    struct str cv;
    rc = http_cookie_get(in, "fg_csrf", &cv);
    if (rc == ERR_OK ? (cv.p < in.p || cv.p + cv.len > in.p + in.len || memchr(cv.p, ';', cv.len))
                     : rc != ERR_NOTFOUND && rc != ERR_CONFLICT)
        abort();
    struct str id, secret;
    rc = http_basic_credentials(in, &a, &id, &secret);
    if (rc == ERR_OK) {
        if (id.len + secret.len >= size || id.p[id.len] || secret.p[secret.len] ||
            memchr(id.p, 0, id.len) || memchr(secret.p, 0, secret.len))
            abort();
    } else if (rc != ERR_INVAL && rc != ERR_NOMEM) {
        abort();
    }
    arena_fini(&a);
    return 0;
}
