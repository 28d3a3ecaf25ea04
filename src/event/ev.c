/* SPDX-License-Identifier: MIT */
/*
 * Event queues and the dispatcher thread (see ev.h). Producers own a ring each, created on
 * their first event; the dispatcher takes a snapshot of the ring list under a mutex and
 * drains every ring on a 20 ms timer, so a producer never makes a system call to publish.
 */
#include "event/ev.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <uv.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "crypto/cr.h"
#include "event/ev_int.h"
#include "metrics/met_text.h"

#define DRAIN_MS     20
#define MAX_RINGS    256
#define OVERFLOW_MAX 65536

static const char *const type_names[EV_NTYPES] = {
#define EV_X(id, name, prio) name,
    EV_TYPES(EV_X)
#undef EV_X
};
static const enum ev_priority type_prio[EV_NTYPES] = {
#define EV_X(id, name, prio) prio,
    EV_TYPES(EV_X)
#undef EV_X
};

struct ring {
    _Atomic uint64_t head; /* written by the producer */
    _Atomic uint64_t tail; /* written by the dispatcher */
    uint64_t mask;
    struct ev *slot;
};

struct overflow {
    struct overflow *next;
    struct ev e;
};

static struct {
    _Atomic int on;        /* a sink is configured and the dispatcher runs */
    _Atomic uint32_t mask; /* event types some sink wants */
    unsigned sample_pct;   /* token.issued */
    int user_ids, ips;     /* EV_FIELD_* */
    uint8_t pkey[32];      /* pseudonym key */
    unsigned ring_slots;
    pthread_mutex_t mu; /* rings[] and the overflow list */
    struct ring *rings[MAX_RINGS];
    unsigned nrings;
    struct overflow *of_head, *of_tail;
    unsigned of_len;
    _Atomic uint64_t published[EV_NTYPES], dropped[EV_NTYPES], overflowed, sampled_out;
    _Atomic uint64_t sink[EV_M_COUNT];
    /* dispatcher thread */
    pthread_t thread;
    uv_loop_t loop;
    uv_timer_t drain;
    uv_async_t wake;
    _Atomic int stopping, reopen;
    unsigned stop_ms;
    FILE *audit;
    char audit_path[CFG_STR_MAX];
    struct ev_hooks *hooks;
    struct ev_redis *redis;
    int stops; /* sinks still stopping */
} E = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local struct ring *my_ring;
static _Thread_local unsigned my_sample_acc;
/* Event ids: a random 64-bit prefix drawn once per thread and a counter, so ids are unique
 * without a getrandom(2) per event (ids are names, not secrets). */
static _Thread_local uint64_t my_id_prefix, my_id_seq;
/* The formatted current second, so that gmtime and strftime run once a second. */
static _Thread_local time_t my_ts_sec;
static _Thread_local char my_ts[24];

const char *ev_type_name(enum ev_type t)
{
    return t < EV_NTYPES ? type_names[t] : "unknown";
}

int ev_type_parse(const char *name)
{
    for (int i = 0; i < EV_NTYPES; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return -1;
}

int ev_mask_parse(const char *list, uint32_t *mask)
{
    char item[64];
    *mask = 0;
    if (!list[0] || strcmp(list, "*") == 0) {
        *mask = (1u << EV_NTYPES) - 1;
        return ERR_OK;
    }
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ", ");
        if (n == 0 || n >= sizeof(item)) {
            p += n ? n : 1;
            continue;
        }
        memcpy(item, p, n);
        item[n] = 0;
        int t = ev_type_parse(item);
        if (t < 0)
            return ERR_INVAL;
        *mask |= 1u << t;
        p += n;
    }
    return *mask ? ERR_OK : ERR_INVAL;
}

/* ---- building an event ------------------------------------------------------------------ */

/* Room kept for the end: ,"truncated":true}} and the NUL. */
#define EV_TAIL 24

