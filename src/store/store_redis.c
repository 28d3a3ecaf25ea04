/* SPDX-License-Identifier: MIT */
/*
 * The shared store on Redis: many floodgate instances, one state.
 *
 * Writes: each loop thread owns one async hiredis connection on its libuv loop (hiredis's
 * adapter). store_submit hands the op to that thread through the loop's mailbox; there it is
 * one EVALSHA of the store script (below), so every operation is atomic in Redis and costs
 * one round trip, and everything a loop sends in one iteration leaves in one write (hiredis
 * buffers, the adapter flushes: pipelining). The op completes on the same thread when its
 * answer arrives. A command unanswered after timeout_ms drops the connection: every op in
 * flight on it fails (ERR_BACKEND, the handler answers 503), never a false "invalid".
 * Reconnection backs off from 100 ms to 2 s; while it waits, ops fail at once.
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
 * members of idx:u, idx:c, idx:k, idx:ev), rt:HEX(digest) and fam:HEX(id) (hashes, expiring
 * with what they hold), jti:ID (expiry, expiring then), gen (generation counter),
 * lease:NAME, pin:NAME, members, and the channel inval. docs/internals/SCALEOUT.md lists them.
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
#include "redis/redis_url.h"
#include "redis/redis_uv.h"
#include "store/store_int.h"
#include "store/store_rec.h"

static uint64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000u;
}

#define LOOPS_MAX      256
#define PREFIX_MAX     64
#define INFLIGHT_MAX   65536 /* per loop connection; more is ERR_LIMIT */
#define RETRY_MIN_MS   100
#define RETRY_MAX_MS   2000
#define PING_EVERY_MS  200
#define CLOCK_EVERY_MS 5000
#define BEAT_EVERY_MS  1000
#define BEAT_TTL_MS    3000 /* an instance that missed two beats is not counted */
#define ARGS_MAX       24

/*
 * One script for every write, so each is atomic and one round trip. ARGV[1] names the
 * operation. Refresh rotation is the decision table of docs/internals/STORE.md, as in
 * store_lmdb.c's apply_rotate; the contract tests run the same cases on both backends.
 * Replies: 1, an error reply (CONFLICT ..., NOTFOUND ...), or for rotate
 * {result, successor hex, f, s, n, i, e, d, r, u, c, o, g} (fields of the record returned).
 * A refresh hash without 'g' was written before sessions generations: generation 0.
 */
