/* SPDX-License-Identifier: MIT */
/* Redis Sentinel: where the primary is; see redis_sentinel.h. */
#include "redis/redis_sentinel.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "redis/redis_reply.h"
#include "redis/redis_sync.h"

int redis_sentinel_url_parse(const char *url, const char *what, struct redis_sentinel_url *u,
                             char *err, size_t errcap)
{
    static const char scheme[] = "redis-sentinel://";
    char list[1024], one[1200];

    memset(u, 0, sizeof(*u));
    const char *slash = strncmp(url, scheme, sizeof(scheme) - 1) == 0
                            ? strchr(url + sizeof(scheme) - 1, '/')
                            : NULL;
    if (!slash || (size_t)(slash - url) >= sizeof(list))
        goto bad;
    const char *name = slash + 1, *db = strchr(name, '/');
    size_t nn = db ? (size_t)(db - name) : strlen(name);
    if (nn == 0 || nn >= sizeof(u->name) || strcspn(name, " ") < nn)
        goto bad;
    memcpy(u->name, name, nn);
    /* the sentinels: the list as a cluster's seeds (the same syntax), then their
     * credentials dropped: they belong to the primary */
    snprintf(list, sizeof(list), "redis-cluster://%.*s",
             (int)(slash - url) - (int)(sizeof(scheme) - 1), url + sizeof(scheme) - 1);
    if (redis_cluster_url_parse(list, what, &u->sentinels, err, errcap))
        goto bad;
    /* the primary's credentials and db, through the redis:// reader */
    const char *hosts = url + sizeof(scheme) - 1, *at = memchr(hosts, '@', (size_t)(slash - hosts));
    snprintf(one, sizeof(one), "redis://%.*sh%s", at ? (int)(at - hosts) + 1 : 0, hosts,
             db ? db : "");
    if (redis_url_parse(one, what, &u->primary, err, errcap))
        goto bad;
    u->primary.host[0] = '\0';
    u->primary.port = 0;
    for (unsigned i = 0; i < u->sentinels.n; i++) {
        u->sentinels.seed[i].user[0] = u->sentinels.seed[i].password[0] = '\0';
        u->sentinels.seed[i].db = 0;
    }
    return ERR_OK;
bad:
    memset(u, 0, sizeof(*u));
    snprintf(err, errcap,
             "%s: expected redis-sentinel://[[user]:password@]host:port[,host:port...]/NAME[/db]",
             what);
    return ERR_INVAL;
}

int redis_sentinel_primary(const struct redis_sentinel_url *u, unsigned timeout_ms,
                           struct redis_url *out, char *err, size_t errcap)
{
    const char *ask[] = {"SENTINEL", "get-master-addr-by-name", u->name, NULL};
    char why[256] = "no sentinel answered";

    for (unsigned i = 0; i < u->sentinels.n; i++) {
        struct redis_sync *c =
            redis_sync_connect(&u->sentinels.seed[i], timeout_ms, why, sizeof(why));
        struct redis_reply *r = c ? redis_sync_cmdv(c, ask) : NULL;
        const struct redis_reply *h = r ? redis_reply_at(r, 0) : NULL,
                                 *p = r ? redis_reply_at(r, 1) : NULL;
        size_t hn = 0, pn = 0;
        const char *host = h ? redis_reply_str(h, &hn) : "",
                   *port = p ? redis_reply_str(p, &pn) : "";
        long v = 0;
        char num[8];
        if (pn > 0 && pn < sizeof(num)) {
            memcpy(num, port, pn);
            num[pn] = '\0';
            char *end;
            v = strtol(num, &end, 10);
            if (*end)
                v = 0;
        }
        bool ok = r && redis_reply_kind(r) == RK_ARRAY && redis_reply_count(r) == 2 && hn > 0 &&
                  hn < sizeof(out->host) && v > 0 && v <= 65535;
        if (ok) {
            *out = u->primary;
            memcpy(out->host, host, hn);
            out->host[hn] = '\0';
            out->port = (int)v;
        } else if (r) {
            snprintf(why, sizeof(why), "sentinel %s:%d does not know '%s'",
                     u->sentinels.seed[i].host, u->sentinels.seed[i].port, u->name);
        }
        redis_reply_free(r);
        redis_sync_close(c);
        if (ok)
            return ERR_OK;
    }
    snprintf(err, errcap, "%s", why);
    return ERR_BACKEND;
}
