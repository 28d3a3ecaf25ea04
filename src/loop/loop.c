/* SPDX-License-Identifier: MIT */
/*
 * Loop mailbox. The list is swapped out under the mutex and run outside it, so a task may
 * post another task (even to its own loop) without deadlock; that task runs on the next
 * wake-up, never re-entrantly.
 *
 * Why an eventfd and not uv_async_t: libuv's uv_async_send (1.44, Debian 12) marks the
 * handle busy, writes its descriptor, then marks it pending, and the loop, finding it busy,
 * spins (997 pauses, then sched_yield, again) until the sender is done. The senders here are
 * the worker pool's threads, which run at a lower priority, and the store's writer: the
 * write wakes the loop, the loop preempts its sender on the same core, and spins until the
 * scheduler gives the sender back the core. perf put 40% of a loop thread's CPU in that spin
 * during a login benchmark (docs/benchmarks.md). Here the poster's state is one flag under
 * the mutex it already takes, and the loop never waits for a poster: a post after the loop
 * took the list writes again, so nothing is lost, and a wake-up that finds the list empty
 * costs one read.
 */
#include "loop/loop.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/err.h"
#include "core/queue.h"

static void run_queued(struct loop *lp)
{
    pthread_mutex_lock(&lp->_mu);
    struct loop_task *t = lp->_head;
    lp->_head = lp->_tail = NULL;
    lp->_signalled = 0; /* a post from now on writes again */
    pthread_mutex_unlock(&lp->_mu);
    while (t) {
        struct loop_task *next = t->_next;
        t->on_run(t);
        t = next;
    }
}

static void on_closed(uv_handle_t *h)
{
    struct loop *lp = h->data;

    /* A poster that queued its task before the close may still be about to write: the
     * descriptor (and lp) stay until it has. Only here, once per loop, is anything waited
     * for, and never for long: the write is all that is left to it. */
    while (atomic_load(&lp->_writing))
        sched_yield();
    close(lp->_efd);
    lp->_efd = -1;
}

/* The close itself: what is queued runs, then no more posts are taken. */
static void close_now(struct loop *lp)
{
    run_queued(lp);
    pthread_mutex_lock(&lp->_mu);
    lp->_closing = 1;
    pthread_mutex_unlock(&lp->_mu);
    uv_close((uv_handle_t *)&lp->_wake, on_closed);
}

static void on_wake(uv_poll_t *h, int status, int events)
{
    struct loop *lp = h->data;
    uint64_t n;

    (void)status;
    (void)events;
    /* First empty the counter, then the list: a post between the two is in the list
     * taken, and its write only makes one wake-up more, which finds the list empty. */
    while (read(lp->_efd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
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
    lp->_signalled = 0;
    atomic_init(&lp->_writing, 0);
    lp->_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (lp->_efd < 0)
        return ERR_IO;
    if (uv_loop_init(&lp->uv)) {
        close(lp->_efd);
        return ERR_IO;
    }
    if (uv_poll_init(&lp->uv, &lp->_wake, lp->_efd) ||
        uv_poll_start(&lp->_wake, UV_READABLE, on_wake)) {
        close(lp->_efd);
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

/* With lp->_mu held: whether this post must write the eventfd (the first since the loop
 * last took the list). */
static int must_signal(struct loop *lp)
{
    if (lp->_signalled)
        return 0;
    lp->_signalled = 1;
    atomic_fetch_add(&lp->_writing, 1);
    return 1;
}

/* After the mutex, so that the loop never waits for a poster's system call. */
static void signal_loop(struct loop *lp)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is full, so the loop has a wake-up pending anyway. */
    while (write(lp->_efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    atomic_fetch_sub(&lp->_writing, 1);
}

void loop_post_owed(struct loop *lp, struct loop_task *t)
{
    pthread_mutex_lock(&lp->_mu);
    assert(!lp->_closing && lp->_owed);
    QUEUE_APPEND(lp->_head, lp->_tail, t, _next);
    lp->_owed--;
    int sig = must_signal(lp);
    pthread_mutex_unlock(&lp->_mu);
    if (sig)
        signal_loop(lp);
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
    int sig = must_signal(lp);
    pthread_mutex_unlock(&lp->_mu);
    if (sig)
        signal_loop(lp);
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

void loop_name_thread(pthread_t t, const char *what, unsigned i)
{
    char name[32];
    snprintf(name, sizeof(name), "%s %u", what, i);
    name[15] = '\0';
    pthread_setname_np(t, name);
}
