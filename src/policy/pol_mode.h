/* SPDX-License-Identifier: MIT */
/*
 * The adaptive policy's controller: from a sample of load taken every second it picks a
 * mode, normal < elevated < surge < shed. It rises at once when a threshold is crossed
 * and falls one level at a time, only after the load has stayed below the current level
 * for `down_after_s` (hysteresis: a spike does not make the mode flap). An operator
 * override pins a mode. Pure: the caller passes samples and time; no clock, no locks.
 * One owner thread (the main thread's timer).
 */
#ifndef POLICY_POL_MODE_H
#define POLICY_POL_MODE_H

#include <stdbool.h>
#include <stdint.h>

enum pol_mode { POL_NORMAL = 0, POL_ELEVATED, POL_SURGE, POL_SHED, POL_MODES };

struct pol_sample {
    double hash_wait_ms;   /* expected wait of a new password hash */
    double login_demand;   /* logins per second asked for (served + shed) */
    double login_capacity; /* logins per second the workers can hash */
    double failed_ratio;   /* failed / all password logins in the last second */
    double failed_ips;     /* distinct client addresses of those failures (estimate) */
};

struct pol_mode_cfg {
    /* a level is reached when the expected hash wait or the demand/capacity ratio passes
     * its threshold */
    double wait_ms[POL_MODES]; /* index 1..3 used */
    double load_ratio[POL_MODES];
    double stuffing_ratio; /* failed_ratio at or above this (with load): at least elevated */
    double stuffing_ips;   /* ... or with failures from this many addresses in a second */
    int64_t down_after_s;
};

struct pol_controller {
    enum pol_mode mode;
    enum pol_mode override; /* POL_MODES: automatic */
    enum pol_mode floor;    /* lowest mode allowed now (an announced event); POL_NORMAL: none */
    int64_t since;          /* when the mode was entered */
    int64_t calm_since;     /* since when the load has been below the current level; 0: not */
};

void pol_mode_cfg_default(struct pol_mode_cfg *c);
void pol_controller_init(struct pol_controller *c, int64_t now);
/* Feeds one sample; returns the mode now in force (changed or not). */
enum pol_mode pol_controller_step(struct pol_controller *c, const struct pol_mode_cfg *cfg,
                                  const struct pol_sample *s, int64_t now);
/* An announced event: from `at - lead_s` until `at + duration_s`, expecting `expect` times
 * the usual traffic. */
struct pol_event {
    int64_t at;
    int64_t duration_s;
    double expect;
};

/* The floor that the events in force at `now` call for: surge from 10x, elevated from 3x,
 * beginning `lead_s` before each event (scale out and warm up before the crowd). */
enum pol_mode pol_events_floor(const struct pol_event *ev, unsigned n, int64_t now, int64_t lead_s);

/* Credential stuffing: mostly failing logins, under load or from many addresses. */
bool pol_stuffing(const struct pol_mode_cfg *cfg, const struct pol_sample *s);

/* The level the sample alone calls for. */
enum pol_mode pol_mode_target(const struct pol_mode_cfg *cfg, const struct pol_sample *s);

const char *pol_mode_name(enum pol_mode m);
/* "normal" .. "shed" -> mode; "auto" -> POL_MODES; -1 if unknown. */
int pol_mode_parse(const char *s);

/* Instances needed in all for the demand at the measured capacity (at least 1), given this
 * instance's sample and the `instances` now serving (the balancer spreads the demand). */
unsigned pol_scale_recommendation(const struct pol_sample *s, unsigned instances);

#endif
