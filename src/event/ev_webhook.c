/* SPDX-License-Identifier: MIT */
/*
 * Webhook sink: libcurl's multi interface on the dispatcher's libuv loop (curl tells us
 * which sockets to watch and when to time out; uv_poll and uv_timer do the watching).
 *
 * Each endpoint has a bounded queue and a bound on deliveries in flight. Events are batched:
 * what an endpoint is due within one dispatcher cycle (20 ms), up to `webhook_batch`, goes
 * in one POST whose body is a JSON array of events, with
 *   Floodgate-Delivery-Id: <id>         (the same on every retry of this batch)
 *   Floodgate-Event-Count: <n>
 *   Floodgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * so a receiver can check the origin and refuse old timestamps (replays), and de-duplicate
 * on each event's id. One POST per event cost more CPU than the request that made the
 * event (bench/events.py); a batch makes a webhook's cost per event a memcpy. A 2xx answer
 * delivers it; anything else (status, connection error, timeout) is retried after
 * backoff × 2^(attempt-1), jittered by ±50 %, up to `webhook_retries` times; then it goes
 * to the dead-letter file as one JSON line. At least once: an event leaves only delivered
 * or dead-lettered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/queue.h"
#include "core/version.h"
#include "event/ev_int.h"

#define PUMP_MS        50
#define BATCH_BYTES    (256 * 1024)
#define MAX_BACKOFF_MS (10 * 60 * 1000)

struct delivery;

struct hook {
    char name[64];
    char url[CFG_STR_MAX];
    char secret[256];
    uint32_t mask;
    unsigned inflight;
    struct delivery *qhead, *qtail;
    unsigned qlen;
    struct buf open; /* the batch being filled: "[ev,ev" */
    unsigned open_n;
};

struct delivery {
    struct delivery *next;
    struct delivery *fly_next; /* the list of deliveries in flight */
    struct hook *hook;
    unsigned nevents;
    unsigned attempt;
    uint64_t not_before; /* uv_now, ms */
    char id[24];
    CURL *easy;
    struct curl_slist *hdrs;
    char err[CURL_ERROR_SIZE];
    size_t len;
    char body[];
};

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct ev_hooks *h;
};

struct ev_hooks {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t curl_timer, pump_timer, stop_timer;
    struct hook hook[CFG_HOOKS_MAX + 3];
    unsigned n;
    uint32_t mask;
    unsigned timeout_ms, retries, backoff_ms, inflight_max, queue_max, batch_max;
    char dead_path[CFG_STR_MAX + 32];
    FILE *dead;
    int stopping, stopped;
    struct delivery *flying;
    void (*done)(void *);
    void *done_arg;
};

/* ---- dead letters ---------------------------------------------------------------------- */

static void dead_letter(struct ev_hooks *h, struct delivery *d, const char *why)
{
    char ts[32];
    ev_count(EV_M_HOOK_DEAD, d->nevents);
    if (!h->dead && !(h->dead = log_fopen_private(h->dead_path))) {
        log_kv(LOG_ERROR, "cannot open the dead-letter file; event lost", "path", h->dead_path,
               "event_id", d->id, LOG_END);
        free(d);
        return;
    }
    log_timestamp(ts);
    fprintf(h->dead,
            "{\"time\":\"%s\",\"endpoint\":\"%s\",\"delivery_id\":\"%s\",\"attempts\":%u,"
            "\"error\":\"",
            ts, d->hook->name, d->id, d->attempt);
    for (const char *p = why; *p; p++) /* our own text or curl's: escape quotes and controls */
        if (*p == '"' || *p == '\\')
            fprintf(h->dead, "\\%c", *p);
        else if ((unsigned char)*p >= 0x20)
            fputc(*p, h->dead);
    fprintf(h->dead, "\",\"events\":%.*s}\n", (int)d->len, d->body);
    fflush(h->dead);
    char n[16];
    snprintf(n, sizeof(n), "%u", d->nevents);
    log_kv(LOG_WARN, "webhook delivery given up (dead-lettered)", "endpoint", d->hook->name,
           "delivery_id", d->id, "events", n, "error", why, LOG_END);
    free(d);
}

/* ---- curl on libuv --------------------------------------------------------------------- */

static void start(struct ev_hooks *h, struct delivery *d);
static void pump(struct ev_hooks *h);
static void maybe_stopped(struct ev_hooks *h);

static void unfly(struct ev_hooks *h, struct delivery *d)
{
    for (struct delivery **pp = &h->flying; *pp; pp = &(*pp)->fly_next)
        if (*pp == d) {
            *pp = d->fly_next;
            break;
        }
}

