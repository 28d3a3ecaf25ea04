/* SPDX-License-Identifier: MIT */
/* Password login as one operation; see auth_login.h. */
#include "auth/auth_login.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/cr.h"
#include "event/ev.h"
#include "policy/pol_distinct.h"

/* ---- the shared guard's keys ------------------------------------------------------------ */

/* The hex key of user ('u'), ip ('i') or their pair ('p'): a keyed digest, so neither the
 * name nor the address is written to a shared store. */
static void guard_key(const uint8_t *secret, char tag, struct str user, struct str ip, char out[33])
{
    uint8_t msg[1 + 256 + 1 + 64], d[CR_HASH_LEN];
    size_t n = 0, ul = user.len < 256 ? user.len : 256, il = ip.len < 64 ? ip.len : 64;
    msg[n++] = (uint8_t)tag;
    if (tag != 'i') {
        memcpy(msg + n, user.p, ul);
        n += ul;
        msg[n++] = 0;
    }
    if (tag != 'u') {
        memcpy(msg + n, ip.p, il);
        n += il;
    }
    cr_keyed_hash(d, secret, msg, n);
    sodium_bin2hex(out, 33, d, 16);
}

/* The lockout rules and the login rate rules in force now, for `user` (as typed) from ip. */
static void guard_init(struct auth_login *q, struct str user, struct str ip)
{
    const struct auth_svc *svc = q->svc;
    struct store_guard *g = &q->_guard;
    static const char tag[3] = {'u', 'i', 'p'};
    static const char *const names[2] = {"login", "login-user"}; /* (the 429's rule names) */
    const struct pol_gcra_rule *rules[2] = {&q->rl_ip, &q->rl_user};

    memset(g, 0, sizeof(*g));
    for (int k = 0; k < 3; k++) {
        guard_key(svc->key, tag[k], user, ip, g->key[k]);
        g->lock[k].attempts = svc->lock_attempts[k];
        g->lock[k].base_ms = svc->lock_base_s * 1000;
        g->lock[k].max_ms = svc->lock_max_s * 1000;
        g->lock[k].window_ms = svc->lock_window_s * 1000;
    }
    for (int i = 0; i < 2; i++) {
        char k[sizeof(g->key[0])];
        memcpy(k, g->key[i == 0 ? 1 : 0], sizeof(k)); /* (not from g into g: restrict) */
        snprintf(g->rl_key[i], sizeof(g->rl_key[i]), "%s:%s", names[i], k);
        g->rl_interval_ms[i] = rules[i]->interval_ns / 1000000u;
        g->rl_tau_ms[i] = rules[i]->tolerance_ns / 1000000u;
        if (rules[i]->interval_ns && !g->rl_interval_ms[i])
            g->rl_interval_ms[i] = 1; /* faster than one per ms: as fast as we can tell */
    }
}

void auth_unlock_user(const struct auth_svc *svc, const char *name)
{
    char key[33], msg[16 + AUTH_USERNAME_MAX];
    if (svc->lockout) /* (the CLI has none) */
        pol_lockout_unlock_user(svc->lockout, str_c(name));
    if (!store_shared(svc->st))
        return;
    guard_key(svc->key, 'u', str_c(name), STR_NULL, key);
    snprintf(msg, sizeof(msg), "unlock:%s", name);
    store_guard_unlock(svc->st, key, msg);
}

/* The shared guard's lock bits are the in-process lockout's: one answer, merged. */
_Static_assert((int)STORE_GUARD_LOCKED_USER == (int)POL_LOCKED_USER &&
                   (int)STORE_GUARD_LOCKED_IP == (int)POL_LOCKED_IP &&
                   (int)STORE_GUARD_LOCKED_PAIR == (int)POL_LOCKED_PAIR,
               "store guard and lockout name the locked keys alike");

/* ---- on a worker -------------------------------------------------------------------------- */

/* Everything here may block (a Redis round trip, the hash). */
static void work(struct pool_job *pj)
{
    struct auth_login *q = (struct auth_login *)(void *)pj;
    struct store *st = q->svc->st;

    if (q->_lookup) {
        struct buf raw;
        buf_init(&raw, sizeof(q->_orig));
        int rc = auth_user_get_raw(st, q->_name, &q->_u, &raw);
        if (rc == ERR_OK) {
            memcpy(q->_orig, raw.p, raw.len);
            q->_orig_len = raw.len;
        }
        buf_fini(&raw);
        if (rc != ERR_OK && rc != ERR_NOTFOUND) {
            q->_store_rc = rc;
            return;
        }
        q->_found = rc == ERR_OK;
    }
    if (store_shared(st)) {
        int verdict;
        if (store_guard_begin(st, &q->_guard, clock_wall_ms(), &verdict)) {
            q->_store_rc = ERR_BACKEND;
            return;
        }
        if (verdict != STORE_GUARD_OK) {
            q->_refused = verdict;
            return;
        }
    }
    const struct auth_pw_params *pp = &q->svc->pp;
    pj->hashed = 1; /* (a user found or not: the same hash, the same time) */
    if (!q->_found) {
        auth_pw_dummy(pp, q->pw.p, q->pw.len);
    } else if (auth_pw_verify(q->_u.phc, q->pw.p, q->pw.len, pp, &q->_ok, &q->_rehash) == ERR_OK &&
               q->_ok && q->_rehash) {
        /* Outdated parameters or an imported hash: upgrade now, while we have the password. */
        if (auth_pw_hash(pp, q->pw.p, q->pw.len, q->_newphc, sizeof(q->_newphc)))
            q->_newphc[0] = '\0';
    }
    cr_wipe((void *)(uintptr_t)q->pw.p, q->pw.len);
    q->_shared_locked =
        store_guard_end(st, &q->_guard, q->_found && q->_ok && !q->_u.disabled, clock_wall_ms());
}