/* Appends within the fixed buffer; past it, the event is marked overflowing and the field
 * being written is rolled back by its caller (field_end), so the JSON stays whole. */
static void put(struct ev *e, const char *s, size_t n)
{
    if (e->overflow || e->len + n + EV_TAIL > sizeof(e->json)) {
        e->overflow = 1;
        return;
    }
    memcpy(e->json + e->len, s, n);
    e->len += n;
}

static void put_escaped(struct ev *e, const char *s)
{
    char tmp[8];
    while (*s) {
        /* the common case: a run of characters that need no escaping, copied at once */
        size_t run = 0;
        while (s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\')
            run++;
        if (run) {
            put(e, s, run);
            s += run;
            continue;
        }
        unsigned char c = (unsigned char)*s++;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(e, tmp, 2);
        } else { /* controls and non-ASCII: \u00XX, so a cut never splits UTF-8 */
            int n = snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            put(e, tmp, (size_t)n);
        }
    }
}

static void field_end(struct ev *e, size_t mark)
{
    if (e->overflow)
        e->len = mark; /* this field did not fit: none of it */
}

static void key(struct ev *e, const char *k)
{
    if (e->json[e->len - 1] != '{')
        put(e, ",", 1);
    put(e, "\"", 1);
    put_escaped(e, k);
    put(e, "\":", 2);
}

static char source[49]; /* set once before producers start; "" = no source field */

void ev_set_source(const char *s)
{
    snprintf(source, sizeof(source), "%s", s);
}

void ev_begin(struct ev *e, enum ev_type t)
{
    uint8_t raw[12];
    char id[17];
    struct timespec now;
    e->type = t;
    e->overflow = 0;
    if (!my_id_prefix)
        randombytes_buf(&my_id_prefix, sizeof(my_id_prefix));
    uint32_t seq = (uint32_t)++my_id_seq;
    memcpy(raw, &my_id_prefix, 8);
    memcpy(raw + 8, &seq, 4);
    if (seq == 0xffffffffu)
        my_id_prefix = 0; /* 4 billion events: a fresh prefix */
    cr_b64url_encode(raw, sizeof(raw), id, sizeof(id));
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != my_ts_sec) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        strftime(my_ts, sizeof(my_ts), "%Y-%m-%dT%H:%M:%S", &tm);
        my_ts_sec = now.tv_sec;
    }
    int n = snprintf(e->json, sizeof(e->json),
                     "{\"id\":\"%s\",\"type\":\"%s\",\"time\":\"%s.%03dZ\",%s%s%s\"data\":{", id,
                     type_names[t], my_ts, (int)(now.tv_nsec / 1000000),
                     source[0] ? "\"source\":\"" : "", source, source[0] ? "\"," : "");
    e->len = (size_t)n;
}

void ev_str(struct ev *e, const char *k, const char *v)
{
    size_t mark = e->len;
    key(e, k);
    put(e, "\"", 1);
    put_escaped(e, v ? v : "");
    put(e, "\"", 1);
    field_end(e, mark);
}

/* A field whose value is already JSON (a number, true, false). */
static void raw_field(struct ev *e, const char *k, const char *v, size_t n)
{
    size_t mark = e->len;
    key(e, k);
    put(e, v, n);
    field_end(e, mark);
}

void ev_int(struct ev *e, const char *k, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", v);
    raw_field(e, k, tmp, (size_t)n);
}

void ev_num(struct ev *e, const char *k, double v)
{
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.3f", isfinite(v) ? v : 0.0); /* JSON has no NaN */
    raw_field(e, k, tmp, (size_t)n);
}

void ev_bool(struct ev *e, const char *k, bool v)
{
    raw_field(e, k, v ? "true" : "false", v ? 4 : 5);
}

