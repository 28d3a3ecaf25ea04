/* SPDX-License-Identifier: MIT */
/*
 * The adaptive policy's once-a-second tick. The caller (the main thread's timer) reads the
 * counters at one instant; pol_control_tick turns them into a sample (rates over the last
 * second), runs the mode controller (pol_mode.h), holds credential stuffing for
 * down_after_s after its last sign, recomputes the scaling recommendation, logs what
 * changed and says so in a pol_tick. Publishing the results (the loop threads' atomics,
 * events) is the caller's. pol_control_routes_json renders the per-route rate and p99 of
 * the last second for GET /admin/policy. One owner thread; no clock, no locks.
 */
#ifndef POLICY_POL_CONTROL_H
#define POLICY_POL_CONTROL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "metrics/met.h"
#include "policy/pol_mode.h"

struct store;

/* Read at one instant. Login counts are cumulative since start. */
struct pol_counters {
    uint64_t ok, failed, refused, shed;
    double hash_wait_ms;   /* expected wait of a new hash now */
    double login_capacity; /* hashes per second the workers can do */
    double failed_ips;     /* distinct addresses of failed logins since the last tick */
};

/* What one tick decided. */
struct pol_tick {
    struct pol_sample s;
    enum pol_mode before, mode; /* mode != before: it changed */
    int stuffing;               /* 0/1, in force now */
    bool stuffing_changed;
    unsigned recommended, rec_before; /* instances; != : changed */
    bool by_override;                 /* the mode is pinned by an operator */
};

#define POL_EVENTS_MAX 64

struct pol_control {
    struct pol_mode_cfg cfg;
    struct pol_controller ctl;
    int64_t event_lead_s;
    struct pol_event events[POL_EVENTS_MAX]; /* announced events (pol_control_load_events) */
    unsigned nevents;
    struct { /* the last change of mode, and why (for the console) */
        int64_t at;
        enum pol_mode from, to;
        char why[128];
    } change;
    /* private */
    uint64_t last_logins, last_ok, last_failed;
    int64_t stuffing_until;
    int stuffing;
    unsigned recommended;
    uint64_t last_req[MET_ROUTES_MAX];
    uint64_t last_lat[MET_ROUTES_MAX][MET_LAT_BUCKETS];
};

void pol_control_init(struct pol_control *pc, const struct pol_mode_cfg *cfg, int64_t lead_s,
                      int64_t now);
/* One tick at `now`: override is the operator's pin (POL_MODES: automatic), serving the
 * instances now on the store (1 alone). */
void pol_control_tick(struct pol_control *pc, const struct pol_counters *in, enum pol_mode override,
                      unsigned serving, int64_t now, struct pol_tick *out);
/* Reads the announced events (the store's events table) again. ERR_OK or the store's error
 * (the previous list is kept then). May block: main thread only. */
int pol_control_load_events(struct pol_control *pc, struct store *st);
/* The sample as JSON with each route's rate and p99 over the last second (a bucket bound;
 * null past the last) from the summed metrics; names[r] is route r's pattern (1..n).
 * ERR_OK, or ERR_LIMIT when it did not fit in out's cap (out is then not valid JSON). */
int pol_control_json(struct pol_control *pc, const struct pol_sample *s,
                     const struct met_shard *sum, const char *const *names, unsigned n,
                     struct buf *out);

/* What the controller publishes for the loop threads (atomics) and the admin API (the last
 * sample, under its lock). Written by the main thread's tick and by an operator's pin. */
struct pol_state {
    _Atomic int mode;              /* enum pol_mode in force */
    _Atomic int mode_override;     /* an operator's pin; POL_MODES: automatic */
    _Atomic int mode_floor;        /* the lowest mode an announced event allows now */
    _Atomic int stuffing;          /* credential stuffing suspected: stricter per-IP logins */
    _Atomic unsigned recommended;  /* instances in all the controller recommends */
    _Atomic uint64_t mode_changes; /* by the controller or an operator */
    /* the last sample's figures, in thousandths (hash wait in ms; logins per second) */
    _Atomic uint64_t hash_wait_milli, demand_milli, capacity_milli;
    int registration_pause;    /* the lowest mode that pauses registration; POL_MODES: never */
    pthread_mutex_t sample_mu; /* guards sample */
    char sample[2048];         /* the last sample as JSON (pol_control_json) */
};

/* The tick's decisions as events: scale.recommendation when the recommendation moved,
 * policy.mode_changed when the mode did (its log lines are the controller's own). */
void pol_tick_announce(const struct pol_tick *t, unsigned serving);

void pol_state_init(struct pol_state *st, int registration_pause);
/* The tick's decisions (and its rendered sample, if it fit) made visible. */
void pol_state_publish(struct pol_state *st, const struct pol_control *pc, const struct pol_tick *t,
                       const struct buf *sample);
/* An operator pins `mode` (POL_MODES: automatic again); a pinned mode applies at once. true
 * if the mode in force changed. */
bool pol_state_pin(struct pol_state *st, int mode);
/* GET /admin/policy's answer: the mode, the pin, the floor, the recommendation, the changes,
 * stuffing and the last sample. ERR_OK or ERR_LIMIT. */
int pol_state_json(struct pol_state *st, char *out, size_t cap);
/* The policy's metrics (floodgate_policy_*, the recommendation) in the Prometheus text
 * format. ERR_LIMIT past b's cap. */
int pol_state_metrics_text(struct pol_state *st, struct buf *b);

#endif
