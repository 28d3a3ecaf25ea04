/* SPDX-License-Identifier: MIT */
/* The policy tick: rates from cumulative counters, stuffing held and pinned off, the
 * recommendation, and the per-route p99 rendered from latency bucket deltas. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "harness.h"
#include "policy/pol_control.h"

static struct pol_control pc;

static void start(void)
{
    struct pol_mode_cfg mc;
    pol_mode_cfg_default(&mc);
    mc.down_after_s = 10;
    pol_control_init(&pc, &mc, 300, 0);
}

TEST(tick_turns_counters_into_rates)
{
    struct pol_counters in = {.ok = 100, .failed = 0, .login_capacity = 1000};
    struct pol_tick t;
    start();
    pol_control_tick(&pc, &in, POL_MODES, 1, 1, &t);
    ASSERT_TRUE(t.s.login_demand == 100);
    in.ok = 130, in.failed = 10, in.refused = 5, in.shed = 5; /* +50 in the next second */
    pol_control_tick(&pc, &in, POL_MODES, 1, 2, &t);
    ASSERT_TRUE(t.s.login_demand == 50);
    ASSERT_TRUE(t.s.failed_ratio == 0.25); /* 10 failed of 40 checked */
    ASSERT_EQ_INT(t.mode, POL_NORMAL);
    ASSERT_EQ_INT(t.before, POL_NORMAL);
    ASSERT_EQ_INT(t.recommended, 1);
}

TEST(stuffing_is_held_then_lifted_and_an_override_turns_it_off)
{
    struct pol_counters in = {.login_capacity = 1000};
    struct pol_tick t;
    start();
    pol_control_tick(&pc, &in, POL_MODES, 1, 1, &t);
    in.failed = 1000, in.failed_ips = 5000; /* a wave of failures from many addresses */
    pol_control_tick(&pc, &in, POL_MODES, 1, 2, &t);
    ASSERT_EQ_INT(t.stuffing, 1);
    ASSERT_TRUE(t.stuffing_changed);
    in.failed_ips = 0; /* calm: held for down_after_s */
    pol_control_tick(&pc, &in, POL_MODES, 1, 3, &t);
    ASSERT_EQ_INT(t.stuffing, 1);
    ASSERT_TRUE(!t.stuffing_changed);
    pol_control_tick(&pc, &in, POL_MODES, 1, 12, &t);
    ASSERT_EQ_INT(t.stuffing, 0);
    ASSERT_TRUE(t.stuffing_changed);
    in.failed += 1000, in.failed_ips = 5000;
    pol_control_tick(&pc, &in, POL_NORMAL, 1, 13, &t); /* pinned by an operator */
    ASSERT_EQ_INT(t.stuffing, 0);
    ASSERT_EQ_INT(t.mode, POL_NORMAL);
    ASSERT_TRUE(t.by_override);
}

TEST(mode_and_recommendation_follow_the_load)
{
    struct pol_counters in = {.login_capacity = 100};
    struct pol_tick t;
    start();
    pol_control_tick(&pc, &in, POL_MODES, 1, 1, &t);
    in.ok = 1000, in.hash_wait_ms = 5000; /* 10x the capacity */
    pol_control_tick(&pc, &in, POL_MODES, 2, 2, &t);
    ASSERT_EQ_INT(t.mode, POL_SHED);
    ASSERT_EQ_INT(t.before, POL_NORMAL);
    ASSERT_TRUE(t.recommended > 2);
    ASSERT_EQ_INT(t.rec_before, 1);
}

TEST(an_announced_event_holds_the_floor)
{
    struct pol_counters in = {.login_capacity = 100};
    struct pol_tick t;
    start();
    pc.events[0] = (struct pol_event){.at = 1000, .duration_s = 600, .expect = 10};
    pc.nevents = 1;
    pol_control_tick(&pc, &in, POL_MODES, 1, 100, &t);
    ASSERT_EQ_INT(t.mode, POL_NORMAL);
    pol_control_tick(&pc, &in, POL_MODES, 1, 1000 - 299, &t); /* within the lead */
    ASSERT_EQ_INT(t.mode, POL_SURGE);
}