static void identity(struct ev *e, const char *k, const char *v, int how)
{
    if (!v || !v[0] || how == EV_FIELD_OFF)
        return;
    if (how == EV_FIELD_PLAIN) {
        ev_str(e, k, v);
        return;
    }
    uint8_t h[12];
    char out[17];
    crypto_generichash(h, sizeof(h), (const uint8_t *)v, strlen(v), E.pkey, sizeof(E.pkey));
    cr_b64url_encode(h, sizeof(h), out, sizeof(out));
    ev_str(e, k, out);
}

void ev_user(struct ev *e, const char *user_id)
{
    identity(e, "user_id", user_id, E.user_ids);
}

void ev_ip(struct ev *e, const char *ip)
{
    identity(e, "ip", ip, E.ips);
}

bool ev_wanted(enum ev_type t)
{
    if (!(atomic_load_explicit(&E.mask, memory_order_relaxed) & (1u << t)))
        return false;
    if (t == EV_TOKEN_ISSUED && E.sample_pct < 100) {
        my_sample_acc += E.sample_pct;
        if (my_sample_acc < 100) {
            atomic_fetch_add_explicit(&E.sampled_out, 1, memory_order_relaxed);
            return false;
        }
        my_sample_acc -= 100;
    }
    return true;
}

/* ---- queues -------------------------------------------------------------------------------- */

static struct ring *ring_new(void)
{
    struct ring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->slot = calloc(E.ring_slots, sizeof(*r->slot));
    if (!r->slot) {
        free(r);
        return NULL;
    }
    r->mask = E.ring_slots - 1;
    pthread_mutex_lock(&E.mu);
    if (E.nrings == MAX_RINGS) {
        pthread_mutex_unlock(&E.mu);
        free(r->slot);
        free(r);
        return NULL;
    }
    E.rings[E.nrings++] = r;
    pthread_mutex_unlock(&E.mu);
    return r;
}

/* A security event that found its ring full: the overflow list, else the process log. */
static void overflow(const struct ev *e)
{
    struct overflow *o = NULL;
    pthread_mutex_lock(&E.mu);
    if (E.of_len < OVERFLOW_MAX && (o = malloc(sizeof(*o))) != NULL) {
        o->e = *e;
        QUEUE_APPEND(E.of_head, E.of_tail, o, next);
        E.of_len++;
    }
    pthread_mutex_unlock(&E.mu);
    if (o) {
        atomic_fetch_add(&E.overflowed, 1);
        return;
    }
    atomic_fetch_add(&E.dropped[e->type], 1);
    log_kv(LOG_ERROR, "security event not queued (event queues full)", "event", e->json, LOG_END);
}

void ev_finish(struct ev *e)
{
    if (e->overflow) { /* fields were left out: say so (EV_TAIL keeps the room) */
        const char *t = e->json[e->len - 1] == '{' ? "\"truncated\":true" : ",\"truncated\":true";
        memcpy(e->json + e->len, t, strlen(t));
        e->len += strlen(t);
    }
    e->json[e->len++] = '}';
    e->json[e->len++] = '}';
    e->json[e->len] = 0;
}

void ev_publish(struct ev *e)
{
    if (!atomic_load_explicit(&E.on, memory_order_relaxed))
        return;
    ev_finish(e);
    if (!my_ring)
        my_ring = ring_new();
    struct ring *r = my_ring;
    enum ev_priority p = type_prio[e->type];
    if (r) {
        uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t used = h - atomic_load_explicit(&r->tail, memory_order_acquire);
        uint64_t room = p == EV_LOW ? (r->mask + 1) * 3 / 4 : r->mask + 1;
        if (used < room) {
            struct ev *slot = &r->slot[h & r->mask]; /* the used bytes, not all 640 */
            slot->type = e->type;
            slot->len = e->len;
            slot->overflow = e->overflow;
            memcpy(slot->json, e->json, e->len + 1);
            atomic_store_explicit(&r->head, h + 1, memory_order_release);
            atomic_fetch_add_explicit(&E.published[e->type], 1, memory_order_relaxed);
            return;
        }
    }
    if (p == EV_SECURITY) {
        overflow(e);
        return;
    }
    atomic_fetch_add_explicit(&E.dropped[e->type], 1, memory_order_relaxed);
}

