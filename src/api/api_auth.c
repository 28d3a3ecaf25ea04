/* SPDX-License-Identifier: MIT */
/*
 * Users and sessions: registration, password login (JSON API and the OAuth password grant),
 * refresh-token rotation (JSON API and the refresh_token grant), logout.
 *
 * Password work runs on the worker pool (api_submit: a full queue is 503 + Retry-After at
 * once). A failed login, an unknown user and a disabled user get the same answer after the
 * same work: an unknown user's password is hashed against a dummy with the current
 * parameters. Tokens are answered only after the refresh family is durable in the store.
 * Every job lives in the request's arena; the request stays open until the job answers, so
 * the arena outlives every callback that refers to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_password.h"
#include "auth/auth_user.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/ev.h"
#include "http/http.h"
#include "loop/pool.h"
#include "policy/pol_lockout.h"
#include "store/store.h"
#include "store/store_rec.h"
#include "token/tok_cache.h"
#include "token/tok_refresh.h"

static struct auth_pw_params params(const struct api_ctx *ctx)
{
    const struct cfg *c = ctx->sh->cfg;
    return (struct auth_pw_params){c->argon2_memory_kib, c->argon2_passes, c->argon2_lanes};
}

/* The body held a password; the copy that matters is wiped after hashing, this one now. */
static void wipe_body(struct http_request *r)
{
    if (r->body.len)
        cr_wipe((void *)(uintptr_t)r->body.p, r->body.len);
}

/* ---- registration ---------------------------------------------------------------------- */

struct reg_job {
    struct pool_job pj; /* first: the pool hands back this pointer */
    struct store_op op;
    struct http_request *r;
    struct store *st;
    struct auth_pw_params pp;
    struct str pw;
    int rc;
    int taken; /* the name was taken already: no hash spent, 409 */
    struct auth_user user;
    struct buf rec;
};

/* On a worker: the name is checked first (a blocking store read, never on a loop thread),
 * so a taken name costs no hashing; the insert re-checks atomically. */
static void reg_work(struct pool_job *pj)
{
    struct reg_job *j = (struct reg_job *)(void *)pj;
    struct auth_user existing;
    j->rc = auth_user_get(j->st, j->user.name, &existing);
    if (j->rc == ERR_OK)
        j->taken = 1;
    else if (j->rc == ERR_NOTFOUND)
        j->rc = auth_pw_hash(&j->pp, j->pw.p, j->pw.len, j->user.phc, sizeof(j->user.phc));
    cr_wipe((void *)(uintptr_t)j->pw.p, j->pw.len);
}

static void reg_stored(struct store_op *op)
{
    struct reg_job *j = CONTAINER_OF(op, struct reg_job, op);
    struct http_request *r = j->r;
    char body[256];

    buf_fini(&j->rec);
    if (op->status == ERR_CONFLICT) {
        http_respond_error(r, 409, "username_taken", "that username is taken");
        return;
    }
    if (op->status) {
        api__fail(r, ERR_BACKEND, NULL);
        return;
    }
    log_kv(LOG_INFO, "user registered", "user_id", j->user.id, LOG_END);
    if (ev_wanted(EV_USER_REGISTERED)) {
        struct ev e;
        ev_begin(&e, EV_USER_REGISTERED);
        ev_user(&e, j->user.id);
        api__event_ip(&e, r);
        ev_publish(&e);
    }
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"username\":\"%s\"}", j->user.id, j->user.name);
    http_respond_json(r, 201, body);
}

static void reg_hashed(struct pool_job *pj)
{
    struct reg_job *j = (struct reg_job *)(void *)pj;
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;

    if (!pj->cancelled && j->taken) {
        http_respond_error(r, 409, "username_taken", "that username is taken");
        return;
    }
    if (pj->cancelled || j->rc) {
        api__fail(r, pj->cancelled ? ERR_AGAIN : ERR_NOMEM, NULL);
        return;
    }
    buf_init(&j->rec, 8192);
    memset(&j->op, 0, sizeof(j->op));
    j->op.kind = STORE_OP_PUT_NEW;
    j->op.on_done = reg_stored;
    j->op.table = STORE_T_USERS;
    j->op.key_len = strlen(j->user.name);
    memcpy(j->op.key, j->user.name, j->op.key_len);
    if (auth_user_encode(&j->user, &j->rec) ||
        (j->op.value = j->rec.p, j->op.value_len = j->rec.len,
         store_submit(ctx->sh->store, ctx->lp, &j->op) != ERR_AGAIN)) {
        buf_fini(&j->rec);
        api__fail(r, ERR_LIMIT, NULL);
    }
}

