/* SPDX-License-Identifier: MIT */
#include "redis/redis_url.h"

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
        while (q && *q) { /* ?name=value&name=value */
            const char *v = strchr(q + 1, '='), *next = strchr(q + 1, '&');
            if (!v || (next && next < v))
                goto bad;
            size_t nl = (size_t)(v - q - 1), vl = next ? (size_t)(next - v - 1) : strlen(v + 1);
            char *dst = NULL;
            size_t cap = 0;
            if (nl == 2 && strncmp(q + 1, "db", 2) == 0) {
                char num[8], *end;
                if (vl == 0 || vl >= sizeof(num))
                    goto bad;
                memcpy(num, v + 1, vl);
                num[vl] = '\0';
                long d = strtol(num, &end, 10);
                if (*end || d < 0 || d > 1000)
                    goto bad;
                u->db = (int)d;
            } else if (nl == 4 && strncmp(q + 1, "user", 4) == 0) {
                dst = u->user;
                cap = sizeof(u->user);
            } else if (nl == 8 && strncmp(q + 1, "password", 8) == 0) {
                dst = u->password;
                cap = sizeof(u->password);
            } else {
                goto bad;
            }
            if (dst) {
                if (vl >= cap)
                    goto bad;
                memcpy(dst, v + 1, vl);
                dst[vl] = '\0';
            }
            q = next;
        }
        return ERR_OK;
    }
    if (strncmp(url, "redis://", 8) != 0)
        goto bad;
    const char *p = url + 8, *at = strchr(p, '@');
    if (at) {
        const char *pw = p; /* [user]:password@, or password@ */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if ((size_t)(colon - p) >= sizeof(u->user))
                goto bad;
            memcpy(u->user, p, (size_t)(colon - p));
            pw = colon + 1;
        }
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
    snprintf(err, errcap,
             "%s: expected redis://[[user]:password@]host[:port][/db] or "
             "unix:///path[?db=N&user=U&password=P]",
             what);
    return ERR_INVAL;
}

int redis_url_auth(const struct redis_url *u, const char *argv[3], size_t lens[3])
{
    int n = 0;
    if (!u->password[0])
        return 0;
    argv[n] = "AUTH";
    lens[n++] = 4;
    if (u->user[0]) {
        argv[n] = u->user;
        lens[n++] = strlen(u->user);
    }
    argv[n] = u->password;
    lens[n++] = strlen(u->password);
    return n;
}

int redis_cluster_url_parse(const char *url, const char *what, struct redis_cluster_url *u,
                            char *err, size_t errcap)
{
    static const char scheme[] = "redis-cluster://";
    char one[1024];

    memset(u, 0, sizeof(*u));
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        goto bad;
    const char *p = url + sizeof(scheme) - 1, *at = strchr(p, '@');
    size_t un = at ? (size_t)(at - p) + 1 : 0; /* "[user]:password@" */
    const char *list = p + un;
    while (*list) {
        size_t sn = strcspn(list, ",");
        if (u->n == REDIS_SEEDS_MAX || sn == 0 || !memchr(list, ':', sn) || memchr(list, '/', sn) ||
            (size_t)snprintf(one, sizeof(one), "redis://%.*s%.*s", (int)un, p, (int)sn, list) >=
                sizeof(one) ||
            redis_url_parse(one, what, &u->seed[u->n], err, errcap) != ERR_OK)
            goto bad;
        u->n++;
        list += sn + (list[sn] == ',');
        if (list[-1] == ',' && !*list)
            goto bad; /* (a trailing comma) */
    }
    if (u->n == 0)
        goto bad;
    return ERR_OK;
bad:
    memset(u, 0, sizeof(*u));
    snprintf(err, errcap, "%s: expected redis-cluster://[[user]:password@]host:port[,host:port...]",
             what);
    return ERR_INVAL;
}
