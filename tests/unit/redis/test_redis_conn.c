/* SPDX-License-Identifier: MIT */
/* The self-healing Redis connection against a real redis-server (unix socket): commands and
 * their replies through the accessors, a server that dies (unanswered commands get NULL, the
 * connection says it is down), comes back (up again by itself), and a clean close. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "core/err.h"
#include "fixture.h"
#include "harness.h"
#include "redis/redis_conn.h"

static char sock[64];
static pid_t pid;
static int ups, downs, replies, nulls, closed;
static enum redis_kind kind;
static char text[64];
static long long num;
static size_t count;

static void stop(void)
{
    fx_redis_stop(&pid, sock);
}

static void start(void)
{
    pid = fx_redis_start(sock);
}

static void on_state(struct redis_conn *c, bool up, const char *why, void *arg)
{
    (void)c;
    (void)arg;
    (void)why;
    if (up)
        ups++;
    else
        downs++;
}

static void on_reply(struct redis_conn *c, const struct redis_reply *r, void *arg)
{
    (void)c;
    (void)arg;
    replies++;
    if (!r) {
        nulls++;
        return;
    }
    kind = redis_reply_kind(r);
    snprintf(text, sizeof(text), "%s", redis_reply_str(r, NULL));
    num = redis_reply_int(r);
    count = redis_reply_count(r);
    if (count)
        snprintf(text, sizeof(text), "%s", redis_reply_str(redis_reply_at(r, 0), NULL));
}

static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

/* Runs the loop until *what reaches want (or about 10 s). */
static void run_until(uv_loop_t *loop, int *what, int want)
{
    for (int i = 0; i < 1000 && *what < want; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
}

static int cmd(struct redis_conn *c, uv_loop_t *loop, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int before = replies;
    int rc = redis_conn_cmd(c, on_reply, NULL, argc, argv, lens);
    if (rc == ERR_OK)
        run_until(loop, &replies, before + 1);
    return rc;
}

/* The server's socket (not started), its URL in u, and a loop: 0, or -1. */
static int prepare(struct redis_url *u, uv_loop_t *loop)
{
    char url[96], why[128];
    signal(SIGPIPE, SIG_IGN);
    snprintf(sock, sizeof(sock), "/tmp/fg-conn-test-%d.sock", (int)getpid());
    snprintf(url, sizeof(url), "unix://%s", sock);
    unlink(sock);
    if (redis_url_parse(url, "test", u, why, sizeof(why)) || uv_loop_init(loop))
        return -1;
    return 0;
}

TEST(commands_replies_outage_and_recovery)
{
    uv_loop_t loop;
    struct redis_url u;
    ASSERT_EQ_INT(prepare(&u, &loop), 0);
    atexit(stop);
    /* no server yet: down, and it keeps trying */
    struct redis_conn *c = redis_conn_new(&loop, &u, 20, 100, NULL, on_state, NULL);
    ASSERT_TRUE(c != NULL);
    run_until(&loop, &downs, 1);
    ASSERT_TRUE(downs >= 1);
    ASSERT_TRUE(!redis_conn_up(c));
    const char *ping[] = {"PING"};
    ASSERT_EQ_INT(redis_conn_cmd(c, on_reply, NULL, 1, ping, (size_t[]){4}), ERR_BACKEND);
    start();
    run_until(&loop, &ups, 1);
    ASSERT_EQ_INT(ups, 1);
    ASSERT_TRUE(redis_conn_up(c));
    /* the reply kinds through the accessors */
    ASSERT_EQ_INT(cmd(c, &loop, 1, ping), ERR_OK);
    ASSERT_EQ_INT(kind, RK_STATUS);
    ASSERT_EQ_STR(text, "PONG");
    const char *set[] = {"SET", "k", "v"}, *get[] = {"GET", "k"}, *incr[] = {"INCR", "n"};
    const char *nope[] = {"NOSUCHCOMMAND"}, *miss[] = {"GET", "missing"};
    const char *push[] = {"RPUSH", "l", "a", "b"}, *range[] = {"LRANGE", "l", "0", "-1"};
    ASSERT_EQ_INT(cmd(c, &loop, 3, set), ERR_OK);
    ASSERT_EQ_INT(cmd(c, &loop, 2, get), ERR_OK);
    ASSERT_EQ_INT(kind, RK_STRING);
    ASSERT_EQ_STR(text, "v");
    ASSERT_EQ_INT(cmd(c, &loop, 2, incr), ERR_OK);
    ASSERT_EQ_INT(kind, RK_INTEGER);
    ASSERT_EQ_INT((int)num, 1);
    ASSERT_EQ_INT(cmd(c, &loop, 1, nope), ERR_OK);
    ASSERT_EQ_INT(kind, RK_ERROR);
    ASSERT_EQ_INT(cmd(c, &loop, 2, miss), ERR_OK);
    ASSERT_EQ_INT(kind, RK_NIL);
    ASSERT_EQ_INT(cmd(c, &loop, 4, push), ERR_OK);
    ASSERT_EQ_INT(cmd(c, &loop, 4, range), ERR_OK);
    ASSERT_EQ_INT(kind, RK_ARRAY);
    ASSERT_EQ_INT((int)count, 2);
    ASSERT_EQ_STR(text, "a");
    /* the server dies with a command in flight: NULL for it, down, then up again */
    const char *block[] = {"BLPOP", "nothing", "5"};
    size_t bl[] = {5, 7, 1};
    int before = nulls;
    ASSERT_EQ_INT(redis_conn_cmd(c, on_reply, NULL, 3, block, bl), ERR_OK);
    uv_run(&loop, UV_RUN_NOWAIT);
    int downs_before = downs;
    stop();
    run_until(&loop, &nulls, before + 1);
    ASSERT_EQ_INT(nulls, before + 1);
    ASSERT_TRUE(downs > downs_before);
    start();
    run_until(&loop, &ups, 2);
    ASSERT_EQ_INT(ups, 2);
    ASSERT_EQ_INT(cmd(c, &loop, 1, ping), ERR_OK);
    ASSERT_EQ_STR(text, "PONG");
    /* closed for good: nothing pending is lost silently, and no retry follows */
    redis_conn_close(c, on_closed, NULL);
    run_until(&loop, &closed, 1);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_NOWAIT), 0); /* no handle left */
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    stop();
}