static const char script[] =
    "local function ttl(k, s) if s < 1 then s = 1 end redis.call('EXPIRE', k, s) end\n"
    "local F = {'f','s','n','i','e','d','r','u','c','o','g'}\n"
    "local op = ARGV[1]\n"
    /* A write carries its deadline (ms, Redis's clock) as its last argument: past it, the
     * request was already answered 503, so the write must not happen (a Redis stalled
     * or paused and resumed, a command stuck in a socket). */
    "local function late()\n"
    "  local t = redis.call('TIME')\n"
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[#ARGV])\n"
    "end\n"
    "local writes = {put = 1, del = 1, issue = 1, rotate = 1, famrevoke = 1, jti = 1}\n"
    "if writes[op] and late() then return redis.error_reply('LATE deadline passed') end\n"
    "local function expect(i)\n"
    "  if ARGV[i] ~= '1' then return true end\n"
    "  return redis.call('GET', KEYS[1]) == ARGV[i + 1]\n"
    "end\n"
    "if op == 'put' then\n"
    "  if ARGV[2] == 'new' then\n"
    "    if not redis.call('SET', KEYS[1], ARGV[3], 'NX') then\n"
    "      return redis.error_reply('CONFLICT exists') end\n"
    "  else\n"
    "    if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND absent') "
    "end\n"
    "    if not expect(7) then return redis.error_reply('CONFLICT changed') end\n"
    "    redis.call('SET', KEYS[1], ARGV[3])\n"
    "  end\n"
    "  redis.call('SADD', KEYS[2], ARGV[4])\n"
    "  if ARGV[5] == '1' then redis.call('INCR', KEYS[3]) end\n"
    "  if KEYS[4] then redis.call('SET', KEYS[4], ARGV[6]) end\n"
    "  return 1\n"
    "elseif op == 'del' then\n"
    "  if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND absent') end\n"
    "  if not expect(5) then return redis.error_reply('CONFLICT changed') end\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('SREM', KEYS[2], ARGV[2])\n"
    "  if ARGV[3] == '1' then redis.call('INCR', KEYS[3]) end\n"
    "  if KEYS[4] then redis.call('SET', KEYS[4], ARGV[4]) end\n"
    "  return 1\n"
    "elseif op == 'issue' then\n"
    "  local now, exp, idle = tonumber(ARGV[2]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "  if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('CONFLICT exists') end\n"
    "  redis.call('HSET', KEYS[2], 'r', '0', 'e', ARGV[5], 't', '0')\n"
    "  ttl(KEYS[2], exp - now)\n"
    "  redis.call('HSET', KEYS[1], 'f', ARGV[3], 's', '1', 'n', '', 'i', ARGV[4], 'e', ARGV[5],\n"
    "    'd', ARGV[6], 'r', '0', 'u', ARGV[7], 'c', ARGV[8], 'o', ARGV[9], 'g', ARGV[10])\n"
    "  ttl(KEYS[1], math.min(idle, exp) - now)\n"
    "  return 1\n"
    "elseif op == 'rotate' then\n"
    "  local now, grace, idle = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])\n"
    "  local o = redis.call('HMGET', KEYS[1], unpack(F))\n"
    "  if not o[1] or o[9] ~= ARGV[4] then return {4} end\n"
    "  local g = o[11] or '0'\n"
    "  if (redis.call('GET', ARGV[6] .. 'sess:' .. o[8]) or '0') ~= g then return {4} end\n"
    "  local fk = ARGV[6] .. 'fam:' .. o[1]\n"
    "  local fam = redis.call('HMGET', fk, 'r', 'e')\n"
    "  if not fam[2] or fam[1] == '1' or now >= tonumber(fam[2]) then return {4} end\n"
    "  local exp = tonumber(o[5])\n"
    "  if o[2] == '2' then\n"
    "    local s = redis.call('HMGET', ARGV[6] .. 'rt:' .. o[3], unpack(F))\n"
    "    if grace > 0 and now - tonumber(o[7]) <= grace and s[2] == '1' then\n"
    "      return {2, o[3], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11]}\n"
    "    end\n"
    "    redis.call('HSET', fk, 'r', '1', 't', ARGV[2])\n"
    "    return {3, '', o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9], o[10], g}\n"
    "  end\n"
    "  if now >= tonumber(o[6]) or now >= exp then return {4} end\n"
    "  if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('CONFLICT exists') end\n"
    "  local nidle = math.min(idle, exp)\n"
    "  redis.call('HSET', KEYS[2], 'f', o[1], 's', '1', 'n', '', 'i', ARGV[2], 'e', o[5],\n"
    "    'd', nidle, 'r', '0', 'u', o[8], 'c', o[9], 'o', o[10], 'g', g)\n"
    "  ttl(KEYS[2], nidle - now)\n"
    "  redis.call('HSET', KEYS[1], 's', '2', 'n', ARGV[7], 'r', ARGV[2])\n"
    "  ttl(KEYS[1], exp - now)\n"
    "  return {1, '', o[1], '1', '', ARGV[2], o[5], tostring(nidle), '0', o[8], o[9], o[10], g}\n"
    "elseif op == 'famrevoke' then\n"
    "  local r = redis.call('HGET', KEYS[1], 'r')\n"
    "  if not r then return redis.error_reply('NOTFOUND absent') end\n"
    "  if r ~= '1' then redis.call('HSET', KEYS[1], 'r', '1', 't', ARGV[2]) end\n"
    "  return 1\n"
    "elseif op == 'jti' then\n"
    "  redis.call('SET', KEYS[1], ARGV[3], 'EX',\n"
    "    math.max(1, tonumber(ARGV[3]) - tonumber(ARGV[2])))\n"
    "  redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
    "  return 1\n"
    "elseif op == 'gbegin' then\n"
    "  local now, tats, busy = tonumber(ARGV[2]), {}, false\n"
    "  for i = 1, 2 do\n"
    "    local T, tau = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])\n"
    "    if T > 0 then\n"
    "      local tat = math.max(tonumber(redis.call('GET', KEYS[3 + i]) or 0), now)\n"
    "      if tat - now > tau then return {2, tat - now - tau} end\n"
    "      tats[i] = tat + T\n"
    "    end\n"
    "  end\n"
    "  for k = 1, 3 do\n"
    "    local n = tonumber(ARGV[5 + 2 * k])\n"
    "    if n > 0 then\n"
    "      local e = redis.call('HMGET', KEYS[k], 'f', 'i', 'u', 't')\n"
    "      local u, inflight = tonumber(e[3] or 0), tonumber(e[2] or 0)\n"
    /* attempts in flight, none begun for a minute: left by an instance that died while
     * hashing (a login takes seconds at most); they no longer count */
    "      if inflight > 0 and now - tonumber(e[4] or 0) > 60000 then\n"
    "        inflight = 0\n"
    "        redis.call('HSET', KEYS[k], 'i', 0)\n"
    "      end\n"
    "      if u > now then return {1, u - now} end\n"
    "      local f = tonumber(e[1] or 0)\n"
    "      if f >= n then return {1, 0} end\n"
    "      if f + inflight >= n then busy = true end\n"
    "    end\n"
    "  end\n"
    /* full only with attempts in flight: refused, but not as a wrong password (store.h) */
    "  if busy then return {3, 1000} end\n"
    "  for i = 1, 2 do\n"
    "    if tats[i] then redis.call('SET', KEYS[3 + i], tats[i], 'PX', tats[i] - now) end\n"
    "  end\n"
    "  for k = 1, 3 do\n"
    "    local n, w = tonumber(ARGV[5 + 2 * k]), tonumber(ARGV[6 + 2 * k])\n"
    "    if n > 0 then\n"
    "      redis.call('HINCRBY', KEYS[k], 'i', 1)\n"
    "      redis.call('HSET', KEYS[k], 't', now)\n"
    "      if redis.call('PTTL', KEYS[k]) < w then redis.call('PEXPIRE', KEYS[k], w) end\n"
    "    end\n"
    "  end\n"
    "  if tonumber(ARGV[11]) > 0 then\n"
    "    redis.call('SADD', KEYS[6], KEYS[3])\n"
    "    redis.call('PEXPIRE', KEYS[6], 86400000)\n"
    "  end\n"
    "  return {0, 0}\n"
    "elseif op == 'gend' then\n"
    "  local now, ok, locked = tonumber(ARGV[2]), ARGV[3] == '1', 0\n"
    "  for k = 1, 3 do\n"
    "    local b = 4 * k\n"
    "    local n, ttl = tonumber(ARGV[b]), tonumber(ARGV[b + 3])\n"
    "    if n > 0 then\n"
    "      if redis.call('HINCRBY', KEYS[k], 'i', -1) < 0 then redis.call('HSET', KEYS[k], 'i', 0) "
    "end\n"
    "      if ok then\n"
    "        if k ~= 2 then redis.call('HSET', KEYS[k], 'f', 0) end\n"
    "      elseif redis.call('HINCRBY', KEYS[k], 'f', 1) >= n then\n"
    "        local l = redis.call('HINCRBY', KEYS[k], 'l', 1)\n"
    "        local d = math.min(tonumber(ARGV[b + 1]) * 2 ^ (l - 1), tonumber(ARGV[b + 2]))\n"
    "        redis.call('HSET', KEYS[k], 'u', now + d, 'f', 0)\n"
    "        ttl = ttl + d\n"
    "        locked = locked + 2 ^ (k - 1)\n"
    "      end\n"
    "      if redis.call('PTTL', KEYS[k]) < ttl then redis.call('PEXPIRE', KEYS[k], ttl) end\n"
    "    end\n"
    "  end\n"
    "  return locked\n"
    "elseif op == 'gcancel' then\n"
    "  for k = 1, 3 do\n"
    "    if tonumber(ARGV[1 + k]) > 0 and redis.call('HINCRBY', KEYS[k], 'i', -1) < 0 then\n"
    "      redis.call('HSET', KEYS[k], 'i', 0) end\n"
    "  end\n"
    "  return 1\n"
    "elseif op == 'gunlock' then\n"
    "  for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', k) end\n"
    "  redis.call('DEL', KEYS[1], KEYS[2])\n"
    "  redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "return redis.error_reply('BADOP unknown operation')\n";

/* A blocking connection of one thread (reads, store_exec). */
struct sconn {
    struct sconn *next, *prev;
    redisContext *c;
    unsigned epoch; /* the store's epoch when c was made */
};

/* The async connection of one loop thread. Touched only on that thread. */
struct aconn {
    struct redis_store *s;
    struct loop *lp;
    redisAsyncContext *ac;
    uv_timer_t sweep;
    struct store_op *head, *tail; /* in flight, oldest first (Redis answers in order) */
    unsigned inflight;
    uint64_t retry_at_ms;
    unsigned backoff_ms;
};

struct redis_store {
    struct store base;
    struct redis_url url;
    char prefix[PREFIX_MAX];
    unsigned timeout_ms;
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
    _Atomic uint64_t last_gen;    /* the generation last read */
    _Atomic int gen_polled;       /* the service thread has read it at least once */
    _Atomic int gen_dirty;        /* this process changed it since: read it afresh */
    char gen_key[PREFIX_MAX + 4]; /* PREFIX"gen": the generation counter */
    char member[33];              /* this instance's id in PREFIX"members", once joined */
    _Atomic int joined;
    _Atomic unsigned members;        /* serving instances counted at the last beat (>= 1) */
    _Atomic int64_t clock_offset_ms; /* Redis's TIME minus ours, measured every few seconds */
    _Atomic uint64_t late;           /* writes Redis refused as past their deadline */
    pthread_mutex_t cb_mu;
    store_inval_cb inval;
    void *inval_arg;
};

static struct redis_store *R(struct store *st)
{
    return (struct redis_store *)(void *)st;
}

/* ---- commands: one builder for both connection kinds ------------------------------------ */

struct cmd {
    int argc;
    const char *argv[ARGS_MAX];
    size_t lens[ARGS_MAX];
    char keys[4][PREFIX_MAX + 16 + 2 * STORE_KEY_MAX];
    char nums[6][24];
    int nnums;
    char hex[2][2 * STORE_DIGEST + 1];
};

static const char *const tags[STORE_T_COUNT] = {
    "u:", "c:", "k:", "rt:", "fam:", "jti:", "", "ev:", "sess:"};

/* Lower-case hex of n bytes and a NUL: out holds 2n + 1. */
static void hex(const uint8_t *p, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, p, n);
}

static int unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return ERR_INVAL;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = s[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return ERR_INVAL;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return ERR_OK;
}

static void arg(struct cmd *c, const void *p, size_t n)
{
    c->argv[c->argc] = p;
    c->lens[c->argc++] = n;
}

static void arg_s(struct cmd *c, const char *p)
{
    arg(c, p, strlen(p));
}

static void arg_i(struct cmd *c, int64_t v)
{
    char *p = c->nums[c->nnums++]; /* at most 6 numbers per command (issue and deadline) */
    snprintf(p, sizeof(c->nums[0]), "%" PRId64, v);
    arg_s(c, p);
}

