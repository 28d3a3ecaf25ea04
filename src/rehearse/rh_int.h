/* SPDX-License-Identifier: MIT */
/* The rehearsal's run state, shared by the engine (rh_run.c) and the report (rh_report.c). */
#ifndef REHEARSE_RH_INT_H
#define REHEARSE_RH_INT_H

#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "core/buf.h"
#include "rehearse/rh.h"
#include "rehearse/rh_hist.h"

struct rh_conn;
struct rh_req;

enum rh_stage {
    STAGE_CLIENT,
    STAGE_USERS,
    STAGE_LOGINS,
    STAGE_CALIBRATE,
    STAGE_RUN,
    STAGE_DRAIN,
    STAGE_CLEANUP,
    STAGE_DONE
};

struct rh_pool {
    struct rh_run *run;
    struct sockaddr_storage addr;
    char host[280];
    unsigned nconns, max;
    struct rh_conn *idle;
    struct rh_req *qhead, *qtail;
    size_t qlen;
};

struct rh_user {
    char name[64];
    char pw[24];
    char ip[20];
    char *refresh; /* the family this user rotates; NULL once lost */
    char *access;
    bool busy; /* a refresh is in flight: never two on one family */
    bool created;
};

/* Per phase and flow. For the oidc flow an arrival is a person signing in: the counts are
 * how each sign-in ended, `lat` the login form's answers (each post), `signin` arrival to
 * tokens, `shed` every 503 of any step, and `retries` the busy page's posts again. */
struct rh_flowstat {
    uint64_t sent, ok, s429, s503, s4xx, s5xx, err, timeout, dropped, skipped, retries;
    struct rh_hist lat;    /* every answer */
    struct rh_hist shed;   /* 503 answers */
    struct rh_hist signin; /* oidc: a completed sign-in, arrival to tokens */
};

/* What the rehearsal reads of an answer's headers (the oidc flow's cookie, redirect and
 * Retry-After); valid while the answer's done callback runs. */
struct rh_answer {
    char cookie[256];    /* the first Set-Cookie's name=value */
    char location[4096]; /* "" if none or longer (a sealed code is up to 2,300) */
    int retry_after;     /* seconds; -1 if none */
};

struct rh_sec_flow {
    double target;
    uint32_t sent, ok, s429, s503, other;
    uint64_t p50_us, p99_us, max_us;
};

struct rh_sec {
    double t;
    int phase;
    int mode;        /* floodgate_policy_mode, -1 if not read */
    int recommended; /* floodgate_scale_recommendation_instances, -1 if not read */
    struct rh_sec_flow f[RH_NFLOWS];
};

struct rh_run {
    struct rh_scenario sc;
    bool quiet, keep, spin;
    const char *admin_token;
    double capacity; /* logins/s: given, or measured */
    bool calibrated;

    /* engine */
    uv_loop_t loop_storage;
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_idle_t spin_idle;
    uv_timer_t later_timer;
    struct rh_req *later; /* set-up requests waiting to be sent again */
    uv_signal_t sigint;
    struct rh_pool pub, setup_pub, calib, probe, admin;
    struct buf scratch;
    enum rh_stage stage;
    size_t pending, cleanup_pending, cleanup_failed;
    bool failed, nomem, stopping;
    unsigned open_conns;
    size_t inflight;
    char prefix[20];
    char client_id[64];
    char basic[512];
    char web_client_id[64]; /* the oidc flow's web app (first-party, a redirect URI) */
    char web_basic[512];
    const struct rh_answer *answer; /* the headers of the answer being handed over */

    struct rh_user *users;
    size_t nusers, cursor, refresh_cursor;
    size_t *registered, nreg, capreg, reg_seq;
    size_t person_seq; /* the oidc flow's people, each from an address of its own */

    uint64_t calib_start, calib_end, calib_ok, calib_other;
    struct rh_phase background; /* played during the calibration (calibrate_with) */

    uint64_t t_start, t_end, phase_start, phase_end, drain_end;
    time_t wall_start;
    int phase;
    uint64_t arrived[RH_NFLOWS];

    struct rh_flowstat (*stat)[RH_NFLOWS]; /* [phase][flow] */
    struct rh_hist live[RH_NFLOWS];        /* the current second */
    struct rh_hist lag;                    /* arrival to write: the generator's own delay */
    struct rh_sec *sec;
    size_t nsec, capsec;
};

/* Plays the scenario (rh_run.c). */
int rh_run(struct rh_run *run, const char *target, const char *admin, char *err, size_t cap);
/* ---- the HTTP client (rh_http.c) ---- */

#define BODY_MAX  (64 * 1024) /* of an answer, kept for the caller */
#define QUEUE_MAX 100000      /* arrivals waiting for a connection, per pool */

/* A request's end, besides an HTTP status: dropped (the queue was full), timed out, or a
 * connection error. */
enum { ST_DROPPED = -2, ST_TIMEOUT = -1, ST_ERROR = 0 };

struct rh_req;
typedef void (*req_done_cb)(struct rh_run *run, struct rh_req *q, int status, const char *body,
                            size_t len);

/* A request's bytes and what to do with its answer; freed after done() ran. */
struct rh_req {
    struct rh_req *next;
    struct rh_pool *later; /* send_later: the pool it waits for */
    req_done_cb done;
    int flow; /* RH_* or -1: not counted */
    int phase;
    size_t idx; /* user, second or try counter, by purpose */
    void *ctx;  /* the oidc flow's sign-in */
    int tries;
    uint64_t t0; /* intended arrival, ns */
    size_t len;
    char bytes[];
};

void rh_http_init(void);
/* A pool of at most `max` connections to "http://host:port" (resolved once). */
int rh_pool_init(struct rh_run *run, struct rh_pool *p, const char *url, unsigned max, char *err,
                 size_t cap);
/* Sends q on an idle connection, a new one, or after the queued ones. */
void rh_pool_submit(struct rh_pool *p, struct rh_req *q);
void rh_pool_close_idle(struct rh_pool *p);
/* A request of the bytes in b, NULL without memory. */
struct rh_req *rh_req_new(int flow, req_done_cb done, const struct buf *b);

/* Writes the JSON result and the HTML report (rh_report.c). */
/* The oidc flow's web app's registered redirect URI (set up by rh_run.c, used by
 * rh_signin.c): never requested (the code is read from the redirect's Location), port 9
 * (discard) on loopback. */
#define OIDC_CB     "http://127.0.0.1:9/cb"
#define OIDC_CB_ENC "http%3A%2F%2F127.0.0.1%3A9%2Fcb"

/* Shared by rh_run.c (the arrivals, the seconds, the stages) and rh_signin.c (the oidc flow):
 * a request into b for pool p; the second being recorded (NULL before the first); the
 * synthetic client address of user i (198.18.0.0/15); a person arriving at t0 to sign in
 * as user idx through the browser flow (rec: counted in the current phase). */
int rh_build(struct buf *b, const struct rh_pool *p, const char *method, const char *path,
             const char *headers, const char *ctype, const char *body);
struct rh_sec *rh_cur_sec(struct rh_run *run);
void rh_synthetic_ip(size_t i, char *out, size_t cap);
void rh_signin_start(struct rh_run *run, size_t idx, uint64_t t0, bool rec);
/* One answer counted in its class: 2xx, 429, 503, other 4xx, 5xx, timed out, never sent,
 * or a transport error. */
void rh_count(struct rh_flowstat *fs, int status);

int rh_report_json(const struct rh_run *run, const char *path, json_t **out);
int rh_report_html(const json_t *result, const char *path);

#endif
