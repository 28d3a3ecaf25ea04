/* SPDX-License-Identifier: MIT */
/*
 * The store: every piece of state floodgate keeps (users, clients, signing keys, refresh
 * tokens and their families, revoked access-token ids), behind one interface so that the
 * LMDB backend (embedded, default) and a Redis backend can serve the same handlers.
 *
 * Operations are semantic ("rotate this refresh token"), not generic puts: each is atomic in
 * the backend (an LMDB write transaction, a Redis Lua script), so no handler ever does a
 * read-modify-write across round trips.
 *
 * Completion rule (libuv's, adapted): a call returns ERR_OK when it completed at once (its
 * callback does not run), ERR_AGAIN when it will complete later (the callback runs once, on
 * the submitting loop's thread, never inside the call), or another ERR_* if it failed at
 * once (no callback). LMDB reads complete at once; LMDB writes always complete later,
 * after the group commit that made them durable has been fsync'd.
 *
 * Threads: store_open/close on the main thread; everything else from any thread, with
 * results delivered to the loop given. Records are copied out; nothing points into the
 * backend's memory after a call returns.
 *
 * Backends: LMDB (store_lmdb.c, embedded, one process) and Redis (store_redis.c, shared by
 * many instances; docs/internals/SCALEOUT.md). Redis writes are pipelined on a connection
 * owned by the submitting loop's thread, and complete when Redis answered; reads without an
 * op block the calling thread for one round trip, bounded by the store's timeout.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "loop/loop.h"

struct store;

/* Tables. Keys and values are opaque bytes to the backend; the record encodings are in
 * store_rec.h. */
enum store_table {
    STORE_T_USERS,    /* normalised username -> user record (JSON) */
    STORE_T_CLIENTS,  /* client_id -> client record (JSON) */
    STORE_T_KEYS,     /* kid -> signing key record (JSON) */
    STORE_T_REFRESH,  /* digest of a refresh token -> struct store_refresh (binary) */
    STORE_T_FAMILIES, /* family id -> struct store_family (binary) */
    STORE_T_REVOKED,  /* access-token jti -> int64 expiry (binary) */
    STORE_T_META,     /* "generation" -> uint64, bumped by changes of clients/keys/events */
    STORE_T_EVENTS,   /* event id -> announced traffic event (JSON), for the adaptive policy */
    STORE_T_SESSIONS, /* user id (sub) -> that user's sessions generation (decimal text) */
    STORE_T_CODES,    /* digest of an authorization code -> expiring record (JSON) */
    STORE_T_SSO,      /* digest of a browser session's cookie -> expiring record (JSON) */
    STORE_T_CONSENTS, /* user id (sub) "\n" client_id -> the scopes the user granted (JSON) */
    STORE_T_SUBS,     /* user id (sub) -> username: an index, checked against the user's id */
    STORE_T_COUNT
};

/* Tables whose records end by themselves (codes, browser sessions): a value begins with its
 * expiry, 8 bytes (little-endian epoch seconds: store_exp_wrap), after which the embedded
 * store's purge drops it and Redis expires the key (EXPIREAT); neither lists them in an
 * index. A reader checks the expiry too: a purge runs only once in a while. */
bool store_expiring(enum store_table t);
int store_exp_wrap(int64_t exp, const void *payload, size_t n, struct buf *out);
/* The expiry and the payload of an expiring record; ERR_INVAL if it is too short. */
int store_exp_unwrap(const void *v, size_t n, int64_t *exp, const char **payload, size_t *pn);

/* Sessions: each refresh record carries the sessions generation its user had when the family
 * began (read with the user record at login, so the password checked and the generation
 * are one snapshot). Ending every session of a user (disable, delete, new password) moves
 * the generation in the user record and in STORE_T_SESSIONS in one atomic write
 * (store_op.sess_sub); every rotation compares the token's generation with STORE_T_SESSIONS
 * in its own atomic step and refuses a mismatch. So no family that began before the change
 * can mint another token, on any instance, with no scan of the user's families and no race
 * between a rotation and the change. An absent entry is generation 0. */

