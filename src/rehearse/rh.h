/* SPDX-License-Identifier: MIT */
/*
 * floodgate rehearse: an open-loop load generator for rehearsing a launch against a running
 * floodgate. It creates synthetic users and a client through the admin API (random names
 * and passwords, never real data; deleted afterwards), plays a scenario of phases with an
 * arrival rate per flow, measures latency from each request's intended arrival time (so a
 * backlog in the generator counts, not hides), and writes a JSON result and a
 * self-contained HTML report. See docs/rehearsal.md.
 */
#ifndef REHEARSE_RH_H
#define REHEARSE_RH_H

#include <stdbool.h>
#include <stddef.h>

enum rh_flow {
    RH_LOGIN,
    RH_REGISTER,
    RH_REFRESH,
    RH_INTROSPECT,
    RH_VERIFY,
    RH_TOKEN,
    RH_OIDC, /* a browser's sign-in: the login page, its form, the code exchanged */
    RH_NFLOWS
};

#define RH_MAX_PHASES         64
#define RH_SCENARIO_MAX_BYTES (1 << 20)

/* A rate in requests per second; `x` rates are multiples of the login capacity. */
struct rh_rate {
    double from, to; /* linear over the phase; equal for a constant rate */
    bool from_x, to_x;
};

struct rh_phase {
    char name[32];
    double duration_s;
    struct rh_rate rate[RH_NFLOWS];
};

struct rh_scenario {
    char name[64];
    unsigned users;       /* synthetic users created for login, refresh, verify */
    unsigned connections; /* most connections open at once */
    unsigned timeout_ms;  /* a request not answered by then counts as an error */
    double calibrate_s;   /* closed-loop login measurement when a rate is in x */
    int calibrate_with;   /* phase whose other flows run during the measurement; -1: none */
    unsigned nphases;
    struct rh_phase phase[RH_MAX_PHASES];
};

extern const char *const rh_flow_name[RH_NFLOWS];
/* floodgate's adaptive modes, as /admin/policy names them (mode 0..3). */
#define RH_NMODES 4
extern const char *const rh_mode_name[RH_NMODES];

/* Parses a scenario (JSON text). ERR_INVAL with a reason in err. */
int rh_scenario_parse(const char *text, size_t len, struct rh_scenario *sc, char *err,
                      size_t errcap);
/* True if any rate is given in multiples of the login capacity. */
bool rh_scenario_uses_x(const struct rh_scenario *sc);
/* The rate of `flow` at `t` seconds into phase p, with x rates resolved by `capacity`. */
double rh_rate_at(const struct rh_phase *p, int flow, double t, double capacity);

/* Arrivals due in the first t seconds of phase p (the integral of its rate), and the time
 * the k-th is due. Open loop: arrival k is sent at that time whatever the server does. */
double rh_arrivals_by(const struct rh_phase *p, int flow, double t, double capacity);
double rh_arrival_time(const struct rh_phase *p, int flow, double k, double capacity);

/* `floodgate rehearse ...`: argv[0] is "rehearse". Returns the exit status. */
int rh_main(int argc, char **argv);

#endif