int api_register(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;
    char name[AUTH_USERNAME_MAX + 1];
    const char *why;

    if (api__rate_limited(r, API_RL_REGISTER_GLOBAL) || api__rate_limited(r, API_RL_REGISTER) ||
        api__admission_refused(r) || api__inflight_full(r, API_IF_REGISTER))
        return HTTP_DONE;
    if (atomic_load(&ctx->sh->mode) >= ctx->sh->registration_pause) {
        /* the spike's capacity goes to logins (policy_registration_pause) */
        api__fail_retry(r, ERR_AGAIN, "registration is paused", 30);
        return HTTP_DONE;
    }
    if (!ctx->sh->cfg->registration) {
        http_respond_error(r, 403, "registration_closed", "registration is closed");
        return HTTP_DONE;
    }
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password");
    json_decref(o);
    wipe_body(r);
    if (!user.p || !pw.p) {
        http_respond_error(r, 400, "invalid_request", "username and password are required");
        return HTTP_DONE;
    }
    if (auth_username_normalize(user, name)) {
        http_respond_error(r, 400, "invalid_username",
                           "usernames are 1-64 of a-z 0-9 . _ - @ + (case-insensitive)");
        return HTTP_DONE;
    }
    if (auth_password_policy(pw, ctx->sh->denylist, &why)) {
        http_respond_error(r, 400, "invalid_password", why);
        return HTTP_DONE;
    }
    struct reg_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->st = ctx->sh->store;
    j->pp = params(ctx);
    j->pw = pw;
    auth_user_init(&j->user, name, "", clock_wall_s());
    j->pj.on_work = reg_work;
    j->pj.on_done = reg_hashed;
    return api_submit(r, &j->pj) ? HTTP_DONE : HTTP_ASYNC;
}

/* ---- password login -------------------------------------------------------------------- */

struct login_job {
    struct pool_job pj; /* first */
    struct store_op op_rt;
    struct store_op op_user;
    struct http_request *r;
    int oauth; /* answer as the token endpoint (400 invalid_grant) or the JSON API (401) */
    int pending;
    int failed;
    struct auth_pw_params pp;
    struct str pw;
    bool found, ok, rehash;
    struct auth_user user;
    char orig[AUTH_PHC_MAX + 512]; /* the user record as read: the rehash replaces only it */
    size_t orig_len;
    char newphc[AUTH_PHC_MAX];
    struct buf rec;
    struct tok_claims cl;
    int64_t access_ttl;
    char refresh[TOK_REFRESH_LEN + 1];
    struct pol_attempt att; /* the brute-force reservation this attempt holds */
    /* done on the worker: the user's record and, on a shared store, the shared guard */
    struct store *st;
    char name[AUTH_USERNAME_MAX + 1];
    bool lookup;
    int store_rc;           /* the store failed: 503 */
    int refused;            /* STORE_GUARD_LOCKED or _LIMITED by the shared guard */
    unsigned shared_locked; /* POL_LOCKED_* this failure locked in the shared guard */
    struct store_guard guard;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* On a worker: everything here may block (a Redis round trip, the hash). */
static void login_work(struct pool_job *pj)
{
    struct login_job *j = (struct login_job *)(void *)pj;

    if (j->lookup) {
        struct buf raw;
        buf_init(&raw, sizeof(j->orig));
        int rc = auth_user_get_raw(j->st, j->name, &j->user, &raw);
        if (rc == ERR_OK) {
            memcpy(j->orig, raw.p, raw.len);
            j->orig_len = raw.len;
        }
        buf_fini(&raw);
        if (rc != ERR_OK && rc != ERR_NOTFOUND) {
            j->store_rc = rc;
            return;
        }
        j->found = rc == ERR_OK;
    }
    if (store_shared(j->st)) {
        int verdict;
        if (store_guard_begin(j->st, &j->guard, wall_ms(), &verdict)) {
            j->store_rc = ERR_BACKEND;
            return;
        }
        if (verdict != STORE_GUARD_OK) {
            j->refused = verdict;
            return;
        }
    }
    if (!j->found) {
        auth_pw_dummy(&j->pp, j->pw.p, j->pw.len);
    } else if (auth_pw_verify(j->user.phc, j->pw.p, j->pw.len, &j->pp, &j->ok, &j->rehash) ==
                   ERR_OK &&
               j->ok && j->rehash) {
        /* Outdated parameters or an imported hash: upgrade now, while we have the password. */
        if (auth_pw_hash(&j->pp, j->pw.p, j->pw.len, j->newphc, sizeof(j->newphc)))
            j->newphc[0] = '\0';
    }
    cr_wipe((void *)(uintptr_t)j->pw.p, j->pw.len);
    j->shared_locked =
        store_guard_end(j->st, &j->guard, j->found && j->ok && !j->user.disabled, wall_ms());
}

enum { LOGIN_OK, LOGIN_FAILED, LOGIN_REFUSED };

static void count_login(struct http_request *r, int outcome)
{
    struct api_ctx *ctx = r->app;
    atomic_fetch_add_explicit(&ctx->sh->logins[outcome], 1, memory_order_relaxed);
}

/* The one answer for a wrong password, an unknown or disabled user, and a locked key. */
static void answer_failed_login(struct http_request *r, int oauth)
{
    if (oauth) {
        api__oauth_error(r, 400, "invalid_grant", "invalid username or password");
    } else {
        http_add_header(r, "Cache-Control", "no-store");
        http_respond_error(r, 401, "invalid_credentials", "invalid username or password");
    }
}

/* Refused only because other attempts for the same username or address are in flight: the
 * password was never checked, so it must not be told it is wrong (issue #11 item 9). The
 * same answer for known and unknown usernames (the lockout keys by the name as typed). */
static void answer_busy_login(struct http_request *r, uint64_t retry_s)
{
    char ra[24];
    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)(retry_s ? retry_s : 1));
    http_add_header(r, "Retry-After", ra);
    http_add_header(r, "Cache-Control", "no-store");
    http_respond_error(r, 429, "too_many_attempts",
                       "other sign-in attempts are in progress; try again shortly");
}

