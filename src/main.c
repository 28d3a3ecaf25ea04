/* SPDX-License-Identifier: MIT */
/*
 * floodgate's entry point: command line, configuration, and the process's threads.
 *
 * Threads: the main thread owns signals (SIGTERM/SIGINT drain, SIGHUP reopens logs) and
 * start-up and shut-down; N loop threads each run an event loop with its own SO_REUSEPORT
 * listener and metrics shard; the worker pool runs CPU-heavy jobs at lower priority.
 * Shutdown: stop accepting, let in-flight requests finish (drain_timeout), cut the rest,
 * wait for worker jobs, exit 0.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <http_parser.h>
#include <sodium.h>
#include <uv.h>

#include "api/api.h"
#include "auth/auth_client.h"
#include "auth/auth_user.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/version.h"
#include "event/ev.h"
#include "http/http_router.h"
#include "http/http_server.h"
#include "http/http_session.h"
#include "json/json.h"
#include "loop/loop.h"
#include "loop/pool.h"
#include "metrics/met.h"
#include "policy/pol_clientip.h"
#include "policy/pol_gcra.h"
#include "policy/pol_lockout.h"
#include "policy/pol_mode.h"
#include "redis/redis_url.h"
#include "rehearse/rh.h"
#include "store/store.h"
#include "token/tok_cache.h"
#include "token/tok_keys.h"

extern char **environ;

struct worker_loop {
    struct loop lp;
    struct loop_task drain_task;
    struct http_server *srv;
    struct http_server *admin; /* NULL without an admin API */
    struct api_ctx ctx;
    int fd;
    int afd;     /* admin listener, -1 if none */
    int running; /* servers not yet stopped */
    int failed;
};

static struct {
    struct cfg cfg;
    struct api_shared sh;
    struct http_server_opts opts;
    const struct http_router *admin_rt;
    _Atomic unsigned open_conns;
    struct worker_loop *loops;
    unsigned nloops;
    _Atomic unsigned exited;
    sem_t started; /* each loop posts once it listens (or failed to) */
    uv_async_t exit_async;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uv_timer_t maint_timer;
    uv_timer_t policy_timer;
    int64_t last_purge;
    struct pol_mode_cfg mode_cfg;
    struct pol_controller ctl;
    uint64_t last_logins;              /* all password logins seen at the last sample */
    int64_t stuffing_until;            /* credential stuffing is assumed until then */
    uint64_t last_req[MET_ROUTES_MAX]; /* requests by route, last sample */
    uint64_t last_lat[MET_ROUTES_MAX][MET_LAT_BUCKETS]; /* latency buckets, last sample */
    uint64_t last_ok;
    uint64_t last_failed;
    struct pol_event events[64]; /* announced events, reloaded when the store changes */
    unsigned nevents;
    uint64_t events_gen;
    int shutting_down;
} g;

static void usage(FILE *f)
{
    fprintf(f,
            "floodgate %s: authentication and token service built for traffic spikes\n"
            "\n"
            "Usage:\n"
            "  floodgate [--config FILE] [--KEY VALUE ...]   run the server\n"
            "  floodgate check-config FILE                  validate a configuration file\n"
            "  floodgate [flags] client create NAME [--grants LIST] [--scopes LIST]\n"
            "            [--audiences LIST] [--access-ttl SECONDS] [--json]\n"
            "  floodgate [flags] client list|show ID|delete ID|rotate-secret ID [--json]\n"
            "  floodgate [flags] key list|rotate [--json]\n"
            "  floodgate [flags] user add|passwd NAME   (password on stdin)\n"
            "  floodgate [flags] user import NAME HASH | disable|enable|delete NAME | list\n"
            "  floodgate [flags] event schedule --at TIME --expect Nx [--duration D] | list | "
            "cancel ID\n"
            "  floodgate rehearse SCENARIO.json [--target URL] [--admin URL] ...   play a load\n"
            "            scenario against a running floodgate (see floodgate rehearse --help)\n"
            "  floodgate --help | --version\n"
            "  floodgate --config-reference                 print every key as a Markdown table\n"
            "\n"
            "Configuration comes from built-in defaults, then the INI file (--config FILE or\n"
            "FLOODGATE_CONFIG), then FLOODGATE_<KEY> environment variables, then flags; later\n"
            "sources win. The minimal start is:\n"
            "  floodgate --listen 127.0.0.1:8080 --data-dir ./data\n"
            "\n"
            "Keys (flag form; in the INI file use the key name under its [section]):\n",
            FG_VERSION);
    cfg_print_help(f);
    fprintf(f, "\nSignals: SIGTERM/SIGINT drain and exit 0; SIGHUP reopens the log files.\n"
               "Docs: README.md, docs/configuration.md.\n");
}

static void cfg_fail(const struct cfg_error *e)
{
    fprintf(stderr, "floodgate: configuration error: %s: %s\n", e->where, e->what);
}

/* ---- loop threads -------------------------------------------------------------------- */

static void on_drain_task(struct loop_task *t)
{
    struct worker_loop *w =
        (struct worker_loop *)(void *)((char *)t - offsetof(struct worker_loop, drain_task));
    if (w->srv)
        http_server_drain(w->srv);
    if (w->admin)
        http_server_drain(w->admin);
}

static void on_loop_server_stopped(struct http_server *srv);

