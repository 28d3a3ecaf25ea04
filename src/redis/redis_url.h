/* SPDX-License-Identifier: MIT */
/*
 * Where a Redis is: redis://[[user]:password@]host[:port][/db] (a bare "password@" is a
 * password, as redis-cli reads it), or unix:///path[?db=N][&user=U][&password=P]. A user
 * means Redis 6 ACLs (AUTH user password); without one, AUTH password.
 * Shared by the Redis store and the Redis Streams event sink. Pure parsing; any thread.
 */
#ifndef REDIS_REDIS_URL_H
#define REDIS_REDIS_URL_H

#include <stddef.h>

struct redis_url {
    char host[256];
    int port;       /* 6379 unless given */
    char path[256]; /* unix socket, if set (host is then empty) */
    char user[128];
    char password[256];
    int db;
};

/* A Redis Cluster: redis-cluster://[[user]:password@]host:port[,host:port...] names some of
 * its nodes (the seeds: any node answers with the whole map), every one with the same ACL
 * user and password; database 0 only (a cluster has no other). Each seed as a redis_url. */
#define REDIS_SEEDS_MAX 16
struct redis_cluster_url {
    unsigned n;
    struct redis_url seed[REDIS_SEEDS_MAX];
};

/* ERR_OK, or ERR_INVAL with "<what>: expected ..." in err. */
int redis_cluster_url_parse(const char *url, const char *what, struct redis_cluster_url *u,
                            char *err, size_t errcap);

/* The AUTH command for u into argv/lens (3 slots): its argc, 0 when no password is set. */
int redis_url_auth(const struct redis_url *u, const char *argv[3], size_t lens[3]);

/* ERR_OK, or ERR_INVAL with "<what>: expected ..." in err. */
int redis_url_parse(const char *url, const char *what, struct redis_url *u, char *err,
                    size_t errcap);

#endif
