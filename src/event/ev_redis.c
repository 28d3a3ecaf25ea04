/* SPDX-License-Identifier: MIT */
/*
 * Redis Streams sink: every event is XADDed (with MAXLEN ~ N, so the stream stays bounded)
 * to one stream, over hiredis's async API on the dispatcher's libuv loop.
 *
 * While Redis is unreachable, events wait in a bounded backlog and are sent on reconnect
 * (in order); past the bound they are dropped from this sink and counted (the audit log and
 * the webhooks have their own paths). Reconnection backs off from 250 ms to 30 s. Commands
 * in flight are bounded too, so a slow Redis cannot grow memory without limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/queue.h"
#include "event/ev_int.h"
#include "redis/redis_url.h"
#include "redis/redis_uv.h"

#define BACKLOG_MAX  100000
#define INFLIGHT_MAX 1024
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 30000

struct item {
    struct item *next;
    size_t len;
    char json[];
};

struct ev_redis {
    uv_loop_t *loop;
    uv_timer_t retry, grace;
    int closed, finished;
    redisAsyncContext *ac;
    int connected;
    int stopping;
    unsigned retry_ms;
    struct redis_url url;
    char stream[CFG_STR_MAX];
    unsigned maxlen;
    struct item *head, *tail;
    unsigned queued, inflight;
    uint64_t added, dropped;
    void (*done)(void *);
    void *done_arg;
};

static void connect_now(struct ev_redis *r);
static void pump(struct ev_redis *r);
static void finish_stop(struct ev_redis *r);

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

static void schedule_retry(struct ev_redis *r)
{
    if (r->stopping)
        return;
    uv_timer_start(&r->retry, on_retry, r->retry_ms, 0);
    r->retry_ms = r->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r->retry_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct ev_redis *r = ac->data;
    if (status != REDIS_OK) {
        log_kv(LOG_WARN, "redis stream sink: cannot connect", "error", ac->errstr, LOG_END);
        r->ac = NULL; /* hiredis frees the context after this callback */
        schedule_retry(r);
        return;
    }
    r->connected = 1;
    r->retry_ms = RETRY_MIN_MS;
    log_kv(LOG_INFO, "redis stream sink connected", LOG_END);
    pump(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct ev_redis *r = ac->data;
    r->ac = NULL;
    r->connected = 0;
    r->inflight = 0; /* their callbacks ran with a NULL reply */
    if (status != REDIS_OK)
        log_kv(LOG_WARN, "redis stream sink disconnected", "error", ac->errstr, LOG_END);
    if (r->stopping)
        return; /* finish_stop is on its way */
    schedule_retry(r);
}

