/* SPDX-License-Identifier: MIT */
/*
 * The admin API, served on its own listener (admin_listen, loopback by default) and only
 * when admin_token is set. Every request needs `Authorization: Bearer <admin_token>`,
 * compared in constant time over digests (so neither content nor length leaks).
 *
 * The routes and their bodies are in README.md ("Admin API"), the table in api.c.
 *
 * Everything that touches the store (writes, password hashing, lists, unlocks) runs on the
 * worker pool, through the same functions the CLI uses, so a loop thread never waits for
 * an fsync or a round trip to Redis; the key list is the thread's own copy.
 */

#include <stdio.h>
#include <string.h>

#include <http_parser.h>
#include <sodium.h>

#include "api/api.h"
#include "api/api_int.h"
#include "auth/auth_admin.h"
#include "auth/auth_admin_op.h"
#include "auth/auth_password.h"
#include "auth/auth_user.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "event/ev.h"
#include "http/http.h"
#include "loop/pool.h"
#include "policy/pol_announce.h"
#include "policy/pol_mode.h"

struct admin_job {
    struct pool_job pj; /* first */
    struct http_request *r;
    struct api_shared *sh;
    struct auth_admin_op op;
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

/* Refuses a request without the admin token (401). Every refusal, and every request that
 * may change something (not GET or HEAD), is logged: what, from where, and who (the holder
 * of the admin token; the access log has the answer). */
bool api__admin_deny(struct http_request *r)
{
    char ip[64], path[160];
    bool ok = authorized(r);
    const char *method = http_method_str((enum http_method)r->method);

    if (!ok || (r->method != HTTP_GET && r->method != HTTP_HEAD)) {
        api__peer_ip(r, ip, sizeof(ip));
        snprintf(path, sizeof(path), "%.*s", (int)(r->path.len < 150 ? r->path.len : 150),
                 r->path.p);
        log_kv(ok ? LOG_INFO : LOG_WARN, ok ? "admin action" : "admin request refused", "method",
               method, "path", path, "ip", ip, "by", ok ? "admin token" : "no valid admin token",
               LOG_END);
    }
    if (ok)
        return false;
    http_add_header(r, "WWW-Authenticate", "Bearer realm=\"floodgate-admin\"");
    http_respond_error(r, 401, "unauthorized", "admin token required");
    return true;
}

/* On a worker: may block on hashing and on the store's write lock. */
static void admin_work(struct pool_job *pj)
{
    struct admin_job *j = (struct admin_job *)(void *)pj;
    auth_admin_op_run(&j->sh->auth, &j->op, clock_wall_s());
}

static void admin_done(struct pool_job *pj)
{
    struct admin_job *j = (struct admin_job *)(void *)pj;
    struct http_request *r = j->r;
    struct auth_admin_op *op = &j->op;

    if (pj->cancelled) {
        api__fail(r, ERR_AGAIN, NULL);
        return;
    }
    /* Answering frees the arena, and j with it: what the answer needs is taken first. The
     * bodies are ours (malloc'd); the answer copies them, then they are wiped and freed. */
    int rc = op->rc;
    unsigned status = op->created ? 201 : 200;
    const char *why = auth_admin_op_why(op);
    bool list = op->action >= AUTH_ADMIN_LIST_USERS;
    struct buf body = list ? op->list : op->out, other = list ? op->out : op->list;
    buf_fini(&other);
    if (rc) {
        api__fail(r, rc, why ? why : rc == ERR_NOTFOUND || rc == ERR_CONFLICT ? NULL : err_str(rc));
    } else {
        if (!list)
            http_add_header(r, "Cache-Control", "no-store");
        http_respond(r, status, "application/json", body.p, body.len);
    }
    if (body.p)
        cr_wipe(body.p, body.cap);
    buf_fini(&body);
}

static struct admin_job *new_job(struct http_request *r, enum auth_admin_action op)
{
    struct api_ctx *ctx = r->app;
    struct admin_job *j = api__job(r, sizeof(*j));
    if (j) {
        j->r = r;
        j->sh = ctx->sh;
        j->op.action = op;
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

/* An action with nothing to read from the request. */
static int plain(struct http_request *r, enum auth_admin_action op)
{
    struct admin_job *j = new_job(r, op);
    return j ? submit(r, j) : HTTP_DONE;
}

int api_admin_users(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    json_t *o;
    const char *why;

    if (api__admin_deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_GET)
        return plain(r, AUTH_ADMIN_LIST_USERS);
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct str user = api__jstr(r, o, "username"), pw = api__jstr(r, o, "password"),
               hash = api__jstr(r, o, "hash"), email = api__jstr(r, o, "email"),
               display = api__jstr(r, o, "name");
    bool verified = json_is_true(json_object_get(o, "email_verified"));
    json_decref(o);
    struct admin_job *j = new_job(r, hash.p ? AUTH_ADMIN_USER_IMPORT : AUTH_ADMIN_USER_ADD);
    if (!j)
        return HTTP_DONE;
    if (!user.p || !(pw.p || hash.p) || (pw.p && hash.p) ||
        auth_username_normalize(user, j->op.name))
        return api__error(r, 400, "invalid_request",
                          "username and one of password or hash are required");
    if (pw.p && auth_password_policy(pw, ctx->sh->auth.denylist, &why))
        return api__error(r, 400, "invalid_password", why);
    if (hash.p && hash.len >= AUTH_PHC_MAX)
        return api__error(r, 400, "invalid_request", "hash too long");
    if (auth_user_profile(&j->op.profile, email.p, display.p, &why))
        return api__error(r, 400, "invalid_request", why);
    j->op.profile.email_verified = verified && email.p;
    j->op.secret = pw.p ? pw : hash;
    return submit(r, j);
}

/* PUT .../password {"password"}, POST .../disable, .../enable, .../unlock (clears the
 * username's brute-force locks in this process and, on a shared store, on every instance:
 * the CLI, another process, cannot reach them), DELETE. */
int api_admin_user(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    enum auth_admin_action op = (enum auth_admin_action)api__admin_action(r);
    const char *why;

    if (api__admin_deny(r))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, op);
    if (!j || user_param(r, j->op.name))
        return HTTP_DONE;
    if (op == AUTH_ADMIN_USER_PASSWD) {
        json_t *o;
        if (api__read_json(r, &o))
            return HTTP_DONE;
        j->op.secret = api__jstr(r, o, "password");
        json_decref(o);
        if (!j->op.secret.p || auth_password_policy(j->op.secret, ctx->sh->auth.denylist, &why))
            return api__error(r, 400, "invalid_password",
                              j->op.secret.p ? why : "password is required");
    }
    return submit(r, j);
}

/* ---- clients --------------------------------------------------------------------------- */

int api_admin_clients(struct http_request *r)
{
    json_t *o;

    if (api__admin_deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_GET)
        return plain(r, AUTH_ADMIN_LIST_CLIENTS);
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, AUTH_ADMIN_CLIENT_ADD);
    if (!j) {
        json_decref(o);
        return HTTP_DONE;
    }
    const char *why;
    int bad = auth_client_from_json(o, &j->op.client, &j->op.web, &why);
    json_decref(o);
    if (bad)
        return api__error(r, 400, "invalid_request", why);
    return submit(r, j);
}

/* DELETE /admin/users/{name}/consents/{id}: what the user allowed the client is withdrawn;
 * its next authorization asks again. */
int api_admin_user_consent(struct http_request *r)
{
    if (api__admin_deny(r))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, AUTH_ADMIN_CONSENT_REVOKE);
    if (!j || user_param(r, j->op.name))
        return HTTP_DONE;
    if (r->nparams < 2 || r->params[1].len >= sizeof(j->op.client_id))
        return api__error(r, 404, "not_found", NULL);
    snprintf(j->op.client_id, sizeof(j->op.client_id), "%.*s", (int)r->params[1].len,
             r->params[1].p);
    return submit(r, j);
}

