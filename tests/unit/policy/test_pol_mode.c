/* SPDX-License-Identifier: MIT */
/* Mode transitions with an injected clock: rise at once, fall one level after calm. */
#include "harness.h"
#include "policy/pol_mode.h"

static struct pol_sample load(double wait_ms, double demand, double cap, double failed)
{
    struct pol_sample s = {wait_ms, demand, cap, failed, 0};
    return s;
}

TEST(mode_rises_at_once_and_falls_with_hysteresis)
{
    struct pol_mode_cfg cfg;
    struct pol_controller c;
    pol_mode_cfg_default(&cfg);
    pol_controller_init(&c, 0);
    struct pol_sample calm = load(0, 10, 100, 0);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 1), POL_NORMAL);
    struct pol_sample spike = load(2000, 500, 100, 0);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &spike, 2), POL_SHED); /* straight up */
    /* calm again: shed holds for down_after_s, then one level at a time */
    for (int t = 3; t < 12; t++)
        ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, t), POL_SHED);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 13), POL_SURGE);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 14), POL_SURGE);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 23), POL_ELEVATED);
    /* a new spike during the descent rises at once and restarts the calm period */
    struct pol_sample mid = load(600, 50, 100, 0);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &mid, 24), POL_SURGE);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 25), POL_SURGE);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 34), POL_SURGE);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 35), POL_ELEVATED);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 45), POL_NORMAL);
    /* a flapping load (in and out every second) does not make the mode flap */
    struct pol_sample el = load(150, 10, 100, 0);
    int changes = 0;
    enum pol_mode prev = c.mode;
    for (int t = 50; t < 80; t++) {
        enum pol_mode m = pol_controller_step(&c, &cfg, t % 2 ? &el : &calm, t);
        changes += m != prev;
        prev = m;
    }
    ASSERT_EQ_INT(changes, 1); /* up once, and the calm seconds never add up to 10 */
}

TEST(mode_targets_and_override)
{
    struct pol_mode_cfg cfg;
    struct pol_controller c;
    pol_mode_cfg_default(&cfg);
    struct pol_sample s = load(0, 60, 100, 0);
    ASSERT_EQ_INT(pol_mode_target(&cfg, &s), POL_ELEVATED); /* 0.6 of capacity */
    s = load(0, 95, 100, 0);
    ASSERT_EQ_INT(pol_mode_target(&cfg, &s), POL_SURGE);
    s = load(0, 30, 100, 0.95); /* mostly failing logins at a quarter of capacity */
    ASSERT_EQ_INT(pol_mode_target(&cfg, &s), POL_ELEVATED);
    s = load(0, 5, 100, 0.95); /* a few failures are not an attack */
    ASSERT_EQ_INT(pol_mode_target(&cfg, &s), POL_NORMAL);
    ASSERT_TRUE(!pol_stuffing(&cfg, &s));
    s.failed_ips = 49; /* ... unless they come from many addresses */
    ASSERT_TRUE(!pol_stuffing(&cfg, &s));
    s.failed_ips = 50;
    ASSERT_TRUE(pol_stuffing(&cfg, &s));
    ASSERT_EQ_INT(pol_mode_target(&cfg, &s), POL_ELEVATED);
    s.failed_ratio = 0.5; /* many addresses, mostly succeeding: a crowd, not an attack */
    ASSERT_TRUE(!pol_stuffing(&cfg, &s));
    pol_controller_init(&c, 0);
    c.override = POL_SURGE;
    s = load(0, 0, 100, 0);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &s, 1), POL_SURGE);
    c.override = POL_MODES;
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &s, 2), POL_SURGE); /* then calm descent */
    ASSERT_EQ_INT(pol_mode_parse("shed"), POL_SHED);
    ASSERT_EQ_INT(pol_mode_parse("auto"), POL_MODES);
    ASSERT_EQ_INT(pol_mode_parse("panic"), -1);
    s = load(0, 400, 100, 0);
    ASSERT_EQ_INT(pol_scale_recommendation(&s, 1), 5); /* 400 / (100 * 0.8) */
    s = load(0, 10, 100, 0);
    ASSERT_EQ_INT(pol_scale_recommendation(&s, 3), 1);
    /* three instances each at 90 % of its capacity need four, not two */
    s = load(0, 90, 100, 0);
    ASSERT_EQ_INT(pol_scale_recommendation(&s, 3), 4); /* 3 x 90 / 80 */
    s = load(0, 40, 100, 0);
    ASSERT_EQ_INT(pol_scale_recommendation(&s, 3), 2); /* 120 in all: two can carry it */
}

TEST(announced_events_hold_the_mode_up)
{
    struct pol_mode_cfg cfg;
    struct pol_controller c;
    struct pol_event ev[2] = {{1000, 600, 10}, {5000, 60, 3}};
    pol_mode_cfg_default(&cfg);
    ASSERT_EQ_INT(pol_events_floor(ev, 2, 500, 300), POL_NORMAL);
    ASSERT_EQ_INT(pol_events_floor(ev, 2, 700, 300), POL_SURGE); /* 5 minutes ahead */
    ASSERT_EQ_INT(pol_events_floor(ev, 2, 1600, 300), POL_SURGE);
    ASSERT_EQ_INT(pol_events_floor(ev, 2, 1601, 300), POL_NORMAL);
    ASSERT_EQ_INT(pol_events_floor(ev, 2, 5000, 300), POL_ELEVATED);
    pol_controller_init(&c, 0);
    struct pol_sample calm = {0, 0, 100, 0, 0};
    c.floor = POL_SURGE;
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 700), POL_SURGE);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 900), POL_SURGE); /* no descent */
    c.floor = POL_NORMAL;
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 1700), POL_SURGE);
    ASSERT_EQ_INT(pol_controller_step(&c, &cfg, &calm, 1710), POL_ELEVATED);
}
