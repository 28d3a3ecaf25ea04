/* SPDX-License-Identifier: MIT */
/*
 * Redis Streams sink: every event is XADDed (with MAXLEN ~ N, so the stream stays bounded)
 * to one stream, over a src/redis/ connection on the dispatcher's libuv loop.
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
#include "redis/redis_conn.h"
#include "redis/redis_url.h"

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
    uv_timer_t grace;
    int closed, finished;
    struct redis_conn *conn; /* reconnects by itself, backing off */
    int stopping;
    struct redis_url url;
    char stream[CFG_STR_MAX];
    unsigned maxlen;
    struct item *head, *tail;
    unsigned queued, inflight;
    uint64_t added, dropped;
    void (*done)(void *);
    void *done_arg;
};

static void pump(struct ev_redis *r);
static void finish_stop(struct ev_redis *r);

static void on_state(struct redis_conn *c, bool up, const char *why, void *arg)
{
    struct ev_redis *r = arg;
    (void)c;
    if (!up) {
        r->inflight = 0; /* their callbacks ran with a NULL reply */
        log_kv(LOG_WARN, "redis stream sink: not connected", "error", why, LOG_END);
        return;
    }
    log_kv(LOG_INFO, "redis stream sink connected", LOG_END);
    pump(r);
}

static void on_added(struct redis_conn *c, const struct redis_reply *rep, void *arg)
{
    struct ev_redis *r = arg;
    (void)c;
    if (r->inflight)
        r->inflight--;
    if (!rep) {
        r->dropped++; /* the connection went away with it in flight */
        ev_count(EV_M_STREAM_DROPPED, 1);
        return;
    }
    if (redis_reply_kind(rep) == RK_ERROR) {
        r->dropped++;
        ev_count(EV_M_STREAM_DROPPED, 1);
        log_kv(LOG_WARN, "redis stream sink: XADD refused", "error", redis_reply_str(rep, NULL),
               LOG_END);
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
    while (r->conn && redis_conn_up(r->conn) && r->head && r->inflight < INFLIGHT_MAX) {
        struct item *it = r->head;
        const char *argv[] = {"XADD", r->stream, "MAXLEN", "~", maxlen, "*", "event", it->json};
        size_t lens[] = {4, strlen(r->stream), 6, 1, strlen(maxlen), 1, 5, it->len};
        if (redis_conn_cmd(r->conn, on_added, r, 8, argv, lens) != ERR_OK)
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
    r->maxlen = c->ev_redis_maxlen;
    snprintf(r->stream, sizeof(r->stream), "%s", c->ev_redis_stream);
    uv_timer_init(loop, &r->grace);
    r->grace.data = r;
    r->conn = redis_conn_new(loop, &r->url, RETRY_MIN_MS, RETRY_MAX_MS, NULL, on_state, r);
    if (!r->conn) {
        uv_close((uv_handle_t *)&r->grace, NULL);
        free(r);
        return ERR_NOMEM;
    }
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

static void closed_one(struct ev_redis *r)
{
    if (++r->closed == 2 && r->done) {
        void (*done)(void *) = r->done;
        r->done = NULL;
        done(r->done_arg);
    }
}

static void on_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void on_conn_closed(void *arg)
{
    closed_one(arg);
}

/* Stop for good: what is still unanswered is abandoned (it is in the audit log). */
static void finish_stop(struct ev_redis *r)
{
    if (r->finished)
        return;
    r->finished = 1;
    struct redis_conn *conn = r->conn;
    r->conn = NULL;
    redis_conn_close(conn, on_conn_closed, r); /* unanswered commands: counted as dropped */
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
    if (!redis_conn_up(r->conn) || (!r->inflight && !r->head)) {
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
