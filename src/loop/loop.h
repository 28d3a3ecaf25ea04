/* SPDX-License-Identifier: MIT */
/*
 * One libuv loop per thread. A loop has a mailbox: any thread may post a task to it and the
 * task's callback runs on the loop's thread (this is how worker-pool completions come home,
 * like libuv's threadpool and Redis's bio). Posting is a mutex-protected list append plus,
 * for the first task since the loop last looked, one write to an eventfd the loop polls:
 * wake-ups coalesce, and the loop never waits for a poster (loop.c says why this is not
 * uv_async_t). The struct is embedded by its owner.
 */
#ifndef LOOP_LOOP_H
#define LOOP_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

struct loop_task;
typedef void (*loop_task_cb)(struct loop_task *t);

/* Embedded by the caller in whatever it posts; the loop never allocates it. */
struct loop_task {
    struct loop_task *_next;
    loop_task_cb on_run;
};

struct loop {
    uv_loop_t uv;
    unsigned index;
    pthread_t thread;
    void *data;      /* owner's per-thread context */
    uv_poll_t _wake; /* on _efd */
    int _efd;
    pthread_mutex_t _mu;
    struct loop_task *_head, *_tail;
    int _signalled;       /* _efd was written since the loop last took the list */
    _Atomic int _writing; /* posters between the mutex and their write to _efd */
    int _closing;
    unsigned _owed;      /* completions promised to this loop (loop_owe) not yet posted */
    int _close_deferred; /* closing waits for them */
};

/* Initialises the uv loop and its mailbox. ERR_IO on failure. Any thread; afterwards the
 * loop belongs to the thread that runs it. */
int loop_init(struct loop *lp, unsigned index);
/* Closes the mailbox handle; call from the loop thread before its last uv_run. While
 * completions are owed to the loop (a job on the worker pool), the close waits for them:
 * the mailbox stays open, the loop keeps running, and it closes once they have run. */
void loop_close_mailbox(struct loop *lp);
/* Closes the uv loop after every handle is closed; frees nothing else. */
void loop_fini(struct loop *lp);

/* Queues `t`; t->on_run(t) runs on lp's thread. Any thread. After loop_close_mailbox, tasks
 * run at once on the caller's thread would be wrong, so posting then is a bug (asserted). */
void loop_post(struct loop *lp, struct loop_task *t);
/* A completion will be posted to lp later (loop_post_owed): lp does not close its mailbox
 * until it has been. Any thread. */
void loop_owe(struct loop *lp);
/* loop_post of a completion promised by loop_owe. */
void loop_post_owed(struct loop *lp, struct loop_task *t);

/* Runs lp on the calling thread until it has nothing left, marking the thread as lp's:
 * loop_current() answers lp there while it runs, NULL on every other thread. */
void loop_run(struct loop *lp);
struct loop *loop_current(void);

/* Names thread t "WHAT I" (top -H, perf --sort comm, /proc/PID/task/TID/comm), cut to the
 * 15 characters the kernel keeps. */
void loop_name_thread(pthread_t t, const char *what, unsigned i);

#endif