void ev_count(int which, uint64_t n)
{
    atomic_fetch_add_explicit(&E.sink[which], n, memory_order_relaxed);
}

void ev_get_stats(struct ev_stats *out)
{
    out->hook_delivered = atomic_load(&E.sink[EV_M_HOOK_DELIVERED]);
    out->hook_retried = atomic_load(&E.sink[EV_M_HOOK_RETRIED]);
    out->hook_dead = atomic_load(&E.sink[EV_M_HOOK_DEAD]);
    out->stream_added = atomic_load(&E.sink[EV_M_STREAM_ADDED]);
    out->stream_dropped = atomic_load(&E.sink[EV_M_STREAM_DROPPED]);
    for (int i = 0; i < EV_NTYPES; i++) {
        out->published[i] = atomic_load(&E.published[i]);
        out->dropped[i] = atomic_load(&E.dropped[i]);
    }
    out->overflowed = atomic_load(&E.overflowed);
    out->sampled_out = atomic_load(&E.sampled_out);
}

/* ---- the dispatcher -------------------------------------------------------------------- */

static void audit_open(void)
{
    if (!E.audit_path[0])
        return;
    if (strcmp(E.audit_path, "-") == 0) {
        E.audit = stdout;
        return;
    }
    FILE *f = log_fopen_private(E.audit_path);
    if (!f) {
        log_kv(LOG_ERROR, "cannot open the audit log", "path", E.audit_path, "error",
               strerror(errno), LOG_END);
        return; /* the old file, if any, stays */
    }
    /* a large buffer: a few write(2)s a second however many events (flushed every cycle) */
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    if (E.audit && E.audit != stdout)
        fclose(E.audit);
    E.audit = f;
}

static void deliver(const struct ev *e)
{
    if (E.audit == stdout) { /* shared: stdio's lock */
        fwrite(e->json, 1, e->len, E.audit);
        fputc('\n', E.audit);
    } else if (E.audit) { /* the dispatcher is the file's only user: no locking */
        fwrite_unlocked(e->json, 1, e->len, E.audit);
        fputc_unlocked('\n', E.audit);
    }
    if (E.hooks)
        ev_hooks_deliver(E.hooks, e->type, e->json, e->len);
    if (E.redis)
        ev_redis_deliver(E.redis, e->json, e->len);
}

static void drain_all(void)
{
    struct ring *rings[MAX_RINGS];
    unsigned n;
    struct overflow *of;

    pthread_mutex_lock(&E.mu);
    n = E.nrings;
    memcpy(rings, E.rings, n * sizeof(rings[0]));
    of = E.of_head;
    E.of_head = E.of_tail = NULL;
    E.of_len = 0;
    pthread_mutex_unlock(&E.mu);
    while (of) { /* (each was malloc'd by overflow(): delivered, then freed) */
        struct overflow *next = of->next;
        deliver(&of->e);
        free(of);
        of = next;
    }
    for (unsigned i = 0; i < n; i++) {
        struct ring *r = rings[i];
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
        for (; t != h; t++) {
            deliver(&r->slot[t & r->mask]);
            atomic_store_explicit(&r->tail, t + 1, memory_order_release);
        }
    }
    if (E.audit)
        fflush(E.audit);
    if (E.hooks)
        ev_hooks_flush(E.hooks);
}

static void free_overflow(void)
{
    pthread_mutex_lock(&E.mu);
    struct overflow *o = E.of_head;
    E.of_head = E.of_tail = NULL;
    pthread_mutex_unlock(&E.mu);
    while (o) {
        struct overflow *next = o->next;
        free(o);
        o = next;
    }
}