/* PREFIX + tag + key; binary keys of the refresh tables become hex. Returns its length. */
static size_t key_of(const struct redis_store *s, char *out, enum store_table t, const void *k,
                     size_t klen)
{
    size_t n = (size_t)snprintf(out, PREFIX_MAX + 8, "%s%s", s->prefix, tags[t]);
    if (t == STORE_T_REFRESH || t == STORE_T_FAMILIES) {
        hex(k, klen, out + n);
        return n + 2 * klen;
    }
    memcpy(out + n, k, klen);
    out[n + klen] = '\0';
    return n + klen;
}

/* The tables servers cache (and reload when the generation moves). */
static bool bumps(enum store_table t)
{
    return t == STORE_T_CLIENTS || t == STORE_T_KEYS || t == STORE_T_EVENTS;
}

/* The small tables, listed through an index set instead of SCAN. */
static bool indexed(enum store_table t)
{
    return t == STORE_T_USERS || bumps(t);
}

static void read_cmd(enum store_table t, const char *key, size_t klen, struct cmd *c);
static int value_into(enum store_table t, redisReply *r, struct buf *out);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* When a write sent now must have run by, in Redis's clock: half the timeout after which
 * the request is answered 503, so that an answer from a write that did run has the other
 * half to arrive before that. */
static int64_t deadline_of(const struct redis_store *s)
{
    return wall_ms() + atomic_load(&s->clock_offset_ms) + (int64_t)(s->timeout_ms / 2);
}

static int build_op(const struct redis_store *s, const struct store_op *op, struct cmd *c);

static int build(const struct redis_store *s, const struct store_op *op, struct cmd *c)
{
    int rc = build_op(s, op, c);
    if (rc == ERR_OK && op->kind != STORE_OP_GET)
        arg_i(c, deadline_of(s)); /* the script's last argument: see late() */
    return rc;
}

static int build_op(const struct redis_store *s, const struct store_op *op, struct cmd *c)
{
    size_t n;
    memset(c, 0, sizeof(*c));
    arg_s(c, "EVALSHA");
    arg_s(c, s->sha);
    switch (op->kind) {
    case STORE_OP_PUT_NEW:
    case STORE_OP_REPLACE:
    case STORE_OP_DELETE: {
        int del = op->kind == STORE_OP_DELETE;
        arg_s(c, op->sess_sub[0] ? "4" : "3");
        n = key_of(s, c->keys[0], op->table, op->key, op->key_len);
        arg(c, c->keys[0], n);
        snprintf(c->keys[1], sizeof(c->keys[1]), "%sidx:%s", s->prefix, tags[op->table]);
        arg(c, c->keys[1], strlen(c->keys[1]) - 1); /* "idx:u" without the colon */
        snprintf(c->keys[2], sizeof(c->keys[2]), "%s", s->gen_key);
        arg_s(c, c->keys[2]);
        if (op->sess_sub[0])
            arg(c, c->keys[3],
                key_of(s, c->keys[3], STORE_T_SESSIONS, op->sess_sub, strlen(op->sess_sub)));
        arg_s(c, del ? "del" : "put");
        if (!del) {
            arg_s(c, op->kind == STORE_OP_PUT_NEW ? "new" : "replace");
            arg(c, op->value ? op->value : "", op->value_len);
        }
        arg(c, op->key, op->key_len);
        arg_s(c, bumps(op->table) ? "1" : "0");
        arg_i(c, (int64_t)op->sess_gen);
        arg_s(c, op->expect ? "1" : "0");
        arg(c, op->expect ? op->expect : "", op->expect_len);
        return ERR_OK;
    }
    case STORE_OP_REFRESH_ISSUE:
        arg_s(c, "2");
        arg(c, c->keys[0], key_of(s, c->keys[0], STORE_T_REFRESH, op->digest, STORE_DIGEST));
        arg(c, c->keys[1], key_of(s, c->keys[1], STORE_T_FAMILIES, op->rt.family, STORE_FAMILY_ID));
        arg_s(c, "issue");
        arg_i(c, op->now);
        hex(op->rt.family, STORE_FAMILY_ID, c->hex[0]);
        arg_s(c, c->hex[0]);
        arg_i(c, op->rt.issued_at);
        arg_i(c, op->rt.expires_at);
        arg_i(c, op->rt.idle_expires_at);
        arg_s(c, op->rt.sub);
        arg_s(c, op->rt.client_id);
        arg_s(c, op->rt.scope);
        arg_i(c, (int64_t)op->rt.gen);
        return ERR_OK;
    case STORE_OP_REFRESH_ROTATE:
        arg_s(c, "2");
        arg(c, c->keys[0], key_of(s, c->keys[0], STORE_T_REFRESH, op->old_digest, STORE_DIGEST));
        arg(c, c->keys[1], key_of(s, c->keys[1], STORE_T_REFRESH, op->digest, STORE_DIGEST));
        arg_s(c, "rotate");
        arg_i(c, op->now);
        arg_i(c, op->grace_s);
        arg_s(c, op->rt.client_id);
        arg_i(c, op->rt.idle_expires_at);
        arg_s(c, s->prefix);
        hex(op->digest, STORE_DIGEST, c->hex[0]);
        arg_s(c, c->hex[0]);
        return ERR_OK;
    case STORE_OP_FAMILY_REVOKE:
        arg_s(c, "1");
        arg(c, c->keys[0], key_of(s, c->keys[0], STORE_T_FAMILIES, op->rt.family, STORE_FAMILY_ID));
        arg_s(c, "famrevoke");
        arg_i(c, op->now);
        return ERR_OK;
    case STORE_OP_JTI_REVOKE:
        arg_s(c, "1");
        arg(c, c->keys[0], key_of(s, c->keys[0], STORE_T_REVOKED, op->key, op->key_len));
        arg_s(c, "jti");
        arg_i(c, op->now);
        arg_i(c, op->jti_expires_at);
        snprintf(c->keys[1], sizeof(c->keys[1]), "%sinval", s->prefix);
        arg_s(c, c->keys[1]);
        arg(c, op->key, op->key_len);
        return ERR_OK;
    case STORE_OP_GET: {
        size_t kn = key_of(s, c->keys[0], op->table, op->key, op->key_len);
        read_cmd(op->table, c->keys[0], kn, c);
        return ERR_OK;
    }
    case STORE_OP_PURGE:
        break; /* keys expire by themselves: nothing to send */
    }
    return ERR_INVAL;
}