/* ---- back on the loop thread ------------------------------------------------------------ */

/* Why a login failed, for the audit trail and the log only: the client's answer never
 * tells. */
static const char *failure_reason(const struct auth_login *q)
{
    return !q->_found ? "unknown_user" : q->_u.disabled ? "disabled" : "password";
}

static void count(const struct auth_login *q, int outcome)
{
    atomic_fetch_add_explicit(&q->svc->logins[outcome], 1, memory_order_relaxed);
}

/* login.succeeded / login.failed, and account.locked when this failure locked a key. The
 * reason is for the audit trail only: the client's answer never tells. */
static void events(const struct auth_login *q, bool good, unsigned locked)
{
    struct ev e;
    if (ev_wanted(good ? EV_LOGIN_SUCCEEDED : EV_LOGIN_FAILED)) {
        ev_begin(&e, good ? EV_LOGIN_SUCCEEDED : EV_LOGIN_FAILED);
        if (q->_found)
            ev_user(&e, q->_u.id);
        ev_ip(&e, q->ip);
        ev_str(&e, "client_id", q->client_id);
        if (!good)
            ev_str(&e, "reason", failure_reason(q));
        ev_publish(&e);
    }
    if (locked && ev_wanted(EV_ACCOUNT_LOCKED)) {
        ev_begin(&e, EV_ACCOUNT_LOCKED);
        if (q->_found)
            ev_user(&e, q->_u.id);
        ev_ip(&e, q->ip);
        ev_bool(&e, "user_locked", locked & POL_LOCKED_USER);
        ev_bool(&e, "ip_locked", locked & POL_LOCKED_IP);
        ev_bool(&e, "pair_locked", locked & POL_LOCKED_PAIR);
        ev_publish(&e);
    }
}

/* One of the login's writes is durable (or failed): the last one answers. A failed rehash
 * is not fatal (the old hash still works); a failed family is. */
static void written(struct auth_login *q)
{
    if (--q->_pending > 0)
        return;
    buf_fini(&q->_rec);
    q->done(q, q->_failed ? ERR_BACKEND : ERR_OK);
}

static void on_family(struct tok_family *f, int rc)
{
    struct auth_login *q = CONTAINER_OF(f, struct auth_login, _fam);
    if (rc)
        q->_failed = 1;
    else
        memcpy(q->refresh_token, f->token, sizeof(q->refresh_token));
    written(q);
}

static void on_user(struct store_op *op)
{
    written(CONTAINER_OF(op, struct auth_login, _op_user));
}

/* Queues the upgraded hash, only over the record whose password was checked: an
 * administrator's change since then (a new password, a disable) wins, and the upgrade
 * waits for the next login. */
static void queue_rehash(struct auth_login *q, int64_t now)
{
    struct store_op *op = &q->_op_user;
    snprintf(q->_u.phc, sizeof(q->_u.phc), "%s", q->_newphc);
    q->_u.password_changed_at = now;
    if (auth_user_op(op, STORE_OP_REPLACE, &q->_u, &q->_rec, on_user) == ERR_OK) {
        op->expect = q->_orig;
        op->expect_len = q->_orig_len;
        if (store_submit(q->svc->st, q->lp, op) == ERR_AGAIN)
            q->_pending++;
    }
}

/* Success: the refresh family and the rehash go into the same group commit; the answer
 * waits for both. */
static void succeed(struct auth_login *q, int64_t now)
{
    q->outcome = AUTH_LOGIN_OK;
    snprintf(q->sub, sizeof(q->sub), "%s", q->_u.id);
    snprintf(q->name, sizeof(q->name), "%s", q->_u.name);
    q->gen = q->_u.sessions;
    q->_pending = 1; /* held until both are queued */
    buf_init(&q->_rec, 8192);
    if (q->_newphc[0])
        queue_rehash(q, now);
    if (q->refresh) {
        q->_fam.svc = q->svc->tok;
        q->_fam.lp = q->lp;
        q->_fam.gen = q->_u.sessions; /* read with the password that was checked */
        q->_fam.now = now;
        q->_fam.done = on_family;
        snprintf(q->_fam.sub, sizeof(q->_fam.sub), "%s", q->_u.id);
        snprintf(q->_fam.client_id, sizeof(q->_fam.client_id), "%s", q->client_id);
        snprintf(q->_fam.scope, sizeof(q->_fam.scope), "%s", q->scope);
        if (tok_family_start(&q->_fam) == ERR_AGAIN)
            q->_pending++;
        else
            q->_failed = 1;
    }
    written(q);
}

