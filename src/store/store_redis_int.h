/* SPDX-License-Identifier: MIT */
/*
 * Inside the Redis store (store_redis*.c): its state, the command builder's shape and what
 * the files share. store_redis.c: connections, the vtable, open and close;
 * store_redis_cmd.c: operations into commands and replies into results;
 * store_redis_lua.c: the store script; store_redis_guard.c: the shared login guard;
 * store_redis_svc.c: the service thread (health, invalidations, membership).
 */
#ifndef STORE_STORE_REDIS_INT_H
#define STORE_STORE_REDIS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "core/clock.h"
#include "redis/redis_cluster.h"
#include "redis/redis_reply.h"
#include "redis/redis_url.h"
#include "store/store_int.h"
#include "store/store_rec.h"

static inline uint64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000u;
}

#define LOOPS_MAX         256
#define PREFIX_MAX        64
#define INFLIGHT_MAX      65536 /* per loop connection; more is ERR_LIMIT */
#define RETRY_MIN_MS      100
#define RETRY_MAX_MS      2000
#define PING_EVERY_MS     200
#define CLOCK_EVERY_MS    5000
#define BEAT_EVERY_MS     1000
#define SENTINEL_EVERY_MS 1000 /* the primary asked of the sentinels again (at once if down) */
#define BEAT_TTL_MS       3000 /* an instance that missed two beats is not counted */
#define ARGS_MAX          24
#define SNAP_NODES        16 /* nodes of a cluster shown per loop in /metrics */

/* A blocking link of one thread (reads, store_exec, the service thread): one connection to
 * the one Redis, or a blocking cluster client (a connection per node). */
struct redis_sync;
struct redis_csync;
struct sr_link {
    struct redis_sync *one;
    struct redis_csync *many;
};

struct sconn {
    struct sconn *next, *prev;
    struct sr_link l;
    unsigned epoch; /* the store's epoch when l was made */
};

/* The async connection of one loop thread. Touched only on that thread. */
struct redis_conn;
struct redis_cluster;
struct aconn {
    struct redis_store *s;
    struct loop *lp;
    struct redis_conn *conn;  /* reconnects by itself, backing off; loads the script */
    struct redis_cluster *cl; /* instead, on a cluster: a connection per primary, each so */
    uv_timer_t sweep;
    struct store_op *head, *tail; /* in flight, oldest first (Redis answers in order) */
    unsigned inflight;
    unsigned epoch; /* the store's epoch when the connection was made */
    int closing;    /* 2 closes (the connection, the timer) to go before it is freed */
    /* on a cluster: its per-node counters, copied every second for /metrics (stats_mu) */
    struct redis_cluster_node_stats snap[SNAP_NODES];
    unsigned nsnap;
    uint64_t snap_ms;
};

struct redis_sentinel_url;

struct redis_store {
    struct store base;
    bool cluster;                        /* Redis Cluster: curl, keys tagged (sr_key_of) */
    struct redis_cluster_url curl;       /* its seeds */
    struct redis_url url;                /* the primary (with Sentinel: as last resolved) */
    pthread_mutex_t url_mu;              /* url, once Sentinel may change it */
    struct redis_sentinel_url *sentinel; /* NULL: url is fixed */
    char prefix[PREFIX_MAX];
    unsigned timeout_ms;
    unsigned wait_n, wait_ms;    /* redis_wait_replicas, redis_wait_timeout (0: no WAIT) */
    _Atomic uint64_t wait_short; /* writes answered 503: fewer replicas than wait_n had them */
    char sha[41];
    pthread_key_t tls;
    pthread_mutex_t mu; /* sconns list */
    struct sconn *sconns;
    struct aconn *aconns[LOOPS_MAX];
    pthread_t service;
    int service_started;
    _Atomic int stopping;
    _Atomic int healthy;
    _Atomic unsigned epoch; /* bumped when Redis comes back: older connections are remade */
    _Atomic uint64_t last_ok_ms;
    _Atomic uint64_t ops, inflight, timeouts;
    _Atomic uint64_t last_gen;     /* the generation last read */
    _Atomic int gen_polled;        /* the service thread has read it at least once */
    _Atomic int gen_dirty;         /* this process changed it since: read it afresh */
    char gen_key[PREFIX_MAX + 12]; /* PREFIX"gen" (cluster: PREFIX"{cfg}gen"): the generation */
    char member[33];               /* this instance's id in PREFIX"members", once joined */
    _Atomic int joined;
    _Atomic unsigned members;        /* serving instances counted at the last beat (>= 1) */
    _Atomic int64_t clock_offset_ms; /* Redis's TIME minus ours, measured every few seconds */
    _Atomic uint64_t late;           /* writes Redis refused as past their deadline */
    pthread_mutex_t stats_mu;        /* the loops' snapshots (aconn.snap) and node_up */
    _Atomic int cluster_full;        /* every slot has a primary that answered the last check */
    unsigned nup;
    struct {
        char addr[280];
        int up;
    } node_up[SNAP_NODES]; /* each primary, as the service thread last found it */
    pthread_mutex_t cb_mu;
    store_inval_cb inval;
    void *inval_arg;
};

/* The primary's address now (a copy: the service thread may change it with Sentinel). */
void sr_url(struct redis_store *s, struct redis_url *out);

