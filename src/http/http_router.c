/* SPDX-License-Identifier: MIT */
/*
 * A linear scan over a few dozen routes costs less than hashing the path; a route table that
 * grows past ~100 entries should switch to a segment trie. Each route's fixed part (all of it
 * when it has no {param}) is compared by length and memcmp before the segment walk, so a route
 * that is not the path costs a few instructions.
 */
#include "http/http_router.h"

#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "core/err.h"
#include "core/mem.h"
#include "metrics/met.h"

struct http_router {
    struct http_route routes[MET_ROUTES_MAX];
    unsigned n;
    unsigned base; /* ids are base + 1 .. base + n */
};

struct http_router *http_router_new(void)
{
    return xcalloc(1, sizeof(struct http_router));
}

void http_router_free(struct http_router *rt)
{
    mem_free(rt);
}

int http_router_add(struct http_router *rt, unsigned methods, const char *pattern,
                    http_handler_cb handler)
{
    if (pattern[0] != '/' || !methods || !handler)
        return ERR_INVAL;
    /* A {name} must be a whole segment: "/{a}/x", never "/x{a}" or an unclosed brace. */
    for (const char *p = pattern; *p; p++) {
        if (*p != '{')
            continue;
        const char *close = strchr(p, '}');
        if (p[-1] != '/' || !close || close == p + 1 || (close[1] && close[1] != '/'))
            return ERR_INVAL;
        p = close;
    }
    if (rt->base + rt->n + 1 >= MET_ROUTES_MAX)
        return ERR_LIMIT;
    if (methods & HTTP_M(HTTP_GET))
        methods |= HTTP_M(HTTP_HEAD);
    struct http_route *r = &rt->routes[rt->n++];
    r->id = rt->base + rt->n;
    r->methods = methods;
    r->pattern = pattern;
    r->handler = handler;
    r->fixed = strcspn(pattern, "{");
    return (int)r->id;
}

/* Matches `path` against `pat`; literal segments compare exactly, {x} takes one segment. */
static int match(const char *pat, struct str path, struct str *params, unsigned *np)
{
    const char *p = path.p;
    const char *end = path.p + path.len;
    unsigned n = 0;

    while (*pat) {
        if (*pat == '{') {
            const char *close = strchr(pat, '}');
            const char *seg = p;
            while (p < end && *p != '/')
                p++;
            if (p == seg || n >= HTTP_PARAMS_MAX)
                return 0;
            params[n++] = (struct str){seg, (size_t)(p - seg)};
            pat = close + 1;
            continue;
        }
        if (p == end || *p != *pat)
            return 0;
        p++;
        pat++;
    }
    if (p != end)
        return 0;
    *np = n;
    return 1;
}

const struct http_route *http_router_match(const struct http_router *rt, unsigned method,
                                           struct str path, struct str *params, unsigned *nparams,
                                           unsigned *allow)
{
    struct str tmp[HTTP_PARAMS_MAX];
    unsigned ntmp;

    *allow = 0;
    *nparams = 0;
    for (unsigned i = 0; i < rt->n; i++) {
        const struct http_route *r = &rt->routes[i];
        bool all_fixed = r->pattern[r->fixed] == '\0'; /* (no {param}) */
        if (all_fixed ? path.len != r->fixed : path.len < r->fixed)
            continue;
        if (memcmp(path.p, r->pattern, r->fixed) != 0)
            continue;
        if (all_fixed)
            ntmp = 0;
        else if (!match(r->pattern + r->fixed, (struct str){path.p + r->fixed, path.len - r->fixed},
                        tmp, &ntmp))
            continue;
        if (method < 32 && (r->methods & HTTP_M(method))) {
            memcpy(params, tmp, sizeof(tmp[0]) * ntmp);
            *nparams = ntmp;
            return r;
        }
        *allow |= r->methods;
    }
    return NULL;
}

unsigned http_router_count(const struct http_router *rt)
{
    return rt->n;
}

const char *http_router_pattern(const struct http_router *rt, unsigned id)
{
    return (id > rt->base && id <= rt->base + rt->n) ? rt->routes[id - rt->base - 1].pattern : NULL;
}

void http_router_first_id(struct http_router *rt, unsigned first)
{
    rt->base = first ? first - 1 : 0;
}

void http_methods_str(unsigned mask, char *dst, size_t cap)
{
    size_t len = 0;

    dst[0] = '\0';
    for (unsigned m = 0; m < 32; m++) {
        if (!(mask & (1u << m)))
            continue;
        int w = snprintf(dst + len, cap - len, "%s%s", len ? ", " : "",
                         http_method_str((enum http_method)m));
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
}
