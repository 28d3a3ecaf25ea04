/* SPDX-License-Identifier: MIT */
/*
 * The live console's second (GET /admin/stream): what one instance did in the last second
 * and what its policy decided, as one JSON object, built by the main thread's tick from the
 * counters it read at one instant. Rates are the counters' differences over the tick;
 * the first frame after start counts from zero.
 *
 *   {"instance":ID,"t":MS,"mode":..,"override":..,"floor":..,"stuffing":bool,
 *    "change":{"at":S,"from":..,"to":..,"why":".."} (or null: no change since start),
 *    "recommended":N,"serving":N,"workers":N,"queued":N,"hash_deadline_ms":N,
 *    "logins":{"ok":N,"failed":N,"locked":N,"shed":N},"rate_limited":{RULE:N,..},
 *    "events":[{"at":S,"duration":S,"expect":X},..],"sample":SAMPLE}
 *
 * SAMPLE is pol_control_json's (hash wait, demand, capacity, per-route rate and p99). The
 * console shows a fleet by putting each instance's frame in the shared store (store.h's
 * console calls) and reading the others'. One owner thread.
 */
#ifndef POLICY_POL_CONSOLE_H
#define POLICY_POL_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "policy/pol_control.h"
#include "policy/pol_limits.h"

/* What the tick read, cumulative since start. */
struct pol_console_in {
    const char *instance; /* host:pid */
    int64_t now_ms;
    const struct pol_control *pc;
    const struct pol_tick *t;
    enum pol_mode mode, override, floor;
    const char *sample; /* JSON, or NULL */
    uint64_t ok, failed, locked, shed;
    uint64_t rate_limited[POL_RL_COUNT];
    unsigned workers, queued, serving;
    unsigned hash_deadline_ms;
};

struct pol_console {
    uint64_t ok, failed, locked, shed, rate_limited[POL_RL_COUNT];
};

/* The frame for in onto out (differences against the last call's counters, kept in c).
 * ERR_OK or ERR_LIMIT (out's cap). */
int pol_console_frame(struct pol_console *c, const struct pol_console_in *in, struct buf *out);

/* What the console's watchers read: the last document, published once a second while
 * someone watches:
 *   {"self":ID,"t":MS,"fleet":[FRAME,..]}
 * with every instance's frame the shared store holds (an instance's frame older than a few
 * seconds: it stopped; the page says so), or this instance's alone on LMDB. */
struct pol_console_pub {
    pthread_mutex_t mu;
    struct buf doc; /* under mu */
    uint64_t seq;   /* under mu: bumped by each publication */
    _Atomic unsigned watchers;
};

void pol_console_pub_init(struct pol_console_pub *p);
void pol_console_pub_fini(struct pol_console_pub *p);
/* The tick's frame filed in the shared store (every second: other instances' consoles read
 * it), and, while someone watches this instance, the document published. Blocking: main
 * thread. */
void pol_console_publish(struct pol_console_pub *p, struct store *st, const char *instance,
                         int64_t now_ms, const struct buf *frame);
/* The document into out if it is newer than *seq (which moves on): true, else false. */
bool pol_console_read(struct pol_console_pub *p, uint64_t *seq, struct buf *out);

#endif