/* login.succeeded / login.failed, and account.locked when this failure locked a key. The
 * reason is for the audit trail only: the client's answer never tells. */
static void login_event(struct login_job *j, bool good, unsigned locked)
{
    struct ev e;
    const char *why = !j->found ? "unknown_user" : j->user.disabled ? "disabled" : "password";
    if (ev_wanted(good ? EV_LOGIN_SUCCEEDED : EV_LOGIN_FAILED)) {
        ev_begin(&e, good ? EV_LOGIN_SUCCEEDED : EV_LOGIN_FAILED);
        if (j->found)
            ev_user(&e, j->user.id);
        api__event_ip(&e, j->r);
        ev_str(&e, "client_id", j->cl.client_id);
        if (!good)
            ev_str(&e, "reason", why);
        ev_publish(&e);
    }
    if (locked && ev_wanted(EV_ACCOUNT_LOCKED)) {
        ev_begin(&e, EV_ACCOUNT_LOCKED);
        if (j->found)
            ev_user(&e, j->user.id);
        api__event_ip(&e, j->r);
        ev_bool(&e, "user_locked", locked & POL_LOCKED_USER);
        ev_bool(&e, "ip_locked", locked & POL_LOCKED_IP);
        ev_bool(&e, "pair_locked", locked & POL_LOCKED_PAIR);
        ev_publish(&e);
    }
}

static void login_fail(struct login_job *j)
{
    answer_failed_login(j->r, j->oauth);
}

static void login_stored(struct store_op *op)
{
    struct login_job *j = op->kind == STORE_OP_REFRESH_ISSUE
                              ? CONTAINER_OF(op, struct login_job, op_rt)
                              : CONTAINER_OF(op, struct login_job, op_user);

    /* A failed rehash is not fatal (the old hash still works); a failed family is. */
    if (op->kind == STORE_OP_REFRESH_ISSUE && op->status)
        j->failed = 1;
    if (--j->pending > 0)
        return; /* the other write of this login is still on its way */
    buf_fini(&j->rec);
    if (j->failed) {
        api__fail(j->r, ERR_BACKEND, NULL);
        return;
    }
    api__answer_tokens(j->r, &j->cl, j->access_ttl, j->refresh);
}

/* Starts a refresh family for the login: both writes (and a rehash, if any) go into the
 * same group commit, and the answer waits for them. */
static void login_verified(struct pool_job *pj)
{
    struct login_job *j = (struct login_job *)(void *)pj;
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    const struct cfg *cfg = ctx->sh->cfg;
    int64_t now = clock_wall_s();

    if (pj->cancelled) {
        pol_lockout_cancel(ctx->sh->lockout, &j->att, now);
        api__fail(r, ERR_AGAIN, NULL);
        return;
    }
    if (j->store_rc || j->refused) {
        pol_lockout_cancel(ctx->sh->lockout, &j->att, now); /* not an attempt here */
        if (j->store_rc) {
            api__fail(r, ERR_BACKEND, NULL);
        } else {
            count_login(r, LOGIN_REFUSED);
            if (j->refused == STORE_GUARD_LIMITED) {
                api__rate_limited_answer(r, API_RL_LOGIN, (uint64_t)j->guard.retry_ms);
            } else if (j->refused == STORE_GUARD_BUSY) {
                answer_busy_login(r, ((uint64_t)j->guard.retry_ms + 999) / 1000);
            } else {
                log_kv(LOG_INFO, "login refused by the shared lockout", LOG_END);
                answer_failed_login(r, j->oauth);
            }
        }
        return;
    }
    bool good = j->found && j->ok && !j->user.disabled;
    unsigned locked = pol_lockout_end(ctx->sh->lockout, &j->att, good, now) | j->shared_locked;
    count_login(r, good ? LOGIN_OK : LOGIN_FAILED);
    login_event(j, good, locked);
    if (!good && ctx->sh->failed_ips) {
        char ip[64];
        api__peer_key(r, ip, sizeof(ip));
        pol_distinct_add(ctx->sh->failed_ips, str_c(ip));
    }
    if (!good) {
        log_kv(LOG_INFO, "login failed", LOG_END);
        login_fail(j);
        return;
    }
    snprintf(j->cl.sub, sizeof(j->cl.sub), "%s", j->user.id);
    tok_refresh_new(j->refresh);
    memset(&j->op_rt, 0, sizeof(j->op_rt));
    j->op_rt.kind = STORE_OP_REFRESH_ISSUE;
    j->op_rt.on_done = login_stored;
    j->op_rt.now = now;
    tok_refresh_digest(ctx->sh->secret_key, str_c(j->refresh), j->op_rt.digest);
    cr_random(j->op_rt.rt.family, STORE_FAMILY_ID);
    j->op_rt.rt.issued_at = now;
    j->op_rt.rt.expires_at = now + cfg->refresh_ttl_s;
    j->op_rt.rt.idle_expires_at = now + cfg->refresh_idle_ttl_s;
    j->op_rt.rt.gen = j->user.sessions; /* read with the password that was checked */
    snprintf(j->op_rt.rt.sub, sizeof(j->op_rt.rt.sub), "%s", j->user.id);
    snprintf(j->op_rt.rt.client_id, sizeof(j->op_rt.rt.client_id), "%s", j->cl.client_id);
    snprintf(j->op_rt.rt.scope, sizeof(j->op_rt.rt.scope), "%s", j->cl.scope);
    j->pending = 1;
    buf_init(&j->rec, 8192);
    if (j->newphc[0]) {
        snprintf(j->user.phc, sizeof(j->user.phc), "%s", j->newphc);
        j->user.password_changed_at = now;
        memset(&j->op_user, 0, sizeof(j->op_user));
        j->op_user.kind = STORE_OP_REPLACE;
        j->op_user.on_done = login_stored;
        j->op_user.table = STORE_T_USERS;
        j->op_user.key_len = strlen(j->user.name);
        memcpy(j->op_user.key, j->user.name, j->op_user.key_len);
        /* Only over the record whose password was checked: an administrator's change
         * since then (a new password, a disable) wins, and the upgrade waits for the next
         * login. */
        j->op_user.expect = j->orig;
        j->op_user.expect_len = j->orig_len;
        if (auth_user_encode(&j->user, &j->rec) == ERR_OK) {
            j->op_user.value = j->rec.p;
            j->op_user.value_len = j->rec.len;
            if (store_submit(ctx->sh->store, ctx->lp, &j->op_user) == ERR_AGAIN)
                j->pending++;
        }
    }
    if (store_submit(ctx->sh->store, ctx->lp, &j->op_rt) != ERR_AGAIN) {
        j->failed = 1;
        if (--j->pending == 0) {
            buf_fini(&j->rec);
            api__fail(r, ERR_LIMIT, NULL);
        }
    }
}

