/* SPDX-License-Identifier: MIT */
/*
 * Worker pool: one mutex, one condition variable, a FIFO of jobs. Contention on the mutex is
 * negligible next to the jobs it guards (milliseconds of hashing each). Statistics are
 * updated under the same mutex.
 */
#include "loop/pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "loop/loop.h"
#include "metrics/met_text.h"

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a job was queued or stop was set */
    pthread_cond_t cv_idle; /* queue drained and nothing running */
    struct pool_job *head, *tail;
    unsigned depth, running, capacity, nthreads;
    int stopping;
    int nice_value;
    pthread_t *threads;
    /* statistics */
    uint64_t submitted, rejected, completed, expired, wait_ns_sum, work_ns_sum;
    uint64_t ewma_work_ns; /* smoothed service time, for the expected wait */
    uint64_t ewma_hash_ns; /* smoothed time of the jobs that hashed: the login capacity */
    uint64_t wait_hist[POOL_WAIT_BUCKETS];
};

const double pool_wait_bounds[POOL_WAIT_BUCKETS - 1] = {0.001, 0.005, 0.01, 0.05, 0.1,
                                                        0.5,   1,     2,    5};

static __thread void *scratch;
static __thread size_t scratch_len;
static __thread int on_worker;

void *pool_scratch(size_t n)
{
    if (!on_worker)
        return NULL;
    if (scratch_len >= n)
        return scratch;
    if (scratch)
        munmap(scratch, scratch_len);
    /* MAP_POPULATE faults every page in now: a fault costs ~10 us per 4 KiB page here, which
     * for a 19 MiB Argon2 buffer is more than the hash itself (see docs/STYLE.md). */
    void *p =
        mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        scratch = NULL;
        scratch_len = 0;
        return NULL;
    }
    scratch = p;
    scratch_len = n;
    return p;
}

static void lower_priority(int nice_value)
{
    struct sched_param sp = {0};

    /* SCHED_BATCH tells the scheduler these threads are CPU-bound and not latency-sensitive;
     * the nice value (per thread on Linux) gives the loop threads the larger share. */
    if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
        log_msg(LOG_DEBUG, "worker: SCHED_BATCH not available: %s", strerror(errno));
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, nice_value) != 0)
        log_msg(LOG_WARN, "worker: cannot set nice %d: %s", nice_value, strerror(errno));
}

/* The task is the job's first member, so the task pointer is the job pointer. */
static void run_done(struct loop_task *t)
{
    struct pool_job *j = (struct pool_job *)(void *)t;
    j->on_done(j);
}

/* With p->mu held: the job leaves the running set (a pool now idle says so) and goes back
 * to its loop, posted after the bookkeeping: once posted, its owner may free it. Returns
 * with p->mu held again. */
static void hand_back(struct pool *p, struct pool_job *j)
{
    p->running--;
    if (!p->head && !p->running)
        pthread_cond_broadcast(&p->cv_idle);
    j->_task.on_run = run_done;
    pthread_mutex_unlock(&p->mu);
    loop_post_owed(j->_loop, &j->_task);
    pthread_mutex_lock(&p->mu);
}

/* A service time folded into its running mean (weight 1/8; the first one as it is). */
static uint64_t smooth(uint64_t mean, uint64_t v)
{
    return mean ? (mean * 7 + v) / 8 : v;
}

static void *worker_main(void *arg)
{
    struct pool *p = arg;
    uint64_t last_end = 0; /* when this worker's previous job ended */

    on_worker = 1;
    lower_priority(p->nice_value);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cv_work, &p->mu);
        if (!p->head)
            break; /* stopping and nothing left */
        struct pool_job *j = p->head;
        p->head = j->_next;
        if (!p->head)
            p->tail = NULL;
        p->depth--;
        p->running++;
        uint64_t start = clock_mono_ns();
        j->wait_ns = start - j->_enqueued_ns;
        p->wait_ns_sum += j->wait_ns;
        unsigned b = 0;
        while (b < POOL_WAIT_BUCKETS - 1 && (double)j->wait_ns > pool_wait_bounds[b] * 1e9)
            b++;
        p->wait_hist[b]++;
        if (j->deadline_ns && j->wait_ns > j->deadline_ns) {
            /* Its answer is late already: refused now (on_done answers busy), not served
             * later still, and no worker time is spent on it. */
            p->expired++;
            j->cancelled = 1;
            hand_back(p, j);
            continue;
        }
        pthread_mutex_unlock(&p->mu);

        j->on_work(j);
        uint64_t end = clock_mono_ns(), took = end - start;
        /* The drain rate: from the previous job's end if this one was waiting by then */
        uint64_t per = end - (j->_enqueued_ns <= last_end && last_end < start ? last_end : start);
        last_end = end;

        pthread_mutex_lock(&p->mu);
        p->completed++;
        p->work_ns_sum += took;
        p->ewma_work_ns = smooth(p->ewma_work_ns, per);
        if (j->hashed)
            p->ewma_hash_ns = smooth(p->ewma_hash_ns, took);
        hand_back(p, j);
    }
    pthread_mutex_unlock(&p->mu);
    if (scratch) {
        munmap(scratch, scratch_len);
        scratch = NULL;
        scratch_len = 0;
    }
    return NULL;
}

int pool_new(unsigned nthreads, unsigned queue_max, int nice_value, struct pool **out)
{
    if (nthreads == 0 || queue_max == 0)
        return ERR_INVAL;
    struct pool *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_idle, NULL);
    p->capacity = queue_max;
    p->nice_value = nice_value;
    p->threads = xcalloc(nthreads, sizeof(pthread_t));
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            p->nthreads = i;
            pool_free(p);
            return ERR_IO;
        }
        p->nthreads = i + 1;
        loop_name_thread(p->threads[i], "fg-worker", i);
    }
    *out = p;
    return ERR_OK;
}

