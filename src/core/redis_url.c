/* SPDX-License-Identifier: MIT */
#include "core/redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

int redis_url_parse(const char *url, const char *what, struct redis_url *u, char *err,
                    size_t errcap)
{
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *q = strchr(url + 7, '?');
        size_t n = q ? (size_t)(q - url - 7) : strlen(url + 7);
        if (n == 0 || n >= sizeof(u->path))
            goto bad;
        memcpy(u->path, url + 7, n);
        if (q) {
            char *end;
            if (strncmp(q, "?db=", 4) != 0)
                goto bad;
            long v = strtol(q + 4, &end, 10);
            if (end == q + 4 || *end || v < 0 || v > 1000)
                goto bad;
            u->db = (int)v;
        }
        return ERR_OK;
    }
    if (strncmp(url, "redis://", 8) != 0)
        goto bad;
    const char *p = url + 8, *at = strchr(p, '@');
    if (at) {
        const char *pw = *p == ':' ? p + 1 : p; /* [user]:password@, user ignored */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon)
            pw = colon + 1;
        if ((size_t)(at - pw) >= sizeof(u->password))
            goto bad;
        memcpy(u->password, pw, (size_t)(at - pw));
        p = at + 1;
    }
    size_t hn = strcspn(p, ":/");
    if (hn == 0 || hn >= sizeof(u->host))
        goto bad;
    memcpy(u->host, p, hn);
    p += hn;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535)
            goto bad;
        u->port = (int)v;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || v < 0 || v > 1000)
            goto bad;
        u->db = (int)v;
    } else if (*p && strcmp(p, "/") != 0) {
        goto bad;
    }
    return ERR_OK;
bad:
    snprintf(err, errcap, "%s: expected redis://[:password@]host[:port][/db] or unix:///path",
             what);
    return ERR_INVAL;
}
