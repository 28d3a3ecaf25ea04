/* SPDX-License-Identifier: MIT */
/* The rehearsal's oidc flow: a person signing in through a browser (the login page, its
 * form, the code exchanged), step by step on the run's connection pools (rh_run.c plays
 * the arrivals). */
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

enum { SIGNIN_PAGE, SIGNIN_FORM, SIGNIN_EXCHANGE };

/* One person's sign-in: the login page (a CSRF cookie and token), its form posted (the
 * password hashed; a redirect with a code, or the busy page that posts again by itself
 * after Retry-After plus a random part, as a browser would), the code exchanged for tokens
 * by the app. Ends at the tokens, at an answer no browser would go on from, or when a
 * refused step finds timeout_ms gone since the arrival. */
struct rh_signin {
    struct rh_run *run;
    uv_timer_t timer; /* the busy page's wait */
    bool timer_used;
    uint64_t arrival, give_up, sent; /* ns */
    size_t user;
    int phase; /* of the arrival; -1: not recorded (calibration) */
    int step;
    char verifier[48];
    char challenge[48];
    char ip[20]; /* a crowd is many people: one address each (198.18.0.0/15) */
    char cookie[256];
    char csrf[96];
    char code[2400]; /* (a sealed code: up to 2,300 characters) */
};

static void signin_send(struct rh_signin *s);

static void signin_free(uv_handle_t *h)
{
    free(h->data);
}

static void signin_release(struct rh_signin *s)
{
    if (s->timer_used)
        uv_close((uv_handle_t *)&s->timer, signin_free);
    else
        free(s);
}

static struct rh_flowstat *signin_stat(struct rh_run *run, const struct rh_signin *s)
{
    return s->phase >= 0 ? &run->stat[s->phase][RH_OIDC] : NULL;
}

/* Each answer of a step: 503s and 429s by second, the shed latency, the form's latency. */
static void signin_answer(struct rh_run *run, struct rh_signin *s, int status)
{
    struct rh_flowstat *fs = signin_stat(run, s);
    struct rh_sec *sec = rh_cur_sec(run);
    uint64_t us = (uv_hrtime() - s->sent) / 1000;
    if (!fs || status == ST_DROPPED)
        return;
    if (status == 503)
        rh_hist_record(&fs->shed, us);
    if (s->step == SIGNIN_FORM && status != 503 && status != 429) /* (a hash's answers) */
        rh_hist_record(&fs->lat, us);
    if (sec && run->stage >= STAGE_RUN) {
        if (status == 503)
            sec->f[RH_OIDC].s503++;
        else if (status == 429)
            sec->f[RH_OIDC].s429++;
        if (s->step == SIGNIN_FORM)
            rh_hist_record(&run->live[RH_OIDC], us);
    }
}

/* The sign-in ended with `status` (200: signed in). */
static void signin_end(struct rh_run *run, struct rh_signin *s, int status)
{
    struct rh_flowstat *fs = signin_stat(run, s);
    struct rh_sec *sec = rh_cur_sec(run);
    run->inflight--;
    if (fs) {
        /* (a redirect without a code counts as a 5xx: the server erred) */
        rh_count(fs, status >= 300 && status < 400 ? 500 : status);
        if (status == 200)
            rh_hist_record(&fs->signin, (uv_hrtime() - s->arrival) / 1000);
        if (sec && run->stage >= STAGE_RUN) {
            if (status == 200)
                sec->f[RH_OIDC].ok++;
            else if (status != 503 && status != 429)
                sec->f[RH_OIDC].other++;
        }
    }
    signin_release(s);
}

static void on_signin_wait(uv_timer_t *t)
{
    struct rh_signin *s = t->data;
    if (s->run->stage >= STAGE_CLEANUP || s->run->stopping) {
        signin_end(s->run, s, ST_TIMEOUT);
        return;
    }
    if (s->step == SIGNIN_FORM && s->phase >= 0)
        s->run->stat[s->phase][RH_OIDC].retries++;
    signin_send(s);
}

