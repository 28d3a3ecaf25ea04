/* SPDX-License-Identifier: MIT */
/* The adaptive policy's tick: see pol_control.h. */
#include "policy/pol_control.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/log.h"
#include "event/ev.h"
#include "metrics/met_text.h"
#include "store/store.h"

void pol_control_init(struct pol_control *pc, const struct pol_mode_cfg *cfg, int64_t lead_s,
                      int64_t now)
{
    memset(pc, 0, sizeof(*pc));
    pc->cfg = *cfg;
    pc->event_lead_s = lead_s;
    pc->recommended = 1;
    pol_controller_init(&pc->ctl, now);
}

static void sample(struct pol_control *pc, const struct pol_counters *in, struct pol_sample *s)
{
    uint64_t total = in->ok + in->failed + in->refused + in->shed;
    uint64_t d_ok = in->ok - pc->last_ok, d_failed = in->failed - pc->last_failed;

    s->hash_wait_ms = in->hash_wait_ms;
    s->login_demand = (double)(total - pc->last_logins);
    s->login_capacity = in->login_capacity;
    s->failed_ratio = d_ok + d_failed ? (double)d_failed / (double)(d_ok + d_failed) : 0;
    s->failed_ips = in->failed_ips;
    pc->last_logins = total;
    pc->last_ok = in->ok;
    pc->last_failed = in->failed;
}

void pol_control_tick(struct pol_control *pc, const struct pol_counters *in, enum pol_mode override,
                      unsigned serving, int64_t now, struct pol_tick *out)
{
    char a[32], b[32];

    memset(out, 0, sizeof(*out));
    sample(pc, in, &out->s);
    /* An announced event holds the mode up from event_lead_s before it. */
    pc->ctl.floor = pol_events_floor(pc->events, pc->nevents, now, pc->event_lead_s);
    pc->ctl.override = override;
    out->by_override = override != POL_MODES;
    out->before = pc->ctl.mode;
    out->mode = pol_controller_step(&pc->ctl, &pc->cfg, &out->s, now);
    /* held for down_after_s after the last sign, like the mode: a pause of a second does
     * not lift the tighter limit; an operator's pin turns it off */
    if (pol_stuffing(&pc->cfg, &out->s))
        pc->stuffing_until = now + pc->cfg.down_after_s;
    out->stuffing = now < pc->stuffing_until && override == POL_MODES;
    out->stuffing_changed = out->stuffing != pc->stuffing;
    pc->stuffing = out->stuffing;
    if (out->stuffing_changed) {
        snprintf(a, sizeof(a), "%.0f", out->s.failed_ips);
        log_kv(LOG_WARN,
               out->stuffing ? "credential stuffing suspected: per-IP logins tightened"
                             : "credential stuffing over",
               "failed_ips", a, LOG_END);
    }
    out->rec_before = pc->recommended;
    out->recommended = pol_scale_recommendation(&out->s, serving);
    pc->recommended = out->recommended;
    if (out->recommended != out->rec_before) {
        snprintf(a, sizeof(a), "%u", out->recommended);
        log_kv(LOG_INFO, "scaling recommendation", "instances", a, LOG_END);
    }
    if (out->mode != out->before) {
        pc->change.at = now;
        pc->change.from = out->before;
        pc->change.to = out->mode;
        if (out->by_override)
            snprintf(pc->change.why, sizeof(pc->change.why), "pinned by an operator");
        else if (out->mode > out->before && pc->ctl.floor >= out->mode)
            snprintf(pc->change.why, sizeof(pc->change.why), "an announced event is near");
        else if (out->mode > out->before)
            snprintf(pc->change.why, sizeof(pc->change.why),
                     "hash wait %.0f ms; %.0f logins/s asked of a capacity of %.0f/s",
                     out->s.hash_wait_ms, out->s.login_demand, out->s.login_capacity);
        else
            snprintf(pc->change.why, sizeof(pc->change.why),
                     "calm: the load stayed below the level for %llds",
                     (long long)pc->cfg.down_after_s);
        snprintf(a, sizeof(a), "%.0f", out->s.hash_wait_ms);
        snprintf(b, sizeof(b), "%.1f/%.1f", out->s.login_demand, out->s.login_capacity);
        log_kv(LOG_WARN, "policy mode changed", "from", pol_mode_name(out->before), "to",
               pol_mode_name(out->mode), "hash_wait_ms", a, "login_demand/capacity", b, "override",
               out->by_override ? pol_mode_name(override) : "auto", LOG_END);
    }
}

