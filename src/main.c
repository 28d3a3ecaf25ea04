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
#include <malloc.h>
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
#include "auth/auth_origins.h"
#include "auth/auth_user.h"
#include "cli/cli.h"
#include "core/buf.h"
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
#include "metrics/met_text.h"
#include "policy/pol_clientip.h"
#include "policy/pol_console.h"
#include "policy/pol_control.h"
#include "policy/pol_distinct.h"
#include "policy/pol_gcra.h"
#include "policy/pol_lockout.h"
#include "policy/pol_mode.h"
#include "rehearse/rh.h"
#include "store/store.h"
#include "token/tok_cache.h"
#include "token/tok_keys.h"
#include "web/web.h"

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
    _Atomic unsigned open_conns;
    struct worker_loop *loops;
    unsigned nloops;
    unsigned nworkers;
    _Atomic unsigned exited;
    sem_t started; /* each loop posts once it listens (or failed to) */
    uv_async_t exit_async;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uv_timer_t maint_timer;
    uv_timer_t policy_timer;
    struct store_purge purge; /* expired records: a pass a purge_interval, a slice a second */
    struct pol_control pc;
    struct pol_console console; /* the console's counters at the last tick */
    char instance[CFG_STR_MAX]; /* host:port, as events and the console name it */
    uint64_t events_gen;        /* store generation of the events pc holds */
    int shutting_down;
    /* what serve() opened, closed by close_all() (api_shared holds borrowed copies) */
    struct http_router *rt, *admin_rt;
    struct pool *pool;
    struct store *store;
    uint8_t *secret_key;
    struct auth_denylist *denylist;
    struct pol_lockout *lockout;
    struct pol_gcra *limits;
    struct pol_proxies *proxies;
} g;

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
        pol_lockout_unlock_user(g.lockout, str_c(name));
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
    if (c->key_rotation_s && now - newest_key(&g.sh.tok.ring) >= (int64_t)c->key_rotation_s &&
        store_lease(g.sh.store, "key-rotation", 120000) == ERR_OK) {
        struct tok_ring r = {0};
        if (tok_ring_load(&r, g.sh.store) == ERR_OK &&
            now - newest_key(&r) >= (int64_t)c->key_rotation_s) {
            struct tok_key_rotation rot;
            int rrc = tok_keys_rotate_by(g.sh.store, &g.sh.tok.keys, now, &rot);
            if (rrc)
                log_kv(LOG_ERROR, "scheduled key rotation failed", "error", err_str(rrc), LOG_END);
            tok_keys_rotated(&rot, "schedule"); /* (the keys made, even before a failure) */
        }
        tok_ring_clear(&r);
    }
    store_purge_step(&g.purge, g.sh.store, (int64_t)c->purge_interval_s, now);
}

/* The key ring changed in the store (keys, clients or events: one counter): read it here,
 * where waiting for the store blocks no request, for the loop threads to copy. */
static void reload_ring(void)
{
    struct tok_ring fresh = {0};
    if (tok_ring_load(&fresh, g.sh.store) == ERR_OK)
        tok_svc_publish_ring(&g.sh.tok, &fresh);
}

/* The live console's second (policy/pol_console.h): filed in the shared store for the
 * other instances' consoles, and published here while someone watches. */
static void console_second(const struct pol_tick *tick, const char *sample,
                           const struct met_shard *sum, const struct pool_stats *ps,
                           unsigned serving)
{
    struct pol_console_in in = {
        .instance = g.instance,
        .now_ms = clock_wall_ms(),
        .pc = &g.pc,
        .t = tick,
        .mode = (enum pol_mode)atomic_load(&g.sh.pol.mode),
        .override = (enum pol_mode)atomic_load(&g.sh.pol.mode_override),
        .floor = g.pc.ctl.floor,
        .sample = sample,
        .ok = atomic_load(&g.sh.logins[AUTH_LOGINS_OK]),
        .failed = atomic_load(&g.sh.logins[AUTH_LOGINS_FAILED]),
        .locked = atomic_load(&g.sh.logins[AUTH_LOGINS_REFUSED]),
        .shed = sum->pool_rejected,
        .workers = ps->threads,
        .queued = ps->depth,
        .serving = serving,
        .hash_deadline_ms = g.cfg.hash_deadline_ms,
    };
    struct buf f;

    for (unsigned r = 0; r < POL_RL_COUNT; r++)
        in.rate_limited[r] = atomic_load(&sum->rate_limited[r]);
    buf_init(&f, 256 * 1024);
    if (pol_console_frame(&g.console, &in, &f) == ERR_OK)
        pol_console_publish(&g.sh.console, g.sh.store, g.instance, in.now_ms, &f);
    buf_fini(&f);
}