/* Common start of both password logins. */
static int start_login(struct http_request *r, struct str user, struct str pw,
                       const char *client_id, const char *scope, const char *aud,
                       int64_t access_ttl, int oauth)
{
    struct api_ctx *ctx = r->app;
    char name[AUTH_USERNAME_MAX + 1];
    struct login_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->oauth = oauth;
    j->pp = params(ctx);
    j->pw = pw;
    j->access_ttl = access_ttl;
    snprintf(j->cl.client_id, sizeof(j->cl.client_id), "%s", client_id);
    snprintf(j->cl.scope, sizeof(j->cl.scope), "%s", scope);
    str_copy(j->cl.aud, sizeof(j->cl.aud), aud);
    /* Brute-force protection first: a locked key is answered like any failed login, at
     * once, without spending a hash on it. Invalid names count under their raw bytes. */
    char ip[64];
    int64_t retry, now = clock_wall_s();
    bool valid = auth_username_normalize(user, name) == ERR_OK;
    struct str key = valid ? str_c(name) : (struct str){user.p, user.len < 128 ? user.len : 128};
    if (api__rate_limited_key(r, API_RL_LOGIN_USER, key) || api__inflight_full(r, API_IF_LOGIN))
        return HTTP_DONE;
    api__peer_key(r, ip, sizeof(ip));
    int verdict = pol_lockout_begin(ctx->sh->lockout, key, str_c(ip), now, &j->att, &retry);
    if (verdict == POL_ATTEMPT_BUSY) {
        count_login(r, LOGIN_REFUSED);
        answer_busy_login(r, (uint64_t)retry);
        return HTTP_DONE;
    }
    if (verdict != POL_ATTEMPT_OK) {
        count_login(r, LOGIN_REFUSED);
        if (ev_wanted(EV_LOGIN_FAILED)) {
            struct ev e;
            ev_begin(&e, EV_LOGIN_FAILED);
            ev_str(&e, "client_id", client_id);
            api__event_ip(&e, r);
            ev_str(&e, "reason", "locked_or_delayed");
            ev_publish(&e);
        }
        answer_failed_login(r, oauth);
        return HTTP_DONE;
    }
    j->st = ctx->sh->store;
    j->lookup = pw.len <= AUTH_PASSWORD_MAX && valid; /* read on the worker: may block */
    snprintf(j->name, sizeof(j->name), "%s", valid ? name : "");
    if (store_shared(j->st))
        api__guard_init(ctx, &j->guard, key, str_c(ip));
    if (j->pw.len > AUTH_PASSWORD_MAX)
        j->pw.len = AUTH_PASSWORD_MAX; /* hash a bounded prefix: same time, same failure */
    j->pj.on_work = login_work;
    j->pj.on_done = login_verified;
    /* A refused submit answers the request, which frees the arena and j with it: keep the
     * reservation on the stack to give it back. */
    struct pol_attempt att = j->att;
    if (api_submit(r, &j->pj)) {
        pol_lockout_cancel(ctx->sh->lockout, &att, now); /* answered 503: not an attempt */
        return HTTP_DONE;
    }
    return HTTP_ASYNC;
}