/* Groups: a sharded store (Redis Cluster) keeps a user's refresh tokens, families and
 * sessions generation on one shard, so that a rotation is one atomic step there. The group
 * of a user is a hash of the subject (store_group_of); a refresh digest and a family id carry
 * theirs in their first two bytes (big-endian, below STORE_GROUPS), put there by whoever
 * makes them: the token layer for a digest (the token carries its group), store_family_new
 * for a family. A digest made before groups carries whatever its hash gave: still a place,
 * only not the user's. Other backends ignore groups. A refresh digest's next eight bytes
 * are its token's issue stamp (token/tok_refresh.h; random in a digest from before stamps),
 * which LMDB orders its refresh records by. */
#define STORE_GROUPS 16384
unsigned store_group_of(const char *sub);
unsigned store_group_in(const uint8_t *id);
void store_group_put(uint8_t *id, unsigned group);
/* A fresh random family id in `group`. */
void store_family_new(unsigned group, uint8_t *out);

enum store_op_kind {
    STORE_OP_PUT_NEW,       /* insert (table, key) = value; ERR_CONFLICT if present */
    STORE_OP_REPLACE,       /* overwrite existing; ERR_NOTFOUND if absent */
    STORE_OP_DELETE,        /* remove; ERR_NOTFOUND if absent */
    STORE_OP_REFRESH_ISSUE, /* a new family and its first token */
    STORE_OP_REFRESH_ROTATE,
    STORE_OP_FAMILY_REVOKE, /* revoke a family (logout, reuse, admin) */
    STORE_OP_JTI_REVOKE,    /* remember a revoked access-token id until it expires */
    STORE_OP_PURGE,         /* drop expired refresh tokens, families and revoked ids */
    STORE_OP_GET,           /* (store_get with an op: a read that completes later) */
};

#define STORE_KEY_MAX    255
#define STORE_DIGEST     32
#define STORE_FAMILY_ID  16
#define STORE_SUB_MAX    128
#define STORE_SCOPE_MAX  1024
#define STORE_CLIENT_MAX 128

/* A refresh token as stored: only its digest is the key, never the token. */
struct store_refresh {
    uint8_t family[STORE_FAMILY_ID];
    uint8_t state;                   /* STORE_RT_* */
    uint8_t successor[STORE_DIGEST]; /* set when rotated */
    int64_t issued_at;
    int64_t expires_at;      /* absolute lifetime of the family, copied down */
    int64_t idle_expires_at; /* this token's idle lifetime */
    int64_t rotated_at;      /* when it was rotated (for the grace window) */
    uint64_t gen;            /* the user's sessions generation when the family began */
    char sub[STORE_SUB_MAX + 1];
    char client_id[STORE_CLIENT_MAX + 1];
    char scope[STORE_SCOPE_MAX + 1];
};

enum { STORE_RT_LIVE = 1, STORE_RT_ROTATED = 2 };

struct store_family {
    uint8_t revoked;
    int64_t expires_at;
    int64_t revoked_at;
};

/* What a rotation found. */
enum store_rotate_result {
    STORE_ROTATED = 1,    /* old was live; successor stored; old marked rotated */
    STORE_ROTATE_GRACE,   /* old was rotated within the grace window: same successor */
    STORE_ROTATE_REUSED,  /* old was rotated before: family revoked now (RFC 9700 §4.14) */
    STORE_ROTATE_INVALID, /* unknown, expired, its family is revoked, or its user's sessions
                           * generation moved on (disabled, deleted, new password) */
};

struct store_op;
typedef void (*store_op_cb)(struct store_op *op);

