/* SPDX-License-Identifier: MIT */
/*
 * Scenario files. Unknown keys and flows are errors (a typo must not silently rehearse
 * nothing), every number is bounded.
 *
 *   {"name": "launch", "users": 200, "connections": 512, "timeout_ms": 10000,
 *    "calibrate_s": 5,
 *    "phases": [{"name": "ramp", "duration_s": 30,
 *                "rates": {"login": ["0.5x", "10x"], "introspect": 500}}]}
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "json/json.h"
#include "rehearse/rh.h"

const char *const rh_mode_name[RH_NMODES] = {"normal", "elevated", "surge", "shed"};
const char *const rh_flow_name[RH_NFLOWS] = {"login",  "register", "refresh", "introspect",
                                             "verify", "token",    "oidc"};

#define RATE_MAX 1e6

static int fail(char *err, size_t cap, const char *what)
{
    snprintf(err, cap, "%s", what);
    return ERR_INVAL;
}

/* A number, or a string "N" / "Nx". */
static int parse_one(json_t *v, double *out, bool *x)
{
    *x = false;
    if (json_is_number(v)) {
        *out = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        *out = strtod(s, &end);
        if (end == s)
            return ERR_INVAL;
        if (*end == 'x') {
            *x = true;
            end++;
        }
        if (*end)
            return ERR_INVAL;
    } else {
        return ERR_INVAL;
    }
    return isfinite(*out) && *out >= 0 && *out <= RATE_MAX ? 0 : ERR_INVAL;
}

static int parse_rate(json_t *v, struct rh_rate *r)
{
    if (json_is_array(v)) {
        if (json_array_size(v) != 2)
            return ERR_INVAL;
        return parse_one(json_array_get(v, 0), &r->from, &r->from_x) ||
               parse_one(json_array_get(v, 1), &r->to, &r->to_x);
    }
    if (parse_one(v, &r->from, &r->from_x))
        return ERR_INVAL;
    r->to = r->from;
    r->to_x = r->from_x;
    return 0;
}

static int get_uint(json_t *o, const char *key, unsigned lo, unsigned hi, unsigned *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return ERR_INVAL;
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int get_double(json_t *o, const char *key, double lo, double hi, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return ERR_INVAL;
    *out = json_number_value(v);
    return 0;
}

static int get_name(json_t *o, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, "name");
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) >= cap)
        return ERR_INVAL;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '<' || *p == '&')
            return ERR_INVAL;
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int only_keys(json_t *o, const char *const *keys, const char **bad)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int ok = 0;
        for (const char *const *p = keys; *p && !ok; p++)
            ok = strcmp(*p, k) == 0;
        if (!ok) {
            *bad = k;
            return ERR_INVAL;
        }
    }
    return 0;
}

static int parse_phase(json_t *o, struct rh_phase *p, char *err, size_t cap)
{
    static const char *const keys[] = {"name", "duration_s", "rates", NULL};
    const char *bad;
    if (!json_is_object(o))
        return fail(err, cap, "a phase must be an object");
    if (only_keys(o, keys, &bad)) {
        snprintf(err, cap, "unknown phase key '%s'", bad);
        return ERR_INVAL;
    }
    if (get_name(o, p->name, sizeof(p->name)))
        return fail(err, cap, "phase name: text of 1..31 characters");
    p->duration_s = 0;
    if (get_double(o, "duration_s", 0.1, 86400, &p->duration_s) || p->duration_s == 0)
        return fail(err, cap, "phase duration_s: 0.1..86400 is required");
    json_t *rates = json_object_get(o, "rates");
    if (!json_is_object(rates))
        return fail(err, cap, "phase rates: an object of flow: rate is required");
    const char *k;
    json_t *v;
    json_object_foreach(rates, k, v)
    {
        int f = 0;
        while (f < RH_NFLOWS && strcmp(rh_flow_name[f], k) != 0)
            f++;
        if (f == RH_NFLOWS) {
            snprintf(err, cap,
                     "unknown flow '%s' (login, register, refresh, introspect, verify, token, "
                     "oidc)",
                     k);
            return ERR_INVAL;
        }
        if (parse_rate(v, &p->rate[f])) {
            snprintf(err, cap,
                     "rate of %s: a number, \"Nx\" (times the login capacity) or "
                     "[from, to], each 0..1e6",
                     k);
            return ERR_INVAL;
        }
    }
    return 0;
}

