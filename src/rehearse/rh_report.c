/* SPDX-License-Identifier: MIT */
/*
 * The rehearsal's results: a JSON document (the record; the HTML report only draws it) and
 * a self-contained HTML page: rh_report.html with the JSON inlined, no network needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/version.h"
#include "json/json.h"
#include "rehearse/rh_int.h"
#include "rh_report_html.h" /* generated from rh_report.html: const char report_template[] */

static json_t *latency(const struct rh_hist *h)
{
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "n", (json_int_t)h->n, "p50",
        (json_int_t)rh_hist_quantile(h, 0.5), "p90", (json_int_t)rh_hist_quantile(h, 0.9), "p99",
        (json_int_t)rh_hist_quantile(h, 0.99), "p999", (json_int_t)rh_hist_quantile(h, 0.999),
        "max", (json_int_t)h->max_us, "mean", (json_int_t)(h->n ? h->sum_us / h->n : 0));
}

static json_t *flowstat(const struct rh_flowstat *s, double seconds, int flow)
{
    json_t *o = json_pack(
        "{s:I,s:I,s:f,s:f,s:{s:I,s:I,s:I,s:I},s:I,s:I,s:I,s:I}", "sent", (json_int_t)s->sent, "ok",
        (json_int_t)s->ok, "rate_per_s", seconds > 0 ? (double)s->sent / seconds : 0.0,
        "goodput_per_s", seconds > 0 ? (double)s->ok / seconds : 0.0, "status", "429",
        (json_int_t)s->s429, "503", (json_int_t)s->s503, "4xx", (json_int_t)s->s4xx, "5xx",
        (json_int_t)s->s5xx, "errors", (json_int_t)s->err, "timeouts", (json_int_t)s->timeout,
        "dropped", (json_int_t)s->dropped, "skipped", (json_int_t)s->skipped);
    json_object_set_new(o, "latency_us", latency(&s->lat));
    json_object_set_new(o, "shed_latency_us", latency(&s->shed));
    if (flow == RH_OIDC) { /* a person's sign-in, whole; the busy page's posts again */
        json_object_set_new(o, "signin_latency_us", latency(&s->signin));
        json_object_set_new(o, "retries", json_integer((json_int_t)s->retries));
    }
    return o;
}

static void merge(struct rh_flowstat *to, const struct rh_flowstat *from)
{
    to->sent += from->sent;
    to->ok += from->ok;
    to->s429 += from->s429;
    to->s503 += from->s503;
    to->s4xx += from->s4xx;
    to->s5xx += from->s5xx;
    to->err += from->err;
    to->timeout += from->timeout;
    to->dropped += from->dropped;
    to->skipped += from->skipped;
    to->retries += from->retries;
    rh_hist_merge(&to->lat, &from->lat);
    rh_hist_merge(&to->shed, &from->shed);
    rh_hist_merge(&to->signin, &from->signin);
}

