/* SPDX-License-Identifier: MIT */
/* An asynchronous Redis connection that keeps itself up; see redis_conn.h. */
#include "redis/redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "redis/redis_uv.h"

struct redis_conn {
    uv_loop_t *loop;
    uv_timer_t retry;
    struct redis_url url;
    redisAsyncContext *ac;
    bool up, closing;
    unsigned retry_ms, min_ms, max_ms;
    uint64_t retry_at_ms; /* (monotonic) when the next connection may be tried */
    const char *const *init;
    redis_conn_state_cb state;
    void *arg;
    void (*closed)(void *);
    void *closed_arg;
};

/* A command's callback, carried through hiredis's private data. */
struct call {
    redis_reply_cb cb;
    void *arg;
};

static void connect_now(struct redis_conn *c);

static void on_retry(uv_timer_t *t)
{
    struct redis_conn *c = t->data;
    if (!c->ac) /* (a command may have started one since: see redis_conn_cmd) */
        connect_now(c);
}

static void down(struct redis_conn *c, const char *why)
{
    c->up = false;
    if (c->closing)
        return;
    c->state(c, false, why, c->arg);
    c->retry_at_ms = clock_mono_ns() / 1000000u + c->retry_ms;
    uv_timer_start(&c->retry, on_retry, c->retry_ms, 0);
    c->retry_ms = c->retry_ms * 2 > c->max_ms ? c->max_ms : c->retry_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->data;
    if (c->ac != ac) /* (one let go already: it is not this connection's state) */
        return;
    if (status != REDIS_OK) {
        c->ac = NULL; /* hiredis frees the context after this callback */
        down(c, ac->errstr);
        return;
    }
    c->up = true;
    c->retry_ms = c->min_ms;
    c->state(c, true, NULL, c->arg);
}

/*
 * hiredis calls this after the context's unanswered commands got their NULL replies, and a
 * reply callback may have sent a command since, which started a new context (see
 * redis_conn_cmd): that one is the connection now, and tells its own state. Forgetting it
 * here would leave it open, unreachable, and its loop would never end.
 */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->data;
    if (c->ac == ac)
        c->ac = NULL;
    else if (c->ac)
        return;
    down(c, status == REDIS_OK ? "closed" : ac->errstr);
}

static void connect_now(struct redis_conn *c)
{
    if (c->ac) /* (one at a time: a second would be unreachable) */
        return;
    redisAsyncContext *ac = c->url.path[0] ? redisAsyncConnectUnix(c->url.path)
                                           : redisAsyncConnect(c->url.host, c->url.port);
    if (!ac || ac->err || redis_uv_attach(ac, c->loop) != REDIS_OK) {
        char why[128]; /* (copied: ac is freed before it is told) */
        snprintf(why, sizeof(why), "%s", ac && ac->err ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        down(c, why);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* queued by hiredis until the connection is up, sent before any other command */
    const char *av[3];
    size_t al[3];
    int an = redis_url_auth(&c->url, av, al);
    if (an)
        redisAsyncCommandArgv(ac, NULL, NULL, an, av, al);
    if (c->url.db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", c->url.db);
    if (c->init) {
        const char *iv[16];
        size_t il[16];
        int n = 0;
        for (; n < 16 && c->init[n]; n++) {
            iv[n] = c->init[n];
            il[n] = strlen(c->init[n]);
        }
        redisAsyncCommandArgv(ac, NULL, NULL, n, iv, il);
    }
}

struct redis_conn *redis_conn_new(uv_loop_t *loop, const struct redis_url *u, unsigned retry_min_ms,
                                  unsigned retry_max_ms, const char *const *init,
                                  redis_conn_state_cb state, void *arg)
{
    size_t ninit = 0;
    while (init && init[ninit])
        ninit++;
    if (ninit > 16) /* (connect_now sends at most 16 arguments: refused, never sent cut) */
        return NULL;
    struct redis_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->url = *u;
    c->min_ms = c->retry_ms = retry_min_ms ? retry_min_ms : 1;
    c->max_ms = retry_max_ms > c->min_ms ? retry_max_ms : c->min_ms;
    c->init = init;
    c->state = state;
    c->arg = arg;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    connect_now(c);
    return c;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct call *k = priv;
    struct redis_conn *c = ac->data;
    redis_reply_cb cb = k->cb;
    void *arg = k->arg;
    free(k);
    cb(c, reply, arg);
}

int redis_conn_cmd(struct redis_conn *c, redis_reply_cb cb, void *arg, int argc, const char **argv,
                   const size_t *lens)
{
    if (!c->ac && !c->closing && clock_mono_ns() / 1000000u >= c->retry_at_ms) {
        /* the backoff is over (its timer may not have run yet, on a busy loop): try now,
         * and hiredis holds this command until the connection is up */
        uv_timer_stop(&c->retry);
        connect_now(c);
    }
    if (!c->ac || c->closing)
        return ERR_BACKEND;
    if (!cb) /* nobody waits for the answer */
        return redisAsyncCommandArgv(c->ac, NULL, NULL, argc, argv, lens) == REDIS_OK ? ERR_OK
                                                                                      : ERR_BACKEND;
    struct call *k = malloc(sizeof(*k));
    if (!k)
        return ERR_NOMEM;
    k->cb = cb;
    k->arg = arg;
    if (redisAsyncCommandArgv(c->ac, on_reply, k, argc, argv, lens) != REDIS_OK) {
        free(k);
        return ERR_BACKEND;
    }
    return ERR_OK;
}

bool redis_conn_up(const struct redis_conn *c)
{
    return c->up && c->ac;
}

void redis_conn_reconnect(struct redis_conn *c)
{
    if (c->closing)
        return;
    redis_conn_drop(c);
    uv_timer_stop(&c->retry);
    c->retry_ms = c->min_ms;
    if (!c->ac)
        connect_now(c);
}

void redis_conn_drop(struct redis_conn *c)
{
    if (!c->ac)
        return;
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->up = false;
    redisAsyncFree(ac); /* NULL replies, then the disconnect callback: down, retry */
}

static void on_closed(uv_handle_t *h)
{
    struct redis_conn *c = h->data;
    void (*closed)(void *) = c->closed;
    void *arg = c->closed_arg;
    free(c);
    if (closed)
        closed(arg);
}

void redis_conn_close(struct redis_conn *c, void (*closed)(void *), void *arg)
{
    c->closing = true;
    c->closed = closed;
    c->closed_arg = arg;
    uv_timer_stop(&c->retry);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        c->up = false;
        redisAsyncFree(ac); /* unanswered commands get a NULL reply */
    }
    uv_close((uv_handle_t *)&c->retry, on_closed);
}

void redis_conn_set_url(struct redis_conn *c, const struct redis_url *u)
{
    c->url = *u;
}