static int64_t num(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* A string field into dst; one that does not fit is a record this code did not write:
 * refused, never cut (a cut subject would name someone else). */
static int str_to(const redisReply *r, char *dst, size_t cap)
{
    size_t n = r && r->type == REDIS_REPLY_STRING ? r->len : 0;
    if (n >= cap)
        return ERR_INVAL;
    if (n)
        memcpy(dst, r->str, n);
    dst[n] = '\0';
    return ERR_OK;
}

/* Hash fields f s n i e d r u c o g (the order of F in the script) into a refresh record. */
static int refresh_from(redisReply **e, struct store_refresh *rt)
{
    memset(rt, 0, sizeof(*rt));
    if (!e[0] || e[0]->type != REDIS_REPLY_STRING ||
        unhex(e[0]->str, e[0]->len, rt->family, STORE_FAMILY_ID))
        return ERR_INVAL;
    rt->state = (uint8_t)num(e[1]);
    if (e[2] && e[2]->type == REDIS_REPLY_STRING && e[2]->len &&
        unhex(e[2]->str, e[2]->len, rt->successor, STORE_DIGEST))
        return ERR_INVAL;
    rt->issued_at = num(e[3]);
    rt->expires_at = num(e[4]);
    rt->idle_expires_at = num(e[5]);
    rt->rotated_at = num(e[6]);
    if (str_to(e[7], rt->sub, sizeof(rt->sub)) ||
        str_to(e[8], rt->client_id, sizeof(rt->client_id)) ||
        str_to(e[9], rt->scope, sizeof(rt->scope)))
        return ERR_INVAL;
    rt->gen = (uint64_t)num(e[10]);
    return ERR_OK;
}

/* The script's answer into op->status (and the rotation's outputs). */
static int decode(struct store_op *op, const redisReply *r)
{
    if (!r)
        return op->status = ERR_BACKEND;
    if (op->kind == STORE_OP_GET)
        return op->status = r->type == REDIS_REPLY_ERROR
                                ? ERR_BACKEND
                                : value_into(op->table, (redisReply *)(uintptr_t)r, op->_out);
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "CONFLICT ", 9) == 0)
            return op->status = ERR_CONFLICT;
        if (strncmp(r->str, "LATE ", 5) == 0) /* ran past its deadline: nothing written */
            return op->status = ERR_BACKEND;
        if (strncmp(r->str, "NOTFOUND ", 9) == 0)
            return op->status = ERR_NOTFOUND;
        log_kv(LOG_WARN, "redis store: command refused", "error", r->str, LOG_END);
        return op->status = ERR_BACKEND;
    }
    if (op->kind != STORE_OP_REFRESH_ROTATE)
        return op->status = r->type == REDIS_REPLY_INTEGER ? ERR_OK : ERR_BACKEND;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return op->status = ERR_BACKEND;
    op->rotate_result = (enum store_rotate_result)num(r->element[0]);
    if (op->rotate_result < STORE_ROTATED || op->rotate_result > STORE_ROTATE_INVALID)
        return op->status = ERR_BACKEND;
    if (op->rotate_result == STORE_ROTATE_INVALID)
        return op->status = ERR_OK;
    if (r->elements != 13 || refresh_from(r->element + 2, &op->rt))
        return op->status = ERR_BACKEND;
    if (op->rotate_result == STORE_ROTATE_GRACE &&
        unhex(r->element[1]->str, r->element[1]->len, op->digest, STORE_DIGEST))
        return op->status = ERR_BACKEND;
    return op->status = ERR_OK;
}

/* ---- blocking connections (one per calling thread) ------------------------------------- */

static struct timeval tv_of(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Connects, authenticates, selects the db and loads the script. NULL with a message. */
static redisContext *connect_sync(const struct redis_store *s, char *err, size_t cap)
{
    struct timeval tv = tv_of(s->timeout_ms);
    const struct redis_url *u = &s->url;
    redisContext *c = u->path[0] ? redisConnectUnixWithTimeout(u->path, tv)
                                 : redisConnectWithTimeout(u->host, u->port, tv);
    redisReply *r = NULL;

    if (!c || c->err)
        goto fail;
    if (redisSetTimeout(c, tv) != REDIS_OK)
        goto fail;
    const char *av[3];
    size_t al[3];
    int an = redis_url_auth(u, av, al);
    if (an) {
        r = redisCommandArgv(c, an, av, al);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    r = redisCommand(c, "SCRIPT LOAD %s", script);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40)
        goto fail;
    freeReplyObject(r);
    return c;
fail:
    if (u->path[0])
        snprintf(err, cap, "redis unix:%s: %s", u->path,
                 r && r->type == REDIS_REPLY_ERROR ? r->str
                 : c && c->err                     ? c->errstr
                                                   : "unexpected answer");
    else
        snprintf(err, cap, "redis %s:%d: %s", u->host, u->port,
                 r && r->type == REDIS_REPLY_ERROR ? r->str
                 : c && c->err                     ? c->errstr
                                                   : "unexpected answer");
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
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
    if (sc->c)
        redisFree(sc->c);
    free(sc);
}

/* This thread's connection, connected; NULL (fail fast) while Redis is known to be down or
 * when it cannot be reached now. */
static redisContext *sync_ctx(struct redis_store *s)
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
    if (sc->c && !sc->c->err && sc->epoch == epoch)
        return sc->c;
    if (sc->c) {
        redisFree(sc->c);
        sc->c = NULL;
    }
    if (!atomic_load(&s->healthy))
        return NULL;
    sc->c = connect_sync(s, err, sizeof(err));
    sc->epoch = epoch;
    return sc->c;
}

/* One command on this thread's connection. NULL on any failure (the connection is dropped,
 * the next call reconnects). */
static redisReply *sync_cmd(struct redis_store *s, const struct cmd *c)
{
    redisContext *ctx = sync_ctx(s);
    if (!ctx)
        return NULL;
    redisReply *r = redisCommandArgv(ctx, c->argc, (const char **)(uintptr_t)c->argv, c->lens);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* the script cache was flushed (SCRIPT FLUSH, a restart without persistence of it, a
         * failover): load it again on this connection and send the command once more */
        freeReplyObject(r);
        r = redisCommand(ctx, "SCRIPT LOAD %s", script);
        int loaded = r && r->type == REDIS_REPLY_STRING;
        if (r)
            freeReplyObject(r);
        r = loaded ? redisCommandArgv(ctx, c->argc, (const char **)(uintptr_t)c->argv, c->lens)
                   : NULL;
    }
    if (!r) {
        redisFree(ctx);
        ((struct sconn *)pthread_getspecific(s->tls))->c = NULL;
    }
    return r;
}

static redisReply *sync_fmt(struct redis_store *s, int argc, const char **argv, const size_t *lens)
{
    struct cmd c;
    c.argc = argc;
    memcpy(c.argv, argv, sizeof(*argv) * (size_t)argc);
    memcpy(c.lens, lens, sizeof(*lens) * (size_t)argc);
    return sync_cmd(s, &c);
}

/* ---- async connections (one per loop thread) ------------------------------------------- */

static void a_fail_now(struct store_op *op, int status)
{
    op->status = status;
    op->on_done(op); /* on the loop thread, in a posted task or a hiredis callback */
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
static void note_write(struct redis_store *s, const struct store_op *op)
{
    if (op->status == ERR_OK && bumps(op->table) &&
        (op->kind == STORE_OP_PUT_NEW || op->kind == STORE_OP_REPLACE ||
         op->kind == STORE_OP_DELETE))
        atomic_store(&s->gen_dirty, 1);
}

static bool is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct store_op *op = priv;
    struct aconn *a = ac->data;
    a_unlink(a, op);
    if (is_noscript(reply) && a->ac == ac && !op->_resent) {
        /* The script cache was flushed (SCRIPT FLUSH, a failover to a replica that never
         * loaded it): load it on this connection and send the op again, after it (one
         * connection, in order). Its timeout starts again: the request is not answered
         * while its write may still run. */
        struct cmd c;
        op->_resent = 1;
        if (redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", script) == REDIS_OK &&
            build(a->s, op, &c) == ERR_OK &&
            redisAsyncCommandArgv(ac, on_reply, op, c.argc, c.argv, c.lens) == REDIS_OK) {
            op->_next = NULL;
            op->_sent_ms = clock_mono_ms();
            QUEUE_APPEND(a->head, a->tail, op, _next);
            a->inflight++;
            atomic_fetch_add(&a->s->inflight, 1);
            return;
        }
    }
    decode(op, reply);
    note_write(a->s, op);
    if (is_noscript(reply) && a->ac == ac) {
        a->ac = NULL; /* still no script: reconnecting loads it again */
        redisAsyncFree(ac);
    }
    op->on_done(op);
}

static void on_async_connect(const redisAsyncContext *ac, int status)
{
    struct aconn *a = ac->data;
    if (status == REDIS_OK) {
        a->backoff_ms = RETRY_MIN_MS;
        return;
    }
    log_kv(LOG_WARN, "redis store: cannot connect", "error", ac->errstr, LOG_END);
    if (a->ac == ac)
        a->ac = NULL; /* hiredis frees it and fails what was queued */
    a->retry_at_ms = clock_mono_ms() + a->backoff_ms;
    a->backoff_ms = a->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : a->backoff_ms * 2;
}