/* Embedded by the caller, owned by it, borrowed by the store until on_done runs. */
struct store_op {
    struct loop_task _task; /* first: completions travel as loop tasks */
    struct store_op *_next;
    struct loop *_loop;
    uint64_t _sent_ms; /* Redis: when the command left, for the timeout */
    int _resent;       /* Redis: sent again once after NOSCRIPT */
    int _waits;        /* Redis: WAITs sent after it, not answered yet */
    int _acked;        /* Redis: replicas the last WAIT counted (-1: none answered) */
    void *_ctx;        /* Redis: the loop's connection it was sent on */
    unsigned _slot;    /* Redis Cluster: the slot of its keys (its WAIT goes there too) */
    struct buf *_out;  /* STORE_OP_GET: where the value goes */
    enum store_op_kind kind;
    store_op_cb on_done;
    int status; /* result, set before on_done */
    int64_t now;
    /* PUT_NEW / REPLACE / DELETE */
    enum store_table table;
    uint8_t key[STORE_KEY_MAX];
    size_t key_len;
    const void *value; /* borrowed until on_done */
    size_t value_len;
    /* REPLACE / DELETE with expect set: applied only if the current value is exactly these
     * bytes, else ERR_CONFLICT and nothing changes (a compare-and-swap: read, change, write
     * back without losing a concurrent writer's change). Borrowed until on_done. */
    const void *expect;
    size_t expect_len;
    /* PUT_NEW / REPLACE / DELETE with sess_sub set: in the same atomic step, the sessions
     * generation of user sess_sub becomes sess_gen (see store_refresh.gen). */
    char sess_sub[STORE_SUB_MAX + 1];
    uint64_t sess_gen;
    /* refresh: ISSUE stores rt under digest; ROTATE looks up old_digest, stores rt under
     * digest as its successor. rotate_result and (for GRACE) rt.successor are outputs;
     * rt is filled with the old token's record on every outcome but INVALID. */
    uint8_t digest[STORE_DIGEST];
    uint8_t old_digest[STORE_DIGEST];
    struct store_refresh rt;
    int64_t grace_s; /* 0: no grace, any second presentation is reuse */
    enum store_rotate_result rotate_result;
    /* FAMILY_REVOKE: family id in rt.family. JTI_REVOKE: jti in key, expiry in now+... */
    int64_t jti_expires_at;
    /* PURGE input: this operation begins a pass, from the tables' first records (else it
     * goes on from where the last one stopped). Output: records deleted, and whether the
     * pass goes on (LMDB reads at most a slice of the tables an operation: purge again) */
    bool purge_first;
    uint64_t purged;
    bool purge_more;
};

struct store_stats {
    uint64_t commits;     /* write transactions committed (each one fsync) */
    uint64_t ops;         /* write operations applied */
    uint64_t max_batch;   /* most operations in one commit */
    uint64_t commit_ns;   /* total time in commit */
    unsigned queue_depth; /* operations waiting for the writer (Redis: commands in flight) */
    uint64_t timeouts;    /* Redis: commands that timed out (their connection was remade) */
    uint64_t wait_short;  /* Redis: writes answered 503, fewer replicas than asked had them */
    int degraded;         /* Redis Cluster: some slots have no primary that answers */
};

/* Opens the embedded store in `dir` (created if missing). map_size bounds the database.
 * ERR_IO with a message in err. Refused, before the file is mapped: a data.mdb shorter than
 * its own header says (truncated: reading it would crash with SIGBUS), and an empty
 * data.mdb, or a missing one beside a lock.mdb (a directory that has held a store: users and
 * clients would be silently gone), unless flags has STORE_OPEN_INIT. Main thread. */
enum { STORE_OPEN_INIT = 1 };
int store_open_lmdb(const char *dir, size_t map_size, unsigned flags, struct store **out, char *err,
                    size_t cap);
/* The spent refresh tokens the embedded store holds in memory before its writer folds them
 * into their records (store_lmdb_rt.c; an idle writer starts a fold due at once). Until
 * set: 200,000. Any thread. */
void store_lmdb_fold_at(struct store *st, size_t n);
#ifdef FG_TESTING
/* Test builds: a refresh record written as a release before records were kept by age wrote
 * it (store_lmdb.c), and how many such records are left. */
int store_lmdb_put_aged(struct store *st, const uint8_t digest[STORE_DIGEST],
                        const struct store_refresh *r);
