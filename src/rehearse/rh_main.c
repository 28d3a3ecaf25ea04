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
    /* every outcome: 2xx (goodput), 429, 503, other 4xx (a 401 is one), other 5xx, and no
     * answer (errors and timeouts); rates over the seconds the flow ran */
    printf("%-11s %9s %9s %7s %7s %7s %7s %7s %9s %9s %9s\n", "flow", "rate/s", "goodput/s", "429",
           "503", "4xx", "5xx", "errors", "p50 ms", "p99 ms", "503 p99");
    json_object_foreach(json_object_get(r, "totals"), f, s)
    {
        json_t *lat = json_object_get(s, "latency_us"),
               *shed = json_object_get(s, "shed_latency_us");
        json_t *st = json_object_get(s, "status");
        printf("%-11s %9.1f %9.1f %7lld %7lld %7lld %7lld %7lld %9.2f %9.2f %9.2f\n", f,
               json_real_value(json_object_get(s, "rate_per_s")),
               json_real_value(json_object_get(s, "goodput_per_s")),
               json_integer_value(json_object_get(st, "429")),
               json_integer_value(json_object_get(st, "503")),
               json_integer_value(json_object_get(st, "4xx")),
               json_integer_value(json_object_get(st, "5xx")),
               json_integer_value(json_object_get(s, "errors")) +
                   json_integer_value(json_object_get(s, "timeouts")),
               json_integer_value(json_object_get(lat, "p50")) / 1000.0,
               json_integer_value(json_object_get(lat, "p99")) / 1000.0,
               json_integer_value(json_object_get(shed, "p99")) / 1000.0);
    }
}

struct opts {
    const char *scenario, *render, *target, *admin, *json_path, *html_path;
};

/* The command line into o and run. -1 to go on, or the exit code (help: 0; misuse: 2). */
static int parse_args(int argc, char **argv, struct opts *o, struct rh_run *run)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--keep") == 0) {
            run->keep = true;
        } else if (strcmp(a, "--spin") == 0) {
            run->spin = true;
        } else if (strcmp(a, "--quiet") == 0) {
            run->quiet = true;
        } else if (a[0] != '-') {
            if (o->scenario) {
                fprintf(stderr, "rehearse: one scenario file, not '%s' too\n", a);
                return 2;
            }
            o->scenario = a;
        } else if (!v) {
            fprintf(stderr, "rehearse: %s needs a value\n%s", a, usage);
            return 2;
        } else if (strcmp(a, "--login-capacity") == 0) {
            char *end;
            i++;
            run->capacity = strtod(v, &end);
            if (*end || !(run->capacity > 0 && run->capacity < 1e6)) {
                fprintf(stderr, "rehearse: --login-capacity: a positive number\n");
                return 2;
            }
        } else {
            const char **slot = strcmp(a, "--target") == 0        ? &o->target
                                : strcmp(a, "--admin") == 0       ? &o->admin
                                : strcmp(a, "--admin-token") == 0 ? &run->admin_token
                                : strcmp(a, "--json") == 0        ? &o->json_path
                                : strcmp(a, "--html") == 0        ? &o->html_path
                                : strcmp(a, "--render") == 0      ? &o->render
                                                                  : NULL;
            if (!slot) {
                fprintf(stderr, "rehearse: unknown option %s\n%s", a, usage);
                return 2;
            }
            *slot = v;
            i++;
        }
    }
    return -1;
}

/* --render RESULT.json: the HTML report of an earlier run. */
static int render_only(const char *render, const char *html_path)
{
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

/* Reads and checks the scenario and sets up the run's tables: 0, or the exit code. */
static int load(const char *scenario, struct rh_run *run)
{
    char err[300];
    size_t len;
    char *text = read_file(scenario, &len);
    if (!text) {
        fprintf(stderr, "rehearse: cannot read %s\n", scenario);
        return 2;
    }
    int rc = rh_scenario_parse(text, len, &run->sc, err, sizeof(err));
    free(text);
    if (rc) {
        fprintf(stderr, "rehearse: %s: %s\n", scenario, err);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    run->nusers = run->sc.users;
    run->users = calloc(run->nusers, sizeof(*run->users));
    run->stat = calloc(run->sc.nphases, sizeof(*run->stat));
    run->capreg = 1000000;
    run->registered = calloc(run->capreg, sizeof(*run->registered));
    if (!run->users || !run->stat || !run->registered) {
        fprintf(stderr, "rehearse: out of memory\n");
        return 1;
    }
    return 0;
}

int rh_main(int argc, char **argv)
{
    struct opts o = {.target = "http://127.0.0.1:8080",
                     .admin = "http://127.0.0.1:8081",
                     .json_path = "rehearsal.json",
                     .html_path = "rehearsal.html"};
    static struct rh_run run;
    char err[300];
    run.admin_token = getenv("FLOODGATE_ADMIN_TOKEN");
    int rc = parse_args(argc, argv, &o, &run);
    if (rc >= 0)
        return rc;
    if (o.render)
        return render_only(o.render, o.html_path);
    if (!o.scenario) {
        fputs(usage, stderr);
        return 2;
    }
    if (!run.admin_token || strlen(run.admin_token) < 32 || strlen(run.admin_token) > 256) {
        fprintf(stderr, "rehearse: the admin token (--admin-token or FLOODGATE_ADMIN_TOKEN, "
                        "32..256 characters) is needed to create the synthetic users\n");
        return 2;
    }
    if ((rc = load(o.scenario, &run)) != 0)
        return rc;
    rc = rh_run(&run, o.target, o.admin, err, sizeof(err));
    if (rc && !run.failed)
        fprintf(stderr, "rehearse: %s\n", run.nomem ? "out of memory" : err);
    int exit_code = rc == ERR_INVAL ? 2 : rc ? 1 : 0; /* ERR_INVAL: an address refused */
    if (run.nsec) { /* whatever was played is reported, even after Ctrl-C */
        json_t *result = NULL;
        if (rh_report_json(&run, o.json_path, &result) || rh_report_html(result, o.html_path))
            exit_code = 1;
        else
            summary(result);
        json_decref(result);
        fprintf(stderr, "rehearse: wrote %s and %s\n", o.json_path, o.html_path);
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
