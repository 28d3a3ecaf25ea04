/* SPDX-License-Identifier: MIT */
/*
 * The shared store on Redis: many floodgate instances, one state.
 *
 * Writes: each loop thread owns one async connection on its libuv loop (src/redis/
 * redis_conn.c, which loads the script on every connection). store_submit hands the op to
 * that thread through the loop's mailbox; there it is one EVALSHA of the store script
 * (store_redis_lua.c), so every operation is atomic in Redis and costs one round trip, and
 * everything a loop sends in one iteration leaves in one write (pipelining). The op
 * completes on the same thread when its answer arrives. A command unanswered after
 * timeout_ms drops the connection: every op in flight on it fails (ERR_BACKEND, the handler
 * answers 503), never a false "invalid". Reconnection backs off from 100 ms to 2 s; while
 * it waits, ops fail at once.
 *
 * Reads with an op (a loop thread's cache misses) are GETs on that thread's async
 * connection and complete like writes. Reads without an op (the CLI, start-up, workers, key
 * ring reloads) use a blocking connection per calling thread with the same timeout.
 *
 * A service thread keeps a SUBSCRIBE connection to PREFIX"inval" (revocations published by
 * the store script, atomically with the write) and reads the generation every 200 ms on a
 * connection of its own (store_generation_recent answers it, so loop threads never wait for
 * it): that answer is also the readiness the store reports, and while Redis is unhealthy every
 * read and write fails fast instead of waiting out the timeout. A serving instance
 * (store_join) also beats every second in the sorted set PREFIX"members" (member: a random
 * id, score: when it expires by Redis's clock) and counts who else does: store_members.
 *
 * Keys (PREFIX defaults to "fg:"): u:NAME, c:ID, k:KID, ev:ID (strings, the same JSON as LMDB;
 * members of idx:u, idx:c, idx:k, idx:ev), rt:HEX(digest) (a string: the record's bytes, as
 * LMDB's; a hash before) and fam:HEX(id) (a hash), expiring with what they hold, jti:ID
 * (expiry, expiring then), gen (generation counter), lease:NAME, pin:NAME, members, and the
 * channel inval. docs/internals/SCALEOUT.md lists them.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "crypto/cr.h"
#include "metrics/met_text.h"
#include "redis/redis_cluster.h"
#include "redis/redis_conn.h"
#include "redis/redis_csync.h"
#include "redis/redis_sentinel.h"
#include "redis/redis_slot.h"
#include "redis/redis_sync.h"
#include "redis/redis_url.h"
#include "redis/redis_uv.h"
#include "store/store_rec.h"
#include "store/store_redis_int.h"

/* ---- blocking connections (one per calling thread) ------------------------------------- */

void sr_url(struct redis_store *s, struct redis_url *out)
{
    pthread_mutex_lock(&s->url_mu);
    *out = s->url;
    pthread_mutex_unlock(&s->url_mu);
}

/* Connects, authenticates, selects the db and loads the script. NULL with a message. */
struct redis_sync *sr_connect_sync(struct redis_store *s, char *err, size_t cap)
{
    struct redis_url u;
    sr_url(s, &u);
    struct redis_sync *c = redis_sync_connect(&u, s->timeout_ms, err, cap);
    if (!c)
        return NULL;
    const char *load[] = {"SCRIPT", "LOAD", sr_script, NULL};
    struct redis_reply *r = redis_sync_cmdv(c, load);
    size_t n = 0;
    if (r && redis_reply_kind(r) == RK_STRING)
        redis_reply_str(r, &n);
    if (n != 40) {
        snprintf(err, cap, "redis: cannot load the store script: %s",
                 r && redis_reply_kind(r) == RK_ERROR ? redis_reply_str(r, NULL)
                                                      : "unexpected answer");
        redis_reply_free(r);
        redis_sync_close(c);
        return NULL;
    }
    redis_reply_free(r);
    return c;
}

static const char *const load_script[] = {"SCRIPT", "LOAD", sr_script, NULL};

/* A blocking link: to the one Redis, or to the cluster (the script loaded on every node's
 * connection as it is made). ERR_OK, or ERR_BACKEND with a message. */
