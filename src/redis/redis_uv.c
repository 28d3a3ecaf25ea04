/* SPDX-License-Identifier: MIT */
/*
 * hiredis's five event hooks on a uv_poll_t: see redis_uv.h for why this is ours.
 */
#include "redis/redis_uv.h"

#include <stdlib.h>

struct watch {
    redisAsyncContext *ac; /* NULL once hiredis has let go (cleanup) */
    uv_poll_t poll;
    int events;
};

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct watch *w = h->data;
    /* An error comes with no events, and libuv has stopped the poll: let hiredis try what
     * it was waiting to do, so that it meets the error itself and fails the context. */
    int ev = status < 0 ? w->events : events;
    if (w->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(w->ac);
    if (w->ac && (ev & UV_WRITABLE)) /* (a read may have freed the context: see cleanup) */
        redisAsyncHandleWrite(w->ac);
}

static void update(struct watch *w, int add, int del)
{
    w->events = (w->events | add) & ~del;
    if (w->events)
        uv_poll_start(&w->poll, w->events, on_poll);
    else
        uv_poll_stop(&w->poll);
}

static void add_read(void *p)
{
    update(p, UV_READABLE, 0);
}

static void del_read(void *p)
{
    update(p, 0, UV_READABLE);
}

static void add_write(void *p)
{
    update(p, UV_WRITABLE, 0);
}

static void del_write(void *p)
{
    update(p, 0, UV_WRITABLE);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *p)
{
    struct watch *w = p;
    w->ac = NULL;
    uv_close((uv_handle_t *)&w->poll, on_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return REDIS_ERR;
    struct watch *w = calloc(1, sizeof(*w));
    if (!w)
        return REDIS_ERR;
    if (uv_poll_init(loop, &w->poll, ac->c.fd)) {
        free(w);
        return REDIS_ERR;
    }
    w->ac = ac;
    w->poll.data = w;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = w;
    return REDIS_OK;
}
