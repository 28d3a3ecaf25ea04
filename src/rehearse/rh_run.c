/* SPDX-License-Identifier: MIT */
/*
 * The rehearsal engine: one libuv loop, HTTP/1.1 keep-alive connections in pools (one pool
 * per purpose so that set-up, the policy probe and the load never queue behind each
 * other), http_parser reading the answers.
 *
 * Open loop: each flow's arrivals are spaced 1/rate apart on the monotonic clock whatever
 * the server does. An arrival takes an idle connection, or opens one (up to the scenario's
 * `connections`), or waits in the pool's queue; its latency is counted from the arrival
 * time, so time spent waiting for a connection is latency too (no coordinated omission).
 * A full queue drops the arrival and counts it as `dropped`: the generator, not the server,
 * was saturated, and the report says so.
 *
 * Stages: create a client and the synthetic users (admin API), log every user in once
 * (refresh and access tokens for the refresh, introspect and verify flows), measure the
 * login capacity if a rate is given in x, play the phases, wait for the answers still
 * due, delete what was created, write the report.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <http_parser.h>
#include <jansson.h>
#include <sodium.h>
#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/queue.h"
#include "rehearse/rh.h"
#include "rehearse/rh_int.h"

#define SETUP_CONNS     4
#define SETUP_TRIES     10
#define CALIBRATE_CONNS 8

/* ---- requests ------------------------------------------------------------------------- */

/* Starts a request: method, path, extra header lines (each ending in \r\n), body. */
int rh_build(struct buf *b, const struct rh_pool *p, const char *method, const char *path,
             const char *headers, const char *ctype, const char *body)
{
    buf_reset(b);
    int rc = buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", method, path, p->host,
                        headers ? headers : "");
    if (body)
        rc = rc || buf_printf(b, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s", ctype,
                              strlen(body), body);
    else
        rc = rc || buf_puts(b, "\r\n");
    return rc;
}

static void send_built(struct rh_run *run, struct rh_pool *p, int flow, req_done_cb done,
                       size_t idx, uint64_t t0, int tries)
{
    struct rh_req *q = rh_req_new(flow, done, &run->scratch);
    if (!q) {
        run->nomem = true;
        return;
    }
    q->idx = idx;
    q->tries = tries;
    q->t0 = t0;
    q->phase = run->stage == STAGE_RUN ? run->phase : -1; /* -1: not recorded */
    rh_pool_submit(p, q);
}

/* A set-up request refused with 503 (the server is shedding): sent again after a pause,
 * as Retry-After asks, rather than at once into the same queue. */
#define LATER_MS 250

static void on_later(uv_timer_t *t)
{
    struct rh_run *run = t->data;
    struct rh_req *q = run->later;
    run->later = NULL;
    while (q) {
        struct rh_req *next = q->next;
        q->next = NULL;
        rh_pool_submit(q->later, q);
        q = next;
    }
}

static void send_later(struct rh_run *run, struct rh_pool *p, req_done_cb done, size_t idx,
                       int tries)
{
    struct rh_req *q = rh_req_new(-1, done, &run->scratch);
    if (!q) {
        run->nomem = true;
        return;
    }
    q->idx = idx;
    q->tries = tries;
    q->later = p;
    q->next = run->later;
    run->later = q;
    if (!uv_is_active((uv_handle_t *)&run->later_timer))
        uv_timer_start(&run->later_timer, on_later, LATER_MS, 0);
}

static char *json_field(const char *body, size_t len, const char *key)
{
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *v = json_string_value(json_object_get(o, key));
    char *out = v ? strdup(v) : NULL;
    json_decref(o);
    return out;
}

static void set_tokens(struct rh_user *u, const char *body, size_t len)
{
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *a = json_string_value(json_object_get(o, "access_token"));
    const char *r = json_string_value(json_object_get(o, "refresh_token"));
    if (a) {
        free(u->access);
        u->access = strdup(a);
    }
    if (r && !u->busy) {
        free(u->refresh);
        u->refresh = strdup(r);
    }
    json_decref(o);
}

static int build_login(struct rh_run *run, struct rh_pool *p, const struct rh_user *u)
{
    char hdr[64], body[256];
    snprintf(hdr, sizeof(hdr), "X-Forwarded-For: %s\r\n", u->ip);
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", u->name, u->pw);
    return rh_build(&run->scratch, p, "POST", "/v1/auth/login", hdr, "application/json", body);
}