int sr_link_open(struct redis_store *s, struct sr_link *l, char *err, size_t cap)
{
    l->one = NULL;
    l->many = NULL;
    if (s->cluster)
        l->many = redis_csync_connect(&s->curl, s->timeout_ms, load_script, err, cap);
    else
        l->one = sr_connect_sync(s, err, cap);
    return l->one || l->many ? ERR_OK : ERR_BACKEND;
}

void sr_link_close(struct sr_link *l)
{
    redis_sync_close(l->one);
    redis_csync_close(l->many);
    l->one = NULL;
    l->many = NULL;
}

unsigned sr_slot(const char *key)
{
    return redis_key_slot(key, strlen(key));
}

static bool noscript(const struct redis_reply *r)
{
    return r && redis_reply_kind(r) == RK_ERROR &&
           strncmp(redis_reply_str(r, NULL), "NOSCRIPT", 8) == 0;
}

static struct redis_reply *link_once(struct sr_link *l, unsigned slot, int argc, const char **argv,
                                     const size_t *lens)
{
    return l->many ? redis_csync_cmd(l->many, slot, argc, argv, lens)
                   : redis_sync_cmd(l->one, argc, argv, lens);
}

/* One command (on a cluster, to the primary of `slot`). NULL when the link failed: the
 * caller closes it. */
struct redis_reply *sr_link_cmd(struct redis_store *s, struct sr_link *l, unsigned slot, int argc,
                                const char **argv, const size_t *lens)
{
    (void)s;
    struct redis_reply *r = link_once(l, slot, argc, argv, lens);
    if (noscript(r)) {
        /* the script cache was flushed (SCRIPT FLUSH, a restart without persistence of it, a
         * failover): load it again there and send the command once more */
        const size_t ll[] = {6, 4, strlen(sr_script)};
        redis_reply_free(r);
        r = link_once(l, slot, 3, (const char **)(uintptr_t)load_script, ll);
        int loaded = r && redis_reply_kind(r) == RK_STRING;
        redis_reply_free(r);
        r = loaded ? link_once(l, slot, argc, argv, lens) : NULL;
    }
    return r;
}

struct redis_reply *sr_link_cmdv(struct redis_store *s, struct sr_link *l, unsigned slot,
                                 const char *const *argv)
{
    const char *av[ARGS_MAX];
    size_t al[ARGS_MAX];
    int n = 0;
    while (n < ARGS_MAX && argv[n]) {
        av[n] = argv[n];
        al[n] = strlen(argv[n]);
        n++;
    }
    return n == ARGS_MAX ? NULL : sr_link_cmd(s, l, slot, n, av, al);
}

static void sconn_unlink(struct redis_store *s, struct sconn *sc)
{
    pthread_mutex_lock(&s->mu);
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        s->sconns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    pthread_mutex_unlock(&s->mu);
}

/* Registered with the thread key: a thread that ends takes its connection with it. */
static struct redis_store *tls_owner; /* one Redis store per process */

static void sconn_dtor(void *p)
{
    struct sconn *sc = p;
    if (tls_owner)
        sconn_unlink(tls_owner, sc);
    sr_link_close(&sc->l);
    free(sc);
}

/* This thread's link, connected; NULL (fail fast) while Redis is known to be down or when
 * it cannot be reached now. */
struct sr_link *sr_sync_ctx(struct redis_store *s)
{
    struct sconn *sc = pthread_getspecific(s->tls);
    char err[256];

    if (!sc) {
        sc = calloc(1, sizeof(*sc));
        if (!sc)
            return NULL;
        pthread_mutex_lock(&s->mu);
        sc->next = s->sconns;
        if (sc->next)
            sc->next->prev = sc;
        s->sconns = sc;
        pthread_mutex_unlock(&s->mu);
        pthread_setspecific(s->tls, sc);
    }
    unsigned epoch = atomic_load(&s->epoch);
    bool open = sc->l.one || sc->l.many;
    if (open && sc->epoch == epoch)
        return &sc->l;
    sr_link_close(&sc->l);
    if (!atomic_load(&s->healthy))
        return NULL;
    sc->epoch = epoch;
    return sr_link_open(s, &sc->l, err, sizeof(err)) == ERR_OK ? &sc->l : NULL;
}