static void connect_now(struct ev_redis *r)
{
    redisAsyncContext *ac = r->url.path[0] ? redisAsyncConnectUnix(r->url.path)
                                           : redisAsyncConnect(r->url.host, r->url.port);
    if (!ac || ac->err || redis_uv_attach(ac, r->loop) != REDIS_OK) {
        log_kv(LOG_WARN, "redis stream sink: cannot connect", "error",
               ac && ac->err ? ac->errstr : "out of memory", LOG_END);
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* queued by hiredis until the connection is up, sent before any XADD */
    const char *av[3];
    size_t al[3];
    int an = redis_url_auth(&r->url, av, al);
    if (an)
        redisAsyncCommandArgv(ac, NULL, NULL, an, av, al);
    if (r->url.db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->url.db);
}

static void on_added(redisAsyncContext *ac, void *reply, void *priv)
{
    struct ev_redis *r = ac->data;
    redisReply *rep = reply;
    (void)priv;
    if (r->inflight)
        r->inflight--;
    if (!rep) {
        r->dropped++; /* the connection went away with it in flight */
        ev_count(EV_M_STREAM_DROPPED, 1);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        r->dropped++;
        ev_count(EV_M_STREAM_DROPPED, 1);
        log_kv(LOG_WARN, "redis stream sink: XADD refused", "error", rep->str, LOG_END);
    } else {
        r->added++;
        ev_count(EV_M_STREAM_ADDED, 1);
    }
    pump(r);
    if (r->stopping && !r->inflight && !r->head)
        finish_stop(r);
}

static void pump(struct ev_redis *r)
{
    char maxlen[16];
    snprintf(maxlen, sizeof(maxlen), "%u", r->maxlen);
    while (r->connected && r->ac && r->head && r->inflight < INFLIGHT_MAX) {
        struct item *it = r->head;
        const char *argv[] = {"XADD", r->stream, "MAXLEN", "~", maxlen, "*", "event", it->json};
        size_t lens[] = {4, strlen(r->stream), 6, 1, strlen(maxlen), 1, 5, it->len};
        if (redisAsyncCommandArgv(r->ac, on_added, NULL, 8, argv, lens) != REDIS_OK)
            return;
        r->inflight++;
        r->head = it->next;
        if (!r->head)
            r->tail = NULL;
        r->queued--;
        free(it);
    }
}

int ev_redis_new(uv_loop_t *loop, const struct cfg *c, struct ev_redis **out, char *err,
                 size_t errcap)
{
    *out = NULL;
    if (!c->ev_redis[0])
        return ERR_OK;
    struct ev_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return ERR_NOMEM;
    if (redis_url_parse(c->ev_redis, "events_redis", &r->url, err, errcap)) {
        free(r);
        return ERR_INVAL;
    }
    r->loop = loop;
    r->retry_ms = RETRY_MIN_MS;
    r->maxlen = c->ev_redis_maxlen;
    snprintf(r->stream, sizeof(r->stream), "%s", c->ev_redis_stream);
    uv_timer_init(loop, &r->retry);
    uv_timer_init(loop, &r->grace);
    r->retry.data = r->grace.data = r;
    connect_now(r);
    *out = r;
    return ERR_OK;
}

void ev_redis_deliver(struct ev_redis *r, const char *json, size_t len)
{
    if (r->queued >= BACKLOG_MAX) {
        r->dropped++;
        ev_count(EV_M_STREAM_DROPPED, 1);
        return;
    }
    struct item *it = malloc(sizeof(*it) + len + 1);
    if (!it) {
        r->dropped++;
        ev_count(EV_M_STREAM_DROPPED, 1);
        return;
    }
    it->len = len;
    memcpy(it->json, json, len);
    it->json[len] = 0;
    QUEUE_APPEND(r->head, r->tail, it, next);
    r->queued++;
    pump(r);
}

static void on_closed(uv_handle_t *h)
{
    struct ev_redis *r = h->data;
    if (++r->closed == 2 && r->done) {
        void (*done)(void *) = r->done;
        r->done = NULL;
        done(r->done_arg);
    }
}

/* Stop for good: what is still unanswered is abandoned (it is in the audit log). */
static void finish_stop(struct ev_redis *r)
{
    if (r->finished)
        return;
    r->finished = 1;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        r->connected = 0;
        redisAsyncFree(ac); /* unanswered commands get a NULL reply: counted as dropped */
    }
    uv_close((uv_handle_t *)&r->retry, on_closed);
    uv_close((uv_handle_t *)&r->grace, on_closed);
}

static void on_grace(uv_timer_t *t)
{
    finish_stop(t->data);
}

void ev_redis_stop(struct ev_redis *r, unsigned ms, void (*done)(void *), void *arg)
{
    r->stopping = 1;
    r->done = done;
    r->done_arg = arg;
    uv_timer_stop(&r->retry);
    if (!r->connected || (!r->inflight && !r->head)) {
        finish_stop(r);
        return;
    }
    /* a moment for the last XADDs to be answered */
    uv_timer_start(&r->grace, on_grace, ms < 1000 ? (ms ? ms : 1) : 1000, 0);
}

void ev_redis_free(struct ev_redis *r, uint64_t *added, uint64_t *dropped)
{
    *added = r->added;
    *dropped = r->dropped + r->queued;
    while (r->head) {
        struct item *it = r->head;
        r->head = it->next;
        free(it);
    }
    free(r);
}