void rh_synthetic_ip(size_t i, char *out, size_t cap)
{
    /* 198.18.0.0/15: reserved for benchmarking (RFC 2544), never a real client. */
    snprintf(out, cap, "198.%u.%u.%u", 18u + (unsigned)((i >> 16) & 1), (unsigned)((i >> 8) & 255),
             (unsigned)(i & 255));
}

static void random_text(char *out, size_t n)
{
    static const char abc[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char r[64];
    randombytes_buf(r, n);
    for (size_t i = 0; i < n; i++)
        out[i] = abc[r[i] % (sizeof(abc) - 1)];
    out[n] = 0;
}

/* ---- accounting ----------------------------------------------------------------------- */

struct rh_sec *rh_cur_sec(struct rh_run *run)
{
    return run->nsec ? &run->sec[run->nsec - 1] : NULL;
}

void rh_count(struct rh_flowstat *fs, int status)
{
    if (status >= 200 && status < 300)
        fs->ok++;
    else if (status == 429)
        fs->s429++;
    else if (status == 503)
        fs->s503++;
    else if (status >= 400 && status < 500)
        fs->s4xx++;
    else if (status >= 500)
        fs->s5xx++;
    else if (status == ST_TIMEOUT)
        fs->timeout++;
    else if (status == ST_DROPPED)
        fs->dropped++;
    else
        fs->err++;
}

static void account(struct rh_run *run, const struct rh_req *q, int status)
{
    if (q->flow < 0 || q->phase < 0)
        return;
    struct rh_flowstat *fs = &run->stat[q->phase][q->flow];
    struct rh_sec *s = rh_cur_sec(run);
    uint64_t us = (uv_hrtime() - q->t0) / 1000;
    rh_count(fs, status);
    if (status == ST_DROPPED)
        return; /* never sent: no latency */
    rh_hist_record(&fs->lat, us);
    if (status == 503)
        rh_hist_record(&fs->shed, us);
    if (s) {
        struct rh_sec_flow *sf = &s->f[q->flow];
        if (status >= 200 && status < 300)
            sf->ok++;
        else if (status == 429)
            sf->s429++;
        else if (status == 503)
            sf->s503++;
        else
            sf->other++;
        rh_hist_record(&run->live[q->flow], us);
    }
}

/* ---- set-up --------------------------------------------------------------------------- */

static void stage_next(struct rh_run *run);
static void admin_request(struct rh_run *run, const char *method, const char *path,
                          const char *body, req_done_cb done, size_t idx, size_t *pending);
static int build_admin(struct rh_run *run, struct rh_pool *p, const char *method, const char *path,
                       const char *body);
static void on_cleanup(struct rh_run *run, struct rh_req *q, int status, const char *body,
                       size_t len);

static void setup_fail(struct rh_run *run, const char *what, int status, const char *body,
                       size_t len)
{
    if (run->failed)
        return;
    run->failed = true;
    if (status > 0)
        fprintf(stderr, "rehearse: %s failed: HTTP %d %.*s\n", what, status,
                (int)(len > 300 ? 300 : len), body ? body : "");
    else
        fprintf(stderr, "rehearse: %s failed: %s\n", what,
                status < 0 ? "timeout" : "connection error");
    if (status == 429)
        fprintf(stderr, "rehearse: the synthetic users come from 198.18.0.0/15 in "
                        "X-Forwarded-For: start floodgate with trusted_proxies = 127.0.0.1 "
                        "(or the generator's address) so that each counts as its own client\n");
    if ((status == 401 || status == 404) && strstr(what, "/admin/"))
        fprintf(stderr, "rehearse: check --admin and --admin-token (or "
                        "FLOODGATE_ADMIN_TOKEN)\n");
    stage_next(run);
}

/* One set-up request is done; the last one moves on. Late answers of an abandoned stage
 * (after a failure or Ctrl-C) are not counted. */
static void setup_done_one(struct rh_run *run)
{
    if (run->stage < STAGE_CLEANUP && --run->pending == 0 && !run->failed)
        stage_next(run);
}

static void cleanup_done_one(struct rh_run *run)
{
    if (run->stage == STAGE_CLEANUP && --run->cleanup_pending == 0)
        stage_next(run);
}

/* A client the tool created: its id, and its id and secret as HTTP Basic credentials.
 * `what` names it in a failure. */
static void client_created(struct rh_run *run, int status, const char *body, size_t len,
                           const char *what, char *id_out, size_t id_cap, char *basic_out,
                           size_t basic_cap)
{
    char why[128];
    if (status != 201) {
        snprintf(why, sizeof(why), "creating %s (POST /admin/clients)", what);
        setup_fail(run, why, status, body, len);
        return;
    }
    char *id = json_field(body, len, "client_id"), *secret = json_field(body, len, "client_secret");
    if (id && secret) {
        char plain[512];
        int n = snprintf(plain, sizeof(plain), "%s:%s", id, secret);
        snprintf(id_out, id_cap, "%s", id);
        sodium_bin2base64(basic_out, basic_cap, (const unsigned char *)plain, (size_t)n,
                          sodium_base64_VARIANT_ORIGINAL);
        sodium_memzero(plain, sizeof(plain));
    }
    free(id);
    free(secret);
    if (!id_out[0]) {
        snprintf(why, sizeof(why), "reading %s", what);
        setup_fail(run, why, status, body, len);
        return;
    }
    setup_done_one(run);
}

static void on_client(struct rh_run *run, struct rh_req *q, int status, const char *body,
                      size_t len)
{
    (void)q;
    client_created(run, status, body, len, "the client", run->client_id, sizeof(run->client_id),
                   run->basic, sizeof(run->basic));
}

/* The oidc flow's web app: first-party (no consent page), confidential, one redirect URI. */
static void on_web_client(struct rh_run *run, struct rh_req *q, int status, const char *body,
                          size_t len)
{
    (void)q;
    client_created(run, status, body, len, "the web app's client", run->web_client_id,
                   sizeof(run->web_client_id), run->web_basic, sizeof(run->web_basic));
}

static bool plays(const struct rh_scenario *sc, int flow)
{
    for (unsigned p = 0; p < sc->nphases; p++)
        if (sc->phase[p].rate[flow].from > 0 || sc->phase[p].rate[flow].to > 0)
            return true;
    return false;
}

/* Whether the flows played need each user's tokens (a first login before the phases). */
static bool needs_tokens(const struct rh_scenario *sc)
{
    return plays(sc, RH_REFRESH) || plays(sc, RH_INTROSPECT) || plays(sc, RH_VERIFY);
}

static void on_user(struct rh_run *run, struct rh_req *q, int status, const char *body, size_t len)
{
    if (status == 503 && q->tries < SETUP_TRIES && !run->failed && run->stage < STAGE_CLEANUP) {
        char again[400];
        snprintf(again, sizeof(again), "{\"username\":\"%s\",\"password\":\"%s\"}",
                 run->users[q->idx].name, run->users[q->idx].pw);
        if (build_admin(run, &run->admin, "POST", "/admin/users", again) == 0)
            send_later(run, &run->admin, on_user, q->idx, q->tries + 1);
        return;
    }
    if (status != 201) {
        setup_fail(run, "creating a user (POST /admin/users)", status, body, len);
        return;
    }
    run->users[q->idx].created = true;
    if (run->stage == STAGE_CLEANUP && !run->keep) { /* created after the clean-up began */
        char path[128];
        snprintf(path, sizeof(path), "/admin/users/%s", run->users[q->idx].name);
        admin_request(run, "DELETE", path, NULL, on_cleanup, q->idx, &run->cleanup_pending);
    }
    setup_done_one(run);
}

static void on_setup_login(struct rh_run *run, struct rh_req *q, int status, const char *body,
                           size_t len)
{
    struct rh_user *u = &run->users[q->idx];
    if (status == 503 && q->tries < SETUP_TRIES && !run->failed) {
        /* shed while the server was busy: ask again */
        if (build_login(run, &run->setup_pub, u) == 0)
            send_later(run, &run->setup_pub, on_setup_login, q->idx, q->tries + 1);
        return;
    }
    if (status != 200) {
        setup_fail(run, "the first login of a synthetic user", status, body, len);
        return;
    }
    set_tokens(u, body, len);
    setup_done_one(run);
}

static void on_cleanup(struct rh_run *run, struct rh_req *q, int status, const char *body,
                       size_t len)
{
    (void)q;
    (void)body;
    (void)len;
    if (status != 200 && status != 204 && status != 404)
        run->cleanup_failed++;
    cleanup_done_one(run);
}

/* An admin API request, with the admin token, into run->scratch for pool p (one on the
 * admin listener: set-up and clean-up, or the policy probe). */
static int build_admin(struct rh_run *run, struct rh_pool *p, const char *method, const char *path,
                       const char *body)
{
    char hdr[300];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", run->admin_token);
    if (rh_build(&run->scratch, p, method, path, hdr, "application/json", body)) {
        run->nomem = true;
        return ERR_NOMEM;
    }
    return ERR_OK;
}

static void admin_request(struct rh_run *run, const char *method, const char *path,
                          const char *body, req_done_cb done, size_t idx, size_t *pending)
{
    if (build_admin(run, &run->admin, method, path, body))
        return;
    (*pending)++;
    send_built(run, &run->admin, -1, done, idx, 0, 0);
}

/* ---- calibration ---------------------------------------------------------------------- */

static void calib_send(struct rh_run *run);

static void on_calib(struct rh_run *run, struct rh_req *q, int status, const char *body, size_t len)
{
    (void)q;
    (void)body;
    (void)len;
    uint64_t now = uv_hrtime();
    if (status == 200 && now <= run->calib_end)
        run->calib_ok++;
    if (status != 200 && now <= run->calib_end)
        run->calib_other++;
    if (now < run->calib_end && !run->stopping)
        calib_send(run);
    else
        setup_done_one(run);
}

static void calib_send(struct rh_run *run)
{
    struct rh_user *u = &run->users[run->cursor++ % run->nusers];
    if (build_login(run, &run->calib, u) == 0)
        send_built(run, &run->calib, -1, on_calib, 0, uv_hrtime(), 0);
}

/* ---- the phases ----------------------------------------------------------------------- */

static void on_flow(struct rh_run *run, struct rh_req *q, int status, const char *body, size_t len)
{
    account(run, q, status);
    run->inflight--;
    if (q->flow == RH_LOGIN && status == 200) {
        set_tokens(&run->users[q->idx], body, len);
    } else if (q->flow == RH_REFRESH) {
        struct rh_user *u = &run->users[q->idx];
        u->busy = false;
        if (status == 200) {
            set_tokens(u, body, len);
        } else if (status == 400 || status == 401) {
            free(u->refresh); /* the family is gone (reuse after a lost answer) */
            u->refresh = NULL;
        }
    } else if (q->flow == RH_REGISTER && status == 201 && run->nreg < run->capreg) {
        run->registered[run->nreg++] = q->idx;
    }
}

/* The server's adaptive mode and scaling recommendation this second, from the admin API's
 * GET /admin/policy: the admin listener is floodgate's own, also when the load goes
 * through a gateway that does not pass /metrics on. */
static void on_probe(struct rh_run *run, struct rh_req *q, int status, const char *body, size_t len)
{
    if (status != 200 || q->idx >= run->nsec)
        return;
    struct rh_sec *s = &run->sec[q->idx];
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *mode = json_string_value(json_object_get(o, "mode"));
    json_t *rec = json_object_get(o, "recommended_instances");
    for (int m = 0; mode && m < RH_NMODES; m++)
        if (strcmp(mode, rh_mode_name[m]) == 0)
            s->mode = m;
    if (json_is_integer(rec) && json_integer_value(rec) >= 0 && json_integer_value(rec) < 1000000)
        s->recommended = (int)json_integer_value(rec);
    json_decref(o);
}

/* One arrival of `flow` at t0. Returns false if it could not be sent (no token). */
static void arrive(struct rh_run *run, int flow, uint64_t t0)
{
    struct rh_pool *p = &run->pub;
    struct rh_user *u = NULL;
    char hdr[2600], body[2200], name[64], pw[32], ip[20];
    size_t idx = 0;
    int rc = 0;
    /* during the calibration the background flows are played but not recorded */
    bool rec = run->stage == STAGE_RUN;
    if (rec) {
        run->stat[run->phase][flow].sent++;
        rh_cur_sec(run)->f[flow].sent++;
    }
    if (flow == RH_OIDC) {
        rh_signin_start(run, run->cursor++ % run->nusers, t0, rec);
        return;
    }
    if (flow == RH_REGISTER) {
        idx = run->reg_seq++;
        snprintf(name, sizeof(name), "%sr%zu", run->prefix, idx);
        random_text(pw, 20);
        rh_synthetic_ip(run->nusers + idx, ip, sizeof(ip));
        snprintf(hdr, sizeof(hdr), "X-Forwarded-For: %s\r\n", ip);
        snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", name, pw);
        rc = rh_build(&run->scratch, p, "POST", "/v1/users", hdr, "application/json", body);
    } else if (flow == RH_REFRESH) {
        for (size_t k = 0; k < run->nusers && !u; k++) {
            struct rh_user *c = &run->users[run->refresh_cursor++ % run->nusers];
            if (c->refresh && !c->busy)
                u = c;
        }
        if (!u) { /* every family is in flight or gone: the scenario outruns its users */
            if (rec)
                run->stat[run->phase][flow].skipped++;
            return;
        }
        u->busy = true;
        idx = (size_t)(u - run->users);
        snprintf(hdr, sizeof(hdr), "X-Forwarded-For: %s\r\n", u->ip);
        snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", u->refresh);
        rc = rh_build(&run->scratch, p, "POST", "/v1/auth/refresh", hdr, "application/json", body);
    } else {
        idx = run->cursor++ % run->nusers;
        u = &run->users[idx];
        if (flow == RH_LOGIN) {
            rc = build_login(run, p, u);
        } else if (flow == RH_TOKEN) {
            snprintf(hdr, sizeof(hdr), "Authorization: Basic %s\r\nX-Forwarded-For: %s\r\n",
                     run->basic, u->ip);
            rc = rh_build(&run->scratch, p, "POST", "/oauth2/token", hdr,
                          "application/x-www-form-urlencoded", "grant_type=client_credentials");
        } else if (!u->access || strlen(u->access) > 2000) {
            if (rec)
                run->stat[run->phase][flow].skipped++;
            return;
        } else if (flow == RH_INTROSPECT) {
            snprintf(hdr, sizeof(hdr), "Authorization: Basic %s\r\n", run->basic);
            snprintf(body, sizeof(body), "token=%s", u->access);
            rc = rh_build(&run->scratch, p, "POST", "/oauth2/introspect", hdr,
                          "application/x-www-form-urlencoded", body);
        } else {
            snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", u->access);
            rc = rh_build(&run->scratch, p, "GET", "/v1/auth/verify", hdr, NULL, NULL);
        }
    }
    if (rc) {
        run->nomem = true;
        return;
    }
    run->inflight++;
    send_built(run, p, flow, on_flow, idx, t0, 0);
}

static void close_second(struct rh_run *run)
{
    struct rh_sec *s = rh_cur_sec(run);
    if (!s)
        return;
    for (int f = 0; f < RH_NFLOWS; f++) {
        s->f[f].p50_us = rh_hist_quantile(&run->live[f], 0.5);
        s->f[f].p99_us = rh_hist_quantile(&run->live[f], 0.99);
        s->f[f].max_us = run->live[f].max_us;
        rh_hist_reset(&run->live[f]);
    }
    if (!run->quiet) {
        int m = run->nsec >= 2 ? run->sec[run->nsec - 2].mode : -1;
        fprintf(stderr, "%4zus %-10s %-8s", run->nsec - 1, run->sc.phase[s->phase].name,
                m >= 0 && m < RH_NMODES ? rh_mode_name[m] : "?");
        for (int f = 0; f < RH_NFLOWS; f++)
            if (s->f[f].sent || s->f[f].ok)
                fprintf(stderr, " | %s %u/s ok %u 503 %u p99 %.1fms", rh_flow_name[f], s->f[f].sent,
                        s->f[f].ok, s->f[f].s503, s->f[f].p99_us / 1000.0);
        fputc('\n', stderr);
    }
}

static void open_second(struct rh_run *run, uint64_t now)
{
    if (run->nsec == run->capsec) {
        size_t cap = run->capsec ? run->capsec * 2 : 256;
        struct rh_sec *n = realloc(run->sec, cap * sizeof(*n));
        if (!n) {
            run->nomem = true;
            return;
        }
        run->sec = n;
        run->capsec = cap;
    }
    struct rh_sec *s = &run->sec[run->nsec++];
    memset(s, 0, sizeof(*s));
    s->mode = -1;
    s->recommended = -1;
    s->phase = run->phase;
    s->t = (double)(now - run->t_start) / 1e9;
    if (build_admin(run, &run->probe, "GET", "/admin/policy", NULL) == 0)
        send_built(run, &run->probe, -1, on_probe, run->nsec - 1, now, 0);
}

/* Sends every arrival of the current phase (or the calibration's background) due by `now`
 * (or by the phase's end). */
static void send_due(struct rh_run *run, uint64_t now)
{
    const struct rh_phase *ph =
        run->stage == STAGE_CALIBRATE ? &run->background : &run->sc.phase[run->phase];
    double tn = (double)(now - run->phase_start) / 1e9;
    for (int f = 0; f < RH_NFLOWS; f++) {
        /* The k-th arrival of the phase is due when the integral of the rate reaches k. */
        double due = rh_arrivals_by(ph, f, tn, run->capacity);
        for (int guard = 0; (double)(run->arrived[f] + 1) <= due && guard < 100000; guard++) {
            double at = rh_arrival_time(ph, f, (double)++run->arrived[f], run->capacity);
            arrive(run, f, run->phase_start + (uint64_t)(at * 1e9));
        }
        if (run->stage == STAGE_RUN)
            rh_cur_sec(run)->f[f].target = rh_rate_at(ph, f, tn, run->capacity);
    }
}

/* How long the answers still due may take: a request's timeout, and for a person signing
 * in, the busy page's waits until they give up first (timeout_ms after arriving). */
static uint64_t drain_ns(const struct rh_run *run)
{
    return (uint64_t)run->sc.timeout_ms * 1000000ull * (plays(&run->sc, RH_OIDC) ? 2 : 1);
}

static void on_tick(uv_timer_t *t)
{
    struct rh_run *run = t->data;
    if (run->stage == STAGE_CALIBRATE) {
        send_due(run, uv_hrtime());
        return;
    }
    if (run->stage != STAGE_RUN && run->stage != STAGE_DRAIN)
        return;
    uint64_t now = uv_hrtime();
    /* second boundaries (during the drain too, so late answers land somewhere) */
    while (now >= run->t_start + (uint64_t)run->nsec * 1000000000ull && !run->nomem) {
        close_second(run);
        open_second(run, run->t_start + (uint64_t)run->nsec * 1000000000ull);
    }
    if (run->stage == STAGE_DRAIN) {
        if (run->inflight == 0 || now > run->drain_end) {
            uv_timer_stop(t);
            uv_idle_stop(&run->spin_idle);
            close_second(run);
            stage_next(run);
        }
        return;
    }
    for (;;) {
        if (run->stopping) {
            run->stage = STAGE_DRAIN;
            run->drain_end = now + drain_ns(run);
            return;
        }
        send_due(run, now); /* up to the phase's end at most */
        if (now < run->phase_end)
            return;
        if (run->phase + 1 >= (int)run->sc.nphases) {
            uv_timer_stop(t);
            run->stage = STAGE_DRAIN;
            run->drain_end = now + drain_ns(run);
            uv_timer_start(t, on_tick, 1, 1);
            return;
        }
        run->phase_start = run->phase_end;
        run->phase++;
        run->phase_end = run->phase_start + (uint64_t)(run->sc.phase[run->phase].duration_s * 1e9);
        memset(run->arrived, 0, sizeof(run->arrived));
        rh_cur_sec(run)->phase = run->phase;
    }
}

/* --spin: look at the clock on every loop turn instead of every millisecond, so arrivals
 * leave within microseconds of their time (the generator then needs a core of its own). */
static void on_spin(uv_idle_t *h)
{
    struct rh_run *run = h->data;
    on_tick(&run->tick);
}

/* ---- stages --------------------------------------------------------------------------- */

static void start_phases(struct rh_run *run)
{
    uint64_t now = uv_hrtime();
    run->stage = STAGE_RUN;
    run->t_start = run->phase_start = now;
    run->wall_start = time(NULL);
    run->phase = 0;
    run->phase_end = now + (uint64_t)(run->sc.phase[0].duration_s * 1e9);
    memset(run->arrived, 0, sizeof(run->arrived));
    open_second(run, now);
    uv_timer_start(&run->tick, on_tick, 1, 1);
    if (run->spin)
        uv_idle_start(&run->spin_idle, on_spin);
}

static void start_cleanup(struct rh_run *run)
{
    char path[128];
    run->stage = STAGE_CLEANUP;
    run->cleanup_pending = 1; /* held until everything is queued */
    if (!run->keep) {
        for (size_t i = 0; i < run->nusers; i++) {
            if (!run->users[i].created)
                continue;
            snprintf(path, sizeof(path), "/admin/users/%s", run->users[i].name);
            admin_request(run, "DELETE", path, NULL, on_cleanup, i, &run->cleanup_pending);
        }
        for (size_t i = 0; i < run->nreg; i++) {
            snprintf(path, sizeof(path), "/admin/users/%sr%zu", run->prefix, run->registered[i]);
            admin_request(run, "DELETE", path, NULL, on_cleanup, i, &run->cleanup_pending);
        }
        if (run->client_id[0]) {
            snprintf(path, sizeof(path), "/admin/clients/%s", run->client_id);
            admin_request(run, "DELETE", path, NULL, on_cleanup, 0, &run->cleanup_pending);
        }
        if (run->web_client_id[0]) {
            snprintf(path, sizeof(path), "/admin/clients/%s", run->web_client_id);
            admin_request(run, "DELETE", path, NULL, on_cleanup, 0, &run->cleanup_pending);
        }
    }
    cleanup_done_one(run);
}

static void stage_next(struct rh_run *run)
{
    if (run->failed && run->stage < STAGE_CLEANUP) {
        start_cleanup(run);
        return;
    }
    if (run->stopping && run->stage < STAGE_RUN) {
        start_cleanup(run);
        return;
    }
    switch (run->stage) {
    case STAGE_CLIENT: {
        char body[400];
        run->stage = STAGE_USERS;
        run->pending = 1;
        for (size_t i = 0; i < run->nusers; i++) {
            snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}",
                     run->users[i].name, run->users[i].pw);
            admin_request(run, "POST", "/admin/users", body, on_user, i, &run->pending);
        }
        setup_done_one(run);
        break;
    }
    case STAGE_USERS:
        run->stage = STAGE_LOGINS;
        if (!run->quiet)
            fprintf(stderr, "rehearse: %zu synthetic users created%s\n", run->nusers,
                    needs_tokens(&run->sc) ? "; first logins" : "");
        run->pending = 1;
        for (size_t i = 0; i < run->nusers && needs_tokens(&run->sc); i++) {
            if (build_login(run, &run->setup_pub, &run->users[i]))
                continue;
            run->pending++;
            send_built(run, &run->setup_pub, -1, on_setup_login, i, 0, 0);
        }
        setup_done_one(run);
        break;
    case STAGE_LOGINS:
        run->stage = STAGE_CALIBRATE;
        if (run->capacity <= 0 && rh_scenario_uses_x(&run->sc)) {
            if (!run->quiet)
                fprintf(stderr,
                        "rehearse: measuring the login capacity for %.0f s (%d "
                        "logins in flight)\n",
                        run->sc.calibrate_s, CALIBRATE_CONNS);
            run->calib_start = uv_hrtime();
            run->calib_end = run->calib_start + (uint64_t)(run->sc.calibrate_s * 1e9);
            if (run->sc.calibrate_with >= 0) {
                /* the other flows of that phase, at their starting rates, around the
                 * measurement: the capacity left for logins in that traffic mix */
                const struct rh_phase *bg = &run->sc.phase[run->sc.calibrate_with];
                memset(&run->background, 0, sizeof(run->background));
                run->background.duration_s = run->sc.calibrate_s;
                for (int f = 0; f < RH_NFLOWS; f++)
                    if (f != RH_LOGIN && !bg->rate[f].from_x)
                        run->background.rate[f].from = run->background.rate[f].to =
                            bg->rate[f].from;
                run->phase_start = run->calib_start;
                memset(run->arrived, 0, sizeof(run->arrived));
                uv_timer_start(&run->tick, on_tick, 1, 1);
                if (!run->quiet)
                    fprintf(stderr, "rehearse: with the other flows of phase '%s' running\n",
                            bg->name);
            }
            run->pending = CALIBRATE_CONNS;
            for (int i = 0; i < CALIBRATE_CONNS; i++)
                calib_send(run);
            break;
        }
        /* nothing to measure */
        __attribute__((fallthrough));
    case STAGE_CALIBRATE:
        if (run->calib_end) {
            run->capacity = (double)run->calib_ok / run->sc.calibrate_s;
            run->calibrated = true;
            if (!run->quiet)
                fprintf(stderr, "rehearse: login capacity %.1f/s (%llu answered otherwise)\n",
                        run->capacity, (unsigned long long)run->calib_other);
            if (run->capacity <= 0) {
                setup_fail(run, "measuring the login capacity (no login succeeded)", 0, NULL, 0);
                return;
            }
        }
        uv_timer_stop(&run->tick);
        rh_pool_close_idle(&run->setup_pub);
        rh_pool_close_idle(&run->calib);
        if (!run->quiet)
            fprintf(stderr, "rehearse: playing %u phases\n", run->sc.nphases);
        start_phases(run);
        break;
    case STAGE_RUN:
    case STAGE_DRAIN:
        run->t_end = uv_hrtime();
        start_cleanup(run);
        break;
    case STAGE_CLEANUP:
        run->stage = STAGE_DONE;
        rh_pool_close_idle(&run->admin);
        rh_pool_close_idle(&run->pub);
        rh_pool_close_idle(&run->probe);
        rh_pool_close_idle(&run->setup_pub);
        rh_pool_close_idle(&run->calib);
        uv_close((uv_handle_t *)&run->tick, NULL);
        uv_close((uv_handle_t *)&run->spin_idle, NULL);
        uv_close((uv_handle_t *)&run->later_timer, NULL);
        while (run->later) { /* retries the clean-up overtook */
            struct rh_req *q = run->later;
            run->later = q->next;
            free(q);
        }
        uv_close((uv_handle_t *)&run->sigint, NULL);
        break;
    default:
        break;
    }
}

