/* SPDX-License-Identifier: MIT */
/* `floodgate rehearse`: arguments, the scenario file, the run, the report and its summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "rehearse/rh.h"
#include "rehearse/rh_int.h"

static const char usage[] =
    "usage: floodgate rehearse SCENARIO.json [options]\n"
    "\n"
    "Plays a load scenario against a running floodgate (open loop: arrivals on schedule\n"
    "whatever the server answers) with synthetic users and a client it creates through the\n"
    "admin API and deletes afterwards. Writes a JSON result and a self-contained HTML report.\n"
    "Rehearse on loopback or a staging instance, never against production users' data.\n"
    "\n"
    "  --target URL          floodgate's public listener (default http://127.0.0.1:8080)\n"
    "  --admin URL           its admin listener (default http://127.0.0.1:8081)\n"
    "  --admin-token TOKEN   admin_token (default: $FLOODGATE_ADMIN_TOKEN)\n"
    "  --json PATH           result (default rehearsal.json)\n"
    "  --html PATH           report (default rehearsal.html)\n"
    "  --login-capacity N    logins/s that \"1x\" means (default: measured before the phases)\n"
    "  --keep                keep the synthetic users and client\n"
    "  --spin                poll the clock on every loop turn: arrivals leave within\n"
    "                        microseconds of their time instead of up to 1 ms late, at\n"
    "                        the cost of one busy core (pin the generator to its own)\n"
    "  --quiet               no progress lines on stderr\n"
    "\n"
    "       floodgate rehearse --render RESULT.json [--html PATH]\n"
    "\n"
    "draws the HTML report again from a saved result (nothing is played).\n"
    "\n"
    "The synthetic users send X-Forwarded-For addresses from 198.18.0.0/15 (RFC 2544's\n"
    "benchmarking range): start floodgate with trusted_proxies = 127.0.0.1 so per-IP limits\n"
    "see many clients, as they would in production. Scenarios: rehearse/*.json, format in\n"
    "docs/rehearsal.md.\n";

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(RH_SCENARIO_MAX_BYTES + 1);
    size_t n = p ? fread(p, 1, RH_SCENARIO_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (p)
        p[n < RH_SCENARIO_MAX_BYTES ? n : RH_SCENARIO_MAX_BYTES] = 0;
    *len = n;
    return p;
}

static void summary(json_t *r)
{
    const char *f;
    json_t *s;
    printf("%-11s %9s %9s %7s %7s %7s %9s %9s %9s\n", "flow", "rate/s", "goodput/s", "429", "503",
           "errors", "p50 ms", "p99 ms", "503 p99");
    json_object_foreach(json_object_get(r, "totals"), f, s)
    {
        json_t *lat = json_object_get(s, "latency_us"),
               *shed = json_object_get(s, "shed_latency_us");
        json_t *st = json_object_get(s, "status");
        printf("%-11s %9.1f %9.1f %7lld %7lld %7lld %9.2f %9.2f %9.2f\n", f,
               json_real_value(json_object_get(s, "rate_per_s")),
               json_real_value(json_object_get(s, "goodput_per_s")),
               json_integer_value(json_object_get(st, "429")),
               json_integer_value(json_object_get(st, "503")),
               json_integer_value(json_object_get(s, "errors")) +
                   json_integer_value(json_object_get(s, "timeouts")),
               json_integer_value(json_object_get(lat, "p50")) / 1000.0,
               json_integer_value(json_object_get(lat, "p99")) / 1000.0,
               json_integer_value(json_object_get(shed, "p99")) / 1000.0);
    }
}

int rh_main(int argc, char **argv)
{
    const char *scenario = NULL, *render = NULL, *target = "http://127.0.0.1:8080",
               *admin = "http://127.0.0.1:8081", *json_path = "rehearsal.json",
               *html_path = "rehearsal.html";
    static struct rh_run run;
    char err[300];
    run.admin_token = getenv("FLOODGATE_ADMIN_TOKEN");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--keep") == 0) {
            run.keep = true;
        } else if (strcmp(a, "--spin") == 0) {
            run.spin = true;
        } else if (strcmp(a, "--quiet") == 0) {
            run.quiet = true;
        } else if (a[0] != '-') {
            if (scenario) {
                fprintf(stderr, "rehearse: one scenario file, not '%s' too\n", a);
                return 2;
            }
            scenario = a;
        } else if (!v) {
            fprintf(stderr, "rehearse: %s needs a value\n%s", a, usage);
            return 2;
        } else {
            i++;
            if (strcmp(a, "--target") == 0)
                target = v;
            else if (strcmp(a, "--admin") == 0)
                admin = v;
            else if (strcmp(a, "--admin-token") == 0)
                run.admin_token = v;
            else if (strcmp(a, "--json") == 0)
                json_path = v;
            else if (strcmp(a, "--html") == 0)
                html_path = v;
            else if (strcmp(a, "--render") == 0)
                render = v;
            else if (strcmp(a, "--login-capacity") == 0) {
                char *end;
                run.capacity = strtod(v, &end);
                if (*end || !(run.capacity > 0 && run.capacity < 1e6)) {
                    fprintf(stderr, "rehearse: --login-capacity: a positive number\n");
                    return 2;
                }
            } else {
                fprintf(stderr, "rehearse: unknown option %s\n%s", a, usage);
                return 2;
            }
        }
    }
    if (render) {
        json_error_t je;
        json_t *result = json_load_file(render, 0, &je);
        if (!json_is_object(result) || !json_is_object(json_object_get(result, "totals"))) {
            fprintf(stderr, "rehearse: %s: not a rehearsal result (%s)\n", render,
                    result ? "no totals" : je.text);
            json_decref(result);
            return 2;
        }
        int bad = rh_report_html(result, html_path);
        if (!bad)
            fprintf(stderr, "rehearse: wrote %s\n", html_path);
        json_decref(result);
        return bad ? 1 : 0;
    }
    if (!scenario) {
        fputs(usage, stderr);
        return 2;
    }
    if (!run.admin_token || strlen(run.admin_token) < 32 || strlen(run.admin_token) > 256) {
        fprintf(stderr, "rehearse: the admin token (--admin-token or FLOODGATE_ADMIN_TOKEN, "
                        "32..256 characters) is needed to create the synthetic users\n");
        return 2;
    }
    size_t len;
    char *text = read_file(scenario, &len);
    if (!text) {
        fprintf(stderr, "rehearse: cannot read %s\n", scenario);
        return 2;
    }
    int rc = rh_scenario_parse(text, len, &run.sc, err, sizeof(err));
    free(text);
    if (rc) {
        fprintf(stderr, "rehearse: %s: %s\n", scenario, err);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    run.nusers = run.sc.users;
    run.users = calloc(run.nusers, sizeof(*run.users));
    run.stat = calloc(run.sc.nphases, sizeof(*run.stat));
    run.capreg = 1000000;
    run.registered = calloc(run.capreg, sizeof(*run.registered));
    if (!run.users || !run.stat || !run.registered) {
        fprintf(stderr, "rehearse: out of memory\n");
        return 1;
    }
    rc = rh_run(&run, target, admin, err, sizeof(err));
    if (rc && !run.failed)
        fprintf(stderr, "rehearse: %s\n", run.nomem ? "out of memory" : err);
    int exit_code = rc == ERR_INVAL ? 2 : rc ? 1 : 0; /* ERR_INVAL: an address refused */
    if (run.nsec) { /* whatever was played is reported, even after Ctrl-C */
        json_t *result = NULL;
        if (rh_report_json(&run, json_path, &result) || rh_report_html(result, html_path))
            exit_code = 1;
        else
            summary(result);
        json_decref(result);
        fprintf(stderr, "rehearse: wrote %s and %s\n", json_path, html_path);
    }
    if (run.cleanup_failed)
        fprintf(stderr, "rehearse: %zu synthetic users or clients (%s*) could not be deleted\n",
                run.cleanup_failed, run.prefix);
    for (size_t i = 0; i < run.nusers; i++) {
        free(run.users[i].refresh);
        free(run.users[i].access);
    }
    free(run.users);
    free(run.stat);
    free(run.registered);
    free(run.sec);
    return exit_code;
}