/* One command on this thread's link. NULL on any failure (a link to the one Redis is
 * dropped, the next call reconnects; a cluster link remakes the failed node's). */
struct redis_reply *sr_sync_at(struct redis_store *s, unsigned slot, int argc, const char **argv,
                               const size_t *lens)
{
    struct sr_link *l = sr_sync_ctx(s);
    if (!l)
        return NULL;
    struct redis_reply *r = sr_link_cmd(s, l, slot, argc, argv, lens);
    if (!r && l->one)
        sr_link_close(l);
    return r;
}

struct redis_reply *sr_sync_cmd(struct redis_store *s, const struct cmd *c)
{
    return sr_sync_at(s, c->slot, c->argc, (const char **)(uintptr_t)c->argv, c->lens);
}

/* The slot of a command's first key: EVAL/EVALSHA name it third, the others first. */
static unsigned slot_of(int argc, const char **argv, const size_t *lens)
{
    int k = argc > 0 && (strcmp(argv[0], "EVALSHA") == 0 || strcmp(argv[0], "EVAL") == 0) ? 3 : 1;
    return k < argc ? redis_key_slot(argv[k], lens[k]) : 0;
}

struct redis_reply *sr_sync_fmt(struct redis_store *s, int argc, const char **argv,
                                const size_t *lens)
{
    return sr_sync_at(s, slot_of(argc, argv, lens), argc, argv, lens);
}

/* ---- async connections (one per loop thread) ------------------------------------------- */

static void a_fail_now(struct store_op *op, int status)
{
    op->status = status;
    op->on_done(op); /* on the loop thread, in a posted task or a reply's callback */
}

static void a_unlink(struct aconn *a, struct store_op *op)
{
    struct store_op **pp = &a->head, *prev = NULL;
    while (*pp && *pp != op) {
        prev = *pp;
        pp = &(*pp)->_next;
    }
    if (!*pp)
        return;
    *pp = op->_next;
    if (a->tail == op)
        a->tail = prev;
    a->inflight--;
    atomic_fetch_sub(&a->s->inflight, 1);
}

/* A write of ours that moved the generation: the next store_generation_recent reads it, so
 * this process sees its own change at once (others within a poll). */
void sr_note_write(struct redis_store *s, const struct store_op *op)
{
    if (op->status == ERR_OK && sr_bumps(op->table) &&
        (op->kind == STORE_OP_PUT_NEW || op->kind == STORE_OP_REPLACE ||
         op->kind == STORE_OP_DELETE))
        atomic_store(&s->gen_dirty, 1);
}

static void on_reply(struct redis_conn *c, const struct redis_reply *reply, void *priv);

/* Sends op on the loop's connection (queued by it while a connection is being made).
 * ERR_OK or ERR_BACKEND (waiting to reconnect, or the op cannot be built). */
/* op is in flight on a's connection from now: its timeout runs. */
static int a_link(struct aconn *a, struct store_op *op)
{
    op->_next = NULL;
    op->_sent_ms = clock_mono_ms();
    QUEUE_APPEND(a->head, a->tail, op, _next);
    a->inflight++;
    atomic_fetch_add(&a->s->inflight, 1);
    return ERR_OK;
}

static void on_cl_reply(struct redis_cluster *cl, const struct redis_reply *reply, void *priv);

/* A command on the loop's connection (on a cluster, to the primary of op's slot). */
static int a_cmd(struct aconn *a, struct store_op *op, bool reply, int argc, const char **argv,
                 const size_t *lens)
{
    if (a->cl)
        return redis_cluster_cmd(a->cl, op->_slot, reply ? on_cl_reply : NULL, reply ? op : NULL,
                                 argc, argv, lens);
    return redis_conn_cmd(a->conn, reply ? on_reply : NULL, reply ? op : NULL, argc, argv, lens);
}

static int a_send(struct aconn *a, struct store_op *op)
{
    struct cmd c;
    if (sr_build(a->s, op, &c))
        return ERR_BACKEND;
    op->_slot = c.slot;
    if (a_cmd(a, op, true, c.argc, c.argv, c.lens))
        return ERR_BACKEND;
    return a_link(a, op);
}

