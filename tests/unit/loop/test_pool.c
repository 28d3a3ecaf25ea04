/* SPDX-License-Identifier: MIT */
/* The worker pool: bounded queue, completions on the submitting loop's thread, priority. */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "harness.h"
#include "loop/loop.h"
#include "loop/pool.h"

struct tjob {
    struct pool_job job;
    pthread_t done_thread;
    int nice_seen;
    int done;
};

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static int completed;
static struct loop lp;

static void t_work(struct pool_job *j)
{
    struct tjob *t = (struct tjob *)(void *)j;
    pthread_mutex_lock(&gate); /* held by the test to keep workers busy */
    pthread_mutex_unlock(&gate);
    t->nice_seen = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

static void t_done(struct pool_job *j)
{
    struct tjob *t = (struct tjob *)(void *)j;
    t->done_thread = pthread_self();
    t->done = 1;
    completed++;
}

/* Until the pool's worker holds a job (it blocks on the gate). */
static void wait_running(struct pool *p)
{
    for (int i = 0; i < 1000; i++) {
        struct pool_stats st;
        pool_stats(p, &st);
        if (st.running == 1)
            return;
        usleep(1000);
    }
}

static void run_until_completed(int n)
{
    completed = 0;
    while (completed < n)
        uv_run(&lp.uv, UV_RUN_ONCE);
}

/* The pool drained and freed, then the loop closed. */
static void teardown(struct pool *p)
{
    pool_drain(p);
    pool_free(p);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
}

TEST(pool_bounded_queue_and_completion_thread)
{
    struct pool *p;
    struct tjob jobs[4] = {0};
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    ASSERT_EQ_INT(pool_new(1, 2, 7, &p), 0);
    pthread_mutex_lock(&gate);
    for (int i = 0; i < 4; i++) {
        jobs[i].job.on_work = t_work;
        jobs[i].job.on_done = t_done;
    }
    /* an idle worker: no wait, whatever a job costs (nothing measured yet: 1 ms a job) */
    ASSERT_EQ_INT(pool_expected_wait_ms(p), 0);
    ASSERT_EQ_INT(pool_submit(p, &lp, &jobs[0].job), 0);
    wait_running(p); /* the worker took job 0, so the queue is empty again */
    ASSERT_EQ_INT(pool_expected_wait_ms(p), 1); /* the running job must finish first */
    ASSERT_EQ_INT(pool_submit(p, &lp, &jobs[1].job), 0);
    ASSERT_EQ_INT(pool_submit(p, &lp, &jobs[2].job), 0);
    ASSERT_EQ_INT(pool_expected_wait_ms(p), 3);                  /* and the two queued ones */
    ASSERT_EQ_INT(pool_submit(p, &lp, &jobs[3].job), ERR_LIMIT); /* queue of 2 is full */
    struct pool_stats st;
    pool_stats(p, &st);
    ASSERT_EQ_INT(st.depth, 2);
    ASSERT_EQ_INT(st.rejected, 1);
    pthread_mutex_unlock(&gate);
    run_until_completed(3);
    for (int i = 0; i < 3; i++) {
        ASSERT_TRUE(pthread_equal(jobs[i].done_thread, pthread_self()));
        ASSERT_EQ_INT(jobs[i].nice_seen, 7);
    }
    ASSERT_EQ_INT(jobs[3].done, 0);
    teardown(p);
}

TEST(pool_scratch_only_on_workers)
{
    ASSERT_TRUE(pool_scratch(4096) == NULL);
}

TEST(pool_cancel_queued_posts_without_running)
{
    struct pool *p;
    struct tjob jobs[3] = {0};
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    ASSERT_EQ_INT(pool_new(1, 8, 0, &p), 0);
    pthread_mutex_lock(&gate);
    for (int i = 0; i < 3; i++) {
        jobs[i].job.on_work = t_work;
        jobs[i].job.on_done = t_done;
        jobs[i].nice_seen = -100;
        ASSERT_EQ_INT(pool_submit(p, &lp, &jobs[i].job), 0);
    }
    wait_running(p); /* job 0 is on the worker, blocked on the gate */
    pool_cancel_queued(p);
    pthread_mutex_unlock(&gate);
    run_until_completed(3);
    ASSERT_EQ_INT(jobs[0].job.cancelled, 0);
    ASSERT_EQ_INT(jobs[0].nice_seen, 0);
    ASSERT_EQ_INT(jobs[1].job.cancelled, 1);
    ASSERT_EQ_INT(jobs[2].job.cancelled, 1);
    ASSERT_EQ_INT(jobs[1].nice_seen, -100); /* on_work never ran */
    teardown(p);
}

/* A job that waited in the queue past its deadline is not run (its on_done sees it
 * cancelled, and answers busy): an answer already late is not made later still by the work.
 * A job without a deadline, or within it, runs. */
TEST(pool_jobs_past_their_deadline_are_not_run)
{
    struct pool *p;
    struct tjob jobs[3] = {0};
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    ASSERT_EQ_INT(pool_new(1, 8, 0, &p), 0);
    pthread_mutex_lock(&gate);
    for (int i = 0; i < 3; i++) {
        jobs[i].job.on_work = t_work;
        jobs[i].job.on_done = t_done;
        jobs[i].nice_seen = -100;
    }
    jobs[1].job.deadline_ns = 20 * 1000000ull; /* job 0 holds the worker longer than that */
    jobs[2].job.deadline_ns = 10000 * 1000000ull;
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(pool_submit(p, &lp, &jobs[i].job), 0);
    usleep(60 * 1000);
    pthread_mutex_unlock(&gate);
    run_until_completed(3);
    ASSERT_EQ_INT(jobs[0].job.cancelled, 0);
    ASSERT_EQ_INT(jobs[1].job.cancelled, 1);
    ASSERT_EQ_INT(jobs[1].nice_seen, -100); /* on_work never ran */
    ASSERT_TRUE(jobs[1].job.wait_ns > 20 * 1000000ull);
    ASSERT_EQ_INT(jobs[2].job.cancelled, 0);
    ASSERT_EQ_INT(jobs[2].nice_seen, 0);
    struct pool_stats st;
    pool_stats(p, &st);
    ASSERT_EQ_INT(st.expired, 1);
    ASSERT_EQ_INT(st.completed, 2);
    teardown(p);
}

/* A job that hashes (20 ms here) and one that does not (nothing): the login capacity is
 * measured from the first kind only (issue #15 item 3: cheap jobs, a login refused before
 * its hash or an admin listing, made the workers look several times faster). */
static void t_hash(struct pool_job *j)
{
    usleep(20 * 1000);
    j->hashed = 1;
}

static void t_cheap(struct pool_job *j)
{
    (void)j;
}

TEST(pool_measures_hashing_apart_from_cheap_jobs)
{
    struct pool *p;
    struct tjob jobs[12] = {0};
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    ASSERT_EQ_INT(pool_new(1, 16, 0, &p), 0);
    for (int i = 0; i < 12; i++) {
        jobs[i].job.on_work = i % 4 == 0 ? t_hash : t_cheap; /* 3 hashes, 9 cheap jobs */
        jobs[i].job.on_done = t_done;
        ASSERT_EQ_INT(pool_submit(p, &lp, &jobs[i].job), 0);
    }
    run_until_completed(12);
    struct pool_stats st;
    pool_stats(p, &st);
    ASSERT_TRUE(st.ewma_hash_ns >= 20 * 1000000ull);
    ASSERT_TRUE(st.ewma_hash_ns < 2000 * 1000000ull);
    ASSERT_TRUE(st.ewma_work_ns < st.ewma_hash_ns); /* (the mixed figure: far below) */
    teardown(p);
}

/* A loop told to close while a job of its own is still on a worker stays open until the
 * completion is back (it used to close at once, and the late completion hit a closed
 * mailbox: an assertion at shutdown, or a lost completion), then closes by itself. */
TEST(a_loop_closes_only_after_its_owed_completions)
{
    struct pool *p;
    struct tjob job = {0};
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    ASSERT_EQ_INT(pool_new(1, 4, 0, &p), 0);
    completed = 0;
    pthread_mutex_lock(&gate); /* the worker waits until the mailbox was told to close */
    job.job.on_work = t_work;
    job.job.on_done = t_done;
    ASSERT_EQ_INT(pool_submit(p, &lp, &job.job), 0);
    loop_close_mailbox(&lp);
    pthread_mutex_unlock(&gate);
    uv_run(&lp.uv, UV_RUN_DEFAULT); /* returns once the completion ran and the box closed */
    ASSERT_EQ_INT(job.done, 1);
    ASSERT_TRUE(pthread_equal(job.done_thread, pthread_self()));
    pool_drain(p);
    pool_free(p);
    loop_fini(&lp);
}
