/* SPDX-License-Identifier: MIT */
/*
 * Brute-force protection for password logins: failures are counted per username, per
 * client IP and per (username, IP); at a rule's limit the key is locked for a duration
 * that doubles with each lock (capped). A success clears the username and pair counters
 * (never the IP's: one good account must not reset an attacker's address). Before the lock
 * a rule may impose a progressive delay between attempts.
 *
 * Race-free: an attempt is *reserved* before its password is hashed (pol_lockout_begin),
 * counting against the limit while in flight, and settled after (pol_lockout_end). So N
 * parallel wrong passwords can never exceed the allowed attempts (the race a published
 * advisory in another auth server described).
 *
 * The table is fixed-size (memory is bounded under a flood of distinct keys) and striped by
 * mutex (loop threads share it: a user's attempts may arrive on any thread). Keys are
 * stored as keyed 64-bit hashes, so they cannot be steered into one stripe or collided.
 * When a probe window is full, the least valuable entry (no failures, nothing in flight,
 * oldest) is replaced; locked entries are kept while any other can go. Time is passed in.
 * Any thread.
 */
#ifndef POLICY_POL_LOCKOUT_H
#define POLICY_POL_LOCKOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

struct pol_lockout;

struct pol_lockout_rule {
    unsigned attempts; /* failures (plus attempts in flight) allowed before a lock; 0 = off */
    int64_t base_s;    /* first lock */
    int64_t max_s;     /* cap of the doubling */
    int64_t window_s;  /* failures older than this are forgotten */
    /* Progressive delay (0 = off): from the delay_after-th failure on, the key waits
     * delay_s before its next attempt, doubling with each further failure (at most base_s),
     * until the lock. Refused like a lock. */
    unsigned delay_after;
    int64_t delay_s;
};

struct pol_lockout_cfg {
    struct pol_lockout_rule user, ip, pair;
    unsigned entries; /* table size, all keys together */
};

/* One login attempt's reservations; filled by begin, consumed by end. */
struct pol_attempt {
    uint64_t keys[3];
    int n;
};

struct pol_lockout *pol_lockout_new(const struct pol_lockout_cfg *cfg);
void pol_lockout_free(struct pol_lockout *l);

/* What pol_lockout_begin decided. */
enum pol_verdict {
    POL_ATTEMPT_OK,     /* reserved: pol_lockout_end (or _cancel) must follow exactly once */
    POL_ATTEMPT_LOCKED, /* a key is locked or delayed, or its recorded failures reached the
                         * limit: answered like a wrong password */
    POL_ATTEMPT_BUSY,   /* no failure says no, but attempts in flight fill a key's limit (or
                         * its table window): the password was never checked, so it must not
                         * be called wrong; answered "try again" (429 + Retry-After) */
};

/* Reserves an attempt for `user` from `ip` at `now`: a POL_ATTEMPT_* (nothing is reserved
 * unless OK). *retry_s gets the seconds until a lock or delay ends (LOCKED), or 1 (BUSY). */
int pol_lockout_begin(struct pol_lockout *l, struct str user, struct str ip, int64_t now,
                      struct pol_attempt *a, int64_t *retry_s);
/* Which keys a failure has just locked (pol_lockout_end's answer). */
enum { POL_LOCKED_USER = 1, POL_LOCKED_IP = 2, POL_LOCKED_PAIR = 4 };

/* Settles a reserved attempt: success clears the user and pair counters, failure counts.
 * Returns the POL_LOCKED_* keys this failure locked (0 mostly). */
unsigned pol_lockout_end(struct pol_lockout *l, struct pol_attempt *a, bool success, int64_t now);
/* Releases a reserved attempt without counting it (the hash never ran: queue full,
 * shutdown). */
void pol_lockout_cancel(struct pol_lockout *l, struct pol_attempt *a, int64_t now);
/* Clears a username's locks and counters, its own and those of its (username, IP) pairs
 * (admin unlock, password reset). IP locks stay. */
void pol_lockout_unlock_user(struct pol_lockout *l, struct str user);

/* Locks currently in force (for metrics). */
unsigned pol_lockout_locked(struct pol_lockout *l, int64_t now);

#endif