static void on_drain(uv_timer_t *t)
{
    (void)t;
    if (atomic_exchange(&E.reopen, 0))
        audit_open();
    drain_all();
}

static void on_sink_stopped(void *arg)
{
    (void)arg;
    if (--E.stops > 0)
        return;
    uv_close((uv_handle_t *)&E.drain, NULL);
    uv_close((uv_handle_t *)&E.wake, NULL);
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    if (!atomic_load(&E.stopping))
        return;
    uv_timer_stop(&E.drain);
    drain_all();
    E.stops = 1 + (E.hooks != NULL) + (E.redis != NULL); /* one held until all are asked */
    if (E.hooks)
        ev_hooks_stop(E.hooks, E.stop_ms, on_sink_stopped, NULL);
    if (E.redis)
        ev_redis_stop(E.redis, E.stop_ms, on_sink_stopped, NULL);
    on_sink_stopped(NULL);
}

static void *dispatcher_main(void *arg)
{
    (void)arg;
    uv_run(&E.loop, UV_RUN_DEFAULT);
    return NULL;
}

static int field_mode(const char *s)
{
    return strcmp(s, "hashed") == 0 ? EV_FIELD_HASHED
           : strcmp(s, "off") == 0  ? EV_FIELD_OFF
                                    : EV_FIELD_PLAIN;
}

int ev_start(const struct cfg *c, const uint8_t *pseudonym_key, char *err, size_t errcap)
{
    uint32_t mask = 0;
    int rc;

    E.sample_pct = c->ev_token_issued_pct;
    E.user_ids = field_mode(c->ev_user_ids);
    E.ips = field_mode(c->ev_ips);
    crypto_generichash(E.pkey, sizeof(E.pkey), (const uint8_t *)"floodgate event pseudonyms", 26,
                       pseudonym_key, CR_HASH_KEY_LEN);
    E.ring_slots = 1;
    while (E.ring_slots < c->ev_queue)
        E.ring_slots <<= 1;
    snprintf(E.audit_path, sizeof(E.audit_path), "%s", c->audit_log);
    if (E.audit_path[0]) {
        mask = (1u << EV_NTYPES) - 1;
        audit_open();
        if (!E.audit) {
            snprintf(err, errcap, "audit_log: cannot open %s", c->audit_log);
            return ERR_INVAL;
        }
    }
    /* No sink, no loop: making one only to close it would also hand its descriptor number,
     * closed behind ThreadSanitizer's back by libuv, to whichever thread opens one next. */
    if (!E.audit_path[0] && !c->webhook[0] && !c->nhooks && !c->autoscaler_webhook[0] &&
        !c->notify_webhook[0] && !c->ev_redis[0])
        return ERR_OK;
    uv_loop_init(&E.loop);
    rc = ev_hooks_new(&E.loop, c, &E.hooks, err, errcap);
    if (rc) {
        uv_loop_close(&E.loop);
        return rc;
    }
    if (E.hooks)
        mask |= ev_hooks_mask(E.hooks);
    rc = ev_redis_new(&E.loop, c, &E.redis, err, errcap);
    if (rc) {
        if (E.hooks)
            ev_hooks_free(E.hooks);
        E.hooks = NULL;
        uv_loop_close(&E.loop);
        return rc;
    }
    if (E.redis)
        mask = (1u << EV_NTYPES) - 1;
    if (!mask) {
        uv_loop_close(&E.loop);
        return ERR_OK; /* no sink: events are not even built */
    }
    uv_timer_init(&E.loop, &E.drain);
    uv_timer_start(&E.drain, on_drain, DRAIN_MS, DRAIN_MS);
    uv_async_init(&E.loop, &E.wake, on_wake);
    atomic_store(&E.mask, mask);
    atomic_store(&E.on, 1);
    if (pthread_create(&E.thread, NULL, dispatcher_main, NULL)) {
        atomic_store(&E.on, 0);
        atomic_store(&E.mask, 0);
        snprintf(err, errcap, "cannot start the event dispatcher");
        return ERR_NOMEM;
    }
    pthread_setname_np(E.thread, "fg-events");
    return ERR_OK;
}