/* Appends a delivery to its endpoint's queue. */
static void enqueue(struct hook *k, struct delivery *d)
{
    QUEUE_APPEND(k->qhead, k->qtail, d, next);
    k->qlen++;
}

static void finish(struct ev_hooks *h, struct delivery *d, CURLcode res, long status)
{
    char why[CURL_ERROR_SIZE + 64];
    unfly(h, d);
    d->hook->inflight--;
    if (res == CURLE_OK && status >= 200 && status < 300) {
        ev_count(EV_M_HOOK_DELIVERED, d->nevents);
        free(d);
        return;
    }
    if (res != CURLE_OK)
        snprintf(why, sizeof(why), "%s", d->err[0] ? d->err : curl_easy_strerror(res));
    else
        snprintf(why, sizeof(why), "HTTP %ld", status);
    if (h->stopping || d->attempt > h->retries) {
        dead_letter(h, d, why);
        return;
    }
    ev_count(EV_M_HOOK_RETRIED, d->nevents);
    /* retry: backoff x 2^(attempt-1), jittered to 50..150 % so receivers are not hit in
     * lockstep */
    uint64_t delay = h->backoff_ms;
    for (unsigned i = 1; i < d->attempt && delay < MAX_BACKOFF_MS; i++)
        delay *= 2;
    if (delay > MAX_BACKOFF_MS)
        delay = MAX_BACKOFF_MS;
    delay = delay / 2 + randombytes_uniform((uint32_t)delay + 1);
    d->not_before = uv_now(h->loop) + delay;
    enqueue(d->hook, d);
}

static void check_done(struct ev_hooks *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode res = m->data.result;
        struct delivery *d = NULL;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&d);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(h->multi, easy);
        curl_easy_cleanup(easy);
        curl_slist_free_all(d->hdrs);
        d->easy = NULL;
        d->hdrs = NULL;
        finish(h, d, res, status);
    }
    pump(h);
    maybe_stopped(h);
}

static void on_sock_closed(uv_handle_t *hd)
{
    free(hd->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = p->data;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(s->h->multi, s->fd, flags, &running);
    check_done(s->h);
}

static int on_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct ev_hooks *h = userp;
    struct sock *s = socketp;
    (void)easy;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->h = h;
        if (uv_poll_init_socket(h->loop, &s->poll, fd)) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(h->multi, fd, s);
    }
    int ev = 0;
    if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    struct ev_hooks *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    struct ev_hooks *h = userp;
    (void)multi;
    if (ms < 0)
        uv_timer_stop(&h->curl_timer);
    else
        uv_timer_start(&h->curl_timer, on_curl_timeout, (uint64_t)ms, 0);
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static void start(struct ev_hooks *h, struct delivery *d)
{
    struct hook *k = d->hook;
    char hdr[256], sig[crypto_auth_hmacsha256_BYTES * 2 + 1], ts[24];
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    d->attempt++;
    d->err[0] = 0;
    k->inflight++; /* from here every path ends in finish() */
    d->fly_next = h->flying;
    h->flying = d;
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)k->secret, strlen(k->secret));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)d->body, d->len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(sig, sizeof(sig), mac, sizeof(mac));

    d->easy = curl_easy_init();
    if (!d->easy) {
        finish(h, d, CURLE_OUT_OF_MEMORY, 0);
        return;
    }
    d->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    d->hdrs = curl_slist_append(d->hdrs, "User-Agent: floodgate/" FG_VERSION);
    d->hdrs = curl_slist_append(d->hdrs, "Expect:"); /* no 100-continue round trip */
    snprintf(hdr, sizeof(hdr), "Floodgate-Delivery-Id: %s", d->id);
    d->hdrs = curl_slist_append(d->hdrs, hdr);
    snprintf(hdr, sizeof(hdr), "Floodgate-Event-Count: %u", d->nevents);
    d->hdrs = curl_slist_append(d->hdrs, hdr);
    snprintf(hdr, sizeof(hdr), "Floodgate-Signature: t=%s,v1=%s", ts, sig);
    d->hdrs = curl_slist_append(d->hdrs, hdr);
    curl_easy_setopt(d->easy, CURLOPT_URL, k->url);
    curl_easy_setopt(d->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->hdrs);
    curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, (const char *)d->body);
    curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE, (long)d->len);
    curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(d->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(d->easy, CURLOPT_PRIVATE, d);
    curl_easy_setopt(d->easy, CURLOPT_ERRORBUFFER, d->err);
    curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, discard);
    if (curl_multi_add_handle(h->multi, d->easy) != CURLM_OK) {
        curl_easy_cleanup(d->easy);
        curl_slist_free_all(d->hdrs);
        d->easy = NULL;
        d->hdrs = NULL;
        finish(h, d, CURLE_FAILED_INIT, 0);
    }
}

