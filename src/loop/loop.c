/* SPDX-License-Identifier: MIT */
/*
 * Loop mailbox. The list is swapped out under the mutex and run outside it, so a task may
 * post another task (even to its own loop) without deadlock; that task runs on the next
 * wake-up, never re-entrantly.
 */
#include "loop/loop.h"

#include <assert.h>

#include "core/err.h"
#include "core/queue.h"

static void run_queued(struct loop *lp)
{
    pthread_mutex_lock(&lp->_mu);
    struct loop_task *t = lp->_head;
    lp->_head = lp->_tail = NULL;
    pthread_mutex_unlock(&lp->_mu);
    while (t) {
        struct loop_task *next = t->_next;
        t->on_run(t);
        t = next;
    }
}

/* The close itself: what is queued runs, then no more posts are taken. */
static void close_now(struct loop *lp)
{
    run_queued(lp);
    pthread_mutex_lock(&lp->_mu);
    lp->_closing = 1;
    pthread_mutex_unlock(&lp->_mu);
    uv_close((uv_handle_t *)&lp->_wake, NULL);
}

static void on_wake(uv_async_t *a)
{
    struct loop *lp = a->data;

    run_queued(lp);
    pthread_mutex_lock(&lp->_mu);
    int close = lp->_close_deferred && !lp->_owed && !lp->_closing;
    pthread_mutex_unlock(&lp->_mu);
    if (close)
        close_now(lp);
}

int loop_init(struct loop *lp, unsigned index)
{
    lp->index = index;
    lp->data = NULL;
    lp->_head = lp->_tail = NULL;
    lp->_closing = 0;
    lp->_owed = 0;
    lp->_close_deferred = 0;
    if (uv_loop_init(&lp->uv))
        return ERR_IO;
    if (uv_async_init(&lp->uv, &lp->_wake, on_wake)) {
        uv_loop_close(&lp->uv);
        return ERR_IO;
    }
    lp->_wake.data = lp;
    pthread_mutex_init(&lp->_mu, NULL);
    return ERR_OK;
}

void loop_close_mailbox(struct loop *lp)
{
    /* Run what is queued: a completion must never be lost, its request is waiting. */
    run_queued(lp);
    pthread_mutex_lock(&lp->_mu);
    int wait = lp->_owed > 0;
    lp->_close_deferred = wait;
    pthread_mutex_unlock(&lp->_mu);
    if (!wait)
        close_now(lp);
}

void loop_owe(struct loop *lp)
{
    pthread_mutex_lock(&lp->_mu);
    lp->_owed++;
    pthread_mutex_unlock(&lp->_mu);
}

void loop_post_owed(struct loop *lp, struct loop_task *t)
{
    pthread_mutex_lock(&lp->_mu);
    assert(!lp->_closing && lp->_owed);
    QUEUE_APPEND(lp->_head, lp->_tail, t, _next);
    lp->_owed--;
    pthread_mutex_unlock(&lp->_mu);
    uv_async_send(&lp->_wake);
}

void loop_fini(struct loop *lp)
{
    uv_loop_close(&lp->uv);
    pthread_mutex_destroy(&lp->_mu);
}

void loop_post(struct loop *lp, struct loop_task *t)
{
    pthread_mutex_lock(&lp->_mu);
    assert(!lp->_closing);
    QUEUE_APPEND(lp->_head, lp->_tail, t, _next);
    pthread_mutex_unlock(&lp->_mu);
    uv_async_send(&lp->_wake);
}

static _Thread_local struct loop *current;

void loop_run(struct loop *lp)
{
    current = lp;
    uv_run(&lp->uv, UV_RUN_DEFAULT);
    current = NULL;
}

struct loop *loop_current(void)
{
    return current;
}