/* The shared guard refused before the hash: not an attempt here. */
static void refused(struct auth_login *q)
{
    count(q, AUTH_LOGINS_REFUSED);
    q->retry_ms = (uint64_t)q->_guard.retry_ms;
    if (q->_refused == STORE_GUARD_LIMITED) {
        q->outcome = AUTH_LOGIN_LIMITED;
    } else if (q->_refused == STORE_GUARD_BUSY) {
        q->outcome = AUTH_LOGIN_BUSY;
    } else {
        log_kv(LOG_INFO, "login refused by the shared lockout", "client_id", q->client_id, "ip",
               q->ip, LOG_END);
        q->outcome = AUTH_LOGIN_FAILED;
    }
}

static void verified(struct pool_job *pj)
{
    struct auth_login *q = (struct auth_login *)(void *)pj;
    const struct auth_svc *svc = q->svc;
    int64_t now = clock_wall_s();

    if (pj->cancelled || q->_store_rc || q->_refused) {
        pol_lockout_cancel(svc->lockout, &q->_att, now); /* not an attempt */
        if (!pj->cancelled && !q->_store_rc)
            refused(q);
        q->done(q, pj->cancelled ? ERR_AGAIN : q->_store_rc ? ERR_BACKEND : ERR_OK);
        return;
    }
    bool good = q->_found && q->_ok && !q->_u.disabled;
    unsigned locked = pol_lockout_end(svc->lockout, &q->_att, good, now) | q->_shared_locked;
    count(q, good ? AUTH_LOGINS_OK : AUTH_LOGINS_FAILED);
    events(q, good, locked);
    if (good) {
        succeed(q, now);
        return;
    }
    if (svc->failed_ips)
        pol_distinct_add(svc->failed_ips, str_c(q->ip_key));
    log_kv(LOG_INFO, "login failed", "reason", failure_reason(q), "user_id",
           q->_found ? q->_u.id : "", "client_id", q->client_id, "ip", q->ip, LOG_END);
    q->outcome = AUTH_LOGIN_FAILED;
    q->done(q, ERR_OK);
}

struct str auth_login_key(struct str user, char name[AUTH_USERNAME_MAX + 1])
{
    if (auth_username_normalize(user, name) == ERR_OK)
        return str_c(name);
    name[0] = '\0';
    return (struct str){user.p, user.len < 128 ? user.len : 128};
}

int auth_login(struct auth_login *q)
{
    const struct auth_svc *svc = q->svc;
    int64_t retry;

    q->outcome = AUTH_LOGIN_FAILED;
    q->sub[0] = q->refresh_token[0] = '\0';
    q->retry_ms = 0;
    /* Brute-force protection first: a locked key is answered like any failed login, at once,
     * without spending a hash on it. Invalid names count under their raw bytes. */
    struct str key = auth_login_key(q->user, q->_name);
    int verdict = pol_lockout_begin(svc->lockout, key, str_c(q->ip_key), q->now, &q->_att, &retry);
    if (verdict != POL_ATTEMPT_OK) {
        count(q, AUTH_LOGINS_REFUSED);
        if (verdict == POL_ATTEMPT_BUSY) {
            q->outcome = AUTH_LOGIN_BUSY;
            q->retry_ms = (uint64_t)retry * 1000;
        } else if (ev_wanted(EV_LOGIN_FAILED)) {
            struct ev e;
            ev_begin(&e, EV_LOGIN_FAILED);
            ev_str(&e, "client_id", q->client_id);
            ev_ip(&e, q->ip);
            ev_str(&e, "reason", "locked_or_delayed");
            ev_publish(&e);
        }
        return ERR_OK;
    }
    q->_lookup = q->pw.len <= AUTH_PASSWORD_MAX && q->_name[0]; /* read on the worker */
    if (store_shared(svc->st))
        guard_init(q, key, str_c(q->ip_key));
    if (q->pw.len > AUTH_PASSWORD_MAX)
        q->pw.len = AUTH_PASSWORD_MAX; /* hash a bounded prefix: same time, same failure */
    q->_pj.on_work = work;
    q->_pj.on_done = verified;
    if (auth_svc_submit(svc, q->lp, &q->_pj, &q->retry_ms) == ERR_OK)
        return ERR_AGAIN;
    pol_lockout_cancel(svc->lockout, &q->_att, q->now); /* refused: not an attempt */
    return ERR_LIMIT;
}