static void on_async_disconnect(const redisAsyncContext *ac, int status)
{
    struct aconn *a = ac->data;
    if (a->ac == ac)
        a->ac = NULL;
    if (status != REDIS_OK) {
        log_kv(LOG_WARN, "redis store: connection lost", "error", ac->errstr, LOG_END);
        a->retry_at_ms = clock_mono_ms() + a->backoff_ms;
        a->backoff_ms = a->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : a->backoff_ms * 2;
    }
}

static int a_connect(struct aconn *a)
{
    const struct redis_url *u = &a->s->url;
    redisAsyncContext *ac =
        u->path[0] ? redisAsyncConnectUnix(u->path) : redisAsyncConnect(u->host, u->port);
    if (!ac || ac->err || redis_uv_attach(ac, &a->lp->uv) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        a->retry_at_ms = clock_mono_ms() + a->backoff_ms;
        return ERR_BACKEND;
    }
    ac->data = a;
    redisAsyncSetConnectCallback(ac, on_async_connect);
    redisAsyncSetDisconnectCallback(ac, on_async_disconnect);
    /* queued until the connection is up, answered before any EVALSHA */
    const char *av[3];
    size_t al[3];
    int an = redis_url_auth(u, av, al);
    if (an)
        redisAsyncCommandArgv(ac, NULL, NULL, an, av, al);
    if (u->db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", u->db);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", script);
    a->ac = ac;
    return ERR_OK;
}

/* Every timeout/4: a command older than the timeout means Redis is gone or stuck; dropping
 * the connection fails everything in flight on it (503s), and the next op reconnects. */
static void on_sweep(uv_timer_t *t)
{
    struct aconn *a = t->data;
    if (a->head && a->ac && clock_mono_ms() - a->head->_sent_ms > a->s->timeout_ms) {
        redisAsyncContext *ac = a->ac;
        atomic_fetch_add(&a->s->timeouts, 1);
        log_kv(LOG_WARN, "redis store: command timed out; reconnecting", LOG_END);
        a->ac = NULL;
        a->retry_at_ms = clock_mono_ms() + a->backoff_ms;
        redisAsyncFree(ac);
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
    a->backoff_ms = RETRY_MIN_MS;
    uv_timer_init(&lp->uv, &a->sweep);
    a->sweep.data = a;
    unsigned every = s->timeout_ms / 4 ? s->timeout_ms / 4 : 1;
    uv_timer_start(&a->sweep, on_sweep, every, every);
    uv_unref((uv_handle_t *)&a->sweep);
    s->aconns[lp->index] = a;
    return a;
}

/* On the loop thread: send the op, or fail it. */
static void a_issue(struct loop_task *t)
{
    struct store_op *op = (struct store_op *)(void *)t;
    struct redis_store *s = R((struct store *)op->_next); /* smuggled by r_submit */
    struct aconn *a = a_get(s, op->_loop);
    struct cmd c;

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
    if (a->inflight >= INFLIGHT_MAX) {
        a_fail_now(op, ERR_LIMIT);
        return;
    }
    if ((!a->ac && (clock_mono_ms() < a->retry_at_ms || a_connect(a))) || build(s, op, &c) ||
        redisAsyncCommandArgv(a->ac, on_reply, op, c.argc, c.argv, c.lens) != REDIS_OK) {
        a_fail_now(op, ERR_BACKEND);
        return;
    }
    op->_sent_ms = clock_mono_ms();
    op->_resent = 0;
    QUEUE_APPEND(a->head, a->tail, op, _next);
    a->inflight++;
    atomic_fetch_add(&s->inflight, 1);
    atomic_fetch_add(&s->ops, 1);
}

static int r_submit(struct store *st, struct loop *lp, struct store_op *op)
{
    if (!lp || lp->index >= LOOPS_MAX)
        return ERR_INVAL;
    op->_loop = lp;
    op->_next = (struct store_op *)(void *)st;
    op->_task.on_run = a_issue;
    loop_post(lp, &op->_task);
    return ERR_AGAIN;
}

static void on_sweep_closed(uv_handle_t *h)
{
    free(h->data);
}

static void r_loop_release(struct store *st, struct loop *lp)
{
    struct redis_store *s = R(st);
    struct aconn *a = lp->index < LOOPS_MAX ? s->aconns[lp->index] : NULL;
    if (!a)
        return;
    s->aconns[lp->index] = NULL;
    if (a->ac) {
        redisAsyncContext *ac = a->ac;
        a->ac = NULL;
        redisAsyncFree(ac); /* fails anything still in flight */
    }
    uv_close((uv_handle_t *)&a->sweep, on_sweep_closed);
}

/* ---- synchronous operations ------------------------------------------------------------ */

static int r_exec(struct store *st, struct store_op *op)
{
    struct redis_store *s = R(st);
    struct cmd c;

    if (op->kind == STORE_OP_PURGE) {
        op->purged = 0;
        return op->status = ERR_OK;
    }
    if (build(s, op, &c))
        return op->status = ERR_INVAL;
    redisReply *r = sync_cmd(s, &c);
    atomic_fetch_add(&s->ops, 1);
    decode(op, r);
    note_write(s, op);
    if (r)
        freeReplyObject(r);
    return op->status;
}

static int value_into(enum store_table t, redisReply *r, struct buf *out)
{
    buf_reset(out);
    if (t == STORE_T_REFRESH) {
        struct store_refresh rt;
        uint8_t enc[STORE_REFRESH_ENC_MAX];
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 11 || !r->element[0] ||
            r->element[0]->type != REDIS_REPLY_STRING)
            return ERR_NOTFOUND;
        if (refresh_from(r->element, &rt))
            return ERR_BACKEND;
        size_t n = store_refresh_encode(&rt, enc);
        return n ? buf_append(out, enc, n) : ERR_BACKEND;
    }
    if (t == STORE_T_FAMILIES) {
        struct store_family f;
        uint8_t enc[STORE_FAMILY_ENC];
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !r->element[1] ||
            r->element[1]->type != REDIS_REPLY_STRING)
            return ERR_NOTFOUND;
        f.revoked = num(r->element[0]) == 1;
        f.expires_at = num(r->element[1]);
        f.revoked_at = num(r->element[2]);
        store_family_encode(&f, enc);
        return buf_append(out, enc, sizeof(enc));
    }
    if (r->type == REDIS_REPLY_NIL)
        return ERR_NOTFOUND;
    if (r->type != REDIS_REPLY_STRING)
        return ERR_BACKEND;
    if (t == STORE_T_REVOKED) {
        int64_t exp = strtoll(r->str, NULL, 10);
        return buf_append(out, &exp, sizeof(exp));
    }
    return buf_append(out, r->str, r->len);
}

/* The read command of one record into c (key in c->keys[0]). */
static void read_cmd(enum store_table t, const char *key, size_t klen, struct cmd *c)
{
    c->argc = 0;
    if (t == STORE_T_REFRESH || t == STORE_T_FAMILIES) {
        static const char *const rf[] = {"f", "s", "n", "i", "e", "d", "r", "u", "c", "o", "g"};
        static const char *const ff[] = {"r", "e", "t"};
        arg_s(c, "HMGET");
        arg(c, key, klen);
        size_t nf = t == STORE_T_REFRESH ? 11 : 3;
        for (size_t i = 0; i < nf; i++)
            arg_s(c, t == STORE_T_REFRESH ? rf[i] : ff[i]);
    } else {
        arg_s(c, "GET");
        arg(c, key, klen);
    }
}

static int r_get(struct store *st, enum store_table t, const void *key, size_t klen,
                 struct buf *out, struct loop *lp, struct store_op *op)
{
    struct redis_store *s = R(st);
    struct cmd c;
    char k[sizeof(c.keys[0])];