static void *loop_main(void *arg)
{
    struct worker_loop *w = arg;
    int fd = w->fd, afd = w->afd;

    w->fd = w->afd = -1; /* the servers own them now, or they are closed here */
    if (api_ctx_start(&w->ctx)) {
        log_kv(LOG_ERROR, "cannot load signing keys", LOG_END);
        close(fd);
        if (afd >= 0)
            close(afd);
        w->failed = 1;
        loop_close_mailbox(&w->lp);
    } else if (http_server_start(&w->lp, fd, &g.opts, g.sh.rt, w->ctx.met, &w->ctx,
                                 on_loop_server_stopped, &w->srv)) {
        if (afd >= 0)
            close(afd);
        w->failed = 1;
        loop_close_mailbox(&w->lp);
    } else {
        w->running = 1;
        /* The admin API: same loop, same per-thread context, its own routes. */
        if (afd >= 0 && http_server_start(&w->lp, afd, &g.opts, g.admin_rt, w->ctx.met, &w->ctx,
                                          on_loop_server_stopped, &w->admin) == ERR_OK)
            w->running = 2;
        else if (afd >= 0)
            w->failed = 1; /* start-up failure: main drains the server that did start */
    }
    sem_post(&g.started);
    loop_run(&w->lp);
    store_loop_release(g.sh.store, &w->lp); /* (after a start-up failure: nothing left) */
    api_ctx_stop(&w->ctx);
    log_access_flush();
    atomic_fetch_add(&g.exited, 1);
    uv_async_send(&g.exit_async);
    return NULL;
}

static void on_loop_server_stopped(struct http_server *srv)
{
    /* Called on the loop's thread; find our loop by the server. The loop ends when its last
     * server has stopped. */
    for (unsigned i = 0; i < g.nloops; i++) {
        struct worker_loop *w = &g.loops[i];
        if ((w->srv == srv || w->admin == srv) && --w->running == 0) {
            store_loop_release(g.sh.store, &w->lp); /* its Redis connection, if any */
            loop_close_mailbox(&w->lp);
        }
    }
}

/* ---- main thread --------------------------------------------------------------------- */

/* Another instance revoked an access token (every thread's verification cache drops it), or
 * our Redis connection was remade and messages may have been lost (every entry is rechecked
 * against the store before it is trusted again), or an admin unlocked a user. */
static void on_store_invalidate(void *arg, const char *msg, size_t len)
{
    (void)arg;
    if (len > 7 && memcmp(msg, "unlock:", 7) == 0) { /* an admin unlocked a user elsewhere */
        char name[AUTH_USERNAME_MAX + 1];
        snprintf(name, sizeof(name), "%.*s", (int)(len - 7), msg + 7);
        pol_lockout_unlock_user(g.sh.lockout, str_c(name));
        return;
    }
    int64_t now = clock_wall_s();
    if (len == 1 && msg[0] == '*') /* reconnected: what was missed is unknown, recheck all */
        tok_revocation_bump();
    else /* a jti: that token only (its exp is not in the message) */
        tok_revoked_publish(msg, len, now + TOK_REVOKED_REMOTE_S, now);
}

static int on_revoked_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    int64_t exp, now = clock_wall_s();
    (void)arg;
    if (vlen != sizeof(exp))
        return ERR_OK;
    memcpy(&exp, val, sizeof(exp));
    if (exp > now)
        tok_revoked_remember(key, klen, exp, now);
    return ERR_OK;
}

/* Every access token has an audience (RFC 9068 §2.2): default_audience, else the issuer,
 * when nothing names another. -1 (logged) if it cannot be an aud. After the issuer is set. */
static int set_default_audience(const struct cfg *c)
{
    const char *daud = c->default_audience[0] ? c->default_audience : g.sh.issuer;
    if (strlen(daud) >= sizeof(g.sh.default_aud)) {
        log_kv(LOG_ERROR,
               c->default_audience[0] ? "default_audience is longer than 256 characters"
                                      : "the issuer is longer than 256 characters: set a shorter "
                                        "default_audience",
               LOG_END);
        return -1;
    }
    memcpy(g.sh.default_aud, daud, strlen(daud) + 1);
    return 0;
}

static void purge_noop(struct store_op *op)
{
    (void)op;
}

/*
 * Maintenance, on the main thread (which otherwise only waits for signals), once a minute:
 * scheduled key rotation and the purge of expired records. Both are synchronous store
 * writes here; they queue behind the writer thread's batches like a CLI command would.
 */
static int64_t newest_key(const struct tok_ring *r)
{
    int64_t newest = 0;
    for (unsigned i = 0; i < r->n; i++)
        if (r->keys[i].created_at > newest)
            newest = r->keys[i].created_at;
    return newest;
}

static void on_maintenance(uv_timer_t *t)
{
    const struct cfg *c = &g.cfg;
    int64_t now = clock_wall_s();

    (void)t;
    /* Due by the ring on_policy keeps (the main thread's own: no lock, no store read). The
     * instances sharing a store take turns: only the lease holder rotates, after reading the
     * keys again (another holder may just have rotated). */
    if (c->key_rotation_s && now - newest_key(&g.sh.ring) >= (int64_t)c->key_rotation_s &&
        store_lease(g.sh.store, "key-rotation", 120000) == ERR_OK) {
        struct tok_ring r = {0};
        if (tok_ring_load(&r, g.sh.store) == ERR_OK &&
            now - newest_key(&r) >= (int64_t)c->key_rotation_s) {
            char kid[TOK_KID_MAX + 1];
            /* Old keys stay published for the longest lifetime a token can have. */
            int64_t from = now;
            int rc = tok_keys_rotate(g.sh.store, tok_alg_parse(c->signing_alg), now,
                                     c->key_publish_ahead_ms / 1000, 86400 + c->leeway_ms / 1000,
                                     kid, &from);
            log_kv(rc ? LOG_ERROR : LOG_INFO,
                   rc ? "scheduled key rotation failed" : "signing key rotated on schedule", "kid",
                   rc ? "" : kid, LOG_END);
            if (!rc && ev_wanted(EV_KEY_ROTATED)) {
                struct ev e;
                ev_begin(&e, EV_KEY_ROTATED);
                ev_str(&e, "kid", kid);
                ev_int(&e, "active_from", from);
                ev_str(&e, "by", "schedule");
                ev_publish(&e);
            }
        }
        tok_ring_clear(&r);
    }
    if (now - g.last_purge >= (int64_t)c->purge_interval_s) {
        struct store_op op;
        memset(&op, 0, sizeof(op));
        op.kind = STORE_OP_PURGE;
        op.on_done = purge_noop;
        op.now = now;
        if (store_exec(g.sh.store, &op) == ERR_OK && op.purged) {
            char n[24];
            snprintf(n, sizeof(n), "%llu", (unsigned long long)op.purged);
            log_kv(LOG_INFO, "purged expired records", "count", n, LOG_END);
        }
        g.last_purge = now;
    }
}