int pool_submit(struct pool *p, struct loop *lp, struct pool_job *j)
{
    int rc = ERR_OK;

    j->_next = NULL;
    j->_loop = lp;
    j->wait_ns = 0;
    j->cancelled = 0;
    j->hashed = 0;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        rc = ERR_AGAIN;
    } else if (p->depth >= p->capacity) {
        p->rejected++;
        rc = ERR_LIMIT;
    } else {
        j->_enqueued_ns = clock_mono_ns();
        loop_owe(lp); /* (its loop stays open until the completion is back) */
        QUEUE_APPEND(p->head, p->tail, j, _next);
        p->depth++;
        p->submitted++;
        pthread_cond_signal(&p->cv_work);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void pool_cancel_queued(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    struct pool_job *j = p->head;
    p->head = p->tail = NULL;
    p->depth = 0;
    if (!p->running)
        pthread_cond_broadcast(&p->cv_idle);
    pthread_mutex_unlock(&p->mu);
    while (j) {
        struct pool_job *next = j->_next;
        j->cancelled = 1;
        j->_task.on_run = run_done;
        loop_post_owed(j->_loop, &j->_task);
        j = next;
    }
}

uint64_t pool_expected_wait_ms(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t per = p->ewma_work_ns ? p->ewma_work_ns : 1000000;
    /* Jobs that must finish before a new one starts: with an idle worker, none. (Counting
     * the new job's own service time, as this once did, refused every job for good once
     * one hash took longer than the deadline: nothing ran, so the mean never fell.) */
    unsigned ahead = p->depth + p->running;
    uint64_t ms =
        ahead < p->nthreads ? 0 : (uint64_t)(ahead - p->nthreads + 1) * per / p->nthreads / 1000000;
    pthread_mutex_unlock(&p->mu);
    return ms;
}

void pool_stats(struct pool *p, struct pool_stats *o)
{
    pthread_mutex_lock(&p->mu);
    o->submitted = p->submitted;
    o->rejected = p->rejected;
    o->completed = p->completed;
    o->expired = p->expired;
    o->wait_ns_sum = p->wait_ns_sum;
    o->work_ns_sum = p->work_ns_sum;
    o->depth = p->depth;
    o->running = p->running;
    o->threads = p->nthreads;
    o->capacity = p->capacity;
    memcpy(o->wait_hist, p->wait_hist, sizeof(o->wait_hist));
    o->ewma_work_ns = p->ewma_work_ns;
    o->ewma_hash_ns = p->ewma_hash_ns;
    pthread_mutex_unlock(&p->mu);
}

void pool_drain(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    while (p->head || p->running)
        pthread_cond_wait(&p->cv_idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_idle);
    mem_free(p->threads);
    mem_free(p);
}

int pool_metrics_text(struct pool *p, struct buf *b)
{
    struct pool_stats st;
    uint64_t cum = 0;

    pool_stats(p, &st);
    met_text_gauge(b, "floodgate_worker_queue_depth", "Jobs waiting for a worker thread.",
                   st.depth);
    met_text_gauge(b, "floodgate_worker_queue_capacity", "Jobs the worker queue holds before 503.",
                   st.capacity);
    met_text_gauge(b, "floodgate_worker_busy", "Jobs running on worker threads now.", st.running);
    met_text_gauge(b, "floodgate_worker_threads", "Worker threads.", st.threads);
    buf_puts(b, "# HELP floodgate_worker_jobs_total Worker jobs by outcome.\n"
                "# TYPE floodgate_worker_jobs_total counter\n");
    buf_printf(b, "floodgate_worker_jobs_total{result=\"completed\"} %llu\n",
               (unsigned long long)st.completed);
    /* (a job refused at a full queue is a request answered 503: it is counted once, in
     * floodgate_worker_rejected_requests_total, with the other admission refusals) */
    buf_printf(b, "floodgate_worker_jobs_total{result=\"expired\"} %llu\n",
               (unsigned long long)st.expired);
    /* (in seconds with their fraction: a count of whole seconds read 0 after 15 hashes) */
    buf_printf(b,
               "# HELP floodgate_worker_busy_seconds_total Time spent running jobs.\n"
               "# TYPE floodgate_worker_busy_seconds_total counter\n"
               "floodgate_worker_busy_seconds_total %.6f\n",
               (double)st.work_ns_sum / 1e9);
    buf_puts(b, "# HELP floodgate_worker_queue_wait_seconds Time jobs waited in the queue.\n"
                "# TYPE floodgate_worker_queue_wait_seconds histogram\n");
    for (unsigned i = 0; i < POOL_WAIT_BUCKETS; i++) {
        cum += st.wait_hist[i];
        if (i < POOL_WAIT_BUCKETS - 1)
            buf_printf(b, "floodgate_worker_queue_wait_seconds_bucket{le=\"%g\"} %llu\n",
                       pool_wait_bounds[i], (unsigned long long)cum);
        else
            buf_printf(b, "floodgate_worker_queue_wait_seconds_bucket{le=\"+Inf\"} %llu\n",
                       (unsigned long long)cum);
    }
    buf_printf(b, "floodgate_worker_queue_wait_seconds_sum %.6f\n", (double)st.wait_ns_sum / 1e9);
    return buf_printf(b, "floodgate_worker_queue_wait_seconds_count %llu\n",
                      (unsigned long long)cum);
}
