/* SPDX-License-Identifier: MIT */
/* Redis Cluster (#14 item 1): hash slots and redirections by the specification's examples,
 * the redis-cluster:// URL, and the client against a real local cluster (three primaries
 * that redis-cli joins): commands routed by slot, a slot moved by hand under it (ASK while
 * it moves, MOVED once it has), and a clean close. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "core/err.h"
#include "fixture.h"
#include "harness.h"
#include "redis/redis_cluster.h"
#include "redis/redis_sentinel.h"
#include "redis/redis_slot.h"
#include "redis/redis_url.h"

TEST(hash_slots_are_the_specifications)
{
    ASSERT_EQ_INT(redis_key_slot("123456789", 9), 12739); /* CRC16 XMODEM 0x31C3 */
    ASSERT_EQ_INT(redis_key_slot("foo", 3), 12182);
    ASSERT_EQ_INT(redis_key_slot("{user1000}.following", 20), redis_key_slot("user1000", 8));
    ASSERT_EQ_INT(redis_key_slot("{user1000}.followers", 20), redis_key_slot("user1000", 8));
    ASSERT_EQ_INT(redis_key_slot("user1000", 8), 3443);
    /* only the first tag counts; an empty one means no tag (values from an independent
     * CRC16 in Python) */
    ASSERT_EQ_INT(redis_key_slot("foo{}{bar}", 10), 8363);
    ASSERT_EQ_INT(redis_key_slot("foo{{bar}}zap", 13), 4015); /* "{bar" */
    ASSERT_EQ_INT(redis_key_slot("foo{bar}{zap}", 13), 5061); /* "bar" */
    ASSERT_EQ_INT(redis_key_slot("{}", 2), 15257);
    ASSERT_EQ_INT(redis_key_slot("", 0), 0);
}

TEST(redirections_are_read_strictly)
{
    enum redis_redirect k;
    unsigned slot;
    char host[REDIS_HOST_MAX + 1];
    int port;
    static const char moved[] = "MOVED 3999 127.0.0.1:6381";
    ASSERT_EQ_INT(redis_redirect_parse(moved, sizeof(moved) - 1, &k, &slot, host, &port), 0);
    ASSERT_TRUE(k == REDIS_MOVED && slot == 3999 && port == 6381);
    ASSERT_EQ_STR(host, "127.0.0.1");
    static const char ask[] = "ASK 16383 ::1:7000";
    ASSERT_EQ_INT(redis_redirect_parse(ask, sizeof(ask) - 1, &k, &slot, host, &port), 0);
    ASSERT_TRUE(k == REDIS_ASK && slot == 16383 && port == 7000);
    ASSERT_EQ_STR(host, "::1");
    static const char nohost[] = "MOVED 1 :7001";
    ASSERT_EQ_INT(redis_redirect_parse(nohost, sizeof(nohost) - 1, &k, &slot, host, &port), 0);
    ASSERT_EQ_STR(host, "");
    static const char *const bad[] = {"MOVED 16384 h:1",  "MOVED 1 h:0",    "MOVED 1 h:65536",
                                      "MOVED x h:1",      "MOVED 1 h",      "MOVED 1 h:1x",
                                      "ASK  1 h:1",       "ERR wrong kind", "MOVED 1 a b:1",
                                      "MOVED 123456 h:1", "MOVED"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ_INT(redis_redirect_parse(bad[i], strlen(bad[i]), &k, &slot, host, &port),
                      ERR_INVAL);
}

TEST(a_node_is_trusted_for_the_map_only_when_it_says_its_state_is_ok)
{
    static const char ok[] = "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_ok:16384\r\n";
    ASSERT_TRUE(redis_cluster_info_ok(ok, sizeof(ok) - 1));
    ASSERT_TRUE(redis_cluster_info_ok("cluster_state:ok", 16));
    ASSERT_TRUE(redis_cluster_info_ok("a:1\ncluster_state:ok\n", 22));
    static const char *const no[] = {"cluster_state:fail\r\n",
                                     "cluster_state:okay\r\n",
                                     "xcluster_state:ok\r\n",
                                     "cluster_state:ok \r\n",
                                     "cluster_state:o",
                                     "",
                                     "LOADING Redis is loading the dataset in memory"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ASSERT_TRUE(!redis_cluster_info_ok(no[i], strlen(no[i])));
    /* (bounded by n, not by a NUL) */
    ASSERT_TRUE(!redis_cluster_info_ok("cluster_state:ok", 15));
}

TEST(cluster_urls_name_their_seeds)
{
    struct redis_cluster_url u;
    char err[256];
    ASSERT_EQ_INT(redis_cluster_url_parse("redis-cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001",
                                          "store", &u, err, sizeof(err)),
                  0);
    ASSERT_EQ_INT(u.n, 2);
    ASSERT_EQ_STR(u.seed[1].host, "10.0.0.2");
    ASSERT_EQ_INT(u.seed[1].port, 7001);
    ASSERT_EQ_STR(u.seed[1].user, "app");
    ASSERT_EQ_STR(u.seed[1].password, "s3cret");
    ASSERT_EQ_INT(redis_cluster_url_parse("redis-cluster://h:1", "store", &u, err, sizeof(err)), 0);
    static const char *const bad[] = {
        "redis://h:1",           "redis-cluster://",         "redis-cluster://h:1,",
        "redis-cluster://h:1/2", "redis-cluster://h:1,,h:2", "redis-cluster://h:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ_INT(redis_cluster_url_parse(bad[i], "store", &u, err, sizeof(err)), ERR_INVAL);
        ASSERT_TRUE(strstr(err, "redis-cluster://") != NULL);
    }
}

TEST(sentinel_urls_name_the_sentinels_and_the_primary)
{
    static struct redis_sentinel_url u;
    char err[256];
    ASSERT_EQ_INT(
        redis_sentinel_url_parse("redis-sentinel://app:pw@10.0.0.1:26379,10.0.0.2:26380/main/2",
                                 "store", &u, err, sizeof(err)),
        0);
    ASSERT_EQ_INT(u.sentinels.n, 2);
    ASSERT_EQ_STR(u.sentinels.seed[1].host, "10.0.0.2");
    ASSERT_EQ_INT(u.sentinels.seed[1].port, 26380);
    ASSERT_EQ_STR(u.sentinels.seed[0].password, ""); /* (the credentials are the primary's) */
    ASSERT_EQ_STR(u.name, "main");
    ASSERT_EQ_STR(u.primary.user, "app");
    ASSERT_EQ_STR(u.primary.password, "pw");
    ASSERT_EQ_INT(u.primary.db, 2);
    ASSERT_EQ_INT(redis_sentinel_url_parse("redis-sentinel://h:1/m", "store", &u, err, sizeof(err)),
                  0);
    ASSERT_EQ_INT(u.primary.db, 0);
    static const char *const bad[] = {"redis-sentinel://h:1", "redis-sentinel://h:1/",
                                      "redis-sentinel:///m",  "redis://h:1/m",
                                      "redis-sentinel://h/m", "redis-sentinel://h:1/m/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ_INT(redis_sentinel_url_parse(bad[i], "store", &u, err, sizeof(err)), ERR_INVAL);
        ASSERT_TRUE(strstr(err, "redis-sentinel://") != NULL);
    }
}

/* ---- a local cluster ------------------------------------------------------------------- */

#define NODES 3
static struct fx_cluster C;
static int *ports = C.port;

static bool cluster_start(void)
{
    return fx_cluster_start(&C, NODES, 0) == 0;
}

static void cluster_stop(void)
{
    fx_cluster_stop(&C);
}

static int run(const char *cmd, char *out, size_t cap)
{
    return fx_sh(cmd, out, cap);
}

/* The node id of the node on `port`. */
static void node_id(int port, char id[48])
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "redis-cli -p %d cluster myid", port);
    run(cmd, id, 48);
    id[strcspn(id, "\r\n")] = '\0';
}