int rh_scenario_parse(const char *text, size_t len, struct rh_scenario *sc, char *err,
                      size_t errcap)
{
    static const char *const keys[] = {"name",        "users",          "connections", "timeout_ms",
                                       "calibrate_s", "calibrate_with", "phases",      NULL};
    json_t *o;
    const char *bad;
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->name, sizeof(sc->name), "rehearsal");
    sc->users = 100;
    sc->connections = 512;
    sc->timeout_ms = 10000;
    sc->calibrate_s = 5;
    sc->calibrate_with = -1;
    if (len > RH_SCENARIO_MAX_BYTES)
        return fail(err, errcap, "larger than 1 MiB");
    if (json_parse_object((struct str){text, len}, &o, err, errcap))
        return ERR_INVAL;
    int rc = ERR_INVAL;
    json_t *phases = json_object_get(o, "phases");
    if (only_keys(o, keys, &bad))
        snprintf(err, errcap, "unknown key '%s'", bad);
    else if (get_name(o, sc->name, sizeof(sc->name)))
        fail(err, errcap, "name: text of 1..63 characters, no '<', '&' or control characters");
    else if (get_uint(o, "users", 1, 100000, &sc->users))
        fail(err, errcap, "users: 1..100000");
    else if (get_uint(o, "connections", 1, 20000, &sc->connections))
        fail(err, errcap, "connections: 1..20000");
    else if (get_uint(o, "timeout_ms", 10, 600000, &sc->timeout_ms))
        fail(err, errcap, "timeout_ms: 10..600000");
    else if (get_double(o, "calibrate_s", 1, 600, &sc->calibrate_s))
        fail(err, errcap, "calibrate_s: 1..600");
    else if (!json_is_array(phases) || json_array_size(phases) == 0 ||
             json_array_size(phases) > RH_MAX_PHASES)
        fail(err, errcap, "phases: an array of 1..64 phases is required");
    else
        rc = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(phases); i++) {
        char perr[200];
        if (parse_phase(json_array_get(phases, i), &sc->phase[i], perr, sizeof(perr))) {
            snprintf(err, errcap, "phase %zu: %s", i + 1, perr);
            rc = ERR_INVAL;
        }
        sc->nphases = (unsigned)i + 1;
    }
    json_t *with = json_object_get(o, "calibrate_with");
    if (rc == 0 && with) {
        const char *w = json_string_value(with);
        for (unsigned i = 0; w && i < sc->nphases && sc->calibrate_with < 0; i++)
            if (strcmp(sc->phase[i].name, w) == 0)
                sc->calibrate_with = (int)i;
        if (sc->calibrate_with < 0) {
            fail(err, errcap, "calibrate_with: the name of a phase");
            rc = ERR_INVAL;
        }
    }
    json_decref(o);
    return rc;
}

bool rh_scenario_uses_x(const struct rh_scenario *sc)
{
    for (unsigned p = 0; p < sc->nphases; p++)
        for (int f = 0; f < RH_NFLOWS; f++)
            if (sc->phase[p].rate[f].from_x || sc->phase[p].rate[f].to_x)
                return true;
    return false;
}

double rh_rate_at(const struct rh_phase *p, int flow, double t, double capacity)
{
    const struct rh_rate *r = &p->rate[flow];
    double a = r->from * (r->from_x ? capacity : 1), b = r->to * (r->to_x ? capacity : 1);
    double f = p->duration_s > 0 ? t / p->duration_s : 0;
    if (f < 0)
        f = 0;
    if (f > 1)
        f = 1;
    return a + (b - a) * f;
}

/* Arrivals due in the first t seconds of phase p: the integral of its linear rate. */
double rh_arrivals_by(const struct rh_phase *p, int flow, double t, double capacity)
{
    double a = rh_rate_at(p, flow, 0, capacity), b = rh_rate_at(p, flow, p->duration_s, capacity);
    if (t > p->duration_s)
        t = p->duration_s;
    if (t < 0)
        t = 0;
    return a * t + (b - a) / p->duration_s * t * t / 2;
}

/* When the k-th arrival is due: the root of a t + s t^2 / 2 = k, in the form that stays
 * exact when the slope s is 0 or negative. */
double rh_arrival_time(const struct rh_phase *p, int flow, double k, double capacity)
{
    double a = rh_rate_at(p, flow, 0, capacity), b = rh_rate_at(p, flow, p->duration_s, capacity);
    double s = (b - a) / p->duration_s, d = a * a + 2 * s * k;
    if (d < 0)
        d = 0;
    double den = a + sqrt(d);
    return den > 0 ? 2 * k / den : p->duration_s;
}