long store_lmdb_aged_left(struct store *st);
/* Test builds: the next n commits fail (as on a full disk) and abort their transaction. */
void store_lmdb_fail_commits(struct store *st, int n);
/* Test builds: the revoked families' index (store_lmdb_fam.c): 0 if the open found it whole,
 * else 1 + the lines its rebuild added or dropped; the lines it holds (-1: unreadable). */
long store_lmdb_fam_rebuilt(struct store *st);
long store_lmdb_fam_lines(struct store *st);
/* Test builds: how many spent refresh tokens are held now, in memory and in runs; how many
 * runs; the bytes of their filters (the gate's included); the last fold's spread estimate, per
 * mille (0 before one); with `on`, a fold writes a run however dense it would be in the records (it
 * goes there only when the runs are full or store_fold asks); from how many leaves of the refresh
 * tables a fold may become a run (4096 unless set). */
long store_lmdb_spent_held(struct store *st);
long store_lmdb_spent_runs(struct store *st);
long store_lmdb_filter_bytes(struct store *st);
long store_lmdb_fold_spread(struct store *st);
void store_lmdb_runs_always(struct store *st, bool on);
void store_lmdb_runs_min_leaves(struct store *st, size_t n);
/* Test builds: runs held before a fold of all of them into the records (0: the default, 40). */
void store_lmdb_runs_max(struct store *st, size_t n);
/* Test builds: records one purge operation reads, at most (0: the default). */
void store_lmdb_purge_scan(struct store *st, size_t n);
/* Test builds: the time one purge operation may read for once it has read 256 records
 * (ns; below 0: the default). */
void store_lmdb_purge_budget(struct store *st, int64_t ns);
#endif
/* Connects to the Redis at url (redis://[:password@]host[:port][/db] or unix:///path[?db=N]),
 * with every key under prefix and every command bounded by timeout_ms. Fails (ERR_BACKEND,
 * message in err) if Redis cannot be reached now; later outages are survived. Main thread. */
int store_open_redis(const char *url, const char *prefix, unsigned timeout_ms, struct store **out,
                     char *err, size_t cap);
/* Redis only (ERR_INVAL otherwise): every write but the login guard's counters is
 * answered only after WAIT confirms it on `replicas` replicas within timeout_ms; fewer:
 * ERR_BACKEND (the caller answers 503). 0 (the default): no WAIT. After opening, before
 * any write. */
int store_wait_replicas(struct store *st, unsigned replicas, unsigned timeout_ms);
/* Waits for queued writes, stops the writer, closes. NULL is a no-op. Main thread, after the
 * loops that receive completions have stopped submitting. */
void store_close(struct store *st);

/* Reads (table, key) into out (replacing its contents). ERR_OK (done now), ERR_AGAIN (op's
 * on_done will run on lp's thread; its status is the result; out and op stay borrowed until
 * then), ERR_NOTFOUND, ERR_BACKEND. Without an op (or lp) the read blocks until it is done:
 * LMDB reads always complete at once; Redis reads with an op are sent on lp's connection.
 * The caller sets op->on_done; the store fills the rest. */
int store_get(struct store *st, enum store_table t, const void *key, size_t klen, struct buf *out,
              struct loop *lp, struct store_op *op);

/* The blocking calls (store_get without an op, store_each, store_exec, store_lease,
 * store_pin, store_guard_begin) must not run on a loop thread: test builds abort there.
 * There is no exception (a key-ring reload for a kid a thread does not hold runs on the
 * worker pool: tok_verify.c). */

/* Lists every key of a table, calling fn for each with its value (admin and start-up; not
 * for hot paths). Runs on the caller's thread, synchronously. */
typedef int (*store_each_cb)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen);
int store_each(struct store *st, enum store_table t, store_each_cb fn, void *ctx);

/* Queues a write. Returns ERR_AGAIN (on_done runs on lp's thread once durable), or
 * ERR_LIMIT if the writer queue is full, ERR_INVAL for a malformed op (no callback). */
int store_submit(struct store *st, struct loop *lp, struct store_op *op);