/*
 * The adaptive policy's sample, once a second on the main thread: the expected wait of a
 * new hash, login demand (served, failed, refused and shed alike) against the hashing
 * capacity the pool has measured, and the share of failed logins. The controller's mode is
 * published for the loop threads in an atomic; changes are logged and counted.
 */
static int on_event_record(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    json_error_t je;
    json_t *j = json_loadb(val, vlen, 0, &je);

    (void)ctx;
    (void)key;
    (void)klen;
    if (j && g.nevents < sizeof(g.events) / sizeof(g.events[0])) {
        struct pol_event *e = &g.events[g.nevents];
        e->at = json_integer_value(json_object_get(j, "at"));
        e->duration_s = json_integer_value(json_object_get(j, "duration"));
        e->expect = json_number_value(json_object_get(j, "expect"));
        if (e->at > 0)
            g.nevents++;
    }
    json_decref(j);
    return ERR_OK;
}

/* The sample as JSON for GET /admin/policy, with each route's rate and p99 over the last
 * second (from the metrics' latency buckets: p99 is a bucket bound, null past the last). */
static void sample_json(const struct pol_sample *s, const struct met_shard *sum)
{
    struct buf b;
    unsigned n = http_router_count(g.sh.rt);
    int first = 1;

    buf_init(&b, sizeof(g.sh.sample));
    buf_printf(&b,
               "{\"hash_wait_ms\":%.0f,\"login_demand\":%.1f,\"login_capacity\":%.1f,"
               "\"failed_ratio\":%.2f,\"failed_ips\":%.0f,\"routes\":{",
               s->hash_wait_ms, s->login_demand, s->login_capacity, s->failed_ratio, s->failed_ips);
    for (unsigned r = 1; r <= n && r < MET_ROUTES_MAX; r++) {
        uint64_t req = 0, d[MET_LAT_BUCKETS], dn = 0;
        for (unsigned k = 0; k < MET_S_COUNT; k++)
            req += atomic_load_explicit(&sum->req[r][k], memory_order_relaxed);
        for (unsigned k = 0; k < MET_LAT_BUCKETS; k++) {
            uint64_t v = atomic_load_explicit(&sum->lat[r][k], memory_order_relaxed);
            d[k] = v - g.last_lat[r][k];
            dn += d[k];
            g.last_lat[r][k] = v;
        }
        uint64_t rate = req - g.last_req[r];
        g.last_req[r] = req;
        if (!rate)
            continue;
        uint64_t want = (dn * 99 + 99) / 100, seen = 0;
        unsigned k = 0;
        while (k < MET_LAT_BUCKETS - 1 && (seen += d[k]) < want)
            k++;
        char p99[32] = "null";
        if (k < MET_LAT_BUCKETS - 1)
            snprintf(p99, sizeof(p99), "%g", met_lat_bounds[k] * 1000);
        buf_printf(&b, "%s\"%s\":{\"rate\":%llu,\"p99_ms\":%s}", first ? "" : ",",
                   http_router_pattern(g.sh.rt, r), (unsigned long long)rate, p99);
        first = 0;
    }
    if (buf_puts(&b, "}}") == 0) { /* too long for the snapshot: keep the last one */
        pthread_mutex_lock(&g.sh.sample_mu);
        memcpy(g.sh.sample, b.p, b.len);
        g.sh.sample[b.len] = 0;
        pthread_mutex_unlock(&g.sh.sample_mu);
    }
    buf_fini(&b);
}