/* Whether op is a write that must not be lost, to be confirmed by WAIT when
 * redis_wait_replicas is set (the login guard's counters are not store_ops: losing them in a
 * failover costs a few guesses, not a token). */
bool sr_waits(const struct redis_store *s, const struct store_op *op)
{
    if (!s->wait_n || op->status != ERR_OK)
        return false;
    switch (op->kind) {
    case STORE_OP_PUT_NEW:
    case STORE_OP_REPLACE:
    case STORE_OP_DELETE:
    case STORE_OP_REFRESH_ISSUE:
    case STORE_OP_REFRESH_ROTATE:
    case STORE_OP_FAMILY_REVOKE:
    case STORE_OP_JTI_REVOKE:
        return true;
    default:
        return false;
    }
}

/* WAIT n timeout: its argv into av/al (3). */
void sr_wait_cmd(const struct redis_store *s, char n[12], char ms[12], const char *av[3],
                 size_t al[3])
{
    snprintf(n, 12, "%u", s->wait_n);
    snprintf(ms, 12, "%u", s->wait_ms);
    av[0] = "WAIT";
    al[0] = 4;
    av[1] = n;
    al[1] = strlen(n);
    av[2] = ms;
    al[2] = strlen(ms);
}

/* WAIT's answer: enough replicas have every write of the connection so far, ours with them. */
bool sr_wait_ok(struct redis_store *s, const struct redis_reply *r)
{
    bool counted = r && redis_reply_kind(r) == RK_INTEGER;
    bool ok = counted && redis_reply_int(r) >= (long long)s->wait_n;
    if (counted && !ok) /* (a lost connection is a timeout or a drop, not a shortfall) */
        atomic_fetch_add(&s->wait_short, 1);
    return ok;
}

static void waited(struct store_op *op, const struct redis_reply *reply)
{
    struct aconn *a = op->_ctx;
    a_unlink(a, op);
    if (!sr_wait_ok(a->s, reply))
        op->status = ERR_BACKEND; /* (applied on the primary, not confirmed: a 503) */
    op->on_done(op);
}

static void on_wait(struct redis_conn *c, const struct redis_reply *reply, void *priv)
{
    (void)c;
    waited(priv, reply);
}

static void on_cl_wait(struct redis_cluster *cl, const struct redis_reply *reply, void *priv)
{
    (void)cl;
    waited(priv, reply);
}

/* After the write's answer, on the same connection: WAIT (op stays in flight, its timeout
 * running again). ERR_OK, or ERR_BACKEND if it cannot be sent. */
static int a_wait(struct aconn *a, struct store_op *op)
{
    char n[12], ms[12];
    const char *av[3];
    size_t al[3];
    sr_wait_cmd(a->s, n, ms, av, al);
    int rc = a->cl ? redis_cluster_cmd(a->cl, op->_slot, on_cl_wait, op, 3, av, al)
                   : redis_conn_cmd(a->conn, on_wait, op, 3, av, al);
    if (rc != ERR_OK)
        return ERR_BACKEND;
    return a_link(a, op);
}

/* Drops the connection op went on (stuck, or without the script): reconnecting loads it. */
static void a_drop(struct aconn *a, const struct store_op *op)
{
    if (a->cl)
        redis_cluster_drop(a->cl, op->_slot);
    else
        redis_conn_drop(a->conn);
}

static void replied(struct store_op *op, const struct redis_reply *reply)
{
    struct aconn *a = op->_ctx;
    a_unlink(a, op);
    if (noscript(reply) && !op->_resent) {
        /* The script cache was flushed (SCRIPT FLUSH, a failover to a replica that never
         * loaded it): load it on this connection and send the op again, after it (one
         * connection, in order). Its timeout starts again: the request is not answered
         * while its write may still run. */
        const char *av[3] = {load_script[0], load_script[1], load_script[2]};
        size_t al[3] = {6, 4, strlen(sr_script)};
        op->_resent = 1;
        if (a_cmd(a, op, false, 3, av, al) == ERR_OK && a_send(a, op) == ERR_OK)
            return;
    }
    sr_decode(op, reply);
    sr_note_write(a->s, op);
    if (noscript(reply)) {
        a_drop(a, op); /* still no script: reconnecting loads it again */
    } else if (sr_waits(a->s, op)) {
        if (a_wait(a, op) == ERR_OK)
            return;
        op->status = ERR_BACKEND;
    }
    op->on_done(op);
}