/* The value of `name="csrf" value="..."` in the login page. */
static bool page_csrf(const char *body, size_t len, char *out, size_t cap)
{
    static const char mark[] = "name=\"csrf\" value=\"";
    const char *p = memmem(body, len, mark, sizeof(mark) - 1);
    if (!p)
        return false;
    p += sizeof(mark) - 1;
    const char *end = memchr(p, '"', len - (size_t)(p - body));
    if (!end || (size_t)(end - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return true;
}

/* The code in the redirect's Location (…?code=X&state=…). */
static bool location_code(const char *loc, char *out, size_t cap)
{
    const char *p = strstr(loc, "?code=");
    if (!p)
        p = strstr(loc, "&code=");
    if (!p || strncmp(loc, OIDC_CB, sizeof(OIDC_CB) - 1) != 0)
        return false;
    p += 6;
    size_t n = strcspn(p, "&#");
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void on_signin(struct rh_run *run, struct rh_req *q, int status, const char *body,
                      size_t len)
{
    struct rh_signin *s = q->ctx;
    const struct rh_answer *a = run->answer;
    signin_answer(run, s, status);
    if ((status == 503 || status == 429) && run->stage < STAGE_CLEANUP && !run->stopping) {
        /* the busy page: Retry-After, plus up to half again at random (web.c's page) */
        int ra = a && a->retry_after > 0 ? a->retry_after : 1;
        uint64_t wait_ms = (uint64_t)ra * 1000 + randombytes_uniform((uint32_t)(ra / 2 + 1) * 1000);
        if (uv_hrtime() + wait_ms * 1000000ull < s->give_up) {
            if (!s->timer_used) {
                uv_timer_init(run->loop, &s->timer);
                s->timer.data = s;
                s->timer_used = true;
            }
            uv_timer_start(&s->timer, on_signin_wait, wait_ms, 0);
            return;
        }
    }
    if (s->step == SIGNIN_PAGE && status == 200) {
        if (!a || !a->cookie[0] || !page_csrf(body, len, s->csrf, sizeof(s->csrf))) {
            signin_end(run, s, 500); /* a login page without its CSRF token and cookie */
            return;
        }
        snprintf(s->cookie, sizeof(s->cookie), "%s", a->cookie);
        s->step = SIGNIN_FORM;
        signin_send(s);
    } else if (s->step == SIGNIN_FORM && status == 303) {
        if (!a || !location_code(a->location, s->code, sizeof(s->code))) {
            signin_end(run, s, 502); /* redirected, but not with a code */
            return;
        }
        s->step = SIGNIN_EXCHANGE;
        signin_send(s);
    } else {
        signin_end(run, s, status); /* 200 after the exchange: signed in */
    }
}

/* Sends the sign-in's current step. */
static void signin_send(struct rh_signin *s)
{
    struct rh_run *run = s->run;
    struct rh_user *u = &run->users[s->user];
    char path[1024], hdr[800], body[4096];
    int rc;
    if (s->step == SIGNIN_PAGE) {
        snprintf(path, sizeof(path),
                 "/oauth2/authorize?response_type=code&client_id=%s&redirect_uri=%s"
                 "&scope=openid&state=s&nonce=n&code_challenge=%s&code_challenge_method=S256",
                 run->web_client_id, OIDC_CB_ENC, s->challenge);
        snprintf(hdr, sizeof(hdr), "X-Forwarded-For: %s\r\n", s->ip);
        rc = rh_build(&run->scratch, &run->pub, "GET", path, hdr, NULL, NULL);
    } else if (s->step == SIGNIN_FORM) {
        snprintf(hdr, sizeof(hdr), "X-Forwarded-For: %s\r\nCookie: %s\r\n", s->ip, s->cookie);
        snprintf(body, sizeof(body),
                 "response_type=code&client_id=%s&redirect_uri=%s"
                 "&scope=openid&state=s&nonce=n&code_challenge=%s&code_challenge_method=S256"
                 "&csrf=%s&username=%s&password=%s",
                 run->web_client_id, OIDC_CB_ENC, s->challenge, s->csrf, u->name, u->pw);
        rc = rh_build(&run->scratch, &run->pub, "POST", "/oauth2/login", hdr,
                      "application/x-www-form-urlencoded", body);
    } else {
        snprintf(hdr, sizeof(hdr), "Authorization: Basic %s\r\n", run->web_basic);
        snprintf(body, sizeof(body),
                 "grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s", s->code,
                 OIDC_CB_ENC, s->verifier);
        rc = rh_build(&run->scratch, &run->pub, "POST", "/oauth2/token", hdr,
                      "application/x-www-form-urlencoded", body);
    }
    struct rh_req *q = rc ? NULL : rh_req_new(RH_OIDC, on_signin, &run->scratch);
    if (!q) {
        run->nomem = true;
        signin_end(run, s, ST_ERROR);
        return;
    }
    s->sent = uv_hrtime();
    q->ctx = s;
    q->t0 = s->step == SIGNIN_PAGE ? s->arrival : s->sent;
    q->phase = s->phase;
    rh_pool_submit(&run->pub, q);
}

/* A person arrives at t0 to sign in as user `idx`. */
void rh_signin_start(struct rh_run *run, size_t idx, uint64_t t0, bool rec)
{
    struct rh_signin *s = calloc(1, sizeof(*s));
    uint8_t raw[32], h[crypto_hash_sha256_BYTES];
    if (!s) {
        run->nomem = true;
        return;
    }
    s->run = run;
    s->user = idx;
    s->arrival = t0;
    s->give_up = t0 + (uint64_t)run->sc.timeout_ms * 1000000ull;
    s->phase = rec ? run->phase : -1;
    rh_synthetic_ip(run->nusers + run->person_seq++ % (131072 - run->nusers), s->ip, sizeof(s->ip));
    randombytes_buf(raw, sizeof(raw)); /* PKCE (RFC 7636): the verifier and its S256 */
    sodium_bin2base64(s->verifier, sizeof(s->verifier), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(h, (const uint8_t *)s->verifier, strlen(s->verifier));
    sodium_bin2base64(s->challenge, sizeof(s->challenge), h, sizeof(h),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    run->inflight++;
    signin_send(s);
}
