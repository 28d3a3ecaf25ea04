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
#include "fixture.h"
#include "harness.h"
#include "loop/loop.h"

static struct fx F;
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
    q->lp = &F.lp;
    q->user = str_c(user);
    q->pw = str_c(pwbuf);
    q->now = 1000;
    q->done = on_answer;
    answers = 0;
    int rc = auth_register(q);
    if (rc == ERR_AGAIN)
        fx_wait(&F, &answers, 1);
    return rc == ERR_AGAIN ? last_rc : rc;
}

TEST(registration_creates_once_and_refuses_bad_input)
{
    struct pool *pool;
    struct auth_registration q;
    struct auth_user u;
    bool ok, rehash;
    ASSERT_EQ_INT(fx_open(&F, "register-test"), 0);
    struct store *st = F.st;
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
    fx_close(&F);
}
