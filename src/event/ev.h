/* SPDX-License-Identifier: MIT */
/*
 * Auth events: what happened, published without ever blocking a request.
 *
 * A producer (any thread) builds one event as a JSON object on its stack (ev_begin,
 * ev_str/ev_int/ev_num/ev_bool, ev_publish) and copies it into its own thread's bounded
 * ring (single producer, single consumer: no lock, no syscall). The dispatcher thread
 * drains every ring a few dozen times a second and hands each event to the sinks: the
 * audit log (JSON lines), signed webhooks (ev_webhook.c) and a Redis stream, if configured.
 *
 * A full ring drops by priority: low-volume-matters events (token.issued, token.refreshed,
 * login.succeeded) are dropped once the ring is three quarters full, ordinary events when
 * it is full; security events (token.reuse_detected, account.locked, key.rotated) are never
 * dropped silently: they go to a bounded overflow list, and if even that is full they are
 * written to the process log at once. Every drop is counted (ev_stats, /metrics).
 *
 * Event JSON: {"id":"<16 chars>","type":"login.failed","time":"2026-11-28T00:20:00.123Z",
 * "data":{...}} (schema: docs/events.md). Events carry no secrets and no passwords; user ids
 * and client addresses are included, or pseudonymised with a keyed hash, or left out, as
 * configured.
 */
#ifndef EVENT_EV_H
#define EVENT_EV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;

/* clang-format off */
#define EV_TYPES(X) \
    X(USER_REGISTERED,      "user.registered",       EV_NORMAL)   \
    X(LOGIN_SUCCEEDED,      "login.succeeded",       EV_LOW)      \
    X(LOGIN_FAILED,         "login.failed",          EV_NORMAL)   \
    X(ACCOUNT_LOCKED,       "account.locked",        EV_SECURITY) \
    X(ACCOUNT_UNLOCKED,     "account.unlocked",      EV_NORMAL)   \
    X(TOKEN_ISSUED,         "token.issued",          EV_LOW)      \
    X(TOKEN_REFRESHED,      "token.refreshed",       EV_LOW)      \
    X(TOKEN_REUSE_DETECTED, "token.reuse_detected",  EV_SECURITY) \
    X(TOKEN_REVOKED,        "token.revoked",         EV_NORMAL)   \
    X(CLIENT_CREATED,       "client.created",        EV_NORMAL)   \
    X(KEY_ROTATED,          "key.rotated",           EV_SECURITY) \
    X(POLICY_MODE_CHANGED,  "policy.mode_changed",   EV_NORMAL)   \
    X(SCALE_RECOMMENDATION, "scale.recommendation",  EV_NORMAL)   \
    X(RATELIMIT_EXCEEDED,   "ratelimit.exceeded",    EV_NORMAL)   \
    X(USER_SESSIONS_REVOKED, "user.sessions_revoked", EV_SECURITY)
/* clang-format on */

enum ev_priority { EV_LOW, EV_NORMAL, EV_SECURITY };

enum ev_type {
#define EV_X(id, name, prio) EV_##id,
    EV_TYPES(EV_X)
#undef EV_X
        EV_NTYPES
};

#define EV_MAX_BYTES 640 /* one event's JSON; longer fields are cut, never overflow */

struct ev {
    enum ev_type type;
    size_t len;
    int overflow;
    char json[EV_MAX_BYTES];
};

struct ev_stats {
    uint64_t published[EV_NTYPES];
    uint64_t dropped[EV_NTYPES];
    uint64_t overflowed;  /* security events that went to the overflow list */
    uint64_t sampled_out; /* token.issued not published because of the sampling rate */
    /* sinks, counted in events */
    uint64_t hook_delivered, hook_retried, hook_dead; /* webhooks (retried: attempts) */
    uint64_t stream_added, stream_dropped;            /* Redis stream */
};

const char *ev_type_name(enum ev_type t);
/* "login.failed" -> EV_LOGIN_FAILED; -1 if unknown. */
int ev_type_parse(const char *name);

/* Starts the dispatcher and its sinks from the configuration. Does nothing (and every
 * ev_begin returns false) when no sink is configured. Main thread, before loops start.
 * ERR_INVAL with a message in err on a bad sink configuration. */
int ev_start(const struct cfg *c, const uint8_t *pseudonym_key, char *err, size_t errcap);
/* Names this instance in every event's `source` (at most 48 characters of [A-Za-z0-9._:-],
 * checked by the configuration). Main thread, before any thread produces events. */
void ev_set_source(const char *source);
/* Publishes what is queued, waits up to `ms` for deliveries in flight, stops the
 * dispatcher. Main thread, after the loops stopped. */
void ev_stop(unsigned ms);
/* Asks the dispatcher to reopen the audit log (SIGHUP). Any thread. */
void ev_reopen(void);
void ev_get_stats(struct ev_stats *out);
/* The dispatcher's families for /metrics (events by type and outcome, webhooks, the
 * stream), in the Prometheus text format. */
struct buf;
int ev_metrics_text(struct buf *b);

/* Whether events of type t are wanted now (a sink takes them, sampling says yes). A
 * producer skips building the event otherwise. */
bool ev_wanted(enum ev_type t);
/* Begins an event of type t in e (no allocation). */
void ev_begin(struct ev *e, enum ev_type t);
/* Adds a field to "data"; values are JSON-escaped and cut to fit. */
void ev_str(struct ev *e, const char *key, const char *val);
void ev_int(struct ev *e, const char *key, long long val);
void ev_num(struct ev *e, const char *key, double val);
void ev_bool(struct ev *e, const char *key, bool val);
/* Adds "user_id" / "ip" as configured: as is, pseudonymised (keyed BLAKE2b, 16 chars), or
 * not at all. */
void ev_user(struct ev *e, const char *user_id);
void ev_ip(struct ev *e, const char *ip);
/* Queues the event for the sinks (after ev_finish). Never blocks, never fails the caller. */
void ev_publish(struct ev *e);
/* Closes the JSON (and marks a cut one "truncated"): e->json is then one complete object.
 * ev_publish does it; exposed for tests and the fuzzer. Once per event. */
void ev_finish(struct ev *e);

#endif
