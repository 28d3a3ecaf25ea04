/* SPDX-License-Identifier: MIT */
/*
 * The admin API, served on its own listener (admin_listen, loopback by default) and only
 * when admin_token is set. Every request needs `Authorization: Bearer <admin_token>`,
 * compared in constant time over digests (so neither content nor length leaks).
 *
 *   GET    /admin/users                     list (never a hash)
 *   POST   /admin/users                     {"username", "password"} or {"username", "hash"}
 *   PUT    /admin/users/{name}/password     {"password"}
 *   POST   /admin/users/{name}/disable      also /enable
 *   DELETE /admin/users/{name}
 *   GET    /admin/clients                   list (never a secret)
 *   POST   /admin/clients                   {"name", "grants", "scopes", "audiences",
 *                                            "access_ttl"} -> client_id and client_secret (once)
 *   POST   /admin/clients/{id}/secret       a new secret (once)
 *   DELETE /admin/clients/{id}
 *   GET    /admin/keys                      signing keys (public parts and times)
 *   POST   /admin/keys/rotate
 *   GET    /admin/events                    announced traffic events
 *   POST   /admin/events                    {"name", "at", "duration", "expect"} -> id
 *   DELETE /admin/events/{id}
 *
 * Everything that touches the store (writes, password hashing, lists, unlocks) runs on the
 * worker pool, through the same functions the CLI uses, so a loop thread never waits for
 * an fsync or a round trip to Redis; the key list is the thread's own copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>
#include <sodium.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_admin.h"
#include "auth/auth_client.h"
#include "auth/auth_login.h"
#include "auth/auth_password.h"
#include "auth/auth_user.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "event/ev.h"
#include "http/http.h"
#include "loop/pool.h"
#include "policy/pol_announce.h"
#include "policy/pol_lockout.h"
#include "policy/pol_mode.h"
#include "token/tok_keys.h"
#include "token/tok_scope.h"

enum admin_op {
    A_USER_ADD,
    A_USER_IMPORT,
    A_USER_PASSWD,
    A_USER_DISABLE,
    A_USER_ENABLE,
    A_USER_DELETE,
    A_CLIENT_ADD,
    A_CLIENT_SECRET,
    A_CLIENT_DELETE,
    A_KEY_ROTATE,
    A_EVENT_ADD,
    A_EVENT_DELETE,
    A_USER_UNLOCK,
    A_LIST, /* of list_table, into list */
};

struct admin_job {
    struct pool_job pj; /* first */
    struct http_request *r;
    struct api_shared *sh;
    enum admin_op op;
    char name[AUTH_USERNAME_MAX + 1]; /* user name or client id */
    struct str secret;                /* password or imported hash (arena) */
    struct auth_client client;
    struct { /* A_EVENT_ADD */
        char name[POL_ANNOUNCE_NAME_MAX + 1];
        int64_t at, duration;
        double expect;
    } event;
    enum { L_USERS, L_CLIENTS, L_EVENTS } list_of;
    struct buf list; /* A_LIST: the JSON array, built on the worker */
    int rc;
    unsigned status;
    char out[1024];
};

/* Security-sensitive: the token check. Digests first, so the compare is fixed-length. */
static bool authorized(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    const char *want = ctx->sh->cfg->admin_token;
    struct str authz = http_header(r, "authorization");
    uint8_t a[32], b[32];

    if (!want[0] || authz.len < 8 || !str_eq_nocase((struct str){authz.p, 7}, STR_LIT("Bearer ")))
        return false;
    crypto_generichash(a, sizeof(a), (const uint8_t *)authz.p + 7, authz.len - 7, NULL, 0);
    crypto_generichash(b, sizeof(b), (const uint8_t *)want, strlen(want), NULL, 0);
    return cr_eq(a, b, sizeof(a));
}