/* Runs a write on the caller's thread in its own transaction (the CLI, tests). Returns the
 * op's status. Safe while a server is running on the same directory (LMDB locks between
 * processes). */
int store_exec(struct store *st, struct store_op *op);

/* The purge of expired records as a server paces it (on one thread, its maintenance): a
 * pass every `interval` seconds, in slices (one PURGE operation each, store_exec) a call
 * apart while the store says the pass goes on. LMDB reads at most a slice of its tables an
 * operation, so that no write waits long behind a pass; Redis's records expire by
 * themselves, and its pass is one empty slice. */
struct store_purge {
    int64_t last;    /* when the last pass ended, or the pacing began */
    int64_t began;   /* when this pass began */
    uint64_t purged; /* what this pass deleted so far */
    unsigned slices; /* its operations so far */
    bool on;         /* a pass is under way */
};
void store_purge_init(struct store_purge *p, int64_t now);
/* Runs the next slice if a pass is under way or due at `now`, and logs each pass at its end
 * (records deleted, slices, seconds). Returns true while the pass goes on: call again (a
 * second later) to run its next slice. */
bool store_purge_step(struct store_purge *p, struct store *st, int64_t interval, int64_t now);

/* store_exec of one PUT_NEW, REPLACE or DELETE of (t, key) = val: the common case of the
 * CLI, the admin jobs and key rotation. key is a NUL-terminated string. */
int store_exec_kv(struct store *st, enum store_op_kind kind, enum store_table t, const char *key,
                  const void *val, size_t vlen);

/* Changes of clients, keys and announced events (what servers cache) bump this number
 * (a backend that cannot be read answers the last value it read);
 * servers poll it to refresh their copies after the CLI or another instance changed the
 * store. Users are not cached, and registrations must not make every thread reload. */
uint64_t store_generation(struct store *st);
/* The same as of at most ~200 ms ago, without a round trip: what loop threads poll (Redis:
 * the service thread's last read; LMDB: store_generation, a local read). */
uint64_t store_generation_recent(struct store *st);

void store_get_stats(struct store *st, struct store_stats *out);
/* The store's families for /metrics (operations, commits, queue, timeouts, up, instances,
 * staleness), in the Prometheus text format. */
int store_metrics_text(struct store *st, struct buf *b);

/* A loop thread that submitted ops calls this once, on its own thread, after its last
 * submission (before its final uv_run): the backend closes what it keeps on that loop. */
void store_loop_release(struct store *st, struct loop *lp);

/* 1 if the backend answers now. stale_ms (if not NULL) is 0 while it does, else the time
 * since it last did. LMDB: 0 while its commits fail (a full disk, an I/O error, the map
 * full), until one works again (the writer retries by itself every second while idle).
 * Any thread, lock-free. */
int store_ready(struct store *st, uint64_t *stale_ms);

/* fn(arg, msg, len) runs on a store thread whenever another instance (or this one) revoked an
 * access token (msg is its jti) and with msg "*" after a reconnection, when messages may
 * have been missed: either way the caller drops what it cached. LMDB never calls it. */
typedef void (*store_inval_cb)(void *arg, const char *msg, size_t len);
void store_on_invalidate(struct store *st, store_inval_cb fn, void *arg);

/* Takes the lease `name` for ttl_ms if nobody holds it (or this process does): ERR_OK, else
 * ERR_CONFLICT (another instance holds it) or ERR_BACKEND. One instance at a time runs a
 * scheduled job. LMDB: always ERR_OK (one process). */
int store_lease(struct store *st, const char *name, unsigned ttl_ms);

/*
 * Login protection shared by the instances on one store (Redis): brute-force reservations
 * and locks per username, client IP and pair, and the per-IP and per-username login rate
 * limits, with the rules of policy/pol_lockout.h and pol_gcra.h, checked and reserved in one
 * round trip before a password is hashed and settled in one after. With LMDB there is one
 * process and its own tables (policy/) are the whole story: these calls do nothing.
 * Blocking, bounded by the store's timeout: for worker threads.
 */