TEST(routes_json_has_the_rate_and_p99_of_the_last_second)
{
    struct met_shard *sum = calloc(1, sizeof(*sum));
    const char *names[3] = {NULL, "/a", "/b"};
    struct pol_sample s = {0};
    struct buf b;
    start();
    atomic_store(&sum->req[1][0], 100);
    atomic_store(&sum->lat[1][0][0], 90); /* 98 in the first bucket, 2 in the third, */
    atomic_store(&sum->lat[1][2][0], 8);  /* whatever their status class */
    atomic_store(&sum->lat[1][3][2], 2);
    buf_init(&b, 4096);
    ASSERT_EQ_INT(pol_control_json(&pc, &s, sum, names, 2, &b), 0);
    buf_append(&b, "", 1); /* (NUL-terminated for strstr) */
    char want[128];
    snprintf(want, sizeof(want), "\"/a\":{\"rate\":100,\"p99_ms\":%g}", met_lat_bounds[2] * 1000);
    ASSERT_TRUE(strstr(b.p, want) != NULL);
    ASSERT_TRUE(strstr(b.p, "/b") == NULL); /* no requests: not listed */
    /* the next second counts only what is new: 10 more, all in the first bucket */
    buf_reset(&b);
    atomic_store(&sum->req[1][0], 110);
    atomic_store(&sum->lat[1][0][0], 100);
    ASSERT_EQ_INT(pol_control_json(&pc, &s, sum, names, 2, &b), 0);
    buf_append(&b, "", 1);
    snprintf(want, sizeof(want), "\"/a\":{\"rate\":10,\"p99_ms\":%g}", met_lat_bounds[0] * 1000);
    ASSERT_TRUE(strstr(b.p, want) != NULL);
    /* too long for its cap: refused, not cut */
    struct buf small;
    buf_init(&small, 40);
    atomic_store(&sum->req[1][0], 120);
    ASSERT_TRUE(pol_control_json(&pc, &s, sum, names, 2, &small) != 0);
    buf_fini(&small);
    buf_fini(&b);
    free(sum);
}

TEST(state_publishes_ticks_pins_and_renders)
{
    struct pol_state st;
    struct pol_tick t;
    struct pol_counters in = {.login_capacity = 100};
    char out[4096];
    struct buf b;
    start();
    pol_state_init(&st, POL_SHED);
    ASSERT_EQ_INT(pol_state_json(&st, out, sizeof(out)), 0);
    ASSERT_TRUE(strstr(out, "\"mode\":\"normal\",\"override\":\"auto\"") != NULL);
    ASSERT_TRUE(strstr(out, "\"sample\":null") != NULL);
    in.ok = 1000, in.hash_wait_ms = 5000;
    pol_control_tick(&pc, &in, POL_MODES, 1, 1, &t);
    buf_init(&b, 64);
    buf_puts(&b, "{\"x\":1}");
    pol_state_publish(&st, &pc, &t, &b);
    buf_fini(&b);
    ASSERT_EQ_INT(atomic_load(&st.mode), POL_SHED);
    ASSERT_EQ_INT((int)atomic_load(&st.mode_changes), 1);
    ASSERT_EQ_INT(pol_state_json(&st, out, sizeof(out)), 0);
    ASSERT_TRUE(strstr(out, "\"sample\":{\"x\":1}") != NULL);
    /* an operator pins normal: at once, counted once; pinning it again changes nothing */
    ASSERT_TRUE(pol_state_pin(&st, POL_NORMAL));
    ASSERT_TRUE(!pol_state_pin(&st, POL_NORMAL));
    ASSERT_EQ_INT(atomic_load(&st.mode), POL_NORMAL);
    ASSERT_EQ_INT((int)atomic_load(&st.mode_changes), 2);
    ASSERT_TRUE(!pol_state_pin(&st, POL_MODES)); /* automatic again: the next tick decides */
    ASSERT_EQ_INT(atomic_load(&st.mode_override), POL_MODES);
    ASSERT_EQ_INT(pol_state_json(&st, out, 16), ERR_LIMIT); /* too small: refused, not cut */
}