static bool deny(struct http_request *r)
{
    if (authorized(r))
        return false;
    http_add_header(r, "WWW-Authenticate", "Bearer realm=\"floodgate-admin\"");
    http_respond_error(r, 401, "unauthorized", "admin token required");
    log_kv(LOG_WARN, "admin request refused", LOG_END);
    return true;
}

static const enum auth_user_change changes[] = {
    [A_USER_PASSWD] = AUTH_USER_PASSWORD,
    [A_USER_DISABLE] = AUTH_USER_DISABLE,
    [A_USER_ENABLE] = AUTH_USER_ENABLE,
    [A_USER_DELETE] = AUTH_USER_DELETE,
};

/* The accounts, on a worker: hashing and the store's write lock may block. */
static void user_work(struct admin_job *j, int64_t now)
{
    const struct auth_svc *svc = &j->sh->auth;
    struct auth_user u;

    switch (j->op) {
    case A_USER_ADD:
    case A_USER_IMPORT:
        j->rc = j->op == A_USER_ADD ? auth_admin_user_add(svc, j->name, j->secret, now, &u)
                                    : auth_admin_user_import(svc, j->name, j->secret.p, now, &u);
        j->status = 201;
        snprintf(j->out, sizeof(j->out), "{\"username\":\"%s\",\"id\":\"%s\"}", u.name, u.id);
        break;
    case A_USER_UNLOCK:
        auth_admin_unlock(svc, j->name, "admin_api");
        snprintf(j->out, sizeof(j->out), "{\"username\":\"%s\",\"unlocked\":true}", j->name);
        j->rc = ERR_OK;
        break;
    default:
        j->rc = auth_admin_user_change(svc, j->name, changes[j->op], j->secret, now, &u);
        if (j->op == A_USER_PASSWD)
            snprintf(j->out, sizeof(j->out), "{\"username\":\"%s\",\"password\":\"changed\"}",
                     j->name);
        else if (j->op == A_USER_DELETE)
            snprintf(j->out, sizeof(j->out), "{\"deleted\":\"%s\"}", j->name);
        else
            snprintf(j->out, sizeof(j->out), "{\"username\":\"%s\",\"disabled\":%s}", j->name,
                     j->op == A_USER_DISABLE ? "true" : "false");
    }
}

/* On a worker: may block on hashing and on the store's write lock. */
static void admin_work(struct pool_job *pj)
{
    struct admin_job *j = (struct admin_job *)(void *)pj;
    const struct cfg *c = j->sh->cfg;
    struct store *st = j->sh->store;
    int64_t now = clock_wall_s();
    char secret[AUTH_SECRET_LEN + 1], kid[TOK_KID_MAX + 1];

    j->status = 200;
    switch (j->op) {
    case A_CLIENT_ADD:
    case A_CLIENT_SECRET:
        j->rc = j->op == A_CLIENT_ADD
                    ? auth_admin_client_create(&j->sh->auth, &j->client, now, secret)
                    : auth_client_rotate_secret(st, j->sh->secret_key, j->name, secret);
        j->status = j->op == A_CLIENT_ADD ? 201 : 200;
        snprintf(j->out, sizeof(j->out), "{\"client_id\":\"%s\",\"client_secret\":\"%s\"}",
                 j->op == A_CLIENT_ADD ? j->client.id : j->name, secret);
        cr_wipe(secret, sizeof(secret));
        break;
    case A_CLIENT_DELETE:
    case A_EVENT_DELETE:
        j->rc = j->op == A_CLIENT_DELETE ? auth_admin_client_delete(&j->sh->auth, j->name)
                                         : pol_announce_cancel(st, j->name);
        snprintf(j->out, sizeof(j->out), "{\"deleted\":\"%s\"}", j->name);
        break;
    case A_EVENT_ADD: {
        char id[POL_ANNOUNCE_ID_MAX + 1], json[POL_ANNOUNCE_JSON_MAX];
        j->rc = pol_announce_schedule(st, j->event.name, j->event.at, j->event.duration,
                                      j->event.expect, id, json);
        j->status = 201;
        if (j->rc == ERR_OK) /* (id and json are filled only then) */
            snprintf(j->out, sizeof(j->out), "{\"id\":\"%s\",\"event\":%s}", id, json);
        break;
    }
    case A_LIST:
        buf_init(&j->list, 8u << 20);
        j->rc = j->list_of == L_EVENTS ? pol_announce_list(st, &j->list)
                                       : auth_admin_list(st, j->list_of == L_CLIENTS, &j->list);
        break;
    case A_KEY_ROTATE: {
        int64_t ahead = c->key_publish_ahead_ms / 1000, from = now + ahead;
        j->rc = tok_keys_rotate(st, tok_alg_parse(c->signing_alg), now, ahead,
                                86400 + c->leeway_ms / 1000, kid, &from);
        if (j->rc == ERR_OK)
            tok_keys_rotated(kid, from, "admin_api");
        snprintf(j->out, sizeof(j->out), "{\"kid\":\"%s\",\"active_from\":%lld}", kid,
                 (long long)from);
        break;
    }
    default:
        user_work(j, now);
    }
}

