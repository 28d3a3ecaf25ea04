/* SPDX-License-Identifier: MIT */
/* Password login without HTTP (#12 item 1): the hash on a real worker A.pool, the family on
 * the embedded store, the A.lockout, the rehash and the one answer for every failure. */
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "auth/auth_login.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"
#include "loop/loop.h"
#include "token/tok_introspect.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {9};
static struct fx F;
static struct fx_auth A;
static int answers, last_rc;
static const struct auth_pw_params pp = {64, 1, 1}; /* small: a unit test's hash */

static void on_answer(struct auth_login *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static void add_user(const char *name, const char *pw, const struct auth_pw_params *with,
                     bool disabled)
{
    struct auth_user u;
    char phc[AUTH_PHC_MAX];
    ASSERT_EQ_INT(auth_pw_hash(with, pw, strlen(pw), phc, sizeof(phc)), 0);
    auth_user_init(&u, name, phc, 1000);
    u.disabled = disabled;
    ASSERT_EQ_INT(auth_user_put(F.st, &u, false), 0);
}

static void setup(unsigned user_attempts)
{
    ASSERT_EQ_INT(fx_open(&F, "login-test"), 0);
    ASSERT_EQ_INT(fx_auth_open(&A, &F, key, &pp, user_attempts), 0);
    add_user("ann", "correct horse", &pp, false);
    add_user("dis", "correct horse", &pp, true);
}

static void teardown(void)
{
    fx_auth_close(&A, &F);
    fx_close(&F);
}

/* Logs in (the password is copied: the operation wipes it); q holds the outputs. */
static int login(struct auth_login *q, const char *user, const char *pw, const char *ip)
{
    static char pwbuf[2048];
    memset(q, 0, sizeof(*q));
    snprintf(pwbuf, sizeof(pwbuf), "%s", pw);
    q->svc = &A.svc;
    q->lp = &F.lp;
    q->user = str_c(user);
    q->pw = str_c(pwbuf);
    q->refresh = true;
    q->now = 2000;
    q->done = on_answer;
    snprintf(q->ip, sizeof(q->ip), "%s", ip);
    snprintf(q->ip_key, sizeof(q->ip_key), "%s", ip);
    snprintf(q->client_id, sizeof(q->client_id), "app");
    snprintf(q->scope, sizeof(q->scope), "read");
    answers = 0;
    int rc = auth_login(q);
    if (rc != ERR_AGAIN)
        return rc;
    fx_wait(&F, &answers, 1);
    if (strcmp(pwbuf, pw) == 0 && pw[0])
        harness_fail(__FILE__, __LINE__, "the password was not wiped");
    return last_rc;
}

static bool active(const char *token)
{
    return fx_rt_active(F.st, key, token, "app", 2001);
}

TEST(login_succeeds_with_a_durable_family_and_fails_alike_otherwise)
{
    struct auth_login q;
    struct auth_user u;
    setup(100);
    ASSERT_EQ_INT(auth_user_get(F.st, "ann", &u), 0);
    ASSERT_EQ_INT(login(&q, "Ann", "correct horse", "10.0.0.1"), ERR_OK); /* name normalised */
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_OK);
    ASSERT_EQ_STR(q.sub, u.id);
    ASSERT_EQ_INT((int)strlen(q.refresh_token), TOK_REFRESH_LEN);
    ASSERT_TRUE(active(q.refresh_token));
    /* wrong password, unknown user, disabled user, a name that cannot exist: one outcome */
    ASSERT_EQ_INT(login(&q, "ann", "wrong horse", "10.0.0.1"), ERR_OK);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_FAILED);
    ASSERT_EQ_STR(q.refresh_token, "");
    ASSERT_EQ_INT(login(&q, "bob", "correct horse", "10.0.0.1"), ERR_OK);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_FAILED);
    ASSERT_EQ_INT(login(&q, "dis", "correct horse", "10.0.0.1"), ERR_OK);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_FAILED);
    ASSERT_EQ_INT(login(&q, "no spaces allowed", "correct horse", "10.0.0.1"), ERR_OK);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_FAILED);
    ASSERT_EQ_INT((int)atomic_load(&A.logins[AUTH_LOGINS_OK]), 1);
    ASSERT_EQ_INT((int)atomic_load(&A.logins[AUTH_LOGINS_FAILED]), 4);
    teardown();
}

