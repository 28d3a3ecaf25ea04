/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the event JSON builder (src/event/ev.c), which escapes request-derived text
 * (usernames tried, scopes, client ids) by hand into a fixed 640-byte buffer. Beyond the
 * sanitizers: the result is always one JSON object that jansson parses, with id, type,
 * time, source and an object "data"; it fits the buffer; and unless it says "truncated", every
 * field comes back exactly (bytes >= 0x7f as the code points U+0080..U+00FF they were
 * escaped to).
 *
 * Input: a type byte, then NUL-separated key, value, key, value, ...
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event/ev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 64

/* Decodes jansson's UTF-8 back to the original bytes (each code point < 256). */
static int same_bytes(const char *utf8, size_t ulen, const char *orig)
{
    size_t i = 0, j = 0;
    while (i < ulen) {
        unsigned char c = (unsigned char)utf8[i];
        unsigned cp;
        if (c < 0x80) {
            cp = c;
            i++;
        } else if ((c & 0xe0) == 0xc0 && i + 1 < ulen) {
            cp = ((c & 0x1fu) << 6) | ((unsigned char)utf8[i + 1] & 0x3fu);
            i += 2;
        } else {
            return 0;
        }
        if (cp > 0xff || (unsigned char)orig[j] != cp)
            return 0;
        j++;
    }
    return orig[j] == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[1 << 16];
    const char *keys[MAX_FIELDS], *vals[MAX_FIELDS];
    size_t n = 0;
    struct ev e;

    if (size < 1 || size >= sizeof(buf))
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    for (size_t i = 0; i < size - 1 && n < MAX_FIELDS;) {
        keys[n] = buf + i;
        i += strlen(buf + i) + 1;
        if (i >= size)
            break;
        vals[n++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    /* the longest source an instance may have: the envelope at its largest */
    static const char src[] = "a-source-of-the-longest-length-allowed-is-48-chr";
    ev_set_source(src);
    ev_begin(&e, (enum ev_type)(data[0] % EV_NTYPES));
    for (size_t i = 0; i < n; i++) {
        if (data[0] & 0x80 && i % 3 == 2)
            ev_int(&e, keys[i], (long long)strlen(vals[i]) - 7);
        else
            ev_str(&e, keys[i], vals[i]);
    }
    ev_finish(&e);
    if (e.len >= sizeof(e.json) || e.json[e.len] != 0 || strlen(e.json) != e.len)
        abort();
    json_error_t err;
    json_t *o = json_loadb(e.json, e.len, JSON_REJECT_DUPLICATES, &err);
    int dup = 0;
    if (!o) {
        /* only a repeated key may make it fail: check with duplicates allowed */
        o = json_loadb(e.json, e.len, 0, &err);
        dup = 1;
    }
    if (!o || !json_is_object(o) || !json_is_string(json_object_get(o, "id")) ||
        strcmp(json_string_value(json_object_get(o, "type")),
               ev_type_name((enum ev_type)(data[0] % EV_NTYPES))) != 0 ||
        !json_is_string(json_object_get(o, "time")) ||
        strcmp(json_string_value(json_object_get(o, "source")), src) != 0)
        abort();
    json_t *d = json_object_get(o, "data");
    if (!json_is_object(d))
        abort();
    if (!dup && !json_object_get(d, "truncated")) {
        for (size_t i = 0; i < n; i++) {
            /* keys are escaped like values: find the one that decodes to this key */
            const char *k;
            json_t *v = NULL, *x;
            json_object_foreach(d, k, x)
            {
                if (same_bytes(k, strlen(k), keys[i]))
                    v = x;
            }
            if (!v)
                abort();
            if (json_is_string(v) &&
                !same_bytes(json_string_value(v), json_string_length(v), vals[i]))
                abort();
        }
    }
    json_decref(o);
    return 0;
}
