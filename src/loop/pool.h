/* SPDX-License-Identifier: MIT */
/*
 * Bounded worker pool for CPU-heavy jobs (Argon2id) and blocking I/O. Why not libuv's own
 * threadpool: it is shared with libuv's file I/O, its queue is unbounded and its threads run
 * at the loop's priority. Here the queue has a hard bound (a full queue is an immediate
 * ERR_LIMIT, which api/ turns into 503 + Retry-After), the threads run niced and in
 * SCHED_BATCH so loop threads keep winning the CPU, and each completion is posted to the
 * loop that submitted the job. Each worker thread may keep scratch memory (pool_scratch)
 * that is faulted in once and reused, which matters for Argon2's large buffers.
 */
#ifndef LOOP_POOL_H
#define LOOP_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "loop/loop.h"

struct pool;
struct pool_job;

typedef void (*pool_work_cb)(struct pool_job *j); /* runs on a worker thread */
typedef void (*pool_done_cb)(struct pool_job *j); /* runs on the submitting loop's thread */

/* Embedded by the caller; owned by the caller, borrowed by the pool from pool_submit until
 * on_done has run. */
struct pool_job {
    struct loop_task _task;
    struct pool_job *_next;
    struct loop *_loop;
    uint64_t _enqueued_ns;
    uint64_t wait_ns;     /* set before on_work: time spent queued */
    uint64_t deadline_ns; /* set by the caller: a job that waited longer is not run; 0: none */
    int cancelled;        /* set if on_work never ran (pool_cancel_queued, or past its deadline);
                             on_done still runs */
    int hashed;           /* set by on_work when it hashed a password: its time is what the
                             login capacity is measured from (a refused login, an admin
                             listing, are not) */
    pool_work_cb on_work;
    pool_done_cb on_done;
};

#define POOL_WAIT_BUCKETS 10 /* the queue-wait histogram: 9 bounds and +Inf */

struct pool_stats {
    uint64_t submitted, rejected, completed;
    uint64_t expired;     /* not run: waited past their deadline */
    uint64_t wait_ns_sum; /* total queue wait of started jobs */
    uint64_t work_ns_sum; /* total time on a worker */
    unsigned depth;       /* jobs queued now, not yet started */
    unsigned running;     /* jobs on a worker now */
    unsigned threads;
    unsigned capacity;
    uint64_t
        wait_hist[POOL_WAIT_BUCKETS]; /* queue wait <=1ms,5ms,10ms,50ms,100ms,500ms,1s,2s,5s,+Inf */
    uint64_t ewma_work_ns;
    uint64_t ewma_hash_ns;
    /* smoothed time of the jobs that hashed a password; 0: none yet */ /* smoothed time of one
                                                                           job: the pool's
                                                                           measured capacity */
};

extern const double pool_wait_bounds[POOL_WAIT_BUCKETS - 1];

/* Starts `nthreads` workers at `nice_value`. ERR_INVAL/ERR_IO. Main thread. */
int pool_new(unsigned nthreads, unsigned queue_max, int nice_value, struct pool **out);
/* Waits for queued and running jobs to finish, then joins the threads. Their completions are
 * posted as usual, so the loops must still be running to receive them. pool_free(NULL) is a
 * no-op. Main thread. */
void pool_drain(struct pool *p);
void pool_free(struct pool *p);

/* Queues `j`; completion is posted to `lp`. ERR_LIMIT if the queue is full (j untouched and
 * on_done never runs), ERR_AGAIN if the pool is stopping. Any thread. */
int pool_submit(struct pool *p, struct loop *lp, struct pool_job *j);

/* Takes every job not yet started off the queue and posts it to its loop with
 * cancelled = 1, without running on_work: on_done answers (typically 503). Used when the
 * drain timeout passes, so shutdown is bounded by it rather than by the queue. Any thread. */
void pool_cancel_queued(struct pool *p);

/* Expected wait before a job queued now starts, in ms, from the recent mean service time
 * (a job's time on a worker, plus the gap since the previous job ended when it was already
 * waiting then: the rate the queue drains at, a worker's lost turns on the CPU included):
 * 0 while a worker is idle. */
uint64_t pool_expected_wait_ms(struct pool *p);

void pool_stats(struct pool *p, struct pool_stats *out);
/* The pool's metrics (floodgate_worker_*) in the Prometheus text format. ERR_LIMIT past b's
 * cap. Any thread. */
struct buf;
int pool_metrics_text(struct pool *p, struct buf *b);

/* Per-worker-thread scratch of at least `n` bytes, pre-faulted, reused across jobs. NULL if
 * not on a worker thread or allocation fails. */
void *pool_scratch(size_t n);

#endif
