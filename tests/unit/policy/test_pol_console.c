/* SPDX-License-Identifier: MIT */
/* The console's second: per-second differences of cumulative counters (a counter that went
 * back counts 0), the mode and why it changed, valid JSON whatever the instance name holds,
 * ERR_LIMIT past the buffer's cap; and the published document: this instance's frame alone
 * on the embedded store, nothing built while nobody watches. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "fixture.h"
#include "harness.h"
#include "policy/pol_console.h"

static struct pol_control pc;

/* The frame parsed ({} if it was not rendered or is not JSON: the checks then fail). */
static json_t *frame(struct pol_console *c, struct pol_console_in *in)
{
    struct buf b;
    json_error_t je;
    json_t *j = NULL;
    buf_init(&b, 64 * 1024);
    if (pol_console_frame(c, in, &b) == ERR_OK)
        j = json_loadb(b.p, b.len, 0, &je);
    if (!j)
        harness_fail(__FILE__, __LINE__, "the frame is not JSON: %.*s", (int)b.len, b.p);
    buf_fini(&b);
    return j ? j : json_object();
}

static json_int_t num(json_t *j, const char *a, const char *b)
{
    return json_integer_value(json_object_get(json_object_get(j, a), b));
}

TEST(a_frame_says_what_the_last_second_did)
{
    struct pol_mode_cfg mc;
    struct pol_console c;
    struct pol_tick t;
    struct pol_counters pin = {.login_capacity = 100};
    pol_mode_cfg_default(&mc);
    pol_control_init(&pc, &mc, 300, 0);
    memset(&c, 0, sizeof(c));
    pol_control_tick(&pc, &pin, POL_SURGE, 1, 5, &t); /* an operator pins surge */
    struct pol_console_in in = {.instance = "host\"<1>:8080",
                                .now_ms = 5000,
                                .pc = &pc,
                                .t = &t,
                                .mode = t.mode,
                                .override = POL_SURGE,
                                .floor = POL_NORMAL,
                                .sample = "{\"hash_wait_ms\":3}",
                                .ok = 10,
                                .failed = 4,
                                .locked = 1,
                                .shed = 2,
                                .workers = 2,
                                .queued = 7,
                                .serving = 3,
                                .hash_deadline_ms = 2000};
    in.rate_limited[POL_RL_LOGIN] = 5;
    json_t *j = frame(&c, &in);
    ASSERT_EQ_STR(json_string_value(json_object_get(j, "instance")), "host\"<1>:8080");
    ASSERT_EQ_STR(json_string_value(json_object_get(j, "mode")), "surge");
    ASSERT_EQ_STR(json_string_value(json_object_get(j, "override")), "surge");
    ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(j, "change"), "why")),
                  "pinned by an operator");
    ASSERT_EQ_INT(num(j, "logins", "ok"), 10); /* (from zero: the first frame after start) */
    ASSERT_EQ_INT(num(j, "rate_limited", "login_ip"), 5);
    ASSERT_EQ_INT(json_integer_value(json_object_get(j, "queued")), 7);
    ASSERT_EQ_INT(num(j, "sample", "hash_wait_ms"), 3);
    json_decref(j);
    /* the next second: differences; a counter that went back counts 0 */
    in.ok = 25, in.failed = 4, in.locked = 0, in.rate_limited[POL_RL_LOGIN] = 6;
    in.sample = NULL;
    j = frame(&c, &in);
    ASSERT_EQ_INT(num(j, "logins", "ok"), 15);
    ASSERT_EQ_INT(num(j, "logins", "failed"), 0);
    ASSERT_EQ_INT(num(j, "logins", "locked"), 0);
    ASSERT_EQ_INT(num(j, "rate_limited", "login_ip"), 1);
    ASSERT_TRUE(json_is_null(json_object_get(j, "sample")));
    json_decref(j);
    struct buf small;
    buf_init(&small, 64);
    ASSERT_EQ_INT(pol_console_frame(&c, &in, &small), ERR_LIMIT);
    buf_fini(&small);
}

TEST(the_document_is_published_only_while_someone_watches)
{
    struct fx f;
    struct pol_console_pub p;
    struct buf fr, out;
    uint64_t seq = 0;
    ASSERT_EQ_INT(fx_open(&f, "console-test"), 0);
    pol_console_pub_init(&p);
    buf_init(&fr, 1024);
    buf_init(&out, 1 << 20);
    buf_puts(&fr, "{\"instance\":\"a:1\",\"t\":7}");
    pol_console_publish(&p, f.st, "a:1", 7, &fr);
    ASSERT_TRUE(!pol_console_read(&p, &seq, &out)); /* nobody watched: nothing built */
    atomic_store(&p.watchers, 1);
    pol_console_publish(&p, f.st, "a:1", 8, &fr);
    ASSERT_TRUE(pol_console_read(&p, &seq, &out));
    buf_append(&out, "", 1);
    ASSERT_EQ_STR(out.p, "{\"self\":\"a:1\",\"t\":8,\"fleet\":[{\"instance\":\"a:1\",\"t\":7}]}");
    ASSERT_TRUE(!pol_console_read(&p, &seq, &out)); /* once per publication */
    buf_fini(&fr);
    buf_fini(&out);
    pol_console_pub_fini(&p);
    fx_close(&f);
}