int api_login(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;

    if (api__rate_limited(r, API_RL_LOGIN_GLOBAL) || api__rate_limited(r, API_RL_LOGIN) ||
        api__admission_refused(r) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password");
    json_decref(o);
    wipe_body(r);
    if (!user.p || !pw.p) {
        http_respond_error(r, 400, "invalid_request", "username and password are required");
        return HTTP_DONE;
    }
    return start_login(r, user, pw, ctx->sh->cfg->first_party_client, "", "",
                       ctx->sh->cfg->access_ttl_ms / 1000, 0);
}

int api__grant_password(struct http_request *r, const struct http_form *f,
                        const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str user, pw, scope;
    char sc[AUTH_LIST_MAX + 1];

    if (api__rate_limited(r, API_RL_LOGIN_GLOBAL) || api__rate_limited(r, API_RL_LOGIN) ||
        api__admission_refused(r))
        return HTTP_DONE;
    if (!(c->grants & AUTH_GRANT_PASSWORD)) {
        api__oauth_error(r, 400, "unauthorized_client", "this client may not use password");
        return HTTP_DONE;
    }
    int a = api__param(r, f, "username", &user);
    if (a == ERR_INVAL)
        return HTTP_DONE;
    int b = api__param(r, f, "password", &pw);
    if (b == ERR_INVAL)
        return HTTP_DONE;
    if (a || b) {
        api__oauth_error(r, 400, "invalid_request", "username and password are required");
        return HTTP_DONE;
    }
    int rc = api__param(r, f, "scope", &scope);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc == ERR_OK) {
        if (auth_scope_normalize(scope, sc, sizeof(sc)) ||
            !auth_scope_subset(str_c(sc), c->scopes)) {
            api__oauth_error(r, 400, "invalid_scope", "scope not allowed for this client");
            return HTTP_DONE;
        }
    } else {
        snprintf(sc, sizeof(sc), "%s", c->scopes);
    }
    char aud[sizeof(((struct tok_claims *)0)->aud)];
    api__client_audience(c, aud, sizeof(aud));
    return start_login(r, user, pw, c->id, sc, aud,
                       c->access_ttl ? c->access_ttl : ctx->sh->cfg->access_ttl_ms / 1000, 1);
}

/* ---- refresh --------------------------------------------------------------------------- */

struct refresh_job {
    struct store_op op; /* first */
    struct http_request *r;
    struct store_op op_read; /* the presented token's record, read first when a narrower */
    struct buf rec;          /* scope is asked for */
    int oauth;
    char successor[TOK_REFRESH_LEN + 1];
    char want_scope[AUTH_LIST_MAX + 1];              /* narrower scope asked for, or "" */
    char aud[sizeof(((struct tok_claims *)0)->aud)]; /* the client's default audience */
    int64_t access_ttl;
};

/* ---- reaction: a reused refresh token revokes every session of its user ---------------- */

#define REVOKE_ALL_MAX 4096 /* families of one user handled per reuse */

struct revoke_all_job {
    struct pool_job pj; /* first */
    struct store *st;
    char sub[STORE_SUB_MAX + 1];
    uint8_t (*fam)[STORE_FAMILY_ID];
    size_t n;
    int rc;
};

static int on_user_token(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct revoke_all_job *j = ctx;
    struct store_refresh rt;
    (void)key;
    (void)klen;
    if (store_refresh_decode(val, vlen, &rt) || strcmp(rt.sub, j->sub) != 0)
        return ERR_OK;
    for (size_t i = 0; i < j->n; i++)
        if (memcmp(j->fam[i], rt.family, STORE_FAMILY_ID) == 0)
            return ERR_OK;
    if (j->n < REVOKE_ALL_MAX)
        memcpy(j->fam[j->n++], rt.family, STORE_FAMILY_ID);
    return ERR_OK;
}

static void exec_inline(struct store_op *op)
{
    (void)op;
}

/* On a worker: a scan of the refresh tokens (there is no index by user: this is rare and
 * may take a while), then one durable revocation per family. */
static void revoke_all_work(struct pool_job *pj)
{
    struct revoke_all_job *j = (struct revoke_all_job *)(void *)pj;
    j->fam = malloc(REVOKE_ALL_MAX * sizeof(*j->fam));
    if (!j->fam) {
        j->rc = ERR_NOMEM;
        return;
    }
    j->rc = store_each(j->st, STORE_T_REFRESH, on_user_token, j);
    for (size_t i = 0; j->rc == ERR_OK && i < j->n; i++) {
        struct store_op op;
        memset(&op, 0, sizeof(op));
        op.kind = STORE_OP_FAMILY_REVOKE;
        op.on_done = exec_inline; /* store_exec answers by its return value */
        op.now = clock_wall_s();
        memcpy(op.rt.family, j->fam[i], STORE_FAMILY_ID);
        j->rc = store_exec(j->st, &op);
        if (j->rc == ERR_NOTFOUND)
            j->rc = ERR_OK;
    }
}

static void revoke_all_done(struct pool_job *pj)
{
    struct revoke_all_job *j = (struct revoke_all_job *)(void *)pj;
    char n[24];
    snprintf(n, sizeof(n), "%zu", j->n);
    log_kv(j->rc ? LOG_ERROR : LOG_WARN,
           j->rc ? "revoking every session after a token reuse failed"
                 : "every session revoked after a token reuse",
           "sub", j->sub, "families", n, LOG_END);
    if (!j->rc && !pj->cancelled && ev_wanted(EV_TOKEN_REVOKED)) {
        struct ev e;
        ev_begin(&e, EV_TOKEN_REVOKED);
        ev_str(&e, "token", "all_sessions");
        ev_user(&e, j->sub);
        ev_int(&e, "families", (long long)j->n);
        ev_str(&e, "reason", "token.reuse_detected");
        ev_publish(&e);
    }
    free(j->fam);
    free(j);
}