static inline struct redis_store *R(struct store *st)
{
    return (struct redis_store *)(void *)st;
}

/* One command: argv with lengths, and room for the strings it builds. */
struct cmd {
    unsigned slot; /* on a cluster: the slot of its keys (sr_build, sr_read_cmd) */
    int argc;
    const char *argv[ARGS_MAX];
    size_t lens[ARGS_MAX];
    char keys[4][PREFIX_MAX + 24 + 2 * STORE_KEY_MAX];
    char tag[8]; /* "{gNNNN}" on a cluster, "" on one Redis */
    char nums[6][24];
    int nnums;
    uint8_t rec[STORE_REFRESH_ENC_MAX]; /* a refresh record issued (store_rec.h) */
};

/* The store script (store_redis_lua.c) and the table prefixes of the keys. */
extern const char sr_script[];
extern const char *const sr_tags[STORE_T_COUNT];

void sr_arg_s(struct cmd *c, const char *p);
int sr_build(const struct redis_store *s, const struct store_op *op, struct cmd *c);
void sr_build_sessions(const struct redis_store *s, const struct store_op *op, struct cmd *c);
bool sr_bumps(enum store_table t);
int sr_link_open(struct redis_store *s, struct sr_link *l, char *err, size_t cap);
struct redis_reply *sr_link_cmd(struct redis_store *s, struct sr_link *l, unsigned slot, int argc,
                                const char **argv, const size_t *lens);
struct redis_reply *sr_link_cmdv(struct redis_store *s, struct sr_link *l, unsigned slot,
                                 const char *const *argv);
void sr_link_close(struct sr_link *l);
unsigned sr_slot(const char *key);
struct redis_sync *sr_connect_sync(struct redis_store *s, char *err, size_t cap);
void sr_idx_key(const struct redis_store *s, char *out, size_t cap, enum store_table t);
int sr_decode(struct store_op *op, const struct redis_reply *r);
void sr_hex(const uint8_t *p, size_t n, char *out);
bool sr_indexed(enum store_table t);
void sr_invalidate(struct redis_store *s, const char *msg, size_t len);
size_t sr_key_of(const struct redis_store *s, char *out, enum store_table t, const void *k,
                 size_t klen);
int64_t sr_num(const struct redis_reply *r);
void sr_read_cmd(const struct redis_store *s, enum store_table t, const char *key, size_t klen,
                 struct cmd *c);
int sr_str_to(const struct redis_reply *r, char *dst, size_t cap);
struct redis_reply *sr_sync_cmd(struct redis_store *s, const struct cmd *c);
struct redis_reply *sr_sync_fmt(struct redis_store *s, int argc, const char **argv,
                                const size_t *lens);
int sr_unhex(const char *s, size_t slen, uint8_t *out, size_t n);
int sr_value_into(enum store_table t, const struct redis_reply *r, struct buf *out);

/* The service thread (store_redis_svc.c), and membership. */
void *sr_service_main(void *arg);
void sr_join(struct store *st);
unsigned sr_members(struct store *st);

/* Shared by store_redis.c (connections, the vtables) and store_redis_ops.c (the synchronous
 * operations). */
struct sr_link *sr_sync_ctx(struct redis_store *s);
struct redis_reply *sr_sync_at(struct redis_store *s, unsigned slot, int argc, const char **argv,
                               const size_t *lens);
void sr_note_write(struct redis_store *s, const struct store_op *op);
bool sr_waits(const struct redis_store *s, const struct store_op *op);
void sr_wait_cmd(const struct redis_store *s, char n[12], char ms[12], const char *av[3],
                 size_t al[3]);
bool sr_wait_ok(struct redis_store *s, const struct redis_reply *r);
int sr_submit(struct store *st, struct loop *lp, struct store_op *op);
int sr_get(struct store *st, enum store_table t, const void *key, size_t klen, struct buf *out,
           struct loop *lp, struct store_op *op);
int sr_each(struct store *st, enum store_table t, store_each_cb fn, void *ctx);
int sr_exec(struct store *st, struct store_op *op);
int sr_lease(struct store *st, const char *name, unsigned ttl_ms);
int sr_pin(struct store *st, const char *name, const void *val, size_t len);
int sr_metrics_text(struct store *st, struct buf *b);
void sr_on_invalidate(struct store *st, store_inval_cb fn, void *arg);
int sr_ready(struct store *st, uint64_t *stale_ms);
void sr_stats(struct store *st, struct store_stats *out);
int sr_usage(struct store *st, enum store_table t, uint64_t *entries, uint64_t *bytes);
uint64_t sr_generation(struct store *st);
uint64_t sr_generation_recent(struct store *st);

/* The live console's frames (store_redis_console.c). */
int sr_console_put(struct store *st, int64_t now_ms, const char *json, size_t len);
int sr_console_each(struct store *st, store_console_cb fn, void *ctx);
/* The shared login guard (store_redis_guard.c). */
int sr_guard_begin(struct store *st, struct store_guard *g, int64_t now_ms, int *verdict);
unsigned sr_guard_end(struct store *st, struct store_guard *g, int success, int64_t now_ms);
void sr_guard_cancel(struct store *st, struct store_guard *g);
void sr_guard_unlock(struct store *st, const char *user_key, const char *msg);

#endif
