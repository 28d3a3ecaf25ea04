/* SPDX-License-Identifier: MIT */
/*
 * The rate limits in force: each rule (a route class and a key: an address, a username, a
 * client, everyone) has its rate and burst for every policy mode and for credential
 * stuffing, computed once at start; the one that applies is picked by the state the
 * adaptive policy published (pol_control.h). With N instances behind one balancer each
 * allows its share. Refusals are announced at most once per rule and key per interval on
 * each thread (pol_limits_event_due), with how many the previous interval saw. Any thread.
 */
#ifndef POLICY_POL_LIMITS_H
#define POLICY_POL_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "policy/pol_control.h"
#include "policy/pol_gcra.h"

#define POL_LIMITS_MAX         16
#define POL_LIMITS_EV_INTERVAL 10 /* seconds between two events of one rule and key */

/* Rate-limit rules, by route class and key: the first five per client IP. */
enum {
    POL_RL_LOGIN,
    POL_RL_REGISTER,
    POL_RL_TOKEN,
    POL_RL_REFRESH,
    POL_RL_VERIFY,
    POL_RL_LOGIN_USER,    /* key: normalised username */
    POL_RL_TOKEN_CLIENT,  /* key: client_id */
    POL_RL_REVOKE,        /* revocation and logout, per IP */
    POL_RL_REVOKE_CLIENT, /* revocation, key: client_id */
    POL_RL_LOGIN_GLOBAL,  /* one key for all */
    POL_RL_REGISTER_GLOBAL,
    POL_RL_TOKEN_GLOBAL,
    POL_RL_COUNT
};

/* A rule's name in the RateLimit-Policy header ("login", "token-client", ...). */
const char *pol_limits_name(unsigned rule);
/* Rule's name in events and metrics: its setting without "ratelimit_" (login_ip, ...). */
const char *pol_limits_key_name(unsigned rule);

/* A rule: count per per_s seconds with bursts of burst (count 0: off). Tightened in the
 * higher modes (divided by the mode's divisor) and during credential stuffing (at least the
 * stuffing divisor) when it says so. */
struct pol_limit_spec {
    unsigned count, per_s, burst;
    bool by_mode, by_stuffing;
    bool exact_when_shared; /* a shared store's login guard counts it exactly: not split */
};

struct pol_limits {
    struct pol_gcra *table;        /* the counters (thread-safe; not owned) */
    const struct pol_state *state; /* the mode and stuffing in force */
    struct store *st;              /* with split: the instances serving on it share the rule */
    bool split;
    unsigned n;
    bool exact[POL_LIMITS_MAX];
    struct pol_gcra_rule rules[2][POL_MODES][POL_LIMITS_MAX]; /* [stuffing][mode][rule] */
};

struct store;
/* With split, N instances serving on a shared store st each allow 1/N of a rule (the
 * balancer spreads the load), but for the rules the shared guard counts exactly. */
void pol_limits_init(struct pol_limits *l, struct pol_gcra *table, const struct pol_state *state,
                     const struct pol_limit_spec *specs, unsigned n,
                     const unsigned mode_div[POL_MODES], unsigned stuffing_div, struct store *st,
                     bool split);
/* The rule in force now. */
const struct pol_gcra_rule *pol_limits_rule(const struct pol_limits *l, unsigned rule);
/* One request of `key` under `rule` (this instance's share of it). out->allowed says; a
 * rule that is off allows everything. */
void pol_limits_take(struct pol_limits *l, unsigned rule, struct str key, uint64_t now_ns,
                     struct pol_gcra_result *out);
/* A refusal of (rule, key) at now: true if an event is due (the first of its interval),
 * with *prev the refusals of the previous interval. */
bool pol_limits_event_due(unsigned rule, struct str key, int64_t now, uint32_t *prev);
/* ratelimit.exceeded for a refusal whose event is due (pol_limits_event_due), with the previous
 * interval's refusals: the key as the username or client_id for the rules keyed by them, else the
 * address `ip`. */
void pol_limits_announce(unsigned rule, struct str key, uint32_t prev, const char *ip);
/* Whether `rule` is keyed by a username or a client_id (else its events name the
 * address). */
bool pol_limits_keyed_by_name(unsigned rule);

#endif