static void revoke_all_sessions(struct api_ctx *ctx, const char *sub)
{
    struct revoke_all_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->st = ctx->sh->store;
    snprintf(j->sub, sizeof(j->sub), "%s", sub);
    j->pj.on_work = revoke_all_work;
    j->pj.on_done = revoke_all_done;
    if (pool_submit(ctx->sh->pool, ctx->lp, &j->pj)) {
        log_kv(LOG_ERROR, "cannot queue the revocation of every session (pool full)", "sub", sub,
               LOG_END);
        free(j);
    }
}

static void refresh_done(struct store_op *op)
{
    struct refresh_job *j = (struct refresh_job *)(void *)op;
    struct http_request *r = j->r;
    struct api_ctx *ctx = r->app;
    struct tok_claims cl;

    if (op->status) {
        api__fail(r, ERR_BACKEND, NULL);
        return;
    }
    if (op->rotate_result == STORE_ROTATE_REUSED) {
        log_kv(LOG_WARN, "refresh token reuse: family revoked", "sub", op->rt.sub, "client_id",
               op->rt.client_id, LOG_END);
        if (ev_wanted(EV_TOKEN_REUSE_DETECTED)) {
            struct ev e;
            ev_begin(&e, EV_TOKEN_REUSE_DETECTED);
            ev_user(&e, op->rt.sub);
            ev_str(&e, "client_id", op->rt.client_id);
            api__event_ip(&e, r);
            ev_str(&e, "action",
                   ctx->sh->cfg->reuse_revokes_all ? "all_sessions_revoked" : "family_revoked");
            ev_publish(&e);
        }
        if (ctx->sh->cfg->reuse_revokes_all)
            revoke_all_sessions(ctx, op->rt.sub);
    }
    if (op->rotate_result != STORE_ROTATED && op->rotate_result != STORE_ROTATE_GRACE) {
        if (j->oauth) {
            api__oauth_error(r, 400, "invalid_grant", "invalid refresh token");
        } else {
            http_add_header(r, "Cache-Control", "no-store");
            http_respond_error(r, 401, "invalid_grant", "invalid refresh token");
        }
        return;
    }
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", op->rt.sub);
    snprintf(cl.client_id, sizeof(cl.client_id), "%s", op->rt.client_id);
    str_copy(cl.aud, sizeof(cl.aud), j->aud);
    /* (a narrower scope was checked against this family's before the rotation, and a
     * family's scope never changes) */
    snprintf(cl.scope, sizeof(cl.scope), "%s", j->want_scope[0] ? j->want_scope : op->rt.scope);
    if (ev_wanted(EV_TOKEN_REFRESHED)) {
        struct ev e;
        ev_begin(&e, EV_TOKEN_REFRESHED);
        ev_user(&e, op->rt.sub);
        ev_str(&e, "client_id", op->rt.client_id);
        ev_bool(&e, "grace", op->rotate_result == STORE_ROTATE_GRACE);
        ev_publish(&e);
    }
    api__answer_tokens(r, &cl, j->access_ttl, j->successor);
}

/* Queues the rotation prepared in j->op. HTTP_ASYNC, or HTTP_DONE after answering 503. */
static int submit_rotation(struct http_request *r, struct refresh_job *j)
{
    struct api_ctx *ctx = r->app;
    if (store_submit(ctx->sh->store, ctx->lp, &j->op) != ERR_AGAIN) {
        api__fail(r, ERR_LIMIT, NULL);
        return HTTP_DONE;
    }
    return HTTP_ASYNC;
}

/* A narrower scope asked for (RFC 6749 §6) is checked against the family's grant before
 * anything is written: a refusal must leave the token unspent. rc is the read of the
 * presented token's record. Returns true after answering; false: go on and rotate (an
 * unknown token or another client's gets the rotation's own invalid_grant). */
static bool refresh_scope_refused(struct refresh_job *j, int rc)
{
    struct store_refresh rt;
    bool beyond = rc == ERR_OK &&
                  store_refresh_decode((const uint8_t *)j->rec.p, j->rec.len, &rt) == ERR_OK &&
                  strcmp(rt.client_id, j->op.rt.client_id) == 0 &&
                  !auth_scope_subset(str_c(j->want_scope), rt.scope);
    buf_fini(&j->rec); /* (before answering, which frees j with the arena) */
    if (rc != ERR_OK && rc != ERR_NOTFOUND) {
        api__fail(j->r, ERR_BACKEND, NULL);
        return true;
    }
    if (beyond) {
        api__oauth_error(j->r, 400, "invalid_scope", "scope beyond the original grant");
        return true;
    }
    return false;
}

static void refresh_scope_read(struct store_op *op)
{
    struct refresh_job *j = CONTAINER_OF(op, struct refresh_job, op_read);
    if (!refresh_scope_refused(j, op->status))
        submit_rotation(j->r, j); /* (answers 503 itself if it cannot) */
}