struct store_guard_rule {
    unsigned attempts; /* 0: off */
    int64_t base_ms, max_ms, window_ms;
};

struct store_guard {
    char key[3][33];                          /* user, ip, pair: hex of keyed digests */
    struct store_guard_rule lock[3];          /* as pol_lockout's user, ip and pair rules */
    char rl_key[2][48];                       /* login rate keys, per ip and per user */
    uint64_t rl_interval_ms[2], rl_tau_ms[2]; /* GCRA; interval 0: off */
    int held;                                 /* begin reserved: end or cancel follows */
    int64_t retry_ms;                         /* refused: how long until it may be tried */
};

/* LOCKED: a lock or the recorded failures refuse (answered like a wrong password);
 * LIMITED: a login rate limit (429); BUSY: only attempts in flight fill a limit, the
 * password was never checked (429, never "wrong password"; retry_ms says when). */
enum { STORE_GUARD_OK, STORE_GUARD_LOCKED, STORE_GUARD_LIMITED, STORE_GUARD_BUSY };

/* 1 if the store is shared between instances (the guard calls do something). */
int store_shared(struct store *st);
/* ERR_OK with *verdict = STORE_GUARD_*, or ERR_BACKEND (the caller answers 503). */
int store_guard_begin(struct store *st, struct store_guard *g, int64_t now_ms, int *verdict);
/* Which keys a failure locked (store_guard_end's answer; the bits of policy/pol_lockout.h's
 * POL_LOCKED_*, which auth/auth_login.c checks at compile time). */
enum { STORE_GUARD_LOCKED_USER = 1, STORE_GUARD_LOCKED_IP = 2, STORE_GUARD_LOCKED_PAIR = 4 };
/* Settles a held reservation; returns the STORE_GUARD_LOCKED_* keys this failure locked. */
unsigned store_guard_end(struct store *st, struct store_guard *g, int success, int64_t now_ms);
void store_guard_cancel(struct store *st, struct store_guard *g);
/* Clears the locks of a username (its key hex) and of its pairs (admin unlock), and
 * publishes msg to every instance's invalidation callback (to clear their own tables). */
void store_guard_unlock(struct store *st, const char *user_key, const char *msg);

/* Announces this process as a serving instance of the shared store: a beat every second,
 * which lapses 3 s after the last one or at store_close. The CLI does not join. LMDB: no-op.
 * Main thread, once. */
void store_join(struct store *st);
/* Serving instances on the store, this one included, at the last beat (at least 1; the last
 * count while the store is unreachable). Any thread, lock-free. */
unsigned store_members(struct store *st);

/* The live console's frames (policy/pol_console.h) of the instances sharing the store: a
 * view of the last seconds, not durable. store_console_put files this instance's frame
 * (a frame older than 10 s is dropped by the next put of any instance); store_console_each
 * calls fn for each frame filed, this instance's included, until fn returns non-zero.
 * LMDB (one instance): put does nothing, each finds none. ERR_OK or ERR_BACKEND. Blocking:
 * main thread. */
int store_console_put(struct store *st, int64_t now_ms, const char *json, size_t len);
typedef int (*store_console_cb)(void *ctx, const char *json, size_t len);
int store_console_each(struct store *st, store_console_cb fn, void *ctx);

/* Every instance sharing the store must agree on `name` = val: the first sets it, later
 * callers get ERR_OK if theirs is equal, ERR_CONFLICT if not. LMDB: ERR_OK. */
int store_pin(struct store *st, const char *name, const void *val, size_t len);

/* Bytes the data file holds, and entries in a table (for benchmarks and metrics). */
int store_usage(struct store *st, enum store_table t, uint64_t *entries, uint64_t *bytes);

/* LMDB: every spending of the spent log folded into its refresh record now, the records
 * changed in *n (a release before the spent log does not read it: `floodgate store fold` before
 * going back to one, with the server stopped). Redis: nothing to fold, *n = 0. ERR_OK or
 * ERR_BACKEND. Blocking: main thread. */
int store_fold(struct store *st, uint64_t *n);

#endif