static void on_policy(uv_timer_t *t)
{
    struct pool_stats ps;
    struct pol_sample s;
    struct met_shard *sum = xcalloc(1, sizeof(*sum));
    int64_t now = clock_wall_s();

    (void)t;
    pool_stats(g.sh.pool, &ps);
    met_sum(sum);
    uint64_t ok = atomic_load(&g.sh.logins[0]), failed = atomic_load(&g.sh.logins[1]),
             refused = atomic_load(&g.sh.logins[2]), shed = sum->pool_rejected;
    uint64_t total = ok + failed + refused + shed;
    s.hash_wait_ms = (double)pool_expected_wait_ms(g.sh.pool);
    s.login_demand = (double)(total - g.last_logins);
    s.login_capacity = ps.ewma_work_ns ? (double)ps.threads * 1e9 / (double)ps.ewma_work_ns : 0;
    uint64_t d_ok = ok - g.last_ok, d_failed = failed - g.last_failed;
    s.failed_ratio = d_ok + d_failed ? (double)d_failed / (double)(d_ok + d_failed) : 0;
    s.failed_ips = pol_distinct_take(g.sh.failed_ips);
    g.last_logins = total;
    g.last_ok = ok;
    g.last_failed = failed;
    sample_json(&s, sum);
    mem_free(sum);
    uint64_t gen = store_generation_recent(g.sh.store);
    if (gen != g.sh.ring.generation) {
        /* keys changed (or clients or events: one counter): read them here, where waiting
         * for the store blocks no request, for the loop threads to copy */
        struct tok_ring fresh = {0};
        if (tok_ring_load(&fresh, g.sh.store) == ERR_OK) {
            pthread_mutex_lock(&g.sh.ring_mu);
            tok_ring_clear(&g.sh.ring);
            g.sh.ring = fresh;
            atomic_fetch_add(&g.sh.ring_version, 1);
            pthread_mutex_unlock(&g.sh.ring_mu);
        }
    }
    if (gen != g.events_gen) {
        g.nevents = 0;
        store_each(g.sh.store, STORE_T_EVENTS, on_event_record, NULL);
        g.events_gen = gen;
    }
    /* An announced event holds the mode up from 5 minutes before it. */
    g.ctl.floor = pol_events_floor(g.events, g.nevents, now, g.cfg.pol_event_lead_s);
    atomic_store(&g.sh.mode_floor, (int)g.ctl.floor);
    g.ctl.override = (enum pol_mode)atomic_load(&g.sh.mode_override);
    enum pol_mode before = (enum pol_mode)atomic_load(&g.sh.mode);
    enum pol_mode m = pol_controller_step(&g.ctl, &g.mode_cfg, &s, now);
    /* held for policy_down_after after the last sign, like the mode: a pause of a second
     * does not lift the tighter limit */
    if (pol_stuffing(&g.mode_cfg, &s))
        g.stuffing_until = now + g.mode_cfg.down_after_s;
    int stuffing = now < g.stuffing_until && g.ctl.override == POL_MODES;
    if (atomic_exchange(&g.sh.stuffing, stuffing) != stuffing) {
        char n[32];
        snprintf(n, sizeof(n), "%.0f", s.failed_ips);
        log_kv(LOG_WARN,
               stuffing ? "credential stuffing suspected: per-IP logins tightened"
                        : "credential stuffing over",
               "failed_ips", n, LOG_END);
    }
    unsigned now_serving = store_members(g.sh.store); /* 1 on LMDB */
    unsigned rec = pol_scale_recommendation(&s, now_serving);
    if (rec != atomic_load(&g.sh.recommended)) {
        char n[16];
        snprintf(n, sizeof(n), "%u", rec);
        log_kv(LOG_INFO, "scaling recommendation", "instances", n, LOG_END);
        if (ev_wanted(EV_SCALE_RECOMMENDATION)) {
            struct ev e;
            ev_begin(&e, EV_SCALE_RECOMMENDATION);
            ev_int(&e, "instances", rec);
            ev_int(&e, "previous", atomic_load(&g.sh.recommended));
            ev_int(&e, "serving", now_serving);
            ev_num(&e, "login_demand", s.login_demand);
            ev_num(&e, "login_capacity_per_instance", s.login_capacity);
            ev_str(&e, "mode", pol_mode_name(m));
            ev_publish(&e);
        }
        atomic_store(&g.sh.recommended, rec);
    }
    if (m != before) {
        char w[32], d[32];
        snprintf(w, sizeof(w), "%.0f", s.hash_wait_ms);
        snprintf(d, sizeof(d), "%.1f/%.1f", s.login_demand, s.login_capacity);
        atomic_store(&g.sh.mode, (int)m);
        atomic_fetch_add(&g.sh.mode_changes, 1);
        log_kv(LOG_WARN, "policy mode changed", "from", pol_mode_name(before), "to",
               pol_mode_name(m), "hash_wait_ms", w, "login_demand/capacity", d, "override",
               g.ctl.override == POL_MODES ? "auto" : pol_mode_name(g.ctl.override), LOG_END);
        if (ev_wanted(EV_POLICY_MODE_CHANGED)) {
            struct ev e;
            ev_begin(&e, EV_POLICY_MODE_CHANGED);
            ev_str(&e, "from", pol_mode_name(before));
            ev_str(&e, "to", pol_mode_name(m));
            ev_num(&e, "hash_wait_ms", s.hash_wait_ms);
            ev_num(&e, "login_demand", s.login_demand);
            ev_num(&e, "login_capacity", s.login_capacity);
            ev_num(&e, "failed_ratio", s.failed_ratio);
            ev_str(&e, "by", g.ctl.override == POL_MODES ? "controller" : "override");
            ev_publish(&e);
        }
    }
}

static void close_main_handles(void)
{
    uv_close((uv_handle_t *)&g.exit_async, NULL);
    uv_close((uv_handle_t *)&g.sig_term, NULL);
    uv_close((uv_handle_t *)&g.sig_int, NULL);
    uv_close((uv_handle_t *)&g.sig_hup, NULL);
    uv_close((uv_handle_t *)&g.drain_timer, NULL);
    uv_close((uv_handle_t *)&g.maint_timer, NULL);
    uv_close((uv_handle_t *)&g.policy_timer, NULL);
}

static void on_exit_async(uv_async_t *a)
{
    (void)a;
    if (atomic_load(&g.exited) == g.nloops)
        close_main_handles();
}

static void on_drain_timer(uv_timer_t *t)
{
    (void)t;
    /* Connections were cut at the deadline; queued jobs are answered 503 now instead of
     * run, so only jobs already on a worker delay the exit. */
    log_kv(LOG_WARN, "drain timeout passed; cancelling queued worker jobs", LOG_END);
    pool_cancel_queued(g.sh.pool);
}