static void on_reply(struct redis_conn *c, const struct redis_reply *reply, void *priv)
{
    (void)c;
    replied(priv, reply);
}

static void on_cl_reply(struct redis_cluster *cl, const struct redis_reply *reply, void *priv)
{
    (void)cl;
    replied(priv, reply);
}

static void on_cl_state(struct redis_cluster *cl, bool up, const char *why, void *arg)
{
    (void)cl;
    (void)arg;
    if (!up)
        log_kv(LOG_WARN, "redis store: cluster not fully reachable", "error", why, LOG_END);
}

static void on_state(struct redis_conn *c, bool up, const char *why, void *arg)
{
    (void)c;
    (void)arg;
    if (!up)
        log_kv(LOG_WARN, "redis store: not connected", "error", why, LOG_END);
}

/* Every timeout/4: a command older than the timeout means Redis is gone or stuck; dropping
 * the connection fails everything in flight on it (503s), and a new one follows. */
static void on_sweep(uv_timer_t *t)
{
    struct aconn *a = t->data;
    uint64_t now = clock_mono_ms();
    if (a->cl && now - a->snap_ms >= 1000) { /* (for /metrics, read on another thread) */
        pthread_mutex_lock(&a->s->stats_mu);
        unsigned n = redis_cluster_stats(a->cl, a->snap, SNAP_NODES);
        a->nsnap = n < SNAP_NODES ? n : SNAP_NODES;
        pthread_mutex_unlock(&a->s->stats_mu);
        a->snap_ms = now;
    }
    if (a->head && clock_mono_ms() - a->head->_sent_ms > a->s->timeout_ms) {
        atomic_fetch_add(&a->s->timeouts, 1);
        log_kv(LOG_WARN, "redis store: command timed out; reconnecting", LOG_END);
        a_drop(a, a->head);
    }
}

static struct aconn *a_get(struct redis_store *s, struct loop *lp)
{
    struct aconn *a = s->aconns[lp->index];
    if (a)
        return a;
    a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->s = s;
    a->lp = lp;
    struct redis_url u;
    sr_url(s, &u);
    if (s->cluster)
        a->cl = redis_cluster_new(&lp->uv, &s->curl, RETRY_MIN_MS, RETRY_MAX_MS, load_script,
                                  on_cl_state, a);
    else
        a->conn = redis_conn_new(&lp->uv, &u, RETRY_MIN_MS, RETRY_MAX_MS, load_script, on_state, a);
    if (!a->conn && !a->cl) {
        free(a);
        return NULL;
    }
    uv_timer_init(&lp->uv, &a->sweep);
    a->sweep.data = a;
    unsigned every = s->timeout_ms / 4 ? s->timeout_ms / 4 : 1;
    uv_timer_start(&a->sweep, on_sweep, every, every);
    uv_unref((uv_handle_t *)&a->sweep);
    pthread_mutex_lock(&s->stats_mu); /* (r_metrics_text reads the table) */
    s->aconns[lp->index] = a;
    pthread_mutex_unlock(&s->stats_mu);
    return a;
}

/* On the loop thread: send the op, or fail it. */
static void a_issue(struct loop_task *t)
{
    struct store_op *op = (struct store_op *)(void *)t;
    struct redis_store *s = R((struct store *)op->_next); /* smuggled by r_submit */
    struct aconn *a = a_get(s, op->_loop);

    op->_next = NULL;
    if (op->kind == STORE_OP_PURGE) {
        op->purged = 0;
        a_fail_now(op, ERR_OK); /* TTLs purge */
        return;
    }
    if (!a || !atomic_load(&s->healthy)) {
        a_fail_now(op, ERR_BACKEND);
        return;
    }
    if (s->cluster && op->sess_sub[0]) { /* (two steps on a cluster: store_exec's) */
        a_fail_now(op, ERR_INVAL);
        return;
    }
    if (a->inflight >= INFLIGHT_MAX) {
        a_fail_now(op, ERR_LIMIT);
        return;
    }
    if (a->epoch != atomic_load(&s->epoch) && !a->cl) {
        /* Redis came back since this connection was made: it may look fine and be dead
         * (a server restarted while this loop was idle). Start over, at once. */
        struct redis_url u;
        a->epoch = atomic_load(&s->epoch);
        sr_url(s, &u); /* (with Sentinel: perhaps another primary now) */
        redis_conn_set_url(a->conn, &u);
        redis_conn_reconnect(a->conn);
    }
    op->_ctx = a;
    op->_resent = 0;
    if (a_send(a, op)) {
        a_fail_now(op, ERR_BACKEND);
        return;
    }
    atomic_fetch_add(&s->ops, 1);
}