/* Starts what is due, within each endpoint's bound. */
static void pump(struct ev_hooks *h)
{
    uint64_t now = uv_now(h->loop);
    if (h->stopping)
        return;
    for (unsigned i = 0; i < h->n; i++) {
        struct hook *k = &h->hook[i];
        struct delivery **pp = &k->qhead, *prev = NULL;
        while (*pp && k->inflight < h->inflight_max) {
            struct delivery *d = *pp;
            if (d->not_before > now) {
                prev = d;
                pp = &d->next;
                continue;
            }
            *pp = d->next;
            if (k->qtail == d)
                k->qtail = prev;
            k->qlen--;
            d->next = NULL;
            start(h, d);
        }
    }
}

static void on_pump(uv_timer_t *t)
{
    pump(t->data);
}

/* ---- interface ------------------------------------------------------------------------- */

static int add_hook(struct ev_hooks *h, const char *name, const char *url, const char *secret,
                    const char *events, char *err, size_t errcap)
{
    struct hook *k = &h->hook[h->n];
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errcap, "webhook %s: '%s' is not an http:// or https:// URL", name, url);
        return ERR_INVAL;
    }
    if (strlen(secret) < 16 || strlen(secret) >= sizeof(k->secret)) {
        snprintf(err, errcap,
                 "webhook %s: a secret of 16..255 characters is required (receivers check the "
                 "signature with it)",
                 name);
        return ERR_INVAL;
    }
    if (ev_mask_parse(events, &k->mask)) {
        snprintf(err, errcap, "webhook %s: events '%s': unknown event name", name, events);
        return ERR_INVAL;
    }
    snprintf(k->name, sizeof(k->name), "%s", name);
    snprintf(k->url, sizeof(k->url), "%s", url);
    snprintf(k->secret, sizeof(k->secret), "%s", secret);
    h->mask |= k->mask;
    h->n++;
    return ERR_OK;
}

int ev_hooks_new(uv_loop_t *loop, const struct cfg *c, struct ev_hooks **out, char *err,
                 size_t errcap)
{
    struct ev_hooks *h = calloc(1, sizeof(*h));
    int rc = ERR_OK;

    *out = NULL;
    if (!h)
        return ERR_NOMEM;
    if (c->webhook[0])
        rc = add_hook(h, "webhook", c->webhook, c->webhook_secret, c->webhook_events, err, errcap);
    for (unsigned i = 0; rc == ERR_OK && i < c->nhooks; i++)
        rc = add_hook(h, c->hooks[i].name, c->hooks[i].url, c->hooks[i].secret, c->hooks[i].events,
                      err, errcap);
    /* reactions: the autoscaler hears of modes and recommendations, the notifier of locks */
    if (rc == ERR_OK && c->autoscaler_webhook[0])
        rc = add_hook(h, "autoscaler", c->autoscaler_webhook, c->autoscaler_secret,
                      "policy.mode_changed,scale.recommendation", err, errcap);
    if (rc == ERR_OK && c->notify_webhook[0])
        rc = add_hook(h, "notify", c->notify_webhook, c->notify_secret,
                      "account.locked,token.reuse_detected", err, errcap);
    if (rc || h->n == 0) {
        free(h);
        return rc;
    }
    h->loop = loop;
    h->timeout_ms = c->webhook_timeout_ms;
    h->retries = c->webhook_retries;
    h->backoff_ms = c->webhook_backoff_ms;
    h->inflight_max = c->webhook_inflight;
    h->queue_max = c->webhook_queue;
    h->batch_max = c->webhook_batch;
    for (unsigned i = 0; i < h->n; i++)
        buf_init(&h->hook[i].open, BATCH_BYTES + EV_MAX_BYTES + 2);
    if (c->dead_letter[0])
        snprintf(h->dead_path, sizeof(h->dead_path), "%s", c->dead_letter);
    else
        snprintf(h->dead_path, sizeof(h->dead_path), "%s/dead-letter.jsonl", c->data_dir);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* main thread, before any other thread uses curl */
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        return ERR_NOMEM;
    }
    /* keep a connection per delivery that may be in flight: the default cache shrinks with
     * the easy handles alive, and a new TCP connection per POST cost more than the POST */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(h->n * h->inflight_max));
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    uv_timer_init(loop, &h->curl_timer);
    uv_timer_init(loop, &h->pump_timer);
    uv_timer_init(loop, &h->stop_timer);
    h->curl_timer.data = h->pump_timer.data = h->stop_timer.data = h;
    uv_timer_start(&h->pump_timer, on_pump, PUMP_MS, PUMP_MS);
    *out = h;
    return ERR_OK;
}