static void begin_shutdown(const char *why)
{
    if (g.shutting_down) {
        log_kv(LOG_INFO, "shutdown already in progress", "signal", why, LOG_END);
        return;
    }
    g.shutting_down = 1;
    atomic_store(&g.sh.draining, 1);
    log_kv(LOG_INFO, "draining", "signal", why, LOG_END);
    uv_timer_stop(&g.maint_timer);
    uv_timer_stop(&g.policy_timer);
    for (unsigned i = 0; i < g.nloops; i++) {
        if (!g.loops[i].running)
            continue; /* no server started: its mailbox is closed, its loop ends by itself */
        g.loops[i].drain_task.on_run = on_drain_task;
        loop_post(&g.loops[i].lp, &g.loops[i].drain_task);
    }
    uv_timer_start(&g.drain_timer, on_drain_timer, g.cfg.drain_timeout_ms, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (signum == SIGHUP) {
        int rc = log_reopen();
        ev_reopen(); /* the audit log, on the dispatcher thread */
        log_kv(rc ? LOG_ERROR : LOG_INFO, rc ? "log reopen failed" : "logs reopened", LOG_END);
        return;
    }
    begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int ensure_dir(const char *path)
{
    char tmp[CFG_STR_MAX];

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) && errno != EEXIST)
            return ERR_IO;
        *p = '/';
    }
    if (mkdir(tmp, 0700) && errno != EEXIST)
        return ERR_IO;
    return access(tmp, R_OK | W_OK | X_OK) ? ERR_IO : ERR_OK;
}