int sr_submit(struct store *st, struct loop *lp, struct store_op *op)
{
    if (!lp || lp->index >= LOOPS_MAX)
        return ERR_INVAL;
    op->_loop = lp;
    op->_next = (struct store_op *)(void *)st;
    op->_task.on_run = a_issue;
    loop_post(lp, &op->_task);
    return ERR_AGAIN;
}

static void a_closed(struct aconn *a)
{
    if (--a->closing == 0)
        free(a);
}

static void on_sweep_closed(uv_handle_t *h)
{
    a_closed(h->data);
}

static void on_conn_closed(void *arg)
{
    a_closed(arg);
}

static void r_loop_release(struct store *st, struct loop *lp)
{
    struct redis_store *s = R(st);
    struct aconn *a = lp->index < LOOPS_MAX ? s->aconns[lp->index] : NULL;
    if (!a)
        return;
    pthread_mutex_lock(&s->stats_mu);
    s->aconns[lp->index] = NULL;
    pthread_mutex_unlock(&s->stats_mu);
    a->closing = 2;
    if (a->cl) /* (either fails anything still in flight) */
        redis_cluster_close(a->cl, on_conn_closed, a);
    else
        redis_conn_close(a->conn, on_conn_closed, a);
    uv_close((uv_handle_t *)&a->sweep, on_sweep_closed);
}

/* ---- open and close -------------------------------------------------------------------- */

static void r_close(struct store *st)
{
    struct redis_store *s = R(st);

    atomic_store(&s->stopping, 1);
    if (s->service_started)
        pthread_join(s->service, NULL);
    for (unsigned i = 0; i < LOOPS_MAX; i++)
        if (s->aconns[i])
            log_kv(LOG_WARN, "redis store closed before a loop released it", LOG_END);
    pthread_mutex_lock(&s->mu);
    while (s->sconns) {
        struct sconn *sc = s->sconns;
        s->sconns = sc->next;
        sr_link_close(&sc->l);
        free(sc);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_setspecific(s->tls, NULL);
    pthread_key_delete(s->tls);
    tls_owner = NULL;
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->cb_mu);
    pthread_mutex_destroy(&s->stats_mu);
    pthread_mutex_destroy(&s->url_mu);
    mem_free(s->sentinel);
    mem_free(s);
}

static const struct store_shared_vt redis_shared_vt = {
    .on_invalidate = sr_on_invalidate,
    .lease = sr_lease,
    .pin = sr_pin,
    .guard_begin = sr_guard_begin,
    .guard_end = sr_guard_end,
    .guard_cancel = sr_guard_cancel,
    .guard_unlock = sr_guard_unlock,
    .join = sr_join,
    .members = sr_members,
    .console_put = sr_console_put,
    .console_each = sr_console_each,
};

static const struct store_vt redis_vt = {
    .close = r_close,
    .get = sr_get,
    .each = sr_each,
    .submit = sr_submit,
    .exec = sr_exec,
    .generation = sr_generation,
    .generation_recent = sr_generation_recent,
    .stats = sr_stats,
    .usage = sr_usage,
    .loop_release = r_loop_release,
    .ready = sr_ready,
    .metrics_text = sr_metrics_text,
    .shared = &redis_shared_vt,
};