int rh_report_json(const struct rh_run *run, const char *path, json_t **out)
{
    const struct rh_scenario *sc = &run->sc;
    bool used[RH_NFLOWS] = {0};
    static struct rh_flowstat total[RH_NFLOWS];
    char started[32];
    struct tm tm;
    gmtime_r(&run->wall_start, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    memset(total, 0, sizeof(total));
    for (unsigned p = 0; p < sc->nphases; p++)
        for (int f = 0; f < RH_NFLOWS; f++) {
            used[f] |= run->stat[p][f].sent > 0;
            merge(&total[f], &run->stat[p][f]);
        }
    double played = run->t_end > run->t_start ? (double)(run->t_end - run->t_start) / 1e9 : 0;

    json_t *root = json_pack(
        "{s:s,s:s,s:s,s:s,s:f,s:{s:f,s:s},s:{s:I,s:I,s:I},s:[ssss]}", "tool", "floodgate rehearse",
        "version", FG_VERSION, "started", started, "target", run->pub.host, "duration_s", played,
        "login_capacity", "per_s", run->capacity, "source",
        run->calibrated ? "measured" : (run->capacity > 0 ? "given" : "none"), "generator",
        "lag_p50_us", (json_int_t)rh_hist_quantile(&run->lag, 0.5), "lag_p99_us",
        (json_int_t)rh_hist_quantile(&run->lag, 0.99), "lag_max_us", (json_int_t)run->lag.max_us,
        "modes", rh_mode_name[0], rh_mode_name[1], rh_mode_name[2], rh_mode_name[3]);
    json_t *scen = json_pack("{s:s,s:I,s:I,s:I,s:[]}", "name", sc->name, "users",
                             (json_int_t)sc->users, "connections", (json_int_t)sc->connections,
                             "timeout_ms", (json_int_t)sc->timeout_ms, "phases");
    json_t *phases = json_array();
    double start = 0, ran[RH_NFLOWS] = {0}; /* each flow's seconds: the phases it ran in */
    for (unsigned p = 0; p < sc->nphases; p++) {
        const struct rh_phase *ph = &sc->phase[p];
        json_t *rates = json_object(), *flows = json_object();
        for (int f = 0; f < RH_NFLOWS; f++) {
            double a = rh_rate_at(ph, f, 0, run->capacity);
            double b = rh_rate_at(ph, f, ph->duration_s, run->capacity);
            if (a > 0 || b > 0) {
                json_object_set_new(rates, rh_flow_name[f], json_pack("[ff]", a, b));
                ran[f] += ph->duration_s;
            }
            if (used[f])
                json_object_set_new(flows, rh_flow_name[f],
                                    flowstat(&run->stat[p][f], ph->duration_s, f));
        }
        json_array_append_new(json_object_get(scen, "phases"),
                              json_pack("{s:s,s:f,s:o}", "name", ph->name, "duration_s",
                                        ph->duration_s, "rates", rates));
        json_array_append_new(phases,
                              json_pack("{s:s,s:f,s:f,s:o}", "name", ph->name, "start_s", start,
                                        "duration_s", ph->duration_s, "flows", flows));
        start += ph->duration_s;
    }
    json_t *totals = json_object();
    for (int f = 0; f < RH_NFLOWS; f++)
        if (used[f])
            json_object_set_new(totals, rh_flow_name[f],
                                flowstat(&total[f], ran[f] > 0 ? ran[f] : start, f));
    json_t *secs = json_array();
    for (size_t i = 0; i < run->nsec; i++) {
        const struct rh_sec *s = &run->sec[i];
        json_t *flows = json_object();
        for (int f = 0; f < RH_NFLOWS; f++) {
            const struct rh_sec_flow *v = &s->f[f];
            if (used[f])
                json_object_set_new(
                    flows, rh_flow_name[f],
                    json_pack("{s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "target", v->target, "sent",
                              (json_int_t)v->sent, "ok", (json_int_t)v->ok, "s429",
                              (json_int_t)v->s429, "s503", (json_int_t)v->s503, "other",
                              (json_int_t)v->other, "p50_us", (json_int_t)v->p50_us, "p99_us",
                              (json_int_t)v->p99_us, "max_us", (json_int_t)v->max_us));
        }
        json_array_append_new(secs, json_pack("{s:f,s:s,s:i,s:i,s:o}", "t", s->t, "phase",
                                              sc->phase[s->phase].name, "mode", s->mode,
                                              "recommended", s->recommended, "flows", flows));
    }
    json_object_set_new(json_object_get(root, "login_capacity"), "measured_with",
                        run->calibrated && sc->calibrate_with >= 0
                            ? json_string(sc->phase[sc->calibrate_with].name)
                            : json_null());
    json_object_set_new(root, "scenario", scen);
    json_object_set_new(root, "phases", phases);
    json_object_set_new(root, "totals", totals);
    json_object_set_new(root, "seconds", secs);
    *out = root;
    if (json_dump_file(root, path, JSON_INDENT(1) | JSON_SORT_KEYS)) {
        fprintf(stderr, "rehearse: cannot write %s\n", path);
        return ERR_INVAL;
    }
    return 0;
}

int rh_report_html(const json_t *result, const char *path)
{
    const char *mark = strstr(report_template, "@@DATA@@");
    /* JSON_ESCAPE_SLASH writes "</" as "<\/", so the data cannot end the script element */
    char *data = json_dumps(result, JSON_COMPACT | JSON_ESCAPE_SLASH);
    FILE *f = fopen(path, "w");
    int bad = !mark || !data || !f;
    if (!bad) {
        fwrite(report_template, 1, (size_t)(mark - report_template), f);
        fputs(data, f);
        fputs(mark + strlen("@@DATA@@"), f);
    }
    if (f && fclose(f))
        bad = 1;
    if (data)
        json_free_str(data);
    if (bad)
        fprintf(stderr, "rehearse: cannot write %s\n", path);
    return bad ? ERR_INVAL : 0;
}