/*
 * The adaptive policy, once a second on the main thread: the counters of this instant go
 * to the controller (policy/pol_control.c), and its decisions to the loop threads (atomics)
 * and the event sinks. Store reads happen here, never on a loop thread.
 */
static void on_policy(uv_timer_t *t)
{
    struct pool_stats ps;
    struct pol_counters in;
    struct pol_tick tick;
    struct met_shard *sum = xcalloc(1, sizeof(*sum));
    int64_t now = clock_wall_s();
    struct buf b;

    (void)t;
    pool_stats(g.sh.pool, &ps);
    met_sum(sum);
    in.ok = atomic_load(&g.sh.logins[0]);
    in.failed = atomic_load(&g.sh.logins[1]);
    in.refused = atomic_load(&g.sh.logins[2]);
    in.shed = sum->pool_rejected;
    in.hash_wait_ms = (double)pool_expected_wait_ms(g.sh.pool);
    /* from the jobs that hashed only: a login refused before its hash, an admin job, would
     * make the workers look several times faster than they hash */
    in.login_capacity = ps.ewma_hash_ns ? (double)ps.threads * 1e9 / (double)ps.ewma_hash_ns : 0;
    in.failed_ips = pol_distinct_take(g.sh.failed_ips);
    uint64_t gen = store_generation_recent(g.sh.store);
    if (gen != g.sh.tok.ring.generation) {
        reload_ring();
        auth_origins_reload(g.sh.store); /* (clients changed, perhaps their origins) */
    }
    if (gen != g.events_gen && pol_control_load_events(&g.pc, g.sh.store) == ERR_OK)
        g.events_gen = gen;
    unsigned serving = store_members(g.sh.store); /* 1 on LMDB */
    pol_control_tick(&g.pc, &in, (enum pol_mode)atomic_load(&g.sh.pol.mode_override), serving, now,
                     &tick);
    buf_init(&b, sizeof(g.sh.pol.sample));
    int fit = pol_control_json(&g.pc, &tick.s, sum, g.sh.route_names, g.sh.nroutes, &b) ==
              ERR_OK; /* (too long for the snapshot: keep the last one) */
    fit = fit && buf_append(&b, "", 1) == ERR_OK; /* (a C string for the console) */
    if (fit)
        b.len--;
    pol_state_publish(&g.sh.pol, &g.pc, &tick, fit ? &b : NULL);
    console_second(&tick, fit ? b.p : NULL, sum, &ps, serving);
    buf_fini(&b);
    mem_free(sum);
    pol_tick_announce(&tick, serving);
    if (g.purge.on) /* (a pass under way: its next slice) */
        store_purge_step(&g.purge, g.sh.store, (int64_t)g.cfg.purge_interval_s, now);
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

/* ---- start-up, in order; each step logs its own failure and returns non-zero ---------- */

static int open_logs(const struct cfg *c)
{
    if (log_open(c->log_file, c->log_level)) {
        fprintf(stderr, "floodgate: cannot open log file %s: %s\n", c->log_file, strerror(errno));
        return -1;
    }
    if (log_access_open(c->access_log)) {
        log_kv(LOG_ERROR, "cannot open access log", "path", c->access_log, "error", strerror(errno),
               LOG_END);
        return -1;
    }
    if (ensure_dir(c->data_dir)) {
        log_kv(LOG_ERROR, "data directory is not usable", "path", c->data_dir, "error",
               strerror(errno), LOG_END);
        return -1;
    }
    if (cr_init()) {
        log_kv(LOG_ERROR, "libsodium failed to start", LOG_END);
        return -1;
    }
    return 0;
}

/* The server key, the store, the event sinks, the signing keys and the deny list. */
static int open_store(const struct cfg *c)
{
    char err[512];

    g.secret_key = sodium_malloc(CR_HASH_KEY_LEN);
    if (!g.secret_key || cli_store_open(c, &g.store, g.secret_key, err, sizeof(err))) {
        log_kv(LOG_ERROR, "cannot start", "error", g.secret_key ? err : "no memory", LOG_END);
        return -1;
    }
    store_join(g.store); /* counted among the serving instances (shared store) */
    if (ev_start(c, g.secret_key, err, sizeof(err))) {
        log_kv(LOG_ERROR, "cannot start the event sinks", "error", err, LOG_END);
        return -1;
    }
    int krc = cli_keys_ensure(g.store);
    if (krc == ERR_DENIED) {
        log_kv(LOG_ERROR,
               "a signing key in the store is not sealed: refused (anyone who can write to the "
               "store could have planted it). If it is yours, from a store older than sealing, "
               "run 'floodgate key reseal' once",
               LOG_END);
        return -1;
    }
    if (krc) {
        log_kv(LOG_ERROR,
               "cannot read or create the signing keys (unreachable store, or keys sealed "
               "under another server key: secret_key_file must be the one they were made with)",
               LOG_END);
        return -1;
    }
    if (c->password_denylist[0] &&
        auth_denylist_load(c->password_denylist, &g.denylist, err, sizeof(err))) {
        log_kv(LOG_ERROR, "cannot load the password deny list", "error", err, LOG_END);
        return -1;
    }
    return 0;
}

/* The rate-limit rules (POL_RL_*). The adaptive policy tightens per-IP logins and
 * registrations by policy_ip_divisor_* (rate and burst; by default x1/2 in surge, x1/4 in
 * shed), and per-IP logins by at least policy_stuffing_ip_divisor during credential
 * stuffing; other rules stay. */
static void init_rate_rules(const struct cfg *c)
{
    const struct cfg_rate *rates[POL_RL_COUNT] = {
        &c->rl_login_ip,      &c->rl_register_ip,  &c->rl_token_ip,        &c->rl_refresh_ip,
        &c->rl_verify_ip,     &c->rl_login_user,   &c->rl_token_client,    &c->rl_revoke_ip,
        &c->rl_revoke_client, &c->rl_login_global, &c->rl_register_global, &c->rl_token_global};
    struct pol_limit_spec specs[POL_RL_COUNT];
    for (int i = 0; i < POL_RL_COUNT; i++)
        specs[i] = (struct pol_limit_spec){
            .count = rates[i]->count,
            .per_s = rates[i]->per_s,
            .burst = rates[i]->burst,
            .by_mode = i == POL_RL_LOGIN || i == POL_RL_REGISTER,
            .by_stuffing = i == POL_RL_LOGIN,
            .exact_when_shared = i == POL_RL_LOGIN || i == POL_RL_LOGIN_USER,
        };
    /* N instances on one store: each allows its share of the total (ratelimit_split), except
     * logins per IP and per user, which the shared guard counts exactly in the store. */
    pol_limits_init(&g.sh.limits, g.limits, &g.sh.pol, specs, POL_RL_COUNT, c->pol_ip_div,
                    c->pol_stuffing_ip_div, g.store, c->rl_split);
}

/* Trusted proxies, the lockout and rate-limit tables, and the adaptive policy. */
static int init_policy(const struct cfg *c)
{
    char err[512];
    struct pol_lockout_cfg lc = {
        .user = {c->lockout_user_attempts, c->lockout_base_s, c->lockout_max_s, c->lockout_window_s,
                 0, 0}, /* (progressive delays are for pairs) */
        .ip = {c->lockout_ip_attempts, c->lockout_base_s, c->lockout_max_s, c->lockout_window_s, 0,
               0},
        .pair = {c->lockout_pair_attempts, c->lockout_base_s, c->lockout_max_s, c->lockout_window_s,
                 c->lockout_delay_after, c->lockout_delay_s},
        .entries = c->lockout_entries,
    };
    struct pol_mode_cfg mc;

    json_secure_alloc_init();
    if (c->trusted_proxies[0] &&
        pol_proxies_parse(c->trusted_proxies, &g.proxies, err, sizeof(err))) {
        log_kv(LOG_ERROR, "bad trusted_proxies", "error", err, LOG_END);
        return -1;
    }
    g.lockout = pol_lockout_new(&lc);
    g.limits = pol_gcra_new(c->rl_entries);
    init_rate_rules(c);
    g.sh.failed_ips = xcalloc(1, sizeof(*g.sh.failed_ips));
    pol_distinct_init(g.sh.failed_ips);
    pol_mode_cfg_default(&mc);
    for (int m = 1; m < POL_MODES; m++) {
        mc.wait_ms[m] = c->pol_wait_ms[m];
        mc.load_ratio[m] = c->pol_load_pct[m] / 100.0;
    }
    mc.stuffing_ratio = c->pol_stuffing_pct / 100.0;
    mc.stuffing_ips = c->pol_stuffing_ips;
    mc.down_after_s = c->pol_down_after_s;
    pol_control_init(&g.pc, &mc, c->pol_event_lead_s, clock_wall_s());
    int pause = pol_mode_parse(c->pol_registration_pause);
    pol_state_init(&g.sh.pol, pause >= 0 && pause < POL_MODES ? pause : POL_MODES); /* never */
    pol_console_pub_init(&g.sh.console);
    return 0;
}

/* One SO_REUSEPORT socket per loop on `host`:`port` (0: the kernel picks, and every later
 * socket takes the same), in each loop's fd (afd for the admin API); *bound is the port.
 * Another process listening there already is refused unless `shared`: SO_REUSEPORT would
 * otherwise hand it a share of the connections without a word. */
static int listen_all(const char *host, unsigned port, bool admin, unsigned *bound,
                      const char *addr, bool shared)
{
    if (!shared && http_listen_free(host, port) == ERR_CONFLICT) {
        log_kv(LOG_ERROR,
               admin ? "another process already listens on admin_listen"
                     : "another process already listens on listen",
               admin ? "admin_listen" : "listen", addr, "hint",
               "a floodgate started twice? stop the other, or set listen_shared = true to "
               "share the port with it on purpose (a zero-downtime restart)",
               LOG_END);
        return -1;
    }
    for (unsigned i = 0; i < g.nloops; i++) {
        int *fd = admin ? &g.loops[i].afd : &g.loops[i].fd;
        int lerr = http_listen_open(host, i == 0 ? port : *bound, fd, bound);
        if (lerr) {
            log_kv(LOG_ERROR, admin ? "cannot listen for the admin API" : "cannot listen",
                   admin ? "admin_listen" : "listen", addr, "error",
                   lerr == ERR_INVAL ? "unknown host" : strerror(errno), LOG_END);
            return -1;
        }
    }
    return 0;
}

/* The listeners (the API's and the admin API's), the worker pool and the routers. */
static int open_listeners(const struct cfg *c, char *host, size_t cap, unsigned *bound, char *aaddr,
                          size_t acap)
{
    unsigned port, aport, abound = 0;
    char ahost[256];

    g.nloops = c->threads ? c->threads : ncpus();
    g.nworkers = c->workers ? c->workers : ncpus();
    http_session_global_init(c->max_header_bytes);
    cfg_split_hostport(c->listen, host, cap, &port);
    g.loops = xcalloc(g.nloops, sizeof(*g.loops));
    for (unsigned i = 0; i < g.nloops; i++)
        g.loops[i].fd = g.loops[i].afd = -1;
    if (listen_all(host, port, false, bound, c->listen, c->listen_shared))
        return -1;
    g.rt = api_router_new();
    if (!g.rt)
        return -1;
    aaddr[0] = '\0';
    if (c->admin_token[0]) {
        cfg_split_hostport(c->admin_listen, ahost, sizeof(ahost), &aport);
        if (listen_all(ahost, aport, true, &abound, c->admin_listen, c->listen_shared))
            return -1;
        snprintf(aaddr, acap, strchr(ahost, ':') ? "[%s]:%u" : "%s:%u", ahost, abound);
        if (!cfg_is_loopback(c->admin_listen))
            log_kv(LOG_WARN, "the admin API listens beyond this machine", "admin_listen",
                   c->admin_listen, "hint",
                   "it manages users, keys and modes: keep it on loopback, or firewalled", LOG_END);
        g.admin_rt = api_admin_router_new(http_router_count(g.rt) + 1);
        if (!g.admin_rt)
            return -1;
    }
    if (pool_new(g.nworkers, c->worker_queue, c->worker_nice, &g.pool)) {
        log_kv(LOG_ERROR, "cannot start worker threads", LOG_END);
        return -1;
    }
    /* route ids: the API's 1..n, the admin API's after them (one metrics table) */
    g.sh.nroutes = http_router_count(g.rt) + (g.admin_rt ? http_router_count(g.admin_rt) : 0);
    for (unsigned r = 1; r <= g.sh.nroutes && r < MET_ROUTES_MAX; r++) {
        g.sh.route_names[r] = http_router_pattern(g.rt, r);
        if (!g.sh.route_names[r] && g.admin_rt)
            g.sh.route_names[r] = http_router_pattern(g.admin_rt, r);
    }
    return 0;
}

static void init_http_opts(const struct cfg *c)
{
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
}

/* The issuer (the default names the address actually bound: port 0 resolved), the default
 * audience, and the name events give this instance (several write to one log or stream). */
static int init_identity(const struct cfg *c, const char *host, unsigned bound)
{
    if (c->issuer[0])
        snprintf(g.sh.issuer, sizeof(g.sh.issuer), "%s", c->issuer);
    else if (strchr(host, ':'))
        snprintf(g.sh.issuer, sizeof(g.sh.issuer), "http://[%s]:%u", host, bound);
    else
        snprintf(g.sh.issuer, sizeof(g.sh.issuer), "http://%s:%u", host, bound);
    if (set_default_audience(c))
        return -1;
    char err[512];
    const char *why;
    if (web_load(c->templates_dir, err, sizeof(err)) ||
        web_load_logo(c->logo_file, err, sizeof(err))) {
        log_kv(LOG_ERROR, err, LOG_END);
        return -1;
    }
    if (auth_origins_configure(c->cors_origins, &why)) {
        log_kv(LOG_ERROR, "cors_origins", "error", why, LOG_END);
        return -1;
    }
    if (auth_origins_reload(g.store))
        log_kv(LOG_WARN, "cannot read the clients' web origins at start", LOG_END);
    if (c->ev_source[0]) {
        snprintf(g.instance, sizeof(g.instance), "%s", c->ev_source);
    } else {
        char hn[64] = "";
        gethostname(hn, sizeof(hn) - 1);
        hn[strspn(hn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")] = 0;
        snprintf(g.instance, sizeof(g.instance), "%.40s:%u", hn[0] ? hn : "localhost", bound);
    }
    ev_set_source(g.instance);
    /* Instances sharing a store must name one issuer, or they refuse each other's tokens. */
    int prc = store_pin(g.store, "issuer", g.sh.issuer, strlen(g.sh.issuer));
    if (prc) {
        log_kv(LOG_ERROR,
               prc == ERR_CONFLICT ? "this issuer differs from the one the other instances on "
                                     "this store use: set the same issuer on every instance"
                                   : "cannot reach the store to check the issuer",
               "issuer", g.sh.issuer, LOG_END);
        return -1;
    }
    return 0;
}

/* What the loop threads share, and what they must know before the first request: the
 * revocations made before this start (so a store outage cannot make them valid again; the
 * list is bounded by its tokens' lifetimes) and the signing keys. */
static int init_shared(const struct cfg *c, const char *host, unsigned bound)
{
    g.sh.cfg = c;
    g.sh.pool = g.pool;
    g.sh.store = g.store;
    g.sh.proxies = g.proxies;
    g.sh.rt = g.rt;
    g.sh.open_conns = &g.open_conns;
    g.sh.started_at = clock_wall_s();
    g.sh.tok = (struct tok_svc){
        .st = g.store,
        .pool = g.pool,
        .key = g.secret_key,
        .issuer = g.sh.issuer,
        .leeway_s = c->leeway_ms / 1000,
        .refresh_ttl_s = c->refresh_ttl_s,
        .refresh_idle_s = c->refresh_idle_ttl_s,
        .refresh_grace_s = c->refresh_grace_ms / 1000,
        .reuse_revokes_all = c->reuse_revokes_all,
        .stale_ms = c->redis_stale_ms,
        .stale_unchecked = c->redis_stale_unchecked,
        .cache_entries = c->verify_cache,
        .keys = {tok_alg_parse(c->signing_alg), c->key_publish_ahead_ms / 1000, c->leeway_ms / 1000,
                 tok_alg_parse(c->id_token_signing_alg)},
    };
    g.sh.auth = (struct auth_svc){
        .st = g.store,
        .pool = g.pool,
        .key = g.secret_key,
        .pp = {c->argon2_memory_kib, c->argon2_passes, c->argon2_lanes},
        .hash_deadline_ms = c->hash_deadline_ms,
        .denylist = g.denylist,
        .lockout = g.lockout,
        .failed_ips = g.sh.failed_ips,
        .logins = g.sh.logins,
        .tok = &g.sh.tok,
        .lock_attempts = {c->lockout_user_attempts, c->lockout_ip_attempts,
                          c->lockout_pair_attempts},
        .lock_base_s = c->lockout_base_s,
        .lock_max_s = c->lockout_max_s,
        .lock_window_s = c->lockout_window_s,
        .session_idle_s = c->session_idle_s,
        .session_ttl_s = c->session_ttl_s,
    };
    store_on_invalidate(g.store, on_store_invalidate, NULL); /* (needs the lockout table) */
    if (store_each(g.store, STORE_T_REVOKED, on_revoked_record, NULL))
        log_kv(LOG_WARN, "cannot read the revoked list at start", LOG_END);
    unsigned indexed = 0; /* users from before UserInfo's index (auth_user.h) */
    if (auth_user_index_backfill(g.store, &indexed))
        log_kv(LOG_WARN, "cannot index the users at start", LOG_END);
    else if (indexed)
        log_msg(LOG_INFO, "%u users indexed by id for UserInfo", indexed);
    if (init_identity(c, host, bound))
        return -1;
    pthread_mutex_init(&g.sh.tok.ring_mu, NULL);
    if (tok_ring_load(&g.sh.tok.ring, g.store)) {
        log_kv(LOG_ERROR, "cannot read the signing keys", LOG_END);
        return -1;
    }
    atomic_store(&g.sh.tok.ring_version, 1);
    return 0;
}

/* The main thread's handles: signals, the exit notice, the drain and the periodic timers. */
static void init_main_loop(void)
{
    uv_loop_t *ml = uv_default_loop();
    uv_async_init(ml, &g.exit_async, on_exit_async);
    uv_signal_init(ml, &g.sig_term);
    uv_signal_init(ml, &g.sig_int);
    uv_signal_init(ml, &g.sig_hup);
    uv_timer_init(ml, &g.drain_timer);
    uv_timer_init(ml, &g.maint_timer);
    uv_timer_init(ml, &g.policy_timer);
    store_purge_init(&g.purge, clock_wall_s());
    uv_signal_start(&g.sig_term, on_signal, SIGTERM);
    uv_signal_start(&g.sig_int, on_signal, SIGINT);
    uv_signal_start(&g.sig_hup, on_signal, SIGHUP);
}

/* Starts the loop threads and waits until each listens or failed to: -1 if one failed. */
static int start_loops(void)
{
    int failed = 0;

    sem_init(&g.started, 0, 0);
    met_proc_init(); /* (before any loop thread: it opens a descriptor) */
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
        loop_name_thread(w->lp.thread, "fg-loop", i);
    }
    for (unsigned i = 0; i < g.nloops; i++)
        sem_wait(&g.started);
    for (unsigned i = 0; i < g.nloops; i++)
        failed |= g.loops[i].failed;
    return failed ? -1 : 0;
}

static void log_listening(const struct cfg *c, const char *host, unsigned bound, const char *aaddr)
{
    char addr[300], nl[16], nw[16];

    if (host[0] == ':' || strchr(host, ':'))
        snprintf(addr, sizeof(addr), "[%s]:%u", host, bound);
    else
        snprintf(addr, sizeof(addr), "%s:%u", host, bound);
    snprintf(nl, sizeof(nl), "%u", g.nloops);
    snprintf(nw, sizeof(nw), "%u", g.nworkers);
    log_kv(LOG_INFO, "listening", "addr", addr, "threads", nl, "workers", nw, "store",
           c->store[0] ? "redis" : "lmdb", "data_dir", c->data_dir, "issuer", g.sh.issuer,
           "version", FG_VERSION, LOG_END);
    if (aaddr[0])
        log_kv(LOG_INFO, "admin API listening", "addr", aaddr, LOG_END);
}

/* Runs the main loop until the drain is over, then waits for the threads. */
static void run_until_stopped(void)
{
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    /* The drain is over and the signal handles are closed, which restored the default
     * actions: a repeated SIGTERM now would turn a clean exit into "killed" (143). */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    for (unsigned i = 0; i < g.nloops; i++)
        pthread_join(g.loops[i].lp.thread, NULL);
    pool_drain(g.pool);
}

/* Closes what serve() opened, whichever step it reached. */
static void close_all(void)
{
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
    pool_free(g.pool);
    tok_ring_clear(&g.sh.tok.ring);
    auth_origins_free();
    store_close(g.store); /* after the loops and the pool: nothing submits any more */
    sodium_free(g.secret_key);
    auth_denylist_free(g.denylist);
    pol_lockout_free(g.lockout);
    pol_gcra_free(g.limits);
    pol_proxies_free(g.proxies);
    http_router_free(g.rt);
    http_router_free(g.admin_rt);
    mem_free(g.loops);
    log_close();
}

/* Free heap top kept per malloc arena (glibc makes at most 8 per core): the most a burst's
 * memory stays after it, per arena. */
#define TRIM_KEEP (4 << 20)

static int serve(void)
{
    const struct cfg *c = &g.cfg;
    char host[256], aaddr[300];
    unsigned bound = 0;
    int rc = 1;

    /* A loop's requests in flight take and give back a few hundred KiB of heap at a time
     * (jobs, answers). glibc gives the free top of a thread's arena back to the kernel past
     * 128 KiB, so each burst grew it again and first-touched its pages (minor faults, a
     * sysmalloc and an madvise per burst: docs/benchmarks.md). Up to TRIM_KEEP of free top is
     * kept per arena instead; what is freed beyond that still goes back. (A fixed threshold also
     * fixes the mmap threshold at 128 KiB: a body is at most 64 KiB by default, and the token
     * flows' buffers are smaller.) */
    mallopt(M_TRIM_THRESHOLD, TRIM_KEEP);
    if (open_logs(c))
        return 1;
    if (open_store(c) || init_policy(c) ||
        open_listeners(c, host, sizeof(host), &bound, aaddr, sizeof(aaddr)))
        goto out;
    init_http_opts(c);
    if (init_shared(c, host, bound))
        goto out;
    init_main_loop();
    if (start_loops()) {
        begin_shutdown("start-up failure");
        run_until_stopped();
        goto out;
    }
    log_listening(c, host, bound, aaddr);
    uv_timer_start(&g.maint_timer, on_maintenance, 1000, 60000);
    uv_timer_start(&g.policy_timer, on_policy, 1000, 1000);
    run_until_stopped();
    ev_stop(g.cfg.drain_timeout_ms); /* deliveries in flight get the drain time too */
    rc = 0;
    log_kv(LOG_INFO, "stopped", LOG_END);
out:
    close_all();
    return rc;
}

int main(int argc, char **argv)
{
    int cmd;

    /* Writes to a peer that went away (a client, Redis) are errors to handle, not a reason
     * to die: for the server, the CLI and the rehearsal alike. */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "rehearse") == 0) /* (its own options, --help included) */
        return rh_main(argc - 1, argv + 1); /* a client: the server's configuration is not read */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_usage(stdout);
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
    if (argc > 1 && strcmp(argv[1], "check-config") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: floodgate check-config FILE\n");
            return 2;
        }
        return cli_check_config(&g.cfg, argv[2]);
    }
    int rc = cli_config(&g.cfg, argc, argv, &cmd);
    if (rc)
        return rc;
    if (cmd)
        return cli_main(&g.cfg, argc - cmd, argv + cmd);
    return serve();
}