static unsigned ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int serve(void)
{
    struct cfg *c = &g.cfg;
    char host[256], addr[300];
    unsigned port, bound;
    struct http_router *rt = NULL;
    struct pool *pool = NULL;
    struct store *store = NULL;
    uint8_t *secret_key = NULL;
    struct auth_denylist *denylist = NULL;
    struct http_router *admin_rt = NULL;
    struct pol_lockout *lockout = NULL;
    struct pol_gcra *limits = NULL;
    struct pol_proxies *proxies = NULL;
    int rc = 1;

    if (log_open(c->log_file, c->log_level)) {
        fprintf(stderr, "floodgate: cannot open log file %s: %s\n", c->log_file, strerror(errno));
        return 1;
    }
    if (log_access_open(c->access_log)) {
        log_kv(LOG_ERROR, "cannot open access log", "path", c->access_log, "error", strerror(errno),
               LOG_END);
        return 1;
    }
    if (ensure_dir(c->data_dir)) {
        log_kv(LOG_ERROR, "data directory is not usable", "path", c->data_dir, "error",
               strerror(errno), LOG_END);
        return 1;
    }
    if (cr_init()) {
        log_kv(LOG_ERROR, "libsodium failed to start", LOG_END);
        return 1;
    }
    char err[512];
    secret_key = sodium_malloc(CR_HASH_KEY_LEN);
    if (!secret_key || api_store_open(c, &store, secret_key, err, sizeof(err))) {
        log_kv(LOG_ERROR, "cannot start", "error", secret_key ? err : "no memory", LOG_END);
        goto out;
    }
    store_join(store); /* counted among the serving instances (shared store) */
    if (ev_start(c, secret_key, err, sizeof(err))) {
        log_kv(LOG_ERROR, "cannot start the event sinks", "error", err, LOG_END);
        goto out;
    }
    int krc = tok_keys_ensure(store, tok_alg_parse(c->signing_alg), clock_wall_s());
    if (krc == ERR_DENIED) {
        log_kv(LOG_ERROR,
               "a signing key in the store is not sealed: refused (anyone who can write to the "
               "store could have planted it). If it is yours, from a store older than sealing, "
               "run 'floodgate key reseal' once",
               LOG_END);
        goto out;
    }
    if (krc) {
        log_kv(LOG_ERROR,
               "cannot read or create the signing keys (unreachable store, or keys sealed "
               "under another server key: secret_key_file must be the one they were made with)",
               LOG_END);
        goto out;
    }
    if (c->password_denylist[0] &&
        auth_denylist_load(c->password_denylist, &denylist, err, sizeof(err))) {
        log_kv(LOG_ERROR, "cannot load the password deny list", "error", err, LOG_END);
        goto out;
    }
    json_secure_alloc_init();
    struct pol_lockout_cfg lc = {
        .user = {c->lockout_user_attempts, c->lockout_base_s, c->lockout_max_s,
                 c->lockout_window_s},
        .ip = {c->lockout_ip_attempts, c->lockout_base_s, c->lockout_max_s, c->lockout_window_s},
        .pair = {c->lockout_pair_attempts, c->lockout_base_s, c->lockout_max_s, c->lockout_window_s,
                 c->lockout_delay_after, c->lockout_delay_s},
        .entries = c->lockout_entries,
    };
    if (c->trusted_proxies[0] &&
        pol_proxies_parse(c->trusted_proxies, &proxies, err, sizeof(err))) {
        log_kv(LOG_ERROR, "bad trusted_proxies", "error", err, LOG_END);
        goto out;
    }
    lockout = pol_lockout_new(&lc);
    limits = pol_gcra_new(c->rl_entries);
    const struct cfg_rate *rates[API_RL_COUNT] = {
        &c->rl_login_ip,      &c->rl_register_ip,  &c->rl_token_ip,        &c->rl_refresh_ip,
        &c->rl_verify_ip,     &c->rl_login_user,   &c->rl_token_client,    &c->rl_revoke_ip,
        &c->rl_revoke_client, &c->rl_login_global, &c->rl_register_global, &c->rl_token_global};
    /* The adaptive policy tightens per-IP logins and registrations by policy_ip_divisor_*
     * (rate and burst; by default x1/2 in surge, x1/4 in shed), and per-IP logins by at
     * least policy_stuffing_ip_divisor during credential stuffing; other rules stay. */
    for (int st = 0; st < 2; st++) {
        for (int m = 0; m < POL_MODES; m++) {
            for (int i = 0; i < API_RL_COUNT; i++) {
                unsigned div =
                    m > 0 && (i == API_RL_LOGIN || i == API_RL_REGISTER) ? c->pol_ip_div[m] : 1u;
                if (st && i == API_RL_LOGIN && div < c->pol_stuffing_ip_div)
                    div = c->pol_stuffing_ip_div;
                unsigned cnt =
                    rates[i]->count ? (rates[i]->count / div ? rates[i]->count / div : 1) : 0;
                unsigned burst = rates[i]->burst / div ? rates[i]->burst / div : 1;
                pol_gcra_rule_init(&g.sh.rules[st][m][i], cnt, rates[i]->per_s, burst);
            }
        }
    }
    g.sh.failed_ips = xcalloc(1, sizeof(*g.sh.failed_ips));
    pol_distinct_init(g.sh.failed_ips);
    pthread_mutex_init(&g.sh.sample_mu, NULL);
    snprintf(g.sh.sample, sizeof(g.sh.sample), "null");
    atomic_store(&g.sh.mode_override, POL_MODES);
    atomic_store(&g.sh.recommended, 1);
    pol_mode_cfg_default(&g.mode_cfg);
    for (int m = 1; m < POL_MODES; m++) {
        g.mode_cfg.wait_ms[m] = c->pol_wait_ms[m];
        g.mode_cfg.load_ratio[m] = c->pol_load_pct[m] / 100.0;
    }
    g.mode_cfg.stuffing_ratio = c->pol_stuffing_pct / 100.0;
    g.mode_cfg.stuffing_ips = c->pol_stuffing_ips;
    g.mode_cfg.down_after_s = c->pol_down_after_s;
    int pause = pol_mode_parse(c->pol_registration_pause);
    g.sh.registration_pause = pause >= 0 && pause < POL_MODES ? pause : POL_MODES; /* never */
    pol_controller_init(&g.ctl, clock_wall_s());
    g.nloops = c->threads ? c->threads : ncpus();
    unsigned nworkers = c->workers ? c->workers : ncpus();
    http_session_global_init(c->max_header_bytes);

    cfg_split_hostport(c->listen, host, sizeof(host), &port);
    g.loops = xcalloc(g.nloops, sizeof(*g.loops));
    for (unsigned i = 0; i < g.nloops; i++)
        g.loops[i].fd = g.loops[i].afd = -1;
    for (unsigned i = 0; i < g.nloops; i++) {
        int lerr = http_listen_open(host, i == 0 ? port : bound, &g.loops[i].fd, &bound);
        if (lerr) {
            log_kv(LOG_ERROR, "cannot listen", "listen", c->listen, "error",
                   lerr == ERR_INVAL ? "unknown host" : strerror(errno), LOG_END);
            goto out;
        }
    }
    char ahost[256], aaddr[300] = "";
    unsigned aport, abound = 0;
    if (c->admin_token[0]) {
        cfg_split_hostport(c->admin_listen, ahost, sizeof(ahost), &aport);
        for (unsigned i = 0; i < g.nloops; i++) {
            int lerr = http_listen_open(ahost, i == 0 ? aport : abound, &g.loops[i].afd, &abound);
            if (lerr) {
                log_kv(LOG_ERROR, "cannot listen for the admin API", "admin_listen",
                       c->admin_listen, "error",
                       lerr == ERR_INVAL ? "unknown host" : strerror(errno), LOG_END);
                goto out;
            }
        }
        snprintf(aaddr, sizeof(aaddr), strchr(ahost, ':') ? "[%s]:%u" : "%s:%u", ahost, abound);
        admin_rt = api_admin_router_new();
        if (!admin_rt)
            goto out;
        g.admin_rt = admin_rt;
    }
    if (pool_new(nworkers, c->worker_queue, c->worker_nice, &pool)) {
        log_kv(LOG_ERROR, "cannot start worker threads", LOG_END);
        goto out;
    }
    rt = api_router_new();
    if (!rt)
        goto out;

    g.opts.limits.max_header_bytes = c->max_header_bytes;
    g.opts.limits.max_headers = c->max_headers;
    g.opts.limits.max_url_bytes = c->max_url_bytes;
    g.opts.limits.max_body_bytes = c->max_body_bytes;
    g.opts.header_timeout_ms = c->header_timeout_ms;
    g.opts.body_timeout_ms = c->body_timeout_ms;
    g.opts.idle_timeout_ms = c->idle_timeout_ms;
    g.opts.write_timeout_ms = c->write_timeout_ms;
    g.opts.drain_timeout_ms = c->drain_timeout_ms;
    g.opts.max_connections = c->max_connections;
    g.opts.open_conns = &g.open_conns;
    g.sh.cfg = c;
    g.sh.pool = pool;
    g.sh.store = store;
    g.sh.secret_key = secret_key;
    g.sh.denylist = denylist;
    g.sh.lockout = lockout;
    store_on_invalidate(store, on_store_invalidate, NULL); /* (needs the lockout table) */
    /* What was revoked before this start is known too, so a store outage cannot make it
     * valid again (the revoked list is bounded by its tokens' lifetimes). */
    if (store_each(store, STORE_T_REVOKED, on_revoked_record, NULL))
        log_kv(LOG_WARN, "cannot read the revoked list at start", LOG_END);
    g.sh.limits = limits;
    g.sh.proxies = proxies;
    g.sh.rt = rt;
    g.sh.open_conns = &g.open_conns;
    g.sh.started_at = clock_wall_s();

    /* The default issuer names the address actually bound (port 0 resolved). */
    if (c->issuer[0])
        snprintf(g.sh.issuer, sizeof(g.sh.issuer), "%s", c->issuer);
    else if (strchr(host, ':'))
        snprintf(g.sh.issuer, sizeof(g.sh.issuer), "http://[%s]:%u", host, bound);
    else
        snprintf(g.sh.issuer, sizeof(g.sh.issuer), "http://%s:%u", host, bound);
    if (set_default_audience(c))
        goto out;
    /* Events name the instance that emitted them (several write to one log or stream). */
    if (c->ev_source[0]) {
        ev_set_source(c->ev_source);
    } else {
        char hn[64] = "", src[64];
        gethostname(hn, sizeof(hn) - 1);
        hn[strspn(hn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")] = 0;
        snprintf(src, sizeof(src), "%.40s:%u", hn[0] ? hn : "localhost", bound);
        ev_set_source(src);
    }
    /* Instances sharing a store must name one issuer, or they refuse each other's tokens. */
    int prc = store_pin(store, "issuer", g.sh.issuer, strlen(g.sh.issuer));
    if (prc) {
        log_kv(LOG_ERROR,
               prc == ERR_CONFLICT ? "this issuer differs from the one the other instances on "
                                     "this store use: set the same issuer on every instance"
                                   : "cannot reach the store to check the issuer",
               "issuer", g.sh.issuer, LOG_END);
        goto out;
    }
    pthread_mutex_init(&g.sh.ring_mu, NULL);
    if (tok_ring_load(&g.sh.ring, store)) {
        log_kv(LOG_ERROR, "cannot read the signing keys", LOG_END);
        goto out;
    }
    atomic_store(&g.sh.ring_version, 1);
    sem_init(&g.started, 0, 0);
    uv_loop_t *ml = uv_default_loop();
    uv_async_init(ml, &g.exit_async, on_exit_async);
    uv_signal_init(ml, &g.sig_term);
    uv_signal_init(ml, &g.sig_int);
    uv_signal_init(ml, &g.sig_hup);
    uv_timer_init(ml, &g.drain_timer);
    uv_timer_init(ml, &g.maint_timer);
    uv_timer_init(ml, &g.policy_timer);
    g.last_purge = clock_wall_s();
    uv_signal_start(&g.sig_term, on_signal, SIGTERM);
    uv_signal_start(&g.sig_int, on_signal, SIGINT);
    uv_signal_start(&g.sig_hup, on_signal, SIGHUP);

    for (unsigned i = 0; i < g.nloops; i++) {
        struct worker_loop *w = &g.loops[i];
        if (loop_init(&w->lp, i)) {
            log_kv(LOG_ERROR, "cannot create event loop", LOG_END);
            exit(1);
        }
        w->ctx.sh = &g.sh;
        w->ctx.lp = &w->lp;
        w->ctx.met = met_shard_new();
        if (!w->ctx.met || pthread_create(&w->lp.thread, NULL, loop_main, w)) {
            log_kv(LOG_ERROR, "cannot start loop thread", LOG_END);
            exit(1);
        }
    }
    int failed = 0;
    for (unsigned i = 0; i < g.nloops; i++)
        sem_wait(&g.started);
    for (unsigned i = 0; i < g.nloops; i++)
        failed |= g.loops[i].failed;
    if (failed) {
        begin_shutdown("start-up failure");
        uv_run(ml, UV_RUN_DEFAULT);
        for (unsigned i = 0; i < g.nloops; i++)
            pthread_join(g.loops[i].lp.thread, NULL);
        pool_drain(pool);
        goto out;
    }
    if (host[0] == ':' || strchr(host, ':'))
        snprintf(addr, sizeof(addr), "[%s]:%u", host, bound);
    else
        snprintf(addr, sizeof(addr), "%s:%u", host, bound);
    char nl[16], nw[16];
    snprintf(nl, sizeof(nl), "%u", g.nloops);
    snprintf(nw, sizeof(nw), "%u", nworkers);
    log_kv(LOG_INFO, "listening", "addr", addr, "threads", nl, "workers", nw, "store",
           c->store[0] ? "redis" : "lmdb", "data_dir", c->data_dir, "issuer", g.sh.issuer,
           "version", FG_VERSION, LOG_END);
    if (aaddr[0])
        log_kv(LOG_INFO, "admin API listening", "addr", aaddr, LOG_END);

    uv_timer_start(&g.maint_timer, on_maintenance, 1000, 60000);
    uv_timer_start(&g.policy_timer, on_policy, 1000, 1000);
    uv_run(ml, UV_RUN_DEFAULT);
    /* The drain is over and the signal handles are closed, which restored the default
     * actions: a repeated SIGTERM now would turn a clean exit into "killed" (143). */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);

    for (unsigned i = 0; i < g.nloops; i++)
        pthread_join(g.loops[i].lp.thread, NULL);
    pool_drain(pool);
    ev_stop(g.cfg.drain_timeout_ms); /* deliveries in flight get the drain time too */
    rc = 0;
    log_kv(LOG_INFO, "stopped", LOG_END);
out:
    for (unsigned i = 0; g.loops && i < g.nloops; i++) {
        if (g.loops[i].lp.thread) {
            http_server_free(g.loops[i].srv);
            http_server_free(g.loops[i].admin);
            loop_fini(&g.loops[i].lp);
        }
        if (g.loops[i].afd >= 0)
            close(g.loops[i].afd);
    }
    if (g.nloops && g.loops && g.loops[0].lp.thread)
        uv_loop_close(uv_default_loop());
    for (unsigned i = 0; g.loops && i < g.nloops; i++)
        if (g.loops[i].fd >= 0)
            close(g.loops[i].fd);
    ev_stop(0); /* (after a start-up failure; a no-op after a clean stop) */
    pool_free(pool);
    tok_ring_clear(&g.sh.ring);
    store_close(store); /* after the loops and the pool: nothing submits any more */
    sodium_free(secret_key);
    auth_denylist_free(denylist);
    pol_lockout_free(lockout);
    pol_gcra_free(limits);
    pol_proxies_free(proxies);
    http_router_free(rt);
    http_router_free(admin_rt);
    mem_free(g.loops);
    log_close();
    return rc;
}

/* Whether flag argv[i] takes argv[i + 1] as its value: every flag does, but --flag=value,
 * --json, and a boolean flag alone (--init-store), which means true unless a boolean word
 * follows it (--registration false). */
static bool takes_next(int argc, char **argv, int i)
{
    if (strchr(argv[i], '=') || strcmp(argv[i], "--json") == 0 || i + 1 >= argc)
        return false;
    return !cfg_flag_is_bool(argv[i]) || cfg_bool_word(argv[i + 1]) >= 0;
}

/* Applies flags from argv[from..]; returns 0, or 2 after printing the problem. */
static int apply_flags(int argc, char **argv, int from)
{
    struct cfg_error e = {0};

    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            i++; /* read earlier */
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        char name[128];
        const char *val;
        const char *eq = strchr(a, '=');
        if (eq && strncmp(a, "--", 2) == 0) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
            if (takes_next(argc, argv, i))
                val = argv[++i];
            else
                val = cfg_flag_is_bool(a) ? "true" : NULL;
        }
        int rc = cfg_set_flag(&g.cfg, name, val, &e);
        if (rc == ERR_NOTFOUND) {
            fprintf(stderr, "floodgate: unknown option '%s' (see floodgate --help)\n", name);
            return 2;
        }
        if (rc) {
            cfg_fail(&e);
            return 2;
        }
    }
    return 0;
}