/* An action on the client or event named by the {id} parameter: longer ids name nothing. */
int api_admin_by_id(struct http_request *r)
{
    enum auth_admin_action op = (enum auth_admin_action)api__admin_action(r);
    size_t max = op == AUTH_ADMIN_EVENT_DELETE ? POL_ANNOUNCE_ID_MAX : AUTH_CLIENT_ID_MAX;

    if (api__admin_deny(r))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, op);
    if (!j)
        return HTTP_DONE;
    if (r->params[0].len > max || r->params[0].len >= sizeof(j->op.name))
        return api__error(r, 404, "not_found", NULL);
    memcpy(j->op.name, r->params[0].p, r->params[0].len);
    j->op.name[r->params[0].len] = '\0';
    return submit(r, j);
}

/* ---- policy --------------------------------------------------------------------------- */

/* GET: the mode, the override, the recommendation. PUT {"mode": "auto"|"normal"|...}: pin
 * a mode or give control back; applied by the controller within a second (and at once
 * here, so the answer is true). */
int api_admin_policy(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    char body[sizeof(ctx->sh->pol.sample) + 512];

    if (api__admin_deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_PUT) {
        json_t *o;
        if (api__read_json(r, &o))
            return HTTP_DONE;
        const char *m = json_string_value(json_object_get(o, "mode"));
        int mode = m ? pol_mode_parse(m) : -1;
        json_decref(o); /* m is gone with it: only `mode` from here on */
        if (mode < 0)
            return api__error(r, 400, "invalid_request",
                              "mode is one of auto, normal, elevated, surge, shed");
        auth_admin_pin_mode(&ctx->sh->pol, mode, "admin_api");
    }
    if (pol_state_json(&ctx->sh->pol, body, sizeof(body)))
        return api__error(r, 500, "server_error", NULL);
    return api__json(r, 200, body);
}

/* ---- keys ------------------------------------------------------------------------------ */

int api_admin_keys(struct http_request *r)
{
    struct api_ctx *ctx = r->app;
    int64_t now = clock_wall_s();

    if (api__admin_deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_POST)
        return plain(r, AUTH_ADMIN_KEY_ROTATE);
    struct buf b;
    buf_init(&b, 65536);
    return api__answer_buf(r, tok_ring_admin_json(tok_local_ring(&ctx->tok, now), now, &b), &b,
                           NULL, NULL);
}

/* ---- announced events ------------------------------------------------------------------ */

int api_admin_events(struct http_request *r)
{
    json_t *o;

    if (api__admin_deny(r))
        return HTTP_DONE;
    if (r->method == HTTP_GET)
        return plain(r, AUTH_ADMIN_LIST_EVENTS);
    if (api__read_json(r, &o))
        return HTTP_DONE;
    struct admin_job *j = new_job(r, AUTH_ADMIN_EVENT_ADD);
    if (!j) {
        json_decref(o);
        return HTTP_DONE;
    }
    int bad = pol_announce_from_json(o, clock_wall_s(), j->op.event.name, &j->op.event.at,
                                     &j->op.event.duration, &j->op.event.expect);
    json_decref(o);
    if (bad)
        return api__error(r, 400, "invalid_request",
                          "at (epoch seconds, YYYY-MM-DDTHH:MM:SSZ or +DURATION) and expect "
                          "(1..1000, or \"10x\") are required; name is text");
    return submit(r, j);
}