/* ---- the client ----------------------------------------------------------------------- */

static uv_loop_t loop;
static int ups, replies, nulls, oks, closed;
static char last[256];

static void on_state(struct redis_cluster *cl, bool up, const char *why, void *arg)
{
    (void)cl;
    (void)why;
    (void)arg;
    ups += up;
}

static void on_reply(struct redis_cluster *cl, const struct redis_reply *r, void *arg)
{
    (void)cl;
    (void)arg;
    replies++;
    if (!r) {
        nulls++;
        return;
    }
    snprintf(last, sizeof(last), "%s", redis_reply_str(r, NULL));
    oks += redis_reply_kind(r) != RK_ERROR;
}

static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

static void spin_until(const int *v, int want)
{
    for (int i = 0; i < 20000 && *v < want; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

/* The redirections the node on `port` answered with. */
static uint64_t redirects_of(struct redis_cluster *cl, int port)
{
    struct redis_cluster_node_stats st[8];
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    unsigned n = redis_cluster_stats(cl, st, 8);
    for (unsigned i = 0; i < n && i < 8; i++)
        if (strcmp(st[i].addr, addr) == 0)
            return st[i].redirects;
    return UINT64_MAX;
}

static int cmd(struct redis_cluster *cl, const char *a, const char *b, const char *c)
{
    const char *argv[3] = {a, b, c};
    size_t lens[3] = {strlen(a), strlen(b), c ? strlen(c) : 0};
    return redis_cluster_cmd(cl, redis_key_slot(b, strlen(b)), on_reply, NULL, c ? 3 : 2, argv,
                             lens);
}

TEST(the_client_routes_by_slot_and_follows_a_moved_slot)
{
    char url[256], err[256], key[32], want[32], sh[1024], out[4096];
    struct redis_cluster_url u;
    signal(SIGPIPE, SIG_IGN);
    atexit(cluster_stop); /* (an assertion returns early: the servers go all the same) */
    if (!cluster_start()) {
        cluster_stop();
        ASSERT_TRUE(!"a local cluster (redis-server with cluster-enabled) did not start");
    }
    uv_loop_init(&loop);
    snprintf(url, sizeof(url), "redis-cluster://127.0.0.1:%d", ports[1]); /* one seed */
    ASSERT_EQ_INT(redis_cluster_url_parse(url, "test", &u, err, sizeof(err)), 0);
    struct redis_cluster *cl = redis_cluster_new(&loop, &u, 50, 1000, NULL, on_state, NULL);
    ASSERT_TRUE(cl != NULL);
    /* sent before the map is known: they wait for it */
    replies = oks = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(want, sizeof(want), "v%d", i);
        ASSERT_EQ_INT(cmd(cl, "SET", key, want), 0);
    }
    spin_until(&replies, 100);
    ASSERT_EQ_INT(oks, 100);
    spin_until(&ups, 1);
    ASSERT_TRUE(redis_cluster_up(cl));
    struct redis_cluster_node_stats st[8];
    ASSERT_EQ_INT(redis_cluster_stats(cl, st, 8), NODES); /* the seed, and the map's others */
    for (int i = 0; i < NODES; i++)
        ASSERT_TRUE(st[i].primary && st[i].up && st[i].commands > 0 && st[i].redirects == 0);
    /* each key read back from where it lives */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        replies = 0;
        ASSERT_EQ_INT(cmd(cl, "GET", key, NULL), 0);
        spin_until(&replies, 1);
        snprintf(want, sizeof(want), "v%d", i);
        ASSERT_EQ_STR(last, want);
    }
    /* the slot of k7 moves by hand from its owner to another node: first it is migrating
     * (the key is still at the source: answered there; a new key goes to the target with
     * ASK), then it is the target's (MOVED) */
    unsigned slot = redis_key_slot("k7", 2);
    int from = -1, to;
    char from_id[48], to_id[48];
    for (int i = 0; i < NODES && from < 0; i++) {
        snprintf(sh, sizeof(sh), "redis-cli -p %d cluster countkeysinslot %u", ports[i], slot);
        run(sh, out, sizeof(out));
        if (strtol(out, NULL, 10) > 0)
            from = i;
    }
    ASSERT_TRUE(from >= 0);
    to = (from + 1) % NODES;
    node_id(ports[from], from_id);
    node_id(ports[to], to_id);
    snprintf(sh, sizeof(sh),
             "redis-cli -p %d cluster setslot %u importing %s >/dev/null && "
             "redis-cli -p %d cluster setslot %u migrating %s >/dev/null",
             ports[to], slot, from_id, ports[from], slot, to_id);
    ASSERT_EQ_INT(run(sh, NULL, 0), 0);
    /* a key of that slot the source does not have: ASK to the target (k7's slot: "{k7}x") */
    replies = oks = 0;
    ASSERT_EQ_INT(cmd(cl, "SET", "{k7}new", "asked"), 0);
    spin_until(&replies, 1);
    ASSERT_EQ_INT(oks, 1);
    ASSERT_TRUE(redirects_of(cl, ports[from]) == 1);
    /* the move completes: keys migrated, the slot assigned to the target everywhere */
    snprintf(sh, sizeof(sh),
             "redis-cli -p %d migrate 127.0.0.1 %d k7 0 5000 >/dev/null && "
             "for p in %d %d %d; do redis-cli -p $p cluster setslot %u node %s >/dev/null; done",
             ports[from], ports[to], ports[0], ports[1], ports[2], slot, to_id);
    ASSERT_EQ_INT(run(sh, NULL, 0), 0);
    replies = 0;
    ASSERT_EQ_INT(cmd(cl, "GET", "k7", NULL), 0);
    spin_until(&replies, 1);
    ASSERT_EQ_STR(last, "v7");
    replies = 0;
    ASSERT_EQ_INT(cmd(cl, "GET", "{k7}new", NULL), 0);
    spin_until(&replies, 1);
    ASSERT_EQ_STR(last, "asked");
    uint64_t moved = redirects_of(cl, ports[from]);
    ASSERT_TRUE(moved >= 2 && moved < 5); /* MOVED once or twice; then the map is read again */
    replies = 0;
    ASSERT_EQ_INT(cmd(cl, "GET", "k7", NULL), 0);
    spin_until(&replies, 1);
    ASSERT_TRUE(redirects_of(cl, ports[from]) == moved); /* straight to the new owner now */
    /* a command for a slot out of range, then the close: nothing left unanswered */
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    ASSERT_EQ_INT(redis_cluster_cmd(cl, REDIS_SLOTS, on_reply, NULL, 1, argv, lens), ERR_INVAL);
    redis_cluster_close(cl, on_closed, NULL);
    spin_until(&closed, 1);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    cluster_stop();
}