static const char *find_config(int argc, char **argv)
{
    const char *path = getenv("FLOODGATE_CONFIG");

    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    return path && *path ? path : NULL;
}

/* cfg_validate, and what only the modules above core can judge: the store's address. */
static int validate(const struct cfg *c, struct cfg_error *e)
{
    if (cfg_validate(c, e))
        return ERR_INVAL;
    if (c->store[0]) {
        struct redis_url u;
        char why[160];
        if (redis_url_parse(c->store, "store", &u, why, sizeof(why))) {
            snprintf(e->where, sizeof(e->where), "store");
            snprintf(e->what, sizeof(e->what),
                     "'%.200s' is not a Redis address: expected "
                     "redis://[[user]:password@]host[:port][/db] or "
                     "unix:///path[?db=N&user=U&password=P]",
                     c->store);
            return ERR_INVAL;
        }
    }
    return ERR_OK;
}

static int check_config(const char *path)
{
    struct cfg_error e = {0};

    cfg_defaults(&g.cfg);
    if (cfg_load_file(&g.cfg, path, &e) || validate(&g.cfg, &e)) {
        cfg_fail(&e);
        return 1;
    }
    printf("%s: OK\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    struct cfg_error e = {0};

    /* Writes to a peer that went away (a client, Redis) are errors to handle, not a reason
     * to die: for the server, the CLI and the rehearsal alike. */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--config-reference") == 0) {
            cfg_print_markdown(stdout); /* docs/configuration.md is made from this */
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("floodgate %s (libuv %s, http_parser %lu.%lu.%lu)\n", FG_VERSION,
                   uv_version_string(), (http_parser_version() >> 16) & 255,
                   (http_parser_version() >> 8) & 255, http_parser_version() & 255);
            return 0;
        }
    }
    if (argc > 1 && strcmp(argv[1], "rehearse") == 0)
        return rh_main(argc - 1, argv + 1); /* a client: the server's configuration is not read */
    if (argc > 1 && strcmp(argv[1], "check-config") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: floodgate check-config FILE\n");
            return 2;
        }
        return check_config(argv[2]);
    }
    /* The first word that is not a flag or a flag's value is the command. */
    int cmd = 0;
    for (int i = 1; i < argc && !cmd; i++) {
        if (argv[i][0] != '-')
            cmd = i;
        else if (takes_next(argc, argv, i))
            i++;
    }
    if (cmd && !api_cli_is_command(argv[cmd])) {
        fprintf(stderr, "floodgate: unknown command '%s' (see floodgate --help)\n", argv[cmd]);
        return 2;
    }
    cfg_defaults(&g.cfg);
    const char *path = find_config(argc, argv);
    if (path && cfg_load_file(&g.cfg, path, &e)) {
        cfg_fail(&e);
        return 2;
    }
    if (cfg_load_env(&g.cfg, (const char *const *)environ, &e)) {
        cfg_fail(&e);
        return 2;
    }
    int rc = apply_flags(cmd ? cmd : argc, argv, 1);
    if (rc)
        return rc;
    if (validate(&g.cfg, &e)) {
        cfg_fail(&e);
        return 2;
    }
    if (cmd)
        return api_cli_main(&g.cfg, argc - cmd, argv + cmd);
    return serve();
}