/* A reply callback that sends again on the connection whose drop is failing it (what the
 * cluster client does: a connection gone, so it reads the slot map again at once). */
static struct redis_conn *resend_on;
static int resent, resend_rc = -1;

static void on_null_resend(struct redis_conn *c, const struct redis_reply *r, void *arg)
{
    on_reply(c, r, arg);
    if (!r && resend_on) {
        const char *ping[] = {"PING"};
        resend_rc = redis_conn_cmd(resend_on, on_reply, NULL, 1, ping, (size_t[]){4});
        resent++;
        resend_on = NULL;
    }
}

/* The connection a NULL reply opened during a drop is the connection from then on: the old
 * one's disconnect, which comes after its NULL replies, must not forget it (it was left
 * open, unreachable, and kept its loop from ever ending: the cluster test's hang at exit). */
TEST(a_command_sent_from_a_dropped_connections_null_reply_is_not_lost)
{
    uv_loop_t loop;
    struct redis_url u;
    ASSERT_EQ_INT(prepare(&u, &loop), 0);
    start();
    ups = downs = replies = nulls = closed = 0;
    struct redis_conn *c = redis_conn_new(&loop, &u, 20, 100, NULL, on_state, NULL);
    ASSERT_TRUE(c != NULL);
    run_until(&loop, &ups, 1);
    ASSERT_TRUE(redis_conn_up(c));
    const char *block[] = {"BLPOP", "nothing", "5"};
    ASSERT_EQ_INT(redis_conn_cmd(c, on_null_resend, NULL, 3, block, (size_t[]){5, 7, 1}), ERR_OK);
    uv_run(&loop, UV_RUN_NOWAIT);
    resend_on = c;
    int before = replies;
    redis_conn_drop(c); /* BLPOP gets NULL, and sends PING from there */
    ASSERT_EQ_INT(resent, 1);
    ASSERT_EQ_INT(resend_rc, ERR_OK);
    run_until(&loop, &replies, before + 2);
    ASSERT_EQ_INT(replies, before + 2); /* the PING was answered, on the new connection */
    ASSERT_EQ_STR(text, "PONG");
    ASSERT_TRUE(redis_conn_up(c));
    redis_conn_close(c, on_closed, NULL);
    run_until(&loop, &closed, 1);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_NOWAIT), 0); /* no connection left open */
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    stop();
}