uint32_t ev_hooks_mask(const struct ev_hooks *h)
{
    return h->mask;
}

/* Closes an endpoint's open batch into a delivery. */
static void close_batch(struct ev_hooks *h, struct hook *k)
{
    if (!k->open_n)
        return;
    struct delivery *d = malloc(sizeof(*d) + k->open.len + 2);
    if (!d) {
        log_kv(LOG_ERROR, "out of memory: webhook batch lost", "endpoint", k->name, LOG_END);
    } else {
        uint8_t rnd[12];
        memset(d, 0, sizeof(*d));
        d->hook = k;
        d->nevents = k->open_n;
        memcpy(d->body, k->open.p, k->open.len);
        d->body[k->open.len] = ']';
        d->len = k->open.len + 1;
        d->body[d->len] = 0;
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2base64(d->id, sizeof(d->id), rnd, sizeof(rnd),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        if (h->stopping || k->qlen >= h->queue_max) {
            dead_letter(h, d, h->stopping ? "stopping" : "queue full");
        } else {
            enqueue(k, d);
        }
    }
    buf_reset(&k->open);
    k->open_n = 0;
}

void ev_hooks_deliver(struct ev_hooks *h, enum ev_type t, const char *json, size_t len)
{
    for (unsigned i = 0; i < h->n; i++) {
        struct hook *k = &h->hook[i];
        if (!(k->mask & (1u << t)))
            continue;
        if (k->open_n && k->open.len + len + 2 > BATCH_BYTES)
            close_batch(h, k);
        if (buf_puts(&k->open, k->open_n ? "," : "[") || buf_append(&k->open, json, len)) {
            log_kv(LOG_ERROR, "out of memory: webhook event lost", LOG_END);
            continue;
        }
        if (++k->open_n >= h->batch_max)
            close_batch(h, k);
    }
}

void ev_hooks_flush(struct ev_hooks *h)
{
    for (unsigned i = 0; i < h->n; i++)
        close_batch(h, &h->hook[i]);
    pump(h);
}

static void on_stop_closed(uv_handle_t *hd)
{
    struct ev_hooks *h = hd->data;
    if (++h->stopped == 3 && h->done)
        h->done(h->done_arg);
}

static void finish_stop(struct ev_hooks *h)
{
    if (h->stopping == 2)
        return;
    h->stopping = 2;
    uv_close((uv_handle_t *)&h->curl_timer, on_stop_closed);
    uv_close((uv_handle_t *)&h->pump_timer, on_stop_closed);
    uv_close((uv_handle_t *)&h->stop_timer, on_stop_closed);
}

static void maybe_stopped(struct ev_hooks *h)
{
    if (!h->stopping || h->stopping == 2)
        return;
    for (unsigned i = 0; i < h->n; i++)
        if (h->hook[i].inflight)
            return;
    finish_stop(h);
}

/* The grace period is over: what is still in flight is abandoned to the dead letters. */
static void on_stop_timeout(uv_timer_t *t)
{
    struct ev_hooks *h = t->data;
    while (h->flying) {
        struct delivery *d = h->flying;
        h->flying = d->fly_next;
        curl_multi_remove_handle(h->multi, d->easy);
        curl_easy_cleanup(d->easy);
        curl_slist_free_all(d->hdrs);
        d->hook->inflight--;
        dead_letter(h, d, "stopping: delivery in flight abandoned");
    }
    finish_stop(h);
}

void ev_hooks_stop(struct ev_hooks *h, unsigned ms, void (*done)(void *), void *arg)
{
    h->done = done;
    h->done_arg = arg;
    ev_hooks_flush(h);
    h->stopping = 1;
    for (unsigned i = 0; i < h->n; i++) {
        struct hook *k = &h->hook[i];
        while (k->qhead) {
            struct delivery *d = k->qhead;
            k->qhead = d->next;
            dead_letter(h, d, d->attempt ? "stopping before a retry" : "stopping before delivery");
        }
        k->qtail = NULL;
        k->qlen = 0;
    }
    uv_timer_start(&h->stop_timer, on_stop_timeout, ms ? ms : 1, 0);
    maybe_stopped(h);
}

void ev_hooks_free(struct ev_hooks *h)
{
    if (h->multi)
        curl_multi_cleanup(h->multi);
    if (h->dead)
        fclose(h->dead);
    for (unsigned i = 0; i < h->n; i++)
        buf_fini(&h->hook[i].open);
    sodium_memzero(h, sizeof(*h));
    free(h);
}