static int start_refresh(struct http_request *r, struct str token, const char *client_id,
                         const char *want_scope, const char *aud, int64_t access_ttl, int oauth)
{
    struct api_ctx *ctx = r->app;
    const struct cfg *cfg = ctx->sh->cfg;
    int64_t now = clock_wall_s();
    if (api__inflight_full(r, API_IF_REFRESH))
        return HTTP_DONE;
    struct refresh_job *j = api__job(r, sizeof(*j));
    if (!j)
        return HTTP_DONE;
    j->r = r;
    j->oauth = oauth;
    j->access_ttl = access_ttl;
    snprintf(j->want_scope, sizeof(j->want_scope), "%s", want_scope);
    str_copy(j->aud, sizeof(j->aud), aud);
    if (tok_refresh_digest(ctx->sh->secret_key, token, j->op.old_digest)) {
        j->op.rotate_result = STORE_ROTATE_INVALID;
        refresh_done(&j->op);
        return HTTP_DONE;
    }
    tok_refresh_successor(ctx->sh->secret_key, token, j->successor);
    tok_refresh_digest(ctx->sh->secret_key, str_c(j->successor), j->op.digest);
    j->op.kind = STORE_OP_REFRESH_ROTATE;
    j->op.on_done = refresh_done;
    j->op.now = now;
    j->op.grace_s = cfg->refresh_grace_ms / 1000;
    j->op.rt.idle_expires_at = now + cfg->refresh_idle_ttl_s;
    snprintf(j->op.rt.client_id, sizeof(j->op.rt.client_id), "%s", client_id);
    if (j->want_scope[0]) {
        buf_init(&j->rec, STORE_REFRESH_ENC_MAX);
        j->op_read.on_done = refresh_scope_read;
        int rc = store_get(ctx->sh->store, STORE_T_REFRESH, j->op.old_digest, STORE_DIGEST, &j->rec,
                           ctx->lp, &j->op_read);
        if (rc == ERR_AGAIN)
            return HTTP_ASYNC;
        if (refresh_scope_refused(j, rc))
            return HTTP_DONE;
    }
    return submit_rotation(r, j);
}

int api_refresh(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;

    if (api__rate_limited(r, API_RL_REFRESH) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str token = api__jstr(r, o, "refresh_token");
    json_decref(o);
    if (!token.p) {
        http_respond_error(r, 400, "invalid_request", "refresh_token is required");
        return HTTP_DONE;
    }
    return start_refresh(r, token, ctx->sh->cfg->first_party_client, "", "",
                         ctx->sh->cfg->access_ttl_ms / 1000, 0);
}

int api__grant_refresh(struct http_request *r, const struct http_form *f,
                       const struct auth_client *c)
{
    struct api_ctx *ctx = r->app;
    struct str token, scope;
    char sc[AUTH_LIST_MAX + 1] = "";

    if (!(c->grants & AUTH_GRANT_REFRESH_TOKEN)) {
        api__oauth_error(r, 400, "unauthorized_client", "this client may not use refresh_token");
        return HTTP_DONE;
    }
    int rc = api__param(r, f, "refresh_token", &token);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc) {
        api__oauth_error(r, 400, "invalid_request", "refresh_token is required");
        return HTTP_DONE;
    }
    rc = api__param(r, f, "scope", &scope);
    if (rc == ERR_INVAL)
        return HTTP_DONE;
    if (rc == ERR_OK && auth_scope_normalize(scope, sc, sizeof(sc))) {
        api__oauth_error(r, 400, "invalid_scope", "malformed scope");
        return HTTP_DONE;
    }
    char aud[sizeof(((struct tok_claims *)0)->aud)];
    api__client_audience(c, aud, sizeof(aud));
    return start_refresh(r, token, c->id, sc, aud,
                         c->access_ttl ? c->access_ttl : ctx->sh->cfg->access_ttl_ms / 1000, 1);
}

/* ---- logout and refresh revocation ----------------------------------------------------- */

struct revoke_job {
    struct store_op op_read; /* the refresh token's record: its family and client */
    struct store_op op_family;
    struct store_op op_jti;
    struct http_request *r;
    struct api_ctx *ctx;
    struct str access;
    struct buf b;
    char client_id[AUTH_CLIENT_ID_MAX + 1];
    int pending;
    int failed;
    int oauth;
};

/* One of the job's store operations ended: the last one answers. */
static void revoke_step_done(struct revoke_job *j)
{
    if (--j->pending > 0)
        return;
    if (j->failed) {
        api__fail(j->r, ERR_BACKEND, "revocation not stored");
        return;
    }
    api__no_store(j->r);
    if (j->oauth)
        http_respond(j->r, 200, NULL, "", 0);
    else
        http_respond_json(j->r, 200, "{\"status\":\"logged_out\"}");
}

static void logout_done(struct store_op *op)
{
    struct revoke_job *j = op->kind == STORE_OP_FAMILY_REVOKE
                               ? CONTAINER_OF(op, struct revoke_job, op_family)
                               : CONTAINER_OF(op, struct revoke_job, op_jti);
    if (op->status && op->status != ERR_NOTFOUND)
        j->failed = 1;
    if (op->kind == STORE_OP_JTI_REVOKE && op->status == ERR_OK) {
        tok_revoked_publish((const char *)op->key, op->key_len, op->jti_expires_at, op->now);
        tok_cache_drop(j->ctx->cache, j->access);
    }
    revoke_step_done(j);
}

/* The refresh token's record was read (rc): queues its family's revocation if the token
 * belongs to the job's client. 1 if queued, 0 if nothing to do, -1 on a store error. */
