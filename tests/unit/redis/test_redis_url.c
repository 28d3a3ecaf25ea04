/* SPDX-License-Identifier: MIT */
/* Redis addresses: host, port, db, user and password, unix sockets; bad ones refused. */
#include <string.h>

#include "core/err.h"
#include "harness.h"
#include "redis/redis_url.h"

TEST(tcp_forms)
{
    struct redis_url u;
    char err[160];
    ASSERT_EQ_INT(redis_url_parse("redis://10.0.0.5", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.host, "10.0.0.5");
    ASSERT_EQ_INT(u.port, 6379);
    ASSERT_EQ_INT(u.db, 0);
    ASSERT_EQ_STR(u.password, "");
    ASSERT_EQ_INT(redis_url_parse("redis://:s3cret@h:6380/2", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.host, "h");
    ASSERT_EQ_INT(u.port, 6380);
    ASSERT_EQ_INT(u.db, 2);
    ASSERT_EQ_STR(u.user, "");
    ASSERT_EQ_STR(u.password, "s3cret");
    ASSERT_EQ_INT(redis_url_parse("redis://fg:pw@h", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.user, "fg");
    ASSERT_EQ_STR(u.password, "pw");
    ASSERT_EQ_INT(redis_url_parse("redis://pw@h/", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.user, "");
    ASSERT_EQ_STR(u.password, "pw");
}

TEST(unix_forms)
{
    struct redis_url u;
    char err[160];
    ASSERT_EQ_INT(redis_url_parse("unix:///run/redis.sock", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.path, "/run/redis.sock");
    ASSERT_EQ_INT(
        redis_url_parse("unix:///r.sock?db=3&user=fg&password=p%", "store", &u, err, sizeof(err)),
        0);
    ASSERT_EQ_STR(u.path, "/r.sock");
    ASSERT_EQ_INT(u.db, 3);
    ASSERT_EQ_STR(u.user, "fg");
    ASSERT_EQ_STR(u.password, "p%");
}

TEST(auth_command)
{
    struct redis_url u;
    const char *av[3];
    size_t al[3];
    char err[160];
    ASSERT_EQ_INT(redis_url_parse("redis://h", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_INT(redis_url_auth(&u, av, al), 0);
    ASSERT_EQ_INT(redis_url_parse("redis://:pw@h", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_INT(redis_url_auth(&u, av, al), 2);
    ASSERT_EQ_STR(av[1], "pw");
    ASSERT_EQ_INT(redis_url_parse("redis://fg:pw@h", "store", &u, err, sizeof(err)), 0);
    ASSERT_EQ_INT(redis_url_auth(&u, av, al), 3);
    ASSERT_EQ_STR(av[1], "fg");
    ASSERT_EQ_INT(al[2], 2);
}

TEST(bad_addresses_are_refused_with_the_key_named)
{
    static const char *const bad[] = {
        "",
        "http://h",
        "redis://",
        "redis://h:0",
        "redis://h:70000",
        "redis://h:x",
        "redis://h/x",
        "redis://h/1001",
        "unix://",
        "unix:///s?db=",
        "unix:///s?db=-1",
        "unix:///s?color=red",
        "unix:///s?user",
        "redis://h:6379/1/2",
    };
    struct redis_url u;
    char err[160];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (redis_url_parse(bad[i], "store", &u, err, sizeof(err)) != ERR_INVAL) {
            harness_fail(__FILE__, __LINE__, "accepted: '%s'", bad[i]);
            return;
        }
        ASSERT_TRUE(strncmp(err, "store: expected redis://", 24) == 0);
    }
}