int store_open_redis(const char *url, const char *prefix, unsigned timeout_ms, struct store **out,
                     char *err, size_t cap)
{
    struct redis_store *s;

    if (tls_owner) {
        snprintf(err, cap, "one Redis store per process");
        return ERR_INVAL;
    }
    for (int t = 0; t < STORE_T_COUNT; t++)
        if (!sr_tags[t]) { /* (every table has its key prefix: checked, not assumed) */
            snprintf(err, cap, "store table %d has no Redis key prefix", t);
            return ERR_INVAL;
        }
    if (strlen(prefix) >= PREFIX_MAX || strpbrk(prefix, " *?[")) {
        snprintf(err, cap, "redis_prefix: at most %d characters, no spaces or glob characters",
                 PREFIX_MAX - 1);
        return ERR_INVAL;
    }
    s = mem_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, cap, "out of memory");
        return ERR_NOMEM;
    }
    pthread_mutex_init(&s->url_mu, NULL);
    if (strncmp(url, "redis-sentinel://", 17) == 0) {
        s->sentinel = mem_calloc(1, sizeof(*s->sentinel));
        if (!s->sentinel || redis_sentinel_url_parse(url, "store", s->sentinel, err, cap)) {
            mem_free(s->sentinel);
            pthread_mutex_destroy(&s->url_mu);
            mem_free(s);
            return ERR_INVAL;
        }
        /* where the primary is now (a start-up error if no sentinel says) */
        if (redis_sentinel_primary(s->sentinel, timeout_ms ? timeout_ms : 1, &s->url, err, cap)) {
            mem_free(s->sentinel);
            pthread_mutex_destroy(&s->url_mu);
            mem_free(s);
            return ERR_BACKEND;
        }
    } else if (strncmp(url, "redis-cluster://", 16) == 0) {
        s->cluster = true;
        if (redis_cluster_url_parse(url, "store", &s->curl, err, cap)) {
            pthread_mutex_destroy(&s->url_mu);
            mem_free(s);
            return ERR_INVAL;
        }
    } else if (redis_url_parse(url, "store", &s->url, err, cap)) {
        pthread_mutex_destroy(&s->url_mu);
        mem_free(s);
        return ERR_INVAL;
    }
    s->base.vt = &redis_vt;
    snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
    snprintf(s->gen_key, sizeof(s->gen_key), "%s%sgen", prefix, s->cluster ? "{cfg}" : "");
    s->timeout_ms = timeout_ms ? timeout_ms : 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cb_mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_key_create(&s->tls, sconn_dtor);
    tls_owner = s;

    /* Reach Redis now (a wrong address is a start-up error, not a silent 503 loop) and
     * learn the script's digest. */
    struct sr_link c;
    int opened = sr_link_open(s, &c, err, cap) == ERR_OK;
    struct redis_reply *r = opened ? sr_link_cmdv(s, &c, 0, load_script) : NULL;
    size_t n = 0;
    if (r && redis_reply_kind(r) == RK_STRING)
        redis_reply_str(r, &n);
    if (n != 40) {
        if (opened && !r)
            snprintf(err, cap, "redis: the connection failed");
        redis_reply_free(r);
        sr_link_close(&c);
        pthread_key_delete(s->tls);
        tls_owner = NULL;
        pthread_mutex_destroy(&s->mu);
        pthread_mutex_destroy(&s->cb_mu);
        pthread_mutex_destroy(&s->stats_mu);
        pthread_mutex_destroy(&s->url_mu);
        mem_free(s->sentinel);
        mem_free(s);
        return ERR_BACKEND;
    }
    memcpy(s->sha, redis_reply_str(r, NULL), 40);
    redis_reply_free(r);
    sr_link_close(&c);
    atomic_store(&s->healthy, 1);
    atomic_store(&s->members, 1);
    atomic_store(&s->last_ok_ms, clock_mono_ms());
    if (pthread_create(&s->service, NULL, sr_service_main, s)) {
        snprintf(err, cap, "cannot start the redis store thread");
        r_close(&s->base);
        return ERR_BACKEND;
    }
    pthread_setname_np(s->service, "fg-store");
    s->service_started = 1;
    *out = &s->base;
    return ERR_OK;
}

int store_wait_replicas(struct store *st, unsigned replicas, unsigned timeout_ms)
{
    if (!st || st->vt != &redis_vt)
        return ERR_INVAL;
    R(st)->wait_n = replicas;
    R(st)->wait_ms = timeout_ms;
    return ERR_OK;
}