static int family_read(struct revoke_job *j, int rc)
{
    struct api_ctx *ctx = j->ctx;
    struct store_refresh rt;

    if (rc == ERR_OK)
        rc = store_refresh_decode((const uint8_t *)j->b.p, j->b.len, &rt);
    buf_fini(&j->b);
    if (rc == ERR_NOTFOUND || rc == ERR_INVAL)
        return 0;
    if (rc)
        return -1;
    if (strcmp(rt.client_id, j->client_id) != 0)
        return 0; /* RFC 7009 §2.1: not this client's token; nothing is revoked */
    memset(&j->op_family, 0, sizeof(j->op_family));
    j->op_family.kind = STORE_OP_FAMILY_REVOKE;
    j->op_family.on_done = logout_done;
    j->op_family.now = clock_wall_s();
    memcpy(j->op_family.rt.family, rt.family, STORE_FAMILY_ID);
    if (store_submit(ctx->sh->store, ctx->lp, &j->op_family) != ERR_AGAIN)
        return -1;
    j->pending++;
    if (ev_wanted(EV_TOKEN_REVOKED)) {
        struct ev e;
        ev_begin(&e, EV_TOKEN_REVOKED);
        ev_str(&e, "token", "refresh_family");
        ev_user(&e, rt.sub);
        ev_str(&e, "client_id", rt.client_id);
        ev_publish(&e);
    }
    return 1;
}

static void family_read_done(struct store_op *op)
{
    struct revoke_job *j = CONTAINER_OF(op, struct revoke_job, op_read);
    if (family_read(j, op->status) < 0)
        j->failed = 1;
    revoke_step_done(j);
}

/* Starts the revocation of refresh token `token`'s family if it belongs to client_id: its
 * record is read first (without blocking the loop on a shared store). 1 if something is
 * pending (the job answers when it ends), 0 if nothing to do, -1 on a store error. */
static int queue_family_revoke(struct revoke_job *j, struct str token, const char *client_id)
{
    struct api_ctx *ctx = j->ctx;
    uint8_t digest[CR_HASH_LEN];

    if (tok_refresh_digest(ctx->sh->secret_key, token, digest))
        return 0;
    snprintf(j->client_id, sizeof(j->client_id), "%s", client_id);
    memset(&j->op_read, 0, sizeof(j->op_read));
    j->op_read.on_done = family_read_done;
    buf_init(&j->b, 4096);
    int rc = store_get(ctx->sh->store, STORE_T_REFRESH, digest, sizeof(digest), &j->b, ctx->lp,
                       &j->op_read);
    if (rc == ERR_AGAIN) {
        j->pending++;
        return 1;
    }
    return family_read(j, rc);
}

static struct revoke_job *new_revoke_job(struct http_request *r, int oauth)
{
    struct revoke_job *j = arena_alloc(r->arena, sizeof(*j));
    if (j) {
        memset(j, 0, sizeof(*j));
        j->r = r;
        j->ctx = r->app;
        j->oauth = oauth;
    }
    return j;
}

int api__revoke_refresh(struct http_request *r, struct str token, const char *client_id)
{
    struct revoke_job *j = new_revoke_job(r, 1);

    if (!j) {
        api__fail(r, ERR_NOMEM, NULL);
        return HTTP_DONE;
    }
    int rc = queue_family_revoke(j, token, client_id);
    if (rc < 0) {
        api__fail(r, ERR_BACKEND, NULL);
        return HTTP_DONE;
    }
    if (rc == 0) {
        api__no_store(r);
        http_respond(r, 200, NULL, "", 0); /* unknown tokens are not an error (§2.2) */
        return HTTP_DONE;
    }
    return HTTP_ASYNC;
}

/* POST /v1/auth/logout {"refresh_token":..} with the access token as Bearer (optional):
 * revokes the refresh family and the presented access token. */
int api_logout(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;
    struct tok_claims cl;

    if (api__rate_limited(r, API_RL_REVOKE) || api__read_json(r, &o))
        return HTTP_DONE;
    struct str token = api__jstr(r, o, "refresh_token");
    json_decref(o);
    struct revoke_job *j = new_revoke_job(r, 0);
    if (!j) {
        api__fail(r, ERR_NOMEM, NULL);
        return HTTP_DONE;
    }
    j->pending = 1; /* held until both are queued, so a fast completion cannot answer early */
    if (token.p && queue_family_revoke(j, token, ctx->sh->cfg->first_party_client) < 0)
        j->failed = 1;
    struct str authz = http_header(r, "authorization");
    if (authz.len > 7 && str_eq_nocase((struct str){authz.p, 7}, STR_LIT("Bearer "))) {
        j->access = (struct str){authz.p + 7, authz.len - 7};
        if (api__verify_to_revoke(ctx, j->access, &cl) == ERR_OK) {
            memset(&j->op_jti, 0, sizeof(j->op_jti));
            j->op_jti.kind = STORE_OP_JTI_REVOKE;
            j->op_jti.on_done = logout_done;
            j->op_jti.key_len = strlen(cl.jti);
            memcpy(j->op_jti.key, cl.jti, j->op_jti.key_len);
            j->op_jti.jti_expires_at = cl.exp + ctx->sh->cfg->leeway_ms / 1000;
            j->op_jti.now = clock_wall_s();
            if (store_submit(ctx->sh->store, ctx->lp, &j->op_jti) == ERR_AGAIN)
                j->pending++;
            else
                j->failed = 1;
        }
    }
    if (--j->pending > 0)
        return HTTP_ASYNC;
    if (j->failed) {
        api__fail(r, ERR_BACKEND, "revocation not stored");
        return HTTP_DONE;
    }
    api__no_store(r);
    http_respond_json(r, 200, "{\"status\":\"logged_out\"}");
    return HTTP_DONE;
}