static int on_event_record(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct pol_control *pc = ctx;
    json_error_t je;
    json_t *j = json_loadb(val, vlen, 0, &je);

    (void)key;
    (void)klen;
    if (j && pc->nevents < POL_EVENTS_MAX) {
        struct pol_event *e = &pc->events[pc->nevents];
        e->at = json_integer_value(json_object_get(j, "at"));
        e->duration_s = json_integer_value(json_object_get(j, "duration"));
        e->expect = json_number_value(json_object_get(j, "expect"));
        if (e->at > 0)
            pc->nevents++;
    }
    json_decref(j);
    return ERR_OK;
}

int pol_control_load_events(struct pol_control *pc, struct store *st)
{
    struct pol_event keep[POL_EVENTS_MAX];
    unsigned nkeep = pc->nevents;

    memcpy(keep, pc->events, sizeof(keep));
    pc->nevents = 0;
    int rc = store_each(st, STORE_T_EVENTS, on_event_record, pc);
    if (rc) {
        memcpy(pc->events, keep, sizeof(keep));
        pc->nevents = nkeep;
    }
    return rc;
}

int pol_control_json(struct pol_control *pc, const struct pol_sample *s,
                     const struct met_shard *sum, const char *const *names, unsigned n,
                     struct buf *out)
{
    int first = 1;
    int rc = buf_printf(out,
                        "{\"hash_wait_ms\":%.0f,\"login_demand\":%.1f,\"login_capacity\":%.1f,"
                        "\"failed_ratio\":%.2f,\"failed_ips\":%.0f,\"routes\":{",
                        s->hash_wait_ms, s->login_demand, s->login_capacity, s->failed_ratio,
                        s->failed_ips);
    for (unsigned r = 1; r <= n && r < MET_ROUTES_MAX; r++) {
        uint64_t req = 0, d[MET_LAT_BUCKETS], dn = 0;
        for (unsigned k = 0; k < MET_S_COUNT; k++)
            req += atomic_load_explicit(&sum->req[r][k], memory_order_relaxed);
        for (unsigned k = 0; k < MET_LAT_BUCKETS; k++) {
            uint64_t v = met_lat_any(sum, r, k);
            d[k] = v - pc->last_lat[r][k];
            dn += d[k];
            pc->last_lat[r][k] = v;
        }
        uint64_t rate = req - pc->last_req[r];
        pc->last_req[r] = req;
        if (!rate)
            continue;
        uint64_t want = (dn * 99 + 99) / 100, seen = 0;
        unsigned k = 0;
        while (k < MET_LAT_BUCKETS - 1 && (seen += d[k]) < want)
            k++;
        char p99[32] = "null";
        if (k < MET_LAT_BUCKETS - 1)
            snprintf(p99, sizeof(p99), "%g", met_lat_bounds[k] * 1000);
        rc |= buf_printf(out, "%s\"%s\":{\"rate\":%llu,\"p99_ms\":%s}", first ? "" : ",", names[r],
                         (unsigned long long)rate, p99);
        first = 0;
    }
    rc |= buf_puts(out, "}}");
    return rc ? ERR_LIMIT : ERR_OK;
}

void pol_state_init(struct pol_state *st, int registration_pause)
{
    atomic_store(&st->mode, POL_NORMAL);
    atomic_store(&st->mode_override, POL_MODES);
    atomic_store(&st->mode_floor, POL_NORMAL);
    atomic_store(&st->stuffing, 0);
    atomic_store(&st->recommended, 1);
    atomic_store(&st->mode_changes, 0);
    st->registration_pause = registration_pause;
    pthread_mutex_init(&st->sample_mu, NULL);
    snprintf(st->sample, sizeof(st->sample), "null");
}

void pol_state_publish(struct pol_state *st, const struct pol_control *pc, const struct pol_tick *t,
                       const struct buf *sample)
{
    if (sample && sample->len < sizeof(st->sample)) {
        pthread_mutex_lock(&st->sample_mu);
        memcpy(st->sample, sample->p, sample->len);
        st->sample[sample->len] = 0;
        pthread_mutex_unlock(&st->sample_mu);
    }
    atomic_store(&st->mode_floor, (int)pc->ctl.floor);
    atomic_store(&st->stuffing, t->stuffing);
    atomic_store(&st->hash_wait_milli,
                 (uint64_t)(t->s.hash_wait_ms > 0 ? t->s.hash_wait_ms * 1e3 : 0));
    atomic_store(&st->demand_milli,
                 (uint64_t)(t->s.login_demand > 0 ? t->s.login_demand * 1e3 : 0));
    atomic_store(&st->capacity_milli,
                 (uint64_t)(t->s.login_capacity > 0 ? t->s.login_capacity * 1e3 : 0));
    atomic_store(&st->recommended, t->recommended);
    if (t->mode != t->before) {
        atomic_store(&st->mode, (int)t->mode);
        atomic_fetch_add(&st->mode_changes, 1);
    }
}

