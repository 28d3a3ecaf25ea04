/* SPDX-License-Identifier: MIT */
/* A blocking Redis connection; see redis_sync.h. */
#include "redis/redis_sync.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "core/err.h"
#include "redis/redis_uv.h"

static redisContext *C(struct redis_sync *c)
{
    return (redisContext *)(void *)c;
}

static struct redis_reply *RP(void *r)
{
    return (struct redis_reply *)r;
}

struct redis_sync *redis_sync_connect(const struct redis_url *u, unsigned timeout_ms, char *err,
                                      size_t cap)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *c = u->path[0] ? redisConnectUnixWithTimeout(u->path, tv)
                                 : redisConnectWithTimeout(u->host, u->port, tv);
    redisReply *r = NULL;
    const char *av[3];
    size_t al[3];
    char db[16];

    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK)
        goto fail;
    int an = redis_url_auth(u, av, al);
    if (an) {
        r = redisCommandArgv(c, an, av, al);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    if (u->db) {
        snprintf(db, sizeof(db), "%d", u->db);
        const char *sv[2] = {"SELECT", db};
        size_t sl[2] = {6, strlen(db)};
        r = redisCommandArgv(c, 2, sv, sl);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    return (struct redis_sync *)(void *)c;
fail:; /* (a label names a statement, not a declaration, before C23) */
    const char *why = r && r->type == REDIS_REPLY_ERROR ? r->str
                      : c && c->err                     ? c->errstr
                                                        : "unexpected answer";
    if (u->path[0])
        snprintf(err, cap, "redis unix:%s: %s", u->path, why);
    else
        snprintf(err, cap, "redis %s:%d: %s", u->host, u->port, why);
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
}

struct redis_reply *redis_sync_cmd(struct redis_sync *c, int argc, const char **argv,
                                   const size_t *lens)
{
    return RP(redisCommandArgv(C(c), argc, argv, lens));
}

struct redis_reply *redis_sync_cmdv(struct redis_sync *c, const char *const *argv)
{
    const char *av[32];
    size_t al[32];
    int n = 0;
    while (n < 32 && argv[n]) {
        av[n] = argv[n];
        al[n] = strlen(argv[n]);
        n++;
    }
    if (argv[n]) /* more than 32 arguments: refused, never sent cut */
        return NULL;
    return redis_sync_cmd(c, n, av, al);
}

int redis_sync_fd(const struct redis_sync *c)
{
    return ((const redisContext *)(const void *)c)->fd;
}

int redis_sync_read(struct redis_sync *c, void (*fn)(const struct redis_reply *r, void *arg),
                    void *arg)
{
    void *rep = NULL;
    if (redisBufferRead(C(c)) != REDIS_OK)
        return -1;
    while (redisGetReplyFromReader(C(c), &rep) == REDIS_OK && rep) {
        fn(RP(rep), arg);
        freeReplyObject(rep);
        rep = NULL;
    }
    return 0;
}

void redis_sync_close(struct redis_sync *c)
{
    if (c)
        redisFree(C(c));
}
