/* SPDX-License-Identifier: MIT */
/* Browser sessions without HTTP (#13 item 5): one found by its cookie until it ends, by
 * logout, by time, or by its user's sessions generation moving on. */
#include <stdio.h>
#include <string.h>

#include "auth/auth_session.h"
#include "core/err.h"
#include "crypto/cr.h"
#include "fixture.h"
#include "harness.h"

static const uint8_t key[CR_HASH_KEY_LEN] = {5};
static struct fx F;
static int answers, last_rc;

static void on_start(struct auth_session_start *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static void on_find(struct auth_session_find *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static void on_end(struct auth_session_end *q, int rc)
{
    (void)q;
    answers++;
    last_rc = rc;
}

static void on_written(struct store_op *op)
{
    (void)op;
}

static int wait_answer(int rc)
{
    if (rc == ERR_AGAIN)
        fx_wait(&F, &answers, 1);
    return rc == ERR_AGAIN ? last_rc : rc;
}

static int last_found;

/* (ASSERT returns from a void function only: the answer comes through last_found) */
static void find_into(const struct auth_svc *svc, const char *token, int64_t now,
                      struct auth_session *out)
{
    struct auth_session_find q;
    memset(&q, 0, sizeof(q));
    q.svc = svc;
    q.lp = &F.lp;
    q.token = str_c(token);
    q.now = now;
    q.done = on_find;
    answers = 0;
    ASSERT_EQ_INT(wait_answer(auth_session_find(&q)), ERR_OK);
    if (out)
        *out = q.s;
    last_found = q.found;
}

static bool find(const struct auth_svc *svc, const char *token, int64_t now,
                 struct auth_session *out)
{
    last_found = -1;
    find_into(svc, token, now, out);
    return last_found == 1;
}

TEST(a_session_is_found_by_its_cookie_until_it_ends)
{
    struct auth_session_start q;
    struct auth_session s;
    ASSERT_EQ_INT(fx_open(&F, "session-test"), 0);
    struct auth_svc svc = {.st = F.st, .key = key, .session_idle_s = 100, .session_ttl_s = 1000};
    memset(&q, 0, sizeof(q));
    q.svc = &svc;
    q.lp = &F.lp;
    q.now = 10000;
    q.done = on_start;
    snprintf(q.s.sub, sizeof(q.s.sub), "u-ann");
    snprintf(q.s.name, sizeof(q.s.name), "ann");
    q.s.auth_time = 10000;
    answers = 0;
    ASSERT_EQ_INT(wait_answer(auth_session_start(&q)), ERR_OK);
    ASSERT_EQ_INT(q.s.expires_at, 10100); /* idle first */
    char token[AUTH_SESSION_LEN + 1];
    memcpy(token, q.token, sizeof(token));
    ASSERT_TRUE(find(&svc, token, 10010, &s));
    ASSERT_EQ_STR(s.sub, "u-ann");
    ASSERT_EQ_STR(s.sid, q.s.sid);
    /* used past half its idle time: its end moves on */
    ASSERT_TRUE(find(&svc, token, 10060, NULL));
    ASSERT_TRUE(find(&svc, token, 10150, &s));
    ASSERT_EQ_INT(s.expires_at, 10250); /* (moved at 10060 to 10160, and now again) */
    /* unused too long, or another token: none */
    ASSERT_TRUE(!find(&svc, token, 10300, NULL)); /* (10250 passed) */
    token[5] = token[5] == 'A' ? 'B' : 'A';
    ASSERT_TRUE(!find(&svc, token, 10150, NULL));
    ASSERT_TRUE(!find(&svc, "short", 10150, NULL));
    token[5] = q.token[5];
    /* its user's sessions generation moves on (disabled, new password): it ends */
    struct store_op op; /* (a user's write that moves the generation, as auth_user does) */
    memset(&op, 0, sizeof(op));
    op.kind = STORE_OP_PUT_NEW;
    op.table = STORE_T_USERS;
    op.key_len = 3;
    memcpy(op.key, "ann", 3);
    op.value = "{}";
    op.value_len = 2;
    snprintf(op.sess_sub, sizeof(op.sess_sub), "u-ann");
    op.sess_gen = 1;
    op.now = 10150;
    op.on_done = on_written;
    ASSERT_EQ_INT(store_exec(F.st, &op), 0);
    ASSERT_TRUE(!find(&svc, token, 10150, NULL));
    /* a new one, then logout */
    q.s.gen = 1;
    answers = 0;
    ASSERT_EQ_INT(wait_answer(auth_session_start(&q)), ERR_OK);
    memcpy(token, q.token, sizeof(token));
    ASSERT_TRUE(find(&svc, token, 10010, NULL));
    struct auth_session_end e = {.done = on_end};
    answers = 0;
    ASSERT_EQ_INT(wait_answer(auth_session_end(&e, &svc, &F.lp, str_c(token), 10020)), ERR_OK);
    ASSERT_TRUE(!find(&svc, token, 10020, NULL));
    fx_close(&F);
}

TEST(a_session_an_earlier_version_wrote_in_json_is_still_found)
{
    struct auth_session s;
    ASSERT_EQ_INT(fx_open(&F, "session-json"), 0);
    struct auth_svc svc = {.st = F.st, .key = key, .session_idle_s = 100, .session_ttl_s = 1000};
    /* the record as the JSON writer left it: under the keyed digest of "sso\n" + token */
    static const char token[] = "q2Jd7yF0uXo1b8kz2mN4pR6sT8vW0yA2cE4gI6kM8oQ";
    static const char json[] =
        "{\"sub\":\"u-bob\",\"name\":\"bob\",\"sid\":\"sid-b\","
        "\"auth_time\":9990,\"gen\":0,\"fam\":[\"00112233445566778899aabbccddeeff\"]}";
    uint8_t msg[4 + sizeof(token) - 1];
    memcpy(msg, "sso\n", 4);
    memcpy(msg + 4, token, sizeof(token) - 1);
    struct store_op op;
    memset(&op, 0, sizeof(op));
    cr_keyed_hash(op.key, key, msg, sizeof(msg));
    op.key_len = 32;
    struct buf v;
    buf_init(&v, 4096);
    ASSERT_EQ_INT(store_exp_wrap(10100, json, sizeof(json) - 1, &v), 0);
    op.kind = STORE_OP_PUT_NEW;
    op.table = STORE_T_SSO;
    op.value = v.p;
    op.value_len = v.len;
    op.now = 10000;
    op.on_done = on_written;
    ASSERT_EQ_INT(store_exec(F.st, &op), 0);
    ASSERT_TRUE(find(&svc, token, 10010, &s));
    ASSERT_EQ_STR(s.sub, "u-bob");
    ASSERT_EQ_STR(s.sid, "sid-b");
    ASSERT_EQ_INT(s.auth_time, 9990);
    ASSERT_EQ_INT(s.nfam, 1);
    ASSERT_EQ_INT(s.fam[0][15], 0xff);
    /* used past half its idle time: rewritten (in the binary form), and found again */
    ASSERT_TRUE(find(&svc, token, 10060, NULL));
    ASSERT_TRUE(find(&svc, token, 10070, &s));
    ASSERT_EQ_STR(s.name, "bob");
    ASSERT_EQ_INT(s.nfam, 1);
    ASSERT_EQ_INT(s.expires_at, 10160);
    buf_fini(&v);
    fx_close(&F);
}