bool pol_state_pin(struct pol_state *st, int mode)
{
    atomic_store(&st->mode_override, mode);
    if (mode == POL_MODES || atomic_exchange(&st->mode, mode) == mode)
        return false;
    atomic_fetch_add(&st->mode_changes, 1);
    return true;
}

int pol_state_metrics_text(struct pol_state *st, struct buf *b)
{
    met_text_gauge(b, "floodgate_policy_mode",
                   "Adaptive policy mode: 0 normal, 1 elevated, 2 surge, 3 shed.",
                   atomic_load(&st->mode));
    int mode = atomic_load(&st->mode);
    met_text_family(b, "floodgate_policy_mode_state", "gauge",
                    "Adaptive policy mode as a state set: 1 for the current mode, 0 for the "
                    "others.");
    for (int m = 0; m < POL_MODES; m++)
        buf_printf(b, "floodgate_policy_mode_state{mode=\"%s\"} %d\n", pol_mode_name(m), m == mode);
    met_text_gauge(b, "floodgate_hash_wait_seconds",
                   "Expected wait of a new password hash (queue x measured service time / "
                   "workers), at the last policy tick.",
                   (double)atomic_load(&st->hash_wait_milli) / 1e6);
    met_text_gauge(b, "floodgate_login_demand_per_second",
                   "Password logins asked for in the last second (served and shed).",
                   (double)atomic_load(&st->demand_milli) / 1e3);
    met_text_gauge(b, "floodgate_login_capacity_per_second",
                   "Password logins per second the workers can hash, as measured.",
                   (double)atomic_load(&st->capacity_milli) / 1e3);
    met_text_counter(b, "floodgate_policy_mode_changes_total",
                     "Mode changes (controller or admin).", atomic_load(&st->mode_changes));
    return met_text_gauge(
        b, "floodgate_scale_recommendation_instances",
        "Instances in all the adaptive policy recommends for the current login demand.",
        atomic_load(&st->recommended));
}

int pol_state_json(struct pol_state *st, char *out, size_t cap)
{
    pthread_mutex_lock(&st->sample_mu);
    int n =
        snprintf(out, cap,
                 "{\"mode\":\"%s\",\"override\":\"%s\",\"event_floor\":\"%s\","
                 "\"recommended_instances\":%u,\"mode_changes\":%llu,"
                 "\"credential_stuffing\":%s,\"sample\":%s}",
                 pol_mode_name((enum pol_mode)atomic_load(&st->mode)),
                 pol_mode_name((enum pol_mode)atomic_load(&st->mode_override)),
                 pol_mode_name((enum pol_mode)atomic_load(&st->mode_floor)),
                 atomic_load(&st->recommended), (unsigned long long)atomic_load(&st->mode_changes),
                 atomic_load(&st->stuffing) ? "true" : "false", st->sample);
    pthread_mutex_unlock(&st->sample_mu);
    return n > 0 && (size_t)n < cap ? ERR_OK : ERR_LIMIT;
}

/* The controller's decisions as events (its log lines are its own). */
void pol_tick_announce(const struct pol_tick *t, unsigned serving)
{
    struct ev e;
    if (t->recommended != t->rec_before && ev_wanted(EV_SCALE_RECOMMENDATION)) {
        ev_begin(&e, EV_SCALE_RECOMMENDATION);
        ev_int(&e, "instances", t->recommended);
        ev_int(&e, "previous", t->rec_before);
        ev_int(&e, "serving", serving);
        ev_num(&e, "login_demand", t->s.login_demand);
        ev_num(&e, "login_capacity_per_instance", t->s.login_capacity);
        ev_str(&e, "mode", pol_mode_name(t->mode));
        ev_publish(&e);
    }
    if (t->mode != t->before && ev_wanted(EV_POLICY_MODE_CHANGED)) {
        ev_begin(&e, EV_POLICY_MODE_CHANGED);
        ev_str(&e, "from", pol_mode_name(t->before));
        ev_str(&e, "to", pol_mode_name(t->mode));
        ev_num(&e, "hash_wait_ms", t->s.hash_wait_ms);
        ev_num(&e, "login_demand", t->s.login_demand);
        ev_num(&e, "login_capacity", t->s.login_capacity);
        ev_num(&e, "failed_ratio", t->s.failed_ratio);
        ev_str(&e, "by", t->by_override ? "override" : "controller");
        ev_publish(&e);
    }
}
