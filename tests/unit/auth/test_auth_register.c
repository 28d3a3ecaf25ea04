/* SPDX-License-Identifier: MIT */
/* Registration without HTTP (#12 item 1): a user is created once, hashed on the worker; a
 * taken name (any case), a malformed name and a weak password are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "auth/auth_password.h"
#include "auth/auth_register.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "harness.h"
#include "loop/loop.h"

static struct loop lp;
static int answers, last_rc;

static void on_answer(struct auth_registration *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static int reg(const struct auth_svc *svc, struct auth_registration *q, const char *user,
               const char *pw)
{
    static char pwbuf[256];
    snprintf(pwbuf, sizeof(pwbuf), "%s", pw);
    memset(q, 0, sizeof(*q));
    q->svc = svc;
    q->lp = &lp;
    q->user = str_c(user);
    q->pw = str_c(pwbuf);
    q->now = 1000;
    q->done = on_answer;
    answers = 0;
    int rc = auth_register(q);
    if (rc != ERR_AGAIN)
        return rc;
    while (!answers)
        uv_run(&lp.uv, UV_RUN_ONCE);
    return last_rc;
}

TEST(registration_creates_once_and_refuses_bad_input)
{
    char dir[64], cmd[96], err[256];
    struct store *st;
    struct pool *pool;
    struct auth_registration q;
    struct auth_user u;
    bool ok, rehash;
    snprintf(dir, sizeof(dir), "/tmp/fg-register-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ_INT(cr_init(), 0);
    ASSERT_EQ_INT(system(cmd), 0);
    ASSERT_EQ_INT(store_open_lmdb(dir, 16u << 20, 0, &st, err, sizeof(err)), 0);
    ASSERT_EQ_INT(loop_init(&lp, 0), 0);
    ASSERT_EQ_INT(pool_new(1, 16, 0, &pool), 0);
    struct auth_svc svc = {.st = st, .pool = pool, .pp = {64, 1, 1}};
    ASSERT_EQ_INT(reg(&svc, &q, "Ann", "correct horse battery"), ERR_OK);
    ASSERT_EQ_STR(q.u.name, "ann");
    ASSERT_EQ_INT(auth_user_get(st, "ann", &u), 0);
    ASSERT_EQ_STR(u.id, q.u.id);
    ASSERT_EQ_INT(auth_pw_verify(u.phc, "correct horse battery", 21, &svc.pp, &ok, &rehash), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ_INT(reg(&svc, &q, "ANN", "another good one"), ERR_CONFLICT);
    ASSERT_EQ_INT(reg(&svc, &q, "no spaces", "correct horse battery"), ERR_INVAL);
    ASSERT_EQ_STR(q.bad, "invalid_username");
    ASSERT_EQ_INT(reg(&svc, &q, "bob", "short"), ERR_INVAL);
    ASSERT_EQ_STR(q.bad, "invalid_password");
    ASSERT_EQ_INT(auth_user_get(st, "bob", &u), ERR_NOTFOUND);
    pool_drain(pool);
    pool_free(pool);
    store_loop_release(st, &lp);
    loop_close_mailbox(&lp);
    uv_run(&lp.uv, UV_RUN_DEFAULT);
    loop_fini(&lp);
    store_close(st);
    ASSERT_EQ_INT(system(cmd), 0);
}
