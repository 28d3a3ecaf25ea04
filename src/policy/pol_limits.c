/* SPDX-License-Identifier: MIT */
/* The rate limits in force; see pol_limits.h. */
#include "policy/pol_limits.h"

#include <stdio.h>
#include <string.h>

#include "event/ev.h"
#include "metrics/met.h"
#include "store/store.h"

void pol_limits_init(struct pol_limits *l, struct pol_gcra *table, const struct pol_state *state,
                     const struct pol_limit_spec *specs, unsigned n,
                     const unsigned mode_div[POL_MODES], unsigned stuffing_div, struct store *st,
                     bool split)
{
    memset(l, 0, sizeof(*l));
    l->table = table;
    l->state = state;
    l->st = st;
    l->split = split;
    l->n = n < POL_LIMITS_MAX ? n : POL_LIMITS_MAX;
    for (unsigned i = 0; i < l->n; i++)
        l->exact[i] = specs[i].exact_when_shared;
    for (int stuffing = 0; stuffing < 2; stuffing++) {
        for (int m = 0; m < POL_MODES; m++) {
            for (unsigned i = 0; i < l->n; i++) {
                const struct pol_limit_spec *x = &specs[i];
                unsigned div = m > 0 && x->by_mode && mode_div[m] ? mode_div[m] : 1u;
                if (stuffing && x->by_stuffing && div < stuffing_div)
                    div = stuffing_div;
                unsigned cnt = x->count ? (x->count / div ? x->count / div : 1) : 0;
                unsigned burst = x->burst / div ? x->burst / div : 1;
                pol_gcra_rule_init(&l->rules[stuffing][m][i], cnt, x->per_s, burst);
            }
        }
    }
}

const struct pol_gcra_rule *pol_limits_rule(const struct pol_limits *l, unsigned rule)
{
    int st = atomic_load(&l->state->stuffing) ? 1 : 0;
    int m = atomic_load(&l->state->mode);
    return &l->rules[st][m >= 0 && m < POL_MODES ? m : 0][rule < l->n ? rule : 0];
}

void pol_limits_take(struct pol_limits *l, unsigned rule, struct str key, uint64_t now_ns,
                     struct pol_gcra_result *out)
{
    const struct pol_gcra_rule *ru = pol_limits_rule(l, rule);
    struct pol_gcra_rule part;
    bool exact = l->st && store_shared(l->st) && rule < l->n && l->exact[rule];
    unsigned share = l->split && l->st && !exact ? store_members(l->st) : 1;

    if (!ru->interval_ns) {
        memset(out, 0, sizeof(*out));
        out->allowed = true;
        return;
    }
    pol_gcra_rule_share(ru, share ? share : 1, &part); /* (1: the rule itself) */
    pol_gcra_take(l->table, rule, &part, key, now_ns, out);
}

/* A small direct-mapped table per thread; a collision only means an extra event. */
#define EV_SLOTS 1024
static _Thread_local struct {
    uint64_t h;
    int64_t since;
    uint32_t count;
} ev_slots[EV_SLOTS];

static const char *const names[POL_RL_COUNT] = {
    "login",        "register", "token",         "refresh",      "verify",          "login-user",
    "token-client", "revoke",   "revoke-client", "login-global", "register-global", "token-global"};

const char *pol_limits_name(unsigned rule)
{
    return rule < POL_RL_COUNT ? names[rule] : "?";
}

bool pol_limits_keyed_by_name(unsigned rule)
{
    return rule == POL_RL_LOGIN_USER || rule == POL_RL_TOKEN_CLIENT || rule == POL_RL_REVOKE_CLIENT;
}

_Static_assert(POL_RL_COUNT <= MET_RL_RULES, "the metrics count fewer rules than there are");

/* The rules as events and metrics name them: their setting without "ratelimit_". */
static const char *const key_names[POL_RL_COUNT] = {
    "login_ip",      "register_ip",  "token_ip",        "refresh_ip",
    "verify_ip",     "login_user",   "token_client",    "revoke_ip",
    "revoke_client", "login_global", "register_global", "token_global"};

const char *pol_limits_key_name(unsigned rule)
{
    return rule < POL_RL_COUNT ? key_names[rule] : "?";
}

void pol_limits_announce(unsigned rule, struct str key, uint32_t prev, const char *ip)
{
    struct ev e;

    ev_begin(&e, EV_RATELIMIT_EXCEEDED);
    ev_str(&e, "rule", pol_limits_key_name(rule));
    ev_int(&e, "interval_s", POL_LIMITS_EV_INTERVAL);
    ev_int(&e, "previous_interval_refusals", prev);
    if (pol_limits_keyed_by_name(rule)) {
        char k[130];
        snprintf(k, sizeof(k), "%.*s", (int)(key.len < 128 ? key.len : 128), key.p);
        ev_str(&e, rule != POL_RL_LOGIN_USER ? "client_id" : "username", k);
    } else if (ip) {
        ev_ip(&e, ip);
    }
    ev_publish(&e);
}

bool pol_limits_event_due(unsigned rule, struct str key, int64_t now, uint32_t *prev)
{
    uint64_t h = (uint64_t)rule * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < key.len; i++)
        h = (h ^ (uint8_t)key.p[i]) * 0x100000001b3ull;
    h |= 1;
    unsigned s = (unsigned)(h % EV_SLOTS);
    *prev = 0;
    if (ev_slots[s].h == h && now - ev_slots[s].since < POL_LIMITS_EV_INTERVAL) {
        ev_slots[s].count++;
        return false;
    }
    if (ev_slots[s].h == h)
        *prev = ev_slots[s].count;
    ev_slots[s].h = h;
    ev_slots[s].since = now;
    ev_slots[s].count = 1;
    return true;
}