void ev_stop(unsigned ms)
{
    if (!atomic_load(&E.on))
        return;
    atomic_store(&E.mask, 0); /* producers stop building events */
    E.stop_ms = ms;
    atomic_store(&E.stopping, 1);
    uv_async_send(&E.wake);
    pthread_join(E.thread, NULL);
    atomic_store(&E.on, 0);
    struct ev_hooks *hooks = E.hooks;
    struct ev_redis *redis = E.redis;
    E.hooks = NULL;
    E.redis = NULL;
    drain_all(); /* what was published while stopping goes to the audit log */
    free_overflow();
    uv_loop_close(&E.loop);
    if (hooks)
        ev_hooks_free(hooks);
    if (redis) {
        uint64_t added, dropped;
        char a[24], d[24];
        ev_redis_free(redis, &added, &dropped);
        snprintf(a, sizeof(a), "%llu", (unsigned long long)added);
        snprintf(d, sizeof(d), "%llu", (unsigned long long)dropped);
        log_kv(LOG_INFO, "redis stream sink stopped", "added", a, "not_added", d, LOG_END);
    }
    if (E.audit && E.audit != stdout)
        fclose(E.audit);
    else if (E.audit)
        fflush(E.audit);
    E.audit = NULL;
    pthread_mutex_lock(&E.mu);
    for (unsigned i = 0; i < E.nrings; i++) {
        free(E.rings[i]->slot);
        free(E.rings[i]);
    }
    E.nrings = 0;
    pthread_mutex_unlock(&E.mu);
}

void ev_reopen(void)
{
    atomic_store(&E.reopen, 1);
}

int ev_metrics_text(struct buf *b)
{
    struct ev_stats es;
    ev_get_stats(&es);
    int rc = met_text_family(b, "floodgate_events_total", "counter",
                             "Auth events queued for the sinks, and dropped because a queue was "
                             "full.");
    for (int t = 0; t < EV_NTYPES; t++)
        rc |= buf_printf(b,
                         "floodgate_events_total{type=\"%s\",result=\"queued\"} %llu\n"
                         "floodgate_events_total{type=\"%s\",result=\"dropped\"} %llu\n",
                         ev_type_name((enum ev_type)t), (unsigned long long)es.published[t],
                         ev_type_name((enum ev_type)t), (unsigned long long)es.dropped[t]);
    rc |= met_text_counter(b, "floodgate_events_overflowed_total",
                           "Security events that found their queue full and took the overflow "
                           "list.",
                           es.overflowed);
    rc |= met_text_counter(b, "floodgate_events_sampled_out_total",
                           "token.issued events left out by events_token_issued_sample.",
                           es.sampled_out);
    rc |= buf_printf(b,
                     "# HELP floodgate_webhook_events_total Events by webhook outcome (retried: "
                     "per failed attempt).\n# TYPE floodgate_webhook_events_total counter\n"
                     "floodgate_webhook_events_total{result=\"delivered\"} %llu\n"
                     "floodgate_webhook_events_total{result=\"retried\"} %llu\n"
                     "floodgate_webhook_events_total{result=\"dead_lettered\"} %llu\n"
                     "# HELP floodgate_event_stream_total Events added to the Redis stream, or "
                     "not.\n# TYPE floodgate_event_stream_total counter\n"
                     "floodgate_event_stream_total{result=\"added\"} %llu\n"
                     "floodgate_event_stream_total{result=\"dropped\"} %llu\n",
                     (unsigned long long)es.hook_delivered, (unsigned long long)es.hook_retried,
                     (unsigned long long)es.hook_dead, (unsigned long long)es.stream_added,
                     (unsigned long long)es.stream_dropped);
    return rc;
}