static void admin_done(struct pool_job *pj)
{
    struct admin_job *j = (struct admin_job *)(void *)pj;
    struct http_request *r = j->r;

    if (pj->cancelled) {
        api__fail(r, ERR_AGAIN, NULL);
        return;
    }
    if (j->op == A_LIST) {
        struct buf list = j->list; /* (answering frees j) */
        if (j->rc)
            api__fail(r, j->rc, j->rc == ERR_LIMIT ? "the list is too long for one answer" : NULL);
        else
            http_respond(r, 200, "application/json", list.p, list.len);
        buf_fini(&list);
        return;
    }
    /* Answering frees the arena, and j with it: everything is read (and the secret it may
     * hold wiped) before the answer. */
    int rc = j->rc;
    enum admin_op j_op = j->op;
    unsigned status = j->status;
    char out[sizeof(j->out)];
    memcpy(out, j->out, sizeof(out));
    cr_wipe(j->out, sizeof(j->out));
    if (rc == ERR_OK) {
        http_add_header(r, "Cache-Control", "no-store");
        http_respond_json(r, status, out);
    } else {
        api__fail(r, rc,
                  rc == ERR_INVAL
                      ? (j_op == A_EVENT_ADD ? "at: epoch seconds, YYYY-MM-DDTHH:MM:SSZ "
                                               "or +DURATION; expect 1..1000; "
                                               "duration 1s..30d; name of at most "
                                               "100 characters"
                                             : "not a supported hash")
                  : rc == ERR_NOTFOUND ? NULL
                  : rc == ERR_CONFLICT ? NULL
                                       : err_str(rc));
    }
    cr_wipe(out, sizeof(out));
}

static struct admin_job *new_job(struct http_request *r, enum admin_op op)
{
    struct api_ctx *ctx = r->app;
    struct admin_job *j = api__job(r, sizeof(*j));
    if (j) {
        j->r = r;
        j->sh = ctx->sh;
        j->op = op;
        j->pj.on_work = admin_work;
        j->pj.on_done = admin_done;
    }
    return j;
}

static int submit(struct http_request *r, struct admin_job *j)
{
    return api_submit(r, &j->pj) ? HTTP_DONE : HTTP_ASYNC;
}

/* The {name} parameter, percent-decoded and normalised as a username. */
static int user_param(struct http_request *r, char out[AUTH_USERNAME_MAX + 1])
{
    char raw[AUTH_USERNAME_MAX * 3 + 1];
    size_t n;

    if (r->nparams < 1 || r->params[0].len > sizeof(raw) - 1 ||
        http_pct_decode(r->params[0], 0, raw, &n) ||
        auth_username_normalize((struct str){raw, n}, out)) {
        http_respond_error(r, 400, "invalid_username", NULL);
        return ERR_INVAL;
    }
    return ERR_OK;
}

