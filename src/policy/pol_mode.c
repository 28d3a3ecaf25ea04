/* SPDX-License-Identifier: MIT */
/* Mode controller; see pol_mode.h. */
#include "policy/pol_mode.h"

#include <math.h>
#include <string.h>

static const char *const names[POL_MODES] = {"normal", "elevated", "surge", "shed"};

void pol_mode_cfg_default(struct pol_mode_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->wait_ms[POL_ELEVATED] = 100;
    c->wait_ms[POL_SURGE] = 500;
    c->wait_ms[POL_SHED] = 1500;
    c->load_ratio[POL_ELEVATED] = 0.5;
    c->load_ratio[POL_SURGE] = 0.9;
    c->load_ratio[POL_SHED] = 2.0;
    c->stuffing_ratio = 0.8;
    c->stuffing_ips = 50;
    c->down_after_s = 10;
}

void pol_controller_init(struct pol_controller *c, int64_t now)
{
    c->mode = POL_NORMAL;
    c->override = POL_MODES;
    c->since = now;
    c->calm_since = 0;
    c->floor = POL_NORMAL;
}

enum pol_mode pol_events_floor(const struct pol_event *ev, unsigned n, int64_t now, int64_t lead_s)
{
    enum pol_mode f = POL_NORMAL;

    for (unsigned i = 0; i < n; i++) {
        if (now < ev[i].at - lead_s || now > ev[i].at + ev[i].duration_s)
            continue;
        enum pol_mode m = ev[i].expect >= 10  ? POL_SURGE
                          : ev[i].expect >= 3 ? POL_ELEVATED
                                              : POL_NORMAL;
        if (m > f)
            f = m;
    }
    return f;
}

bool pol_stuffing(const struct pol_mode_cfg *cfg, const struct pol_sample *s)
{
    double ratio = s->login_capacity > 0 ? s->login_demand / s->login_capacity : 0;
    return s->failed_ratio >= cfg->stuffing_ratio &&
           (ratio >= cfg->load_ratio[POL_ELEVATED] / 2 || s->failed_ips >= cfg->stuffing_ips);
}

enum pol_mode pol_mode_target(const struct pol_mode_cfg *cfg, const struct pol_sample *s)
{
    double ratio = s->login_capacity > 0 ? s->login_demand / s->login_capacity : 0;
    enum pol_mode t = POL_NORMAL;

    for (int m = POL_ELEVATED; m < POL_MODES; m++)
        if (s->hash_wait_ms >= cfg->wait_ms[m] || ratio >= cfg->load_ratio[m])
            t = (enum pol_mode)m;
    /* Credential stuffing: tighten at least a level. */
    if (t == POL_NORMAL && pol_stuffing(cfg, s))
        t = POL_ELEVATED;
    return t;
}

enum pol_mode pol_controller_step(struct pol_controller *c, const struct pol_mode_cfg *cfg,
                                  const struct pol_sample *s, int64_t now)
{
    if (c->override != POL_MODES) {
        if (c->mode != c->override) {
            c->mode = c->override;
            c->since = now;
        }
        c->calm_since = 0;
        return c->mode;
    }
    enum pol_mode t = pol_mode_target(cfg, s);
    if (t < c->floor)
        t = c->floor;  /* an announced event holds the mode up */
    if (t > c->mode) { /* rise at once */
        c->mode = t;
        c->since = now;
        c->calm_since = 0;
    } else if (t < c->mode) { /* fall one level after a calm period */
        if (!c->calm_since)
            c->calm_since = now;
        if (now - c->calm_since >= cfg->down_after_s) {
            c->mode = (enum pol_mode)(c->mode - 1);
            c->since = now;
            c->calm_since = c->mode > t ? now : 0;
        }
    } else {
        c->calm_since = 0;
    }
    return c->mode;
}

const char *pol_mode_name(enum pol_mode m)
{
    return m < POL_MODES ? names[m] : "auto";
}

int pol_mode_parse(const char *s)
{
    for (int i = 0; i < POL_MODES; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return strcmp(s, "auto") == 0 ? POL_MODES : -1;
}

unsigned pol_scale_recommendation(const struct pol_sample *s, unsigned instances)
{
    if (instances == 0)
        instances = 1;
    if (s->login_capacity <= 0)
        return instances;
    /* Demand and capacity are this instance's; the balancer gives each of the `instances`
     * about as much, so the fleet's demand is `instances` times it. 20 % headroom. */
    double need = ceil(s->login_demand * instances / (s->login_capacity * 0.8));
    return need < 1 ? 1 : (unsigned)need;
}
