/* SPDX-License-Identifier: MIT */
/* Between the dispatcher (ev.c) and the webhook sink (ev_webhook.c). Dispatcher thread. */
#ifndef EVENT_EV_INT_H
#define EVENT_EV_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "event/ev.h"

struct cfg;
struct ev_hooks;

enum { EV_FIELD_PLAIN, EV_FIELD_HASHED, EV_FIELD_OFF };

/* Sink counters (written by the dispatcher thread, read by /metrics), in events. */
enum {
    EV_M_HOOK_DELIVERED,
    EV_M_HOOK_RETRIED,
    EV_M_HOOK_DEAD,
    EV_M_STREAM_ADDED,
    EV_M_STREAM_DROPPED,
    EV_M_COUNT
};
void ev_count(int which, uint64_t n);

/* "login.failed,account.locked" (or "*" / "") -> bit mask. ERR_INVAL on an unknown name. */
int ev_mask_parse(const char *list, uint32_t *mask);

/* The webhook endpoints of the configuration; *out NULL when there are none. */
int ev_hooks_new(uv_loop_t *loop, const struct cfg *c, struct ev_hooks **out, char *err,
                 size_t errcap);
uint32_t ev_hooks_mask(const struct ev_hooks *h);
/* Adds one event to the open batch of every endpoint that wants its type (copies it). */
void ev_hooks_deliver(struct ev_hooks *h, enum ev_type t, const char *json, size_t len);
/* Closes the open batches into deliveries and starts what may start (end of a cycle). */
void ev_hooks_flush(struct ev_hooks *h);
/* Stops retrying: what is queued or waiting for a retry goes to the dead-letter file,
 * deliveries in flight get up to `ms`; then `done` is called. */
void ev_hooks_stop(struct ev_hooks *h, unsigned ms, void (*done)(void *), void *arg);
/* After the loop ended. */
void ev_hooks_free(struct ev_hooks *h);

struct ev_redis;

/* The Redis Streams sink of the configuration (events_redis); *out NULL when none. */
int ev_redis_new(uv_loop_t *loop, const struct cfg *c, struct ev_redis **out, char *err,
                 size_t errcap);
/* XADDs one event (copied; a bounded backlog while disconnected). */
void ev_redis_deliver(struct ev_redis *r, const char *json, size_t len);
/* Waits up to min(ms, 1 s) for answers to what was sent, then disconnects; `done` after. */
void ev_redis_stop(struct ev_redis *r, unsigned ms, void (*done)(void *), void *arg);
/* After the loop ended: the counts, and the memory. */
void ev_redis_free(struct ev_redis *r, uint64_t *added, uint64_t *dropped);

#endif