/* ---- users ----------------------------------------------------------------------------- */

static int list(struct http_request *r, int of)
{
    struct admin_job *j = new_job(r, A_LIST);
    if (!j)
        return HTTP_DONE;
    j->list_of = of;
    return submit(r, j);
}

int api_admin_users(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;
    const char *why;

    if (deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_GET)
        return list(r, L_USERS);
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password"),
               hash = api__jstr(r, o, "hash");
    json_decref(o);
    struct admin_job *j = new_job(r, hash.p ? A_USER_IMPORT : A_USER_ADD);
    if (!j)
        return HTTP_DONE;
    if (!user.p || !(pw.p || hash.p) || (pw.p && hash.p) ||
        auth_username_normalize(user, j->name)) {
        http_respond_error(r, 400, "invalid_request",
                           "username and one of password or hash are required");
        return HTTP_DONE;
    }
    if (pw.p && auth_password_policy(pw, ctx->sh->denylist, &why)) {
        http_respond_error(r, 400, "invalid_password", why);
        return HTTP_DONE;
    }
    if (hash.p && hash.len >= AUTH_PHC_MAX) {
        http_respond_error(r, 400, "invalid_request", "hash too long");
        return HTTP_DONE;
    }
    j->secret = pw.p ? pw : hash;
    return submit(r, j);
}

static int user_action(struct http_request *r, enum admin_op op)
{
    struct api_ctx *ctx = r->app;
    const char *why;

    if (deny(r))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, op);
    if (!j || user_param(r, j->name))
        return HTTP_DONE;
    if (op == A_USER_PASSWD) {
        json_t *o;
        if (api__read_json(r, &o))
            return HTTP_DONE;
        j->secret = api__jstr(r, o, "password");
        json_decref(o);
        if (!j->secret.p || auth_password_policy(j->secret, ctx->sh->denylist, &why)) {
            http_respond_error(r, 400, "invalid_password",
                               j->secret.p ? why : "password is required");
            return HTTP_DONE;
        }
    }
    return submit(r, j);
}

int api_admin_user_password(struct http_request *r)
{
    return user_action(r, A_USER_PASSWD);
}

int api_admin_user_disable(struct http_request *r)
{
    return user_action(r, A_USER_DISABLE);
}

int api_admin_user_enable(struct http_request *r)
{
    return user_action(r, A_USER_ENABLE);
}

/* Clears the username's brute-force locks in this process and, on a shared store, on every
 * instance (the CLI, another process, cannot reach them; a restart clears them too). */
int api_admin_user_unlock(struct http_request *r)
{
    if (deny(r))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, A_USER_UNLOCK);
    if (!j || user_param(r, j->name))
        return HTTP_DONE;
    return submit(r, j);
}

int api_admin_user_delete(struct http_request *r)
{
    return user_action(r, A_USER_DELETE);
}

/* ---- clients --------------------------------------------------------------------------- */

int api_admin_clients(struct http_request *r)
{
    json_t *o;

    if (deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_GET)
        return list(r, L_CLIENTS);
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, A_CLIENT_ADD);
    if (!j) {
        json_decref(o);
        return HTTP_DONE;
    }
    int bad = auth_client_from_json(o, &j->client);
    json_decref(o);
    if (bad) {
        http_respond_error(r, 400, "invalid_request",
                           "name is required; grants of client_credentials, refresh_token, "
                           "password; access_ttl 10..86400; introspection true or false");
        return HTTP_DONE;
    }
    return submit(r, j);
}

/* An action on the object named by the {id} parameter (a client or an event): longer ids
 * name nothing. */
