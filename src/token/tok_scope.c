/* SPDX-License-Identifier: MIT */
#include "token/tok_scope.h"

#include <string.h>

#include "core/err.h"

static bool item_in(const char *item, size_t n, const char *list)
{
    const char *p = list;
    while (*p) {
        size_t m = strcspn(p, " ");
        if (m == n && memcmp(p, item, n) == 0)
            return true;
        p += m;
        while (*p == ' ')
            p++;
    }
    return false;
}

bool tok_scope_subset(struct str want, const char *allowed)
{
    size_t i = 0;
    while (i < want.len) {
        while (i < want.len && want.p[i] == ' ')
            i++;
        size_t start = i;
        while (i < want.len && want.p[i] != ' ')
            i++;
        if (i > start && !item_in(want.p + start, i - start, allowed))
            return false;
    }
    return true;
}

int tok_scope_normalize(struct str in, char *out, size_t cap)
{
    size_t o = 0;
    int need_space = 0;

    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c == ' ') {
            need_space = o > 0;
            continue;
        }
        if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e)
            return ERR_INVAL;
        if (o + 2 >= cap)
            return ERR_LIMIT;
        if (need_space) {
            out[o++] = ' ';
            need_space = 0;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return ERR_OK;
}