    if (t == STORE_T_META)
        return ERR_INVAL;
    if (op && lp) { /* on lp's own connection, completing there */
        op->kind = STORE_OP_GET;
        op->table = t;
        memcpy(op->key, key, klen);
        op->key_len = klen;
        op->_out = out;
        return r_submit(st, lp, op);
    }
    size_t kn = key_of(s, k, t, key, klen);
    memset(&c, 0, sizeof(c));
    read_cmd(t, k, kn, &c);
    redisReply *r = sync_cmd(s, &c);
    if (!r)
        return ERR_BACKEND;
    int rc = r->type == REDIS_REPLY_ERROR ? ERR_BACKEND : value_into(t, r, out);
    freeReplyObject(r);
    return rc;
}

/* One SCAN step over a table's keys: the reply ({next cursor, keys}), with cursor advanced;
 * NULL on failure. */
static redisReply *scan_page(struct redis_store *s, enum store_table t, char *cursor, size_t cap)
{
    char pat[PREFIX_MAX + 16];
    snprintf(pat, sizeof(pat), "%s%s*", s->prefix, tags[t]);
    const char *a[] = {"SCAN", cursor, "MATCH", pat, "COUNT", "1000"};
    size_t l[] = {4, strlen(cursor), 5, strlen(pat), 5, 4};
    redisReply *r = sync_fmt(s, 6, a, l);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
              r->element[0]->type != REDIS_REPLY_STRING ||
              r->element[1]->type != REDIS_REPLY_ARRAY || str_to(r->element[0], cursor, cap))) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

/* Small tables: the members of their index. The refresh tables: SCAN (rare: the
 * revoke-every-session reaction, maintenance tools). */
static int r_each(struct store *st, enum store_table t, store_each_cb fn, void *ctx)
{
    struct redis_store *s = R(st);
    char pat[PREFIX_MAX + 16], cursor[32] = "0";
    struct buf v;
    int rc = ERR_OK;

    if (t == STORE_T_META)
        return ERR_OK;
    buf_init(&v, 4096);
    do {
        redisReply *list;
        size_t plen = strlen(s->prefix) + strlen(tags[t]);
        int scan = !indexed(t);
        if (scan) {
            list = scan_page(s, t, cursor, sizeof(cursor));
            if (!list) {
                rc = ERR_BACKEND;
                break;
            }
        } else {
            snprintf(pat, sizeof(pat), "%sidx:%s", s->prefix, tags[t]);
            const char *a[] = {"SMEMBERS", pat};
            size_t l[] = {8, strlen(pat) - 1};
            list = sync_fmt(s, 2, a, l);
            if (!list || list->type != REDIS_REPLY_ARRAY) {
                if (list)
                    freeReplyObject(list);
                rc = ERR_BACKEND;
                break;
            }
            cursor[0] = '0';
            cursor[1] = '\0';
        }
        redisReply *names = scan ? list->element[1] : list;
        for (size_t i = 0; i < names->elements && rc == ERR_OK; i++) {
            redisReply *e = names->element[i];
            struct cmd c;
            char k[sizeof(c.keys[0])];
            uint8_t raw[STORE_KEY_MAX];
            const void *kp;
            size_t kl;
            if (e->type != REDIS_REPLY_STRING)
                continue;
            if (scan) { /* the full key name: take the table's key back out of it */
                kl = e->len - plen;
                kp = e->str + plen;
                if (t == STORE_T_REFRESH || t == STORE_T_FAMILIES) {
                    size_t bn = t == STORE_T_REFRESH ? STORE_DIGEST : STORE_FAMILY_ID;
                    if (unhex(e->str + plen, kl, raw, bn))
                        continue;
                    kp = raw;
                    kl = bn;
                }
                memcpy(k, e->str, e->len);
                k[e->len] = '\0';
            } else {
                kp = e->str;
                kl = e->len;
                key_of(s, k, t, e->str, e->len);
            }
            memset(&c, 0, sizeof(c));
            read_cmd(t, k, strlen(k), &c);
            redisReply *r = sync_cmd(s, &c);
            if (!r) {
                rc = ERR_BACKEND;
                break;
            }
            int vr = value_into(t, r, &v);
            freeReplyObject(r);
            if (vr == ERR_OK)
                rc = fn(ctx, kp, kl, v.p, v.len);
            else if (vr != ERR_NOTFOUND) /* gone since it was listed: skipped */
                rc = vr;
        }
        freeReplyObject(list);
    } while (rc == ERR_OK && strcmp(cursor, "0") != 0);
    buf_fini(&v);
    return rc;
}

static uint64_t r_generation(struct store *st)
{
    struct redis_store *s = R(st);
    const char *a[] = {"GET", s->gen_key};
    size_t l[] = {3, strlen(s->gen_key)};
    redisReply *r = sync_fmt(s, 2, a, l);
    /* Unreachable: the last value read, so that caches keyed by it (clients, the key ring)
     * stay valid through an outage instead of all missing at once. */
    uint64_t g = r && r->type != REDIS_REPLY_ERROR ? (uint64_t)num(r) : atomic_load(&s->last_gen);
    if (r)
        freeReplyObject(r);
    atomic_store(&s->last_gen, g);
    return g;
}

static uint64_t r_generation_recent(struct store *st)
{
    struct redis_store *s = R(st);
    if (!atomic_load(&s->gen_polled) || atomic_exchange(&s->gen_dirty, 0))
        return r_generation(st);
    return atomic_load(&s->last_gen);
}

static void r_stats(struct store *st, struct store_stats *out)
{
    struct redis_store *s = R(st);
    memset(out, 0, sizeof(*out));
    out->ops = out->commits = atomic_load(&s->ops);
    out->max_batch = 1;
    out->queue_depth = (unsigned)atomic_load(&s->inflight);
    out->timeouts = atomic_load(&s->timeouts);
}

static int r_usage(struct store *st, enum store_table t, uint64_t *entries, uint64_t *bytes)
{
    struct redis_store *s = R(st);
    uint64_t n = 0;
    int rc = t == STORE_T_META ? ERR_INVAL : ERR_OK;

    if (rc == ERR_OK && indexed(t)) {
        char k[PREFIX_MAX + 16];
        snprintf(k, sizeof(k), "%sidx:%s", s->prefix, tags[t]);
        const char *a[] = {"SCARD", k};
        size_t l[] = {5, strlen(k) - 1};
        redisReply *r = sync_fmt(s, 2, a, l);
        rc = r && r->type == REDIS_REPLY_INTEGER ? ERR_OK : ERR_BACKEND;
        n = r ? (uint64_t)num(r) : 0;
        if (r)
            freeReplyObject(r);
    } else if (rc == ERR_OK) {
        char cursor[32] = "0";
        do {
            redisReply *r = scan_page(s, t, cursor, sizeof(cursor));
            if (!r) {
                rc = ERR_BACKEND;
                break;
            }
            n += r->element[1]->elements;
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
    }
    *entries = n;
    *bytes = 0;
    if (rc == ERR_OK) {
        const char *a[] = {"MEMORY", "STATS"};
        size_t l[] = {6, 5};
        redisReply *r = sync_fmt(s, 2, a, l);
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
            if (r->element[i]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[i]->str, "total.allocated") == 0)
                *bytes = (uint64_t)num(r->element[i + 1]);
        if (r)
            freeReplyObject(r);
    }
    return rc;
}

static int r_ready(struct store *st, uint64_t *stale_ms)
{
    struct redis_store *s = R(st);
    int ok = atomic_load(&s->healthy);
    if (stale_ms)
        *stale_ms = ok ? 0 : clock_mono_ms() - atomic_load(&s->last_ok_ms);
    return ok;
}