static int id_action(struct http_request *r, enum admin_op op, size_t max)
{
    if (deny(r))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, op);
    if (!j)
        return HTTP_DONE;
    if (r->params[0].len > max || r->params[0].len >= sizeof(j->name)) {
        http_respond_error(r, 404, "not_found", NULL);
        return HTTP_DONE;
    }
    memcpy(j->name, r->params[0].p, r->params[0].len);
    j->name[r->params[0].len] = '\0';
    return submit(r, j);
}

static int client_action(struct http_request *r, enum admin_op op)
{
    return id_action(r, op, AUTH_CLIENT_ID_MAX);
}

int api_admin_client_secret(struct http_request *r)
{
    return client_action(r, A_CLIENT_SECRET);
}

int api_admin_client_delete(struct http_request *r)
{
    return client_action(r, A_CLIENT_DELETE);
}

/* ---- policy --------------------------------------------------------------------------- */

/* GET: the mode, the override, the recommendation. PUT {"mode": "auto"|"normal"|...}: pin
 * a mode or give control back; applied by the controller within a second (and at once
 * here, so the answer is true). */
int api_admin_policy(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    char body[sizeof(ctx->sh->pol.sample) + 512];

    if (deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_PUT) {
        json_t *o;
        if (api__read_json(r, &o))
            return HTTP_DONE;
        const char *m = json_string_value(json_object_get(o, "mode"));
        int mode = m ? pol_mode_parse(m) : -1;
        json_decref(o); /* m is gone with it: only `mode` from here on */
        if (mode < 0) {
            http_respond_error(r, 400, "invalid_request",
                               "mode is one of auto, normal, elevated, surge, shed");
            return HTTP_DONE;
        }
        if (pol_state_pin(&ctx->sh->pol, mode)) {
            log_kv(LOG_WARN, "policy mode set by the admin API", "mode",
                   pol_mode_name((enum pol_mode)mode), LOG_END);
            if (ev_wanted(EV_POLICY_MODE_CHANGED)) {
                struct ev e;
                ev_begin(&e, EV_POLICY_MODE_CHANGED);
                ev_str(&e, "to", pol_mode_name((enum pol_mode)mode));
                ev_str(&e, "by", "admin_api");
                ev_publish(&e);
            }
        }
    }
    if (pol_state_json(&ctx->sh->pol, body, sizeof(body)))
        http_respond_error(r, 500, "server_error", NULL);
    else
        http_respond_json(r, 200, body);
    return HTTP_DONE;
}

/* ---- keys ------------------------------------------------------------------------------ */

int api_admin_keys(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    int64_t now = clock_wall_s();

    if (deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_POST) {
        struct admin_job *j = new_job(r, A_KEY_ROTATE);
        return j ? submit(r, j) : HTTP_DONE;
    }
    struct buf b;
    buf_init(&b, 65536);
    if (tok_ring_admin_json(tok_local_ring(&ctx->tok, now), now, &b))
        http_respond_error(r, 500, "server_error", NULL);
    else
        http_respond(r, 200, "application/json", b.p, b.len);
    buf_fini(&b);
    return HTTP_DONE;
}

/* ---- announced events ------------------------------------------------------------------ */

int api_admin_events(struct http_request *r)
{
    json_t *o;

    if (deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_GET)
        return list(r, L_EVENTS);
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, A_EVENT_ADD);
    if (!j) {
        json_decref(o);
        return HTTP_DONE;
    }
    int bad = pol_announce_from_json(o, clock_wall_s(), j->event.name, &j->event.at,
                                     &j->event.duration, &j->event.expect);
    json_decref(o);
    if (bad) {
        http_respond_error(r, 400, "invalid_request",
                           "at (epoch seconds, YYYY-MM-DDTHH:MM:SSZ or +DURATION) and expect "
                           "(1..1000, or \"10x\") are required; name is text");
        return HTTP_DONE;
    }
    return submit(r, j);
}

int api_admin_event_delete(struct http_request *r)
{
    return id_action(r, A_EVENT_DELETE, POL_ANNOUNCE_ID_MAX);
}