TEST(lockout_refuses_without_hashing_and_says_failed)
{
    struct auth_login q;
    setup(3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(login(&q, "ann", "wrong horse", "10.0.0.2"), ERR_OK);
        ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_FAILED);
    }
    /* locked: the right password now fails too, at once (no worker job) */
    ASSERT_EQ_INT(login(&q, "ann", "correct horse", "10.0.0.2"), ERR_OK);
    ASSERT_EQ_INT(answers, 0);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_FAILED);
    ASSERT_EQ_INT((int)atomic_load(&A.logins[AUTH_LOGINS_REFUSED]), 1);
    /* an administrator's unlock lets it in */
    auth_unlock_user(&A.svc, "ann");
    ASSERT_EQ_INT(login(&q, "ann", "correct horse", "10.0.0.2"), ERR_OK);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_OK);
    teardown();
}

TEST(an_outdated_hash_is_upgraded_at_login)
{
    struct auth_login q;
    struct auth_user before, after;
    const struct auth_pw_params old = {32, 1, 1};
    setup(100);
    add_user("old", "correct horse", &old, false);
    ASSERT_EQ_INT(auth_user_get(F.st, "old", &before), 0);
    ASSERT_EQ_INT(login(&q, "old", "correct horse", "10.0.0.3"), ERR_OK);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_OK);
    ASSERT_EQ_INT(auth_user_get(F.st, "old", &after), 0);
    ASSERT_TRUE(strcmp(before.phc, after.phc) != 0);
    ASSERT_TRUE(strstr(after.phc, "m=64,") != NULL);
    ASSERT_EQ_INT(login(&q, "old", "correct horse", "10.0.0.3"), ERR_OK); /* the new hash */
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_OK);
    teardown();
}

static sem_t hold;
static int held_done;

static void hold_work(struct pool_job *j)
{
    (void)j;
    sem_wait(&hold);
}

static void hold_done(struct pool_job *j)
{
    (void)j;
    held_done++;
}

TEST(a_refused_hash_gives_its_attempt_back)
{
    struct auth_login q;
    struct pool_job busy[2];
    setup(1); /* one attempt in flight fills the user's key */
    pool_free(A.pool);
    ASSERT_EQ_INT(pool_new(1, 1, 0, &A.pool), 0); /* one worker, a queue of one */
    A.svc.pool = A.tok.pool = A.pool;
    sem_init(&hold, 0, 0);
    held_done = 0;
    for (int i = 0; i < 2; i++) { /* the worker busy, the queue full */
        memset(&busy[i], 0, sizeof(busy[i]));
        busy[i].on_work = hold_work;
        busy[i].on_done = hold_done;
        ASSERT_EQ_INT(pool_submit(A.pool, &F.lp, &busy[i]), 0);
        usleep(20000);
    }
    ASSERT_EQ_INT(login(&q, "ann", "correct horse", "10.0.0.4"), ERR_LIMIT);
    ASSERT_TRUE(q.retry_ms >= 1000);
    sem_post(&hold);
    sem_post(&hold);
    while (held_done < 2)
        uv_run(&F.lp.uv, UV_RUN_ONCE);
    /* had the refused attempt kept its reservation, this one would be "busy" */
    ASSERT_EQ_INT(login(&q, "ann", "correct horse", "10.0.0.4"), ERR_OK);
    ASSERT_EQ_INT(q.outcome, AUTH_LOGIN_OK);
    sem_destroy(&hold);
    teardown();
}
