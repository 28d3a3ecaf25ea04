/* SPDX-License-Identifier: MIT */
/* The loop's mailbox: tasks posted from any thread run once each, on the loop's thread,
 * however the posts and the loop's wake-ups interleave; a loop closes only after the
 * completions it is owed, even when they are posted from other threads as it closes. */
#include <pthread.h>
#include <stdatomic.h>

#include "core/err.h"
#include "harness.h"
#include "loop/loop.h"

#define POSTERS 4
#define PER     20000

struct ttask {
    struct loop_task task;
    pthread_t ran_on;
    int runs;
};

static struct loop lp;
static struct ttask tasks[POSTERS][PER];
static int ran;

static void t_run(struct loop_task *t)
{
    struct ttask *x = (struct ttask *)(void *)t;
    x->ran_on = pthread_self();
    x->runs++;
    ran++;
}

struct poster {
    int index;
    int owed; /* post as promised completions (loop_owe first, by the test) */
};

static void *post_all(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < PER; i++) {
        tasks[p->index][i].task.on_run = t_run;
        if (p->owed)
            loop_post_owed(&lp, &tasks[p->index][i].task);
        else
            loop_post(&lp, &tasks[p->index][i].task);
        if (i % 1000 == 0)
            sched_yield(); /* (let the loop take part of the list, then post more) */
    }
    return NULL;
}

static int check_all_ran_once_here(void)
{
    for (int p = 0; p < POSTERS; p++)
        for (int i = 0; i < PER; i++)
            if (tasks[p][i].runs != 1 || !pthread_equal(tasks[p][i].ran_on, pthread_self()))
                return 0;
    return 1;
}

static pthread_t th[POSTERS];
static struct poster ps[POSTERS];

/* The posting threads started (owed: as promised completions). 0, or the failed create's. */
static int start_posters(int owed)
{
    for (int i = 0; i < POSTERS; i++) {
        ps[i] = (struct poster){i, owed};
        int rc = pthread_create(&th[i], NULL, post_all, &ps[i]);
        if (rc)
            return rc;
    }
    return 0;
}

TEST(every_task_posted_from_many_threads_runs_once_on_the_loop)
{
    memset(tasks, 0, sizeof(tasks));
    ran = 0;
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    ASSERT_EQ_INT(start_posters(0), 0);
    while (ran < POSTERS * PER)
        uv_run(&lp.uv, UV_RUN_ONCE); /* blocks until a post wakes it: a lost wake-up hangs */
    for (int i = 0; i < POSTERS; i++)
        pthread_join(th[i], NULL);
    ASSERT_TRUE(check_all_ran_once_here());
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(ran, POSTERS * PER);
    loop_fini(&lp);
}

/* The close is asked for at once; the posters are still posting what is owed. The loop runs
 * every one of them, then closes by itself (uv_run returns): its descriptor is closed only
 * after the last poster's write. */
TEST(a_loop_closing_runs_the_completions_posted_as_it_closes)
{
    memset(tasks, 0, sizeof(tasks));
    ran = 0;
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    for (int i = 0; i < POSTERS * PER; i++)
        loop_owe(&lp);
    ASSERT_EQ_INT(start_posters(1), 0);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    for (int i = 0; i < POSTERS; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ_INT(ran, POSTERS * PER);
    ASSERT_TRUE(check_all_ran_once_here());
    loop_fini(&lp);
}