static void r_on_invalidate(struct store *st, store_inval_cb fn, void *arg)
{
    struct redis_store *s = R(st);
    pthread_mutex_lock(&s->cb_mu);
    s->inval = fn;
    s->inval_arg = arg;
    pthread_mutex_unlock(&s->cb_mu);
}

static void invalidate(struct redis_store *s, const char *msg, size_t len)
{
    pthread_mutex_lock(&s->cb_mu);
    if (s->inval)
        s->inval(s->inval_arg, msg, len);
    pthread_mutex_unlock(&s->cb_mu);
}

/* The instance id in leases: host name and pid, for whoever inspects the key. */
static void holder(char *out, size_t cap)
{
    char host[128] = "?";
    gethostname(host, sizeof(host) - 1);
    snprintf(out, cap, "%s:%d", host, (int)getpid());
}

static int r_lease(struct store *st, const char *name, unsigned ttl_ms)
{
    struct redis_store *s = R(st);
    char k[PREFIX_MAX + 64], me[192], ms[24];
    snprintf(k, sizeof(k), "%slease:%s", s->prefix, name);
    holder(me, sizeof(me));
    snprintf(ms, sizeof(ms), "%u", ttl_ms);
    const char *a[] = {"SET", k, me, "NX", "PX", ms};
    size_t l[] = {3, strlen(k), strlen(me), 2, 2, strlen(ms)};
    redisReply *r = sync_fmt(s, 6, a, l);
    int rc = !r ? ERR_BACKEND : r->type == REDIS_REPLY_STATUS ? ERR_OK : ERR_CONFLICT;
    if (r)
        freeReplyObject(r);
    if (rc == ERR_CONFLICT) { /* ours from an earlier round? */
        const char *g[] = {"GET", k};
        size_t gl[] = {3, strlen(k)};
        r = sync_fmt(s, 2, g, gl);
        if (r && r->type == REDIS_REPLY_STRING && strcmp(r->str, me) == 0)
            rc = ERR_OK;
        if (r)
            freeReplyObject(r);
    }
    return rc;
}

static int r_pin(struct store *st, const char *name, const void *val, size_t len)
{
    struct redis_store *s = R(st);
    char k[PREFIX_MAX + 64];
    snprintf(k, sizeof(k), "%spin:%s", s->prefix, name);
    const char *a[] = {"SET", k, val, "NX", "GET"};
    size_t l[] = {3, strlen(k), len, 2, 3};
    redisReply *r = sync_fmt(s, 5, a, l); /* SET ... NX GET: Redis >= 7.0 */
    int rc = !r                             ? ERR_BACKEND
             : r->type == REDIS_REPLY_NIL   ? ERR_OK
             : r->type == REDIS_REPLY_ERROR ? ERR_BACKEND
             : (r->type == REDIS_REPLY_STRING && r->len == len && memcmp(r->str, val, len) == 0)
                 ? ERR_OK
                 : ERR_CONFLICT;
    if (r)
        freeReplyObject(r);
    return rc;
}

/* ---- shared login protection ------------------------------------------------------------ */

struct gcmd {
    struct cmd c;
    char k[6][PREFIX_MAX + 64];
    char n[20][24];
    int nn;
};

static void g_num(struct gcmd *g, int64_t v)
{
    snprintf(g->n[g->nn], sizeof(g->n[0]), "%" PRId64, v);
    arg_s(&g->c, g->n[g->nn++]);
}

/* EVALSHA sha NKEYS lo:user lo:ip lo:pair [rl:ip rl:user lp:user] op */
static void g_head(const struct redis_store *s, const struct store_guard *g, struct gcmd *x,
                   int nkeys, const char *op)
{
    memset(x, 0, sizeof(*x));
    arg_s(&x->c, "EVALSHA");
    arg_s(&x->c, s->sha);
    g_num(x, nkeys);
    for (int k = 0; k < 3; k++) {
        snprintf(x->k[k], sizeof(x->k[k]), "%slo:%s", s->prefix, g->key[k]);
        arg_s(&x->c, x->k[k]);
    }
    if (nkeys == 6) {
        for (int i = 0; i < 2; i++) {
            snprintf(x->k[3 + i], sizeof(x->k[0]), "%srl:%s", s->prefix, g->rl_key[i]);
            arg_s(&x->c, x->k[3 + i]);
        }
        snprintf(x->k[5], sizeof(x->k[5]), "%slp:%s", s->prefix, g->key[0]);
        arg_s(&x->c, x->k[5]);
    }
    arg_s(&x->c, op);
}