static void on_sigint(uv_signal_t *s, int sig)
{
    struct rh_run *run = s->data;
    (void)sig;
    if (run->stopping) /* twice: give up at once */
        exit(130);
    fprintf(stderr, "rehearse: interrupted; finishing the report (Ctrl-C again to quit)\n");
    run->stopping = true;
}

/* ---- entry ---------------------------------------------------------------------------- */

int rh_run(struct rh_run *run, const char *target, const char *admin, char *err, size_t cap)
{
    rh_http_init();
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one descriptor per connection */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    run->loop = &run->loop_storage;
    uv_loop_init(run->loop);
    buf_init(&run->scratch, 1 << 16);
    if (rh_pool_init(run, &run->pub, target, run->sc.connections, err, cap) ||
        rh_pool_init(run, &run->setup_pub, target, SETUP_CONNS, err, cap) ||
        rh_pool_init(run, &run->calib, target, CALIBRATE_CONNS, err, cap) ||
        rh_pool_init(run, &run->probe, admin, 1, err, cap) ||
        rh_pool_init(run, &run->admin, admin, SETUP_CONNS, err, cap)) {
        uv_loop_close(run->loop);
        buf_fini(&run->scratch);
        return ERR_INVAL;
    }
    char tag[9];
    random_text(tag, 6);
    for (char *c = tag; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    snprintf(run->prefix, sizeof(run->prefix), "rehearse-%s-", tag);
    for (size_t i = 0; i < run->nusers; i++) {
        struct rh_user *u = &run->users[i];
        snprintf(u->name, sizeof(u->name), "%su%zu", run->prefix, i);
        random_text(u->pw, 20);
        rh_synthetic_ip(i, u->ip, sizeof(u->ip));
    }
    uv_timer_init(run->loop, &run->tick);
    run->tick.data = run;
    uv_idle_init(run->loop, &run->spin_idle);
    run->spin_idle.data = run;
    uv_timer_init(run->loop, &run->later_timer);
    run->later_timer.data = run;
    uv_signal_init(run->loop, &run->sigint);
    run->sigint.data = run;
    uv_signal_start(&run->sigint, on_sigint, SIGINT);
    uv_unref((uv_handle_t *)&run->sigint);

    run->stage = STAGE_CLIENT;
    run->pending = 0;
    char body[200];
    snprintf(body, sizeof(body),
             "{\"name\":\"%sclient\",\"grants\":[\"client_credentials\"],\"access_ttl\":3600,"
             "\"introspection\":true}", /* it introspects the synthetic users' tokens */
             run->prefix);
    admin_request(run, "POST", "/admin/clients", body, on_client, 0, &run->pending);
    if (plays(&run->sc, RH_OIDC)) {
        char web[300];
        snprintf(web, sizeof(web),
                 "{\"name\":\"%sweb\",\"grants\":[\"authorization_code\"],\"first_party\":true,"
                 "\"redirect_uris\":[\"" OIDC_CB "\"]}",
                 run->prefix);
        admin_request(run, "POST", "/admin/clients", web, on_web_client, 0, &run->pending);
    }
    if (!run->quiet)
        fprintf(stderr, "rehearse: creating a client and %zu synthetic users (%s*)\n", run->nusers,
                run->prefix);
    uv_run(run->loop, UV_RUN_DEFAULT);
    if (run->stage != STAGE_DONE)
        snprintf(err, cap, "stopped early");
    uv_loop_close(run->loop);
    buf_fini(&run->scratch);
    return run->nomem ? ERR_NOMEM : run->failed ? ERR_BACKEND : 0;
}
