/* SPDX-License-Identifier: MIT */
/*
 * Where a Redis is: redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N].
 * Shared by the Redis store and the Redis Streams event sink. Pure parsing; any thread.
 */
#ifndef CORE_REDIS_URL_H
#define CORE_REDIS_URL_H

#include <stddef.h>

struct redis_url {
    char host[256];
    int port;       /* 6379 unless given */
    char path[256]; /* unix socket, if set (host is then empty) */
    char password[256];
    int db;
};

/* ERR_OK, or ERR_INVAL with "<what>: expected ..." in err. */
int redis_url_parse(const char *url, const char *what, struct redis_url *u, char *err,
                    size_t errcap);

#endif