static int r_guard_begin(struct store *st, struct store_guard *g, int64_t now_ms, int *verdict)
{
    struct redis_store *s = R(st);
    struct gcmd x;

    g_head(s, g, &x, 6, "gbegin");
    g_num(&x, now_ms);
    for (int i = 0; i < 2; i++) {
        g_num(&x, (int64_t)g->rl_interval_ms[i]);
        g_num(&x, (int64_t)g->rl_tau_ms[i]);
    }
    for (int k = 0; k < 3; k++) {
        g_num(&x, g->lock[k].attempts);
        g_num(&x, g->lock[k].window_ms > 0 ? g->lock[k].window_ms : 1);
    }
    redisReply *r = sync_cmd(s, &x.c);
    int rc = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? ERR_OK : ERR_BACKEND;
    if (rc == ERR_OK) {
        *verdict = (int)num(r->element[0]);
        g->retry_ms = num(r->element[1]);
        g->held = *verdict == STORE_GUARD_OK;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

static unsigned r_guard_end(struct store *st, struct store_guard *g, int success, int64_t now_ms)
{
    struct redis_store *s = R(st);
    struct gcmd x;

    g_head(s, g, &x, 3, "gend");
    g_num(&x, now_ms);
    g_num(&x, success ? 1 : 0);
    for (int k = 0; k < 3; k++) {
        g_num(&x, g->lock[k].attempts);
        g_num(&x, g->lock[k].base_ms);
        g_num(&x, g->lock[k].max_ms);
        g_num(&x, g->lock[k].window_ms > 0 ? g->lock[k].window_ms : 1);
    }
    redisReply *r = sync_cmd(s, &x.c);
    unsigned locked = r && r->type == REDIS_REPLY_INTEGER ? (unsigned)r->integer : 0;
    if (r)
        freeReplyObject(r);
    return locked; /* (lost: the reservation expires with its window) */
}

static void r_guard_cancel(struct store *st, struct store_guard *g)
{
    struct redis_store *s = R(st);
    struct gcmd x;

    g_head(s, g, &x, 3, "gcancel");
    for (int k = 0; k < 3; k++)
        g_num(&x, g->lock[k].attempts);
    redisReply *r = sync_cmd(s, &x.c);
    if (r)
        freeReplyObject(r);
}

static void r_guard_unlock(struct store *st, const char *user_key, const char *msg)
{
    struct redis_store *s = R(st);
    char k1[PREFIX_MAX + 64], k2[PREFIX_MAX + 64], ch[PREFIX_MAX + 8];
    snprintf(k1, sizeof(k1), "%slo:%s", s->prefix, user_key);
    snprintf(k2, sizeof(k2), "%slp:%s", s->prefix, user_key);
    snprintf(ch, sizeof(ch), "%sinval", s->prefix);
    const char *a[] = {"EVALSHA", s->sha, "2", k1, k2, "gunlock", ch, msg};
    size_t l[] = {7, 40, 1, strlen(k1), strlen(k2), 7, strlen(ch), strlen(msg)};
    redisReply *r = sync_fmt(s, 8, a, l);
    if (r)
        freeReplyObject(r);
}

/* ---- the service thread: health and invalidations -------------------------------------- */

/* One beat: this instance's expiry by Redis's clock (instances' clocks may differ), the
 * expired ones dropped, the rest counted. TIME before writes needs effects replication,
 * the default since Redis 5 and the only mode since 7. */
static const char beat_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "redis.call('PEXPIRE', KEYS[1], 4 * tonumber(ARGV[2]))\n"
    "return redis.call('ZCARD', KEYS[1])\n";

/* 0 if the connection failed (the caller drops it). */
static int beat(struct redis_store *s, redisContext *c, int leave)
{
    char key[PREFIX_MAX + 8];
    snprintf(key, sizeof(key), "%smembers", s->prefix);
    redisReply *r =
        leave ? redisCommand(c, "ZREM %s %s", key, s->member)
              : redisCommand(c, "EVAL %s 1 %s %s %d", beat_script, key, s->member, BEAT_TTL_MS);
    if (!r)
        return 0;
    if (!leave && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        atomic_store(&s->members, (unsigned)r->integer);
    else if (r->type == REDIS_REPLY_ERROR)
        log_kv(LOG_WARN, "redis store: membership beat failed", "error", r->str, LOG_END);
    freeReplyObject(r);
    return 1;
}

static void *service_main(void *arg)
{
    struct redis_store *s = arg;
    redisContext *sub = NULL, *ping = NULL;
    uint64_t next_ping = 0, next_beat = 0, next_clock = 0, retry_at = 0;
    unsigned backoff = RETRY_MIN_MS;
    char err[256], chan[PREFIX_MAX + 8];

    snprintf(chan, sizeof(chan), "%sinval", s->prefix);
    while (!atomic_load(&s->stopping)) {
        uint64_t now = clock_mono_ms();
        if ((!sub || !ping) && now >= retry_at) {
            if (!ping)
                ping = connect_sync(s, err, sizeof(err));
            if (ping && !sub) {
                sub = connect_sync(s, err, sizeof(err));
                redisReply *r = sub ? redisCommand(sub, "SUBSCRIBE %s", chan) : NULL;
                if (!r) {
                    if (sub)
                        redisFree(sub);
                    sub = NULL;
                } else {
                    freeReplyObject(r);
                    /* messages may have been missed while we were away: drop every cache */
                    invalidate(s, "*", 1);
                }
            }
            if (!sub || !ping) {
                retry_at = now + backoff;
                backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            } else {
                backoff = RETRY_MIN_MS;
            }
        }
        if (ping && now >= next_clock) {
            /* Redis's clock against ours, for the deadlines writes carry (deadline_of) */
            int64_t t0 = wall_ms();
            redisReply *r = redisCommand(ping, "TIME");
            int64_t t1 = wall_ms();
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                int64_t redis_ms = num(r->element[0]) * 1000 + num(r->element[1]) / 1000;
                atomic_store(&s->clock_offset_ms, redis_ms - (t0 + t1) / 2);
            }
            if (r)
                freeReplyObject(r);
            next_clock = now + CLOCK_EVERY_MS;
        }
        if (ping && now >= next_ping) {
            redisReply *r = redisCommand(ping, "GET %s", s->gen_key);
            int ok = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL);
            if (ok) {
                atomic_store(&s->last_gen, r->type == REDIS_REPLY_NIL ? 0 : (uint64_t)num(r));
                atomic_store(&s->gen_polled, 1);
            }
            if (r)
                freeReplyObject(r);
            if (!ok) {
                redisFree(ping);
                ping = NULL;
            }
            next_ping = now + PING_EVERY_MS;
        }
        if (ping && now >= next_beat && atomic_load(&s->joined)) {
            if (!beat(s, ping, 0)) {
                redisFree(ping);
                ping = NULL;
            }
            next_beat = now + BEAT_EVERY_MS;
        }
        int up = ping && sub;
        if (up)
            atomic_store(&s->last_ok_ms, clock_mono_ms());
        if (atomic_exchange(&s->healthy, up) != up) {
            if (up) /* connections made before the outage are dead even if they look fine */
                atomic_fetch_add(&s->epoch, 1);
            log_kv(up ? LOG_INFO : LOG_WARN, up ? "redis store reachable" : "redis store down",
                   LOG_END);
        }
        struct pollfd pfd = {sub ? sub->fd : -1, POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0 && sub) {
            void *rep = NULL;
            if (redisBufferRead(sub) != REDIS_OK) {
                redisFree(sub);
                sub = NULL;
                continue;
            }
            while (redisGetReplyFromReader(sub, &rep) == REDIS_OK && rep) {
                redisReply *r = rep;
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                    r->element[2]->type == REDIS_REPLY_STRING)
                    invalidate(s, r->element[2]->str, r->element[2]->len);
                freeReplyObject(r);
                rep = NULL;
            }
        }
    }
    if (sub)
        redisFree(sub);
    if (ping && atomic_load(&s->joined))
        beat(s, ping, 1); /* the others count one less at their next beat */
    if (ping)
        redisFree(ping);
    return NULL;
}

static void r_join(struct store *st)
{
    struct redis_store *s = R(st);
    uint8_t id[16];

    cr_random(id, sizeof(id));
    hex(id, sizeof(id), s->member);
    atomic_store(&s->joined, 1); /* (after the id: the service thread reads it then) */
}

static unsigned r_members(struct store *st)
{
    return atomic_load(&R(st)->members);
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
        if (sc->c)
            redisFree(sc->c);
        free(sc);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_setspecific(s->tls, NULL);
    pthread_key_delete(s->tls);
    tls_owner = NULL;
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->cb_mu);
    mem_free(s);
}

static const struct store_vt redis_vt = {
    .close = r_close,
    .get = r_get,
    .each = r_each,
    .submit = r_submit,
    .exec = r_exec,
    .generation = r_generation,
    .generation_recent = r_generation_recent,
    .stats = r_stats,
    .usage = r_usage,
    .loop_release = r_loop_release,
    .ready = r_ready,
    .on_invalidate = r_on_invalidate,
    .lease = r_lease,
    .pin = r_pin,
    .guard_begin = r_guard_begin,
    .guard_end = r_guard_end,
    .guard_cancel = r_guard_cancel,
    .guard_unlock = r_guard_unlock,
    .join = r_join,
    .members = r_members,
};

int store_open_redis(const char *url, const char *prefix, unsigned timeout_ms, struct store **out,
                     char *err, size_t cap)
{
    struct redis_store *s;

    if (tls_owner) {
        snprintf(err, cap, "one Redis store per process");
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
    if (redis_url_parse(url, "store", &s->url, err, cap)) {
        mem_free(s);
        return ERR_INVAL;
    }
    s->base.vt = &redis_vt;
    snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
    snprintf(s->gen_key, sizeof(s->gen_key), "%sgen", prefix);
    s->timeout_ms = timeout_ms ? timeout_ms : 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cb_mu, NULL);
    pthread_key_create(&s->tls, sconn_dtor);
    tls_owner = s;

    /* Reach Redis now (a wrong address is a start-up error, not a silent 503 loop) and
     * learn the script's digest. */
    redisContext *c = connect_sync(s, err, cap);
    redisReply *r = c ? redisCommand(c, "SCRIPT LOAD %s", script) : NULL;
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        if (c && !r)
            snprintf(err, cap, "redis: %s", c->errstr);
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        pthread_key_delete(s->tls);
        tls_owner = NULL;
        pthread_mutex_destroy(&s->mu);
        pthread_mutex_destroy(&s->cb_mu);
        mem_free(s);
        return ERR_BACKEND;
    }
    memcpy(s->sha, r->str, 40);
    freeReplyObject(r);
    redisFree(c);
    atomic_store(&s->healthy, 1);
    atomic_store(&s->members, 1);
    atomic_store(&s->last_ok_ms, clock_mono_ms());
    if (pthread_create(&s->service, NULL, service_main, s)) {
        snprintf(err, cap, "cannot start the redis store thread");
        r_close(&s->base);
        return ERR_BACKEND;
    }
    s->service_started = 1;
    *out = &s->base;
    return ERR_OK;
}
